// device_trainer<M, Batch, Opt, Policy>: fine-tuning on the device (issue 14). Freestanding: no
// exceptions, RTTI, heap, threads or iostream; every byte is inline and counted while compiling
// (ram_bytes == sizeof). The frozen tensors stay where they are, in the constant data
// (constant_model<M>: weights compiled into the program, flash on a microcontroller); only the
// tensors the policy trains, their gradients and optimizer state, and the activations of one
// sample live in RAM.
//
//   constexpr auto flash = lenet_weights::bind<net_t>();            // export_header's output
//   static graft::device_trainer<net_t, 8, graft::sgd, graft::freeze::bias_only> t(flash, opt);
//   copy a batch into t.input(), its labels into t.targets();
//   if (t.step(rows) != graft::device_status::ok) ... // a non-finite loss, gradient or update
//   static graft::runner<net_t, 1> r;  r.forward(t.weights(), 1);  // inference with the new ones
//
// How a step saves memory: the head (dense) runs forward and backward on the whole batch (its
// inputs are small); the backbone runs one sample at a time, twice: a forward that keeps only the
// head's input, then, after the loss, the forward again and the backward of that sample, whose
// parameter gradients are added into the batch's. A parameter gradient that is a sum of per-sample
// terms, added sample after sample (biases: dense's column sums, conv2d's row sums; every tensor
// of the head), is then bitwise the hosted trainer's; a weight gradient inside the backbone (its
// GEMM chains the samples' products with fused multiply-adds) differs in rounding. So under
// freeze::bias_only and freeze::backbone a step is bitwise trainer::step on the same batch
// (tests/test_device.cpp), under other policies equal within rounding.
//
// Supported layers: those whose training forward is their evaluation forward (no batch norm with
// batch statistics, no dropout), with static forward_from / backward_from when they have
// parameters (dense, conv2d) and any layer without parameters (activations, pooling, flatten).
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "graft/freeze/plan.hpp"
#include "graft/kernels/elementwise.hpp"
#include "graft/layers/concept.hpp"
#include "graft/layers/workspace.hpp"
#include "graft/model/constant.hpp"
#include "graft/model/model.hpp"
#include "graft/optim/optimizers.hpp"

GRAFT_BEGIN_NAMESPACE

/// What a device step reports instead of throwing.
enum class device_status {
  ok,
  nonfinite_loss,      ///< the loss is NaN or infinite: nothing changed
  nonfinite_gradient,  ///< a gradient is NaN or infinite: nothing changed
  nonfinite_update     ///< the update made a parameter non-finite: undone, the weights as before
};

template <class M, std::size_t Batch, class Opt, class Policy> class device_trainer {
  static_assert(is_model<M>::value, "graft: device_trainer<M, ...>: M must be a graft::model");
  static_assert(Batch > 0, "graft: the batch size must be positive");

 public:
  using T = typename M::scalar;
  using plan = detail::model_plan<M>;
  using loss = typename M::loss;
  using target_type = typename loss::target_type;
  using weights_type = constant_model<M>;
  static constexpr std::size_t L = M::layer_count;
  static constexpr std::size_t H = M::head_index;  // the head: the last layer
  static constexpr std::size_t batch = Batch;
  static constexpr std::array<unsigned, L> grad_masks = plan::template grad_masks<Policy>;
  static constexpr std::size_t lowest_trainable = plan::template lowest_trainable<Policy>;
  static constexpr bool trains(std::size_t layer, std::size_t param) noexcept {
    return (grad_masks[layer] >> param & 1U) != 0;
  }

 private:
  static constexpr bool supported = [] {
    bool ok = true;
    meta::static_for<L>([&](auto i) {
      using Layer = typename M::template layer_type<i>;
      ok = ok && !detail::has_statistics_v<Layer> && !HasRngState<Layer>;
    });
    return ok;
  }();
  static_assert(supported,
                "graft: device_trainer supports layers whose training forward is their "
                "evaluation forward (no batch_norm, no dropout)");
  static constexpr std::size_t feature_size = plan::sizes[H];
  static constexpr std::size_t out_size = plan::sizes[L];

  struct layout_t {
    std::array<std::size_t, L + 1> act{};  // one sample's activations (act[0]: in input())
    std::array<std::size_t, 2> delta{};    // one sample's deltas
    std::size_t ws = 0;                    // the largest workspace of a layer
    std::size_t input = 0, logits = 0, dz = 0, head_in = 0, head_dx = 0;  // the batch's
    std::size_t trainable = 0;                                            // scalars that train
    std::array<std::array<std::size_t, detail::max_params_per_layer>, L> value{}, grad{},
        part{};  // part: one sample's gradient (backbone tensors only)
    std::array<std::array<std::array<std::size_t, detail::max_params_per_layer>, L>,
               Opt::state_count == 0 ? 1 : Opt::state_count>
        state{};
    std::size_t total = 0;
  };
  static constexpr layout_t make_layout() {
    layout_t l{};
    region_cursor<T> c;
    l.input = c.take(Batch * plan::sizes[0]);
    for (std::size_t i = 1; i < H; ++i)  // a fused pair's pre-activation is never written
      l.act[i] = c.take(plan::fused[i - 1] ? 0 : plan::sizes[i]);
    l.act[H] = c.take(plan::sizes[H]);
    l.delta[0] = c.take(plan::widest);
    l.delta[1] = c.take(plan::widest);
    std::size_t w = 0;
    meta::static_for<L>([&](auto i) {
      using Layer = typename M::template layer_type<i>;
      const std::size_t rows = i == H ? Batch : 1;
      const std::size_t n = detail::training_workspace_of<Layer>(rows);
      w = w > n ? w : n;
    });
    l.ws = c.take(w);
    l.logits = c.take(Batch * out_size);
    l.dz = c.take(Batch * out_size);
    l.head_in = c.take(Batch * feature_size);
    l.head_dx = c.take(Batch * feature_size);
    meta::static_for<L>([&](auto i) {
      using Layer = typename M::template layer_type<i>;
      for (std::size_t j = 0; j < Layer::params.size(); ++j)
        if (trains(i, j)) {
          const std::size_t n = Layer::params[j].size;
          l.trainable += n;
          l.value[i][j] = c.take(n);
          l.grad[i][j] = c.take(n);
          l.part[i][j] = i == H ? 0 : c.take(n);
          for (std::size_t s = 0; s < Opt::state_count; ++s) l.state[s][i][j] = c.take(n);
        }
    });
    l.total = c.at;
    return l;
  }
  static constexpr layout_t layout = make_layout();
  // Everything besides the arena.
  struct small_t {
    std::array<const T*, weights_type::param_tensors> params{};
    std::array<const T*, weights_type::buffer_tensors> buffers{};
    std::array<std::size_t, L> layer_steps{};
    std::array<target_type, Batch * loss::target_size> targets{};
    double mean_loss = 0;
    Opt opt;
    // a token model's length of the current sample, and its map through conv1d's output_length
    std::array<std::size_t, plan::masked ? 1 : 0> tokens{};
    std::array<std::size_t, plan::masked ? 1 : 0> scratch{};
  };

 public:
  /// Scalars that train under Policy (kept in RAM with their gradients and optimizer state).
  static constexpr std::size_t trainable_parameter_count = layout.trainable;
  /// The arena: one sample's activations and deltas, the largest workspace, the batch's input,
  /// logits and head buffers, and per trainable tensor its value, gradient(s) and optimizer state.
  static constexpr std::size_t arena_bytes = layout.total * sizeof(T);
  /// All the RAM a device trainer uses (the arena plus pointer tables, targets, step counts),
  /// while compiling: sizeof(device_trainer) is this (tests check it).
  static constexpr std::size_t ram_bytes =
      (arena_bytes + sizeof(small_t) + buffer_alignment - 1) / buffer_alignment * buffer_alignment;

  /// Starts from the weights in `start` (the model to fine-tune, its head included): trainable
  /// tensors are copied into RAM, frozen ones are read where they are.
  device_trainer(const weights_type& start, Opt opt) noexcept {
    s_.opt = opt;
    for (std::size_t i = 0; i < L; ++i) {
      for (std::size_t j = 0; j < weights_type::param_offset(i + 1) - weights_type::param_offset(i);
           ++j) {
        const T* from = start.params_of(i)[j];
        const T* at_ = from;
        if (trains(i, j)) {
          T* to = at(layout.value[i][j]);
          kernels::copy(param_size(i, j), from, to);
          at_ = to;
        }
        s_.params[weights_type::param_offset(i) + j] = at_;
      }
      for (std::size_t j = 0;
           j < weights_type::buffer_offset(i + 1) - weights_type::buffer_offset(i); ++j)
        s_.buffers[weights_type::buffer_offset(i) + j] = start.buffers_of(i)[j];
    }
  }

  /// Rows of the next step (Batch x input size) and their targets (labels for a classifier).
  T* input() noexcept { return at(layout.input); }
  target_type* targets() noexcept { return s_.targets.data(); }
  /// The weights as they are now (trainable tensors in RAM, frozen ones in the constant data),
  /// for a runner: runner<M, B>::forward(t.weights(), rows).
  weights_type weights() const noexcept { return weights_type::of(s_.params, s_.buffers); }
  /// Mean loss of the last step.
  double last_loss() const noexcept { return s_.mean_loss; }
  /// Layer i's parameter j as it is now.
  const T* param(std::size_t i, std::size_t j) const noexcept {
    return s_.params[weights_type::param_offset(i) + j];
  }

  /// One step of Opt on the first `rows` rows of input() and targets(): forward, loss, backward,
  /// update. Returns ok, or why it changed nothing (or undid its update).
  device_status step(std::size_t rows) noexcept {
    if (rows == 0 || rows > Batch) rows = rows == 0 ? 1 : Batch;
    const auto w = weights();
    // 1. the backbone, one sample at a time: keep the head's input
    for (std::size_t r = 0; r < rows; ++r) {
      backbone_forward(w, r);
      kernels::copy(feature_size, at(layout.act[H]), at(layout.head_in) + r * feature_size);
    }
    // 2. the head on the batch, the loss
    T* z = at(layout.logits);
    T* dz = at(layout.dz);
    using Head = typename M::template layer_type<H>;
    detail::forward_eval_from<Head>(w.params_of(H), w.buffers_of(H), at(layout.head_in), z, rows,
                                    at(layout.ws));
    const double total =
        loss::evaluate(z, s_.targets.data(), rows, dz, 1.0 / static_cast<double>(rows));
    s_.mean_loss = total / static_cast<double>(rows);
    if (!std::isfinite(s_.mean_loss)) return device_status::nonfinite_loss;
    // 3. the head's backward on the batch
    if constexpr (lowest_trainable <= H) {
      T* grads[detail::max_params_per_layer]{};
      for (std::size_t j = 0; j < Head::params.size(); ++j)
        if (trains(H, j)) grads[j] = at(layout.grad[H][j]);
      if constexpr (H > lowest_trainable)
        detail::backward_of_from<true, grad_masks[H], train_mode{false}, Head>(
            w.params_of(H), w.buffers_of(H), at(layout.head_in), z, dz, at(layout.head_dx), grads,
            rows, at(layout.ws));
      else
        detail::backward_of_from<false, grad_masks[H], train_mode{false}, Head>(
            w.params_of(H), w.buffers_of(H), at(layout.head_in), z, dz, at(layout.head_dx), grads,
            rows, at(layout.ws));
    }
    // 4. the backbone again, sample by sample: forward, backward, gradients added up
    if constexpr (lowest_trainable < H)
      for (std::size_t r = 0; r < rows; ++r) {
        backbone_forward(w, r);
        backbone_backward(w, r);
      }
    // 5. finite gradients, then the update (undone if it makes a parameter non-finite)
    bool finite = true;
    for_each_trainable([&](std::size_t i, std::size_t j, std::size_t n) {
      finite = finite && kernels::all_finite(at(layout.grad[i][j]), n);
    });
    if (!finite) return device_status::nonfinite_gradient;
    return update();
  }

 private:
  void backbone_forward(const weights_type& w, std::size_t r) noexcept {
    if constexpr (plan::masked)
      plan::token_lengths(at(layout.input) + r * plan::sizes[0], 1, &s_.tokens[0]);
    meta::static_for<H>([&](auto i) {
      if constexpr (plan::runs_forward(i)) {
        using Layer = typename M::template layer_type<i>;
        const T* x = i == 0 ? at(layout.input) + r * plan::sizes[0] : at(layout.act[i]);
        const sequence_mask m = mask_for<i>();
        if constexpr (plan::fused[i])
          detail::forward_fused_from<typename M::template layer_type<i + 1>, Layer>(
              w.params_of(i), w.buffers_of(i), x, at(layout.act[i + 2]), 1, at(layout.ws), m);
        else
          detail::forward_eval_from<Layer>(w.params_of(i), w.buffers_of(i), x,
                                           at(layout.act[i + 1]), 1, at(layout.ws), m);
      }
    });
  }
  // Sample r's length (a token model): computed by backbone_forward, read by backbone_backward.
  template <std::size_t I> sequence_mask mask_for() noexcept {
    return plan::template mask_for<I>(s_.tokens.data(), s_.scratch.data(), 1);
  }
  // Backward of sample r from the head's input gradient down to the lowest trainable layer, as
  // the trainer runs it (trainer::backward); each trainable tensor's per-sample gradient is added
  // into the batch's.
  void backbone_backward(const weights_type& w, std::size_t r) noexcept {
    kernels::copy(feature_size, at(layout.head_dx) + r * feature_size,
                  at(layout.delta[(L - 1 - (H - 1)) % 2]));
    meta::static_for_reverse<H>([&](auto i) {
      if constexpr (i >= lowest_trainable) {
        using Layer = typename M::template layer_type<i>;
        constexpr std::size_t parity = (L - 1 - i) % 2;
        T* grads[detail::max_params_per_layer]{};
        for (std::size_t j = 0; j < Layer::params.size(); ++j)
          if (trains(i, j)) grads[j] = at(r == 0 ? layout.grad[i][j] : layout.part[i][j]);
        const T* x = i == 0 ? at(layout.input) + r * plan::sizes[0] : at(layout.act[i]);
        const T* y = at(layout.act[i + 1]);
        const T* dy = at(layout.delta[parity]);
        T* dx = at(layout.delta[1 - parity]);
        detail::backward_of_from<(i > lowest_trainable), grad_masks[i], train_mode{false}, Layer>(
            w.params_of(i), w.buffers_of(i), x, y, dy, dx, grads, 1, at(layout.ws), mask_for<i>());
        if (r > 0)
          for (std::size_t j = 0; j < Layer::params.size(); ++j)
            if (trains(i, j))
              kernels::add(Layer::params[j].size, at(layout.part[i][j]), at(layout.grad[i][j]));
      }
    });
  }

  device_status update() noexcept {
    bool finite = true;
    meta::static_for<L>([&](auto i) {
      if constexpr (grad_masks[i] != 0) {
        ++s_.layer_steps[i];
        const update_context c{s_.layer_steps[i], static_cast<double>(s_.opt.lr)};
        using Layer = typename M::template layer_type<i>;
        for (std::size_t j = 0; j < Layer::params.size(); ++j)
          if (trains(i, j)) {
            T* v = at(layout.value[i][j]);
            T* g = at(layout.grad[i][j]);
            constexpr std::size_t block = 64;
            for (std::size_t s0 = 0; s0 < Layer::params[j].size; s0 += block) {
              const std::size_t m =
                  Layer::params[j].size - s0 < block ? Layer::params[j].size - s0 : block;
              T old[block];
              T* state[Opt::state_count == 0 ? 1 : Opt::state_count]{};
              for (std::size_t s = 0; s < Opt::state_count; ++s)
                state[s] = at(layout.state[s][i][j]) + s0;
              kernels::copy(m, v + s0, old);
              s_.opt.update(v + s0, g + s0, state, m, c);
              kernels::copy(m, old, g + s0);  // the gradient is spent: it keeps the old values
              finite = finite && kernels::all_finite(v + s0, m);
            }
          }
      }
    });
    if (finite) return device_status::ok;
    for_each_trainable([&](std::size_t i, std::size_t j, std::size_t n) {
      kernels::copy(n, at(layout.grad[i][j]), at(layout.value[i][j]));
    });
    for (std::size_t i = 0; i < L; ++i)
      if (grad_masks[i] != 0) --s_.layer_steps[i];
    return device_status::nonfinite_update;
  }

  template <class F> void for_each_trainable(F&& f) {
    meta::static_for<L>([&](auto i) {
      using Layer = typename M::template layer_type<i>;
      for (std::size_t j = 0; j < Layer::params.size(); ++j)
        if (trains(i, j)) f(std::size_t{i}, j, Layer::params[j].size);
    });
  }
  static std::size_t param_size(std::size_t i, std::size_t j) noexcept {
    std::size_t n = 0;
    meta::static_for<L>([&](auto k) {
      using Layer = typename M::template layer_type<k>;
      if constexpr (Layer::params.size() > 0)
        if (k == i) n = Layer::params[j].size;
    });
    return n;
  }
  T* at(std::size_t offset) noexcept { return arena_ + offset; }
  const T* at(std::size_t offset) const noexcept { return arena_ + offset; }

  alignas(buffer_alignment) T arena_[layout.total]{};
  small_t s_;
};

GRAFT_END_NAMESPACE
