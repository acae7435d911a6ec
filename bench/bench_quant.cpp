// Google Benchmark: int8 post-training quantisation (issue 14, point 4) against float, batch 1.
//   Q1  the MLP 784-256-128-10: batch-1 latency, float runner vs int8 runner (input quantisation
//       included), from the same seeded weights (the int8 model calibrated on 256 seeded images)
//   Q2  the LeNet-5-like CNN + classifier<10>: the same
// Counters: param_bytes (the float model's parameters, or the int8 model's read-only arrays),
// ram_bytes (the runner's buffers), and the int8 path of this build in the label.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <vector>

#include <graft/graft.hpp>
#include <graft/quant/calibrate.hpp>
#include <graft/quant/quantize.hpp>
#include <graft/quant/runtime.hpp>

#include "../examples/support/backbones.hpp"

namespace g = graft;
namespace q = graft::quant;

using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;
using net_t = g::model<mlp, g::classifier<10>>;
using lenet_t = g::model<backbones::lenet, g::classifier<10>>;

namespace {
std::vector<float> images(std::size_t n, std::uint64_t seed) {
  g::splitmix64 rng(seed);
  std::vector<float> x(n * 784);
  for (auto& v : x) v = static_cast<float>(rng.uniform01());
  return x;
}
void bytes_counters(benchmark::State& state, std::size_t params, std::size_t ram) {
  state.counters["param_bytes"] = static_cast<double>(params);
  state.counters["ram_bytes"] = static_cast<double>(ram);
}

template <class Net> void BM_float(benchmark::State& state) {
  auto net = g::make_model<Net>(g::seed{0});
  auto r = std::make_unique<g::runner<Net, 1>>();
  const auto x = images(1, 2);
  for (auto _ : state) {
    std::copy(x.begin(), x.end(), r->input());
    benchmark::DoNotOptimize(r->forward(*net, 1));
  }
  bytes_counters(state, Net::parameter_bytes, g::runner<Net, 1>::activation_bytes);
  state.SetLabel("float32");
}

template <class Net> void BM_int8(benchmark::State& state) {
  using QM = q::quantized_t<Net>;
  auto net = g::make_model<Net>(g::seed{0});
  const auto calib = images(256, 1);
  const auto qp = q::quantize(*net, q::calibrate(*net, calib.data(), 256));
  auto r = std::make_unique<q::runner<QM, 1>>();
  const auto x = images(1, 2);
  const auto view = qp->view();
  for (auto _ : state) benchmark::DoNotOptimize(r->forward(view, x.data(), 1));
  bytes_counters(state, QM::parameter_bytes, q::runner<QM, 1>::ram_bytes);
  state.SetLabel(std::string("int8 ") + q::kernels::isa_name(q::kernels::best));
}
}  // namespace

BENCHMARK(BM_float<net_t>)->Name("Q1_mlp_float_batch1");
BENCHMARK(BM_int8<net_t>)->Name("Q1_mlp_int8_batch1");
BENCHMARK(BM_float<lenet_t>)->Name("Q2_lenet_float_batch1");
BENCHMARK(BM_int8<lenet_t>)->Name("Q2_lenet_int8_batch1");

BENCHMARK_MAIN();
