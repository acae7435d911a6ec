// Google Benchmark: the small ResNet of examples/support/backbones.hpp (batch norm, residual
// blocks): a training step at batch 64 (SGD momentum), the same step with frozen batch-norm
// statistics (freeze::statistics), a fine-tuning step with the stem and first block frozen, and
// batch-1 inference. float32, one thread. items/s = samples/s.
// W6_resnet_train_step_batch64 and W6_resnet_inference_batch1 are the training step and the
// batch-1 inference of resnet_train_step_batch64 and resnet_inference_batch1 pinned to one thread
// (whatever GRAFT_THREADS says): the workloads of bench/peers/bench_peer_torch.cpp's W6 (same
// network, inputs, labels, batch, optimiser and item counting), which tools/bench_table.py pairs
// with LibTorch's.
#include <benchmark/benchmark.h>

#include <vector>

#include <graft/graft.hpp>

#include "../examples/support/backbones.hpp"

namespace g = graft;
using resnet_t = g::model<backbones::resnet, g::classifier<10>>;
// The LibTorch peer's ResNet (bench_peer_torch.cpp, W6) checks that it has as many parameters.
static_assert(backbones::resnet::parameter_count + 64 * 10 + 10 == 77'754);

namespace {
template <class T> void fill(T* p, std::size_t n, std::uint64_t seed) {
  g::splitmix64 rng(seed);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<T>(rng.uniform01());
}
struct threads_scope {  // the benchmark's thread count, the previous one afterwards
  explicit threads_scope(int n) : previous_(g::parallel::threads()) { g::parallel::set_threads(n); }
  ~threads_scope() { g::parallel::set_threads(previous_); }
  threads_scope(const threads_scope&) = delete;
  threads_scope& operator=(const threads_scope&) = delete;

 private:
  int previous_;
};

template <class Policy> void BM_resnet_step(benchmark::State& state) {
  auto net = g::make_model<resnet_t>(g::seed{0});
  auto t = std::make_unique<g::trainer<resnet_t, 64, g::sgd, Policy>>(
      *net, g::sgd{.lr = 0.01f, .momentum = 0.9f});
  fill(t->input(), 64 * 784, 1);
  std::vector<std::int32_t> y(64);
  for (std::size_t i = 0; i < 64; ++i) y[i] = static_cast<std::int32_t>(i % 10);
  for (auto _ : state) benchmark::DoNotOptimize(t->step(y.data(), 64));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 64);
}
BENCHMARK(BM_resnet_step<g::freeze::none>)->Name("resnet_train_step_batch64");
BENCHMARK(BM_resnet_step<g::freeze::statistics>)->Name("resnet_train_step_frozen_stats_batch64");
// layers 0-5: stem conv, batch norm, relu, max-pool, first block, relu
BENCHMARK(BM_resnet_step<g::freeze::first<3>>)->Name("resnet_finetune_frozen_stem_block1_batch64");

void BM_resnet_inference_batch1(benchmark::State& state) {
  auto net = g::make_model<resnet_t>(g::seed{0});
  auto r = std::make_unique<g::runner<resnet_t, 1>>();
  std::vector<float> x(784);
  fill(x.data(), x.size(), 2);
  for (auto _ : state) {
    std::copy(x.begin(), x.end(), r->input());
    benchmark::DoNotOptimize(r->forward(*net, 1));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_resnet_inference_batch1)->Name("resnet_inference_batch1");

// W6: the same two workloads on one thread, under the names of the LibTorch peer's.
void BM_W6_resnet_train_step(benchmark::State& state) {
  threads_scope one(1);
  BM_resnet_step<g::freeze::none>(state);
}
void BM_W6_resnet_inference_batch1(benchmark::State& state) {
  threads_scope one(1);
  BM_resnet_inference_batch1(state);
}
BENCHMARK(BM_W6_resnet_train_step)->Name("W6_resnet_train_step_batch64");
BENCHMARK(BM_W6_resnet_inference_batch1)->Name("W6_resnet_inference_batch1");
}  // namespace

BENCHMARK_MAIN();
