// Flat type-pack helpers, for models of thousands of layers. Three rules:
//  - no recursion over a pack (instantiation depth and memory grow with it);
//  - no fold expression over a pack that grows with the model: clang nests a fold of N terms N
//    deep ("instantiating fold expression with 300 arguments exceeded expression nesting limit of
//    256"), and g++ is slow on long comma folds; a braced list is flat and evaluated left to right,
//    so the helpers below use one;
//  - no per-index entity that repeats the pack: looking up element I of an N-element pack as
//    some_template<I, Ts...> makes each of the N lookups carry N arguments (quadratic memory: GBs
//    at a thousand layers). A pack is indexed once, as one class with a base per element, and
//    element I is the one base that deduction matches (constant size per lookup).
#pragma once
#include <cstddef>
#include <type_traits>
#include <utility>

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE
namespace meta {

namespace detail {
template <std::size_t I, class T> struct indexed { using type = T; };
template <class Seq, class... Ts> struct indexed_all;
template <std::size_t... Is, class... Ts> struct indexed_all<std::index_sequence<Is...>, Ts...>
    : indexed<Is, Ts>... {};

// Deduction picks the one base with index I: constant depth and size whatever the pack size.
template <std::size_t I, class T> indexed<I, T> select(const indexed<I, T>&);
template <std::size_t I, class Index> using indexed_element_t =
    typename decltype(select<I>(std::declval<const Index&>()))::type;
}  // namespace detail

template <class... Ts> struct type_list {
  static constexpr std::size_t size = sizeof...(Ts);
  /// The elements by position, for list_element_t (one class, built once per list).
  using index = detail::indexed_all<std::index_sequence_for<Ts...>, Ts...>;
};

template <class T> struct type_identity { using type = T; };

/// The I-th type of a type_list.
template <std::size_t I, class List> struct list_element {
  static_assert(I < List::size, "graft: list_element index out of range");
  using type = detail::indexed_element_t<I, typename List::index>;
};
template <std::size_t I, class List> using list_element_t = typename list_element<I, List>::type;

/// The I-th type of a pack. For a single lookup; to look up many positions of one pack, make a
/// type_list of it once and use list_element_t (this alias repeats the pack at every use).
template <std::size_t I, class... Ts> using pack_element_t =
    detail::indexed_element_t<I, detail::indexed_all<std::index_sequence_for<Ts...>, Ts...>>;

namespace detail {
// The calls are the elements of one braced list (evaluated in order, [dcl.init.list]): flat
// whatever N, unlike a comma fold, which clang nests N deep. The leading 0 allows N == 0.
template <class F, std::size_t... I>
constexpr void static_for_each(F& f, std::index_sequence<I...>) {
  using swallow = int[];
  static_cast<void>(
      swallow{0, (static_cast<void>(f(std::integral_constant<std::size_t, I>{})), 0)...});
}
template <std::size_t N, class F, std::size_t... I>
constexpr void static_for_each_reverse(F& f, std::index_sequence<I...>) {
  using swallow = int[];
  static_cast<void>(
      swallow{0, (static_cast<void>(f(std::integral_constant<std::size_t, N - 1 - I>{})), 0)...});
}
}  // namespace detail

/// Calls f(std::integral_constant<std::size_t, I>{}) for I = 0..N-1, in order (one flat
/// expansion: no recursion, no fold).
template <std::size_t N, class F> constexpr void static_for(F&& f) {
  detail::static_for_each(f, std::make_index_sequence<N>{});
}

/// Same, from N-1 down to 0.
template <std::size_t N, class F> constexpr void static_for_reverse(F&& f) {
  detail::static_for_each_reverse<N>(f, std::make_index_sequence<N>{});
}

/// Sum, conjunction and disjunction of a pack of values: a braced list and a loop instead of a
/// fold, e.g. meta::all_v<check<I>()...> for (check<I>() && ...).
template <std::size_t... V> inline constexpr std::size_t sum_v = [] {
  const std::size_t v[] = {std::size_t{0}, V...};
  std::size_t s = 0;
  for (const std::size_t x : v) s += x;
  return s;
}();
template <bool... B> inline constexpr bool all_v = [] {
  const bool v[] = {true, B...};
  for (const bool x : v)
    if (!x) return false;
  return true;
}();
template <bool... B> inline constexpr bool any_v = [] {
  const bool v[] = {false, B...};
  for (const bool x : v)
    if (x) return true;
  return false;
}();

template <class> inline constexpr bool always_false = false;

}  // namespace meta
GRAFT_END_NAMESPACE
