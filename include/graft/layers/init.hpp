// Weight initialisers, driven by graft's own seeded generator.
#pragma once
#include <cmath>
#include <cstddef>

#include "graft/random/random.hpp"

GRAFT_BEGIN_NAMESPACE
namespace init {

/// PyTorch's default for Linear/Conv: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
/// (kaiming_uniform with a = sqrt(5) gives exactly that bound).
struct pytorch {
  static constexpr const char* name = "pytorch";
  template <class T>
  static void weight(T* w, std::size_t n, std::size_t fan_in, std::size_t, splitmix64& rng) {
    const double b = 1.0 / std::sqrt(static_cast<double>(fan_in));
    for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<T>(rng.uniform(-b, b));
  }
  template <class T>
  static void bias(T* v, std::size_t n, std::size_t fan_in, std::size_t, splitmix64& rng) {
    weight(v, n, fan_in, 0, rng);
  }
};

/// He (Kaiming) normal: N(0, 2/fan_in), zero bias. For ReLU networks.
struct he {
  static constexpr const char* name = "he";
  template <class T>
  static void weight(T* w, std::size_t n, std::size_t fan_in, std::size_t, splitmix64& rng) {
    const double s = std::sqrt(2.0 / static_cast<double>(fan_in));
    for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<T>(s * rng.normal());
  }
  template <class T> static void bias(T* v, std::size_t n, std::size_t, std::size_t, splitmix64&) {
    for (std::size_t i = 0; i < n; ++i) v[i] = T(0);
  }
};

/// Glorot (Xavier) uniform: U(-sqrt(6/(fan_in+fan_out)), +...), zero bias. For tanh/sigmoid.
struct glorot {
  static constexpr const char* name = "glorot";
  template <class T> static void weight(T* w, std::size_t n, std::size_t fan_in,
                                        std::size_t fan_out, splitmix64& rng) {
    const double b = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<T>(rng.uniform(-b, b));
  }
  template <class T> static void bias(T* v, std::size_t n, std::size_t, std::size_t, splitmix64&) {
    for (std::size_t i = 0; i < n; ++i) v[i] = T(0);
  }
};

}  // namespace init
GRAFT_END_NAMESPACE
