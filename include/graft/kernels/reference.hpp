// Scalar reference kernels: the definition of what every kernel computes (gemm.hpp, conv.hpp,
// pool.hpp, elementwise.hpp). Plain loops, row-major, no blocking, sizes at run time; used by the
// kernel tests (and usable as a fallback anywhere).
#pragma once
#include <cmath>
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
template <class T> void gemm_nt_packed(std::size_t M, std::size_t K, std::size_t N, const T* Y,
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

// --- convolution (kernels/conv.hpp): C x H x W images, K x K windows, stride S, zero padding P,
// HO = (H + 2P - K) / S + 1 rows of WO = (W + 2P - K) / S + 1 outputs.

/// The im2col matrix: col[(c*K + ky)*K + kx][oy*WO + ox] = x[c][oy*S + ky - P][ox*S + kx - P],
/// 0 outside the image; rows ld apart, columns [HO*WO, ld) left as they are.
template <class T> void im2col(std::size_t C, std::size_t H, std::size_t W, std::size_t K,
                               std::size_t S, std::size_t P, std::size_t ld, const T* x, T* col) {
  const std::size_t HO = (H + 2 * P - K) / S + 1, WO = (W + 2 * P - K) / S + 1;
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t ky = 0; ky < K; ++ky)
      for (std::size_t kx = 0; kx < K; ++kx)
        for (std::size_t oy = 0; oy < HO; ++oy)
          for (std::size_t ox = 0; ox < WO; ++ox) {
            const std::size_t iy = oy * S + ky, ix = ox * S + kx;  // padded coordinates
            const bool inside = iy >= P && iy < H + P && ix >= P && ix < W + P;
            col[((c * K + ky) * K + kx) * ld + oy * WO + ox] =
                inside ? x[(c * H + iy - P) * W + ix - P] : T(0);
          }
}

/// im2col's adjoint: dx (overwritten) = 0 + the matrix entries copied from each element, added
/// in the order of the matrix (row by row).
template <class T> void col2im(std::size_t C, std::size_t H, std::size_t W, std::size_t K,
                               std::size_t S, std::size_t P, std::size_t ld, const T* col, T* dx) {
  const std::size_t HO = (H + 2 * P - K) / S + 1, WO = (W + 2 * P - K) / S + 1;
  for (std::size_t i = 0; i < C * H * W; ++i) dx[i] = T(0);
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t ky = 0; ky < K; ++ky)
      for (std::size_t kx = 0; kx < K; ++kx)
        for (std::size_t oy = 0; oy < HO; ++oy)
          for (std::size_t ox = 0; ox < WO; ++ox) {
            const std::size_t iy = oy * S + ky, ix = ox * S + kx;
            if (iy >= P && iy < H + P && ix >= P && ix < W + P)
              dx[(c * H + iy - P) * W + ix - P] += col[((c * K + ky) * K + kx) * ld + oy * WO + ox];
          }
}

/// y[f][oy][ox] = b[f] + sum over (c, ky, kx) inside the image of
/// w[f][(c*K + ky)*K + kx] * x[c][oy*S + ky - P][ox*S + kx - P]  (F filters; b may be null: 0).
template <class T> void conv2d(std::size_t C, std::size_t H, std::size_t W, std::size_t F,
                               std::size_t K, std::size_t S, std::size_t P, const T* x, const T* w,
                               const T* b, T* y) {
  const std::size_t HO = (H + 2 * P - K) / S + 1, WO = (W + 2 * P - K) / S + 1;
  for (std::size_t f = 0; f < F; ++f)
    for (std::size_t oy = 0; oy < HO; ++oy)
      for (std::size_t ox = 0; ox < WO; ++ox) {
        T s = b != nullptr ? b[f] : T(0);
        for (std::size_t c = 0; c < C; ++c)
          for (std::size_t ky = 0; ky < K; ++ky)
            for (std::size_t kx = 0; kx < K; ++kx) {
              const std::size_t iy = oy * S + ky, ix = ox * S + kx;
              if (iy >= P && iy < H + P && ix >= P && ix < W + P)
                s += w[f * C * K * K + (c * K + ky) * K + kx] * x[(c * H + iy - P) * W + ix - P];
            }
        y[(f * HO + oy) * WO + ox] = s;
      }
}

// --- pooling (kernels/pool.hpp): `planes` planes of H x W, K x K windows, stride S, no padding,
// HO = (H - K) / S + 1 rows of WO = (W - K) / S + 1 outputs.

/// Index (in its plane) of the first maximum of window (oy, ox): an element replaces the best so
/// far when it is larger, or when it is NaN and the best is not (NaN wins).
template <class T> std::size_t window_argmax(std::size_t W, std::size_t K, std::size_t S,
                                             const T* xc, std::size_t oy, std::size_t ox) {
  std::size_t best = oy * S * W + ox * S;
  for (std::size_t ky = 0; ky < K; ++ky)
    for (std::size_t kx = 0; kx < K; ++kx) {
      const std::size_t i = (oy * S + ky) * W + ox * S + kx;
      if (xc[i] > xc[best] || (std::isnan(xc[i]) && !std::isnan(xc[best]))) best = i;
    }
  return best;
}

/// y = the window's first maximum.
template <class T> void max_pool(std::size_t planes, std::size_t H, std::size_t W, std::size_t K,
                                 std::size_t S, const T* x, T* y) {
  const std::size_t HO = (H - K) / S + 1, WO = (W - K) / S + 1;
  for (std::size_t r = 0; r < planes; ++r)
    for (std::size_t oy = 0; oy < HO; ++oy)
      for (std::size_t ox = 0; ox < WO; ++ox)
        y[(r * HO + oy) * WO + ox] = x[r * H * W + window_argmax(W, K, S, x + r * H * W, oy, ox)];
}

/// dx (overwritten) = 0 + each window's dy added at its first maximum, windows in order.
template <class T> void max_pool_backward(std::size_t planes, std::size_t H, std::size_t W,
                                          std::size_t K, std::size_t S, const T* x, const T* dy,
                                          T* dx) {
  const std::size_t HO = (H - K) / S + 1, WO = (W - K) / S + 1;
  for (std::size_t i = 0; i < planes * H * W; ++i) dx[i] = T(0);
  for (std::size_t r = 0; r < planes; ++r)
    for (std::size_t oy = 0; oy < HO; ++oy)
      for (std::size_t ox = 0; ox < WO; ++ox)
        dx[r * H * W + window_argmax(W, K, S, x + r * H * W, oy, ox)] +=
            dy[(r * HO + oy) * WO + ox];
}

/// y = (0 + the window's elements, row by row) / (K * K).
template <class T> void avg_pool(std::size_t planes, std::size_t H, std::size_t W, std::size_t K,
                                 std::size_t S, const T* x, T* y) {
  const std::size_t HO = (H - K) / S + 1, WO = (W - K) / S + 1;
  for (std::size_t r = 0; r < planes; ++r)
    for (std::size_t oy = 0; oy < HO; ++oy)
      for (std::size_t ox = 0; ox < WO; ++ox) {
        T s(0);
        for (std::size_t ky = 0; ky < K; ++ky)
          for (std::size_t kx = 0; kx < K; ++kx)
            s += x[r * H * W + (oy * S + ky) * W + ox * S + kx];
        y[(r * HO + oy) * WO + ox] = s / static_cast<T>(K * K);
      }
}

/// dx (overwritten) = 0 + dy / (K * K) of every window holding the element, windows in order.
template <class T> void avg_pool_backward(std::size_t planes, std::size_t H, std::size_t W,
                                          std::size_t K, std::size_t S, const T* dy, T* dx) {
  const std::size_t HO = (H - K) / S + 1, WO = (W - K) / S + 1;
  for (std::size_t i = 0; i < planes * H * W; ++i) dx[i] = T(0);
  for (std::size_t r = 0; r < planes; ++r)
    for (std::size_t oy = 0; oy < HO; ++oy)
      for (std::size_t ox = 0; ox < WO; ++ox)
        for (std::size_t ky = 0; ky < K; ++ky)
          for (std::size_t kx = 0; kx < K; ++kx)
            dx[r * H * W + (oy * S + ky) * W + ox * S + kx] +=
                dy[(r * HO + oy) * WO + ox] / static_cast<T>(K * K);
}

/// y[p] = (0 + plane p's hw elements in order) / hw.
template <class T> void global_avg_pool(std::size_t planes, std::size_t hw, const T* x, T* y) {
  for (std::size_t r = 0; r < planes; ++r) {
    T s(0);
    for (std::size_t i = 0; i < hw; ++i) s += x[r * hw + i];
    y[r] = s / static_cast<T>(hw);
  }
}

/// dx[p][i] = dy[p] / hw.
template <class T>
void global_avg_pool_backward(std::size_t planes, std::size_t hw, const T* dy, T* dx) {
  for (std::size_t r = 0; r < planes; ++r)
    for (std::size_t i = 0; i < hw; ++i) dx[r * hw + i] = dy[r] / static_cast<T>(hw);
}

// --- element-wise maps (kernels/elementwise.hpp).

/// y = x < 0 ? 0 : x  (NaN stays NaN).
template <class T> void relu(std::size_t n, const T* x, T* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
}
/// dx = dy * (y > 0 ? 1 : 0).
template <class T> void relu_grad(std::size_t n, const T* y, const T* dy, T* dx) {
  for (std::size_t i = 0; i < n; ++i) dx[i] = dy[i] * (y[i] > T(0) ? T(1) : T(0));
}
/// y = x < 0 ? slope * x : x.
template <class T> void leaky_relu(std::size_t n, T slope, const T* x, T* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = x[i] < T(0) ? slope * x[i] : x[i];
}
/// dx = dy * (y > 0 ? 1 : slope).
template <class T> void leaky_relu_grad(std::size_t n, T slope, const T* y, const T* dy, T* dx) {
  for (std::size_t i = 0; i < n; ++i) dx[i] = dy[i] * (y[i] > T(0) ? T(1) : slope);
}
/// dst += src.
template <class T> void add(std::size_t n, const T* src, T* dst) {
  for (std::size_t i = 0; i < n; ++i) dst[i] += src[i];
}

}  // namespace kernels::reference
GRAFT_END_NAMESPACE
