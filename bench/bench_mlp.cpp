// Google Benchmark: graft on the benchmark suite's workloads (bench/peers/ runs the same workloads
// with LibTorch, dlib, tiny-dnn and OpenBLAS; tools/bench_table.py prints the ratios). float32.
//   W1  training step of the MLP 784-256-128-10, SGD momentum, batch 64     (items/s = samples/s)
//   W2  the same MLP: batch-1 latency and batch-256 throughput
//   W3  the LeNet-5-like CNN: training step, batch 64, and batch-1 latency
//   W4  fine-tuning step with the two lower dense layers frozen, without and with feature caching
//   W5  the single-core FMA peak, and the dense kernels' GFLOP/s at the MLP's shapes; the time to
//       read the MLP's parameters once (the floor of W2's batch-1 latency)
// Names ending in _threads2 use two threads (a GRAFT_PARALLEL build, such as the release preset).
#include <benchmark/benchmark.h>

#include <vector>

#include <graft/graft.hpp>

#include "../examples/support/backbones.hpp"
#include "fma_peak.hpp"

namespace g = graft;

using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;
using net_t = g::model<mlp, g::classifier<10>>;
using lenet_t = g::model<backbones::lenet, g::classifier<10>>;
using opt_t = g::sgd;

namespace {
template <class T> void fill(T* p, std::size_t n, std::uint64_t seed) {
  g::splitmix64 rng(seed);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<T>(rng.uniform01());
}
void flops_counter(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iteration * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
struct threads_scope {  // the benchmark's thread count, back to one thread afterwards
  explicit threads_scope(int n) { g::parallel::set_threads(n); }
  ~threads_scope() { g::parallel::set_threads(1); }
  threads_scope(const threads_scope&) = delete;
  threads_scope& operator=(const threads_scope&) = delete;
};

// A training step through trainer<..., Policy>; with Cached, the rows start at the lowest trainable
// layer (features computed once, as finetune does with a frozen prefix).
// Checked = false turns off the finiteness checks (gradients before the update, parameters after
// it, with the undo); W1's pair measures what they cost.
template <class Policy, bool Cached, int Threads, bool Checked = true>
void BM_step(benchmark::State& state) {
  threads_scope threads(Threads);
  using tr = g::trainer<net_t, 64, opt_t, Policy>;
  auto net = g::make_model<net_t>(g::seed{0});
  auto t = std::make_unique<tr>(*net, opt_t{.lr = 0.01f, .momentum = 0.9f});
  t->check_finite(Checked);
  constexpr std::size_t start = Cached ? tr::lowest_trainable : 0;
  fill(t->activation(start), 64 * tr::plan::sizes[start], 1);
  std::vector<std::int32_t> y(64);
  for (std::size_t i = 0; i < 64; ++i) y[i] = static_cast<std::int32_t>(i % 10);
  for (auto _ : state) benchmark::DoNotOptimize(t->step(y.data(), 64, start));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 64);
}
BENCHMARK(BM_step<g::freeze::none, false, 1>)->Name("W1_train_step_batch64");
BENCHMARK(BM_step<g::freeze::none, false, 1, false>)->Name("W1_train_step_batch64_unchecked");
BENCHMARK(BM_step<g::freeze::none, false, 2>)->Name("W1_train_step_batch64_threads2");
BENCHMARK(BM_step<g::freeze::first<2>, false, 1>)->Name("W4_finetune_frozen2_batch64");
BENCHMARK(BM_step<g::freeze::first<2>, true, 1>)->Name("W4_finetune_frozen2_cached_batch64");

// W3: the LeNet-5-like CNN, training step (batch 64) and batch-1 inference.
template <int Threads> void BM_W3_lenet_train_step(benchmark::State& state) {
  threads_scope threads(Threads);
  auto net = g::make_model<lenet_t>(g::seed{0});
  auto t =
      std::make_unique<g::trainer<lenet_t, 64, opt_t>>(*net, opt_t{.lr = 0.01f, .momentum = 0.9f});
  fill(t->input(), 64 * 784, 1);
  std::vector<std::int32_t> y(64);
  for (std::size_t i = 0; i < 64; ++i) y[i] = static_cast<std::int32_t>(i % 10);
  for (auto _ : state) benchmark::DoNotOptimize(t->step(y.data(), 64));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 64);
}
BENCHMARK(BM_W3_lenet_train_step<1>)->Name("W3_lenet_train_step_batch64");
BENCHMARK(BM_W3_lenet_train_step<2>)->Name("W3_lenet_train_step_batch64_threads2");

template <class Net, std::size_t B> void BM_inference(benchmark::State& state) {
  auto net = g::make_model<Net>(g::seed{0});
  auto r = std::make_unique<g::runner<Net, B>>();
  std::vector<float> x(B * 784);
  fill(x.data(), x.size(), 2);
  for (auto _ : state) {
    std::copy(x.begin(), x.end(), r->input());
    benchmark::DoNotOptimize(r->forward(*net, B));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(B));
}
BENCHMARK(BM_inference<net_t, 1>)->Name("W2_inference_batch1");
BENCHMARK(BM_inference<net_t, 256>)->Name("W2_inference_batch256");
BENCHMARK(BM_inference<lenet_t, 1>)->Name("W3_lenet_inference_batch1");

// Forward product of a dense layer: C[M x N] = A[M x K] * B[K x N].
template <std::size_t M, std::size_t K, std::size_t N, int Threads>
void BM_W5_gemm(benchmark::State& state) {
  threads_scope threads(Threads);
  std::vector<float> a(M * K), b(K * N), c(M * N);
  fill(a.data(), a.size(), 3);
  fill(b.data(), b.size(), 4);
  for (auto _ : state) {
    g::kernels::gemm_bcast<N>(M, K, a.data(), K, 1, b.data(), c.data(), false);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  flops_counter(state, 2.0 * M * K * N);
}
BENCHMARK(BM_W5_gemm<64, 784, 256, 1>)->Name("W5_gemm_64x784x256");
BENCHMARK(BM_W5_gemm<64, 256, 128, 1>)->Name("W5_gemm_64x256x128");
BENCHMARK(BM_W5_gemm<1, 784, 256, 1>)->Name("W5_gemm_1x784x256");
BENCHMARK(BM_W5_gemm<256, 784, 256, 1>)->Name("W5_gemm_256x784x256");
BENCHMARK(BM_W5_gemm<64, 128, 10, 1>)->Name("W5_gemm_64x128x10");
BENCHMARK(BM_W5_gemm<64, 784, 256, 2>)->Name("W5_gemm_64x784x256_threads2");

// The two backward products of a dense layer: dX = dY W^T and dW = X^T dY.
template <std::size_t M, std::size_t K, std::size_t N> void BM_W5_dx(benchmark::State& state) {
  std::vector<float> dy(M * N), w(K * N), dx(M * K);
  fill(dy.data(), dy.size(), 3);
  fill(w.data(), w.size(), 4);
  for (auto _ : state) {
    g::kernels::gemm_nt_packed<K, N>(M, dy.data(), w.data(), dx.data());
    benchmark::DoNotOptimize(dx.data());
    benchmark::ClobberMemory();
  }
  flops_counter(state, 2.0 * M * K * N);
}
template <std::size_t M, std::size_t K, std::size_t N> void BM_W5_dw(benchmark::State& state) {
  std::vector<float> x(M * K), dy(M * N), dw(K * N);
  fill(x.data(), x.size(), 3);
  fill(dy.data(), dy.size(), 4);
  for (auto _ : state) {
    g::kernels::gemm_bcast<N>(K, M, x.data(), 1, K, dy.data(), dw.data(), false);
    benchmark::DoNotOptimize(dw.data());
    benchmark::ClobberMemory();
  }
  flops_counter(state, 2.0 * M * K * N);
}
BENCHMARK(BM_W5_dx<64, 256, 128>)->Name("W5_dx_64x256x128");
BENCHMARK(BM_W5_dw<64, 784, 256>)->Name("W5_dw_784x64x256");

// What batch-1 inference of the MLP cannot beat on one core: reading its parameters (940 KB, more
// than this machine's L2, so they come from L3 on every call), as fast as a loop of vector loads
// with eight accumulators and the batch-1 product's prefetch reads them.
void BM_W5_read_mlp_parameters(benchmark::State& state) {
  using batch = xsimd::batch<float>;
  constexpr std::size_t W = batch::size, n = net_t::parameter_count / (8 * W) * (8 * W);
  constexpr std::size_t ahead = g::kernels::detail::gemv_prefetch_bytes / sizeof(float);
  std::vector<float> p(n + ahead);
  fill(p.data(), p.size(), 5);
  for (auto _ : state) {
    batch acc[8];
    for (auto& a : acc) a = batch(0.0f);
    for (std::size_t i = 0; i < n; i += 8 * W) {
      for (std::size_t l = 0; l < 8 * W; l += 64 / sizeof(float))
        g::kernels::detail::prefetch_nta(p.data() + i + l + ahead);
      for (std::size_t j = 0; j < 8; ++j) acc[j] += batch::load_unaligned(p.data() + i + j * W);
    }
    benchmark::DoNotOptimize(acc);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * sizeof(float)));
}
BENCHMARK(BM_W5_read_mlp_parameters)->Name("W5_read_mlp_parameters");

// The single-core FMA peak: bench/fma_peak.hpp.
BENCHMARK(graft_bench::fma_peak)->Name("W5_fma_peak");
}  // namespace

BENCHMARK_MAIN();
