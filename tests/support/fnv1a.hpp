// FNV-1a (64-bit) over bytes, fed piece by piece: the hashes the reproducibility tests commit.
#pragma once
#include <cstddef>
#include <cstdint>

namespace graft_test {
struct fnv1a {
  std::uint64_t h = 14695981039346656037ULL;
  void bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  }
  template <class T> void values(const T* p, std::size_t n) { bytes(p, n * sizeof(T)); }
};
}  // namespace graft_test
