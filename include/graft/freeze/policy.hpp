// Freezing policies: which parameter tensors train. A policy is a type with a constexpr
// trains(layer_info, role); the trainer asks it while compiling, so a frozen tensor gets no
// gradient buffer, no optimizer state and no gradient kernel call.
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

/// Full training / full fine-tuning: everything trains.
struct none {
  static constexpr bool trains(layer_info, role) noexcept { return true; }
};

}  // namespace freeze

template <class P>
concept FreezePolicy = requires(freeze::layer_info li, role r) {
  { P::trains(li, r) } -> std::convertible_to<bool>;
};

GRAFT_END_NAMESPACE
