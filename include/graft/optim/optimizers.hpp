// Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW, following PyTorch's update
// rules. An optimizer is a small value (hyper-parameters); its state lives in the trainer's arena,
// sized while compiling, and exists only for trainable parameters.
#pragma once
#include <cmath>
#include <cstddef>

#include "graft/numeric/math.hpp"

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE

/// What an update needs besides the tensors: the 1-based step count and the effective learning
/// rate (after schedules and per-layer multipliers).
struct update_context {
  std::size_t step = 1;
  double lr = 0.01;
};

struct sgd {
  float lr = 0.01f;
  float momentum = 0.0f;
  bool nesterov = false;
  float weight_decay = 0.0f;  ///< L2 added to the gradient (PyTorch's SGD weight_decay)

  static constexpr std::size_t state_count = 1;  ///< momentum buffer
  static constexpr const char* name = "sgd";

  template <class T> void update(T* w, const T* g, T* const* state, std::size_t n,
                                 const update_context& c) const noexcept {
    const auto rate = static_cast<T>(c.lr), mu = static_cast<T>(momentum),
               wd = static_cast<T>(weight_decay);
    T* buf = state[0];
    if (momentum == 0.0f) {
      for (std::size_t i = 0; i < n; ++i) w[i] -= rate * (g[i] + wd * w[i]);
      return;
    }
    if (c.step == 1)  // PyTorch: the buffer starts as the first gradient
      for (std::size_t i = 0; i < n; ++i) buf[i] = T(0);
    if (nesterov)
      for (std::size_t i = 0; i < n; ++i) {
        const T d = g[i] + wd * w[i];
        buf[i] = c.step == 1 ? d : mu * buf[i] + d;
        w[i] -= rate * (d + mu * buf[i]);
      }
    else
      for (std::size_t i = 0; i < n; ++i) {
        const T d = g[i] + wd * w[i];
        buf[i] = c.step == 1 ? d : mu * buf[i] + d;
        w[i] -= rate * buf[i];
      }
  }
};

/// Adam (Decoupled = false: L2 decay added to the gradient, PyTorch's Adam) and AdamW
/// (Decoupled = true: decay applied to the weights, Loshchilov & Hutter 2019).
template <bool Decoupled> struct adam_optimizer {
  float lr = 0.001f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = Decoupled ? 0.01f : 0.0f;

  static constexpr std::size_t state_count = 2;  ///< first and second moments
  static constexpr const char* name = Decoupled ? "adamw" : "adam";

  template <class T> void update(T* w, const T* g, T* const* state, std::size_t n,
                                 const update_context& c) const noexcept {
    T* m = state[0];
    T* v = state[1];
    if (c.step == 1)
      for (std::size_t i = 0; i < n; ++i) m[i] = v[i] = T(0);
    const auto b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2);
    // beta^t by math::powi, not std::pow (each libm's own): the same bits everywhere
    const auto c1 = static_cast<T>(1.0 / (1.0 - math::powi(static_cast<double>(beta1), c.step)));
    const auto c2 =
        static_cast<T>(1.0 / std::sqrt(1.0 - math::powi(static_cast<double>(beta2), c.step)));
    const auto rate = static_cast<T>(c.lr), wd = static_cast<T>(weight_decay),
               e = static_cast<T>(eps);
    for (std::size_t i = 0; i < n; ++i) {
      T gi = g[i];
      if constexpr (Decoupled)
        w[i] -= rate * wd * w[i];
      else
        gi += wd * w[i];
      m[i] = b1 * m[i] + (T(1) - b1) * gi;
      v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
      // PyTorch: w -= lr * (m / (1-b1^t)) / (sqrt(v) / sqrt(1-b2^t) + eps)
      w[i] -= rate * (m[i] * c1) / (std::sqrt(v[i]) * c2 + e);
    }
  }
};
using adam = adam_optimizer<false>;
using adamw = adam_optimizer<true>;

template <class O>
concept Optimizer = requires(const O& o) {
  { O::state_count } -> std::convertible_to<std::size_t>;
  { o.lr } -> std::convertible_to<double>;
};

GRAFT_END_NAMESPACE
