// pretrain and evaluate: the training loop over a dataset (shuffling, batching, partial last
// batch, callbacks, progress) and the evaluation (loss, accuracy, confusion matrix).
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <numeric>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "graft/data/dataset.hpp"
#include "graft/optim/schedules.hpp"
#include "graft/train/checkpoint.hpp"
#include "graft/train/options.hpp"
#include "graft/train/progress.hpp"
#include "graft/train/trainer.hpp"
#include "graft/train/validate.hpp"

GRAFT_BEGIN_NAMESPACE

/// What a training run reports.
struct train_report {
  std::size_t epochs = 0;
  std::size_t steps = 0;
  std::size_t samples = 0;
  double final_loss = 0;  ///< mean loss over the last epoch (or the run, when shorter)
  double seconds = 0;
  bool cached_features = false;  ///< whether a frozen prefix was computed once and cached
  std::size_t resumed_from = 0;  ///< steps taken before this call (resume{...}), else 0
  bool diverged = false;         ///< the divergence guard stopped the run (see divergence_guard)
  std::size_t best_step = 0;     ///< divergence guard: the step whose weights were restored
  double best_loss = 0;          ///< divergence guard: that step's loss
  double samples_per_second() const {
    return seconds > 0 ? static_cast<double>(samples) / seconds : 0;
  }
};

/// Thrown when the divergence guard stops a run; report() says where it stopped and which step's
/// weights the model holds now.
class divergence_error : public training_error {
 public:
  divergence_error(const std::string& what, train_report r)
      : training_error(what), report_(std::move(r)) {}
  const train_report& report() const noexcept { return report_; }

 private:
  train_report report_;
};

namespace detail {
inline std::string shape_string(const std::vector<std::size_t>& dims) {
  std::string s;
  for (auto d : dims) {
    if (!s.empty()) s += 'x';
    s += std::to_string(d);
  }
  return s.empty() ? "scalar" : s;
}
inline std::vector<std::size_t> squeeze_leading_ones(std::vector<std::size_t> d) {
  while (d.size() > 1 && d.front() == 1) d.erase(d.begin());
  return d;
}

/// Refuses a dataset that does not fit the model: sample shape, label range, target size.
template <class M> void check_dataset(const data::dataset& ds) {
  using In = typename M::input_shape;
  const std::vector<std::size_t> model_dims(In::dims.begin(), In::dims.end());
  if (squeeze_leading_ones(ds.sample_shape) != squeeze_leading_ones(model_dims))
    throw std::invalid_argument(
        "graft: dataset '" + ds.name + "' has samples of shape " + shape_string(ds.sample_shape) +
        " (" + std::to_string(ds.sample_size()) + " values), but the model's input is " +
        In::str() + " (" + std::to_string(In::size) + " values)");
  using H = typename M::head_type;
  if constexpr (H::is_classifier) {
    if (ds.labels.size() != ds.size())
      throw std::invalid_argument("graft: dataset '" + ds.name + "' has " +
                                  std::to_string(ds.labels.size()) + " labels for " +
                                  std::to_string(ds.size()) + " samples");
    for (std::size_t i = 0; i < ds.labels.size(); ++i)
      if (ds.labels[i] < 0 || static_cast<std::size_t>(ds.labels[i]) >= H::classes)
        throw std::invalid_argument(
            "graft: dataset '" + ds.name + "': sample " + std::to_string(i) + " has label " +
            std::to_string(ds.labels[i]) + ", but " + H::name() + " expects labels 0.." +
            std::to_string(H::classes - 1) + " (use only_classes(...).relabeled() to map classes)");
  } else {
    if (ds.target_size != M::loss::target_size || ds.targets.size() != ds.size() * ds.target_size)
      throw std::invalid_argument("graft: dataset '" + ds.name + "' has " +
                                  std::to_string(ds.target_size) + " targets per sample, but " +
                                  H::name() + " expects " + std::to_string(M::loss::target_size));
  }
}

/// Copies the targets of rows idx[0..rows) into tgt.
template <class M, class Target> void gather_targets(const data::dataset& ds,
                                                     const std::size_t* idx, std::size_t rows,
                                                     Target* tgt) {
  for (std::size_t r = 0; r < rows; ++r) {
    if constexpr (M::head_type::is_classifier) {
      tgt[r] = ds.labels[idx[r]];
    } else {
      constexpr std::size_t k = M::loss::target_size;
      const float* t = ds.target(idx[r]);
      std::copy(t, t + k, tgt + r * k);
    }
  }
}

/// Copies rows idx[0..rows) of the dataset into the input buffer and their targets into tgt.
template <class M, class T, class Target> void gather(const data::dataset& ds,
                                                      const std::size_t* idx, std::size_t rows,
                                                      T* input, Target* tgt) {
  constexpr std::size_t n = M::input_shape::size;
  for (std::size_t r = 0; r < rows; ++r) {
    const float* s = ds.sample(idx[r]);
    std::copy(s, s + n, input + r * n);
  }
  gather_targets<M>(ds, idx, rows, tgt);
}

template <class T> struct is_schedule_option : std::bool_constant<Schedule<T>> {};

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

/// The training loop shared by pretrain and finetune.
template <class Policy, std::size_t B, class M, class Opt, class... Options>
train_report fit(M& net, const data::dataset& ds, Opt opt, Options&... options) {
  validate_options(opt, options...);
  check_dataset<M>(ds);
  if (ds.size() == 0) throw std::invalid_argument("graft: dataset '" + ds.name + "' is empty");
  using tr = trainer<M, B, Opt, Policy>;
  using T = typename M::scalar;
  auto t = std::make_unique<tr>(net, opt);
  const std::size_t n = ds.size();
  const std::size_t per_epoch = (n + B - 1) / B;
  const auto ep = option_or(epochs{0}, options...);
  const auto st = option_or(steps{0}, options...);
  if (ep.value == 0 && st.value == 0)
    throw std::invalid_argument("graft: pass epochs{n} or steps{n}");
  const std::size_t total = st.value != 0 ? st.value : ep.value * per_epoch;
  const std::size_t n_epochs = (total + per_epoch - 1) / per_epoch;
  const seed shuffle_seed = option_or(seed{0}, options...);
  constexpr bool checkpointing = has_option<checkpoint, Options...>;
  constexpr bool resuming = has_option<resume, Options...>;
  const checkpoint ckpt = option_or(checkpoint{}, options...);
  if (checkpointing && (ckpt.every == 0 || ckpt.path.empty()))
    throw std::invalid_argument("graft: option checkpoint{path, every} needs a path and every > 0");
  run_position pos{total, n, shuffle_seed.value, 0, 0.0, 0, 0};
  constexpr bool guarded = has_option<divergence_guard, Options...>;
  progress_line bar(option_or(progress{true}, options...).enabled);

  // ---- strategies -----------------------------------------------------------------------------
  constexpr auto parametric = parametric_layers<M>();
  if constexpr (has_option<discriminative_lr, Options...>) {
    const double f = option_or(discriminative_lr{}, options...).factor;
    double m = 1.0;
    for (std::size_t k = parametric.size(); k-- > 0; m /= f) t->set_lr_multiplier(parametric[k], m);
  }
  constexpr bool gradual = has_option<gradual_unfreezing, Options...>;
  std::size_t stage_steps = 0;
  if constexpr (gradual) {
    stage_steps = option_or(gradual_unfreezing{}, options...).stage_steps;
    if (stage_steps == 0) stage_steps = std::max<std::size_t>(1, total / parametric.size());
  }
  constexpr bool penalty = has_option<l2_sp, Options...>;
  std::vector<std::vector<T>> start_weights;  // L2-SP's w0, one vector per trainable tensor
  l2_sp sp{};
  if constexpr (penalty) {
    sp = option_or(l2_sp{}, options...);
    t->for_each_trainable([&](std::size_t, std::size_t, role, const T* w, T*, std::size_t size) {
      start_weights.emplace_back(w, w + size);
    });
  }

  // ---- resume: the whole checkpoint is validated before the model or the trainer change -------
  if constexpr (resuming) {
    std::size_t words = 0, anchor = 0;
    for_each_rng_word(net, [&](std::uint64_t&) { ++words; });
    for (const auto& a : start_weights) anchor += a.size();
    const auto c = read_checkpoint<tr>(option_or(resume{}, options...).path, pos, words, anchor);
    apply_checkpoint(*t, c, start_weights);
    pos = c.pos;
  }

  // ---- feature cache of the frozen prefix -----------------------------------------------------
  constexpr std::size_t K = tr::lowest_trainable < M::layer_count ? tr::lowest_trainable : 0;
  constexpr std::size_t feature_size = tr::plan::sizes[K];
  const bool cached = K > 0 && option_or(feature_cache{}, options...).enabled;
  std::vector<T> cache;
  std::vector<std::size_t> order(n);
  std::vector<typename tr::target_type> targets(B * tr::target_size);
  if (cached) {
    cache.resize(n * feature_size);
    for (std::size_t start = 0; start < n; start += B) {
      const std::size_t rows = std::min(B, n - start);
      std::iota(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(rows), start);
      gather<M>(ds, order.data(), rows, t->input(), targets.data());
      t->forward(rows, 0, K);
      std::copy(t->activation(K), t->activation(K) + rows * feature_size,
                cache.begin() + static_cast<std::ptrdiff_t>(start * feature_size));
    }
  }

  train_report rep;
  std::size_t step = pos.step;
  rep.resumed_from = step;
  rep.samples = pos.samples;
  divergence_watch<T> watch;
  if constexpr (guarded) watch.start(option_or(divergence_guard{}, options...), net);
  for (std::size_t e = step / per_epoch; e < n_epochs && step < total; ++e) {
    std::iota(order.begin(), order.end(), std::size_t{0});
    splitmix64 rng = splitmix64::stream(shuffle_seed, e);
    for (std::size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
    // a run resumed in the middle of an epoch continues that epoch's order and its loss sums
    const bool resumed_epoch = pos.step % per_epoch != 0 && e == pos.step / per_epoch;
    double epoch_loss = resumed_epoch ? pos.epoch_loss : 0.0;
    std::size_t epoch_rows = resumed_epoch ? pos.epoch_rows : 0;
    for (std::size_t b = resumed_epoch ? step % per_epoch : 0; b < per_epoch && step < total; ++b) {
      const std::size_t rows = std::min(B, n - b * B);
      const std::size_t* idx = order.data() + b * B;
      if (cached) {
        gather_targets<M>(ds, idx, rows, targets.data());
        T* in = t->activation(K);
        for (std::size_t r = 0; r < rows; ++r)
          std::copy_n(cache.data() + idx[r] * feature_size, feature_size, in + r * feature_size);
      } else {
        gather<M>(ds, idx, rows, t->input(), targets.data());
      }
      (
          [&] {
            if constexpr (is_schedule_option<std::decay_t<Options>>::value)
              t->set_learning_rate(options.lr(step, total, static_cast<double>(opt.lr)));
          }(),
          ...);
      if constexpr (gradual) {
        const std::size_t stage = std::min(step / stage_steps, parametric.size() - 1);
        t->set_trainable_from(parametric[parametric.size() - 1 - stage]);
      }
      auto one_step = [&] {
        const double loss = t->compute_gradients(targets.data(), rows, cached ? K : 0);
        if constexpr (penalty) {
          std::size_t k = 0;
          const std::size_t lo = t->trainable_from();
          t->set_trainable_from(0);
          t->for_each_trainable(
              [&](std::size_t layer, std::size_t, role, const T* w, T* g, std::size_t size) {
                const T* w0 = start_weights[k++].data();
                if (layer < lo) return;  // not training yet (gradual unfreezing)
                if (layer == M::head_index) {
                  const auto beta = static_cast<T>(sp.beta);
                  for (std::size_t i = 0; i < size; ++i) g[i] += beta * w[i];
                } else {
                  const auto alpha = static_cast<T>(sp.alpha);
                  for (std::size_t i = 0; i < size; ++i) g[i] += alpha * (w[i] - w0[i]);
                }
              });
          t->set_trainable_from(lo);
        }
        t->check_gradients();
        if constexpr (guarded) watch.observe(net, step + 1, loss, rep);
        t->apply_update();
        return loss;
      };
      double loss = 0;
      if constexpr (guarded) {
        try {
          loss = one_step();
        } catch (const divergence_error&) {
          throw;
        } catch (const training_error& err) {  // a non-finite loss, gradient or update diverged too
          watch.fail(net, step + 1, err.what(), rep);
        }
      } else {
        loss = one_step();
      }
      ++step;
      epoch_loss += loss * static_cast<double>(rows);
      epoch_rows += rows;
      rep.samples += rows;
      if constexpr (checkpointing) {
        if (step % ckpt.every == 0 || step == total)
          write_checkpoint(
              ckpt.path, *t,
              run_position{total, n, shuffle_seed.value, step, epoch_loss, epoch_rows, rep.samples},
              start_weights);
      }
      invoke_callbacks<is_on_step>(step_info{e, step, total, rows, loss, t->learning_rate()},
                                   options...);
      bar.update(e, n_epochs, step, total, loss, rep.samples);
    }
    rep.final_loss = epoch_loss / static_cast<double>(epoch_rows);
    rep.epochs = e + 1;
    invoke_callbacks<is_on_epoch>(epoch_info{e, step, rep.final_loss, bar.seconds()}, options...);
  }
  bar.finish();
  rep.steps = step;
  rep.seconds = bar.seconds();
  rep.cached_features = cached;
  return rep;
}
}  // namespace detail

/// Trains every parameter of net on ds (supervised pre-training on the source task).
/// Options: epochs{n} or steps{n}, batch<N> (64), seed{s} (shuffling), on_step(f), on_epoch(f),
/// quiet.
template <class M, class Opt, class... Options>
train_report pretrain(M& net, const data::dataset& ds, Opt opt, Options... options) {
  static_assert(is_model<M>::value, "graft: pretrain(net, ...): net must be a graft::model");
  static_assert(Optimizer<Opt>,
                "graft: pretrain: the third argument must be an optimizer (sgd, adam, adamw)");
  constexpr std::size_t B = detail::batch_of<Options...>();
  return detail::fit<freeze::none, B>(net, ds, opt, options...);
}

/// Fine-tunes net on ds under a freezing policy (freeze::none, freeze::backbone, freeze::first<N>,
/// freeze::bias_only, freeze::layers<I...>, freeze::all_of<...>). Frozen parameters get no
/// gradient buffer, no optimizer state and no update; layers below the lowest trainable one run
/// forward only, once per sample when the features are cached (the default).
/// Options as for pretrain, plus: discriminative_lr{f}, gradual_unfreezing{s}, l2_sp{a, b},
/// feature_cache{false}, and a learning-rate schedule (schedule::cosine{}, ...).
template <class Policy, class M, class Opt, class... Options>
train_report finetune(M& net, const data::dataset& ds, Opt opt, Options... options) {
  static_assert(is_model<M>::value, "graft: finetune(net, ...): net must be a graft::model");
  static_assert(
      FreezePolicy<Policy>,
      "graft: finetune<Policy>: Policy must be a freezing policy such as freeze::backbone");
  static_assert(Optimizer<Opt>,
                "graft: finetune: the third argument must be an optimizer (sgd, adam, adamw)");
  constexpr std::size_t B = detail::batch_of<Options...>();
  return detail::fit<Policy, B>(net, ds, opt, options...);
}

/// LP-FT (Kumar et al. 2022): a linear probe (backbone frozen, features cached) for probe_steps at
/// probe's rate, then full fine-tuning for full_steps at full's (lower) rate.
template <class M, class OptProbe, class OptFull, class... Options>
train_report lp_ft(M& net, const data::dataset& ds, OptProbe probe, OptFull full,
                   std::size_t probe_steps, std::size_t full_steps, Options... options) {
  auto a = finetune<freeze::backbone>(net, ds, probe, steps{probe_steps}, options...);
  auto b = finetune<freeze::none>(net, ds, full, steps{full_steps}, options...);
  b.steps += a.steps;
  b.samples += a.samples;
  b.seconds += a.seconds;
  return b;
}

/// Loss, accuracy and confusion matrix of a model on a dataset.
///
/// A sample whose outputs are not all finite (NaN inputs, or a model that overflowed) is flagged,
/// not scored: it counts in `nonfinite`, never as correct and never in the confusion matrix, and
/// `loss` is NaN when there is any. Check `finite()` before trusting the figures.
struct evaluation {
  std::size_t samples = 0;
  double loss = 0;      ///< mean loss (NaN when some output is not finite)
  double accuracy = 0;  ///< classifiers: fraction correct of all samples (NaN for regressors)
  std::size_t classes = 0;
  std::vector<std::size_t> confusion;  ///< classes x classes, row = true class, column = predicted
  std::size_t nonfinite = 0;           ///< samples whose outputs are NaN or infinite
  std::size_t first_nonfinite = 0;     ///< index of the first of them (when nonfinite > 0)
  bool finite() const noexcept { return nonfinite == 0; }
  std::size_t confusion_at(std::size_t truth, std::size_t predicted) const {
    return confusion[truth * classes + predicted];
  }
  friend std::ostream& operator<<(std::ostream& os, const evaluation& e) {
    os << "samples " << e.samples << "  loss " << e.loss;
    if (e.classes > 0) os << "  accuracy " << 100.0 * e.accuracy << "%";
    if (e.nonfinite > 0)
      os << "  NOT FINITE: " << e.nonfinite << " sample(s) with NaN/inf outputs, the first is "
         << e.first_nonfinite;
    return os;
  }
};

template <std::size_t B = 256, class M> evaluation evaluate(const M& net, const data::dataset& ds) {
  static_assert(is_model<M>::value, "graft: evaluate(net, ...): net must be a graft::model");
  detail::check_dataset<M>(ds);
  if (ds.size() == 0)
    throw std::invalid_argument("graft: evaluate: dataset '" + ds.name +
                                "' is empty (no loss or accuracy to report)");
  using T = typename M::scalar;
  using loss = typename M::loss;
  constexpr std::size_t out = M::output_shape::size;
  auto r = std::make_unique<runner<M, B>>();
  std::vector<typename loss::target_type> targets(B * loss::target_size);
  std::vector<std::size_t> idx(B);
  evaluation ev;
  ev.samples = ds.size();
  if constexpr (M::head_type::is_classifier) {
    ev.classes = M::head_type::classes;
    ev.confusion.assign(ev.classes * ev.classes, 0);
  }
  double total = 0;
  std::size_t correct = 0;
  for (std::size_t start = 0; start < ds.size(); start += B) {
    const std::size_t rows = std::min(B, ds.size() - start);
    std::iota(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(rows), start);
    detail::gather<M>(ds, idx.data(), rows, r->input(), targets.data());
    const T* z = r->forward(net, rows);
    total += loss::evaluate(z, targets.data(), rows, static_cast<T*>(nullptr), 0.0);
    std::array<bool, B> row_ok{};
    for (std::size_t k = 0; k < rows; ++k) {
      bool ok = true;
      for (std::size_t j = 0; j < out; ++j) ok = ok && std::isfinite(z[k * out + j]);
      row_ok[k] = ok;
      if (!ok && ev.nonfinite++ == 0) ev.first_nonfinite = start + k;
    }
    if constexpr (M::head_type::is_classifier)
      for (std::size_t k = 0; k < rows; ++k) {
        if (!row_ok[k]) continue;
        const T* zr = z + k * out;
        const auto pred = static_cast<std::size_t>(std::max_element(zr, zr + out) - zr);
        const auto truth = static_cast<std::size_t>(targets[k]);
        correct += pred == truth ? 1 : 0;
        ++ev.confusion[truth * ev.classes + pred];
      }
  }
  ev.loss = ev.nonfinite > 0 ? std::nan("") : total / static_cast<double>(ds.size());
  ev.accuracy = M::head_type::is_classifier
                    ? static_cast<double>(correct) / static_cast<double>(ds.size())
                    : std::nan("");
  return ev;
}

GRAFT_END_NAMESPACE
