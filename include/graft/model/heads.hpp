// Heads: the task-specific top of a model. A head is a dense layer plus a loss; it binds to the
// backbone's output shape like any spec, and a model swaps heads without retyping the backbone.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "graft/layers/dense.hpp"
#include "graft/numeric/math.hpp"

GRAFT_BEGIN_NAMESPACE

/// Softmax cross-entropy over N classes, computed from logits with the log-sum-exp shift, so that
/// logits of +-1e4 give finite losses and gradients.
template <std::size_t N> struct softmax_cross_entropy {
  using target_type = std::int32_t;
  static constexpr std::size_t target_size = 1;

  /// Sum over rows of -log softmax(z)[label]. If dz is not null, writes
  /// dz = (softmax(z) - onehot(label)) * scale.
  template <class T> static double evaluate(const T* z, const target_type* labels, std::size_t rows,
                                            T* dz, double scale) noexcept {
    double total = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const T* zr = z + r * N;
      const T zmax = *std::max_element(zr, zr + N);
      double sum = 0;
      // graft's exp and log (numeric/math.hpp): the same loss and gradient on every platform
      for (std::size_t n = 0; n < N; ++n) sum += math::exp(static_cast<double>(zr[n] - zmax));
      const double log_sum = math::log(sum);
      const auto label = static_cast<std::size_t>(labels[r]);
      total += log_sum - static_cast<double>(zr[label] - zmax);
      if (dz != nullptr)
        for (std::size_t n = 0; n < N; ++n) {
          const double p = math::exp(static_cast<double>(zr[n] - zmax) - log_sum);
          dz[r * N + n] = static_cast<T>((p - (n == label ? 1.0 : 0.0)) * scale);
        }
    }
    return total;
  }
};

/// Half-less mean squared error: sum over rows of mean_n (z - t)^2.
template <std::size_t N> struct mean_squared_error {
  using target_type = float;
  static constexpr std::size_t target_size = N;

  template <class T> static double evaluate(const T* z, const target_type* t, std::size_t rows,
                                            T* dz, double scale) noexcept {
    double total = 0;
    for (std::size_t i = 0; i < rows * N; ++i) {
      const double d = static_cast<double>(z[i]) - static_cast<double>(t[i]);
      total += d * d / static_cast<double>(N);
      if (dz != nullptr) dz[i] = static_cast<T>(2.0 * d / static_cast<double>(N) * scale);
    }
    return total;
  }
};

/// What every head shares: a dense<N> on the backbone's flat features and a loss.
template <std::size_t N, class Init, class Loss, std::size_t Classes> struct dense_head {
  static constexpr std::size_t classes = Classes;  ///< 0 for a regressor
  static constexpr bool is_classifier = Classes > 0;
  using layer_spec = dense<N, Init>;
  using loss = Loss;
  using expects =
      diagnostics::expects_a_flat_feature_vector_insert_flatten_at_the_end_of_the_backbone;
  template <class In> static constexpr bool accepts = FlatShape<In>;
};

/// N-way classifier head: dense<N> producing logits, softmax cross-entropy loss.
template <std::size_t N, class Init = init::pytorch> struct classifier
    : dense_head<N, Init, softmax_cross_entropy<N>, N> {
  static_assert(N >= 2, "graft: classifier<N> needs at least 2 classes");
  static std::string name() { return std::string("classifier<") + std::to_string(N) + ">"; }
};

/// N-output regressor head: dense<N>, mean squared error loss.
template <std::size_t N, class Init = init::pytorch> struct regressor
    : dense_head<N, Init, mean_squared_error<N>, 0> {
  static std::string name() { return std::string("regressor<") + std::to_string(N) + ">"; }
};

template <class H>
concept Head = requires {
  typename H::layer_spec;
  typename H::loss;
  { H::is_classifier } -> std::convertible_to<bool>;
};

GRAFT_END_NAMESPACE
