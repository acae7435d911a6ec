// LoRA models from a base model and back (layers/lora.hpp).
//
//   using base_net = model<stack<..., dense<64>, ...>, classifier<5>>;
//   using lora_net = model<stack<..., lora<dense<64>, 4>, ...>, classifier<5>>;
//   auto net = with_adapters<lora_net>(*pretrained, seed{1});  // W, b copied; A random, B = 0
//   finetune<freeze::adapters_only>(*net, data, adam{}, steps{300});
//   auto merged = merge_adapters(*net);  // base_net's type: W' = W + s A B, for save / export
//
// strip_adapters_t<S> is a spec (or stack, or model) with every lora<dense<N>, R> replaced by
// dense<N>, through per_position, residual, projection, group and stack. Layers other than the
// adapted ones are copied whole (their buffers too, so an embedding's vocabulary travels).
#pragma once
#include <cstddef>
#include <memory>
#include <type_traits>

#include "graft/layers/attention.hpp"
#include "graft/layers/lora.hpp"
#include "graft/layers/per_position.hpp"
#include "graft/layers/residual.hpp"
#include "graft/layers/stack.hpp"
#include "graft/model/model.hpp"

GRAFT_BEGIN_NAMESPACE

namespace detail {
template <class S> struct strip_adapters { using type = S; };
template <std::size_t N, class Init, std::size_t R, std::size_t Alpha>
struct strip_adapters<lora<dense<N, Init>, R, Alpha>> {
  using type = dense<N, Init>;
};
template <class S> struct strip_adapters<per_position<S>> {
  using type = per_position<typename strip_adapters<S>::type>;
};
template <class... S> struct strip_adapters<residual<S...>> {
  using type = residual<typename strip_adapters<S>::type...>;
};
template <class... S> struct strip_adapters<projection<S...>> {
  using type = projection<typename strip_adapters<S>::type...>;
};
template <class... S> struct strip_adapters<group<S...>> {
  using type = group<typename strip_adapters<S>::type...>;
};
template <class I, class... S> struct strip_adapters<stack<I, S...>> {
  using type = stack<I, typename strip_adapters<S>::type...>;
};
template <class B, class H, class T> struct strip_adapters<model<B, H, T>> {
  using type = model<typename strip_adapters<B>::type, H, T>;
};

template <std::size_t H, bool Causal> struct attention_without_adapters {
  using type = multi_head_attention<H>;
};
template <std::size_t H> struct attention_without_adapters<H, true> {
  using type = multi_head_attention<H, causal>;
};
template <std::size_t H, class... O> struct strip_adapters<multi_head_attention<H, O...>> {
  using type =
      typename attention_without_adapters<H, multi_head_attention<H, O...>::is_causal>::type;
};

template <class L> struct is_lora_dense : std::false_type {};
/// An attention layer with lora_qv adapters.
template <class L> constexpr bool lora_attention_impl() {
  if constexpr (requires {
                  L::lora_rank;
                  L::heads;
                })
    return L::lora_rank > 0;
  else
    return false;
}
template <class L> inline constexpr bool is_lora_attention_v = lora_attention_impl<L>();
template <class T, std::size_t K, std::size_t N, std::size_t R, std::size_t A, class I>
struct is_lora_dense<lora_dense_layer<T, K, N, R, A, I>> : std::true_type {};

/// Copies base layer b into the (LoRA or same-typed) layer l: W and b into an adapted layer, whole
/// layers otherwise, recursing into per_position and residual blocks.
template <class L, class B> void copy_base(L& l, const B& b) {
  if constexpr (std::is_same_v<L, B>) {
    l = b;
  } else if constexpr (is_lora_dense<L>::value) {
    static_assert(std::is_same_v<typename L::base_layer, B>,
                  "graft: with_adapters: a lora<dense<N>> layer needs a dense<N> in the base");
    l.weight = b.weight;
    l.bias = b.bias;
  } else if constexpr (is_lora_attention_v<L>) {
    l.w_qkv = b.w_qkv;
    l.b_qkv = b.b_qkv;
    l.w_o = b.w_o;
    l.b_o = b.b_o;
  } else if constexpr (requires {
                         l.inner;
                         b.inner;
                       }) {  // per_position
    copy_base(l.inner, b.inner);
  } else {  // residual blocks: inner layer by inner layer
    static_assert(L::inner_count == B::inner_count,
                  "graft: with_adapters: the base model has another type (strip_adapters_t)");
    meta::static_for<L::inner_count>(
        [&](auto k) { copy_base(l.template inner<k>(), b.template inner<k>()); });
  }
}

/// The merged base layer of l into b: W' = W + s A B (in double, r ascending, one rounding).
template <class B, class L> void merge_into(B& b, const L& l) {
  if constexpr (std::is_same_v<L, B>) {
    b = l;
  } else if constexpr (is_lora_dense<L>::value) {
    using T = typename L::scalar;
    constexpr std::size_t K = L::input_shape::size, N = L::output_shape::size, R = L::rank;
    const double s = static_cast<double>(L::alpha) / static_cast<double>(R);
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t n = 0; n < N; ++n) {
        double d = 0;
        for (std::size_t r = 0; r < R; ++r)
          d += static_cast<double>(l.a.data()[k * R + r]) *
               static_cast<double>(l.b.data()[r * N + n]);
        b.weight.data()[k * N + n] =
            static_cast<T>(static_cast<double>(l.weight.data()[k * N + n]) + s * d);
      }
    b.bias = l.bias;
  } else if constexpr (is_lora_attention_v<L>) {
    // W_qkv's q columns [0, D) += s A_q B_q, v columns [2D, 3D) += s A_v B_v
    using T = typename L::scalar;
    constexpr std::size_t D = L::input_shape::dims[1], R = L::lora_rank, D3 = 3 * D;
    const double s = static_cast<double>(L::lora_alpha) / static_cast<double>(R);
    b.w_qkv = l.w_qkv;
    b.b_qkv = l.b_qkv;
    b.w_o = l.w_o;
    b.b_o = l.b_o;
    for (std::size_t t = 0; t < 2; ++t) {
      const T* a = t == 0 ? l.adapters.a_q.data() : l.adapters.a_v.data();
      const T* bb = t == 0 ? l.adapters.b_q.data() : l.adapters.b_v.data();
      for (std::size_t k = 0; k < D; ++k)
        for (std::size_t c = 0; c < D; ++c) {
          double d = 0;
          for (std::size_t r = 0; r < R; ++r)
            d += static_cast<double>(a[k * R + r]) * static_cast<double>(bb[r * D + c]);
          const std::size_t at = k * D3 + 2 * t * D + c;
          b.w_qkv.data()[at] = static_cast<T>(static_cast<double>(l.w_qkv.data()[at]) + s * d);
        }
    }
  } else if constexpr (requires {
                         l.inner;
                         b.inner;
                       }) {
    merge_into(b.inner, l.inner);
  } else {
    static_assert(L::inner_count == B::inner_count);
    meta::static_for<L::inner_count>(
        [&](auto k) { merge_into(b.template inner<k>(), l.template inner<k>()); });
  }
}
}  // namespace detail

/// S (a spec, stack or model) with every LoRA adapter removed: the base type.
template <class S> using strip_adapters_t = typename detail::strip_adapters<S>::type;

/// A LoRA model whose backbone is base's: base tensors copied, adapters initialised from s (A
/// uniform, B = 0: the new model computes what base computes). The head is copied when both
/// models have the same head type, initialised from s otherwise (as attach does). Base's backbone
/// must be LoraNet's with the adapters removed (a static_assert says so).
template <class LoraNet, class Base>
std::unique_ptr<LoraNet> with_adapters(const Base& base, seed s = {}) {
  static_assert(is_model<LoraNet>::value && is_model<Base>::value,
                "graft: with_adapters<LoraNet>(base): both must be graft::model types");
  using T = typename LoraNet::scalar;
  static_assert(
      std::is_same_v<typename strip_adapters_t<typename LoraNet::backbone_type>::template layers<T>,
                     typename Base::backbone_type::template layers<typename Base::scalar>>,
      "graft: with_adapters<LoraNet>(base): base's backbone must be LoraNet's without its "
      "adapters (strip_adapters_t<LoraNet::backbone_type>)");
  auto net = make_model<LoraNet>(s);
  meta::static_for<LoraNet::backbone_layer_count>(
      [&](auto i) { detail::copy_base(net->template layer<i>(), base.template layer<i>()); });
  if constexpr (std::is_same_v<typename LoraNet::head_layer, typename Base::head_layer>)
    net->head() = base.head();
  return net;
}

/// The base-typed model of a LoRA model: each adapted W becomes W + s A B. What save, the
/// exporters and quantization take.
template <class LoraNet> auto merge_adapters(const LoraNet& net) {
  static_assert(is_model<LoraNet>::value, "graft: merge_adapters(net): net must be a graft::model");
  using base_t = strip_adapters_t<LoraNet>;
  auto out = std::make_unique<base_t>();
  meta::static_for<LoraNet::backbone_layer_count>(
      [&](auto i) { detail::merge_into(out->template layer<i>(), net.template layer<i>()); });
  out->head() = net.head();
  return out;
}

GRAFT_END_NAMESPACE
