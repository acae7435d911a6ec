// graft's compile-time diagnostics in one place (as Eigen's StaticAssert.h): the requirement
// names a layer declares (`diagnostics::expects_...`: what it needs, phrased as the fix) and the
// error types (`error::...`) whose instantiation stops compilation. An error type is instantiated
// only on the path of a mistake; the compiler then prints its template arguments (the layer index,
// the layer, the shapes, the option) next to one static_assert message that says how to read them.
// Light header: no includes beyond config.hpp.
#pragma once
#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE

namespace diagnostics {
// Requirement names: what a layer expected of its input. The name says how to fix it.
struct expects_flat_input_insert_flatten_before_this_layer {};
struct expects_any_shape {};
struct expects_a_channels_x_height_x_width_image_at_least_as_large_as_the_kernel {};
struct expects_a_channels_x_height_x_width_image_at_least_as_large_as_the_window {};
struct expects_a_flat_feature_vector_insert_flatten_at_the_end_of_the_backbone {};
struct expects_a_block_whose_output_has_the_input_shape_or_a_1x1_strided_projection {};
struct expects_a_flat_input_of_token_ids_such_as_input_of_the_sequence_length {};
struct expects_a_sequence_of_rows_length_x_width_such_as_an_embedding_output {};
struct expects_a_flat_vector_or_a_sequence_of_rows_length_x_width {};
struct expects_a_length_x_channels_sequence_at_least_as_long_as_the_kernel {};
struct expects_a_length_x_channels_sequence {};
}  // namespace diagnostics

namespace error {
// ---- stacks and heads (layers/stack.hpp, layers/concept.hpp)
// -------------------------------------
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

/// Instantiated when, in a token model (input_tokens<L, V>), a masked layer (one that reads each
/// sample's length: conv1d, the time pools, attention) comes after a layer that ends the lengths
/// (one that mixes positions without a mask, or flattens them).
template <class MaskedIndex, class MaskedLayer, class EndIndex, class EndLayer>
struct masked_layer_after_unknown_layer {
  static_assert(sizeof(MaskedLayer) == 0,
                "graft: in a token model a masked layer needs each sample's length, but a layer "
                "below it ends the lengths; the template arguments of "
                "masked_layer_after_unknown_layer above name the masked layer's index, the layer, "
                "and the index and layer that ended the lengths (a layer of unknown sequence use "
                "or a flat output: declare `sequence` on it, layers/concept.hpp)");
};

/// Instantiated when a bound layer does not fulfil the layer contract (layers/concept.hpp):
/// Member is a diagnostics::needs_... type naming the first member it lacks.
template <class Index, class Layer, class Member> struct layer_lacks_member {
  static_assert(sizeof(Layer) == 0,
                "graft: a layer does not fulfil the layer contract (layers/concept.hpp); the "
                "template arguments of layer_lacks_member above name the layer index, the layer "
                "and the member it lacks");
};

// ---- residual blocks (layers/residual.hpp) ------------------------------------------------------
/// Instantiated when a residual block's output cannot be added to its input: the shapes differ
/// and no 1x1 strided convolution maps one to the other.
template <class Input, class BlockOutput> struct residual_shapes_cannot_be_added {
  static_assert(sizeof(Input) == 0,
                "graft: residual<...>: the block's output shape differs from its input shape and "
                "no 1x1 strided projection maps one to the other; the template arguments of "
                "residual_shapes_cannot_be_added above are the input and the block's output");
};
/// Instantiated when a declared projection does not produce the block's output shape.
template <class ProjectionOutput, class BlockOutput> struct residual_projection_mismatch {
  static_assert(sizeof(ProjectionOutput) == 0,
                "graft: residual<projection<...>, ...>: the projection's output shape differs "
                "from the block's; the template arguments of residual_projection_mismatch above "
                "are both shapes");
};

// ---- tensors (tensor/tensor.hpp) ----------------------------------------------------------------
/// Instantiated by an assignment between tensors of different shapes (xtensor_fixed would compile
/// it and overflow the buffer).
template <class T, class From, class To> struct tensor_shape_mismatch {
  static_assert(sizeof(T) == 0,
                "graft: assignment between tensors of different shapes (see From and To above); "
                "reshape explicitly with graft::reshape_copy");
};

// ---- options of pretrain / finetune / lp_ft / evaluate (train/options.hpp) ----------------------
/// Instantiated for an argument that is not an option of the call; Option names it.
template <class Option> struct unknown_option {
  static_assert(sizeof(Option) == 0,
                "graft: an argument is not an option of this call; the template argument of "
                "unknown_option above names it. Options: epochs{n} or steps{n}, batch<N>, seed{s}, "
                "quiet / progress{b}, on_step(f), on_epoch(f), one schedule, discriminative_lr, "
                "gradual_unfreezing, l2_sp, feature_cache, checkpoint, resume, divergence_guard "
                "(evaluate: batch<N> only)");
};
/// Instantiated when an option is given twice (or two of one kind: two schedules, epochs and
/// steps, two optimizers); Option names the second.
template <class Option> struct duplicate_option {
  static_assert(sizeof(Option) == 0,
                "graft: an option is given twice (or two options of one kind: two schedules, "
                "epochs and steps); the template argument of duplicate_option above names it");
};
}  // namespace error

GRAFT_END_NAMESPACE
