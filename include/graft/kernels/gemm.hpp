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

template <std::size_t R, std::size_t N, class Arch, class T>
inline void bcast_rows(std::size_t P, const T* A, std::size_t rs, std::size_t cs, const T* B, T* C,
                       bool accumulate) noexcept {
  constexpr std::size_t W = xsimd::batch<T, Arch>::size;
  // Column ranges known while compiling: [0, N2) in pairs of vectors, [N2, N1) one vector, then
  // a scalar tail [N1, N).
  constexpr std::size_t N2 = N / (2 * W) * (2 * W);
  constexpr std::size_t N1 = N2 + (N - N2) / W * W;
  for (std::size_t n = 0; n < N2; n += 2 * W)
    bcast_panel<R, 2, N, Arch>(P, A, rs, cs, B, C, n, accumulate);
  if constexpr (N1 > N2) bcast_panel<R, 1, N, Arch>(P, A, rs, cs, B, C, N2, accumulate);
  if constexpr (N > N1)
    for (std::size_t n = N1; n < N; ++n)
      for (std::size_t r = 0; r < R; ++r) {
        T s = accumulate ? C[r * N + n] : T(0);
        for (std::size_t p = 0; p < P; ++p) s += A[r * rs + p * cs] * B[p * N + n];
        C[r * N + n] = s;
      }
}

}  // namespace detail

/// C[i][n] (+)= sum_p A[i*rs + p*cs] * B[p*N + n]  for i < I, n < N.
template <std::size_t N, class Arch = xsimd::default_arch, class T>
void gemm_bcast(std::size_t I, std::size_t P, const T* A, std::size_t rs, std::size_t cs,
                const T* B, T* C, bool accumulate) noexcept {
  constexpr std::size_t R = 6;  // 6 rows x 2 vectors = 12 accumulators: fits 16 AVX2 registers
  std::size_t i = 0;
  for (; i + R <= I; i += R)
    detail::bcast_rows<R, N, Arch>(P, A + i * rs, rs, cs, B, C + i * N, accumulate);
  for (; i < I; ++i)
    detail::bcast_rows<1, N, Arch>(P, A + i * rs, rs, cs, B, C + i * N, accumulate);
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
  std::size_t m = 0;
  for (; m + RM <= M; m += RM) {
    std::size_t k = 0;
    for (; k + RK <= K; k += RK) block.template operator()<RM, RK>(m, k);
    for (; k < K; ++k) block.template operator()<RM, 1>(m, k);
  }
  for (; m < M; ++m) {
    std::size_t k = 0;
    for (; k + RK <= K; k += RK) block.template operator()<1, RK>(m, k);
    for (; k < K; ++k) block.template operator()<1, 1>(m, k);
  }
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
