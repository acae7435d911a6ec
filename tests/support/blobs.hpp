// A small synthetic classification set: three separable blobs (feature d is near 1 when
// d % 3 is the class), with Gaussian noise, seeded.
#pragma once
#include <cstdint>
#include <vector>

#include <graft/data/dataset.hpp>

namespace graft_test {
inline graft::data::dataset blobs(std::size_t n, std::vector<std::size_t> shape,
                                  std::uint64_t seed) {
  std::size_t dims = 1;
  for (auto d : shape) dims *= d;
  graft::splitmix64 rng(seed);
  std::vector<float> x(n * dims);
  std::vector<std::int32_t> y(n);
  for (std::size_t i = 0; i < n; ++i) {
    y[i] = static_cast<std::int32_t>(rng.below(3));
    for (std::size_t d = 0; d < dims; ++d)
      x[i * dims + d] = static_cast<float>((d % 3 == static_cast<std::size_t>(y[i]) ? 1.0 : 0.0) +
                                           0.3 * rng.normal());
  }
  return graft::data::make_classification("blobs", std::move(shape), std::move(x), std::move(y), 3);
}
}  // namespace graft_test
