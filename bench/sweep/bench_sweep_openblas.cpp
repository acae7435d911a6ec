// The sweep (sweep_common.hpp) as a hand-written MLP on OpenBLAS (hand_mlp.hpp, the MLP of
// bench/peers/bench_peer_openblas.cpp with run-time widths), pinned to one thread.
//   sweep_train_h<H>_b<B>  one SGD-momentum step (lr 0.01, momentum 0.9) on B samples
//   sweep_infer_h<H>_b<B>  copy B samples in, forward them (sgemv for one row, sgemm otherwise)
//   sweep_gemm_<fwd|dw|dx>_h<H>_b64  the H x H layer's products at batch 64, cblas_sgemm as the
//                          hand MLP calls it
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

// The H x H layer's products at batch M = 64, as hand::dense calls them.
void BM_gemm(benchmark::State& state, int h, int product) {
  const int m = sweep::kWidthBatch;
  auto x = peers::uniform_pixels(std::size_t(m) * h, sweep::kSeedA);
  auto w = peers::uniform_pixels(std::size_t(h) * h, sweep::kSeedB);
  auto y = peers::uniform_pixels(std::size_t(m) * h, sweep::kSeedB);
  for (auto _ : state) {
    if (product == 0)  // Y = X W
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, h, h, 1.0f, x.data(), h, w.data(),
                  h, 0.0f, y.data(), h);
    else if (product == 1)  // dW = X^T dY
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h, h, m, 1.0f, x.data(), h, y.data(), h,
                  0.0f, w.data(), h);
    else  // dX = dY W^T
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, h, h, 1.0f, y.data(), h, w.data(), h,
                  0.0f, x.data(), h);
    benchmark::DoNotOptimize(x.data());
    benchmark::DoNotOptimize(w.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  peers::set_gflops(state, m, h, h);
}

}  // namespace

int main(int argc, char** argv) {
  openblas_set_num_threads(1);
  for (const auto& p : sweep::kGrid)
    benchmark::RegisterBenchmark(sweep::name("train", p.h, p.b).c_str(), BM_train, p.h, p.b);
  for (const auto& p : sweep::kGrid)
    benchmark::RegisterBenchmark(sweep::name("infer", p.h, p.b).c_str(), BM_infer, p.h, p.b);
  for (int p = 0; p < 3; ++p)
    for (int h : sweep::kWidths)
      benchmark::RegisterBenchmark(sweep::gemm_name(sweep::kProducts[p], h).c_str(), BM_gemm, h, p);
  benchmark::AddCustomContext("peer", OPENBLAS_VERSION);
  benchmark::AddCustomContext("peer_config", openblas_get_config());
  peers::report_openblas("bench_sweep_openblas");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
