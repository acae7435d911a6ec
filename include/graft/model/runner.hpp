// runner<Model, Batch>: batched inference with every buffer inline (no heap): two ping-pong
// buffers of the widest activation and the largest layer workspace. A runner in static storage or
// on the stack makes an inference binary whose memory is known while compiling. It needs no
// training machinery: this header includes nothing from train/, optim/, freeze/ or data/.
#pragma once
#include <algorithm>
#include <cstddef>

#include "graft/layers/layer.hpp"
#include "graft/layers/workspace.hpp"
#include "graft/meta/pack.hpp"
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
  /// The largest workspace a layer needs (residual blocks keep their inner activations there).
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

  T* input() noexcept { return buffers_; }
  /// Runs the first `rows` rows of input() through net; returns the output rows. Activations
  /// that the layer before applies in its output pass (plan::fused) take no pass of their own.
  const T* forward(const M& net, std::size_t rows) noexcept {
    meta::static_for<L>([&](auto i) {
      if constexpr (plan::runs_forward(i)) {
        T* from = buffer(side[i]);
        T* to = buffer(side[plan::output_of(i)]);
        if constexpr (plan::fused[i])
          detail::forward_fused<typename M::template layer_type<i + 1>>(net.template layer<i>(),
                                                                        from, to, rows);
        else
          detail::forward_eval(net.template layer<i>(), from, to, rows,
                               buffers_ + 2 * buffer_elements);
      }
    });
    return buffer(side[L]);
  }

 private:
  static constexpr auto side = plan::sides(L + 1, 0);
  T* buffer(int s) noexcept { return buffers_ + static_cast<std::size_t>(s) * buffer_elements; }

  alignas(buffer_alignment) T buffers_[2 * buffer_elements + workspace_elements]{};
};

GRAFT_END_NAMESPACE
