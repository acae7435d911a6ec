// dropout<Num, Den>: with P = Num/Den (Den defaults to 100: dropout<20> drops 20%), in training,
// zeroes each element with probability P and scales the others by
// 1/(1-P) (inverted dropout); at evaluation (runner, evaluate) it is the identity. The mask comes
// from graft's seeded generator: the layer's seed (set by initialize) and a counter of training
// forwards, so a run is reproducible and backward recomputes the forward's mask instead of
// storing it.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "graft/layers/layer.hpp"

GRAFT_BEGIN_NAMESPACE

template <class T, class In, std::size_t Num, std::size_t Den> class dropout_layer
    : public without_parameters<T> {
  static constexpr double P = static_cast<double>(Num) / static_cast<double>(Den);

 public:
  using scalar = T;
  using input_shape = In;
  using output_shape = In;
  static constexpr sequence_use sequence = sequence_use::positionwise;

  static std::string name() {
    return "dropout<" + std::to_string(Num) + "/" + std::to_string(Den) + ">";
  }
  void init(splitmix64& rng) noexcept {
    seed_ = rng.next();
    draws_ = 0;
  }
  /// The generator's state (its seed and the count of training forwards) for checkpoints: a
  /// resumed run draws the masks the uninterrupted run would have drawn.
  template <class F> void visit_rng_state(F&& f) {
    f(seed_);
    f(draws_);
  }

  /// Evaluation: the identity.
  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    std::memcpy(y, x, rows * In::size * sizeof(T));
  }
  /// Training: a fresh mask per call.
  void forward_train(const T* x, T* y, std::size_t rows) const noexcept {
    splitmix64 rng(seed_ ^ (0x9E3779B97F4A7C15ULL * ++draws_));
    const T scale = static_cast<T>(1.0 / (1.0 - P));
    for (std::size_t i = 0; i < rows * In::size; ++i) y[i] = keep(rng) ? x[i] * scale : T(0);
  }
  /// The gradient of the last forward_train: the same mask, recomputed.
  template <bool InputGrad, unsigned> void backward(const T*, const T*, const T* dy, T* dx,
                                                    T* const*, std::size_t rows) const noexcept {
    if constexpr (InputGrad) {
      splitmix64 rng(seed_ ^ (0x9E3779B97F4A7C15ULL * draws_));
      const T scale = static_cast<T>(1.0 / (1.0 - P));
      for (std::size_t i = 0; i < rows * In::size; ++i) dx[i] = keep(rng) ? dy[i] * scale : T(0);
    }
  }

 private:
  static bool keep(splitmix64& rng) noexcept {
    // P as a 53-bit threshold: exact for the probabilities people write (0.5, 0.25, 0.1 ...)
    return rng.uniform01() >= P;
  }
  std::uint64_t seed_ = 0;
  mutable std::uint64_t draws_ = 0;  ///< training forwards so far (in checkpoints only)
};

/// Inverted dropout with drop probability Num/Den (in percent by default: dropout<20> drops 20%),
/// identity at evaluation. Integers, because clang 14 does not take floating-point template
/// arguments.
template <std::size_t Num, std::size_t Den = 100> struct dropout {
  static_assert(Den > 0 && Num < Den, "graft: dropout<Num, Den> needs 0 <= Num/Den < 1");
  using expects = diagnostics::expects_any_shape;
  template <class In> static constexpr bool accepts = Shape<In>;
  template <class T, class In> using bind = dropout_layer<T, In, Num, Den>;
};

GRAFT_END_NAMESPACE
