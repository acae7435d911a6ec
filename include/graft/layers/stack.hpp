// stack<input<...>, Specs...>: a backbone (or a residual block's inner chain) as a type. Each spec
// is bound to the shape that reaches it while compiling; the binding walks the specs in one flat
// expansion (no template recursion, no fold expression: thousands of layers compile).
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "graft/layers/layer.hpp"
#include "graft/meta/pack.hpp"

GRAFT_BEGIN_NAMESPACE

/// The input of a stack: the shape of one sample (channels first for images).
template <std::size_t... D> struct input {
  static_assert(sizeof...(D) > 0 && (... && (D > 0)), "graft: input<...> needs positive extents");
  using shape_type = shape<D...>;
};

/// The input of a token model: L token ids from a vocabulary of V per sample (held as scalars:
/// exact below 2^24 in float), the pad id 0 and only at the end of a sample. Layers that declare
/// sequence_use::masked see one length per sample: the position of its first pad id (L when it
/// has none), mapped through the layers below them that change lengths (conv1d).
template <std::size_t L, std::size_t V> struct input_tokens {
  static_assert(L > 0 && V > 1, "graft: input_tokens<L, V> needs L > 0 and V > 1 (id 0 is pad)");
  using shape_type = shape<L>;
  static constexpr std::size_t length = L;
  static constexpr std::size_t vocabulary = V;
  static constexpr std::size_t pad = 0;
  static std::string name() {
    // appended piece by piece: g++ 12 warns falsely (-Wrestrict, armv7 -O3) on "..." + string&&
    std::string s = "input_tokens<";
    s += std::to_string(L);
    s += ',';
    s += std::to_string(V);
    s += '>';
    return s;
  }
};

template <class T> struct is_input : std::false_type {};
template <std::size_t... D> struct is_input<input<D...>> : std::true_type {};
template <std::size_t L, std::size_t V> struct is_input<input_tokens<L, V>> : std::true_type {};

template <class T> struct is_token_input : std::false_type {};
template <std::size_t L, std::size_t V> struct is_token_input<input_tokens<L, V>> : std::true_type {
};
/// True for input_tokens<L, V>.
template <class T> inline constexpr bool is_token_input_v = is_token_input<T>::value;

/// Storage for bound layers, one base per layer (flat: no recursive tuple).
template <std::size_t I, class L> struct layer_leaf { L layer; };
template <class Seq, class... L> struct layer_pack_impl;
template <std::size_t... I, class... L> struct layer_pack_impl<std::index_sequence<I...>, L...>
    : layer_leaf<I, L>... {};

namespace detail {
// Deduction picks the one base layer_leaf<I, L> (see meta/pack.hpp); the class template caches
// the answer, so that each further use of layer I costs a lookup of (I, Pack), not a deduction.
template <std::size_t I, class L> meta::type_identity<L> leaf_type(const layer_leaf<I, L>&);
template <std::size_t I, class Pack> struct layer_at {
  using type = typename decltype(leaf_type<I>(std::declval<const Pack&>()))::type;
};
}  // namespace detail

template <class... L> struct layer_pack : layer_pack_impl<std::index_sequence_for<L...>, L...> {
  static constexpr std::size_t size = sizeof...(L);
  template <std::size_t I> using type = typename detail::layer_at<I, layer_pack>::type;
  template <std::size_t I> auto& get() noexcept {
    return static_cast<layer_leaf<I, type<I>>&>(*this).layer;
  }
  template <std::size_t I> const auto& get() const noexcept {
    return static_cast<const layer_leaf<I, type<I>>&>(*this).layer;
  }
};

namespace detail {
template <bool Ok, class Spec, class Last> struct step_shape {
  using type = Last;  // after an error: keep going quietly, one diagnostic is enough
};
template <class Spec, class Last> struct step_shape<true, Spec, Last> {
  using type = typename Spec::template bind<float, Last>::output_shape;
};

template <class Spec, class Last> inline constexpr bool spec_accepts = [] {
  if constexpr (LayerSpec<Spec>)
    return Spec::template accepts<Last>;
  else
    return false;
}();

// Instantiated for a rejected spec only. diagnose() instantiates the diagnostic type, whose
// arguments name the layer index and both shapes; taking its address has its body instantiated
// without evaluating it, so this class stays valid and `value` a constant: the steps after a
// mistake and the stack's `valid` add no errors of their own (one error per mistake).
template <class Spec, std::size_t Index, class Last> struct spec_report {
  static bool diagnose() {
    if constexpr (!LayerSpec<Spec>) {
      static_assert(meta::always_false<Spec>,
                    "graft: an element of stack<...> is not a layer spec (it has no 'expects'); "
                    "did you pass a bound layer or a value?");
      return false;
    } else {
      return sizeof(error::layer_input_mismatch<layer_index<Index>, Spec, typename Spec::expects,
                                                Last>) == 0;
    }
  }
  static_assert((static_cast<void>(&diagnose), true));
  static constexpr bool value = false;
};

template <bool Ok, class Spec, std::size_t Index, class Last> struct check_spec {
  static constexpr bool accepted = true;  // after an error: keep going quietly
};
template <class Spec, std::size_t Index, class Last> struct check_spec<true, Spec, Index, Last> {
  static constexpr bool accepted = std::conditional_t<spec_accepts<Spec, Last>, std::true_type,
                                                      spec_report<Spec, Index, Last>>::value;
};

// bind_step<In, Specs, K>: the state after the first K specs of the type_list Specs: whether each
// of them accepted its input, and the shape that leaves the K-th (In for K = 0). Step K reads step
// K-1, so asking for the last step first would nest the steps as deep as the stack (clang stops
// at 1024, g++ at 900, and every level costs memory); bind_chain asks for them in order instead,
// in one flat expansion, so that each step finds the one before it already complete. A step's
// arguments do not repeat the pack, and its spec is looked up in the list's index (constant size
// per step: linear memory in the number of layers).
template <class In, class Specs, std::size_t K> struct bind_step {
  using prev = bind_step<In, Specs, K - 1>;
  using in = typename prev::out;
  using spec = meta::list_element_t<K - 1, Specs>;
  static constexpr bool ok = prev::ok && check_spec<prev::ok, spec, K - 1, in>::accepted;
  using out = typename step_shape<ok, spec, in>::type;
};
template <class In, class Specs> struct bind_step<In, Specs, 0> {
  static constexpr bool ok = true;
  using out = In;
};

template <class In, class Specs, class Seq> struct bind_chain;
template <class In, class Specs, std::size_t... K>
struct bind_chain<In, Specs, std::index_sequence<K...>> {
  /// The input shape followed by every layer's output shape: this expansion drives the binding,
  /// step 1 to step N in this order.
  using shapes = meta::type_list<In, typename bind_step<In, Specs, K + 1>::out...>;
  /// Every layer's input shape (the same steps, already complete).
  using inputs = meta::type_list<typename bind_step<In, Specs, K + 1>::in...>;
  using final_step = bind_step<In, Specs, sizeof...(K)>;
  static constexpr bool ok = final_step::ok;
  using last = typename final_step::out;
};

template <class T, bool Ok, class Specs, class Inputs> struct bind_all {
  using type = layer_pack<>;  // an invalid stack has been diagnosed; bind nothing more
};
// Specs and their input shapes are zipped: two packs of the same length, no lookup.
template <class T, class... Specs, class... In>
struct bind_all<T, true, meta::type_list<Specs...>, meta::type_list<In...>> {
  using type = layer_pack<typename Specs::template bind<T, In>...>;
};
}  // namespace detail

/// group<Specs...>: a list of layer specs spliced into the stack (or residual block) where it
/// stands, so stack<I, A, group<B, C>, D> has the layers of stack<I, A, B, C, D> (the same bound
/// layers, description and weight files). A named group is a reusable block of several model
/// layers, e.g. a transformer encoder layer (layers/encoder.hpp). Groups may nest.
template <class... Specs> struct group {};

namespace detail {
template <class S> struct is_group : std::false_type {};
template <class... S> struct is_group<group<S...>> : std::true_type {};

template <class... Lists> struct concat_lists;
template <> struct concat_lists<> { using type = meta::type_list<>; };
template <class... A> struct concat_lists<meta::type_list<A...>> {
  using type = meta::type_list<A...>;
};
template <class... A, class... B, class... Rest>
struct concat_lists<meta::type_list<A...>, meta::type_list<B...>, Rest...> {
  using type = typename concat_lists<meta::type_list<A..., B...>, Rest...>::type;
};
template <class... Specs> struct spliced;
template <class S> struct spec_items { using type = meta::type_list<S>; };
template <class... S> struct spec_items<group<S...>> { using type = typename spliced<S...>::type; };
/// The specs with every group spliced in (its depth is the number of specs: only stacks with a
/// group take this path, so long stacks keep their flat binding).
template <class... Specs> struct spliced {
  using type = typename concat_lists<typename spec_items<Specs>::type...>::type;
};
template <bool AnyGroup, class... Specs> struct spec_list_of {
  using type = meta::type_list<Specs...>;
};
template <class... Specs> struct spec_list_of<true, Specs...> {
  using type = typename spliced<Specs...>::type;
};
template <class List> struct list_indices;
template <class... S> struct list_indices<meta::type_list<S...>> {
  using type = std::index_sequence_for<S...>;
};
}  // namespace detail

/// A backbone: input<...> followed by layer specs. Shapes are inferred left to right while
/// compiling; a layer that cannot take its input stops the build with
/// error::layer_input_mismatch<layer_index<I>, layer, expected, got>.
template <class Input, class... Specs> struct stack {
  static_assert(is_input<Input>::value,
                "graft: the first element of stack<...> must be input<...>, e.g. input<1, 28, 28>");

  using input_type = Input;
  using spec_list =
      typename detail::spec_list_of<meta::any_v<detail::is_group<Specs>::value...>, Specs...>::type;
  using chain = detail::bind_chain<typename Input::shape_type, spec_list,
                                   typename detail::list_indices<spec_list>::type>;
  static constexpr bool valid = chain::ok;
  using input_shape = typename Input::shape_type;
  using output_shape = typename chain::last;
  /// shapes: type_list of the input shape followed by every layer's output shape.
  using shapes = typename chain::shapes;
  static constexpr std::size_t layer_count = spec_list::size;

  /// The layers bound to scalar type T, as stored in a model.
  template <class T> using layers =
      typename detail::bind_all<T, valid, spec_list, typename chain::inputs>::type;

  template <class T>
  static constexpr std::size_t parameter_count_of = []<class... L>(layer_pack<L...>*) {
    return meta::sum_v<L::parameter_count...>;
  }(static_cast<layers<T>*>(nullptr));

  static constexpr std::size_t parameter_count = parameter_count_of<float>;
  template <class T = float>
  static constexpr std::size_t parameter_bytes = parameter_count_of<T> * sizeof(T);

  /// Elements of each shape in the chain (input first).
  static constexpr std::array<std::size_t, layer_count + 1> sizes =
      []<class... S>(meta::type_list<S...>) {
        return std::array<std::size_t, layer_count + 1>{S::size...};
      }(shapes{});
  static constexpr std::size_t widest = *std::max_element(sizes.begin(), sizes.end());
};

template <class T> struct is_stack : std::false_type {};
template <class I, class... S> struct is_stack<stack<I, S...>> : std::true_type {};

GRAFT_END_NAMESPACE
