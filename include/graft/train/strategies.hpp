// The fine-tuning strategies of pretrain / finetune as small hook types, each in one place. The
// training loop calls, on every strategy it was given and in this order:
//   start(trainer)                 once, before the first step (after a resume: before the first
//                                  resumed step)
//   before_step(trainer, step)     0-based step: what the step uses (rates, the boundary)
//   after_gradients(trainer, loss) between the gradients and their check (penalties)
// A strategy that needs none of them simply lacks it. Which strategies run is decided while
// compiling, from the options passed.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "graft/optim/schedules.hpp"
#include "graft/train/options.hpp"
#include "graft/train/report.hpp"
#include "graft/train/trainer.hpp"

GRAFT_BEGIN_NAMESPACE
namespace detail {

/// Indices of a model's parametric layers, bottom to top (the head last).
template <class M> constexpr auto parametric_layers() {
  constexpr std::size_t count = [] {
    std::size_t c = 0;
    meta::static_for<M::layer_count>([&](auto i) {
      if constexpr (M::template layer_type<i>::params.size() > 0) ++c;
    });
    return c;
  }();
  std::array<std::size_t, count> idx{};
  std::size_t c = 0;
  meta::static_for<M::layer_count>([&](auto i) {
    if constexpr (M::template layer_type<i>::params.size() > 0) idx[c++] = i;
  });
  return idx;
}

/// A learning-rate schedule (at most one among the options) sets the base rate of every step.
template <class Tr, class... O>
void schedule_step(Tr& t, std::size_t step, std::size_t total, double base, const O&... o) {
  (
      [&] {
        if constexpr (Schedule<std::decay_t<O>>) t.set_learning_rate(o.lr(step, total, base));
      }(),
      ...);
}

/// Discriminative learning rates (ULMFiT): the head at the base rate, each parametric layer below
/// it at the rate of the one above divided by factor.
struct discriminative_hook {
  double factor = 2.6;
  template <class Tr> void start(Tr& t) {
    constexpr auto parametric = parametric_layers<typename Tr::model_type>();
    double m = 1.0;
    for (std::size_t k = parametric.size(); k-- > 0; m /= factor)
      t.set_lr_multiplier(parametric[k], m);
  }
};

/// Gradual unfreezing (ULMFiT): stage s trains the top s+1 parametric layers; the boundary moves
/// down one parametric layer every stage_steps steps (0: the run split evenly).
struct gradual_hook {
  std::size_t stage_steps = 0;
  std::size_t total = 0;
  template <class Tr> void start(Tr&) {
    constexpr auto parametric = parametric_layers<typename Tr::model_type>();
    if (stage_steps == 0) stage_steps = std::max<std::size_t>(1, total / parametric.size());
  }
  template <class Tr> void before_step(Tr& t, std::size_t step) {
    constexpr auto parametric = parametric_layers<typename Tr::model_type>();
    const std::size_t stage = std::min(step / stage_steps, parametric.size() - 1);
    t.set_trainable_from(parametric[parametric.size() - 1 - stage]);
  }
};

/// L2-SP (Li et al. 2018): alpha * (w - w0) added to the gradient of every backbone tensor that
/// trains now, beta * w to the head's. w0 (the anchor) is each tensor's value when the run
/// starts, kept per layer and tensor; checkpoints save it (for_each_anchor).
template <class Tr> struct l2_sp_hook {
  using T = typename Tr::T;
  l2_sp opt{};
  std::array<std::array<std::vector<T>, max_params_per_layer>, Tr::L> anchor{};

  void start(Tr& t) {
    t.for_each_trainable(
        [&](std::size_t layer, std::size_t j, role, const T* w, T*, std::size_t size) {
          if (anchor[layer][j].empty()) anchor[layer][j].assign(w, w + size);
        },
        true);
  }
  void after_gradients(Tr& t, double) {
    t.for_each_trainable(
        [&](std::size_t layer, std::size_t j, role, const T* w, T* g, std::size_t size) {
          if (layer == Tr::model_type::head_index) {
            const auto beta = static_cast<T>(opt.beta);
            for (std::size_t i = 0; i < size; ++i) g[i] += beta * w[i];
          } else {
            const auto alpha = static_cast<T>(opt.alpha);
            const T* w0 = anchor[layer][j].data();
            for (std::size_t i = 0; i < size; ++i) g[i] += alpha * (w[i] - w0[i]);
          }
        });
  }
  /// The anchor tensors in a fixed order (layer, then tensor), for checkpoints.
  template <class F> void for_each_anchor(F&& f) {
    for (auto& layer : anchor)
      for (auto& a : layer)
        if (!a.empty()) f(a);
  }
};

/// The divergence guard's bookkeeping: the running minimum of the loss, the weights (parameters
/// and buffers) that reached it, and the count of steps in a row above factor x minimum.
template <class T> struct divergence_watch {
  divergence_guard opt{};
  double best = 0;
  std::size_t best_step = 0, above = 0;
  std::vector<T> best_weights;

  template <class M> void start(const divergence_guard& g, const M&) {
    opt = g;
    best_weights.resize(M::parameter_count + M::buffer_scalars);
  }
  /// Called after the gradients of `step` (1-based) and before its update: the weights are the
  /// ones that gave `loss`.
  template <class M> void observe(M& net, std::size_t step, double loss, train_report& rep) {
    if (best_step == 0 || loss < best) {
      best = loss;
      best_step = step;
      above = 0;
      std::size_t k = 0;
      net.for_each_saved([&](std::size_t, const T* p, std::size_t n) {
        std::copy_n(p, n, best_weights.data() + k);
        k += n;
      });
      return;
    }
    if (step <= opt.warmup || !(loss > opt.factor * best)) {
      above = 0;
      return;
    }
    if (++above < opt.patience) return;
    char buf[160];
    std::snprintf(buf, sizeof buf, "loss %.6g above %.6g x its minimum %.6g for %zu steps", loss,
                  opt.factor, best, above);
    fail(net, step, buf, rep);
  }
  /// Restores the best weights and throws divergence_error (why: what was seen at `step`).
  template <class M>
  [[noreturn]] void fail(M& net, std::size_t step, const std::string& why, train_report& rep) {
    if (best_step == 0) throw training_error(why);  // nothing better to go back to
    std::size_t k = 0;
    net.for_each_saved([&](std::size_t, T* p, std::size_t n) {
      std::copy_n(best_weights.data() + k, n, p);
      k += n;
    });
    rep.diverged = true;
    rep.best_step = best_step;
    rep.best_loss = best;
    rep.steps = step - 1;
    throw divergence_error("graft: training diverged at step " + std::to_string(step) + " (" + why +
                               "); the divergence guard restored the weights of step " +
                               std::to_string(best_step) + " (loss " + std::to_string(best) +
                               "), the best seen",
                           rep);
  }
};

}  // namespace detail
GRAFT_END_NAMESPACE
