// forward_plan<M>: what running a model's layers in order takes, computed while compiling: the
// activation sizes, which layer applies the activation after it in its output pass (fusion), and
// the two ping-pong sides a whole forward pass alternates between. The runner (inference) and the
// trainer (which adds what a freezing policy decides, train/trainer.hpp) both read it.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>

#include "graft/layers/layer.hpp"
#include "graft/meta/pack.hpp"

GRAFT_BEGIN_NAMESPACE
namespace detail {
template <class M> struct forward_plan {
  static constexpr std::size_t L = M::layer_count;

  static constexpr std::array<std::size_t, L + 1> sizes = [] {
    std::array<std::size_t, L + 1> s{};
    s[0] = M::input_shape::size;
    meta::static_for<L>([&](auto i) { s[i + 1] = M::template layer_type<i>::output_shape::size; });
    return s;
  }();
  static constexpr std::size_t widest = *std::max_element(sizes.begin(), sizes.end());

  /// fused[i]: layer i applies layer i+1 (an element-wise activation) in its output pass
  /// (detail::fuses_v); pairs are taken left to right.
  static constexpr std::array<bool, L> fused = [] {
    std::array<bool, L> f{};
    meta::static_for<L>([&](auto i) {
      if constexpr (i + 1 < L) {
        constexpr bool can =
            fuses_v<typename M::template layer_type<i>, typename M::template layer_type<i + 1>>;
        f[i] = can && !(i > 0 && f[i - 1]);
      }
    });
    return f;
  }();
  /// Layers whose forward runs: all but the activations fused into the layer before them.
  static constexpr bool runs_forward(std::size_t i) noexcept { return i == 0 || !fused[i - 1]; }
  /// Output index of the forward that starts at layer i (i + 2 for a fused pair).
  static constexpr std::size_t output_of(std::size_t i) noexcept {
    return fused[i] ? i + 2 : i + 1;
  }

  /// Two ping-pong buffers for a whole forward pass (a runner, a trainer's frozen prefix): side[k]
  /// (0 or 1) holds activation k for k in [1, end); each forward writes the side its input is not
  /// on. The input of a fused activation, never written by a whole pass, gets the side of the
  /// pair's output, so that a pass stopped between the two (trainer::forward's stop) still writes
  /// the layer's output away from its input, and a pass started there runs the activation in
  /// place (element-wise, which is safe). Activation 0 is on side 0 when input_side is 0, on
  /// neither when it is -1 (a trainer's input has its own region).
  static constexpr std::array<int, L + 1> sides(std::size_t end, int input_side) noexcept {
    std::array<int, L + 1> side{};
    side.fill(-1);
    side[0] = input_side;
    int cur = input_side;
    for (std::size_t i = 0; i < L; i = output_of(i)) {
      const int next = cur == 0 ? 1 : 0;
      if (output_of(i) < end) side[output_of(i)] = next;
      if (fused[i] && i + 1 < end) side[i + 1] = next;
      cur = next;
    }
    return side;
  }

  static constexpr std::array<std::size_t, L> param_tensors = [] {
    std::array<std::size_t, L> p{};
    meta::static_for<L>([&](auto i) { p[i] = M::template layer_type<i>::params.size(); });
    return p;
  }();
};
}  // namespace detail
GRAFT_END_NAMESPACE
