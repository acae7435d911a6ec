// Pooling over CHW images: max_pool<K, S>, avg_pool<K, S> (window K x K, stride S, default K, no
// padding, floor mode) and global_avg_pool (C x H x W -> C). max_pool sends the gradient to the
// first maximum of each window (the lowest index), the same element its forward pass picked, so
// ties are handled consistently.
#pragma once
#include <array>
#include <cstddef>
#include <cstring>
#include <string>

#include "graft/layers/layer.hpp"

GRAFT_BEGIN_NAMESPACE

namespace detail {
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

  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < C; ++c) {
        const T* xc = x + (r * C + c) * H * W;
        T* yc = y + (r * C + c) * HO * WO;
        for (std::size_t oy = 0; oy < HO; ++oy)
          for (std::size_t ox = 0; ox < WO; ++ox) {
            if constexpr (Max)
              yc[oy * WO + ox] = xc[argmax(xc, oy, ox)];
            else {
              T s(0);
              for (std::size_t ky = 0; ky < K; ++ky)
                for (std::size_t kx = 0; kx < K; ++kx) s += xc[(oy * S + ky) * W + ox * S + kx];
              yc[oy * WO + ox] = s / static_cast<T>(K * K);
            }
          }
      }
  }
  template <bool InputGrad, unsigned> void backward(const T* x, const T*, const T* dy, T* dx,
                                                    T* const*, std::size_t rows) const noexcept {
    if constexpr (InputGrad) {
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

 private:
  // Index of the first maximum of the window at (oy, ox); NaN wins (it propagates).
  static std::size_t argmax(const T* xc, std::size_t oy, std::size_t ox) noexcept {
    std::size_t best = oy * S * W + ox * S;
    for (std::size_t ky = 0; ky < K; ++ky)
      for (std::size_t kx = 0; kx < K; ++kx) {
        const std::size_t i = (oy * S + ky) * W + ox * S + kx;
        if (xc[i] > xc[best] || (xc[i] != xc[i] && xc[best] == xc[best])) best = i;
      }
    return best;
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
