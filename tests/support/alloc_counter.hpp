// Counts global heap allocations: the replacement operators live in alloc_counter.cpp, linked
// into the test binaries that use this header.
#pragma once
#include <atomic>

namespace graft_test {
extern std::atomic<long> allocations;
}
