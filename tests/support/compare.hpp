// Bitwise comparison of models by their parameters (memcmp of whole objects would also compare
// padding bytes, which copies need not preserve).
#pragma once
#include <cstring>

namespace graft_test {
template <class M> bool bitwise_equal(const M& a, const M& b, bool include_head = true) {
  bool eq = true;
  a.for_each_parameter([&](std::size_t layer, std::size_t j, auto, const auto* pa, std::size_t n) {
    if (!include_head && layer == M::head_index) return;
    const auto* pb = [&] {
      const typename M::scalar* found = nullptr;
      b.for_each_parameter([&](std::size_t l2, std::size_t j2, auto, const auto* p, std::size_t) {
        if (l2 == layer && j2 == j) found = p;
      });
      return found;
    }();
    eq = eq && std::memcmp(pa, pb, n * sizeof(*pa)) == 0;
  });
  return eq;
}
}  // namespace graft_test
