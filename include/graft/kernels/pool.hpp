// Pooling kernels on raw pointers: `planes` images of H x W each (row-major, one after another),
// windows of K x K with stride S, no padding, floor mode (HO = (H - K) / S + 1 rows of WO =
// (W - K) / S + 1 outputs per plane). Kernels know nothing of layers or xtensor; sizes are
// compile-time constants, the plane count a runtime one; one thread (the caller splits the planes).
//
//   max_pool, max_pool_backward : each window's first maximum (the lowest index; NaN wins, it
//        propagates), and the gradient sent to that element, the one the forward pass picked, so
//        ties are handled consistently. 2 x 2 windows with stride 2 take whole SIMD vectors on x86
//        with AVX2 (detail::max_pool2), bitwise the scalar rule;
//   avg_pool, avg_pool_backward : each window's mean;
//   global_avg_pool, global_avg_pool_backward : each plane's mean (HW elements).
#pragma once
#include <cstddef>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "graft/kernels/simd.hpp"

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE
namespace kernels {

namespace detail {

// 2 x 2 max pooling with stride 2 on whole SIMD vectors (x86 with AVX2, float or double): a vector
// of N outputs comes from 2N consecutive inputs of two rows, split into even and odd columns by
// lane permutations. The window's elements are visited in the scalar order (row 0: left, right;
// row 1: left, right) with the same rule, so the picked element is the scalar one, bit for bit.
// Rows of fewer than one vector of Arch's outputs take SSE vectors (half as wide). For an Arch
// derived from xsimd::avx2; on AVX-512 (xsimd 8's AVX-512 architectures derive from generic, not
// avx2, and its permutations here are AVX2's) with AVX2 vectors, which every AVX-512 CPU has:
// before, the scalar loops ran there.
#if XSIMD_WITH_AVX2
template <class T, class Arch>
inline constexpr bool max_pool2_simd = (std::is_same_v<T, float> || std::is_same_v<T, double>)&&(
    std::is_base_of_v<xsimd::avx2, Arch> || std::is_base_of_v<xsimd::avx512f, Arch>);
template <class Arch> using max_pool2_base = avx2_in_avx512<Arch>;
template <class T, std::size_t WO, class Arch> using max_pool2_arch =
    std::conditional_t<(WO >= xsimd::batch<T, max_pool2_base<Arch>>::size), max_pool2_base<Arch>,
                       xsimd::sse4_2>;
#else
template <class T, class Arch> inline constexpr bool max_pool2_simd = false;
template <class T, std::size_t WO, class Arch> using max_pool2_arch = Arch;
#endif
template <class Arch> struct max_pool2 {
  struct evens_first {  // a[0], a[2], ..., then a[1], a[3], ...
    static constexpr unsigned get(unsigned i, unsigned n) {
      return i < n / 2 ? 2 * i : 2 * (i - n / 2) + 1;
    }
  };
  struct odds_first {
    static constexpr unsigned get(unsigned i, unsigned n) {
      return i < n / 2 ? 2 * i + 1 : 2 * (i - n / 2);
    }
  };
  struct twice_low {  // a[0], a[0], a[1], a[1], ...
    static constexpr unsigned get(unsigned i, unsigned) { return i / 2; }
  };
  struct twice_high {
    static constexpr unsigned get(unsigned i, unsigned n) { return n / 2 + i / 2; }
  };
  struct low_half {
    static constexpr bool get(unsigned i, unsigned n) { return i < n / 2; }
  };
  struct even_lanes {
    static constexpr bool get(unsigned i, unsigned) { return i % 2 == 0; }
  };
  template <class T> using batch = xsimd::batch<T, Arch>;
  template <class T> using index_batch = xsimd::batch<xsimd::as_unsigned_integer_t<T>, Arch>;

  // e = p[0], p[2], ..., p[2N-2] and o = p[1], p[3], ..., p[2N-1].
  template <class T> static void split(const T* p, batch<T>& e, batch<T>& o) noexcept {
    using B = batch<T>;
    constexpr auto ef = xsimd::make_batch_constant<index_batch<T>, evens_first>();
    constexpr auto of = xsimd::make_batch_constant<index_batch<T>, odds_first>();
    constexpr auto lo = xsimd::make_batch_bool_constant<B, low_half>();
    const B a = B::load_unaligned(p), b = B::load_unaligned(p + B::size);
    e = xsimd::select(lo, xsimd::swizzle(a, ef), xsimd::swizzle(b, of));
    o = xsimd::select(lo, xsimd::swizzle(a, of), xsimd::swizzle(b, ef));
  }
  // The inverse: p[2i] = e[i], p[2i+1] = o[i].
  template <class T> static void merge(const batch<T>& e, const batch<T>& o, T* p) noexcept {
    constexpr auto tl = xsimd::make_batch_constant<index_batch<T>, twice_low>();
    constexpr auto th = xsimd::make_batch_constant<index_batch<T>, twice_high>();
    constexpr auto ev = xsimd::make_batch_bool_constant<batch<T>, even_lanes>();
    xsimd::select(ev, xsimd::swizzle(e, tl), xsimd::swizzle(o, tl)).store_unaligned(p);
    xsimd::select(ev, xsimd::swizzle(e, th), xsimd::swizzle(o, th))
        .store_unaligned(p + batch<T>::size);
  }
  // The window maxima for outputs [j, j + N) of the row pair r0, r1 = r0 + w, and which of the
  // four elements each picked (0..3 in scalar order).
  template <class T> static void window(const T* r0, std::size_t w, std::size_t j, batch<T>& v,
                                        batch<T>& which) noexcept {
    using B = batch<T>;
    B e[4];
    split(r0 + 2 * j, e[0], e[1]);
    split(r0 + w + 2 * j, e[2], e[3]);
    v = e[0];
    which = B(T(0));
    for (int k = 1; k < 4; ++k) {
      // NaN wins, as in argmax (xsimd's != is an ordered compare, false for NaN: isnan instead)
      const auto take = (e[k] > v) | (xsimd::isnan(e[k]) & (v == v));
      v = xsimd::select(take, e[k], v);
      which = xsimd::select(take, B(static_cast<T>(k)), which);
    }
  }
  // Starts of the vectors covering [0, wo) (the last one may overlap its predecessor: the
  // overlapping outputs are computed twice, identically).
  template <class T, class F> static void for_each_vector(std::size_t wo, F&& f) noexcept {
    constexpr std::size_t N = batch<T>::size;
    std::size_t j = 0;
    for (; j + N <= wo; j += N) f(j);
    if (j < wo) f(wo - N);
  }
};

// Windows of K x K, stride S, over one plane of width W, on scalars.
template <std::size_t H, std::size_t W, std::size_t K, std::size_t S> struct pool_geometry {
  static_assert(K > 0 && S > 0 && H >= K && W >= K,
                "graft: pooling needs a positive window and stride, and a plane at least as "
                "large as the window");
  static constexpr std::size_t HO = (H - K) / S + 1;
  static constexpr std::size_t WO = (W - K) / S + 1;
  // Index of the first maximum of the window at (oy, ox); NaN wins (it propagates). Written
  // without branches on the data (selects): with random signs, branches mispredict constantly.
  template <class T>
  static std::size_t argmax(const T* xc, std::size_t oy, std::size_t ox) noexcept {
    std::size_t best = oy * S * W + ox * S;
    T v = xc[best];
    for (std::size_t ky = 0; ky < K; ++ky)
      for (std::size_t kx = 0; kx < K; ++kx) {
        const std::size_t i = (oy * S + ky) * W + ox * S + kx;
        const T e = xc[i];
        const bool take = (e > v) | ((e != e) & (v == v));
        best = take ? i : best;
        v = take ? e : v;
      }
    return best;
  }
  // The value at argmax(xc, oy, ox).
  template <class T> static T window_max(const T* xc, std::size_t oy, std::size_t ox) noexcept {
    T v = xc[oy * S * W + ox * S];
    for (std::size_t ky = 0; ky < K; ++ky)
      for (std::size_t kx = 0; kx < K; ++kx) {
        const T e = xc[(oy * S + ky) * W + ox * S + kx];
        v = (e > v) | ((e != e) & (v == v)) ? e : v;
      }
    return v;
  }
};

// 2 x 2, stride 2, with at least one vector of outputs per row: whole SIMD vectors.
template <class T, std::size_t W, std::size_t K, std::size_t S, class Arch>
inline constexpr bool max_pool2_rows = [] {
  constexpr std::size_t WO = (W - K) / S + 1;
  if constexpr (K == 2 && S == 2 && max_pool2_simd<T, Arch>)
    return WO >= xsimd::batch<T, max_pool2_arch<T, WO, Arch>>::size;
  else
    return false;
}();

}  // namespace detail

/// y[p][oy][ox] = the first maximum of window (oy, ox) of plane p (NaN wins), p < planes.
template <std::size_t H, std::size_t W, std::size_t K, std::size_t S,
          class Arch = xsimd::default_arch, class T>
void max_pool(std::size_t planes, const T* x, T* y) noexcept {
  using g = detail::pool_geometry<H, W, K, S>;
  constexpr std::size_t HO = g::HO, WO = g::WO;
  if constexpr (detail::max_pool2_rows<T, W, K, S, Arch>) {
    using pool2 = detail::max_pool2<detail::max_pool2_arch<T, WO, Arch>>;
    for (std::size_t r = 0; r < planes; ++r)
      for (std::size_t oy = 0; oy < HO; ++oy) {
        const T* r0 = x + r * H * W + 2 * oy * W;
        T* yr = y + r * HO * WO + oy * WO;
        pool2::template for_each_vector<T>(WO, [&](std::size_t j) {
          typename pool2::template batch<T> v, which;
          pool2::window(r0, W, j, v, which);
          v.store_unaligned(yr + j);
        });
      }
  } else {
    for (std::size_t r = 0; r < planes; ++r) {
      const T* xc = x + r * H * W;
      T* yc = y + r * HO * WO;
      for (std::size_t oy = 0; oy < HO; ++oy)
        for (std::size_t ox = 0; ox < WO; ++ox) yc[oy * WO + ox] = g::window_max(xc, oy, ox);
    }
  }
}

/// dx = the gradient of max_pool: each dy[p][oy][ox] added to the element max_pool picked (to
/// zero: a -0 gradient lands as +0), zero elsewhere. dx is overwritten.
template <std::size_t H, std::size_t W, std::size_t K, std::size_t S,
          class Arch = xsimd::default_arch, class T>
void max_pool_backward(std::size_t planes, const T* x, const T* dy, T* dx) noexcept {
  using g = detail::pool_geometry<H, W, K, S>;
  constexpr std::size_t HO = g::HO, WO = g::WO;
  if constexpr (detail::max_pool2_rows<T, W, K, S, Arch>) {
    using pool2 = detail::max_pool2<detail::max_pool2_arch<T, WO, Arch>>;
    using B = typename pool2::template batch<T>;
    for (std::size_t r = 0; r < planes; ++r) {
      const T* xc = x + r * H * W;
      T* dxc = dx + r * H * W;
      for (std::size_t oy = 0; oy < HO; ++oy) {
        const T* dyr = dy + r * HO * WO + oy * WO;
        T* d0 = dxc + 2 * oy * W;
        pool2::template for_each_vector<T>(WO, [&](std::size_t j) {
          B v, which;
          pool2::window(xc + 2 * oy * W, W, j, v, which);
          const B gj = B(T(0)) + B::load_unaligned(dyr + j);  // as 0 += g (-0 lands as +0)
          const B z(T(0));
          pool2::merge(xsimd::select(which == B(T(0)), gj, z),
                       xsimd::select(which == B(T(1)), gj, z), d0 + 2 * j);
          pool2::merge(xsimd::select(which == B(T(2)), gj, z),
                       xsimd::select(which == B(T(3)), gj, z), d0 + W + 2 * j);
        });
        if constexpr (2 * WO < W) {
          d0[W - 1] = T(0);
          d0[2 * W - 1] = T(0);
        }
      }
      if constexpr (2 * HO < H)
        for (std::size_t i = (H - 1) * W; i < H * W; ++i) dxc[i] = T(0);
    }
  } else if constexpr (S == K) {
    // Windows do not overlap: every input element is written once (the gradient at the
    // window's first maximum, zero elsewhere and in the rows and columns no window covers).
    for (std::size_t r = 0; r < planes; ++r) {
      const T* xc = x + r * H * W;
      T* dxc = dx + r * H * W;
      const T* dyc = dy + r * HO * WO;
      for (std::size_t oy = 0; oy < HO; ++oy) {
        for (std::size_t ox = 0; ox < WO; ++ox) {
          const std::size_t best = g::argmax(xc, oy, ox);
          const T gj = T(0) + dyc[oy * WO + ox];  // as 0 += g: a -0 gradient lands as +0
          for (std::size_t ky = 0; ky < K; ++ky)
            for (std::size_t kx = 0; kx < K; ++kx) {
              const std::size_t i = (oy * S + ky) * W + ox * S + kx;
              dxc[i] = i == best ? gj : T(0);
            }
        }
        if constexpr (WO * S < W)
          for (std::size_t ky = 0; ky < K; ++ky)
            for (std::size_t ix = WO * S; ix < W; ++ix) dxc[(oy * S + ky) * W + ix] = T(0);
      }
      if constexpr (HO * S < H)
        for (std::size_t i = HO * S * W; i < H * W; ++i) dxc[i] = T(0);
    }
  } else {
    std::memset(dx, 0, planes * H * W * sizeof(T));
    for (std::size_t r = 0; r < planes; ++r) {
      const T* xc = x + r * H * W;
      T* dxc = dx + r * H * W;
      const T* dyc = dy + r * HO * WO;
      for (std::size_t oy = 0; oy < HO; ++oy)
        for (std::size_t ox = 0; ox < WO; ++ox) dxc[g::argmax(xc, oy, ox)] += dyc[oy * WO + ox];
    }
  }
}

/// y[p][oy][ox] = the sum of window (oy, ox) of plane p (row by row, from zero) / (K * K).
template <std::size_t H, std::size_t W, std::size_t K, std::size_t S, class T>
void avg_pool(std::size_t planes, const T* x, T* y) noexcept {
  using g = detail::pool_geometry<H, W, K, S>;
  constexpr std::size_t HO = g::HO, WO = g::WO;
  for (std::size_t r = 0; r < planes; ++r) {
    const T* xc = x + r * H * W;
    T* yc = y + r * HO * WO;
    for (std::size_t oy = 0; oy < HO; ++oy)
      for (std::size_t ox = 0; ox < WO; ++ox) {
        T s(0);
        for (std::size_t ky = 0; ky < K; ++ky)
          for (std::size_t kx = 0; kx < K; ++kx) s += xc[(oy * S + ky) * W + ox * S + kx];
        yc[oy * WO + ox] = s / static_cast<T>(K * K);
      }
  }
}

/// dx = the gradient of avg_pool: dy[p][oy][ox] / (K * K) added to each element of the window,
/// windows in order, to zero. dx is overwritten.
template <std::size_t H, std::size_t W, std::size_t K, std::size_t S, class T>
void avg_pool_backward(std::size_t planes, const T* dy, T* dx) noexcept {
  using g = detail::pool_geometry<H, W, K, S>;
  constexpr std::size_t HO = g::HO, WO = g::WO;
  std::memset(dx, 0, planes * H * W * sizeof(T));
  for (std::size_t r = 0; r < planes; ++r) {
    T* dxc = dx + r * H * W;
    const T* dyc = dy + r * HO * WO;
    for (std::size_t oy = 0; oy < HO; ++oy)
      for (std::size_t ox = 0; ox < WO; ++ox) {
        const T gj = dyc[oy * WO + ox];
        for (std::size_t ky = 0; ky < K; ++ky)
          for (std::size_t kx = 0; kx < K; ++kx)
            dxc[(oy * S + ky) * W + ox * S + kx] += gj / static_cast<T>(K * K);
      }
  }
}

/// y[p] = the sum of plane p's HW elements (in order, from zero) / HW.
template <std::size_t HW, class T>
void global_avg_pool(std::size_t planes, const T* x, T* y) noexcept {
  for (std::size_t r = 0; r < planes; ++r) {
    T s(0);
    for (std::size_t i = 0; i < HW; ++i) s += x[r * HW + i];
    y[r] = s / static_cast<T>(HW);
  }
}

/// dx[p][i] = dy[p] / HW for i < HW.
template <std::size_t HW, class T>
void global_avg_pool_backward(std::size_t planes, const T* dy, T* dx) noexcept {
  for (std::size_t r = 0; r < planes; ++r)
    for (std::size_t i = 0; i < HW; ++i) dx[r * HW + i] = dy[r] / static_cast<T>(HW);
}

}  // namespace kernels
GRAFT_END_NAMESPACE
