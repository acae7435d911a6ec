// Optional threads. Built with GRAFT_OPENMP=ON (CMake), graft splits large kernels (GEMM column
// strips, optimizer updates) across OpenMP threads once the program asks for them
// (parallel::set_threads(n) or GRAFT_THREADS=n); otherwise everything runs on the calling thread.
// Small work stays on one thread, and a call from inside a parallel region runs serially, so graft
// never oversubscribes the machine.
#pragma once
#include <cstddef>
#include <cstdlib>

#include "graft/config.hpp"

#if defined(GRAFT_USE_OPENMP)
#include <omp.h>
#endif

GRAFT_BEGIN_NAMESPACE
namespace parallel {

namespace detail {
// One thread unless the program asks for more (set_threads) or the environment does
// (GRAFT_THREADS=n): on a shared machine, spinning threads that find their core busy slow
// everything down, so threads are opt-in even in an OpenMP build.
inline int default_threads() noexcept {
  const char* env = std::getenv("GRAFT_THREADS");
  const int n = env != nullptr ? std::atoi(env) : 1;
  return n > 0 ? n : 1;
}
inline int& requested_threads() noexcept {
  static int n = default_threads();
  return n;
}
}  // namespace detail

/// Threads graft may use for one kernel (always 1 when built without OpenMP).
inline int threads() noexcept {
#if defined(GRAFT_USE_OPENMP)
  return detail::requested_threads();
#else
  return 1;
#endif
}

/// Sets the threads graft may use (n <= 0: OpenMP's default, OMP_NUM_THREADS or the core count).
/// No effect without OpenMP.
inline void set_threads(int n) noexcept {
#if defined(GRAFT_USE_OPENMP)
  detail::requested_threads() = n > 0 ? n : omp_get_max_threads();
#else
  detail::requested_threads() = n > 0 ? n : 1;
#endif
}

/// Whether this build can use more than one thread.
inline constexpr bool available() noexcept {
#if defined(GRAFT_USE_OPENMP)
  return true;
#else
  return false;
#endif
}

/// Calls f(begin, end) on contiguous parts of [0, n): one part per thread when the work is worth
/// splitting (at least min_items per thread), else f(0, n) on the calling thread.
template <class F> void for_range(std::size_t n, std::size_t min_items, F&& f) {
#if defined(GRAFT_USE_OPENMP)
  std::size_t nt = static_cast<std::size_t>(threads());
  if (min_items == 0) min_items = 1;
  if (nt > n / min_items) nt = n / min_items;
  if (nt > 1 && omp_in_parallel() == 0) {
#pragma omp parallel num_threads(static_cast <int>(nt))
    {
      const auto t = static_cast<std::size_t>(omp_get_thread_num());
      const auto k = static_cast<std::size_t>(omp_get_num_threads());
      f(n * t / k, n * (t + 1) / k);
    }
    return;
  }
#else
  (void)min_items;
#endif
  f(std::size_t{0}, n);
}

/// The fewest elements per thread for which an element-wise, memory-bound pass is worth waking a
/// thread (32 Ki).
inline constexpr std::size_t min_elements = std::size_t{1} << 15;

/// Splits `rows` rows of `row_size` elements between threads (for_range) when each thread gets
/// at least 32 Ki elements: a memory-bound pass over fewer is not worth waking a thread for.
template <class F> void for_rows(std::size_t rows, std::size_t row_size, F&& f) {
  const std::size_t min_rows = row_size >= min_elements ? 1 : min_elements / row_size;
  for_range(rows, min_rows, static_cast<F&&>(f));
}

}  // namespace parallel
GRAFT_END_NAMESPACE
