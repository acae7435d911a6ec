// Freezing policies: which parameter tensors train. A policy is a type with a constexpr
// trains(layer_info, role), or trains(layer_info, const param_desc&) to select by the kind of
// layer a tensor belongs to (param_desc::tag); the trainer asks it while compiling, so a frozen
// tensor gets no gradient buffer, no optimizer state and no gradient kernel call.
#pragma once
#include <cstddef>

#include "graft/layers/layer.hpp"

GRAFT_BEGIN_NAMESPACE
namespace freeze {

/// What a policy may know about a layer.
struct layer_info {
  std::size_t index;               ///< position in the model (head last)
  std::size_t parametric_ordinal;  ///< among layers with parameters, counting from 0
  std::size_t backbone_parametric_count;
  bool is_head;
};

/// Whether policy P trains a parameter tensor: P::trains(layer_info, param_desc) when P selects
/// by tensor (its kind of layer: param_tag), else P::trains(layer_info, role).
template <class P> constexpr bool policy_trains(layer_info l, const param_desc& p) noexcept {
  if constexpr (requires { P::trains(l, p); })
    return P::trains(l, p);
  else
    return P::trains(l, p.kind);
}

/// Full training / full fine-tuning: everything trains.
struct none {
  static constexpr bool trains(layer_info, role) noexcept { return true; }
};

/// Linear probing: the backbone is frozen, only the head trains.
struct backbone {
  static constexpr bool trains(layer_info l, role) noexcept { return l.is_head; }
};

/// The first N parametric layers of the backbone are frozen (Yosinski et al. 2014).
template <std::size_t N> struct first {
  static constexpr bool trains(layer_info l, role) noexcept {
    return l.is_head || l.parametric_ordinal >= N;
  }
};

/// BitFit / TinyTL: backbone weights frozen; backbone biases and the whole head train.
struct bias_only {
  static constexpr bool trains(layer_info l, role r) noexcept {
    return l.is_head || r == role::bias;
  }
};

/// The layers at the listed model indices (as in model.layer<I>()) are frozen; all others train.
template <std::size_t... I> struct layers {
  static constexpr bool trains(layer_info l, role) noexcept { return ((l.index != I) && ...); }
};

/// Tensors of the listed kinds of layer are frozen in the backbone (param_tag, layers/layer.hpp);
/// everything else trains, the head always.
template <param_tag... Tags> struct tags {
  static constexpr bool trains(layer_info l, const param_desc& p) noexcept {
    return l.is_head || ((p.tag != Tags) && ...);
  }
};

/// The token and positional embeddings are frozen; everything else trains.
using embeddings = tags<param_tag::embedding>;

/// LN-tuning + BitFit: in the backbone only the normalisation layers' scale and shift (tag norm)
/// and every bias train; the head trains.
struct norms_and_biases_only {
  static constexpr bool trains(layer_info l, const param_desc& p) noexcept {
    return l.is_head || p.tag == param_tag::norm || p.kind == role::bias;
  }
};

/// LoRA: in the backbone only the low-rank adapters (tag adapter, layers/lora.hpp) train; the
/// base weights stay as they are; the head trains.
struct adapters_only {
  static constexpr bool trains(layer_info l, const param_desc& p) noexcept {
    return l.is_head || p.tag == param_tag::adapter;
  }
};

/// Batch-norm statistics: every parameter trains, but batch norms normalise with their running
/// statistics and leave them unchanged (small fine-tuning batches would spoil them). Combine it:
/// all_of<first<2>, statistics> freezes the first two parametric layers and all statistics.
/// Without it a batch norm uses batch statistics exactly when its scale or shift trains; a frozen
/// batch norm never updates its statistics.
struct statistics {
  static constexpr bool trains(layer_info, role) noexcept { return true; }
  static constexpr bool updates_statistics(layer_info) noexcept { return false; }
};

/// Whether policy P lets the batch-norm statistics of a layer with trainable parameters update
/// (true unless P says otherwise).
template <class P> constexpr bool updates_statistics(layer_info l) noexcept {
  if constexpr (requires { P::updates_statistics(l); })
    return P::updates_statistics(l);
  else
    return true;
}

/// Combination: a parameter trains only if every policy lets it train (the frozen sets unite).
/// E.g. all_of<first<1>, bias_only>: first layer frozen entirely, weights frozen elsewhere.
template <class... P> struct all_of {
  static constexpr bool trains(layer_info l, const param_desc& p) noexcept {
    return (policy_trains<P>(l, p) && ...);
  }
  static constexpr bool trains(layer_info l, role r) noexcept {
    return trains(l, param_desc{0, r});
  }
  static constexpr bool updates_statistics(layer_info l) noexcept {
    return (freeze::updates_statistics<P>(l) && ...);
  }
};

/// A parameter trains if any policy lets it train (the frozen sets intersect).
template <class... P> struct any_of {
  static constexpr bool trains(layer_info l, const param_desc& p) noexcept {
    return (policy_trains<P>(l, p) || ...);
  }
  static constexpr bool trains(layer_info l, role r) noexcept {
    return trains(l, param_desc{0, r});
  }
  static constexpr bool updates_statistics(layer_info l) noexcept {
    return (freeze::updates_statistics<P>(l) || ...);
  }
};

}  // namespace freeze

template <class P>
concept FreezePolicy = requires(freeze::layer_info li, role r) {
  { P::trains(li, r) } -> std::convertible_to<bool>;
}
|| requires(freeze::layer_info li, param_desc p) {
  { P::trains(li, p) } -> std::convertible_to<bool>;
};

GRAFT_END_NAMESPACE
