// Google Benchmark: one fine-tuning step of the MLP 784-256-128-10 (batch 64) under freezing
// policies, and fine-tuning runs of 1 and 10 epochs over 6,400 real Fashion-MNIST images (setup
// and, where it applies, the one-off feature cache included; items/s = samples trained per second).
//   freeze::none      full fine-tuning
//   freeze::first<1>  first dense layer frozen (forward only, no backward below dense<128>)
//   freeze::backbone  linear probe, uncached (the frozen backbone runs every step)
//   freeze::backbone  linear probe, cached (the backbone ran once per sample; steps read features)
#include <benchmark/benchmark.h>

#include <vector>

#include <graft/graft.hpp>

namespace g = graft;

using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;
using net_t = g::model<mlp, g::classifier<10>>;
using opt_t = g::sgd;
constexpr std::size_t B = 64;

namespace {
template <class Policy, bool Cached> void BM_step(benchmark::State& state) {
  using tr = g::trainer<net_t, B, opt_t, Policy>;
  auto net = g::make_model<net_t>(g::seed{0});
  auto t = std::make_unique<tr>(*net, opt_t{.lr = 0.01f, .momentum = 0.9f});
  constexpr std::size_t K = Cached ? tr::lowest_trainable : 0;
  g::splitmix64 rng(1);
  for (std::size_t i = 0; i < B * tr::plan::sizes[K]; ++i)
    t->activation(K)[i] = static_cast<float>(rng.uniform01());
  std::vector<std::int32_t> y(B);
  for (std::size_t i = 0; i < B; ++i) y[i] = static_cast<std::int32_t>(i % 10);
  for (auto _ : state) benchmark::DoNotOptimize(t->step(y.data(), B, K));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * B);
  state.counters["train_bytes"] = static_cast<double>(tr::training_bytes);
}
BENCHMARK(BM_step<g::freeze::none, false>)->Name("step/freeze_none");
BENCHMARK(BM_step<g::freeze::first<1>, false>)->Name("step/freeze_first1");
BENCHMARK(BM_step<g::freeze::backbone, false>)->Name("step/freeze_backbone_uncached");
BENCHMARK(BM_step<g::freeze::backbone, true>)->Name("step/freeze_backbone_cached");

const g::data::dataset& data() {
  static const auto d = [] {
    try {
      return g::data::fashion_mnist().train.take(6400);
    } catch (const g::data_error&) {  // no data: synthetic images of the same shape
      g::splitmix64 rng(3);
      std::vector<float> x(6400 * 784);
      std::vector<std::int32_t> y(6400);
      for (auto& v : x) v = static_cast<float>(rng.uniform01());
      for (auto& v : y) v = static_cast<std::int32_t>(rng.below(10));
      return g::data::make_classification("synthetic", {28, 28}, x, y, 10);
    }
  }();
  return d;
}

template <class Policy, bool Cached> void BM_epoch(benchmark::State& state) {
  auto net = g::make_model<net_t>(g::seed{0});
  const auto& ds = data();
  const auto n_epochs = static_cast<std::size_t>(state.range(0));
  for (auto _ : state)
    g::finetune<Policy>(*net, ds, opt_t{.lr = 0.01f, .momentum = 0.9f}, g::epochs{n_epochs},
                        g::batch<B>, g::quiet, g::feature_cache{Cached});
  // items = samples trained on; with a cache, the one-off prefix pass is amortised over the epochs
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n_epochs * ds.size()));
}
BENCHMARK(BM_epoch<g::freeze::none, false>)
    ->Name("epoch/freeze_none")
    ->Unit(benchmark::kMillisecond)
    ->Arg(1)
    ->Arg(10);
BENCHMARK(BM_epoch<g::freeze::first<1>, true>)
    ->Name("epoch/freeze_first1")
    ->Unit(benchmark::kMillisecond)
    ->Arg(1)
    ->Arg(10);
BENCHMARK(BM_epoch<g::freeze::backbone, false>)
    ->Name("epoch/freeze_backbone_uncached")
    ->Unit(benchmark::kMillisecond)
    ->Arg(1)
    ->Arg(10);
BENCHMARK(BM_epoch<g::freeze::backbone, true>)
    ->Name("epoch/freeze_backbone_cached")
    ->Unit(benchmark::kMillisecond)
    ->Arg(1)
    ->Arg(10);
}  // namespace

BENCHMARK_MAIN();
