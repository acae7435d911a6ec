// tools/sizes.sh's generator (hosted): exports seeded, untrained MLP and LeNet weights as headers
// (graft::export_header) for the size programs; a program's size does not depend on the values.
//
//   gen_seeded <output dir>      writes <dir>/mlp_weights.hpp and <dir>/lenet_weights.hpp
#include <cstdio>
#include <string>

#include <graft/graft.hpp>

#include "../models.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gen_seeded <output dir>\n");
    return 2;
  }
  const std::string dir = argv[1];
  graft::export_header(*graft::make_model<embedded::mlp_t>(graft::seed{1}),
                       dir + "/mlp_weights.hpp", "mlp_weights");
  graft::export_header(*graft::make_model<embedded::lenet_t>(graft::seed{1}),
                       dir + "/lenet_weights.hpp", "lenet_weights");
  return 0;
}
