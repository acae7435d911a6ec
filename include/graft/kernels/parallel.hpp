// Optional threads. Built with GRAFT_PARALLEL=ON (CMake; it defines GRAFT_USE_THREADS), graft
// splits large kernels (GEMM column strips, convolution samples, optimizer updates) across a small
// pool of worker threads once the program asks for them (parallel::set_threads(n) or
// GRAFT_THREADS=n in the environment); otherwise everything runs on the calling thread. Small
// work stays on one thread, and a call from inside a split (or from a second thread while one is
// running) runs serially, so graft never oversubscribes the machine.
//
// Work is shared, not assigned: a split is cut into a few chunks per thread, the calling thread
// and the workers take chunks from one atomic counter, and the caller waits only for chunks a
// worker has started. A worker that the OS has not scheduled (a busy machine: another process on
// the other core) takes nothing and delays nothing; the caller does the work itself at one
// thread's speed. (OpenMP's fork-join, used before, waits at every region's barrier for every
// thread of the team: on a loaded 2-core machine a step then took up to 50 times longer with two
// threads than with one.) Every kernel computes each result in the same order whichever thread
// runs which chunk, so results are bitwise those of one thread.
#pragma once
#include <cstddef>
#include <cstdlib>

#include "graft/config.hpp"

// the build option's former name
#if defined(GRAFT_USE_OPENMP) && !defined(GRAFT_USE_THREADS)
#define GRAFT_USE_THREADS 1
#endif

#if defined(GRAFT_USE_THREADS)
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>
#endif

GRAFT_BEGIN_NAMESPACE
namespace parallel {

/// The most threads one split uses, fixed while compiling: layers that need scratch memory per
/// thread (conv2d's im2col matrices) size their workspace for this many (1 without threads, so a
/// single-threaded build's footprints are exact). GRAFT_MAX_THREADS sets it (default 8).
#if defined(GRAFT_USE_THREADS)
#if defined(GRAFT_MAX_THREADS)
inline constexpr std::size_t max_threads = GRAFT_MAX_THREADS;
#else
inline constexpr std::size_t max_threads = 8;
#endif
#else
inline constexpr std::size_t max_threads = 1;
#endif
static_assert(max_threads >= 1 && max_threads <= 0xffff, "graft: GRAFT_MAX_THREADS out of range");

namespace detail {
// One thread unless the program asks for more (set_threads) or the environment does
// (GRAFT_THREADS=n): threads are opt-in even in a threaded build.
inline int default_threads() noexcept {
  const char* env = std::getenv("GRAFT_THREADS");
  const int n = env != nullptr ? std::atoi(env) : 1;
  return n > 0 ? n : 1;
}
inline int& requested_threads() noexcept {
  static int n = default_threads();
  return n;
}

#if defined(GRAFT_USE_THREADS)
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// The pool: workers started on first use (as many as the largest thread count asked for, minus
// the caller), kept for the program's life. One split at a time.
class pool {
 public:
  static pool& instance() {
    static pool p;
    return p;
  }
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;
  ~pool() {
    stop_.store(true, std::memory_order_release);
    signal_.fetch_add(1, std::memory_order_release);
    signal_.notify_all();
    for (auto& t : workers_) t.join();
  }

  // Calls f(begin, end, slot) over `chunks` contiguous parts of [0, n), on the caller (slot 0)
  // and up to `threads` - 1 workers (slots 1 to threads - 1). false (and nothing called) when a
  // split is already running.
  template <class F> bool run(std::size_t n, std::size_t chunks, int threads, F& f) {
    bool expected = false;
    if (!busy_.compare_exchange_strong(expected, true, std::memory_order_acquire)) return false;
    grow(threads - 1);
    fn_.store(const_cast<void*>(static_cast<const void*>(&f)), std::memory_order_relaxed);
    call_.store(&call<F>, std::memory_order_relaxed);
    n_.store(n, std::memory_order_relaxed);
    limit_.store(threads - 1, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    const std::uint32_t gen = ++generation_;
    state_.store(std::uint64_t{gen} << 32 | std::uint64_t{chunks} << 16, std::memory_order_release);
    signal_.store(gen, std::memory_order_release);
    signal_.notify_all();
    const std::size_t mine = work(gen, 0);
    // wait for the chunks the workers took (they are running: short waits)
    while (done_.load(std::memory_order_acquire) + mine != chunks) cpu_relax();
    busy_.store(false, std::memory_order_release);
    return true;
  }

 private:
  pool() = default;
  using call_t = void (*)(void*, std::size_t, std::size_t, std::size_t);
  template <class F> static void call(void* f, std::size_t b, std::size_t e, std::size_t slot) {
    (*static_cast<F*>(f))(b, e, slot);
  }

  // Takes chunks of split `gen` until none is left; returns how many this thread ran.
  std::size_t work(std::uint32_t gen, std::size_t slot) noexcept {
    std::size_t ran = 0;
    std::uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t count = (s >> 16) & 0xffff, next = s & 0xffff;
      if ((s >> 32) != gen || next >= count) return ran;
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) continue;
      // the split's fields stay as they are until every taken chunk is done
      const std::size_t n = n_.load(std::memory_order_relaxed);
      call_.load(std::memory_order_relaxed)(fn_.load(std::memory_order_relaxed),
                                            static_cast<std::size_t>(n * next / count),
                                            static_cast<std::size_t>(n * (next + 1) / count), slot);
      ++ran;
      s = state_.load(std::memory_order_acquire);
    }
  }

  // seen: the signal when the worker was created (read by grow(), on the creating thread). Read
  // here instead, a worker scheduled only after the destructor's stop signal would take that
  // signal for its start and wait for another one forever: the program hung at exit
  // (tests/test_pool_exit.cpp).
  void worker(int id, std::uint32_t seen) noexcept {
    for (;;) {
      if (stop_.load(std::memory_order_acquire)) return;
      // spin for a while (the next split of a training step is usually microseconds away),
      // then sleep until signalled
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      for (unsigned i = 0; signal_.load(std::memory_order_acquire) == seen; ++i) {
        cpu_relax();
        if (i % 64 == 63 && std::chrono::steady_clock::now() > until) {
          signal_.wait(seen, std::memory_order_acquire);
          break;
        }
      }
      if (stop_.load(std::memory_order_acquire)) return;
      seen = signal_.load(std::memory_order_acquire);
      if (id >= limit_.load(std::memory_order_relaxed)) continue;
      const std::size_t ran = work(seen, static_cast<std::size_t>(id) + 1);
      if (ran > 0) done_.fetch_add(ran, std::memory_order_release);
    }
  }

  void grow(int workers) {
    while (static_cast<int>(workers_.size()) < workers) {
      const int id = static_cast<int>(workers_.size());
      const std::uint32_t seen = signal_.load(std::memory_order_acquire);
      workers_.emplace_back([this, id, seen] { worker(id, seen); });
    }
  }

  // generation (32 bits) | chunk count (16) | next chunk (16)
  alignas(64) std::atomic<std::uint64_t> state_{0};
  alignas(64) std::atomic<std::size_t> done_{0};
  alignas(64) std::atomic<std::uint32_t> signal_{0};
  std::atomic<void*> fn_{nullptr};
  std::atomic<call_t> call_{nullptr};
  std::atomic<std::size_t> n_{0};
  std::atomic<int> limit_{0};
  std::atomic<bool> busy_{false};
  std::atomic<bool> stop_{false};
  std::uint32_t generation_ = 0;
  std::vector<std::thread> workers_;
};
#endif
}  // namespace detail

/// Threads graft may use for one kernel (always 1 when built without threads).
inline int threads() noexcept {
#if defined(GRAFT_USE_THREADS)
  return detail::requested_threads();
#else
  return 1;
#endif
}

/// Sets the threads graft may use (n <= 0: one per core). No effect without threads.
inline void set_threads(int n) noexcept {
#if defined(GRAFT_USE_THREADS)
  const unsigned cores = std::thread::hardware_concurrency();
  detail::requested_threads() = n > 0 ? n : (cores > 0 ? static_cast<int>(cores) : 1);
#else
  detail::requested_threads() = n > 0 ? n : 1;
#endif
}

/// Whether this build can use more than one thread.
inline constexpr bool available() noexcept {
#if defined(GRAFT_USE_THREADS)
  return true;
#else
  return false;
#endif
}

/// As for_range, calling f(begin, end, slot): slot < max_threads names the thread running the
/// part (0: the calling thread), so that f can use scratch memory of its own per slot. Two parts
/// never run at the same time with the same slot.
template <class F> void for_slots(std::size_t n, std::size_t min_items, F&& f) {
#if defined(GRAFT_USE_THREADS)
  std::size_t nt = static_cast<std::size_t>(threads());
  if (nt > max_threads) nt = max_threads;
  if (min_items == 0) min_items = 1;
  if (nt > n / min_items) nt = n / min_items;
  if (nt > 1) {
    std::size_t chunks = nt * 4;
    if (chunks > n) chunks = n;
    if (chunks > 0xffff) chunks = 0xffff;
    if (detail::pool::instance().run(n, chunks, static_cast<int>(nt), f)) return;
  }
#else
  (void)min_items;
#endif
  f(std::size_t{0}, n, std::size_t{0});
}

/// Calls f(begin, end) on contiguous parts of [0, n) that together cover it once: split between
/// threads when the work is worth it (at least min_items per thread; then a few parts per thread,
/// taken by whichever thread is free), else f(0, n) on the calling thread. f must not throw.
template <class F> void for_range(std::size_t n, std::size_t min_items, F&& f) {
  for_slots(n, min_items, [&f](std::size_t begin, std::size_t end, std::size_t) { f(begin, end); });
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
