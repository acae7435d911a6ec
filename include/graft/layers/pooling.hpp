// Pooling over CHW images: max_pool<K, S>, avg_pool<K, S> (window K x K, stride S, default K, no
// padding, floor mode) and global_avg_pool (C x H x W -> C), by the kernels of kernels/pool.hpp
// (each channel of each sample a plane). max_pool sends the gradient to the first maximum of each
// window (the lowest index), the same element its forward pass picked, so ties are handled
// consistently.
#pragma once
#include <cstddef>
#include <string>

#include "graft/kernels/parallel.hpp"
#include "graft/kernels/pool.hpp"
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

  // Samples are independent: with threads, they are split between them.
  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    parallel::for_rows(rows, input_shape::size, [&](std::size_t b, std::size_t e) {
      const T* xb = x + b * input_shape::size;
      T* yb = y + b * output_shape::size;
      if constexpr (Max)
        kernels::max_pool<H, W, K, S>((e - b) * C, xb, yb);
      else
        kernels::avg_pool<H, W, K, S>((e - b) * C, xb, yb);
    });
  }
  template <bool InputGrad, unsigned> void backward(const T* x, const T*, const T* dy, T* dx,
                                                    T* const*, std::size_t rows) const noexcept {
    if constexpr (InputGrad)
      parallel::for_rows(rows, input_shape::size, [&](std::size_t b, std::size_t e) {
        const T* dyb = dy + b * output_shape::size;
        T* dxb = dx + b * input_shape::size;
        if constexpr (Max)
          kernels::max_pool_backward<H, W, K, S>((e - b) * C, x + b * input_shape::size, dyb, dxb);
        else
          kernels::avg_pool_backward<H, W, K, S>((e - b) * C, dyb, dxb);
      });
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
    kernels::global_avg_pool<HW>(rows * C, x, y);
  }
  template <bool InputGrad, unsigned> void backward(const T*, const T*, const T* dy, T* dx,
                                                    T* const*, std::size_t rows) const noexcept {
    if constexpr (InputGrad) kernels::global_avg_pool_backward<HW>(rows * C, dy, dx);
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
