// Layout arithmetic for memory that layers and their callers share: element counts rounded up to
// buffer_alignment, and a cursor that lays aligned regions one after the other while compiling.
// A layer with a workspace (batch norm, residual blocks) lays out its scratch memory with it; the
// trainer's arena and the runner use it for theirs. Light header: config.hpp only.
#pragma once
#include <cstddef>

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE

/// Rounds an element count up so that the next region starts on a buffer_alignment boundary.
template <class T> constexpr std::size_t aligned_count(std::size_t n) noexcept {
  constexpr std::size_t per = buffer_alignment / sizeof(T);
  return (n + per - 1) / per * per;
}

/// Lays out aligned regions one after the other while compiling (offsets in elements of T).
template <class T> struct region_cursor {
  std::size_t at = 0;
  /// The offset of a new region of n elements.
  constexpr std::size_t take(std::size_t n) noexcept {
    const std::size_t where = at;
    at += aligned_count<T>(n);
    return where;
  }
};

GRAFT_END_NAMESPACE
