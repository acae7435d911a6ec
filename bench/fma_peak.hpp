// The single-core FMA peak on the native vector (xsimd's default architecture: 16 floats on
// AVX-512, 8 on AVX2, 4 on NEON), with kernels::fmadd, the fused instruction graft's kernels use
// (xsimd 8.1's own fma on AVX-512 is a multiply then an add, which reads half the peak on a core
// with two 512-bit FMA ports). The chains are independent, so that the FMA units never wait: a
// core needs ports x latency of them in flight (2 x 4 on Skylake-X, Ice Lake and Zen 4, 2 x 5 on
// Haswell and Zen 2); 16 on targets with 32 vector registers (AVX-512, AArch64), 12 where there
// are 16 (AVX2, SSE), so that the accumulators and the two operands stay in registers.
// Shared by bench_mlp (W5_fma_peak) and the size sweep (sweep_fma_peak).
#pragma once
#include <benchmark/benchmark.h>

#include <string>

#include <graft/kernels/simd.hpp>

namespace graft_bench {
inline void fma_peak(benchmark::State& state) {
  using batch = xsimd::batch<float>;
#if defined(__AVX512F__) || defined(__aarch64__)
  constexpr int chains = 16;
#else
  constexpr int chains = 12;
#endif
  batch acc[chains];
  for (int i = 0; i < chains; ++i) acc[i] = batch(static_cast<float>(i));
  const batch x(0.999999f), y(1e-7f);
  for (auto _ : state) {
    for (int r = 0; r < 1000; ++r)
      for (int i = 0; i < chains; ++i) acc[i] = graft::kernels::fmadd(acc[i], x, y);
    benchmark::DoNotOptimize(acc);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * batch::size * chains * 1000 * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  state.SetLabel(std::string(xsimd::default_arch::name()) + ", " + std::to_string(batch::size) +
                 " floats x " + std::to_string(chains) + " chains");
}
}  // namespace graft_bench
