// forward_plan<M>: what running a model's layers in order takes, computed while compiling: the
// activation sizes, which layer applies the activation after it in its output pass (fusion), and
// the two ping-pong sides a whole forward pass alternates between. The runner (inference) and the
// trainer (which adds what a freezing policy decides, train/trainer.hpp) both read it.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>

#include "graft/diagnostics.hpp"
#include "graft/layers/layer.hpp"
#include "graft/layers/stack.hpp"
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

  // ---- token models (input_tokens<L, V>): the lengths masked layers read --------------------
  /// True when the model's input is input_tokens<L, V>: masked layers get each sample's length.
  static constexpr bool masked = [] {
    if constexpr (requires { typename M::input_type; })
      return is_token_input_v<typename M::input_type>;
    else
      return false;
  }();
  /// lengths_live[i]: the lengths of the token input reach layer i's input. They pass through
  /// position-wise layers and masked layers that keep a sequence ([L, C] out); a masked layer
  /// with a flat output (the time pools) or a layer of unknown sequence use ends them.
  static constexpr std::array<bool, L + 1> lengths_live = [] {
    std::array<bool, L + 1> live{};
    live[0] = masked;
    meta::static_for<L>([&](auto i) {
      using Layer = typename M::template layer_type<i>;
      constexpr sequence_use u = sequence_of_v<Layer>;
      live[i + 1] = live[i] && (u == sequence_use::positionwise ||
                                (u == sequence_use::masked && Layer::output_shape::rank >= 2));
    });
    return live;
  }();
  /// reads_mask[i]: layer i is masked and the lengths reach it (else it gets a null mask: every
  /// position valid, as with a plain input<...>).
  static constexpr std::array<bool, L> reads_mask = [] {
    std::array<bool, L> r{};
    meta::static_for<L>([&](auto i) {
      r[i] = lengths_live[i] && reads_mask_v<typename M::template layer_type<i>>;
    });
    return r;
  }();
  /// The first masked layer of a token model that the lengths do not reach (L: none), and the
  /// first layer below it that ended them.
  static constexpr std::size_t unreached_masked_layer = [] {
    std::size_t k = L;
    meta::static_for<L>([&](auto i) {
      if (k == L && masked && !lengths_live[i] && reads_mask_v<typename M::template layer_type<i>>)
        k = i;
    });
    return k;
  }();
  static constexpr std::size_t lengths_end = [] {
    std::size_t k = L;
    for (std::size_t i = 0; i < L; ++i)
      if (k == L && lengths_live[i] && !lengths_live[i + 1]) k = i;
    return k;
  }();
  static constexpr bool diagnose_sequence() {
    if constexpr (unreached_masked_layer < L) {
      constexpr std::size_t k = unreached_masked_layer;
      constexpr std::size_t e = lengths_end < k ? lengths_end : 0;
      return sizeof(error::masked_layer_after_unknown_layer<
                    layer_index<k>, typename M::template layer_type<k>, layer_index<e>,
                    typename M::template layer_type<e>>) == 0;
    } else {
      return true;
    }
  }
  static constexpr bool sequence_ok = diagnose_sequence();
  static_assert(sequence_ok || true);  // evaluates the check: one error, named above

  /// Each sample's length: the position of its first pad id 0 (L when there is none).
  template <class T>
  static void token_lengths(const T* ids, std::size_t rows, std::size_t* out) noexcept {
    constexpr std::size_t n = sizes[0];
    for (std::size_t r = 0; r < rows; ++r) {
      std::size_t k = 0;
      while (k < n && ids[r * n + k] != T(0)) ++k;
      out[r] = k;
    }
  }
  /// A token length n mapped through layers [0, I) (conv1d's output_length; n elsewhere).
  template <std::size_t I> static constexpr std::size_t length_at(std::size_t n) noexcept {
    meta::static_for<I>(
        [&](auto j) { n = output_length_of<typename M::template layer_type<j>>(n); });
    return n;
  }
  /// Whether a layer below I changes lengths (then lengths_for<I> maps them into scratch).
  template <std::size_t I> static constexpr bool maps_lengths = [] {
    bool any = false;
    meta::static_for<I>([&](auto j) {
      any = any || requires { M::template layer_type<j>::output_length(std::size_t{1}); };
    });
    return any;
  }();
  /// The mask layer I reads, from the token lengths of the batch (scratch: rows elements, used
  /// when a layer below changes lengths); a null mask when reads_mask[I] is false.
  template <std::size_t I>
  static sequence_mask mask_for([[maybe_unused]] const std::size_t* tokens,
                                [[maybe_unused]] std::size_t* scratch,
                                [[maybe_unused]] std::size_t rows) noexcept {
    if constexpr (!reads_mask[I]) {
      return {};
    } else if constexpr (!maps_lengths<I>) {
      return {tokens};
    } else {
      for (std::size_t r = 0; r < rows; ++r) scratch[r] = length_at<I>(tokens[r]);
      return {scratch};
    }
  }

  static constexpr std::array<std::size_t, L> param_tensors = [] {
    std::array<std::size_t, L> p{};
    meta::static_for<L>([&](auto i) { p[i] = M::template layer_type<i>::params.size(); });
    return p;
  }();
};
}  // namespace detail
GRAFT_END_NAMESPACE
