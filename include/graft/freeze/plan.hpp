// model_plan<M>: a model's forward plan (model/plan.hpp) plus what a freezing policy decides
// while compiling: which tensors train (gradient masks), which layers normalise with batch
// statistics, the lowest trainable layer. Shared by the trainer (train/trainer.hpp) and the
// freestanding device trainer (train/device.hpp). Light header: no exceptions, no heap.
#pragma once
#include <array>
#include <cstddef>

#include "graft/freeze/policy.hpp"
#include "graft/layers/layer.hpp"
#include "graft/meta/pack.hpp"
#include "graft/model/plan.hpp"

GRAFT_BEGIN_NAMESPACE

namespace detail {
/// forward_plan<M> (model/plan.hpp) plus what a freezing policy decides: which tensors train,
/// which layers use batch statistics, the lowest trainable layer.
template <class M> struct model_plan : forward_plan<M> {
  using forward_plan<M>::L;
  using forward_plan<M>::param_tensors;

  /// What a policy is told about each layer (meaningful for layers with parameters).
  static constexpr std::array<freeze::layer_info, L> infos = [] {
    std::array<freeze::layer_info, L> info{};
    std::size_t backbone_parametric = 0;
    for (std::size_t i = 0; i + 1 < L; ++i) backbone_parametric += param_tensors[i] > 0 ? 1 : 0;
    std::size_t ordinal = 0;
    for (std::size_t i = 0; i < L; ++i) {
      info[i] = {i, ordinal, backbone_parametric, i == L - 1};
      ordinal += param_tensors[i] > 0 ? 1 : 0;
    }
    return info;
  }();

  template <class Policy> static constexpr std::array<unsigned, L> grad_masks = [] {
    std::array<unsigned, L> masks{};
    meta::static_for<L>([&](auto i) {
      using Layer = typename M::template layer_type<i>;
      static_assert(Layer::params.size() <= max_params_per_layer,
                    "graft: a layer has more parameter tensors than detail::max_params_per_layer");
      for (std::size_t j = 0; j < Layer::params.size(); ++j)
        if (freeze::policy_trains<Policy>(infos[i], Layer::params[j])) masks[i] |= 1U << j;
    });
    return masks;
  }();

  /// Per layer: whether it normalises with batch statistics (and updates its running statistics)
  /// in training: a layer with statistics, some trainable parameter, and a policy that does not
  /// freeze statistics.
  template <class Policy> static constexpr std::array<bool, L> batch_stats = [] {
    std::array<bool, L> b{};
    meta::static_for<L>([&](auto i) {
      b[i] = has_statistics_v<typename M::template layer_type<i>> && grad_masks<Policy>[i] != 0 &&
             freeze::updates_statistics<Policy>(infos[i]);
    });
    return b;
  }();

  /// Lowest layer with a trainable parameter (L when nothing trains).
  template <class Policy> static constexpr std::size_t lowest_trainable = [] {
    for (std::size_t i = 0; i < L; ++i)
      if (grad_masks<Policy>[i] != 0) return i;
    return L;
  }();
};
}  // namespace detail

GRAFT_END_NAMESPACE
