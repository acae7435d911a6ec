// The layer contract, written once. A layer comes in two parts, a spec and a bound layer:
//
//   using net = model<stack<input<1, 28, 28>, flatten, dense<64>, relu>, classifier<10>>;
//                                                     ^^^^^^^^^ a spec: shape-agnostic
//   net::layer_type<1>  ==  dense<64>::bind<float, shape<784>>   // the bound layer: the real type
//
// A stack binds each spec to the scalar type and the shape that reaches it, while compiling; the
// model checks every bound layer against BoundLayer below, and a layer that misses a member stops
// the build with one error, error::layer_lacks_member<layer_index<I>, Layer,
// diagnostics::needs_...>, whose template arguments name the layer's position, the layer and the
// member.
//
// ---- EXAMPLE_SPEC (what a spec provides) -------------------------------------------------------
//
//   struct EXAMPLE_SPEC {
//     using expects = diagnostics::expects_...;
//         // A type whose name says what the layer needs of its input, phrased as the fix
//         // (diagnostics.hpp); printed when `accepts` is false.
//     template <class In> static constexpr bool accepts = ...;
//         // requires: In is a shape<D...>.  ensures: true iff bind<T, In> is a valid layer.
//     template <class T, class In> using bind = EXAMPLE_LAYER<T, In>;
//         // requires: accepts<In>.  T is float or double.
//   };
//
// ---- EXAMPLE_LAYER (what a bound layer provides; every member is required) ---------------------
//
//   template <class T, class In> struct EXAMPLE_LAYER {
//     using scalar = T;  using input_shape = In;  using output_shape = shape<...>;
//         // ensures: input_shape::size values in per row, output_shape::size values out per row.
//     static constexpr std::size_t parameter_count;
//         // ensures: the sum of params[j].size.
//     static constexpr std::array<param_desc, P> params;
//         // One entry per parameter tensor: its size and role (weight or bias; freezing policies
//         // select by role). P <= detail::max_params_per_layer. P may be 0
//         // (derive from without_parameters<T> for the parameter members then).
//     T* param(std::size_t j);  const T* param(std::size_t j) const;
//         // requires: j < P.  ensures: params[j].size contiguous values, stable for the layer's
//         // lifetime (weight files, optimizers and checkpoints write through it).
//     void init(splitmix64& rng);
//         // ensures: every parameter (and buffer) set; draws only from rng, so a seed gives the
//         // same layer everywhere.
//     static std::string name();
//         // ensures: a short, stable description ("dense<64>"). It is part of the weight-file
//         // fingerprint and of checkpoints: changing it makes saved files of models with this
//         // layer unreadable (by design: a file names the architecture it was saved from).
//     void forward(const T* x, T* y, std::size_t rows) const noexcept;
//         // Evaluation mode. requires: x holds rows x input_shape::size values, y room for rows x
//         // output_shape::size; x and y do not overlap.  ensures: y written, the layer unchanged.
//     template <bool InputGrad, unsigned GradMask>
//     void backward(const T* x, const T* y, const T* dy, T* dx, T* const* grads,
//                   std::size_t rows) const noexcept;
//         // requires: the last forward (or forward_train) ran on x and wrote y; dy = dLoss/dy.
//         // ensures: with InputGrad, dx = dLoss/dx (rows x input size); for each j with bit j of
//         // GradMask set, grads[j] = dLoss/dparam(j) summed over rows (overwritten, not added).
//         // A bit not set means the tensor is frozen: grads[j] may be null and must not be
//         // touched, and no work for it should be compiled (if constexpr on GradMask).
//   };
//
// ---- optional parts, each a named concept below -------------------------------------------------
//
// * TrainingForward: `void forward_train(x, y, rows) noexcept` (dropout). The trainer calls it for
//   layers that train; a frozen layer runs `forward`. backward follows the last forward_train.
// * UsesWorkspace: scratch memory that depends on the batch (batch norm's batch statistics, a
//   residual block's inner activations). Such a layer declares the elements of T it needs:
//     static constexpr std::size_t training_workspace(std::size_t rows);
//     static constexpr std::size_t inference_workspace(std::size_t rows);
//   (non-decreasing in rows: the caller sizes the workspace for its largest batch) and implements,
//   instead of the plain forward / backward:
//     void forward(x, y, rows, T* ws) const noexcept;                          // evaluation
//     template <train_mode Mode> void forward_train(x, y, rows, T* ws) noexcept;
//     template <bool InputGrad, unsigned GradMask, train_mode Mode>
//     void backward(x, y, dy, dx, grads, rows, T* ws) const noexcept;
//   Mode (layer.hpp) is how the trainer runs the layer, decided from the freezing policy. The
//   caller owns ws (the trainer's arena, a runner): a layer with a workspace allocates nothing.
// * HasBuffers: state saved with the weights but never trained (running statistics):
//     static constexpr std::array<std::size_t, N> buffers;   T* buffer(j);   const T* buffer(j)
//     const;
// * HasRunningStatistics: `static constexpr bool has_statistics = true` when the layer keeps
//   running statistics (freezing policies decide whether they update); `min_batch_rows`: the rows
//   a training batch needs for batch statistics.
// * Fusable<L, Next>: L offers `template <class Epi> void forward_fused(x, y, rows) const noexcept`
//   (stores Epi applied to forward's value) and Next (an element-wise activation) names its
//   `epilogue`. By offering it L promises that its backward never reads its own output.
// * HasRngState: `template <class F> void visit_rng_state(F&& f)` calls f(std::uint64_t&) on each
//   word of the layer's random state (dropout's seed and draw count): checkpoints save them.
// * Sequence (token models, issue 16): `static constexpr sequence_use sequence = ...;`
//   (layer.hpp). positionwise: output row l depends on input row l only. masked: the layer uses
//   the workspace forms with a trailing `sequence_mask m = {}` (forward, forward_train, backward,
//   and forward_from / backward_from / forward_fused(_from) when it has them); it reads only the
//   first m.length(r, L) positions of sample r, writes exact 0 at the invalid output positions and
//   gives a 0 input gradient at the invalid input positions. A masked layer that changes lengths
//   declares `static constexpr std::size_t output_length(std::size_t n) noexcept`.
#pragma once
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "graft/diagnostics.hpp"
#include "graft/layers/layer.hpp"
#include "graft/random/random.hpp"
#include "graft/tensor/shape.hpp"

GRAFT_BEGIN_NAMESPACE

namespace contract {
// One concept per required member, so that a failing layer is told which member it lacks.
template <class L>
concept has_types = requires {
  typename L::scalar;
  requires Shape<typename L::input_shape>;
  requires Shape<typename L::output_shape>;
};
template <class L>
concept has_param_list = requires {
  { L::parameter_count } -> std::convertible_to<std::size_t>;
  { L::params.size() } -> std::convertible_to<std::size_t>;
  { L::params[0].size } -> std::convertible_to<std::size_t>;
}
|| requires {
  { L::parameter_count } -> std::convertible_to<std::size_t>;
  requires L::params.size() == 0;
};
template <class L>
concept has_param_access = requires(L& l, const L& cl, std::size_t j) {
  { l.param(j) } -> std::same_as<typename L::scalar*>;
  { cl.param(j) } -> std::same_as<const typename L::scalar*>;
};
template <class L>
concept has_init = requires(L& l, splitmix64& rng) {
  l.init(rng);
};
template <class L>
concept has_name = requires {
  { L::name() } -> std::convertible_to<std::string>;
};
template <class L>
concept has_workspace = requires {
  { L::training_workspace(std::size_t{1}) } -> std::convertible_to<std::size_t>;
  { L::inference_workspace(std::size_t{1}) } -> std::convertible_to<std::size_t>;
};
template <class L>
concept has_forward = requires(const L& l, const typename L::scalar* x, typename L::scalar* y,
                               std::size_t rows) {
  l.forward(x, y, rows);
}
|| (has_workspace<L> && requires(const L& l, const typename L::scalar* x, typename L::scalar* y,
                                 std::size_t rows) { l.forward(x, y, rows, y); });
template <class L>
concept has_backward = requires(const L& l, const typename L::scalar* x, typename L::scalar* dx,
                                typename L::scalar* const* g, std::size_t rows) {
  l.template backward<true, 0U>(x, x, x, dx, g, rows);
}
|| (has_workspace<L> && requires(const L& l, const typename L::scalar* x, typename L::scalar* dx,
                                 typename L::scalar* const* g, std::size_t rows) {
  l.template backward<true, 0U, train_mode{}>(x, x, x, dx, g, rows, dx);
});
}  // namespace contract

/// The complete contract of a bound layer (EXAMPLE_LAYER above).
template <class L>
concept BoundLayer = contract::has_types<L> && contract::has_param_list<L> &&
    contract::has_param_access<L> && contract::has_init<L> && contract::has_name<L> &&
    contract::has_forward<L> && contract::has_backward<L>;

// ---- the optional parts, by name ----------------------------------------------------------------
template <class L>
concept TrainingForward = requires(L& l, const typename L::scalar* x, typename L::scalar* y,
                                   std::size_t rows) {
  l.forward_train(x, y, rows);
}
|| (contract::has_workspace<L> &&
    requires(L & l, const typename L::scalar* x, typename L::scalar* y, std::size_t rows) {
      l.template forward_train<train_mode{}>(x, y, rows, y);
    });
template <class L>
concept UsesWorkspace = contract::has_workspace<L>;
template <class L>
concept HasBuffers = requires(L& l, std::size_t j) {
  { L::buffers.size() } -> std::convertible_to<std::size_t>;
  { l.buffer(j) } -> std::same_as<typename L::scalar*>;
};
template <class L>
concept HasRunningStatistics = requires {
  requires L::has_statistics;
};
template <class L, class Next>
concept Fusable = detail::fuses_v<L, Next>;
template <class L>
concept HasRngState = requires(L& l) {
  l.visit_rng_state([](std::uint64_t&) {});
};

namespace diagnostics {
// What a bound layer lacks, as printed by error::layer_lacks_member.
struct needs_scalar_input_shape_and_output_shape_types {};
struct needs_parameter_count_and_params_array_of_param_desc {};
// NOLINTNEXTLINE(readability-identifier-naming): the name is the message, T and all
struct needs_param_j_returning_T_pointer_const_and_non_const {};
struct needs_init_splitmix64_ref {};
struct needs_static_name_returning_std_string {};
struct needs_forward_x_y_rows_const {};
// NOLINTNEXTLINE(readability-identifier-naming)
struct needs_template_backward_InputGrad_GradMask_x_y_dy_dx_grads_rows_const {};
struct is_a_complete_layer {};
}  // namespace diagnostics

namespace detail {
/// The first member L lacks, as a diagnostics type (is_a_complete_layer when none).
template <class L> constexpr auto first_missing_member() {
  using namespace diagnostics;
  if constexpr (!contract::has_types<L>)
    return needs_scalar_input_shape_and_output_shape_types{};
  else if constexpr (!contract::has_param_list<L>)
    return needs_parameter_count_and_params_array_of_param_desc{};
  else if constexpr (!contract::has_param_access<L>)
    return needs_param_j_returning_T_pointer_const_and_non_const{};
  else if constexpr (!contract::has_init<L>)
    return needs_init_splitmix64_ref{};
  else if constexpr (!contract::has_name<L>)
    return needs_static_name_returning_std_string{};
  else if constexpr (!contract::has_forward<L>)
    return needs_forward_x_y_rows_const{};
  else if constexpr (!contract::has_backward<L>)
    return needs_template_backward_InputGrad_GradMask_x_y_dy_dx_grads_rows_const{};
  else
    return is_a_complete_layer{};
}
/// true for a complete layer; otherwise instantiates the error that names index, layer and member.
template <std::size_t I, class L> constexpr bool check_bound_layer() {
  if constexpr (BoundLayer<L>) {
    return true;
  } else {
    [[maybe_unused]] error::layer_lacks_member<layer_index<I>, L,
                                               decltype(first_missing_member<L>())>
        diagnostic{};
    return false;
  }
}
}  // namespace detail

GRAFT_END_NAMESPACE
