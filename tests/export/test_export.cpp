// The export round trip (issue 14): a trained model, exported as a header of constexpr arrays
// (gen_weights.cpp, run at build time), bound to its model type while compiling and run in place
// by a runner, gives bitwise the logits of the model in RAM; the arrays hold bitwise its values.
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "cnn_weights.hpp"
#include "mlp_weights.hpp"
#include "models.hpp"

namespace g = graft;
namespace m = export_models;

namespace {
// constant initialisation: the tables of pointers are compile-time constants (no start-up code)
constexpr auto cnn_const = cnn_weights::bind<m::cnn_t>();
constexpr auto mlp_const = mlp_weights::bind<m::mlp_t>();

template <class M, std::size_t B> void same_logits(const g::constant_model<M>& flash) {
  const auto net = m::trained<M>();
  auto in_ram = std::make_unique<g::runner<M, B>>();
  auto in_rom = std::make_unique<g::runner<M, B>>();
  g::splitmix64 rng(11);
  for (std::size_t i = 0; i < B * M::input_shape::size; ++i)
    in_ram->input()[i] = in_rom->input()[i] = static_cast<float>(rng.uniform(-1.0, 1.0));
  const float* a = in_ram->forward(*net, B);
  const float* b = in_rom->forward(flash, B);
  CHECK(std::memcmp(a, b, B * M::output_shape::size * sizeof(float)) == 0);
  // the arrays are the model's tensors, bit for bit, in for_each_saved order
  std::size_t layer = 0, differing = 0;
  std::vector<std::size_t> next(M::layer_count, 0);
  net->for_each_saved([&](std::size_t i, const float* data, std::size_t size) {
    layer = i;
    const std::size_t j = next[i]++;
    const auto params = g::detail::saved_layout<M>::counts[i][0];
    const float* c = j < params ? flash.params_of(i)[j] : flash.buffers_of(i)[j - params];
    differing += std::memcmp(data, c, size * sizeof(float)) != 0 ? 1 : 0;
  });
  CHECK(layer == M::layer_count - 1);
  CHECK(differing == 0);
}
}  // namespace

TEST_CASE(
    "export_header: a CNN with batch norm and a residual block, read in place from its "
    "exported constants, gives bitwise the logits of the model in RAM") {
  same_logits<m::cnn_t, 1>(cnn_const);
  same_logits<m::cnn_t, 5>(cnn_const);
  CHECK(std::string_view(cnn_weights::description) == m::cnn_t::description());
  CHECK(cnn_weights::fingerprint == g::detail::fnv1a(m::cnn_t::description()));
}

TEST_CASE("export_header: an MLP (fused relu, tanh on its own) round trip, bitwise") {
  same_logits<m::mlp_t, 1>(mlp_const);
  same_logits<m::mlp_t, 4>(mlp_const);
}

TEST_CASE("export_header: the signature tells the two models apart while compiling") {
  static_assert(g::signature_matches<m::cnn_t, cnn_weights::signature>());
  static_assert(g::signature_matches<m::mlp_t, mlp_weights::signature>());
  static_assert(!g::signature_matches<m::mlp_t, cnn_weights::signature>());
  static_assert(!g::signature_matches<m::cnn_t, mlp_weights::signature>());
  // a head of another width: same backbone, other tensors
  using other = g::model<m::mlp_t::backbone_type, g::classifier<4>>;
  static_assert(!g::signature_matches<other, mlp_weights::signature>());
  CHECK(g::constant_model<m::cnn_t>::constant_bytes ==
        (m::cnn_t::parameter_count + m::cnn_t::buffer_scalars) * sizeof(float));
}

TEST_CASE("export_header refuses a non-finite value, names it, and leaves the old file") {
  auto net = m::trained<m::mlp_t>();
  const std::string path = "export_refused_weights.hpp";
  g::export_header(*net, path, "refused");
  net->layer<3>().bias[5] = std::numeric_limits<float>::quiet_NaN();
  try {
    g::export_header(*net, path, "refused");
    FAIL("no error");
  } catch (const g::io_error& e) {
    CHECK(std::string(e.what()).find("layer 3, tensor 3, value 5") != std::string::npos);
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  std::fseek(f, 0, SEEK_END);
  CHECK(std::ftell(f) > 1000);  // the first export, whole
  std::fclose(f);
  std::remove(path.c_str());
}
