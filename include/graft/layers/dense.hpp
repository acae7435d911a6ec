// dense<N>: fully connected layer, y = x W + b, with W stored in x N (row-major, "K x N").
#pragma once
#include <array>
#include <cstddef>
#include <string>

#include "graft/kernels/gemm.hpp"
#include "graft/layers/init.hpp"
#include "graft/layers/layer.hpp"
#include "graft/tensor/tensor.hpp"

GRAFT_BEGIN_NAMESPACE

template <class T, std::size_t K, std::size_t N, class Init> class dense_layer {
 public:
  using scalar = T;
  using input_shape = shape<K>;
  using output_shape = shape<N>;
  static constexpr std::size_t parameter_count = K * N + N;
  static constexpr std::array<param_desc, 2> params{
      {{K * N, role::weight, param_tag::dense}, {N, role::bias, param_tag::dense}}};

  tensor<T, K, N> weight;  ///< weight(k, n): input k to output n
  tensor<T, N> bias;

  static std::string name() { return "dense<" + std::to_string(N) + ">"; }

  T* param(std::size_t j) noexcept { return j == 0 ? weight.data() : bias.data(); }
  const T* param(std::size_t j) const noexcept { return j == 0 ? weight.data() : bias.data(); }

  void init(splitmix64& rng) {
    Init::weight(weight.data(), K * N, K, N, rng);
    Init::bias(bias.data(), N, K, N, rng);
  }

  /// y[rows x N] = x[rows x K] * W + b
  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    forward_fused<kernels::identity>(x, y, rows);
  }
  /// y = Epi(x W + b): the activation after this layer, applied in the product's output pass.
  /// (backward never reads y, so the pre-activation need not exist.)
  template <class Epi> void forward_fused(const T* x, T* y, std::size_t rows) const noexcept {
    const T* p[2] = {weight.data(), bias.data()};
    forward_fused_from<Epi>(p, nullptr, x, y, rows, nullptr);
  }
  /// The same from constant parameters p (weight, bias) read in place (a constant_model: weights
  /// compiled into the program).
  static void forward_from(const T* const* p, const T* const* b, const T* x, T* y, std::size_t rows,
                           T* ws) noexcept {
    forward_fused_from<kernels::identity>(p, b, x, y, rows, ws);
  }
  template <class Epi> static void forward_fused_from(const T* const* p,
                                                      const T* const* /*buffers*/, const T* x, T* y,
                                                      std::size_t rows, T* /*ws*/) noexcept {
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t n = 0; n < N; ++n) y[r * N + n] = p[1][n];
    kernels::gemm_bcast<N, Epi>(rows, K, x, K, 1, p[0], y, true);
  }

  /// InputGrad: write dx = dy W^T. GradMask bit j: write the gradient of param j into grads[j].
  template <bool InputGrad, unsigned GradMask> void backward(const T* x, const T* y, const T* dy,
                                                             T* dx, T* const* grads,
                                                             std::size_t rows) const noexcept {
    const T* p[2] = {weight.data(), bias.data()};
    backward_from<InputGrad, GradMask>(p, nullptr, x, y, dy, dx, grads, rows, nullptr);
  }
  /// The same from parameters p read in place (training on a device: train/device.hpp).
  template <bool InputGrad, unsigned GradMask>
  static void backward_from(const T* const* p, const T* const* /*buffers*/, const T* x,
                            const T* /*y*/, const T* dy, T* dx, T* const* grads, std::size_t rows,
                            T* /*ws*/) noexcept {
    if constexpr ((GradMask & 1U) != 0)  // dW[K x N] = x^T dy
      kernels::gemm_bcast<N>(K, rows, x, 1, K, dy, grads[0], false);
    if constexpr ((GradMask & 2U) != 0) kernels::column_sum<N>(rows, dy, grads[1], false);
    if constexpr (InputGrad) kernels::gemm_nt_packed<K, N>(rows, dy, p[0], dx);
  }
};

/// Fully connected layer with N outputs. Takes a flat input (insert flatten after images).
template <std::size_t N, class Init = init::pytorch> struct dense {
  static_assert(N > 0, "graft: dense<N> needs N > 0");
  using expects = diagnostics::expects_flat_input_insert_flatten_before_this_layer;
  template <class In> static constexpr bool accepts = FlatShape<In>;
  template <class T, class In> using bind = dense_layer<T, In::size, N, Init>;
};

GRAFT_END_NAMESPACE
