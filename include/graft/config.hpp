// graft: library-wide configuration. Light: no includes beyond <cstddef>.
#pragma once
#include <cstddef>

#define GRAFT_VERSION_MAJOR 0
#define GRAFT_VERSION_MINOR 1
#define GRAFT_VERSION_PATCH 0

// Every public name lives in an inline versioned namespace so that two graft versions linked into
// one program cannot silently mix (ODR), while users still write graft::name.
#define GRAFT_BEGIN_NAMESPACE \
  namespace graft {           \
  inline namespace v0 {
#define GRAFT_END_NAMESPACE \
  }                         \
  }

// Alignment of every buffer graft allocates (one cache line; enough for AVX-512 loads).
GRAFT_BEGIN_NAMESPACE
inline constexpr std::size_t buffer_alignment = 64;
GRAFT_END_NAMESPACE
