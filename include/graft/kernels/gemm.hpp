// Dense-layer products on raw pointers, SIMD through xsimd. Kernels know nothing of layers or
// xtensor; the column count N (and for gemm_dot, K) is a compile-time constant, the row count is
// the runtime batch size (a last, partial batch is a smaller M, not padding).
//
//   gemm_bcast : C = A * B       with A read through strides, so that X*W (forward) and X^T*dY
//                                (weight gradient) share one register-blocked micro-kernel;
//   gemm_dot   : D = Y * W^T     (input gradient) without materialising W^T;
//   column_sum : db = sum over rows of dY.
#pragma once
#include <cstddef>

#include <xsimd/xsimd.hpp>

#include "graft/kernels/parallel.hpp"

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE
namespace kernels {

namespace detail {

// R rows of C, one panel of V vectors of columns, starting at column n.
template <std::size_t R, std::size_t V, std::size_t N, class Arch, class T>
inline void bcast_panel(std::size_t P, const T* A, std::size_t rs, std::size_t cs, const T* B, T* C,
                        std::size_t n, bool accumulate) noexcept {
  using batch = xsimd::batch<T, Arch>;
  constexpr std::size_t W = batch::size;
  batch acc[R][V];
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t v = 0; v < V; ++v)
      acc[r][v] = accumulate ? batch::load_unaligned(C + r * N + n + v * W) : batch(T(0));
  for (std::size_t p = 0; p < P; ++p) {
    batch b[V];
    for (std::size_t v = 0; v < V; ++v) b[v] = batch::load_unaligned(B + p * N + n + v * W);
    for (std::size_t r = 0; r < R; ++r) {
      const batch a(A[r * rs + p * cs]);
      for (std::size_t v = 0; v < V; ++v) acc[r][v] = xsimd::fma(a, b[v], acc[r][v]);
    }
  }
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t v = 0; v < V; ++v) acc[r][v].store_unaligned(C + r * N + n + v * W);
}

// Every row of C in blocks of 6 (a remainder of 1..5 rows gets its own instantiation) for the
// column strip [n, n + V*W).
template <std::size_t V, std::size_t N, class Arch, class T>
inline void bcast_strip(std::size_t I, std::size_t P, const T* A, std::size_t rs, std::size_t cs,
                        const T* B, T* C, std::size_t n, bool accumulate) noexcept {
  constexpr std::size_t R = V <= 2 ? 6 : (V <= 4 ? 3 : 1);  // at most 12 accumulators
  std::size_t i = 0;
  for (; i + R <= I; i += R)
    bcast_panel<R, V, N, Arch>(P, A + i * rs, rs, cs, B, C + i * N, n, accumulate);
  const std::size_t rest = I - i;
  A += i * rs;
  C += i * N;
  if constexpr (R == 6) {
    switch (rest) {
      case 5:
        bcast_panel<5, V, N, Arch>(P, A, rs, cs, B, C, n, accumulate);
        break;
      case 4:
        bcast_panel<4, V, N, Arch>(P, A, rs, cs, B, C, n, accumulate);
        break;
      case 3:
        bcast_panel<3, V, N, Arch>(P, A, rs, cs, B, C, n, accumulate);
        break;
      case 2:
        bcast_panel<2, V, N, Arch>(P, A, rs, cs, B, C, n, accumulate);
        break;
      case 1:
        bcast_panel<1, V, N, Arch>(P, A, rs, cs, B, C, n, accumulate);
        break;
      default:
        break;
    }
  } else {
    switch (rest) {
      case 2:
        bcast_panel<2, V, N, Arch>(P, A, rs, cs, B, C, n, accumulate);
        break;
      case 1:
        bcast_panel<1, V, N, Arch>(P, A, rs, cs, B, C, n, accumulate);
        break;
      default:
        break;
    }
  }
}

// Columns of one block of P: strips [s0, s1) of V vectors; with tails, also the columns after
// the last full strip (single vectors, then scalars).
template <std::size_t V, std::size_t N, class Arch, class T>
inline void bcast_block(std::size_t I, std::size_t P, const T* A, std::size_t rs, std::size_t cs,
                        const T* B, T* C, bool accumulate, std::size_t s0, std::size_t s1,
                        bool tails) noexcept {
  constexpr std::size_t W = xsimd::batch<T, Arch>::size;
  // Column ranges known while compiling: [0, NV) in strips of V vectors, [NV, N1) one vector at a
  // time, then a scalar tail [N1, N).
  constexpr std::size_t NV = N / (V * W) * (V * W);
  constexpr std::size_t N1 = NV + (N - NV) / W * W;
  for (std::size_t s = s0; s < s1; ++s)
    bcast_strip<V, N, Arch>(I, P, A, rs, cs, B, C, s * V * W, accumulate);
  if (!tails) return;
  for (std::size_t n = NV; n < N1; n += W)
    bcast_strip<1, N, Arch>(I, P, A, rs, cs, B, C, n, accumulate);
  if constexpr (N > N1)
    for (std::size_t i = 0; i < I; ++i)
      for (std::size_t n = N1; n < N; ++n) {
        T s = accumulate ? C[i * N + n] : T(0);
        for (std::size_t p = 0; p < P; ++p) s += A[i * rs + p * cs] * B[p * N + n];
        C[i * N + n] = s;
      }
}

// Work (multiply-adds) below which a kernel stays on one thread.
inline constexpr std::size_t parallel_min_work = std::size_t{1} << 18;

}  // namespace detail

/// C[i][n] (+)= sum_p A[i*rs + p*cs] * B[p*N + n]  for i < I, n < N.
///
/// Register blocking: 6 rows x 2 vectors (12 accumulators). Cache blocking: P is cut into blocks
/// of 256 so that the strip of B being multiplied (256 x 2 vectors, 16 KiB in float) stays in L1
/// while every row block passes over it. One row (batch-1 inference) takes strips of 8 vectors,
/// two rows strips of 4: enough independent FMA chains to keep the loads from L2 busy. With
/// threads (GRAFT_OPENMP), large products split their column strips between threads.
template <std::size_t N, class Arch = xsimd::default_arch, class T>
void gemm_bcast(std::size_t I, std::size_t P, const T* A, std::size_t rs, std::size_t cs,
                const T* B, T* C, bool accumulate) noexcept {
  constexpr std::size_t W = xsimd::batch<T, Arch>::size;
  auto run = [&]<std::size_t V>(std::size_t kc_max) {
    constexpr std::size_t strips = N / (V * W);
    const std::size_t work = I * P * N;
    const std::size_t min_strips = work < detail::parallel_min_work ? strips + 1 : 1;
    parallel::for_range(strips, min_strips, [&](std::size_t s0, std::size_t s1) {
      for (std::size_t p0 = 0; p0 < P; p0 += kc_max) {
        const std::size_t kc = P - p0 < kc_max ? P - p0 : kc_max;
        detail::bcast_block<V, N, Arch>(I, kc, A + p0 * cs, rs, cs, B + p0 * N, C,
                                        accumulate || p0 > 0, s0, s1, s1 == strips);
      }
    });
  };
  if (I == 1)
    run.template operator()<8>(P);
  else if (I == 2)
    run.template operator()<4>(P);
  else
    run.template operator()<2>(256);
}

/// D[m][k] = sum_n Y[m*N + n] * W[k*N + n]  for m < M, k < K  (D = Y * W^T).
template <std::size_t K, std::size_t N, class Arch = xsimd::default_arch, class T>
void gemm_dot(std::size_t M, const T* Y, const T* W, T* D) noexcept {
  using batch = xsimd::batch<T, Arch>;
  constexpr std::size_t V = batch::size;
  constexpr std::size_t NV = N / V * V;
  constexpr std::size_t RM = 2, RK = 4;
  auto block = [&]<std::size_t BM, std::size_t BK>(std::size_t m0, std::size_t k0) {
    batch acc[BM][BK];
    for (std::size_t a = 0; a < BM; ++a)
      for (std::size_t b = 0; b < BK; ++b) acc[a][b] = batch(T(0));
    for (std::size_t n = 0; n < NV; n += V) {
      batch y[BM];
      for (std::size_t a = 0; a < BM; ++a) y[a] = batch::load_unaligned(Y + (m0 + a) * N + n);
      for (std::size_t b = 0; b < BK; ++b) {
        const batch w = batch::load_unaligned(W + (k0 + b) * N + n);
        for (std::size_t a = 0; a < BM; ++a) acc[a][b] = xsimd::fma(y[a], w, acc[a][b]);
      }
    }
    for (std::size_t a = 0; a < BM; ++a)
      for (std::size_t b = 0; b < BK; ++b) {
        T s = xsimd::hadd(acc[a][b]);
        if constexpr (N > NV)
          for (std::size_t n = NV; n < N; ++n) s += Y[(m0 + a) * N + n] * W[(k0 + b) * N + n];
        D[(m0 + a) * K + k0 + b] = s;
      }
  };
  // Threads (if any) take ranges of columns k of D, in whole blocks of RK.
  constexpr std::size_t kblocks = (K + RK - 1) / RK;
  const std::size_t min_blocks = M * K * N < detail::parallel_min_work ? kblocks + 1 : 1;
  parallel::for_range(kblocks, min_blocks, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t kb = b0; kb < b1; ++kb) {
      const std::size_t k = kb * RK;
      const bool full = k + RK <= K;
      std::size_t m = 0;
      for (; m + RM <= M; m += RM) {
        if (full)
          block.template operator()<RM, RK>(m, k);
        else
          for (std::size_t kk = k; kk < K; ++kk) block.template operator()<RM, 1>(m, kk);
      }
      for (; m < M; ++m) {
        if (full)
          block.template operator()<1, RK>(m, k);
        else
          for (std::size_t kk = k; kk < K; ++kk) block.template operator()<1, 1>(m, kk);
      }
    }
  });
}

/// out[n] (+)= sum_m Y[m*N + n]  (bias gradient).
template <std::size_t N, class T>
void column_sum(std::size_t M, const T* Y, T* out, bool accumulate) noexcept {
  if (!accumulate)
    for (std::size_t n = 0; n < N; ++n) out[n] = T(0);
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = 0; n < N; ++n) out[n] += Y[m * N + n];
}

}  // namespace kernels
GRAFT_END_NAMESPACE
