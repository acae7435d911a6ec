// The public gradient checker (graft/testing/gradcheck.hpp) under the tests' old names, and a
// doctest macro around check_layer.
#pragma once
#include <doctest/doctest.h>

#include <graft/testing/gradcheck.hpp>

namespace graft_test {
using graft::testing::check_layer;
using graft::testing::check_trainer;
using graft::testing::close;
using graft::testing::fill_away_from_zero;
using graft::testing::grad_report;
}  // namespace graft_test

/// Gradient check of one bound layer type (see check_layer).
#define GRAFT_CHECK_LAYER_GRADIENTS(...)                     \
  do {                                                       \
    const auto rep = graft_test::check_layer<__VA_ARGS__>(); \
    INFO(rep.first_failure);                                 \
    CHECK(rep.checked > 0);                                  \
    CHECK(rep.failures == 0);                                \
  } while (0)
