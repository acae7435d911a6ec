// The sweep's grid, shared by its three programs (bench_sweep_graft, bench_sweep_torch,
// bench_sweep_openblas): the MLP 784-H-ReLU-H-ReLU-10 (softmax cross-entropy, SGD momentum 0.9,
// lr 0.01 as W1), its hidden width H swept at batch 64 and its batch B swept at H = 256, each
// point as a training step and as inference. Independent of graft (as bench/peers/peer_common.hpp,
// whose data generator, labels and OpenBLAS reporting it reuses), so that a peer's program only
// pays for its own library. The benchmark names are the same in the three programs:
//   sweep_train_h<H>_b<B>   one training step on B samples       (items/s = samples/s)
//   sweep_infer_h<H>_b<B>   copy B samples in, forward them      (items/s = samples/s)
// and, in graft's and the OpenBLAS program, the three products of the H x H layer at batch 64, the
// kernels that the whole-model figures come down to at large H (GFLOP/s counter):
//   sweep_gemm_fwd_h<H>_b64  Y = X W          [64 x H] = [64 x H] [H x H]
//   sweep_gemm_dw_h<H>_b64   dW = X^T dY      [H x H] = [64 x H]^T [64 x H]
//   sweep_gemm_dx_h<H>_b64   dX = dY W^T      [64 x H] = [64 x H] [H x H]^T
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "../peers/peer_common.hpp"

namespace sweep {

inline constexpr int kIn = peers::kIn, kOut = peers::kOut;

// The width sweep: H at batch kWidthBatch.
inline constexpr std::array<int, 6> kWidths{64, 128, 256, 512, 1024, 2048};
inline constexpr int kWidthBatch = 64;
// The batch sweep: B at width kBatchWidth (the point kBatchWidth/kWidthBatch is in both sweeps).
inline constexpr std::array<int, 5> kBatches{1, 4, 16, 64, 256};
inline constexpr int kBatchWidth = 256;

struct point {
  int h, b;
};

// Every point once: the widths at batch 64, then the other batches at width 256.
inline constexpr std::size_t kPoints = kWidths.size() + kBatches.size() - 1;
inline constexpr std::array<point, kPoints> kGrid = [] {
  std::array<point, kPoints> g{};
  std::size_t n = 0;
  for (int h : kWidths) g[n++] = {h, kWidthBatch};
  for (int b : kBatches)
    if (b != kWidthBatch) g[n++] = {kBatchWidth, b};
  return g;
}();
static_assert(
    [] {
      bool w = false, b = false;
      for (int h : kWidths) w = w || h == kBatchWidth;
      for (int x : kBatches) b = b || x == kWidthBatch;
      return w && b;
    }(),
    "the two sweeps share the point kBatchWidth/kWidthBatch");

inline constexpr std::array<const char*, 3> kProducts{"fwd", "dw", "dx"};
inline constexpr std::uint64_t kSeedA = peers::kSeedGemmA, kSeedB = peers::kSeedGemmB;

inline std::string name(const char* kind, int h, int b) {
  return std::string("sweep_") + kind + "_h" + std::to_string(h) + "_b" + std::to_string(b);
}

inline std::string gemm_name(const char* product, int h) {
  return std::string("sweep_gemm_") + product + "_h" + std::to_string(h) + "_b" +
         std::to_string(kWidthBatch);
}

}  // namespace sweep
