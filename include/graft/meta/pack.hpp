// Flat type-pack helpers: no recursion over the pack (see STYLE.md: recursive lookups cost seconds
// and hundreds of MB at a few hundred layers).
#pragma once
#include <cstddef>
#include <type_traits>
#include <utility>

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE
namespace meta {

template <class... Ts> struct type_list { static constexpr std::size_t size = sizeof...(Ts); };

template <class T> struct type_identity { using type = T; };

namespace detail {
template <std::size_t I, class T> struct indexed { using type = T; };
template <class Seq, class... Ts> struct indexed_all;
template <std::size_t... Is, class... Ts> struct indexed_all<std::index_sequence<Is...>, Ts...>
    : indexed<Is, Ts>... {};

// Overload resolution picks the one base with index I: constant depth whatever the pack size.
template <std::size_t I, class T> indexed<I, T> select(const indexed<I, T>&);
}  // namespace detail

/// The I-th type of a pack, found by overload resolution (no recursion).
template <std::size_t I, class... Ts> using pack_element_t = typename decltype(detail::select<I>(
    std::declval<detail::indexed_all<std::index_sequence_for<Ts...>, Ts...>>()))::type;

template <std::size_t I, class List> struct list_element;
template <std::size_t I, class... Ts> struct list_element<I, type_list<Ts...>> {
  using type = pack_element_t<I, Ts...>;
};
template <std::size_t I, class List> using list_element_t = typename list_element<I, List>::type;

/// Calls f(std::integral_constant<std::size_t, I>{}) for I = 0..N-1, in order (a fold, no
/// recursion).
template <std::size_t N, class F> constexpr void static_for(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (f(std::integral_constant<std::size_t, I>{}), ...);
  }
  (std::make_index_sequence<N>{});
}

/// Same, from N-1 down to 0.
template <std::size_t N, class F> constexpr void static_for_reverse(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (f(std::integral_constant<std::size_t, N - 1 - I>{}), ...);
  }
  (std::make_index_sequence<N>{});
}

template <class> inline constexpr bool always_false = false;

}  // namespace meta
GRAFT_END_NAMESPACE
