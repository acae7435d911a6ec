// residual<Specs...>: y = block(x) + shortcut(x), where block is the stack of Specs bound to the
// input shape, and shortcut is the identity when the block keeps the shape, or a projection.
//
// * residual<conv2d<16,3,pad<1>,no_bias>, batch_norm, relu, conv2d<16,3,pad<1>,no_bias>,
//   batch_norm> is a ResNet basic block (put relu after it in the stack, as ResNet does).
// * When the block changes the shape (more channels, a stride), a 1x1 projection is inferred:
//   conv2d<F, 1, stride<S>, no_bias> followed by batch_norm when the block has a batch_norm
//   (ResNet's option B), conv2d<F, 1, stride<S>> otherwise.
// * residual<projection<Specs...>, Block...> declares the projection.
//
// The block is one layer of the model: its parameters are those of its layers (block first, then
// the projection) and freezing policies see it as one parametric layer. Inner activations live in
// the workspace its caller provides (see layer.hpp), so a step allocates nothing.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <type_traits>

#include "graft/diagnostics.hpp"
#include "graft/layers/batch_norm.hpp"
#include "graft/layers/conv2d.hpp"
#include "graft/layers/layer.hpp"
#include "graft/layers/stack.hpp"
#include "graft/layers/workspace.hpp"

GRAFT_BEGIN_NAMESPACE

/// The shortcut of a residual block, declared: residual<projection<Specs...>, Block...>.
template <class... Specs> struct projection {};

namespace detail {
template <class S> struct input_of;
template <std::size_t... D> struct input_of<shape<D...>> { using type = input<D...>; };

template <class In, class... Specs> using inner_stack =
    stack<typename input_of<In>::type, Specs...>;

/// Splits residual<...>'s arguments into the declared projection (or void) and the block.
template <class... Specs> struct residual_args {
  using proj = void;
  using block = meta::type_list<Specs...>;
};
template <class... P, class... Specs> struct residual_args<projection<P...>, Specs...> {
  using proj = meta::type_list<P...>;
  using block = meta::type_list<Specs...>;
};

template <class In, class List> struct chain_of;
template <class In, class... Specs> struct chain_of<In, meta::type_list<Specs...>> {
  using type = inner_stack<In, Specs...>;
};

/// The stride S with (in - 1) / S + 1 == out for both spatial extents (0 when there is none).
template <class In, class Out> constexpr std::size_t projection_stride() {
  if constexpr (In::rank == 3 && Out::rank == 3) {
    for (std::size_t s = 1; s <= In::dims[1] && s <= In::dims[2]; ++s)
      if ((In::dims[1] - 1) / s + 1 == Out::dims[1] && (In::dims[2] - 1) / s + 1 == Out::dims[2])
        return s;
  }
  return 0;
}

/// The shortcut's specs: none (identity), the declared ones, or the inferred projection.
template <class In, class Args, class BlockOut, bool HasBatchNorm> struct shortcut_of {
  using declared = typename Args::proj;
  static constexpr std::size_t S = projection_stride<In, BlockOut>();
  static constexpr bool identity = std::is_void_v<declared> && std::is_same_v<In, BlockOut>;
  static constexpr bool diagnose() {
    if constexpr (std::is_void_v<declared> && !identity && S == 0)
      return sizeof(error::residual_shapes_cannot_be_added<In, BlockOut>) == 0;
    return true;
  }
  static_assert(diagnose());
  using inferred =
      std::conditional_t<HasBatchNorm,
                         meta::type_list<conv2d<(BlockOut::rank == 3 ? BlockOut::dims[0] : 1), 1,
                                                stride<(S > 0 ? S : 1)>, no_bias>,
                                         batch_norm>,
                         meta::type_list<conv2d<(BlockOut::rank == 3 ? BlockOut::dims[0] : 1), 1,
                                                stride<(S > 0 ? S : 1)>>>>;
  /// type_list of the shortcut's specs; empty for the identity
  using specs = std::conditional_t<
      identity, meta::type_list<>,
      std::conditional_t<std::is_void_v<declared>,
                         std::conditional_t<(S > 0), inferred, meta::type_list<>>, declared>>;
};

template <class T, class In, class List> struct bound_list;
template <class T, class In, class... Specs> struct bound_list<T, In, meta::type_list<Specs...>> {
  using chain = inner_stack<In, Specs...>;
  using layers = typename chain::template layers<T>;
  using output_shape = typename chain::output_shape;
};
template <class T, class In> struct bound_list<T, In, meta::type_list<>> {
  using layers = layer_pack<>;
  using output_shape = In;
};
}  // namespace detail

/// Bound residual block over In; BlockSpecs and ShortcutSpecs are type_lists of specs.
template <class T, class In, class BlockSpecs, class ShortcutSpecs> class residual_layer {
  using block_t = detail::bound_list<T, In, BlockSpecs>;
  using short_t = detail::bound_list<T, In, ShortcutSpecs>;
  using block_pack = typename block_t::layers;
  using short_pack = typename short_t::layers;
  static constexpr std::size_t NB = block_pack::size;
  static constexpr std::size_t NS = short_pack::size;
  static constexpr std::size_t N = NB + NS;
  static_assert(NB > 0, "graft: residual<...> needs at least one layer in its block");

 public:
  using scalar = T;
  using input_shape = In;
  using output_shape = typename block_t::output_shape;
  static constexpr bool identity_shortcut = NS == 0;
  /// Inner layers: the block's, then the shortcut's (inner<K>()).
  static constexpr std::size_t inner_count = N;

 private:
  static constexpr bool diagnose_projection() {
    using got = typename short_t::output_shape;
    if constexpr (!identity_shortcut && !std::is_same_v<got, output_shape>)
      return sizeof(error::residual_projection_mismatch<got, output_shape>) == 0;
    return true;
  }
  static_assert(diagnose_projection());
  template <std::size_t K, bool InBlock = (K < NB)> struct select {
    using type = typename block_pack::template type<K>;
  };
  template <std::size_t K> struct select<K, false> {
    using type = typename short_pack::template type<K - NB>;
  };

 public:
  /// Inner layer k: the block's layers first, then the shortcut's.
  template <std::size_t K> using inner_type = typename select<K>::type;
  template <std::size_t K> auto& inner() noexcept {
    if constexpr (K < NB)
      return block_.template get<K>();
    else
      return shortcut_.template get<K - NB>();
  }
  template <std::size_t K> const auto& inner() const noexcept {
    if constexpr (K < NB)
      return block_.template get<K>();
    else
      return shortcut_.template get<K - NB>();
  }

 private:
  struct tables_t {
    std::array<std::size_t, N + 1> param_offset{};
    std::array<std::size_t, N + 1> buffer_offset{};
    std::array<std::size_t, N> in_size{};
    std::array<std::size_t, N> out_size{};
    std::size_t widest = In::size;
    std::size_t parameter_count = 0;
    std::size_t buffer_scalars = 0;
    bool statistics = false;
    std::size_t min_rows = 1;
  };
  static constexpr tables_t tables = [] {
    tables_t t{};
    meta::static_for<N>([&](auto k) {
      using L = inner_type<k>;
      t.param_offset[k + 1] = t.param_offset[k] + L::params.size();
      t.buffer_offset[k + 1] = t.buffer_offset[k] + detail::buffer_count_v<L>;
      t.in_size[k] = L::input_shape::size;
      t.out_size[k] = L::output_shape::size;
      t.widest = t.widest > L::output_shape::size ? t.widest : L::output_shape::size;
      t.parameter_count += L::parameter_count;
      t.buffer_scalars += detail::buffer_scalars_v<L>;
      t.statistics = t.statistics || detail::has_statistics_v<L>;
      t.min_rows = std::max(t.min_rows, detail::min_batch_rows_v<L>);
    });
    return t;
  }();

 public:
  static constexpr std::size_t parameter_count = tables.parameter_count;
  static constexpr bool has_statistics = tables.statistics;
  static constexpr std::size_t min_batch_rows = tables.min_rows;
  static constexpr auto params = [] {
    std::array<param_desc, tables.param_offset[N]> a{};
    meta::static_for<N>([&](auto k) {
      using L = inner_type<k>;
      for (std::size_t j = 0; j < L::params.size(); ++j)
        a[tables.param_offset[k] + j] = L::params[j];
    });
    return a;
  }();
  static constexpr auto buffers = [] {
    std::array<std::size_t, tables.buffer_offset[N]> a{};
    meta::static_for<N>([&](auto k) {
      using L = inner_type<k>;
      if constexpr (detail::buffer_count_v < L >> 0)
        for (std::size_t j = 0; j < L::buffers.size(); ++j)
          a[tables.buffer_offset[k] + j] = L::buffers[j];
    });
    return a;
  }();

  /// Positions (token models, layers/layer.hpp): positionwise when every inner layer is, masked
  /// when some inner layer is masked and the others positionwise (the mask is passed to each
  /// inner layer: a residual keeps the sequence length, so the same lengths hold for all), none
  /// otherwise. Padded rows of y are x's plus the block's: position-wise, as allowed.
  static constexpr sequence_use sequence = [] {
    bool all_pos = true, any_masked = false, other = false;
    meta::static_for<N>([&](auto k) {
      constexpr sequence_use u = detail::sequence_of_v<inner_type<k>>;
      all_pos = all_pos && u == sequence_use::positionwise;
      any_masked = any_masked || u == sequence_use::masked;
      other = other || u == sequence_use::none;
    });
    return all_pos                  ? sequence_use::positionwise
           : (any_masked && !other) ? sequence_use::masked
                                    : sequence_use::none;
  }();
  static_assert(
      [] {
        bool ok = true;
        meta::static_for<N>([&](auto k) {
          using I = inner_type<k>;
          if constexpr (requires { I::output_length(std::size_t{1}); })
            for (std::size_t n = 0; n <= I::input_shape::dims[0]; ++n)
              ok = ok && I::output_length(n) == n;
        });
        return ok;
      }(),
      "graft: a residual block keeps the sequence length: put a layer that changes it (conv1d "
      "with a stride) outside the block");

  static std::string name() {
    std::string s = "residual<";
    meta::static_for<N>([&](auto k) {
      if (k == NB)
        s += " | shortcut ";
      else if (k > 0)
        s += ",";
      s += inner_type<k>::name();
    });
    return s + ">";
  }

  T* param(std::size_t j) noexcept {
    T* p = nullptr;
    meta::static_for<N>([&](auto k) {
      if (j >= tables.param_offset[k] && j < tables.param_offset[k + 1])
        p = inner<k>().param(j - tables.param_offset[k]);
    });
    return p;
  }
  const T* param(std::size_t j) const noexcept {
    return const_cast<residual_layer*>(this)->param(j);
  }
  T* buffer(std::size_t j) noexcept {
    T* p = nullptr;
    meta::static_for<N>([&](auto k) {
      if constexpr (detail::buffer_count_v < inner_type < k >>> 0)
        if (j >= tables.buffer_offset[k] && j < tables.buffer_offset[k + 1])
          p = inner<k>().buffer(j - tables.buffer_offset[k]);
    });
    return p;
  }
  const T* buffer(std::size_t j) const noexcept {
    return const_cast<residual_layer*>(this)->buffer(j);
  }

  /// The generator state of inner layers that have one (dropout), for checkpoints.
  template <class F> void visit_rng_state(F&& f) {
    meta::static_for<N>([&](auto k) { detail::visit_rng_state(inner<k>(), f); });
  }

  /// Each inner layer draws from its own stream of one draw of rng.
  void init(splitmix64& rng) {
    const seed base{rng.next()};
    meta::static_for<N>([&](auto k) {
      auto r = splitmix64::stream(base, k);
      inner<k>().init(r);
    });
  }

  // ---- workspace ------------------------------------------------------------------------------
  /// Evaluation: two ping-pong buffers and the largest inner workspace.
  static constexpr std::size_t inference_workspace(std::size_t rows) noexcept {
    std::size_t inner_ws = 0;
    meta::static_for<N>([&](auto k) {
      const std::size_t w = detail::inference_workspace_of<inner_type<k>>(rows);
      inner_ws = inner_ws > w ? inner_ws : w;
    });
    return 2 * aligned_count<T>(rows * tables.widest) + inner_ws;
  }
  /// Training: every inner activation (backward reads them), two deltas, the shortcut's input
  /// gradient, and each inner layer's own workspace.
  static constexpr std::size_t training_workspace(std::size_t rows) noexcept {
    return train_layout(rows).total;
  }

  void forward(const T* x, T* y, std::size_t rows, T* ws, sequence_mask m = {}) const noexcept {
    std::array<const T*, params.size()> p{};
    std::array<const T*, buffers.size()> b{};
    for (std::size_t j = 0; j < params.size(); ++j) p[j] = param(j);
    for (std::size_t j = 0; j < buffers.size(); ++j) b[j] = buffer(j);
    forward_from(p.data(), b.data(), x, y, rows, ws, m);
  }
  /// The same from constant parameters and buffers read in place (a constant_model: weights
  /// compiled into the program), in the order of param(j) and buffer(j).
  static void forward_from(const T* const* p, const T* const* b, const T* x, T* y, std::size_t rows,
                           T* ws, sequence_mask m = {}) noexcept {
    const std::size_t buf = aligned_count<T>(rows * tables.widest);
    T* ping[2] = {ws, ws + buf};
    T* inner_ws = ws + 2 * buf;
    meta::static_for<NB>([&](auto k) {
      const T* from = k == 0 ? x : ping[(k + 1) % 2];
      T* to = k == NB - 1 ? y : ping[k % 2];
      detail::forward_eval_from<inner_type<k>>(
          p + tables.param_offset[k], b + tables.buffer_offset[k], from, to, rows, inner_ws, m);
    });
    const T* skip = x;
    meta::static_for<NS>([&](auto j) {
      const T* from = j == 0 ? x : ping[(j + 1) % 2];
      T* to = ping[j % 2];
      detail::forward_eval_from<inner_type<NB + j>>(p + tables.param_offset[NB + j],
                                                    b + tables.buffer_offset[NB + j], from, to,
                                                    rows, inner_ws, m);
      skip = to;
    });
    add_to(y, skip, rows * output_shape::size);
  }

  template <train_mode Mode>
  void forward_train(const T* x, T* y, std::size_t rows, T* ws, sequence_mask m = {}) noexcept {
    const auto l = train_layout(rows);
    meta::static_for<N>([&](auto k) {
      const T* from = x;
      if constexpr (k != 0 && k != NB) from = ws + l.act[k - 1];
      detail::forward_training<Mode>(inner<k>(), from, ws + l.act[k], rows, ws + l.ws[k], m);
    });
    const std::size_t n = rows * output_shape::size;
    const T* a = ws + l.act[NB - 1];
    const T* skip = NS == 0 ? x : ws + l.act[N - 1];
    for (std::size_t i = 0; i < n; ++i) y[i] = a[i] + skip[i];
  }

  template <bool InputGrad, unsigned GradMask, train_mode Mode>
  void backward(const T* x, const T* /*y*/, const T* dy, T* dx, T* const* grads, std::size_t rows,
                T* ws, sequence_mask m = {}) const noexcept {
    const auto l = train_layout(rows);
    T* d[2] = {ws + l.delta[0], ws + l.delta[1]};
    // the block: layer k reads the delta of its output, writes that of its input
    backward_chain<0, NB, InputGrad, GradMask, Mode>(x, dy, dx, grads, rows, ws, l, d, m);
    if constexpr (NS > 0) {
      T* dskip = ws + l.dskip;
      backward_chain<NB, NS, InputGrad, GradMask, Mode>(x, dy, dskip, grads, rows, ws, l, d, m);
      if constexpr (InputGrad) add_to(dx, dskip, rows * In::size);
    } else if constexpr (InputGrad) {
      add_to(dx, dy, rows * In::size);
    }
  }

 private:
  struct layout_t {
    std::array<std::size_t, N> act{};
    std::array<std::size_t, N> ws{};
    std::array<std::size_t, 2> delta{};
    std::size_t dskip = 0;
    std::size_t total = 0;
  };
  static constexpr layout_t train_layout(std::size_t rows) noexcept {
    layout_t l{};
    region_cursor<T> cursor;
    auto take = [&](std::size_t n) { return cursor.take(n); };
    for (std::size_t k = 0; k < N; ++k) l.act[k] = take(rows * tables.out_size[k]);
    for (auto& dd : l.delta) dd = take(rows * tables.widest);
    l.dskip = take(NS > 0 ? rows * In::size : 0);
    meta::static_for<N>(
        [&](auto k) { l.ws[k] = take(detail::training_workspace_of<inner_type<k>>(rows)); });
    l.total = cursor.at;
    return l;
  }

  /// Local gradient mask of inner layer K, cut from the block's mask.
  template <std::size_t K, unsigned GradMask> static constexpr unsigned inner_mask =
      (GradMask >> tables.param_offset[K]) &
      ((1U << (tables.param_offset[K + 1] - tables.param_offset[K])) - 1U);

  /// Backward through inner layers [First, First + Count): the last reads dy, the first writes
  /// dfirst. Layers below the lowest one that trains run only when the input gradient is needed.
  template <std::size_t First, std::size_t Count, bool InputGrad, unsigned GradMask,
            train_mode Mode>
  void backward_chain(const T* x, const T* dy, T* dfirst, T* const* grads, std::size_t rows, T* ws,
                      const layout_t& l, T* const* d, sequence_mask m) const noexcept {
    constexpr std::size_t lowest_trainable = [] {
      std::size_t lo = Count;
      meta::static_for<Count>([&](auto k) {
        if (lo == Count && inner_mask<First + k, GradMask> != 0) lo = k;
      });
      return lo;
    }();
    meta::static_for_reverse<Count>([&](auto k) {
      constexpr std::size_t K = First + k;
      if constexpr (InputGrad || k >= lowest_trainable) {
        const T* in = x;
        if constexpr (k != 0) in = ws + l.act[K - 1];
        const T* src = k == Count - 1 ? dy : d[(Count - 2 - k) % 2];
        T* dst = k == 0 ? dfirst : d[(Count - 1 - k) % 2];
        detail::backward_of<(InputGrad || k > lowest_trainable), inner_mask<K, GradMask>, Mode>(
            inner<K>(), in, ws + l.act[K], src, dst, grads + tables.param_offset[K], rows,
            ws + l.ws[K], m);
      }
    });
  }

  static void add_to(T* y, const T* a, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) y[i] += a[i];
  }

  block_pack block_;
  short_pack shortcut_;
};

/// A residual block: y = block(x) + x, or + a 1x1 projection of x when the block changes the
/// shape (inferred, or declared with projection<...> as the first argument).
template <class... Specs> struct residual {
  using args = detail::residual_args<Specs...>;
  using expects =
      diagnostics::expects_a_block_whose_output_has_the_input_shape_or_a_1x1_strided_projection;
  template <class In> static constexpr bool accepts = Shape<In>;
  template <class In> using block_output =
      typename detail::chain_of<In, typename args::block>::type::output_shape;
  /// Whether the bound block keeps statistics (has a batch norm): the inferred projection then
  /// gets one too.
  template <class T, class In>
  static constexpr bool block_has_statistics = []<class... L>(layer_pack<L...>*) {
    return (detail::has_statistics_v<L> || ...);
  }(static_cast<typename detail::bound_list<T, In, typename args::block>::layers*>(nullptr));
  template <class T, class In> using bind = residual_layer<
      T, In, typename args::block,
      typename detail::shortcut_of<In, args, block_output<In>, block_has_statistics<T, In>>::specs>;
};

GRAFT_END_NAMESPACE
