// What every layer shares: parameter roles, the training mode, the layer-spec concept, and the
// dispatch to a layer's optional parts (the contract itself: layers/concept.hpp).
#pragma once
#include <array>
#include <concepts>
#include <cstddef>
#include <string>
#include <type_traits>

#include "graft/diagnostics.hpp"
#include "graft/random/random.hpp"
#include "graft/tensor/shape.hpp"

GRAFT_BEGIN_NAMESPACE

/// What a parameter tensor is for; freezing policies (bias-only, ...) select by role. Batch
/// norm's scale is a weight and its shift a bias (as BitFit counts them).
enum class role { weight, bias };

inline const char* role_name(role r) noexcept { return r == role::weight ? "weight" : "bias"; }

/// What kind of layer a parameter tensor belongs to (the innermost layer: a residual's tensors
/// keep the tags of its inner layers). Policies may select by it (freeze::tags, freeze::embeddings,
/// freeze::norms_and_biases_only, freeze::adapters_only). A user's layer that says nothing is
/// `other`.
enum class param_tag : unsigned char { other, embedding, norm, dense, conv, attention, adapter };

inline const char* param_tag_name(param_tag t) noexcept {
  constexpr const char* names[] = {"other", "embedding", "norm",   "dense",
                                   "conv",  "attention", "adapter"};
  return names[static_cast<unsigned>(t)];
}

/// Describes one parameter tensor of a bound layer.
struct param_desc {
  std::size_t size;
  role kind;
  param_tag tag = param_tag::other;
};

/// How a training pass runs a layer: a value every layer with a training mode reads (a template
/// argument, so that what a mode leaves out is not compiled). The trainer decides it per layer
/// from the freezing policy while compiling.
struct train_mode {
  /// Layers that keep running statistics (batch norm): normalise with the batch's statistics and
  /// update the running averages (true), or use the running averages as they are (false: the
  /// policy freezes statistics, e.g. freeze::statistics). Other layers ignore it.
  bool batch_statistics = true;
};

/// How a layer treats the positions of a sequence [L, C] (token models, issue 16). A layer
/// declares it as `static constexpr sequence_use sequence = ...;`; absent: none.
enum class sequence_use {
  none,          ///< unknown: the lengths of a token input end here
  positionwise,  ///< output row l depends on input row l only (embedding, layer_norm, gelu, ...)
  masked         ///< reads a sequence_mask: uses only the valid positions of its input, writes
                 ///< exact 0 at invalid output positions, gives 0 gradient at invalid inputs
};

/// The valid positions of each sample of a batch: sample r's first lengths[r] positions are
/// tokens, the rest padding. Null lengths: every position is valid (a plain input<...>).
struct sequence_mask {
  const std::size_t* lengths = nullptr;
  /// Sample r's valid length in a sequence of L positions (a length above L counts as L).
  [[nodiscard]] constexpr std::size_t length(std::size_t r, std::size_t L) const noexcept {
    return lengths == nullptr || lengths[r] > L ? L : lengths[r];
  }
};

/// Position of a layer in a model: 0 is the first layer after input<...>; the head comes last.
template <std::size_t I> struct layer_index { static constexpr std::size_t value = I; };

/// The parameter interface of a layer that has none (activations, pooling, flatten, dropout):
/// derive from it instead of spelling out empty parameter lists.
template <class T> struct without_parameters {
  static constexpr std::size_t parameter_count = 0;
  static constexpr std::array<param_desc, 0> params{};
  T* param(std::size_t) noexcept { return nullptr; }
  const T* param(std::size_t) const noexcept { return nullptr; }
  void init(splitmix64&) noexcept {}
};

// The contract a layer fulfils (required members, optional parts and the concepts that detect
// them) is written once, in layers/concept.hpp. Below: the dispatch that calls each optional part
// when a layer has it.
namespace detail {
/// Parameter tensors a layer may have (a residual block has those of all its layers); the
/// trainer's gradient masks are bit sets of this width.
inline constexpr std::size_t max_params_per_layer = 16;

template <class L>
concept uses_workspace = requires {
  { L::training_workspace(std::size_t{1}) } -> std::convertible_to<std::size_t>;
  { L::inference_workspace(std::size_t{1}) } -> std::convertible_to<std::size_t>;
};

/// Workspace of a layer in a trainer: a frozen layer there runs its evaluation forward, so the
/// larger of the two.
template <class L> constexpr std::size_t training_workspace_of(std::size_t rows) noexcept {
  if constexpr (uses_workspace<L>) {
    const std::size_t t = L::training_workspace(rows);
    const std::size_t i = L::inference_workspace(rows);
    return t > i ? t : i;
  } else {
    return 0;
  }
}
template <class L> constexpr std::size_t inference_workspace_of(std::size_t rows) noexcept {
  if constexpr (uses_workspace<L>)
    return L::inference_workspace(rows);
  else
    return 0;
}
/// Fusion: a layer whose forward ends in an output pass over its sums (dense, conv2d) may offer
///   template <class Epi> void forward_fused(x, y, rows) const noexcept;
/// which stores Epi(forward's value), Epi being the `epilogue` of the element-wise activation
/// after it (activations.hpp). By offering it the layer promises that its backward never reads
/// its own output (the pre-activation is then never written). Models, trainers and runners fuse
/// such pairs: the activation's forward is not called, and its input is not written.
/// A layer with a workspace (conv2d's im2col matrices) offers
///   template <class Epi> void forward_fused(x, y, rows, T* ws) const noexcept;
/// instead, with the workspace of its evaluation forward.
template <class L, class Next>
constexpr bool fuses_v = requires(const L& l, const typename L::scalar* x, typename L::scalar* y,
                                  std::size_t rows) {
  typename Next::epilogue;
  requires !std::is_void_v<typename Next::epilogue>;
  requires((!uses_workspace<L> &&
            requires { l.template forward_fused<typename Next::epilogue>(x, y, rows); }) ||
           (uses_workspace<L> &&
            requires { l.template forward_fused<typename Next::epilogue>(x, y, rows, y); }));
};
/// Rows a training batch needs for batch statistics (batch norm over flat features needs two: one
/// value per channel has no variance). 1 for layers without statistics.
template <class L> constexpr std::size_t min_batch_rows_v = [] {
  if constexpr (requires { L::min_batch_rows; })
    return std::size_t{L::min_batch_rows};
  else
    return std::size_t{1};
}();
template <class L> constexpr bool has_statistics_v = [] {
  if constexpr (requires { L::has_statistics; })
    return L::has_statistics;
  else
    return false;
}();
template <class L> constexpr std::size_t buffer_count_v = [] {
  if constexpr (requires { L::buffers.size(); })
    return L::buffers.size();
  else
    return std::size_t{0};
}();
template <class L> constexpr std::size_t buffer_scalars_v = [] {
  std::size_t n = 0;
  if constexpr (requires { L::buffers.size(); })
    for (const std::size_t b : L::buffers) n += b;
  return n;
}();

/// Calls f(std::uint64_t&) for each word of a layer's random-generator state (dropout's seed and
/// draw count), in a fixed order; nothing for layers without one. Checkpoints save these words.
template <class L, class F> void visit_rng_state(L& l, F&& f) {
  if constexpr (requires { l.visit_rng_state(f); }) l.visit_rng_state(f);
}

/// The sequence_use a layer declares (none when it declares nothing).
template <class L> constexpr sequence_use sequence_of_v = [] {
  if constexpr (requires { L::sequence; })
    return sequence_use{L::sequence};
  else
    return sequence_use::none;
}();
/// A masked layer reads the sequence_mask; its workspace forms take it as a trailing argument.
template <class L> constexpr bool reads_mask_v = sequence_of_v<L> == sequence_use::masked;
/// The valid length of a masked layer's output for an input of valid length n:
/// L::output_length(n) when the layer changes lengths (conv1d), else n.
template <class L> constexpr std::size_t output_length_of(std::size_t n) noexcept {
  if constexpr (requires { L::output_length(n); })
    return L::output_length(n);
  else
    return n;
}
template <class L> inline constexpr bool masked_layer_has_workspace_v =
    !reads_mask_v<L> || uses_workspace<L>;

/// Evaluation forward of any layer.
template <class L, class T> void forward_eval(const L& l, const T* x, T* y, std::size_t rows, T* ws,
                                              [[maybe_unused]] sequence_mask m = {}) noexcept {
  static_assert(masked_layer_has_workspace_v<L>,
                "graft: a masked layer (sequence_use::masked) has the workspace forms");
  if constexpr (reads_mask_v<L>)
    l.forward(x, y, rows, ws, m);
  else if constexpr (uses_workspace<L>)
    l.forward(x, y, rows, ws);
  else
    l.forward(x, y, rows);
}
/// Forward of layer l followed by the activation Next, in one pass (requires fuses_v<L, Next>);
/// ws: the layer's evaluation workspace (inference_workspace_of<L>(rows) elements).
template <class Next, class L, class T>
void forward_fused(const L& l, const T* x, T* y, std::size_t rows, T* ws,
                   [[maybe_unused]] sequence_mask m = {}) noexcept {
  if constexpr (reads_mask_v<L>)
    l.template forward_fused<typename Next::epilogue>(x, y, rows, ws, m);
  else if constexpr (uses_workspace<L>)
    l.template forward_fused<typename Next::epilogue>(x, y, rows, ws);
  else
    l.template forward_fused<typename Next::epilogue>(x, y, rows);
}
/// Evaluation forward of a layer of type L from constant parameters and buffers read in place
/// (p[j]: param(j)'s values, b[j]: buffer(j)'s; a constant_model, weights compiled into the
/// program): L::forward_from for a layer with parameters or buffers, the forward of a
/// default-constructed L for one without.
template <class L, class T> void forward_eval_from(const T* const* p, const T* const* b, const T* x,
                                                   T* y, std::size_t rows, T* ws,
                                                   [[maybe_unused]] sequence_mask m = {}) noexcept {
  if constexpr (reads_mask_v<L> && (L::parameter_count != 0 || buffer_count_v<L> != 0)) {
    L::forward_from(p, b, x, y, rows, ws, m);
  } else if constexpr (requires { L::forward_from(p, b, x, y, rows, ws); }) {
    L::forward_from(p, b, x, y, rows, ws);
  } else {
    static_assert(L::parameter_count == 0 && buffer_count_v<L> == 0,
                  "graft: a layer with parameters runs from constant weights only if it has "
                  "static forward_from(params, buffers, x, y, rows, ws) (layers/concept.hpp)");
    const L l{};
    forward_eval(l, x, y, rows, ws, m);
  }
}
/// forward_fused from constant parameters (requires fuses_v<L, Next>).
template <class Next, class L, class T>
void forward_fused_from(const T* const* p, const T* const* b, const T* x, T* y, std::size_t rows,
                        T* ws, [[maybe_unused]] sequence_mask m = {}) noexcept {
  static_assert(
      requires { L::template forward_fused_from<typename Next::epilogue>(p, b, x, y, rows, ws); },
      "graft: a layer that fuses its activation runs from constant weights only if it "
      "has static forward_fused_from<Epi>(params, buffers, x, y, rows, ws)");
  if constexpr (reads_mask_v<L>)
    L::template forward_fused_from<typename Next::epilogue>(p, b, x, y, rows, ws, m);
  else
    L::template forward_fused_from<typename Next::epilogue>(p, b, x, y, rows, ws);
}
/// Training forward of any layer (the evaluation forward for layers without a training mode).
template <train_mode Mode, class L, class T>
void forward_training(L& l, const T* x, T* y, std::size_t rows, T* ws,
                      [[maybe_unused]] sequence_mask m = {}) noexcept {
  static_assert(masked_layer_has_workspace_v<L>,
                "graft: a masked layer (sequence_use::masked) has the workspace forms");
  if constexpr (reads_mask_v<L>)
    l.template forward_train<Mode>(x, y, rows, ws, m);
  else if constexpr (uses_workspace<L>)
    l.template forward_train<Mode>(x, y, rows, ws);
  else if constexpr (requires { l.forward_train(x, y, rows); })
    l.forward_train(x, y, rows);
  else
    l.forward(x, y, rows);
}
/// Backward of any layer, after forward_training<Mode> (or, for a layer that trains with frozen
/// statistics, after forward_eval).
template <bool InputGrad, unsigned GradMask, train_mode Mode, class L, class T>
void backward_of(const L& l, const T* x, const T* y, const T* dy, T* dx, T* const* grads,
                 std::size_t rows, T* ws, [[maybe_unused]] sequence_mask m = {}) noexcept {
  if constexpr (reads_mask_v<L>)
    l.template backward<InputGrad, GradMask, Mode>(x, y, dy, dx, grads, rows, ws, m);
  else if constexpr (uses_workspace<L>)
    l.template backward<InputGrad, GradMask, Mode>(x, y, dy, dx, grads, rows, ws);
  else
    l.template backward<InputGrad, GradMask>(x, y, dy, dx, grads, rows);
}
/// Backward of a layer of type L from parameters read in place (train/device.hpp): L's static
/// backward_from for a layer with parameters, the backward of a default-constructed L for one
/// without. Layers whose training forward differs from evaluation (batch statistics, dropout)
/// are not supported there.
template <bool InputGrad, unsigned GradMask, train_mode Mode, class L, class T>
void backward_of_from(const T* const* p, const T* const* b, const T* x, const T* y, const T* dy,
                      T* dx, T* const* grads, std::size_t rows, T* ws,
                      [[maybe_unused]] sequence_mask m = {}) noexcept {
  if constexpr (L::parameter_count == 0 && buffer_count_v<L> == 0) {
    const L l{};
    backward_of<InputGrad, GradMask, Mode>(l, x, y, dy, dx, grads, rows, ws, m);
  } else if constexpr (reads_mask_v<L>) {
    L::template backward_from<InputGrad, GradMask, Mode>(p, b, x, y, dy, dx, grads, rows, ws, m);
  } else if constexpr (uses_workspace<L>) {
    L::template backward_from<InputGrad, GradMask, Mode>(p, b, x, y, dy, dx, grads, rows, ws);
  } else {
    L::template backward_from<InputGrad, GradMask>(p, b, x, y, dy, dx, grads, rows, ws);
  }
}
}  // namespace detail

/// A layer spec such as dense<64>: shape-agnostic until a stack binds it (layers/concept.hpp).
template <class S>
concept LayerSpec = requires {
  typename S::expects;
};

GRAFT_END_NAMESPACE
