// shape<D...>: a compile-time tensor shape. Light header (no xtensor).
#pragma once
#include <array>
#include <cstddef>
#include <string>

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE

/// Extents written "1x28x28" ("scalar" for none): the one shape formatter, for compile-time shapes
/// (shape::str), data sets' sample shapes and IDX dimensions.
inline std::string dims_string(const std::size_t* d, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) s += 'x';
    s += std::to_string(d[i]);
  }
  return n == 0 ? std::string("scalar") : s;
}

template <std::size_t... D> struct shape {
  static constexpr std::size_t rank = sizeof...(D);
  static constexpr std::size_t size = (std::size_t{1} * ... * D);
  static constexpr std::array<std::size_t, rank> dims{D...};

  /// "1x28x28", used in error messages and architecture fingerprints.
  static std::string str() { return dims_string(dims.data(), rank); }
};

template <class T> struct is_shape : std::false_type {};
template <std::size_t... D> struct is_shape<shape<D...>> : std::true_type {};

/// A Shape is a shape<D...> with no zero extent.
template <class S>
concept Shape = is_shape<S>::value &&(S::size > 0);

template <class S>
concept FlatShape = Shape<S> && S::rank == 1;

GRAFT_END_NAMESPACE
