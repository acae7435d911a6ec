// The real data sets for tests: loaded, or, when absent, a test case that skips itself with a
// message, unless GRAFT_REQUIRE_DATA is set (as ./run test and CI set it), which makes it fail.
#pragma once
#include <cstdlib>
#include <optional>

#include <doctest/doctest.h>
#include <graft/graft.hpp>

namespace graft_test {
/// loader() (graft::data::mnist, fashion_mnist), or nullopt after a skip message (a failure with
/// GRAFT_REQUIRE_DATA).
template <class Loader>
std::optional<graft::data::split> real_data(const char* name, Loader loader) {
  try {
    return loader();
  } catch (const graft::data_error& e) {
    if (std::getenv("GRAFT_REQUIRE_DATA") != nullptr) FAIL(e.what());
    MESSAGE("skipped, " << name << " not found: " << e.what());
    return std::nullopt;
  }
}
}  // namespace graft_test
