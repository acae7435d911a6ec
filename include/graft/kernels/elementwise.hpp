// Element-wise kernels on raw pointers, SIMD through xsimd. Kernels know nothing of layers or
// xtensor; the length n is a runtime count, Arch the instruction set (xsimd::default_arch).
//
//   relu, relu_grad, leaky_relu<Num, Den>, leaky_relu_grad<Num, Den> : the activations' maps, as
//              stateless functors on scalars and on SIMD batches (bitwise the same), so that they
//              also serve as GEMM epilogues (gemm.hpp: applied to a layer's sums in registers);
//              the _grad ones give the derivative from the output y = f(x);
//   map      : y[i] = f(x[i])            (an activation's forward);
//   map_grad : dx[i] = dy[i] * g(y[i])   (its backward, the derivative read from the output);
//   copy     : dst[i] = src[i]           (short rows: whole vectors, the last one overlapping);
//   add      : dst[i] += src[i];
//   all_finite : whether no p[i] is NaN or infinite (the trainer's checks of gradients and
//              updated parameters);
//   simd_width : the lanes of a vector of T.
#pragma once
#include <concepts>
#include <cstddef>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "graft/kernels/simd.hpp"

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE
namespace kernels {

/// The number of T in a SIMD vector of Arch; 1 where Arch has no vectors of T (types other than
/// float and double, double on armv7: the kernels here run on scalars only).
template <class T, class Arch = xsimd::default_arch> inline constexpr std::size_t simd_width = [] {
  if constexpr (vectorised<T, Arch>)
    return xsimd::batch<T, Arch>::size;
  else
    return std::size_t{1};
}();

/// F maps SIMD batches of T to batches: map and map_grad then run whole vectors, and only the tail
/// on scalars. A functor for scalars only (tanh, sigmoid) runs on scalars throughout.
template <class F, class T, class Arch = xsimd::default_arch>
concept maps_batches = vectorised<T, Arch> && requires(const F f, const xsimd::batch<T, Arch> b) {
  { f(b) } -> std::same_as<xsimd::batch<T, Arch>>;
};

/// max(x, 0), except that NaN propagates (x < 0 is false for NaN), as in PyTorch: a NaN input is
/// not silently zeroed.
struct relu {
  template <class V> V operator()(V x) const noexcept {
    if constexpr (std::is_arithmetic_v<V>)
      return x < V(0) ? V(0) : x;
    else
      return xsimd::select(x < V(0), V(0), x);
  }
};
/// relu's derivative from its output: 1 where y > 0, else 0.
struct relu_grad {
  template <class V> V operator()(V y) const noexcept {
    if constexpr (std::is_arithmetic_v<V>)
      return y > V(0) ? V(1) : V(0);
    else
      return xsimd::select(y > V(0), V(1), V(0));
  }
};
/// x for x >= 0, slope * x otherwise, with slope = Num / Den (integers: clang 14 does not take
/// floating-point template arguments), computed in double and rounded to the scalar type.
template <std::size_t Num, std::size_t Den> struct leaky_relu {
  static_assert(Den > 0, "graft: leaky_relu<Num, Den> needs Den > 0");
  static constexpr double slope = static_cast<double>(Num) / static_cast<double>(Den);
  template <class V> V operator()(V x) const noexcept {
    if constexpr (std::is_arithmetic_v<V>) {
      return x < V(0) ? static_cast<V>(slope) * x : x;
    } else {
      using T = typename V::value_type;
      return xsimd::select(x < V(0), V(static_cast<T>(slope)) * x, x);
    }
  }
};
/// leaky_relu's derivative from its output (a positive slope keeps the sign): 1 where y > 0, else
/// the slope.
template <std::size_t Num, std::size_t Den> struct leaky_relu_grad {
  static constexpr double slope = leaky_relu<Num, Den>::slope;
  template <class V> V operator()(V y) const noexcept {
    if constexpr (std::is_arithmetic_v<V>) {
      return y > V(0) ? V(1) : static_cast<V>(slope);
    } else {
      using T = typename V::value_type;
      return xsimd::select(y > V(0), V(T(1)), V(static_cast<T>(slope)));
    }
  }
};

/// y[i] = F{}(x[i]) for i < n: whole vectors (when F maps batches), then the scalar tail. With a
/// functor that is bitwise the same on batches and scalars (those above), every element is.
template <class F, class Arch = xsimd::default_arch, class T>
void map(std::size_t n, const T* x, T* y) noexcept {
  using batch = xsimd::batch<T, Arch>;
  std::size_t i = 0;
  if constexpr (maps_batches<F, T, Arch>)
    for (const std::size_t nv = n / batch::size * batch::size; i < nv; i += batch::size)
      F{}(batch::load_unaligned(x + i)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] = F{}(x[i]);
}

/// dx[i] = dy[i] * G{}(y[i]) for i < n: the backward pass of an element-wise map whose derivative
/// G reads its output y. Whole vectors (when G maps batches), then the scalar tail.
template <class G, class Arch = xsimd::default_arch, class T>
void map_grad(std::size_t n, const T* y, const T* dy, T* dx) noexcept {
  using batch = xsimd::batch<T, Arch>;
  std::size_t i = 0;
  if constexpr (maps_batches<G, T, Arch>)
    for (const std::size_t nv = n / batch::size * batch::size; i < nv; i += batch::size)
      (batch::load_unaligned(dy + i) * G{}(batch::load_unaligned(y + i))).store_unaligned(dx + i);
  for (; i < n; ++i) dx[i] = dy[i] * G{}(y[i]);
}

/// dst[i] = src[i] for i < n (src and dst do not overlap), by SIMD vectors, the last one
/// overlapping its predecessor when n is not a multiple of the width: short rows, for which a call
/// to memcpy costs more than the copy. Fewer than one vector: scalars.
template <class Arch = xsimd::default_arch, class T>
void copy(std::size_t n, const T* src, T* dst) noexcept {
  constexpr std::size_t V = simd_width<T, Arch>;
  if constexpr (V > 1) {
    using batch = xsimd::batch<T, Arch>;
    if (n >= V) {
      for (std::size_t i = 0; i + V < n; i += V)
        batch::load_unaligned(src + i).store_unaligned(dst + i);
      batch::load_unaligned(src + n - V).store_unaligned(dst + n - V);
      return;
    }
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
  // g++ 12 on 32-bit targets (armv7) turns this loop into memcpy and, inlined into a caller, warns
  // that n * sizeof(T) "exceeds maximum object size" and overlaps itself for an n it cannot bound
  // (false positives: src and dst do not overlap, n is the caller's count)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
  for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}

/// dst[i] = v for i < n (a plain loop: the compiler vectorises it or calls memset).
template <class T> void fill(std::size_t n, T v, T* dst) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = v;
}

/// dst[i] += src[i] for i < n: whole vectors, then a scalar tail (the same sum either way).
template <class Arch = xsimd::default_arch, class T>
void add(std::size_t n, const T* src, T* dst) noexcept {
  constexpr std::size_t V = simd_width<T, Arch>;
  std::size_t i = 0;
  if constexpr (V > 1) {
    using batch = xsimd::batch<T, Arch>;
    for (; i + V <= n; i += V)
      (batch::load_unaligned(dst + i) + batch::load_unaligned(src + i)).store_unaligned(dst + i);
  }
  for (; i < n; ++i) dst[i] += src[i];
#if defined(__GNUC__) && !defined(__clang__)
  // g++ 12 at -O3 (-O2 in a reduced case: tree-fre) reuses values of dst loaded before an earlier
  // call's vector stores to overlapping places (col2im's successive kx: wrong sums with 2-lane
  // double vectors, SSE2 and NEON). No code, only an order the compiler must keep.
  asm volatile("" ::: "memory");
#endif
}

/// Whether every p[i], i < n, is finite. x - x is 0 for a finite x and NaN for an infinite or NaN
/// one, so four vector sums of x - x stay 0 exactly when all are finite: a vectorised read pass
/// with no branch per element.
template <class Arch = xsimd::default_arch, class T>
bool all_finite(const T* p, std::size_t n) noexcept {
  if constexpr (!vectorised<T, Arch>) {
    T s = T(0);
    for (std::size_t i = 0; i < n; ++i) s += p[i] - p[i];
    return s == s;
  } else {
    using batch = xsimd::batch<T, Arch>;
    constexpr std::size_t V = batch::size;
    batch a[4] = {batch(T(0)), batch(T(0)), batch(T(0)), batch(T(0))};
    std::size_t i = 0;
    for (; i + 4 * V <= n; i += 4 * V)
      for (std::size_t j = 0; j < 4; ++j) {
        const batch v = batch::load_unaligned(p + i + j * V);
        a[j] += v - v;
      }
    for (; i + V <= n; i += V) {
      const batch v = batch::load_unaligned(p + i);
      a[0] += v - v;
    }
    alignas(Arch::alignment()) T lanes[V];
    ((a[0] + a[1]) + (a[2] + a[3])).store_aligned(lanes);
    T s = T(0);
    for (std::size_t k = 0; k < V; ++k) s += lanes[k];
    for (; i < n; ++i) s += p[i] - p[i];
    return s == s;  // false only when s is NaN
  }
}

}  // namespace kernels
GRAFT_END_NAMESPACE
