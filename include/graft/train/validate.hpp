// Validation of training options where they are given (pretrain, finetune, lp_ft): a value that
// cannot train (a NaN or infinite rate, momentum outside [0, 1), a zero decay period, ...) is
// refused before the first step with std::invalid_argument naming the option and the value.
// A user-defined optimizer or schedule takes part by offering `void validate() const`.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "graft/optim/optimizers.hpp"
#include "graft/optim/schedules.hpp"
#include "graft/train/options.hpp"

GRAFT_BEGIN_NAMESPACE
namespace detail {

inline std::string option_value(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

/// Throws unless lo <= v < hi (or lo <= v <= hi with closed), v finite.
inline void check_range(const char* option, double v, double lo, double hi, bool hi_closed,
                        bool lo_open, const char* expected) {
  const bool ok =
      std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_closed ? v <= hi : v < hi);
  if (!ok)
    throw std::invalid_argument(std::string("graft: option ") + option + " = " + option_value(v) +
                                ": expected " + expected);
}
inline constexpr double unbounded = 1e308;

inline void check_rate(const char* option, double v) {
  check_range(option, v, 0.0, unbounded, true, true, "a finite learning rate > 0");
}
inline void check_nonnegative(const char* option, double v) {
  check_range(option, v, 0.0, unbounded, true, false, "a finite value >= 0");
}

inline void validate_option(const sgd& o) {
  check_rate("sgd.lr", o.lr);
  check_range("sgd.momentum", o.momentum, 0.0, 1.0, false, false, "a momentum in [0, 1)");
  check_nonnegative("sgd.weight_decay", o.weight_decay);
  if (o.nesterov && o.momentum == 0.0f)
    throw std::invalid_argument(
        "graft: option sgd.nesterov = true with sgd.momentum = 0: Nesterov needs a momentum > 0");
}
template <bool D> void validate_option(const adam_optimizer<D>& o) {
  const char* n = D ? "adamw" : "adam";
  const std::string p(n);
  check_rate((p + ".lr").c_str(), o.lr);
  check_range((p + ".beta1").c_str(), o.beta1, 0.0, 1.0, false, false, "a beta1 in [0, 1)");
  check_range((p + ".beta2").c_str(), o.beta2, 0.0, 1.0, false, false, "a beta2 in [0, 1)");
  check_range((p + ".eps").c_str(), o.eps, 0.0, unbounded, true, true, "a finite eps > 0");
  check_nonnegative((p + ".weight_decay").c_str(), o.weight_decay);
}

inline void validate_option(const schedule::constant&) {}
inline void validate_option(const schedule::step_decay& s) {
  if (s.every == 0)
    throw std::invalid_argument(
        "graft: option schedule::step_decay.every = 0: expected a period "
        "of at least one step");
  check_range("schedule::step_decay.gamma", s.gamma, 0.0, unbounded, true, true,
              "a finite factor > 0");
}
inline void validate_option(const schedule::cosine& s) {
  check_range("schedule::cosine.min_factor", s.min_factor, 0.0, 1.0, true, false,
              "a factor in [0, 1]");
}
template <class Then> void validate_option(const schedule::warmup<Then>& s) {
  if (s.steps == 0)
    throw std::invalid_argument(
        "graft: option schedule::warmup.steps = 0: expected at least one "
        "warm-up step (or no warm-up)");
  validate_option(s.then);
}
inline void validate_option(const schedule::one_cycle& s) {
  check_range("schedule::one_cycle.pct_start", s.pct_start, 0.0, 1.0, false, true,
              "a fraction in (0, 1)");
  check_range("schedule::one_cycle.div", s.div, 0.0, unbounded, true, true, "a finite factor > 0");
  check_range("schedule::one_cycle.final_div", s.final_div, 0.0, unbounded, true, true,
              "a finite factor > 0");
}
inline void validate_option(const discriminative_lr& d) {
  check_range("discriminative_lr.factor", d.factor, 0.0, unbounded, true, true,
              "a finite factor > 0");
}
inline void validate_option(const l2_sp& p) {
  check_nonnegative("l2_sp.alpha", p.alpha);
  check_nonnegative("l2_sp.beta", p.beta);
}

inline void validate_option(const divergence_guard& d) {
  check_range("divergence_guard.factor", d.factor, 1.0, unbounded, true, true,
              "a finite factor > 1");
  if (d.patience == 0)
    throw std::invalid_argument(
        "graft: option divergence_guard.patience = 0: expected at least "
        "one step");
}

/// Every other option: its own validate() if it has one, else nothing to check.
template <class O> void validate_option(const O& o) {
  if constexpr (requires { o.validate(); }) o.validate();
}

template <class Opt, class... Options> void validate_options(const Opt& opt, const Options&... o) {
  validate_option(opt);
  (validate_option(o), ...);
}

}  // namespace detail
GRAFT_END_NAMESPACE
