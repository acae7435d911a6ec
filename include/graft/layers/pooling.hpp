// Pooling over CHW images: max_pool<K, S>, avg_pool<K, S> (window K x K, stride S, default K, no
// padding, floor mode) and global_avg_pool (C x H x W -> C). max_pool sends the gradient to the
// first maximum of each window (the lowest index), the same element its forward pass picked, so
// ties are handled consistently.
#pragma once
#include <array>
#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "graft/kernels/parallel.hpp"
#include "graft/layers/layer.hpp"

GRAFT_BEGIN_NAMESPACE

namespace detail {

// 2 x 2 max pooling with stride 2 on whole SIMD vectors (x86 with AVX2, float or double): a vector
// of N outputs comes from 2N consecutive inputs of two rows, split into even and odd columns by
// lane permutations. The window's elements are visited in the scalar order (row 0: left, right;
// row 1: left, right) with the same rule, so the picked element is the scalar one, bit for bit.
// Rows of fewer than one AVX vector of outputs take SSE vectors (half as wide).
#if XSIMD_WITH_AVX2
template <class T> inline constexpr bool max_pool2_simd =
    (std::is_same_v<T, float> ||
     std::is_same_v<T, double>)&&std::is_base_of_v<xsimd::avx2, xsimd::default_arch>;
template <class T, std::size_t WO> using max_pool2_arch =
    std::conditional_t<(WO >= xsimd::batch<T, xsimd::default_arch>::size), xsimd::default_arch,
                       xsimd::sse4_2>;
#else
template <class T> inline constexpr bool max_pool2_simd = false;
template <class T, std::size_t WO> using max_pool2_arch = xsimd::default_arch;
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
template <class T, std::size_t C, std::size_t H, std::size_t W, std::size_t K, std::size_t S,
          bool Max>
class pool2d_layer : public without_parameters<T> {
 public:
  static constexpr std::size_t HO = (H - K) / S + 1;
  static constexpr std::size_t WO = (W - K) / S + 1;
  using scalar = T;
  using input_shape = shape<C, H, W>;
  using output_shape = shape<C, HO, WO>;

  static std::string name() {
    return std::string(Max ? "max_pool<" : "avg_pool<") + std::to_string(K) + "," +
           std::to_string(S) + ">";
  }

  // 2 x 2, stride 2, with at least one vector of outputs per row: whole SIMD vectors.
  static constexpr bool simd2 = [] {
    if constexpr (Max && K == 2 && S == 2 && max_pool2_simd<T>)
      return WO >= xsimd::batch<T, max_pool2_arch<T, WO>>::size;
    else
      return false;
  }();
  using pool2 = max_pool2<max_pool2_arch<T, WO>>;

  // Samples are independent: with threads, they are split between them.
  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    parallel::for_rows(rows, input_shape::size, [&](std::size_t b, std::size_t e) {
      forward_rows(x + b * input_shape::size, y + b * output_shape::size, e - b);
    });
  }
  template <bool InputGrad, unsigned> void backward(const T* x, const T*, const T* dy, T* dx,
                                                    T* const*, std::size_t rows) const noexcept {
    if constexpr (InputGrad)
      parallel::for_rows(rows, input_shape::size, [&](std::size_t b, std::size_t e) {
        backward_rows(x + b * input_shape::size, dy + b * output_shape::size,
                      dx + b * input_shape::size, e - b);
      });
  }

 private:
  void forward_rows(const T* x, T* y, std::size_t rows) const noexcept {
    if constexpr (simd2) {
      for (std::size_t r = 0; r < rows * C; ++r)
        for (std::size_t oy = 0; oy < HO; ++oy) {
          const T* r0 = x + r * H * W + 2 * oy * W;
          T* yr = y + r * HO * WO + oy * WO;
          pool2::template for_each_vector<T>(WO, [&](std::size_t j) {
            typename pool2::template batch<T> v, which;
            pool2::window(r0, W, j, v, which);
            v.store_unaligned(yr + j);
          });
        }
      return;
    }
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < C; ++c) {
        const T* xc = x + (r * C + c) * H * W;
        T* yc = y + (r * C + c) * HO * WO;
        for (std::size_t oy = 0; oy < HO; ++oy)
          for (std::size_t ox = 0; ox < WO; ++ox) {
            if constexpr (Max)
              yc[oy * WO + ox] = window_max(xc, oy, ox);
            else {
              T s(0);
              for (std::size_t ky = 0; ky < K; ++ky)
                for (std::size_t kx = 0; kx < K; ++kx) s += xc[(oy * S + ky) * W + ox * S + kx];
              yc[oy * WO + ox] = s / static_cast<T>(K * K);
            }
          }
      }
  }
  void backward_rows(const T* x, const T* dy, T* dx, std::size_t rows) const noexcept {
    if constexpr (simd2) {
      using B = typename pool2::template batch<T>;
      for (std::size_t r = 0; r < rows * C; ++r) {
        const T* xc = x + r * H * W;
        T* dxc = dx + r * H * W;
        for (std::size_t oy = 0; oy < HO; ++oy) {
          const T* dyr = dy + r * HO * WO + oy * WO;
          T* d0 = dxc + 2 * oy * W;
          pool2::template for_each_vector<T>(WO, [&](std::size_t j) {
            B v, which;
            pool2::window(xc + 2 * oy * W, W, j, v, which);
            const B g = B(T(0)) + B::load_unaligned(dyr + j);  // as 0 += g (-0 lands as +0)
            const B z(T(0));
            pool2::merge(xsimd::select(which == B(T(0)), g, z),
                         xsimd::select(which == B(T(1)), g, z), d0 + 2 * j);
            pool2::merge(xsimd::select(which == B(T(2)), g, z),
                         xsimd::select(which == B(T(3)), g, z), d0 + W + 2 * j);
          });
          if constexpr (2 * WO < W) {
            d0[W - 1] = T(0);
            d0[2 * W - 1] = T(0);
          }
        }
        if constexpr (2 * HO < H)
          for (std::size_t i = (H - 1) * W; i < H * W; ++i) dxc[i] = T(0);
      }
    } else if constexpr (Max && S == K) {
      // Windows do not overlap: every input element is written once (the gradient at the
      // window's first maximum, zero elsewhere and in the rows and columns no window covers).
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < C; ++c) {
          const T* xc = x + (r * C + c) * H * W;
          T* dxc = dx + (r * C + c) * H * W;
          const T* dyc = dy + (r * C + c) * HO * WO;
          for (std::size_t oy = 0; oy < HO; ++oy) {
            for (std::size_t ox = 0; ox < WO; ++ox) {
              const std::size_t best = argmax(xc, oy, ox);
              const T g = T(0) + dyc[oy * WO + ox];  // as 0 += g: a -0 gradient lands as +0
              for (std::size_t ky = 0; ky < K; ++ky)
                for (std::size_t kx = 0; kx < K; ++kx) {
                  const std::size_t i = (oy * S + ky) * W + ox * S + kx;
                  dxc[i] = i == best ? g : T(0);
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
      std::memset(dx, 0, rows * input_shape::size * sizeof(T));
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < C; ++c) {
          const T* xc = x + (r * C + c) * H * W;
          T* dxc = dx + (r * C + c) * H * W;
          const T* dyc = dy + (r * C + c) * HO * WO;
          for (std::size_t oy = 0; oy < HO; ++oy)
            for (std::size_t ox = 0; ox < WO; ++ox) {
              const T g = dyc[oy * WO + ox];
              if constexpr (Max)
                dxc[argmax(xc, oy, ox)] += g;
              else
                for (std::size_t ky = 0; ky < K; ++ky)
                  for (std::size_t kx = 0; kx < K; ++kx)
                    dxc[(oy * S + ky) * W + ox * S + kx] += g / static_cast<T>(K * K);
            }
        }
    }
  }

  // Index of the first maximum of the window at (oy, ox); NaN wins (it propagates). Written
  // without branches on the data (selects): with random signs, branches mispredict constantly.
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
  static T window_max(const T* xc, std::size_t oy, std::size_t ox) noexcept {
    T v = xc[oy * S * W + ox * S];
    for (std::size_t ky = 0; ky < K; ++ky)
      for (std::size_t kx = 0; kx < K; ++kx) {
        const T e = xc[(oy * S + ky) * W + ox * S + kx];
        v = (e > v) | ((e != e) & (v == v)) ? e : v;
      }
    return v;
  }
};

template <bool Max, std::size_t K, std::size_t S> struct pool2d_spec {
  static_assert(K > 0 && S > 0, "graft: pooling needs a positive window and stride");
  using expects =
      diagnostics::expects_a_channels_x_height_x_width_image_at_least_as_large_as_the_window;
  template <class In> static constexpr bool accepts_impl() {
    if constexpr (Shape<In> && In::rank == 3)
      return In::dims[1] >= K && In::dims[2] >= K;
    else
      return false;
  }
  template <class In> static constexpr bool accepts = accepts_impl<In>();
  template <class T, class In> using bind =
      pool2d_layer<T, In::dims[0], In::dims[1], In::dims[2], K, S, Max>;
};
}  // namespace detail

/// Max over K x K windows, stride S (default K).
template <std::size_t K, std::size_t S = K> struct max_pool : detail::pool2d_spec<true, K, S> {};
/// Mean over K x K windows, stride S (default K).
template <std::size_t K, std::size_t S = K> struct avg_pool : detail::pool2d_spec<false, K, S> {};

template <class T, std::size_t C, std::size_t H, std::size_t W> class global_avg_pool_layer
    : public without_parameters<T> {
 public:
  static constexpr std::size_t HW = H * W;
  using scalar = T;
  using input_shape = shape<C, H, W>;
  using output_shape = shape<C>;
  static std::string name() { return "global_avg_pool"; }
  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    for (std::size_t r = 0; r < rows * C; ++r) {
      T s(0);
      for (std::size_t i = 0; i < HW; ++i) s += x[r * HW + i];
      y[r] = s / static_cast<T>(HW);
    }
  }
  template <bool InputGrad, unsigned> void backward(const T*, const T*, const T* dy, T* dx,
                                                    T* const*, std::size_t rows) const noexcept {
    if constexpr (InputGrad)
      for (std::size_t r = 0; r < rows * C; ++r)
        for (std::size_t i = 0; i < HW; ++i) dx[r * HW + i] = dy[r] / static_cast<T>(HW);
  }
};

/// Mean over each channel's whole image: C x H x W -> C.
struct global_avg_pool {
  using expects =
      diagnostics::expects_a_channels_x_height_x_width_image_at_least_as_large_as_the_window;
  template <class In> static constexpr bool accepts_impl() {
    if constexpr (Shape<In>)
      return In::rank == 3;
    else
      return false;
  }
  template <class In> static constexpr bool accepts = accepts_impl<In>();
  template <class T, class In> using bind =
      global_avg_pool_layer<T, In::dims[0], In::dims[1], In::dims[2]>;
};

GRAFT_END_NAMESPACE
