// A one-line progress display on stderr, redrawn at most ten times a second; silent when stderr is
// not a terminal (CI logs, pipes) or when the user passes `quiet`.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdio>

#include "graft/config.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

GRAFT_BEGIN_NAMESPACE

inline bool stderr_is_terminal() noexcept {
#if defined(__unix__) || defined(__APPLE__)
  return ::isatty(STDERR_FILENO) != 0;
#else
  return false;
#endif
}

class progress_line {
 public:
  using clock = std::chrono::steady_clock;
  explicit progress_line(bool enabled) : enabled_(enabled && stderr_is_terminal()) {}
  progress_line(const progress_line&) = delete;
  progress_line& operator=(const progress_line&) = delete;
  ~progress_line() { finish(); }

  double seconds() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

  void update(std::size_t epoch, std::size_t epochs, std::size_t step, std::size_t total_steps,
              double loss, std::size_t samples) {
    if (!enabled_) return;
    const auto now = clock::now();
    if (drawn_ && now - last_ < std::chrono::milliseconds(100) && step != total_steps) return;
    last_ = now;
    drawn_ = true;
    const double t = seconds();
    const double rate = t > 0 ? static_cast<double>(samples) / t : 0.0;
    const double eta =
        step > 0 ? t * static_cast<double>(total_steps - step) / static_cast<double>(step) : 0.0;
    std::fprintf(stderr,
                 "\r\033[Kepoch %zu/%zu  step %zu/%zu  loss %.4f  %.0f samples/s  ETA %d:%02d",
                 epoch + 1, epochs, step, total_steps, loss, rate, static_cast<int>(eta) / 60,
                 static_cast<int>(eta) % 60);
    std::fflush(stderr);
  }
  void finish() {
    if (enabled_ && drawn_) {
      std::fputc('\n', stderr);
      drawn_ = false;
    }
  }

 private:
  bool enabled_;
  bool drawn_ = false;
  clock::time_point start_ = clock::now();
  clock::time_point last_{};
};

GRAFT_END_NAMESPACE
