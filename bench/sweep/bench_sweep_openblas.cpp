// The sweep (sweep_common.hpp) as a hand-written MLP on OpenBLAS (hand_mlp.hpp, the MLP of
// bench/peers/bench_peer_openblas.cpp with run-time widths), pinned to one thread.
//   sweep_train_h<H>_b<B>  one SGD-momentum step (lr 0.01, momentum 0.9) on B samples
//   sweep_infer_h<H>_b<B>  copy B samples in, forward them (sgemv for one row, sgemm otherwise)
#include <cblas.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include <benchmark/benchmark.h>

#include "hand_mlp.hpp"
#include "sweep_common.hpp"

namespace {

void BM_train(benchmark::State& state, int h, int b) {
  hand::mlp net(h, b);
  const auto x = peers::uniform_pixels(std::size_t(b) * sweep::kIn, peers::kSeedTrain);
  std::copy(x.begin(), x.end(), net.input());
  const auto y = peers::cyclic_labels<int>(std::size_t(b));
  for (auto _ : state) benchmark::DoNotOptimize(net.train_step(y.data(), b));
  peers::set_samples(state, b);
}

void BM_infer(benchmark::State& state, int h, int b) {
  hand::mlp net(h, b);
  const auto x = peers::uniform_pixels(std::size_t(b) * sweep::kIn, peers::kSeedInfer);
  for (auto _ : state) {
    std::copy(x.begin(), x.end(), net.input());  // as graft's benchmark: copy in, then forward
    benchmark::DoNotOptimize(net.forward(b));
    benchmark::ClobberMemory();
  }
  peers::set_samples(state, b);
}

}  // namespace

int main(int argc, char** argv) {
  openblas_set_num_threads(1);
  for (const auto& p : sweep::kGrid)
    benchmark::RegisterBenchmark(sweep::name("train", p.h, p.b).c_str(), BM_train, p.h, p.b);
  for (const auto& p : sweep::kGrid)
    benchmark::RegisterBenchmark(sweep::name("infer", p.h, p.b).c_str(), BM_infer, p.h, p.b);
  benchmark::AddCustomContext("peer", OPENBLAS_VERSION);
  benchmark::AddCustomContext("peer_config", openblas_get_config());
  peers::report_openblas("bench_sweep_openblas");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
