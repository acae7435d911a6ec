// Scalar reference kernels: the definition of what every kernel computes (gemm.hpp, conv.hpp,
// pool.hpp, elementwise.hpp), bit for bit: the same operations in the same order, so that a kernel
// equals its reference exactly on every instruction set (tests/test_kernels.cpp). Plain loops,
// row-major, no blocking, sizes at run time; usable as a fallback anywhere.
//
// The orders: a GEMM element is one chain of math::fmadd over the inner index, ascending, from C
// (accumulate) or 0; a dot product (gemm_nt_dots) and a row sum accumulate element n in lane
// n % L of L = 64 / sizeof(T) lanes (16 floats, 8 doubles), sum the lanes by halves, then add the
// elements past the last whole L one at a time (lane_dot, lane_sum below).
#pragma once
#include <cmath>
#include <cstddef>

#include "graft/numeric/math.hpp"

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
      for (std::size_t p = 0; p < P; ++p) s = math::fmadd(A[i * rs + p * cs], B[p * N + n], s);
      C[i * N + n] = s;
    }
}

/// D[m][k] (+)= sum_n Y[m][n] * W[k][n]   (Y is M x N, W is K x N, D is M x K): D = Y * W^T.
template <class T> void gemm_nt_packed(std::size_t M, std::size_t K, std::size_t N, const T* Y,
                                       const T* W, T* D, bool accumulate = false) {
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t k = 0; k < K; ++k) {
      T s = accumulate ? D[m * K + k] : T(0);
      for (std::size_t n = 0; n < N; ++n) s = math::fmadd(Y[m * N + n], W[k * N + n], s);
      D[m * K + k] = s;
    }
}

namespace detail {
inline constexpr std::size_t max_lanes = 16;
// The L lanes summed by halves: l[i] += l[i + w] for w = L/2, L/4, ..., 1; the sum is l[0].
template <class T> T halves(T* l, std::size_t L) {
  for (std::size_t w = L / 2; w > 0; w /= 2)
    for (std::size_t i = 0; i < w; ++i) l[i] += l[i + w];
  return l[0];
}
}  // namespace detail

/// sum_n y[n] * x[n] in the lane order (kernels::wide): y[n] * x[n] fmadd-ed into lane n % L for
/// n below the last multiple of L, the lanes summed by halves, then the rest fmadd-ed one by one.
template <class T> T lane_dot(std::size_t N, const T* y, const T* x) {
  constexpr std::size_t L = 64 / sizeof(T);
  T l[detail::max_lanes] = {};
  const std::size_t NL = N / L * L;
  for (std::size_t n = 0; n < NL; ++n) l[n % L] = math::fmadd(y[n], x[n], l[n % L]);
  T s = detail::halves(l, L);
  for (std::size_t n = NL; n < N; ++n) s = math::fmadd(y[n], x[n], s);
  return s;
}

/// D[m][k] (+)= lane_dot(Y[m], W[k]): D = Y * W^T by dot products, each added to D (accumulate)
/// after it is complete.
template <class T> void gemm_nt_dots(std::size_t M, std::size_t K, std::size_t N, const T* Y,
                                     const T* W, T* D, bool accumulate = false) {
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t k = 0; k < K; ++k) {
      const T s = lane_dot(N, Y + m * N, W + k * N);
      D[m * K + k] = accumulate ? D[m * K + k] + s : s;
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

/// out[m] (+)= sum_n Y[m][n]  (row sums of an M x N matrix), each row in two sets of L lanes:
/// stretch c of L elements (c = n / L, below the last multiple of L) into set c % 2, lane n % L;
/// the second set added to the first lane by lane, the lanes summed by halves, then the rest added
/// one by one; the sum added to out (accumulate) once complete.
template <class T> void row_sum(std::size_t M, std::size_t N, const T* Y, T* out, bool accumulate) {
  constexpr std::size_t L = 64 / sizeof(T);
  const std::size_t NL = N / L * L;
  for (std::size_t m = 0; m < M; ++m) {
    const T* y = Y + m * N;
    T a[2][detail::max_lanes] = {};
    for (std::size_t n = 0; n < NL; ++n) a[(n / L) % 2][n % L] += y[n];
    for (std::size_t i = 0; i < L; ++i) a[0][i] += a[1][i];
    T s = detail::halves(a[0], L);
    for (std::size_t n = NL; n < N; ++n) s += y[n];
    out[m] = accumulate ? out[m] + s : s;
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

/// y[f][oy][ox] = b[f] + sum over (c, ky, kx) of w[f][(c*K + ky)*K + kx] *
/// x[c][oy*S + ky - P][ox*S + kx - P] (0 outside the image): one fmadd chain from b[f] (or 0 when
/// b is null) in that order, the padding's zero terms included, as im2col + gemm_bcast compute it.
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
              const bool inside = iy >= P && iy < H + P && ix >= P && ix < W + P;
              s = math::fmadd(w[f * C * K * K + (c * K + ky) * K + kx],
                              inside ? x[(c * H + iy - P) * W + ix - P] : T(0), s);
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
