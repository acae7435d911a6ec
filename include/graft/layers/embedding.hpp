// Token inputs (issue 16): embedding<V, D> turns a sequence of L token ids into an L x D matrix,
// and positional_embedding adds a learned vector per position.
//
// Sequences. A sample of L token ids travels as L values of the scalar type in an input<L> (ids are
// exact below 2^24 in float); the embedding makes it an L x D matrix, row-major and position-major
// (row l is the vector of the token at position l, as in transformers). Pad is id 0 by
// convention; here it is a token like any other (its row is learned; masks come with attention).
//
// embedding<V, D, Init>   PyTorch's nn.Embedding(V, D): weight [V, D], row v the vector of token v
//                         (the same layout as nn.Embedding.weight), initialised N(0, 1) as there.
//   forward   y[l] = weight[x[l]]: a gather.
//   backward  no input gradient (ids are not differentiable: with InputGrad, dx is all zeros); the
//             weight gradient is the scatter-add of the rows of dy into the rows of the ids
//             present, in ascending order of batch row and position (repeated ids sum); the rows of
//             ids absent from the batch are zero (the gradient is overwritten, as the contract
//             says): only the touched rows are nonzero. (As PyTorch's dense gradient, sparse=False:
//             an optimizer with momentum or weight decay still moves the other rows.)
//   invalid ids: a value that is not an integer in [0, V) (negative, V or more, fractional, NaN)
//             reads nothing out of bounds: its output row is quiet NaN and backward adds nothing
//             for it. Not clamping (a wrong row, silently) nor zeros (a silent "no token"): forward
//             is noexcept and cannot refuse, and a NaN row makes the mistake loud downstream, the
//             way graft treats a NaN feature (the activations propagate NaN, as PyTorch does): the
//             trainer stops at the first step with a non-finite loss, evaluate reports a NaN loss.
//             Check data up front with first_invalid_token(ids, n, V) (the index of the first bad
//             id, n if none), e.g. on a dataset's features before training.
//
// positional_embedding    y = x + P on an L x D sequence, P [L, D] a parameter (role::weight)
// shared
//                         by all samples: learned absolute positions as in BERT, initialised
//                         N(0, 0.02^2) as BERT's initializer_range = 0.02 (Hugging Face's
//                         BertPreTrainedModel uses normal_(0, 0.02); the original TensorFlow code
//                         a normal truncated at 2 standard deviations). positional_embedding_init<
//                         Init> takes another initialiser.
//   backward  dx = dy; dP = the sum of dy over the batch rows, in ascending order.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "graft/diagnostics.hpp"
#include "graft/kernels/elementwise.hpp"
#include "graft/kernels/gemm.hpp"
#include "graft/layers/layer.hpp"
#include "graft/random/random.hpp"
#include "graft/tensor/tensor.hpp"

GRAFT_BEGIN_NAMESPACE

namespace init {
/// N(0, s^2) weights with s = Num / Den, zero biases: normal<> is nn.Embedding's default
/// (N(0, 1)), normal<2, 100> BERT's initializer_range (N(0, 0.02^2)). Drawn by splitmix64::normal
/// (graft's Box-Muller): a seed gives the same values everywhere.
template <std::size_t Num = 1, std::size_t Den = 1> struct normal {
  static_assert(Den > 0, "graft: init::normal<Num, Den> needs Den > 0");
  static constexpr const char* name = "normal";
  static constexpr double stddev = static_cast<double>(Num) / static_cast<double>(Den);
  template <class T>
  static void weight(T* w, std::size_t n, std::size_t, std::size_t, splitmix64& rng) {
    for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<T>(stddev * rng.normal());
  }
  template <class T> static void bias(T* v, std::size_t n, std::size_t, std::size_t, splitmix64&) {
    for (std::size_t i = 0; i < n; ++i) v[i] = T(0);
  }
};
}  // namespace init

namespace detail {
/// Whether v is a token id of a vocabulary of `vocabulary` (an integer in [0, vocabulary)); its
/// index in `id` when it is. NaN fails the first comparison, so no invalid conversion happens.
template <class T>
constexpr bool token_index(T v, std::size_t vocabulary, std::size_t& id) noexcept {
  static_assert(std::is_floating_point_v<T>);
  if (!(v >= T(0) && v < static_cast<T>(vocabulary))) return false;
  const auto i = static_cast<std::size_t>(v);
  if (static_cast<T>(i) != v || i >= vocabulary) return false;
  id = i;
  return true;
}
}  // namespace detail

/// The index of the first of ids[0..n) that is not a token id of a vocabulary of `vocabulary`
/// (an integer in [0, vocabulary): negative, too large, fractional and NaN values are not); n when
/// all are. For checking data before an embedding sees it (which writes NaN rows for such ids).
template <class T> constexpr std::size_t first_invalid_token(const T* ids, std::size_t n,
                                                             std::size_t vocabulary) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t id = 0;
    if (!detail::token_index(ids[i], vocabulary, id)) return i;
  }
  return n;
}

namespace detail {
/// The ids in use of an embedding's vocabulary buffer (0: unassigned): 2 + the characters, which
/// are the entries from id 2 on that are code points (>= 0), up to the first that is not.
template <class T> std::size_t vocabulary_size(const T* symbols, std::size_t v) noexcept {
  if (v < 2 || symbols[0] != T(-2) || symbols[1] != T(-3)) return 0;
  std::size_t n = 2;
  while (n < v && symbols[n] >= T(0)) ++n;
  return n;
}
/// FNV-1a 64 of the characters (ids 2 .. n-1), each as 4 bytes little-endian: the same value as
/// graft::text::char_vocabulary::fingerprint() of that vocabulary.
template <class T> std::uint64_t vocabulary_fnv1a(const T* symbols, std::size_t n) noexcept {
  std::uint64_t h = 14695981039346656037ULL;
  for (std::size_t i = 2; i < n; ++i) {
    const auto c = static_cast<std::uint32_t>(symbols[i]);
    for (int b = 0; b < 4; ++b) {
      h ^= (c >> (8 * b)) & 0xFFU;
      h *= 1099511628211ULL;
    }
  }
  return h;
}

/// A layer that holds a vocabulary (embedding_layer's symbols buffer).
template <class L>
concept has_vocabulary = requires(const L& l) {
  L::vocabulary;
  l.symbols;
  l.state_description();
};
/// Calls f(layer) on net's first layer that holds a vocabulary (the model's token embedding);
/// returns whether there was one. (A model or a const model: f gets the layer with net's
/// constness.)
template <class M, class F> bool with_first_vocabulary_layer(M& net, F&& f) {
  bool found = false;
  net.for_each_layer([&](auto, auto& l) {
    if constexpr (has_vocabulary<std::remove_cvref_t<decltype(l)>>) {
      if (found) return;
      found = true;
      f(l);
    }
  });
  return found;
}
}  // namespace detail

/// Bound embedding of L ids from a vocabulary of V into D features each: input shape<L>, output
/// shape<L, D>.
template <class T, std::size_t L, std::size_t V, std::size_t D, class Init> class embedding_layer {
  static_assert(!std::is_same_v<T, float> || V <= (std::size_t{1} << 24),
                "graft: embedding<V, D> in float: token ids are exact below 2^24 only");

 public:
  using scalar = T;
  using input_shape = shape<L>;
  using output_shape = shape<L, D>;
  static constexpr std::size_t vocabulary = V;
  static constexpr sequence_use sequence = sequence_use::positionwise;
  static constexpr std::size_t parameter_count = V * D;
  static constexpr std::array<param_desc, 1> params{{{V * D, role::weight, param_tag::embedding}}};

  tensor<T, V, D> weight;  ///< weight(v, d): feature d of token v (nn.Embedding.weight's layout)
  /// The vocabulary the ids mean (a buffer: saved, loaded and exported with the weights, never
  /// trained): symbols[id] is the character (code point) of the id, or one of the markers below.
  /// Assigned by graft::text::char_vocabulary::assign_to(net); all unassigned after init().
  tensor<T, V> symbols;
  static constexpr std::array<std::size_t, 1> buffers{V};
  static constexpr T unassigned = T(-1), pad_symbol = T(-2), unknown_symbol = T(-3),
                     unused_symbol = T(-4);
  T* buffer(std::size_t) noexcept { return symbols.data(); }
  const T* buffer(std::size_t) const noexcept { return symbols.data(); }

  /// "" while the vocabulary is unassigned, else "vocabulary N fnv1a H" (N ids in use, H the
  /// FNV-1a 64 of their characters): a line of the model's weight-file fingerprint, so that a
  /// model keeps the vocabulary it was trained with (io/weights.hpp).
  std::string state_description() const {
    const std::size_t n = detail::vocabulary_size(symbols.data(), V);
    if (n == 0) return {};
    static const char* const hex = "0123456789abcdef";
    const std::uint64_t h = detail::vocabulary_fnv1a(symbols.data(), n);
    std::string hs(16, '0');
    for (std::size_t i = 0; i < 16; ++i) hs[15 - i] = hex[(h >> (4 * i)) & 15U];
    std::string s = "vocabulary ";  // piece by piece: g++ 12's false -Wrestrict (armv7 -O3)
    s += std::to_string(n);
    s += " fnv1a ";
    s += hs;
    return s;
  }

  static std::string name() {
    std::string s = "embedding<";  // piece by piece: g++ 12's false -Wrestrict (armv7 -O3)
    s += std::to_string(V);
    s += ',';
    s += std::to_string(D);
    s += '>';
    return s;
  }
  T* param(std::size_t) noexcept { return weight.data(); }
  const T* param(std::size_t) const noexcept { return weight.data(); }

  /// fan_in D and fan_out V, as PyTorch counts them for a [V, D] weight.
  void init(splitmix64& rng) {
    Init::weight(weight.data(), V * D, D, V, rng);
    symbols.fill(unassigned);
  }

  /// y[r, l, :] = weight[x[r, l], :]; a quiet NaN row for an invalid id.
  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    const T* p[1] = {weight.data()};
    forward_from(p, nullptr, x, y, rows, nullptr);
  }
  /// The same from a constant weight p[0] read in place (a constant_model).
  static void forward_from(const T* const* p, const T* const* /*buffers*/, const T* x, T* y,
                           std::size_t rows, T* /*ws*/) noexcept {
    for (std::size_t i = 0; i < rows * L; ++i) {
      std::size_t id = 0;
      if (detail::token_index(x[i], V, id))
        kernels::copy(D, p[0] + id * D, y + i * D);
      else
        kernels::fill(D, std::numeric_limits<T>::quiet_NaN(), y + i * D);
    }
  }

  /// InputGrad: dx = 0. GradMask bit 0: the weight gradient, zero but for the rows of the ids in
  /// the batch, each the sum of dy over its occurrences (ascending batch row, then position).
  template <bool InputGrad, unsigned GradMask> void backward(const T* x, const T* y, const T* dy,
                                                             T* dx, T* const* grads,
                                                             std::size_t rows) const noexcept {
    backward_from<InputGrad, GradMask>(nullptr, nullptr, x, y, dy, dx, grads, rows, nullptr);
  }
  /// The same on a device (train/device.hpp); the weight itself is not read.
  template <bool InputGrad, unsigned GradMask>
  static void backward_from(const T* const* /*p*/, const T* const* /*buffers*/, const T* x,
                            const T* /*y*/, const T* dy, T* dx, T* const* grads, std::size_t rows,
                            T* /*ws*/) noexcept {
    if constexpr (InputGrad) kernels::fill(rows * L, T(0), dx);
    if constexpr ((GradMask & 1U) != 0) {
      T* g = grads[0];
      kernels::fill(V * D, T(0), g);
      for (std::size_t i = 0; i < rows * L; ++i) {
        std::size_t id = 0;
        if (!detail::token_index(x[i], V, id)) continue;
        // a plain loop (the same sums as kernels::add): g++ 12 at -O2, inlining kernels::add here
        // with D = 64 into a trainer, warns (-Waggressive-loop-optimizations) about its scalar
        // tail, which never runs
        const T* src = dy + i * D;
        T* dst = g + id * D;
        for (std::size_t j = 0; j < D; ++j) dst[j] += src[j];
      }
    }
  }
};

/// Token embedding: V token ids (a vocabulary) to vectors of D; see the file comment. Takes a flat
/// input of L ids (input<L>) and gives shape<L, D>.
template <std::size_t V, std::size_t D, class Init = init::normal<>> struct embedding {
  static_assert(V > 0 && D > 0, "graft: embedding<V, D> needs V > 0 and D > 0");
  using expects =
      diagnostics::expects_a_flat_input_of_token_ids_such_as_input_of_the_sequence_length;
  template <class In> static constexpr bool accepts = FlatShape<In>;
  template <class T, class In> using bind = embedding_layer<T, In::size, V, D, Init>;
};

/// Bound positional embedding over an L x D sequence: y = x + P.
template <class T, std::size_t L, std::size_t D, class Init> class positional_embedding_layer {
 public:
  using scalar = T;
  using input_shape = shape<L, D>;
  using output_shape = shape<L, D>;
  static constexpr std::size_t parameter_count = L * D;
  static constexpr std::array<param_desc, 1> params{{{L * D, role::weight, param_tag::embedding}}};

  tensor<T, L, D> weight;  ///< weight(l, d): what position l adds to feature d

  static std::string name() { return "positional_embedding"; }
  static constexpr sequence_use sequence = sequence_use::positionwise;
  T* param(std::size_t) noexcept { return weight.data(); }
  const T* param(std::size_t) const noexcept { return weight.data(); }

  /// fan_in D and fan_out L, as PyTorch counts them for an [L, D] weight.
  void init(splitmix64& rng) { Init::weight(weight.data(), L * D, D, L, rng); }

  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    const T* p[1] = {weight.data()};
    forward_from(p, nullptr, x, y, rows, nullptr);
  }
  /// The same from a constant weight p[0] read in place (a constant_model).
  static void forward_from(const T* const* p, const T* const* /*buffers*/, const T* x, T* y,
                           std::size_t rows, T* /*ws*/) noexcept {
    constexpr std::size_t n = L * D;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < n; ++i) y[r * n + i] = x[r * n + i] + p[0][i];
  }

  template <bool InputGrad, unsigned GradMask> void backward(const T* x, const T* y, const T* dy,
                                                             T* dx, T* const* grads,
                                                             std::size_t rows) const noexcept {
    backward_from<InputGrad, GradMask>(nullptr, nullptr, x, y, dy, dx, grads, rows, nullptr);
  }
  /// dx = dy; dP = sum over rows of dy (the weight itself is not read).
  template <bool InputGrad, unsigned GradMask>
  static void backward_from(const T* const* /*p*/, const T* const* /*buffers*/, const T* /*x*/,
                            const T* /*y*/, const T* dy, T* dx, T* const* grads, std::size_t rows,
                            T* /*ws*/) noexcept {
    if constexpr ((GradMask & 1U) != 0) kernels::column_sum<L * D>(rows, dy, grads[0], false);
    if constexpr (InputGrad) kernels::copy(rows * L * D, dy, dx);
  }
};

/// A learned absolute position embedding with initialiser Init; see the file comment.
template <class Init> struct positional_embedding_init {
  using expects =
      diagnostics::expects_a_sequence_of_rows_length_x_width_such_as_an_embedding_output;
  template <class In> static constexpr bool accepts = Shape<In>&& In::rank == 2;
  template <class T, class In> using bind =
      positional_embedding_layer<T, In::dims[0], In::dims[1], Init>;
};
/// A learned absolute position embedding, initialised N(0, 0.02^2) (BERT); see the file comment.
struct positional_embedding : positional_embedding_init<init::normal<2, 100>> {};

GRAFT_END_NAMESPACE
