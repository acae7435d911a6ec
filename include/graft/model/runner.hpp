// runner<Model, Batch>: batched inference with every buffer inline (no heap): two ping-pong
// buffers of the widest activation and the largest layer workspace. A runner in static storage or
// on the stack makes an inference binary whose memory is known while compiling. It needs no
// training machinery: this header includes nothing from train/, optim/, freeze/ or data/.
#pragma once
#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "graft/layers/layer.hpp"
#include "graft/layers/workspace.hpp"
#include "graft/meta/pack.hpp"
#include "graft/model/constant.hpp"
#include "graft/model/plan.hpp"

GRAFT_BEGIN_NAMESPACE

/// Batched inference buffers for a model: two ping-pong buffers of the widest activation, held
/// inline (no heap): a runner in static storage or on the stack makes an inference binary whose
/// memory is known while compiling. Large batches belong on the heap (make_unique).
template <class M, std::size_t Batch = 1> class runner {
 public:
  using T = typename M::scalar;
  using plan = detail::forward_plan<M>;
  static constexpr std::size_t L = M::layer_count;
  static constexpr std::size_t batch = Batch;
  static constexpr std::size_t buffer_elements = aligned_count<T>(Batch * plan::widest);
  /// The largest workspace a layer needs (conv2d's im2col matrix, a residual block's inner
  /// activations).
  static constexpr std::size_t workspace_elements = [] {
    std::size_t w = 0;
    meta::static_for<L>([&](auto i) {
      w = std::max(w, detail::inference_workspace_of<typename M::template layer_type<i>>(Batch));
    });
    return aligned_count<T>(w);
  }();
  /// Inference footprint besides the parameters.
  static constexpr std::size_t activation_bytes =
      (2 * buffer_elements + workspace_elements) * sizeof(T);

 private:
  // A token model's lengths: each sample's (from its ids), and their map through the layers
  // below a masked layer that change lengths. Nothing for other models.
  struct no_lengths {};
  struct token_lengths_t {
    alignas(buffer_alignment) std::size_t tokens[Batch];
    std::size_t scratch[Batch];
  };
  using lengths_t = std::conditional_t<plan::masked, token_lengths_t, no_lengths>;

 public:
  /// RAM a runner needs, all of it inline: sizeof(runner) (tests check it).
  static constexpr std::size_t ram_bytes =
      activation_bytes + (plan::masked ? sizeof(token_lengths_t) : 0);

  T* input() noexcept { return buffers_; }
  /// Runs the first `rows` rows of input() through net; returns the output rows. Activations
  /// that the layer before applies in its output pass (plan::fused) take no pass of their own.
  const T* forward(const M& net, std::size_t rows) noexcept { return run(net, rows); }
  /// The same with the parameters read in place from constant arrays (weights compiled into the
  /// program: constant_model.hpp); bitwise the same outputs as the model they were exported from.
  const T* forward(const constant_model<M>& net, std::size_t rows) noexcept {
    return run(net, rows);
  }

 private:
  template <class Net> const T* run(const Net& net, std::size_t rows) noexcept {
    T* ws = buffers_ + 2 * buffer_elements;
    std::size_t* tokens = nullptr;
    std::size_t* scratch = nullptr;
    if constexpr (plan::masked) {
      tokens = lengths_.tokens;
      scratch = lengths_.scratch;
      plan::token_lengths(input(), rows, tokens);
    }
    meta::static_for<L>([&](auto i) {
      if constexpr (plan::runs_forward(i)) {
        using Layer = typename M::template layer_type<i>;
        T* from = buffer(side[i]);
        T* to = buffer(side[plan::output_of(i)]);
        const sequence_mask m = plan::template mask_for<i>(tokens, scratch, rows);
        if constexpr (std::is_same_v<Net, M>) {
          if constexpr (plan::fused[i])
            detail::forward_fused<typename M::template layer_type<i + 1>>(net.template layer<i>(),
                                                                          from, to, rows, ws, m);
          else
            detail::forward_eval(net.template layer<i>(), from, to, rows, ws, m);
        } else {
          if constexpr (plan::fused[i])
            detail::forward_fused_from<typename M::template layer_type<i + 1>, Layer>(
                net.params_of(i), net.buffers_of(i), from, to, rows, ws, m);
          else
            detail::forward_eval_from<Layer>(net.params_of(i), net.buffers_of(i), from, to, rows,
                                             ws, m);
        }
      }
    });
    return buffer(side[L]);
  }

  static constexpr auto side = plan::sides(L + 1, 0);
  T* buffer(int s) noexcept { return buffers_ + static_cast<std::size_t>(s) * buffer_elements; }

  alignas(buffer_alignment) T buffers_[2 * buffer_elements + workspace_elements]{};
  [[no_unique_address]] lengths_t lengths_{};
};

GRAFT_END_NAMESPACE
