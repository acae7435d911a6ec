// Bitwise reproducibility across instruction sets (issue 12): filled in by the next commit.
#include <doctest/doctest.h>

TEST_CASE("reproducible: placeholder") { CHECK(true); }
