// batch_norm: batch normalisation (Ioffe & Szegedy 2015) over the channels of a C x H x W image
// (BatchNorm2d) or the features of a flat vector (BatchNorm1d), with PyTorch's defaults:
// eps = 1e-5, momentum = 0.1, the running variance updated with the unbiased batch variance.
//
// Parameters: scale gamma (role::weight, starts at 1) and shift beta (role::bias, starts at 0).
// Buffers (saved with the weights, never trained): the running mean and variance.
//
// Two modes, chosen by whoever runs the layer:
// * batch statistics (BatchStats = true): normalise with the batch's mean and variance and update
//   the running averages; the backward pass differentiates through the batch statistics;
// * frozen statistics (evaluation, and training under a policy that freezes them): normalise with
//   the running averages, which do not change; the layer is then an affine map per channel.
// The trainer picks batch statistics only for a batch_norm whose scale or shift trains and whose
// policy does not freeze statistics (freeze::statistics), so a frozen batch norm never drifts.
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "graft/layers/layer.hpp"
#include "graft/tensor/tensor.hpp"

GRAFT_BEGIN_NAMESPACE

/// Bound batch norm over In: channels are In's first extent (all of it for a flat input).
template <class T, class In> class batch_norm_layer {
 public:
  static constexpr std::size_t C = In::rank == 1 ? In::size : In::dims[0];
  static constexpr std::size_t HW = In::size / C;  ///< elements per channel and sample
  static constexpr double eps = 1e-5;
  static constexpr double momentum = 0.1;

  using scalar = T;
  using input_shape = In;
  using output_shape = In;
  static constexpr std::size_t parameter_count = 2 * C;
  static constexpr std::array<param_desc, 2> params{
      {{C, role::weight, param_tag::norm}, {C, role::bias, param_tag::norm}}};
  static constexpr std::array<std::size_t, 2> buffers{C, C};
  static constexpr bool has_statistics = true;
  /// With one value per channel and sample, a batch of one has no variance.
  static constexpr std::size_t min_batch_rows = HW == 1 ? 2 : 1;
  /// Batch mean and 1/sqrt(var + eps) per channel, kept from forward_train for backward.
  static constexpr std::size_t training_workspace(std::size_t /*rows*/) noexcept { return 2 * C; }
  static constexpr std::size_t inference_workspace(std::size_t /*rows*/) noexcept { return 0; }

  tensor<T, C> gamma;
  tensor<T, C> beta;
  tensor<T, C> running_mean;
  tensor<T, C> running_var;

  static std::string name() { return "batch_norm"; }
  T* param(std::size_t j) noexcept { return j == 0 ? gamma.data() : beta.data(); }
  const T* param(std::size_t j) const noexcept { return j == 0 ? gamma.data() : beta.data(); }
  T* buffer(std::size_t j) noexcept { return j == 0 ? running_mean.data() : running_var.data(); }
  const T* buffer(std::size_t j) const noexcept {
    return j == 0 ? running_mean.data() : running_var.data();
  }

  void init(splitmix64&) noexcept {
    gamma.fill(T(1));
    beta.fill(T(0));
    running_mean.fill(T(0));
    running_var.fill(T(1));
  }

  /// Evaluation: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
  void forward(const T* x, T* y, std::size_t rows, T* ws) const noexcept {
    const T* p[2] = {gamma.data(), beta.data()};
    const T* b[2] = {running_mean.data(), running_var.data()};
    forward_from(p, b, x, y, rows, ws);
  }
  /// The same from constant parameters (p: gamma, beta) and buffers (b: mean, variance), read in
  /// place (a constant_model: weights compiled into the program).
  static void forward_from(const T* const* p, const T* const* b, const T* x, T* y, std::size_t rows,
                           T* /*ws*/) noexcept {
    for (std::size_t c = 0; c < C; ++c) {
      const T a = p[0][c] * invstd_of(b[1][c]);
      const T shift = p[1][c] - a * b[0][c];
      apply(x, y, rows, c, a, shift);
    }
  }

  template <train_mode Mode>
  void forward_train(const T* x, T* y, std::size_t rows, T* ws) noexcept {
    if constexpr (!Mode.batch_statistics) {
      forward(x, y, rows, ws);
    } else {
      T* mean = ws;
      T* invstd = ws + C;
      const std::size_t n = rows * HW;
      for (std::size_t c = 0; c < C; ++c) {
        // two passes: the mean, then the squared deviations from it (no cancellation)
        const double m = channel_sums(rows, c, [&](std::size_t i) { return x[i]; }).first /
                         static_cast<double>(n);
        const T mt = static_cast<T>(m);
        const double q = channel_sums(rows, c, [&](std::size_t i) {
                           const T d = x[i] - mt;
                           return d * d;
                         }).first;
        const double var = q / static_cast<double>(n);
        mean[c] = static_cast<T>(m);
        invstd[c] = static_cast<T>(1.0 / std::sqrt(var + eps));
        const double unbiased = n > 1 ? q / static_cast<double>(n - 1) : var;
        running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * m);
        running_var[c] = static_cast<T>((1 - momentum) * running_var[c] + momentum * unbiased);
        const T a = gamma[c] * invstd[c];
        apply(x, y, rows, c, a, beta[c] - a * mean[c]);
      }
    }
  }

  template <bool InputGrad, unsigned GradMask, train_mode Mode>
  void backward(const T* x, const T* /*y*/, const T* dy, T* dx, T* const* grads, std::size_t rows,
                T* ws) const noexcept {
    constexpr bool gamma_grad = (GradMask & 1U) != 0;
    constexpr bool beta_grad = (GradMask & 2U) != 0;
    constexpr bool batch_stats = Mode.batch_statistics;
    const auto n = static_cast<double>(rows * HW);
    for (std::size_t c = 0; c < C; ++c) {
      const T m = batch_stats ? ws[c] : running_mean[c];
      const T inv = batch_stats ? ws[C + c] : frozen_invstd(c);
      // sum(dy) and sum(dy * xhat), xhat = (x - m) * inv
      const auto [sdy, sdyx] = channel_sums(
          rows, c, [&](std::size_t i) { return dy[i]; },
          [&](std::size_t i) { return dy[i] * ((x[i] - m) * inv); });
      if constexpr (gamma_grad) grads[0][c] = static_cast<T>(sdyx);
      if constexpr (beta_grad) grads[1][c] = static_cast<T>(sdy);
      if constexpr (InputGrad) {
        const T g = gamma[c] * inv;
        if constexpr (batch_stats) {
          // dx = gamma * inv * (dy - mean(dy) - xhat * mean(dy * xhat))
          const T mdy = static_cast<T>(sdy / n);
          const T mdyx = static_cast<T>(sdyx / n);
          for_channel(rows, c,
                      [&](std::size_t i) { dx[i] = g * (dy[i] - mdy - (x[i] - m) * inv * mdyx); });
        } else {
          for_channel(rows, c, [&](std::size_t i) { dx[i] = g * dy[i]; });
        }
      }
    }
  }

 private:
  T frozen_invstd(std::size_t c) const noexcept { return invstd_of(running_var[c]); }
  static T invstd_of(T var) noexcept {
    return static_cast<T>(1.0 / std::sqrt(static_cast<double>(var) + eps));
  }
  /// Sums f(i) (and g(i)) over the elements i of channel c in the first `rows` samples: eight
  /// independent lanes in T along a sample's row (so the loop vectorises), each row's total added
  /// in double. A fixed order: the result does not depend on anything but the data.
  template <class F, class G = std::nullptr_t>
  static std::pair<double, double> channel_sums(std::size_t rows, std::size_t c, F&& f,
                                                G&& g = nullptr) noexcept {
    constexpr bool two = !std::is_same_v<std::remove_cvref_t<G>, std::nullptr_t>;
    constexpr std::size_t lanes = 8;
    double s1 = 0;
    double s2 = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t base = r * In::size + c * HW;
      T a1[lanes] = {};
      T a2[lanes] = {};
      std::size_t k = 0;
      for (; k + lanes <= HW; k += lanes)
        for (std::size_t j = 0; j < lanes; ++j) {
          a1[j] += f(base + k + j);
          if constexpr (two) a2[j] += g(base + k + j);
        }
      for (; k < HW; ++k) {
        a1[k % lanes] += f(base + k);
        if constexpr (two) a2[k % lanes] += g(base + k);
      }
      for (std::size_t j = 0; j < lanes; ++j) {
        s1 += static_cast<double>(a1[j]);
        s2 += static_cast<double>(a2[j]);
      }
    }
    return {s1, s2};
  }
  /// Calls f(i) for every element index i of channel c in the first `rows` samples.
  template <class F> static void for_channel(std::size_t rows, std::size_t c, F&& f) {
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t base = r * In::size + c * HW;
      for (std::size_t k = 0; k < HW; ++k) f(base + k);
    }
  }
  static void apply(const T* x, T* y, std::size_t rows, std::size_t c, T a, T b) noexcept {
    for_channel(rows, c, [&](std::size_t i) { y[i] = a * x[i] + b; });
  }
};

/// Batch normalisation over channels (images) or features (flat inputs); see the file comment.
struct batch_norm {
  using expects = diagnostics::expects_any_shape;
  template <class In> static constexpr bool accepts = Shape<In>;
  template <class T, class In> using bind = batch_norm_layer<T, In>;
};

GRAFT_END_NAMESPACE
