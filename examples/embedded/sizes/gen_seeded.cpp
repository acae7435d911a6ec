// tools/sizes.sh's generator (hosted): exports seeded, untrained MLP and LeNet weights as headers
// for the size programs, float (graft::export_header) and int8 (graft::quant::export_header,
// calibrated on 64 seeded random images); a program's size does not depend on the values.
//
//   gen_seeded <output dir>   writes <dir>/{mlp,lenet}_weights.hpp and <dir>/{mlp,lenet}_int8.hpp
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <graft/graft.hpp>
#include <graft/quant/calibrate.hpp>
#include <graft/quant/export.hpp>
#include <graft/quant/quantize.hpp>

#include "../models.hpp"

namespace {
template <class M> void export_int8(const M& net, const std::string& path, const char* ns) {
  constexpr std::size_t n = 64;
  std::vector<float> x(n * M::input_shape::size);
  graft::splitmix64 rng(7);
  for (auto& v : x) v = static_cast<float>(rng.below(256)) / 255.0f;
  const auto qp = graft::quant::quantize(net, graft::quant::calibrate(net, x.data(), n));
  std::ofstream os(path);
  graft::quant::export_header(os, *qp, ns);
  if (!os.flush()) {
    std::fprintf(stderr, "gen_seeded: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gen_seeded <output dir>\n");
    return 2;
  }
  const std::string dir = argv[1];
  const auto mlp = graft::make_model<embedded::mlp_t>(graft::seed{1});
  const auto lenet = graft::make_model<embedded::lenet_t>(graft::seed{1});
  graft::export_header(*mlp, dir + "/mlp_weights.hpp", "mlp_weights");
  graft::export_header(*lenet, dir + "/lenet_weights.hpp", "lenet_weights");
  export_int8(*mlp, dir + "/mlp_int8.hpp", "mlp_int8");
  export_int8(*lenet, dir + "/lenet_int8.hpp", "lenet_int8");
  return 0;
}
