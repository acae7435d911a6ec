// What every layer shares: parameter roles, the bound-layer concept, and the compile-time
// diagnostics a wrong stack produces.
#pragma once
#include <array>
#include <concepts>
#include <cstddef>
#include <string>

#include "graft/random/random.hpp"
#include "graft/tensor/shape.hpp"

GRAFT_BEGIN_NAMESPACE

/// What a parameter tensor is for; freezing policies (bias-only, ...) select by role.
enum class role { weight, bias };

inline const char* role_name(role r) noexcept { return r == role::weight ? "weight" : "bias"; }

/// Describes one parameter tensor of a bound layer.
struct param_desc {
  std::size_t size;
  role kind;
};

/// Position of a layer in a model: 0 is the first layer after input<...>; the head comes last.
template <std::size_t I> struct layer_index { static constexpr std::size_t value = I; };

/// A spec bound to a scalar type and an input shape: what stacks, heads and trainers require.
template <class L>
concept BoundLayer = requires(L& l, const L& cl, const typename L::scalar* x, typename L::scalar* y,
                              std::size_t rows, splitmix64& rng) {
  typename L::scalar;
  requires Shape<typename L::input_shape>;
  requires Shape<typename L::output_shape>;
  { L::parameter_count } -> std::convertible_to<std::size_t>;
  { L::params.size() } -> std::convertible_to<std::size_t>;
  { cl.forward(x, y, rows) }
  noexcept;
  {l.init(rng)};
  { L::name() } -> std::convertible_to<std::string>;
};

/// The parameter interface of a layer that has none (activations, pooling, flatten, dropout):
/// derive from it instead of spelling out empty parameter lists.
template <class T> struct without_parameters {
  static constexpr std::size_t parameter_count = 0;
  static constexpr std::array<param_desc, 0> params{};
  T* param(std::size_t) noexcept { return nullptr; }
  const T* param(std::size_t) const noexcept { return nullptr; }
  void init(splitmix64&) noexcept {}
};

/// A layer spec such as dense<64>: shape-agnostic until a stack binds it.
template <class S>
concept LayerSpec = requires {
  typename S::expects;
};

namespace diagnostics {
// Requirement names: what a layer expected of its input. The name says how to fix it.
struct expects_flat_input_insert_flatten_before_this_layer {};
struct expects_any_shape {};
struct expects_a_channels_x_height_x_width_image_at_least_as_large_as_the_kernel {};
struct expects_a_channels_x_height_x_width_image_at_least_as_large_as_the_window {};
struct expects_a_flat_feature_vector_insert_flatten_at_the_end_of_the_backbone {};
}  // namespace diagnostics

namespace error {
/// Instantiated when layer number Index (0 = first layer after input<...>) cannot take the shape
/// that reaches it. The compiler prints this type: it names the layer index, the layer, what the
/// layer expects and the shape it got.
template <class Index, class Layer, class Expected, class Got> struct layer_input_mismatch {
  static_assert(sizeof(Layer) == 0,
                "graft: a layer cannot take the shape of its input; the template arguments of "
                "layer_input_mismatch above name the layer index, the layer, what it expects and "
                "the shape it got");
};
/// Instantiated when a head does not fit the backbone's output.
template <class Index, class Head, class Expected, class Got> struct head_input_mismatch {
  static_assert(sizeof(Head) == 0,
                "graft: the head does not fit the backbone's output; the template arguments of "
                "head_input_mismatch above name the head's layer index, the head, what it expects "
                "and the shape the backbone gives");
};
}  // namespace error

GRAFT_END_NAMESPACE
