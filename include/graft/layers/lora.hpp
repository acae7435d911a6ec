// lora<dense<N>, R, Alpha>: a dense layer with a low-rank adapter (LoRA, Hu et al. 2021):
//   y = x W + b + s (x A) B,   s = Alpha / R,   A [K, R], B [R, N]
// W and b are the base layer's (tag dense); A and B are the adapter (tag adapter). Fine-tune with
// freeze::adapters_only: W and b get no gradient buffer, no optimizer state and no gradient
// GEMM, exactly as any frozen tensor (freeze/plan.hpp), and the trainable part is constexpr
// (trainer::trainable_parameter_count). In a sequence: per_position<lora<dense<N>, R>>.
//
// Initialisation: W and b as the base dense layer; A uniform in [-1/sqrt(K), 1/sqrt(K)] (PEFT's
// kaiming_uniform(a = sqrt(5)), nn.Linear's default), B = 0, so the adapter starts as the base
// layer. with_adapters(base) (model/adapters.hpp) copies W and b from a trained base model;
// merge_adapters(net) folds s A B into W for a model of the base type (save, export, quantize).
//
// Orders (fixed, as the kernels guarantee): y = one fmadd chain from b over k, then t = s (x A)
// (a chain over k, one product by s), then y's chain goes on over r (+ t B). Backward recomputes
// t from x (rows K R multiply-adds) rather than keeping it, so that the evaluation forward that
// the device trainer runs before backward needs no extra state.
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <string>

#include "graft/kernels/elementwise.hpp"
#include "graft/kernels/gemm.hpp"
#include "graft/layers/dense.hpp"
#include "graft/layers/init.hpp"
#include "graft/layers/layer.hpp"
#include "graft/layers/workspace.hpp"
#include "graft/meta/pack.hpp"
#include "graft/tensor/tensor.hpp"

GRAFT_BEGIN_NAMESPACE

/// Bound dense layer K -> N with a rank-R adapter scaled by Alpha / R.
template <class T, std::size_t K, std::size_t N, std::size_t R, std::size_t Alpha, class Init>
class lora_dense_layer {
 public:
  using scalar = T;
  using input_shape = shape<K>;
  using output_shape = shape<N>;
  using base_layer = dense_layer<T, K, N, Init>;
  static constexpr std::size_t rank = R;
  static constexpr std::size_t alpha = Alpha;
  static constexpr std::size_t parameter_count = K * N + N + K * R + R * N;
  static constexpr std::array<param_desc, 4> params{{{K * N, role::weight, param_tag::dense},
                                                     {N, role::bias, param_tag::dense},
                                                     {K * R, role::weight, param_tag::adapter},
                                                     {R * N, role::weight, param_tag::adapter}}};
  /// s = Alpha / R
  static constexpr T scale = static_cast<T>(static_cast<double>(Alpha) / static_cast<double>(R));

  tensor<T, K, N> weight;  ///< W, the base layer's
  tensor<T, N> bias;       ///< b, the base layer's
  tensor<T, K, R> a;       ///< A: input k to adapter row r
  tensor<T, R, N> b;       ///< B: adapter row r to output n

  static std::string name() {
    std::string s = "lora<dense<";  // piece by piece: g++ 12's false -Wrestrict (armv7 -O3)
    s += std::to_string(N);
    s += ">,";
    s += std::to_string(R);
    s += ',';
    s += std::to_string(Alpha);
    s += '>';
    return s;
  }
  T* param(std::size_t j) noexcept {
    return j == 0 ? weight.data() : j == 1 ? bias.data() : j == 2 ? a.data() : b.data();
  }
  const T* param(std::size_t j) const noexcept {
    return const_cast<lora_dense_layer*>(this)->param(j);
  }

  /// W and b as the base dense layer draws them, then the adapter.
  void init(splitmix64& rng) {
    Init::weight(weight.data(), K * N, K, N, rng);
    Init::bias(bias.data(), N, K, N, rng);
    init_adapter(rng);
  }
  /// A uniform in [-1/sqrt(K), 1/sqrt(K)], B = 0 (the adapter adds nothing yet).
  void init_adapter(splitmix64& rng) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(K));
    for (std::size_t i = 0; i < K * R; ++i)
      a.data()[i] = static_cast<T>(rng.uniform(-bound, bound));
    b.fill(T(0));
  }

  /// t = s x A for the batch: rows x R.
  static constexpr std::size_t inference_workspace(std::size_t rows) noexcept {
    return aligned_count<T>(rows * R);
  }
  /// t and dt.
  static constexpr std::size_t training_workspace(std::size_t rows) noexcept {
    return 2 * aligned_count<T>(rows * R);
  }

  void forward(const T* x, T* y, std::size_t rows, T* ws) const noexcept {
    forward_fused<kernels::identity>(x, y, rows, ws);
  }
  template <train_mode>
  void forward_train(const T* x, T* y, std::size_t rows, T* ws) const noexcept {
    forward_fused<kernels::identity>(x, y, rows, ws);
  }
  template <class Epi>
  void forward_fused(const T* x, T* y, std::size_t rows, T* ws) const noexcept {
    const T* p[4] = {weight.data(), bias.data(), a.data(), b.data()};
    forward_fused_from<Epi>(p, nullptr, x, y, rows, ws);
  }
  static void forward_from(const T* const* p, const T* const* bf, const T* x, T* y,
                           std::size_t rows, T* ws) noexcept {
    forward_fused_from<kernels::identity>(p, bf, x, y, rows, ws);
  }
  /// y = Epi(b + x W + t B), t = s x A (t in ws).
  template <class Epi> static void forward_fused_from(const T* const* p,
                                                      const T* const* /*buffers*/, const T* x, T* y,
                                                      std::size_t rows, T* ws) noexcept {
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t n = 0; n < N; ++n) y[r * N + n] = p[1][n];
    kernels::gemm_bcast<N>(rows, K, x, K, 1, p[0], y, true);
    T* t = ws;
    adapter_input(p, x, t, rows);
    kernels::gemm_bcast<N, Epi>(rows, R, t, R, 1, p[3], y, true);
  }

  template <bool InputGrad, unsigned GradMask, train_mode Mode>
  void backward(const T* x, const T* y, const T* dy, T* dx, T* const* grads, std::size_t rows,
                T* ws) const noexcept {
    const T* p[4] = {weight.data(), bias.data(), a.data(), b.data()};
    backward_from<InputGrad, GradMask, Mode>(p, nullptr, x, y, dy, dx, grads, rows, ws);
  }
  /// dW = x^T dy, db = column sums of dy (as dense), dB = t^T dy, dt = s dy B^T, dA = x^T dt,
  /// dx = dy W^T + dt A^T (the second product added to the first).
  template <bool InputGrad, unsigned GradMask, train_mode>
  static void backward_from(const T* const* p, const T* const* /*buffers*/, const T* x,
                            const T* /*y*/, const T* dy, T* dx, T* const* grads, std::size_t rows,
                            T* ws) noexcept {
    constexpr bool gw = (GradMask & 1U) != 0, gb = (GradMask & 2U) != 0;
    constexpr bool grad_a = (GradMask & 4U) != 0, grad_b = (GradMask & 8U) != 0;
    if constexpr (gw) kernels::gemm_bcast<N>(K, rows, x, 1, K, dy, grads[0], false);
    if constexpr (gb) kernels::column_sum<N>(rows, dy, grads[1], false);
    T* t = ws;
    T* dt = ws + aligned_count<T>(rows * R);
    if constexpr (grad_b) {  // dB[R x N] = t^T dy
      adapter_input(p, x, t, rows);
      kernels::gemm_bcast<N>(R, rows, t, 1, R, dy, grads[3], false);
    }
    if constexpr (grad_a || InputGrad) {  // dt[rows x R] = s dy B^T
      kernels::gemm_nt_packed<R, N>(rows, dy, p[3], dt);
      for (std::size_t i = 0; i < rows * R; ++i) dt[i] *= scale;
    }
    if constexpr (grad_a) kernels::gemm_bcast<R>(K, rows, x, 1, K, dt, grads[2], false);
    if constexpr (InputGrad) {
      kernels::gemm_nt_packed<K, N>(rows, dy, p[0], dx);
      kernels::gemm_nt_packed<K, R>(rows, dt, p[2], dx, true);
    }
  }

 private:
  // t[rows x R] = s (x A)
  static void adapter_input(const T* const* p, const T* x, T* t, std::size_t rows) noexcept {
    kernels::gemm_bcast<R>(rows, K, x, K, 1, p[2], t, false);
    for (std::size_t i = 0; i < rows * R; ++i) t[i] *= scale;
  }
};

template <class Spec, std::size_t R, std::size_t Alpha = R> struct lora {
  static_assert(meta::always_false<Spec>,
                "graft: lora<Spec, R, Alpha> adapts a dense layer: lora<dense<N>, R>");
};
/// dense<N> with a rank-R adapter scaled by Alpha / R (see the file comment).
template <std::size_t N, class Init, std::size_t R, std::size_t Alpha>
struct lora<dense<N, Init>, R, Alpha> {
  static_assert(R > 0, "graft: lora<dense<N>, R> needs a rank R > 0");
  using base_spec = dense<N, Init>;
  using expects = typename dense<N, Init>::expects;
  template <class In> static constexpr bool accepts = dense<N, Init>::template accepts<In>;
  template <class T, class In> using bind = lora_dense_layer<T, In::size, N, R, Alpha, Init>;
};

GRAFT_END_NAMESPACE
