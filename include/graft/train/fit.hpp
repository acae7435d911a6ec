// pretrain, finetune, lp_ft: the training loop over a data set (shuffling, batching, a partial
// last batch, callbacks, progress, checkpoints), with the strategies (train/strategies.hpp), the
// feature cache (train/feature_cache.hpp) and evaluate (train/evaluate.hpp) each in its own header.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "graft/data/dataset.hpp"
#include "graft/train/batches.hpp"
#include "graft/train/checkpoint.hpp"
#include "graft/train/distributed.hpp"
#include "graft/train/evaluate.hpp"
#include "graft/train/feature_cache.hpp"
#include "graft/train/options.hpp"
#include "graft/train/progress.hpp"
#include "graft/train/report.hpp"
#include "graft/train/strategies.hpp"
#include "graft/train/trainer.hpp"
#include "graft/train/validate.hpp"

GRAFT_BEGIN_NAMESPACE
namespace detail {

/// The training loop shared by pretrain and finetune.
template <class Policy, std::size_t B, class M, class Opt, class... Options>
train_report fit(M& net, const data::dataset& ds, Opt opt, Options&... options) {
  validate_options(opt, options...);
  check_dataset<M>(ds);
  check_vocabulary(net, ds);
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
  // data parallelism (train/distributed.hpp): shards of every batch, on this rank or several
  sharded_step<tr> shard(option_or(shards{}, options...).count,
                         option_or(distributed{}, options...).comm);
  const bool lead = shard.rank() == 0;  // prints progress and writes checkpoints
  if constexpr (has_option<distributed, Options...>)
    shard.check_same_run("data set '" + ds.name + "' of " + std::to_string(n) + " samples, batch " +
                         std::to_string(B) + ", " + std::to_string(total) + " steps, seed " +
                         std::to_string(shuffle_seed.value) + ", " + std::to_string(shard.count()) +
                         " shards, model " + M::description());
  progress_line bar(lead && option_or(progress{true}, options...).enabled);

  // ---- strategies, each started once ----------------------------------------------------------
  constexpr bool discriminative = has_option<discriminative_lr, Options...>;
  constexpr bool gradual = has_option<gradual_unfreezing, Options...>;
  constexpr bool penalty = has_option<l2_sp, Options...>;
  constexpr bool guarded = has_option<divergence_guard, Options...>;
  discriminative_hook disc{option_or(discriminative_lr{}, options...).factor};
  gradual_hook unfreeze{option_or(gradual_unfreezing{}, options...).stage_steps, total};
  l2_sp_hook<tr> sp{option_or(l2_sp{}, options...)};
  no_anchors none;
  auto& anchors = [&]() -> auto& {
    if constexpr (penalty)
      return sp;
    else
      return none;
  }
  ();
  if constexpr (discriminative) disc.start(*t);
  if constexpr (gradual) unfreeze.start(*t);
  if constexpr (penalty) sp.start(*t);

  // ---- resume: the whole checkpoint is validated before the model or the trainer change -------
  if constexpr (resuming) {
    std::size_t words = 0, anchor_scalars = 0;
    for_each_rng_word(net, [&](std::uint64_t&) { ++words; });
    anchors.for_each_anchor([&](const std::vector<T>& a) { anchor_scalars += a.size(); });
    const auto c =
        read_checkpoint<tr>(option_or(resume{}, options...).path, pos, words, anchor_scalars);
    apply_checkpoint(*t, c, anchors);
    pos = c.pos;
  }

  // ---- feature cache of the frozen prefix (from the restored weights when resuming) ----------
  std::vector<typename tr::target_type> targets(B * tr::target_size);
  feature_cache_of<tr> cache(option_or(feature_cache{}, options...).enabled);
  cache.fill(*t, ds, targets.data());

  train_report rep;
  auto step = static_cast<std::size_t>(pos.step);
  rep.resumed_from = step;
  rep.samples = static_cast<std::size_t>(pos.samples);
  divergence_watch<T> watch;
  if constexpr (guarded) watch.start(option_or(divergence_guard{}, options...), net);
  std::vector<std::size_t> order(n);
  std::size_t at = step + 1;  // the step that is running, for a rank's failure
  try {
    for (std::size_t e = step / per_epoch; e < n_epochs && step < total; ++e) {
      std::iota(order.begin(), order.end(), std::size_t{0});
      splitmix64 rng = splitmix64::stream(shuffle_seed, e);
      fisher_yates(order.begin(), n, rng);
      // a run resumed in the middle of an epoch continues that epoch's order and its loss sums
      const bool resumed_epoch = pos.step % per_epoch != 0 && e == pos.step / per_epoch;
      double epoch_loss = resumed_epoch ? pos.epoch_loss : 0.0;
      std::size_t epoch_rows = resumed_epoch ? static_cast<std::size_t>(pos.epoch_rows) : 0;
      for (std::size_t b = resumed_epoch ? step % per_epoch : 0; b < per_epoch && step < total;
           ++b) {
        const std::size_t rows = std::min(B, n - b * B);
        at = step + 1;
        schedule_step(*t, step, total, static_cast<double>(opt.lr), options...);
        if constexpr (gradual) unfreeze.before_step(*t, step);
        auto after_gradients = [&](double loss) {
          if constexpr (penalty) sp.after_gradients(*t, loss);
          if constexpr (guarded) watch.observe(net, step + 1, loss, rep);
        };
        auto one_step = [&] {
          if (shard.plain()) {
            cache.load(*t, ds, order.data() + b * B, rows, targets.data());
            return t->step(targets.data(), rows, cache.start_layer(), after_gradients);
          }
          return shard.run(
              *t, rows, cache.start_layer(), targets.data(),
              [&](std::size_t first, std::size_t r) {
                cache.load(*t, ds, order.data() + b * B + first, r, targets.data());
              },
              after_gradients);
        };
        double loss = 0;
        if constexpr (guarded) {
          try {
            loss = one_step();
          } catch (const divergence_error&) {
            throw;
          } catch (const rank_failure&) {
            throw;
          } catch (const training_error& err) {
            // a non-finite loss, gradient or update diverged too
            watch.fail(net, step + 1, err.what(), rep);
          }
        } else {
          loss = one_step();
        }
        at = ++step;
        epoch_loss += loss * static_cast<double>(rows);
        epoch_rows += rows;
        rep.samples += rows;
        if constexpr (checkpointing) {
          if (lead && (step % ckpt.every == 0 || step == total))
            write_checkpoint(ckpt.path, *t,
                             run_position{total, n, shuffle_seed.value, step, epoch_loss,
                                          epoch_rows, rep.samples},
                             anchors);
        }
        invoke_callbacks<is_on_step>(step_info{e, step, total, rows, loss, t->learning_rate()},
                                     options...);
        bar.update(e, n_epochs, step, total, loss, rep.samples);
      }
      rep.final_loss = epoch_loss / static_cast<double>(epoch_rows);
      rep.epochs = e + 1;
      invoke_callbacks<is_on_epoch>(epoch_info{e, step, rep.final_loss, bar.seconds()}, options...);
    }
    shard.finish();
  } catch (const rank_failure&) {
    throw;  // another rank's failure: every rank stops with its message
  } catch (const std::exception& err) {
    // This rank's own error. An error every rank meets at once (a refused update, a divergence)
    // also lands here on each of them: their reports are never read, which costs nothing.
    shard.report_failure(at, err.what());
    throw;
  }
  bar.finish();
  rep.steps = step;
  rep.seconds = bar.seconds();
  rep.cached_features = cache.enabled();
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
  detail::require_options<detail::any_training_option, Options...>();
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
  detail::require_options<detail::any_training_option, Options...>();
  constexpr std::size_t B = detail::batch_of<Options...>();
  return detail::fit<Policy, B>(net, ds, opt, options...);
}

/// LP-FT (Kumar et al. 2022): a linear probe (backbone frozen, features cached) for probe_steps at
/// probe's rate, then full fine-tuning for full_steps at full's (lower) rate:
///   lp_ft(net, data, sgd{.lr = 0.1f}, sgd{.lr = 0.01f}, probe_steps{150}, full_steps{150}, ...)
/// Other options as for finetune, but for epochs/steps (the phases have their own) and
/// checkpoint/resume (two runs; checkpoint each phase's finetune call instead).
template <class M, class OptProbe, class OptFull, class... Options>
train_report lp_ft(M& net, const data::dataset& ds, OptProbe probe, OptFull full,
                   probe_steps probe_n, full_steps full_n, Options... options) {
  detail::require_options<detail::lp_ft_option, Options...>();
  if constexpr (detail::options_ok<detail::lp_ft_option, Options...>) {  // else: one error above
    auto a = finetune<freeze::backbone>(net, ds, probe, steps{probe_n.value}, options...);
    auto b = finetune<freeze::none>(net, ds, full, steps{full_n.value}, options...);
    b.steps += a.steps;
    b.samples += a.samples;
    b.seconds += a.seconds;
    return b;
  } else {
    return {};
  }
}

GRAFT_END_NAMESPACE
