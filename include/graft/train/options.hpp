// Options of pretrain/finetune, passed as trailing arguments in any order:
//   pretrain(net, data, sgd{...}, epochs{5}, batch<64>, seed{1}, on_step(f), quiet);
#pragma once
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "graft/diagnostics.hpp"
#include "graft/optim/schedules.hpp"
#include "graft/random/random.hpp"

GRAFT_BEGIN_NAMESPACE

struct epochs {
  std::size_t value = 1;
};
struct steps {
  std::size_t value = 0;
};
/// Compile-time batch size: buffers are sized with it. A last partial batch still trains.
template <std::size_t N> struct batch_size {
  static_assert(N > 0, "graft: batch<N> needs N > 0");
  static constexpr std::size_t value = N;
};
template <std::size_t N> inline constexpr batch_size<N> batch{};
inline constexpr std::size_t default_batch = 64;

/// Progress line on the terminal (default: on when stderr is a terminal, off otherwise).
struct progress {
  bool enabled = true;
};
inline constexpr progress quiet{false};

/// What a step or epoch callback receives.
struct step_info {
  std::size_t epoch;        ///< 0-based
  std::size_t step;         ///< 1-based, counted over the whole run
  std::size_t total_steps;  ///< planned steps of the run
  std::size_t rows;         ///< samples in this step (the last batch may be partial)
  double loss;              ///< mean loss of this step
  double learning_rate;
};
struct epoch_info {
  std::size_t epoch;  ///< 0-based
  std::size_t steps;  ///< steps so far
  double mean_loss;   ///< mean of the epoch's step losses, weighted by rows
  double seconds;     ///< since the start of the run
};

template <class F> struct on_step_t { F f; };
template <class F> struct on_epoch_t { F f; };
/// Called after every step with a step_info; return nothing.
template <class F> on_step_t<std::decay_t<F>> on_step(F&& f) { return {std::forward<F>(f)}; }
/// Called after every epoch with an epoch_info.
template <class F> on_epoch_t<std::decay_t<F>> on_epoch(F&& f) { return {std::forward<F>(f)}; }

namespace detail {
template <class T> struct is_batch : std::false_type {};
template <std::size_t N> struct is_batch<batch_size<N>> : std::true_type {};
template <class T> struct is_on_step : std::false_type {};
template <class F> struct is_on_step<on_step_t<F>> : std::true_type {};
template <class T> struct is_on_epoch : std::false_type {};
template <class F> struct is_on_epoch<on_epoch_t<F>> : std::true_type {};

template <class T> constexpr std::size_t batch_value_or_zero() {
  if constexpr (is_batch<T>::value)
    return T::value;
  else
    return 0;
}
template <class... O> constexpr std::size_t batch_of() {
  constexpr auto found = (std::size_t{0} + ... + (is_batch<std::decay_t<O>>::value ? 1 : 0));
  static_assert(found <= 1, "graft: more than one batch<N> option");
  constexpr auto b = (std::size_t{0} + ... + batch_value_or_zero<std::decay_t<O>>());
  return b == 0 ? default_batch : b;
}

/// The last option of type Want among opts, or def.
template <class Want, class... O> Want option_or(Want def, const O&... opts) {
  (
      [&] {
        if constexpr (std::is_same_v<std::decay_t<O>, Want>) def = opts;
      }(),
      ...);
  return def;
}
template <class Want, class... O>
constexpr bool has_option = (std::is_same_v<std::decay_t<O>, Want> || ...);

/// Calls every on_step (or on_epoch) option with info.
template <template <class> class Is, class Info, class... O>
void invoke_callbacks(const Info& info, O&... opts) {
  (
      [&] {
        if constexpr (Is<std::decay_t<O>>::value) opts.f(info);
      }(),
      ...);
}
}  // namespace detail

GRAFT_END_NAMESPACE

GRAFT_BEGIN_NAMESPACE

/// Fine-tuning options (see finetune):

/// Discriminative learning rates (ULMFiT): the head uses the base rate, each parametric layer
/// below it the rate of the layer above divided by `factor`.
struct discriminative_lr {
  double factor = 2.6;
};

/// Gradual unfreezing (ULMFiT): stage s trains the top s+1 parametric layers (the head first); the
/// boundary moves down one parametric layer every `stage_steps` steps (0: the run split evenly).
struct gradual_unfreezing {
  std::size_t stage_steps = 0;
};

/// L2-SP (Li et al. 2018): adds alpha * (w - w0) to the gradient of every trainable backbone
/// parameter (w0: its value when fine-tuning starts) and beta * w to the head's.
struct l2_sp {
  double alpha = 0.01;
  double beta = 0.0;
};

/// Divergence guard (opt-in): stop when the loss stays above factor x its running minimum for
/// `patience` steps in a row (not counting the first `warmup` steps), restore the weights that
/// reached the minimum, and throw divergence_error (whose report() says which step's weights the
/// model holds). Costs a copy of the weights whenever the loss reaches a new minimum.
struct divergence_guard {
  double factor = 4.0;
  std::size_t patience = 10;
  std::size_t warmup = 0;
};

/// Checkpoints (see train/checkpoint.hpp): write one to `path` every `every` steps (atomically,
/// replacing the last one) and at the end of the run.
struct checkpoint {
  std::string path;
  std::size_t every = 0;
};
/// Continue the run saved in the checkpoint at `path` (written by the same call with the same
/// model type, policy, optimizer, batch, step count, data set size and seed).
struct resume {
  std::string path;
};

/// Feature caching of a frozen prefix (on by default when the policy freezes the bottom layers):
/// the prefix runs once per sample and training reads the cached features. Turn it off with
/// feature_cache{false}, e.g. when samples are augmented on the fly.
struct feature_cache {
  bool enabled = true;
};

class collective;  // train/collective.hpp

/// Data parallelism (train/distributed.hpp): every rank of `comm` calls pretrain/finetune with the
/// same arguments and trains its share of every batch; the weights end bitwise equal on every rank
/// and equal to one process's with shards{the same count}.
struct distributed {
  collective* comm = nullptr;
};
/// Computes every batch as `count` shards (contiguous slices of the batch's rows) whose gradients
/// are summed in shard order: the arithmetic of a data-parallel run, on one process or several
/// (0, the default: the number of ranks with distributed, else 1, the plain step).
struct shards {
  std::size_t count = 0;
};

/// lp_ft's two phases, named: lp_ft(net, data, probe, full, probe_steps{150}, full_steps{150}).
struct probe_steps {
  std::size_t value = 0;
};
struct full_steps {
  std::size_t value = 0;
};

namespace detail {
// ---- strict options: every argument is a known option, and each kind is given at most once ----
enum class option_kind {
  unknown,
  length,  // epochs or steps
  batch,
  seed,
  progress,
  callback,  // on_step / on_epoch: several are allowed, all are called
  schedule,
  discriminative_lr,
  gradual_unfreezing,
  l2_sp,
  feature_cache,
  checkpoint,
  resume,
  divergence_guard,
  distributed,
  shards,
};
template <class O> constexpr option_kind kind_of() {
  using D = std::decay_t<O>;
  if constexpr (std::is_same_v<D, epochs> || std::is_same_v<D, steps>)
    return option_kind::length;
  else if constexpr (is_batch<D>::value)
    return option_kind::batch;
  else if constexpr (std::is_same_v<D, seed>)
    return option_kind::seed;
  else if constexpr (std::is_same_v<D, progress>)
    return option_kind::progress;
  else if constexpr (is_on_step<D>::value || is_on_epoch<D>::value)
    return option_kind::callback;
  else if constexpr (Schedule<D>)
    return option_kind::schedule;
  else if constexpr (std::is_same_v<D, discriminative_lr>)
    return option_kind::discriminative_lr;
  else if constexpr (std::is_same_v<D, gradual_unfreezing>)
    return option_kind::gradual_unfreezing;
  else if constexpr (std::is_same_v<D, l2_sp>)
    return option_kind::l2_sp;
  else if constexpr (std::is_same_v<D, feature_cache>)
    return option_kind::feature_cache;
  else if constexpr (std::is_same_v<D, checkpoint>)
    return option_kind::checkpoint;
  else if constexpr (std::is_same_v<D, resume>)
    return option_kind::resume;
  else if constexpr (std::is_same_v<D, divergence_guard>)
    return option_kind::divergence_guard;
  else if constexpr (std::is_same_v<D, distributed>)
    return option_kind::distributed;
  else if constexpr (std::is_same_v<D, shards>)
    return option_kind::shards;
  else
    return option_kind::unknown;
}

/// Fails to compile, naming the option, when an argument is not an option allowed here (Allowed:
/// a predicate on option_kind).
template <class Allowed, class O> constexpr void require_option() {
  if constexpr (kind_of<O>() == option_kind::unknown || !Allowed{}(kind_of<O>()))
    (void)sizeof(error::unknown_option<std::decay_t<O>>);
}
/// The first option of a kind given twice, or void.
template <class... O> struct first_duplicate { using type = void; };
template <class A, class... O> struct first_duplicate<A, O...> {
  static constexpr bool repeated =
      kind_of<A>() != option_kind::callback && ((kind_of<A>() == kind_of<O>()) || ...);
  using type = std::conditional_t<repeated, std::decay_t<A>, typename first_duplicate<O...>::type>;
};
template <class Allowed, class... O>
constexpr bool options_ok = ((kind_of<O>() != option_kind::unknown && Allowed{}(kind_of<O>())) &&
                             ...) &&
                            std::is_void_v<typename first_duplicate<O...>::type>;

/// Every argument a known option allowed here, each kind (but callbacks) at most once.
template <class Allowed, class... O> constexpr void require_options() {
  (require_option<Allowed, O>(), ...);
  using D = typename first_duplicate<O...>::type;
  if constexpr (!std::is_void_v<D>) (void)sizeof(error::duplicate_option<D>);
}

struct any_training_option {
  constexpr bool operator()(option_kind) const { return true; }
};
/// lp_ft runs two finetune calls: its lengths are probe_steps / full_steps, and one checkpoint file
/// cannot serve both.
struct lp_ft_option {
  constexpr bool operator()(option_kind k) const {
    return k != option_kind::length && k != option_kind::checkpoint && k != option_kind::resume;
  }
};
struct evaluate_option {
  constexpr bool operator()(option_kind k) const {
    return k == option_kind::batch || k == option_kind::distributed;
  }
};
}  // namespace detail

GRAFT_END_NAMESPACE
