// The sweep (sweep_common.hpp) in graft: the MLP 784-H-ReLU-H-ReLU-10 with compile-time shapes,
// so every point of the grid is its own instantiation (model, trainer, runner). One thread.
//   sweep_train_h<H>_b<B>  trainer<net, B, sgd, freeze::none>::step, SGD momentum 0.9, lr 0.01,
//                          finiteness checks on (graft's default, as W1)
//   sweep_train_h<H>_b<B>_unchecked  the same step with check_finite(false) (graft only): the
//                          cost of the checks, which read every gradient and parameter once more
//                          (what the peers never do; it shows most at small batches)
//   sweep_infer_h<H>_b<B>  runner<net, B>: copy the input in, forward (as W2)
//   sweep_gemm_<fwd|dw|dx>_h<H>_b64  the H x H layer's products at batch 64 with the kernels the
//                          trainer calls: gemm_bcast (forward, and the weight gradient reading X^T
//                          through strides), gemm_nt_packed (input gradient)
//   sweep_fma_peak         the single-core FMA peak (bench_mlp's W5_fma_peak), for the GFLOP/s
//                          that tools/bench_sweep.py reports as a share of it
// The inputs are the same numbers as the peers' (graft::splitmix64, seeds 1 and 2).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <graft/graft.hpp>

#include "../fma_peak.hpp"
#include "sweep_common.hpp"

namespace g = graft;

namespace {

template <std::size_t H> using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<H>, g::relu, g::dense<H>, g::relu>;
template <std::size_t H> using net_t = g::model<mlp<H>, g::classifier<10>>;
using opt_t = g::sgd;

template <class T> void fill(T* p, std::size_t n, std::uint64_t seed) {
  g::splitmix64 rng(seed);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<T>(rng.uniform01());
}

template <std::size_t H, std::size_t B> void BM_train(benchmark::State& state, bool checked) {
  using net = net_t<H>;
  using tr = g::trainer<net, B, opt_t, g::freeze::none>;
  auto model = g::make_model<net>(g::seed{0});
  auto t = std::make_unique<tr>(*model, opt_t{.lr = peers::kLr, .momentum = peers::kMomentum});
  t->check_finite(checked);
  fill(t->input(), B * sweep::kIn, peers::kSeedTrain);
  std::vector<std::int32_t> y(B);
  for (std::size_t i = 0; i < B; ++i) y[i] = static_cast<std::int32_t>(i % sweep::kOut);
  for (auto _ : state) benchmark::DoNotOptimize(t->step(y.data(), B));
  peers::set_samples(state, B);
}

template <std::size_t H, std::size_t B> void BM_infer(benchmark::State& state) {
  using net = net_t<H>;
  auto model = g::make_model<net>(g::seed{0});
  auto r = std::make_unique<g::runner<net, B>>();
  std::vector<float> x(B * sweep::kIn);
  fill(x.data(), x.size(), peers::kSeedInfer);
  for (auto _ : state) {
    std::copy(x.begin(), x.end(), r->input());
    benchmark::DoNotOptimize(r->forward(*model, B));
    benchmark::ClobberMemory();
  }
  peers::set_samples(state, B);
}

// The H x H layer's products at batch M = 64 (what bench_mlp's W5 benchmarks do at its shapes).
template <std::size_t H> void BM_gemm(benchmark::State& state, int product) {
  constexpr std::size_t M = sweep::kWidthBatch;
  std::vector<float> x(M * H), w(H * H), y(M * H);  // y: the output or dY; w: W or dW
  fill(x.data(), x.size(), sweep::kSeedA);
  fill(w.data(), w.size(), sweep::kSeedB);
  fill(y.data(), y.size(), sweep::kSeedB);
  for (auto _ : state) {
    if (product == 0)  // Y = X W
      g::kernels::gemm_bcast<H>(M, H, x.data(), H, 1, w.data(), y.data(), false);
    else if (product == 1)  // dW = X^T dY
      g::kernels::gemm_bcast<H>(H, M, x.data(), 1, H, y.data(), w.data(), false);
    else  // dX = dY W^T
      g::kernels::gemm_nt_packed<H, H>(M, y.data(), w.data(), x.data());
    benchmark::DoNotOptimize(x.data());
    benchmark::DoNotOptimize(w.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  peers::set_gflops(state, M, H, H);
}

template <std::size_t... I> void register_gemms(std::index_sequence<I...>) {
  for (int p = 0; p < 3; ++p)
    (benchmark::RegisterBenchmark(sweep::gemm_name(sweep::kProducts[p], sweep::kWidths[I]).c_str(),
                                  BM_gemm<sweep::kWidths[I]>, p),
     ...);
}

template <std::size_t... I> void register_grid(std::index_sequence<I...>) {
  constexpr auto grid = sweep::kGrid;
  (benchmark::RegisterBenchmark(sweep::name("train", grid[I].h, grid[I].b).c_str(),
                                BM_train<grid[I].h, grid[I].b>, true),
   ...);
  (benchmark::RegisterBenchmark(sweep::name("infer", grid[I].h, grid[I].b).c_str(),
                                BM_infer<grid[I].h, grid[I].b>),
   ...);
  (benchmark::RegisterBenchmark((sweep::name("train", grid[I].h, grid[I].b) + "_unchecked").c_str(),
                                BM_train<grid[I].h, grid[I].b>, false),
   ...);
}

}  // namespace

int main(int argc, char** argv) {
  g::parallel::set_threads(1);  // one thread, whatever GRAFT_THREADS says (as the peers)
  register_grid(std::make_index_sequence<sweep::kPoints>{});
  register_gemms(std::make_index_sequence<sweep::kWidths.size()>{});
  benchmark::RegisterBenchmark("sweep_fma_peak", graft_bench::fma_peak);  // bench/fma_peak.hpp
  benchmark::AddCustomContext("peer", "graft");
  benchmark::AddCustomContext("simd", xsimd::default_arch::name());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
