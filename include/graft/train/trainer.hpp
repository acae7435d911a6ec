// trainer<Model, Batch, Optimizer, Policy>: the forward/backward/update machinery for one model,
// with every buffer (activations, gradients, optimizer state) laid out while compiling in a single
// allocation made at construction. A step allocates nothing.
//
// The freezing policy is consulted at compile time: a frozen parameter tensor has no gradient
// buffer, no optimizer state and no gradient kernel call; layers below the lowest trainable layer
// get no backward call at all, and the lowest trainable layer computes no input gradient.
#pragma once
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "graft/freeze/plan.hpp"
#include "graft/freeze/policy.hpp"
#include "graft/kernels/elementwise.hpp"
#include "graft/kernels/parallel.hpp"
#include "graft/model/model.hpp"
#include "graft/model/plan.hpp"
#include "graft/model/runner.hpp"
#include "graft/optim/optimizers.hpp"
#include "graft/train/arena.hpp"

GRAFT_BEGIN_NAMESPACE

/// Thrown when the loss or a gradient stops being finite; names the step and where.
class training_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class M, std::size_t Batch, class Opt, class Policy = freeze::none> class trainer {
  static_assert(is_model<M>::value, "graft: trainer<M, ...>: M must be a graft::model");
  static_assert(Batch > 0, "graft: the batch size must be positive");
  static_assert(FreezePolicy<Policy>,
                "graft: not a freezing policy (needs static trains(layer_info, role) or "
                "trains(layer_info, const param_desc&))");

 public:
  using model_type = M;
  using T = typename M::scalar;
  using plan = detail::model_plan<M>;
  using loss = typename M::loss;
  using target_type = typename loss::target_type;
  static constexpr std::size_t L = M::layer_count;
  static constexpr std::size_t batch = Batch;
  static constexpr std::size_t target_size = loss::target_size;
  static constexpr std::array<unsigned, L> grad_masks = plan::template grad_masks<Policy>;
  static constexpr std::size_t lowest_trainable = plan::template lowest_trainable<Policy>;
  /// Layers that normalise with batch statistics in training (see freeze::statistics).
  static constexpr std::array<bool, L> batch_stats = plan::template batch_stats<Policy>;
  /// The fewest rows a training batch may have (2 with a batch norm over flat features that uses
  /// batch statistics), and the first layer that asks for it.
  static constexpr std::pair<std::size_t, std::size_t> min_rows = [] {
    std::pair<std::size_t, std::size_t> m{1, L};
    meta::static_for<L>([&](auto i) {
      const std::size_t r = detail::min_batch_rows_v<typename M::template layer_type<i>>;
      if (batch_stats[i] && r > m.first) m = {r, i};
    });
    return m;
  }();

  static constexpr bool trains(std::size_t layer, std::size_t param) noexcept {
    return (grad_masks[layer] >> param & 1U) != 0;
  }
  /// Whether layer i runs backward at all, and whether it computes its input gradient.
  static constexpr bool runs_backward(std::size_t layer) noexcept {
    return layer >= lowest_trainable;
  }
  static constexpr bool computes_input_grad(std::size_t layer) noexcept {
    return layer > lowest_trainable;
  }

 private:
  // ---- arena layout, in elements of T, each region aligned -------------------------------------
  struct layout_t {
    std::array<std::size_t, L + 1> act{};
    std::array<std::size_t, 2> delta{};
    std::array<std::size_t, L> ws{};
    std::array<std::array<std::size_t, detail::max_params_per_layer>, L> grad{};
    std::array<std::array<std::array<std::size_t, detail::max_params_per_layer>, L>,
               Opt::state_count == 0 ? 1 : Opt::state_count>
        state{};
    std::size_t trainable_parameters = 0;
    std::size_t total = 0;
  };
  static constexpr layout_t make_layout() {
    layout_t l{};
    region_cursor<T> cursor;
    auto take = [&](std::size_t n) { return cursor.take(n); };
    // Activations: the input, then one region per layer output from the lowest trainable layer's
    // input upwards (backward reads them). A frozen prefix below it runs forward only, so its
    // outputs share two ping-pong regions.
    l.act[0] = take(Batch * plan::sizes[0]);
    constexpr auto side = plan::sides(lowest_trainable, -1);
    std::array<std::size_t, 2> prefix_widest{};  // the two sides of the prefix's outputs
    for (std::size_t i = 1; i < lowest_trainable; ++i)
      prefix_widest[static_cast<std::size_t>(side[i])] =
          std::max(prefix_widest[static_cast<std::size_t>(side[i])], plan::sizes[i]);
    if (lowest_trainable > 1) {
      const std::array<std::size_t, 2> region{take(Batch * prefix_widest[0]),
                                              take(Batch * prefix_widest[1])};
      for (std::size_t i = 1; i < lowest_trainable; ++i)
        l.act[i] = region[static_cast<std::size_t>(side[i])];
    }
    for (std::size_t i = std::max<std::size_t>(1, lowest_trainable); i <= L; ++i)
      l.act[i] = take(Batch * plan::sizes[i]);
    for (auto& d : l.delta) d = take(Batch * plan::widest);
    meta::static_for<L>([&](auto i) {
      l.ws[i] = take(detail::training_workspace_of<typename M::template layer_type<i>>(Batch));
    });
    std::array<std::array<std::size_t, detail::max_params_per_layer>, L> psize{};
    meta::static_for<L>([&](auto i) {
      using Layer = typename M::template layer_type<i>;
      for (std::size_t j = 0; j < Layer::params.size(); ++j) psize[i][j] = Layer::params[j].size;
    });
    for (std::size_t i = 0; i < L; ++i)
      for (std::size_t j = 0; j < plan::param_tensors[i]; ++j)
        if (trains(i, j)) {
          l.grad[i][j] = take(psize[i][j]);
          l.trainable_parameters += psize[i][j];
        }
    for (std::size_t s = 0; s < Opt::state_count; ++s)
      for (std::size_t i = 0; i < L; ++i)
        for (std::size_t j = 0; j < plan::param_tensors[i]; ++j)
          if (trains(i, j)) l.state[s][i][j] = take(psize[i][j]);
    l.total = cursor.at;
    return l;
  }

 public:
  static constexpr layout_t layout = make_layout();
  /// Parameters that train under Policy; gradient and optimizer-state bytes follow from it.
  static constexpr std::size_t trainable_parameter_count = layout.trainable_parameters;
  static constexpr std::size_t gradient_bytes = trainable_parameter_count * sizeof(T);
  static constexpr std::size_t optimizer_state_bytes =
      Opt::state_count * trainable_parameter_count * sizeof(T);
  /// Everything a trainer allocates (activations, deltas, gradients, optimizer state, padding).
  static constexpr std::size_t arena_bytes = layout.total * sizeof(T);
  /// Training footprint: the model's parameters plus the trainer's arena.
  static constexpr std::size_t training_bytes = M::parameter_bytes + arena_bytes;

  /// The optimizer's name (checkpoints record it), "optimizer" for one without a name.
  static std::string optimizer_name() {
    if constexpr (requires { Opt::name; })
      return Opt::name;
    else
      return "optimizer";
  }

  trainer(M& net, Opt opt) : net_(&net), opt_(opt), arena_(layout.total) {
    lr_multiplier_.fill(1.0);
  }

  M& model() noexcept { return *net_; }
  const Opt& optimizer() const noexcept { return opt_; }
  Opt& optimizer() noexcept { return opt_; }

  /// Input rows of the next step: Batch x input size.
  T* input() noexcept { return at(layout.act[0]); }
  /// Output (logits) of the last forward: Batch x output size.
  const T* output() const noexcept { return at(layout.act[L]); }
  /// Rows entering layer i (i = L: the output). Below the lowest trainable layer the regions are
  /// shared (a frozen prefix keeps nothing for backward), so only the latest is valid there.
  T* activation(std::size_t i) noexcept { return at(layout.act[i]); }
  /// Gradient buffer of a trainable parameter (nullptr when frozen).
  T* gradient(std::size_t layer, std::size_t param) noexcept {
    return layer < L && param < plan::param_tensors[layer] && trains(layer, param)
               ? at(layout.grad[layer][param])
               : nullptr;
  }
  /// Learning-rate multiplier of a layer (1 by default; discriminative rates set it).
  void set_lr_multiplier(std::size_t layer, double m) noexcept { lr_multiplier_[layer] = m; }
  /// The base learning rate used by the next update (schedules set it; starts at opt.lr).
  void set_learning_rate(double lr) noexcept { lr_ = lr; }
  double learning_rate() const noexcept { return lr_ < 0 ? static_cast<double>(opt_.lr) : lr_; }

  /// Runtime boundary within what Policy allows (gradual unfreezing): layers below `layer` get no
  /// backward call and no update. 0 (the default) leaves Policy's boundary as it is.
  void set_trainable_from(std::size_t layer) noexcept { from_ = layer; }
  std::size_t trainable_from() const noexcept {
    return from_ > lowest_trainable ? from_ : lowest_trainable;
  }

  /// Forward for the first `rows` rows through layers [start, stop): the rows start in
  /// activation(start) (input() when start is 0, cached features otherwise).
  /// Layers that train (at and above trainable_from()) run in training mode: dropout drops, batch
  /// norm uses batch statistics unless the policy freezes them. A frozen prefix runs in
  /// evaluation mode, so its features can be cached and its statistics stay as they are.
  /// A layer followed by an activation it can apply in its output pass (plan::fused) writes the
  /// activation's output directly; activation(i) of the skipped pre-activation is not written.
  /// A token model (input_tokens<L, V>) reads each sample's length from input() whatever start
  /// is (a feature cache puts the ids there too), and passes them to the masked layers.
  void forward(std::size_t rows, std::size_t start = 0, std::size_t stop = L) noexcept {
    const std::size_t lo = trainable_from();
    if constexpr (plan::masked) plan::token_lengths(input(), rows, tokens_.data());
    meta::static_for<L>([&](auto i) {
      if (i >= start && i < stop) {
        if constexpr (i > 0 && plan::fused[i - 1])
          if (i > start) return;  // applied by the layer before it, which ran in this pass
        auto& layer = net_->template layer<i>();
        const T* x = at(layout.act[i]);
        const sequence_mask m = mask_for<i>(rows);
        if constexpr (plan::fused[i]) {
          if (i + 1 < stop) {
            detail::forward_fused<typename M::template layer_type<i + 1>>(
                layer, x, at(layout.act[i + 2]), rows, at(layout.ws[i]), m);
            return;
          }
        }
        T* y = at(layout.act[i + 1]);
        T* ws = at(layout.ws[i]);
        if constexpr (i >= lowest_trainable) {
          if (i >= lo) {
            detail::forward_training<train_mode{batch_stats[i]}>(layer, x, y, rows, ws, m);
            return;
          }
        }
        detail::forward_eval(layer, x, y, rows, ws, m);
      }
    });
  }

  /// Mean loss of the last forward over `rows` rows, without gradients.
  double loss_of_forward(const target_type* targets, std::size_t rows) noexcept {
    return loss::evaluate(output(), targets, rows, static_cast<T*>(nullptr), 0.0) /
           static_cast<double>(rows);
  }

  /// Forward, loss, backward: fills the gradients of trainable parameters; returns the mean loss.
  /// With start > 0 the rows start in activation(start) (a cached frozen prefix). mean_rows > 0
  /// scales the gradients as a mean over that many rows instead of `rows`: a shard of a larger
  /// batch (train/distributed.hpp), whose gradients are then summed with the other shards'.
  double compute_gradients(const target_type* targets, std::size_t rows, std::size_t start = 0,
                           std::size_t mean_rows = 0) {
    if (rows < min_rows.first)
      throw training_error("graft: training step " + std::to_string(step_ + 1) + " has " +
                           std::to_string(rows) + " row(s); layer " +
                           std::to_string(min_rows.second) + " (" + layer_name(min_rows.second) +
                           ") needs at least " + std::to_string(min_rows.first) +
                           " rows for batch statistics (a smaller last batch: change the batch "
                           "size or the data set size, or freeze::statistics)");
    if (check_finite_) save_buffers();
    forward(rows, start);
    T* dz = at(layout.delta[0]);
    const double total = loss::evaluate(
        output(), targets, rows, dz, 1.0 / static_cast<double>(mean_rows > 0 ? mean_rows : rows));
    last_loss_total_ = total;
    const double mean = total / static_cast<double>(rows);
    if (!std::isfinite(mean)) {
      if (check_finite_) restore_buffers();
      throw training_error("graft: training stopped at step " + std::to_string(step_ + 1) +
                           ": the loss is " + std::to_string(mean) +
                           " (not finite); lower the learning rate or check the inputs for NaN");
    }
    backward(rows);
    return mean;
  }

  /// Checks every gradient for NaN/inf; throws training_error naming the layer and parameter
  /// (the running statistics that this step's forward moved are put back first).
  void check_gradients() {
    for (std::size_t i = 0; i < L; ++i)
      for (std::size_t j = 0; j < plan::param_tensors[i]; ++j) {
        if (!trains(i, j)) continue;
        if (!kernels::all_finite(at(layout.grad[i][j]), param_size(i, j))) {
          if (check_finite_) restore_buffers();
          throw training_error("graft: training stopped at step " + std::to_string(step_ + 1) +
                               ": a gradient of layer " + std::to_string(i) + " (" + layer_name(i) +
                               ") " + role_name(param_role(i, j)) +
                               " is not finite; lower the learning rate or check the inputs");
        }
      }
  }

  /// Applies the optimizer to every trainable parameter at or above trainable_from(). Each
  /// layer counts its own updates (Adam's bias correction starts when a layer starts training).
  ///
  /// With check_finite on (the default) a step that would leave a parameter NaN or infinite is
  /// undone and refused: training_error names the step, the layer and the tensor, and every
  /// parameter holds its value from before the step. The undo costs no memory: a gradient is dead
  /// once its update is applied, so each block of weights is saved into its own gradient buffer
  /// as it is updated. Consequently gradient() holds the pre-update weights after this call, and
  /// after a refused step the optimizer state (momentum, moments) is not restored, only the model.
  void apply_update() {
    ++step_;
    const std::size_t lo = trainable_from();
    const bool guard = check_finite_;
    bool bad = false;
    std::size_t bad_layer = 0, bad_param = 0;
    meta::static_for<L>([&](auto i) {
      auto& layer = net_->template layer<i>();
      using Layer = std::remove_cvref_t<decltype(layer)>;
      if constexpr (grad_masks[i] != 0) {
        if (i < lo) return;
        ++layer_steps_[i];
        meta::static_for<Layer::params.size()>([&](auto j) {
          if constexpr (trains(i, j)) {
            const update_context c{layer_steps_[i], learning_rate() * lr_multiplier_[i]};
            T* w = layer.param(j);
            T* g = at(layout.grad[i][j]);
            unsigned nonfinite = 0;
            // element-wise: large tensors are split between threads (when graft has them)
            parallel::for_range(Layer::params[j].size, parallel::min_elements,
                                [&](std::size_t b, std::size_t e) {
                                  T* state[Opt::state_count == 0 ? 1 : Opt::state_count]{};
                                  if (!guard) {
                                    for (std::size_t s = 0; s < Opt::state_count; ++s)
                                      state[s] = at(layout.state[s][i][j]) + b;
                                    opt_.update(w + b, g + b, state, e - b, c);
                                    return;
                                  }
                                  constexpr std::size_t block = 512;  // 2-4 KiB on the stack, in L1
                                  T old[block];
                                  unsigned local = 0;
                                  for (std::size_t s0 = b; s0 < e; s0 += block) {
                                    const std::size_t m = std::min(block, e - s0);
                                    std::copy_n(w + s0, m, old);
                                    for (std::size_t s = 0; s < Opt::state_count; ++s)
                                      state[s] = at(layout.state[s][i][j]) + s0;
                                    opt_.update(w + s0, g + s0, state, m, c);
                                    std::copy_n(old, m, g + s0);
                                    if (!kernels::all_finite(w + s0, m)) local = 1;
                                  }
                                  if (local != 0)
                                    std::atomic_ref<unsigned>(nonfinite).fetch_or(local);
                                });
            if (nonfinite != 0 && !bad) {
              bad = true;
              bad_layer = i;
              bad_param = j;
            }
          }
        });
      }
    });
    if (!bad) return;
    // Undo: every tensor updated in this step gets its saved weights back from its gradient.
    meta::static_for<L>([&](auto i) {
      auto& layer = net_->template layer<i>();
      using Layer = std::remove_cvref_t<decltype(layer)>;
      if constexpr (grad_masks[i] != 0) {
        if (i < lo) return;
        --layer_steps_[i];
        meta::static_for<Layer::params.size()>([&](auto j) {
          if constexpr (trains(i, j))
            std::copy_n(at(layout.grad[i][j]), Layer::params[j].size, layer.param(j));
        });
      }
    });
    restore_buffers();
    const std::size_t failed = step_--;
    throw training_error("graft: training stopped at step " + std::to_string(failed) +
                         ": its update made layer " + std::to_string(bad_layer) + " (" +
                         layer_name(bad_layer) + ") " +
                         role_name(param_role(bad_layer, bad_param)) +
                         " not finite (learning rate " + std::to_string(learning_rate()) +
                         "); the step was undone, the model holds its weights from before it");
  }

  /// Calls f(layer, param_index, role, T* param, T* grad, size) for every parameter that
  /// trains now (at or above trainable_from()): for penalties such as L2-SP. With all_of_policy,
  /// every tensor the policy lets train, wherever the runtime boundary is.
  template <class F> void for_each_trainable(F&& f, bool all_of_policy = false) {
    const std::size_t lo = all_of_policy ? 0 : trainable_from();
    meta::static_for<L>([&](auto i) {
      auto& layer = net_->template layer<i>();
      using Layer = std::remove_cvref_t<decltype(layer)>;
      meta::static_for<Layer::params.size()>([&](auto j) {
        if constexpr (trains(i, j))
          if (i >= lo)
            f(std::size_t{i}, std::size_t{j}, Layer::params[j].kind, layer.param(j),
              at(layout.grad[i][j]), Layer::params[j].size);
      });
    });
  }

  /// One training step on the first `rows` rows of input() (or, with start > 0, of
  /// activation(start)); returns the mean loss. after_gradients(loss), when given, runs between
  /// the gradients and their check (penalties that add to the gradients, the divergence guard).
  template <class AfterGradients = void (*)(double)> double step(
      const target_type* targets, std::size_t rows, std::size_t start = 0,
      AfterGradients&& after_gradients = [](double) {}) {
    const double l = compute_gradients(targets, rows, start);
    after_gradients(l);
    if (check_finite_) check_gradients();
    apply_update();
    return l;
  }
  void check_finite(bool on) noexcept { check_finite_ = on; }
  /// The summed (not mean) loss of the last compute_gradients.
  double last_loss_total() const noexcept { return last_loss_total_; }
  /// The number of steps applied so far.
  std::size_t steps_done() const noexcept { return step_; }

  // ---- state for checkpoints -------------------------------------------------------------------
  /// Calls f(T* data, size) for every optimizer-state tensor (momentum buffers, Adam's moments),
  /// state slot by slot, layer by layer: everything an update reads besides weights and gradient.
  template <class F> void for_each_optimizer_state(F&& f) {
    for (std::size_t st = 0; st < Opt::state_count; ++st)
      for (std::size_t i = 0; i < L; ++i)
        for (std::size_t j = 0; j < plan::param_tensors[i]; ++j)
          if (trains(i, j)) f(at(layout.state[st][i][j]), param_size(i, j));
  }
  /// Updates applied by each layer (Adam's bias correction and the momentum start read them).
  const std::array<std::size_t, L>& layer_steps() const noexcept { return layer_steps_; }
  /// Sets the step counters (a resumed run continues counting where the checkpoint stopped).
  void restore_counters(std::size_t steps, const std::array<std::size_t, L>& per_layer) noexcept {
    step_ = steps;
    layer_steps_ = per_layer;
  }

  /// Calls f(layer index, T* data, size) for every buffer of the model (batch norm's running
  /// statistics), layer by layer.
  template <class F> void for_each_buffer_at(F&& f) {
    net_->for_each_layer([&](auto i, auto& l) {
      using Ly = std::remove_cvref_t<decltype(l)>;
      if constexpr (detail::buffer_count_v<Ly> != 0)
        for (std::size_t j = 0; j < Ly::buffers.size(); ++j)
          f(std::size_t{decltype(i)::value}, l.buffer(j), Ly::buffers[j]);
    });
  }

  /// Names for messages.
  static std::string layer_name(std::size_t i) {
    std::string n;
    meta::static_for<L>([&](auto k) {
      if (k == i) n = M::template layer_type<k>::name();
    });
    return n;
  }

 private:
  // Running statistics (batch norm's buffers) move in a training forward; a refused step puts
  // them back, so that a refused step leaves the whole model as it was.
  template <class F> void for_each_buffer(F&& f) {
    net_->for_each_layer([&](auto, auto& l) {
      using Ly = std::remove_cvref_t<decltype(l)>;
      if constexpr (detail::buffer_count_v<Ly> != 0)
        for (std::size_t j = 0; j < Ly::buffers.size(); ++j) f(l.buffer(j), Ly::buffers[j]);
    });
  }
  void save_buffers() {
    if constexpr (M::buffer_scalars > 0) {
      std::size_t k = 0;
      for_each_buffer([&](const T* b, std::size_t n) {
        std::copy_n(b, n, saved_buffers_.data() + k);
        k += n;
      });
    }
  }
  void restore_buffers() {
    if constexpr (M::buffer_scalars > 0) {
      std::size_t k = 0;
      for_each_buffer([&](T* b, std::size_t n) {
        std::copy_n(saved_buffers_.data() + k, n, b);
        k += n;
      });
    }
  }

  void backward(std::size_t rows) noexcept {
    if constexpr (lowest_trainable < L) {
      const std::size_t lo = trainable_from();
      meta::static_for_reverse<L>([&](auto i) {
        if constexpr (runs_backward(i)) {
          if (i < lo) return;
          constexpr std::size_t parity = (L - 1 - i) % 2;
          T* grads[detail::max_params_per_layer]{};
          for (std::size_t j = 0; j < plan::param_tensors[i]; ++j)
            if (trains(i, j)) grads[j] = at(layout.grad[i][j]);
          auto& layer = net_->template layer<i>();
          const T* x = at(layout.act[i]);
          const T* y = at(layout.act[i + 1]);
          const T* dy = at(layout.delta[parity]);
          T* dx = at(layout.delta[1 - parity]);
          T* ws = at(layout.ws[i]);
          const sequence_mask m = mask_for<i>(rows);  // the lengths of the last forward's batch
          if constexpr (computes_input_grad(i)) {
            if (i > lo) {
              detail::backward_of<true, grad_masks[i], train_mode{batch_stats[i]}>(
                  layer, x, y, dy, dx, grads, rows, ws, m);
              return;
            }
          }
          detail::backward_of<false, grad_masks[i], train_mode{batch_stats[i]}>(layer, x, y, dy, dx,
                                                                                grads, rows, ws, m);
        }
      });
    }
  }
  static std::size_t param_size(std::size_t i, std::size_t j) {
    std::size_t n = 0;
    meta::static_for<L>([&](auto k) {
      if constexpr (M::template layer_type<k>::params.size() > 0)
        if (k == i) n = M::template layer_type<k>::params[j].size;
    });
    return n;
  }
  static role param_role(std::size_t i, std::size_t j) {
    role r = role::weight;
    meta::static_for<L>([&](auto k) {
      if constexpr (M::template layer_type<k>::params.size() > 0)
        if (k == i) r = M::template layer_type<k>::params[j].kind;
    });
    return r;
  }
  T* at(std::size_t offset) noexcept { return arena_.data() + offset; }
  const T* at(std::size_t offset) const noexcept { return arena_.data() + offset; }

  M* net_;
  Opt opt_;
  arena<T> arena_;
  // A token model's lengths of the batch (plan::token_lengths) and their map through the layers
  // that change lengths; empty for other models.
  std::array<std::size_t, plan::masked ? Batch : 0> tokens_{};
  std::array<std::size_t, plan::masked ? Batch : 0> scratch_{};
  template <std::size_t I> sequence_mask mask_for(std::size_t rows) noexcept {
    return plan::template mask_for<I>(tokens_.data(), scratch_.data(), rows);
  }
  std::array<double, L> lr_multiplier_{};
  double lr_ = -1.0;
  std::size_t step_ = 0;
  std::size_t from_ = 0;
  std::array<std::size_t, L> layer_steps_{};
  bool check_finite_ = true;
  double last_loss_total_ = 0;
  std::array<T, M::buffer_scalars == 0 ? 1 : M::buffer_scalars> saved_buffers_{};
};

GRAFT_END_NAMESPACE
