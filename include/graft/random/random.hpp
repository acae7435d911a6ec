// graft's own random numbers. The standard distributions are implementation-defined, so graft uses
// SplitMix64 and its own distributions: a seed gives the same weights and batches everywhere.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "graft/numeric/math.hpp"

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE

/// A seed, passed explicitly wherever randomness is used.
struct seed {
  std::uint64_t value = 0;
};

/// SplitMix64 (Steele, Lea, Flood 2014): 64-bit state, passes BigCrush, trivially seedable.
class splitmix64 {
 public:
  constexpr explicit splitmix64(std::uint64_t s = 0) noexcept : state_(s) {}
  constexpr explicit splitmix64(seed s) noexcept : state_(s.value) {}

  constexpr std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  constexpr std::uint64_t operator()() noexcept { return next(); }

  /// Uniform double in [0, 1) with 53 random bits.
  constexpr double uniform01() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform double in [lo, hi).
  constexpr double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform01(); }

  /// Standard normal by the Box-Muller transform (one value per call; the pair's twin is dropped so
  /// that the stream does not depend on call parity), with graft's log and cos(pi x): the same
  /// values on every platform.
  double normal() noexcept {
    double u1 = uniform01();
    while (u1 <= 0.0) u1 = uniform01();
    const double u2 = uniform01();
    return std::sqrt(-2.0 * math::log(u1)) * math::cospi(2.0 * u2);
  }

  /// Uniform integer in [0, n) as next() mod n (the Fisher-Yates rule of the transfer protocol).
  constexpr std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }

  /// A generator for an independent stream, derived from this seed and a stream id.
  static constexpr splitmix64 stream(seed s, std::uint64_t id) noexcept {
    splitmix64 mix(s.value ^ (0xD1B54A32D192ED03ULL * (id + 1)));
    return splitmix64(mix.next());
  }

 private:
  std::uint64_t state_;
};

/// Fisher-Yates: shuffles p[0..n) in place, for i from n-1 down to 1 swapping p[i] with
/// p[rng.below(i + 1)]. The one shuffle of graft: data orders, few-shot selections,
/// dataset::shuffled.
template <class It> constexpr void fisher_yates(It p, std::size_t n, splitmix64& rng) noexcept {
  for (std::size_t i = n; i-- > 1;) {
    const auto j = static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(i) + 1));
    const auto t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
}

GRAFT_END_NAMESPACE
