// Parity with PyTorch from committed fixtures (tools/torch_interop.py fixtures): PyTorch's weights
// of the MLP (BF16, nn.Sequential names), LeNet (F32, named modules: paired in model order), the
// small ResNet (F16, torchvision-like names: paired by the name map the script writes) and a tiny
// double model (F64) give, in graft, the logits PyTorch computed in float64 (eval mode) within a
// relative error of 1e-5 (1e-10 for double). Needs no torch.
//
// With GRAFT_TORCH_EXPORT_DIR set, the test also writes each imported model back with
// export_safetensors, with its inputs and graft's logits, for `tools/torch_interop.py check DIR`
// (the ctest torch_roundtrip, registered where python3-torch is installed).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <graft/graft.hpp>
#include <graft/io/safetensors.hpp>

#include "support/backbones.hpp"

#ifndef GRAFT_TORCH_FIXTURES
#error "GRAFT_TORCH_FIXTURES: the directory of tests/fixtures/torch"
#endif

namespace g = graft;

namespace {
using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;
using mlp_net = g::model<mlp, g::classifier<10>>;
using lenet_net = g::model<backbones::lenet, g::classifier<10>>;
using resnet_net = g::model<backbones::resnet, g::classifier<10>>;
using tiny_net = g::model<g::stack<g::input<1, 6, 6>, g::conv2d<4, 3, g::pad<1>, g::stride<2>>,
                                   g::relu, g::flatten, g::dense<8>, g::batch_norm, g::relu>,
                          g::classifier<3>, double>;

std::string fixture(const std::string& name) {
  return std::string(GRAFT_TORCH_FIXTURES) + "/" + name;
}

/// Imports <name>.safetensors, runs <name>_io's inputs, returns max|graft - torch| / max|torch|.
template <class M> double parity(const std::string& name, const g::safetensors_options& opt,
                                 g::safetensors_report::rule expected_rule) {
  using T = typename M::scalar;
  auto net = g::make_model<M>(g::seed{1});
  const auto rep = g::import_safetensors(*net, fixture(name + ".safetensors"), opt);
  CHECK(rep.matched_by == expected_rule);
  CHECK(rep.unused.empty());
  const auto io = g::read_safetensors(fixture(name + "_io.safetensors"));
  const auto x = io.values("input"), want = io.values("logits");
  constexpr std::size_t in = M::input_shape::size, out = M::output_shape::size;
  const std::size_t rows = x.size() / in;
  REQUIRE(rows == 8);
  REQUIRE(want.size() == rows * out);
  auto r = std::make_unique<g::runner<M, 8>>();
  std::transform(x.begin(), x.end(), r->input(), [](double v) { return static_cast<T>(v); });
  const T* y = r->forward(*net, rows);
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < rows * out; ++i) {
    err = std::max(err, std::fabs(static_cast<double>(y[i]) - want[i]));
    scale = std::max(scale, std::fabs(want[i]));
  }
  if (const char* dir = std::getenv("GRAFT_TORCH_EXPORT_DIR"); dir != nullptr && *dir != '\0') {
    g::export_safetensors(*net, std::string(dir) + "/" + name + ".safetensors");
    std::vector<double> logits(y, y + rows * out);
    g::save_safetensors(std::string(dir) + "/" + name + "_io.safetensors",
                        {{"input",
                          {rows, 1, M::input_shape::dims[1], M::input_shape::dims[2]},
                          x,
                          g::st_dtype::F32},
                         {"logits", {rows, out}, logits, g::st_dtype::F64}},
                        {{"format", "pt"}});
  }
  return err / scale;
}
}  // namespace

TEST_CASE("MLP: PyTorch's BF16 weights, nn.Sequential names, logits within 1e-5") {
  const double e = parity<mlp_net>("mlp", {}, g::safetensors_report::rule::by_name);
  MESSAGE("MLP relative error " << e);
  CHECK(e <= 1e-5);
}

TEST_CASE("LeNet: PyTorch's F32 weights of a named-module class, paired in model order") {
  const double e = parity<lenet_net>("lenet", {}, g::safetensors_report::rule::model_order);
  MESSAGE("LeNet relative error " << e);
  CHECK(e <= 1e-5);
}

TEST_CASE("ResNet: F16 weights with batch norm and torchvision-like names, through the name map") {
  g::safetensors_options opt;
  opt.names = g::read_name_map(fixture("resnet_names.json"));
  // every graft tensor is in the map: the pairing rule is then by name (nothing left to order)
  const double e = parity<resnet_net>("resnet", opt, g::safetensors_report::rule::by_name);
  MESSAGE("ResNet relative error " << e);
  CHECK(e <= 1e-5);
  // without the map the torchvision names sort bn1 before conv1: refused, naming both
  auto net = g::make_model<resnet_net>(g::seed{1});
  CHECK_THROWS_WITH_AS(g::import_safetensors(*net, fixture("resnet.safetensors")),
                       doctest::Contains("tensor 'bn1.weight' (for graft's '0.weight', paired in "
                                         "model order): expected shape [16, 1, 3, 3], found [16]"),
                       g::io_error);
}

TEST_CASE("a double model: F64 weights, strided padded convolution, BatchNorm1d, within 1e-10") {
  const double e = parity<tiny_net>("tiny", {}, g::safetensors_report::rule::by_name);
  MESSAGE("tiny (double) relative error " << e);
  CHECK(e <= 1e-10);
}

TEST_CASE("a fixture is refused by a model of another shape, naming file and tensor") {
  using other = g::model<mlp, g::classifier<5>>;
  auto net = g::make_model<other>(g::seed{1});
  CHECK_THROWS_WITH_AS(
      g::import_safetensors(*net, fixture("mlp.safetensors")),
      doctest::Contains("mlp.safetensors: tensor '5.weight' (for graft's '5.weight'): "
                        "expected shape [5, 128], found [10, 128]"),
      g::io_error);
  // the backbone alone is fine, and the file's head is reported unused
  const auto rep = g::import_backbone_safetensors(*net, fixture("mlp.safetensors"));
  CHECK(rep.unused == std::vector<std::string>{"5.weight", "5.bias"});
}
