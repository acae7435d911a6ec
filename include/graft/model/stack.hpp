// stack<input<...>, Specs...>: a backbone as a type. Each spec is bound to the shape that reaches
// it while compiling; the binding is a left fold over the specs (flat, no template recursion).
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

template <class T> struct is_input : std::false_type {};
template <std::size_t... D> struct is_input<input<D...>> : std::true_type {};

/// Storage for bound layers, one base per layer (flat: no recursive tuple).
template <std::size_t I, class L> struct layer_leaf { L layer; };
template <class Seq, class... L> struct layer_pack_impl;
template <std::size_t... I, class... L> struct layer_pack_impl<std::index_sequence<I...>, L...>
    : layer_leaf<I, L>... {};

template <class... L> struct layer_pack : layer_pack_impl<std::index_sequence_for<L...>, L...> {
  static constexpr std::size_t size = sizeof...(L);
  template <std::size_t I> using type = meta::pack_element_t<I, L...>;
  template <std::size_t I> auto& get() noexcept {
    return static_cast<layer_leaf<I, type<I>>&>(*this).layer;
  }
  template <std::size_t I> const auto& get() const noexcept {
    return static_cast<const layer_leaf<I, type<I>>&>(*this).layer;
  }
};

namespace detail {
// State of the binding fold: whether every layer so far accepted its input, and the shapes seen
// (Shapes[0] is the input, Shapes[i+1] the output of layer i).
template <bool Ok, class... Shapes> struct chain {
  static constexpr bool ok = Ok;
  using last = meta::pack_element_t<sizeof...(Shapes) - 1, Shapes...>;
  using shapes = meta::type_list<Shapes...>;
};
template <class Spec> struct spec_tag {};

template <bool Ok, class Spec, class Last> struct step_shape {
  using type = Last;  // after an error: keep going quietly, one diagnostic is enough
};
template <class Spec, class Last> struct step_shape<true, Spec, Last> {
  using type = typename Spec::template bind<float, Last>::output_shape;
};

template <bool Ok, class Spec, std::size_t Index, class Last> struct check_spec {
  static constexpr bool accepted = true;
};
template <class Spec, std::size_t Index, class Last> struct check_spec<true, Spec, Index, Last> {
  static_assert(LayerSpec<Spec>,
                "graft: an element of stack<...> is not a layer spec (it has no 'expects'); "
                "did you pass a bound layer or a value?");
  // Instantiating the diagnostic type is what prints the layer index and both shapes.
  static constexpr bool diagnose() {
    if constexpr (!Spec::template accepts<Last>)
      return sizeof(error::layer_input_mismatch<layer_index<Index>, Spec, typename Spec::expects,
                                                Last>) == 0;
    else
      return true;
  }
  static constexpr bool accepted = diagnose();
};

template <bool Ok, class... Shapes, class Spec>
auto operator|(chain<Ok, Shapes...>, spec_tag<Spec>) {
  using last = typename chain<Ok, Shapes...>::last;
  using check = check_spec<Ok, Spec, sizeof...(Shapes) - 1, last>;
  constexpr bool ok = Ok && check::accepted;
  return chain<ok, Shapes..., typename step_shape<ok, Spec, last>::type>{};
}

template <class T, bool Ok, class ShapeList, class Seq, class... Specs> struct bind_all {
  using type = layer_pack<>;  // an invalid stack has been diagnosed; bind nothing more
};
template <class T, class ShapeList, std::size_t... I, class... Specs>
struct bind_all<T, true, ShapeList, std::index_sequence<I...>, Specs...> {
  using type = layer_pack<typename Specs::template bind<T, meta::list_element_t<I, ShapeList>>...>;
};
}  // namespace detail

/// A backbone: input<...> followed by layer specs. Shapes are inferred left to right while
/// compiling; a layer that cannot take its input stops the build with
/// error::layer_input_mismatch<layer_index<I>, layer, expected, got>.
template <class Input, class... Specs> struct stack {
  static_assert(is_input<Input>::value,
                "graft: the first element of stack<...> must be input<...>, e.g. input<1, 28, 28>");

  using chain = decltype((detail::chain<true, typename Input::shape_type>{} | ... |
                          detail::spec_tag<Specs>{}));
  static constexpr bool valid = chain::ok;
  using input_shape = typename Input::shape_type;
  using output_shape = typename chain::last;
  /// shapes: type_list of the input shape followed by every layer's output shape.
  using shapes = typename chain::shapes;
  static constexpr std::size_t layer_count = sizeof...(Specs);

  /// The layers bound to scalar type T, as stored in a model.
  template <class T> using layers =
      typename detail::bind_all<T, valid, shapes, std::index_sequence_for<Specs...>,
                                Specs...>::type;

  template <class T> static constexpr std::size_t parameter_count_of = [
  ]<std::size_t... I>(std::index_sequence<I...>) {
    return (std::size_t{0} + ... + layers<T>::template type<I>::parameter_count);
  }
  (std::make_index_sequence<layers<T>::size>{});

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
