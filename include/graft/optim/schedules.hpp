// Learning-rate schedules: pass one as an option to pretrain/finetune. A schedule maps
// (step, total steps, base lr) to the lr of that step; it composes with every optimizer because
// the trainer hands the result to the optimizer as its learning rate. Powers and cosines are
// graft's own (numeric/math.hpp), so a schedule gives the same rates on every platform.
#pragma once
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>

#include "graft/numeric/math.hpp"

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE
namespace schedule {

inline constexpr double pi = 3.14159265358979323846;

/// The base rate throughout.
struct constant {
  double lr(std::size_t, std::size_t, double base) const noexcept { return base; }
};

/// Multiplies the rate by gamma every `every` steps (PyTorch StepLR).
struct step_decay {
  std::size_t every = 100;
  double gamma = 0.1;
  double lr(std::size_t step, std::size_t, double base) const noexcept {
    const std::size_t periods = step / (every == 0 ? 1 : every);  // whole periods elapsed
    return base * math::powi(gamma, periods);
  }
};

/// Cosine annealing from base to base * min_factor over the run (Loshchilov & Hutter 2017).
struct cosine {
  double min_factor = 0.0;
  double lr(std::size_t step, std::size_t total, double base) const noexcept {
    const double t = total > 1 ? static_cast<double>(step) / static_cast<double>(total - 1) : 1.0;
    const double lo = base * min_factor;
    return lo + (base - lo) * 0.5 * (1.0 + math::cospi(std::min(t, 1.0)));
  }
};

/// Linear warm-up from base/steps to base over `steps` steps, then `then` on the remaining steps.
template <class Then = constant> struct warmup {
  std::size_t steps = 100;
  Then then{};
  double lr(std::size_t step, std::size_t total, double base) const noexcept {
    if (step < steps) return base * static_cast<double>(step + 1) / static_cast<double>(steps);
    return then.lr(step - steps, total > steps ? total - steps : 1, base);
  }
};

/// One-cycle (Smith 2018, PyTorch OneCycleLR with cosine phases): from base/div up to base over
/// pct_start of the run, then down to base/(div*final_div). base is the peak rate.
struct one_cycle {
  double pct_start = 0.3;
  double div = 25.0;
  double final_div = 1e4;
  double lr(std::size_t step, std::size_t total, double base) const noexcept {
    const double start = base / div, end = start / final_div;
    const double up = std::max(1.0, pct_start * static_cast<double>(total) - 1.0);
    const auto s = static_cast<double>(step);
    auto anneal = [](double from, double to, double t) {
      return to + (from - to) * 0.5 * (1.0 + math::cospi(std::clamp(t, 0.0, 1.0)));
    };
    if (s <= up) return anneal(start, base, s / up);
    const double down = std::max(1.0, static_cast<double>(total) - 1.0 - up);
    return anneal(base, end, (s - up) / down);
  }
};

}  // namespace schedule

template <class S>
concept Schedule = requires(const S& s, std::size_t i, double b) {
  { s.lr(i, i, b) } -> std::convertible_to<double>;
};

GRAFT_END_NAMESPACE
