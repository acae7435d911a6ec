// Scalar reference kernels: the definition of what every SIMD kernel computes. Plain loops,
// row-major, no blocking; used by the kernel tests (and usable as a fallback anywhere).
#pragma once
#include <cstddef>

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE
namespace kernels::reference {

/// C[i][n] (+)= sum_p A(i,p) * B[p][n], where A(i,p) = A[i*rs + p*cs], B is P x N, C is I x N.
template <class T> void gemm_bcast(std::size_t I, std::size_t P, std::size_t N, const T* A,
                                   std::size_t rs, std::size_t cs, const T* B, T* C,
                                   bool accumulate) {
  for (std::size_t i = 0; i < I; ++i)
    for (std::size_t n = 0; n < N; ++n) {
      T s = accumulate ? C[i * N + n] : T(0);
      for (std::size_t p = 0; p < P; ++p) s += A[i * rs + p * cs] * B[p * N + n];
      C[i * N + n] = s;
    }
}

/// D[m][k] (+)= sum_n Y[m][n] * W[k][n]   (Y is M x N, W is K x N, D is M x K): D = Y * W^T.
template <class T> void gemm_dot(std::size_t M, std::size_t K, std::size_t N, const T* Y,
                                 const T* W, T* D, bool accumulate = false) {
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t k = 0; k < K; ++k) {
      T s = accumulate ? D[m * K + k] : T(0);
      for (std::size_t n = 0; n < N; ++n) s += Y[m * N + n] * W[k * N + n];
      D[m * K + k] = s;
    }
}

/// out[n] (+)= sum_m Y[m][n]  (column sums of an M x N matrix).
template <class T>
void column_sum(std::size_t M, std::size_t N, const T* Y, T* out, bool accumulate) {
  for (std::size_t n = 0; n < N; ++n) {
    T s = accumulate ? out[n] : T(0);
    for (std::size_t m = 0; m < M; ++m) s += Y[m * N + n];
    out[n] = s;
  }
}

/// out[m] (+)= sum_n Y[m][n]  (row sums of an M x N matrix).
template <class T> void row_sum(std::size_t M, std::size_t N, const T* Y, T* out, bool accumulate) {
  for (std::size_t m = 0; m < M; ++m) {
    T s = accumulate ? out[m] : T(0);
    for (std::size_t n = 0; n < N; ++n) s += Y[m * N + n];
    out[m] = s;
  }
}

}  // namespace kernels::reference
GRAFT_END_NAMESPACE
