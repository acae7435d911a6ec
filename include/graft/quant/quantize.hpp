// Post-training quantisation of a trained float model (hosted): the int8 model type, derived while
// compiling from the model's layer list, and quantize(), which fills its parameters.
//
//   using QM = quant::quantized_t<net_t>;     // e.g. qnet<784, qflatten<784>, qdense<784, 256,
//                                             //   true>, qdense<256, 128, true>, qdense<128, 10,
//                                             false>>
//   auto cal = quant::calibrate(net, images, 1000);
//   auto qp = quant::quantize(net, cal);      // std::unique_ptr<qparams<QM>>
//
// Lowering, left to right: dense or conv2d, then optionally batch_norm (folded into the weights and
// bias: w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta), then
// optionally relu (fused: the clamp starts at the output's zero point) become one int8 layer;
// max_pool, global_avg_pool, flatten and dropout (identity at inference) map one to one, and a relu
// elsewhere becomes qrelu. Any other layer (residual, tanh, sigmoid, avg_pool, a batch_norm not
// after dense / conv2d, a user's layer) stops the build with error::quant_unsupported_layer<
// layer_index<I>, Layer>, which names it.
//
// Schemes (TFLite's int8): weights symmetric per output channel (scale max|w| / 127, values in
// [-127, 127], zero point 0); activations asymmetric per tensor (choose_activation_params on the
// calibrated range); biases int32 with scale s_in * s_w[c] (the input's zero point folded in:
// bias - zp_in * sum_k w[c][k]); each output channel's multiplier s_in * s_w[c] / s_out by
// quantize_multiplier. All arithmetic here is IEEE double with correctly rounded operations
// (+, *, /, sqrt, round), so the same float model and calibration give the same bytes everywhere.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "graft/layers/activations.hpp"
#include "graft/layers/batch_norm.hpp"
#include "graft/layers/conv2d.hpp"
#include "graft/layers/dense.hpp"
#include "graft/layers/dropout.hpp"
#include "graft/layers/pooling.hpp"
#include "graft/model/model.hpp"
#include "graft/quant/calibrate.hpp"
#include "graft/quant/runtime.hpp"

GRAFT_BEGIN_NAMESPACE

namespace error {
/// A layer that quant::quantized_t cannot lower to int8; the template arguments name its position
/// in the model and its type.
template <class LayerIndex, class Layer> struct quant_unsupported_layer {
  static_assert(sizeof(Layer) == 0,
                "graft::quant: this layer cannot be quantised to int8 (supported: dense and conv2d "
                "with an optional batch_norm and relu after them, max_pool, global_avg_pool, "
                "relu, flatten, dropout); the template arguments of quant_unsupported_layer above "
                "name its index and type");
};
}  // namespace error

namespace quant {
namespace detail {
enum class kind {
  none,
  dense,
  conv2d,
  batch_norm,
  relu,
  flatten,
  max_pool,
  global_avg_pool,
  dropout,
  other
};

template <class L> struct kind_of { static constexpr kind value = kind::other; };
template <> struct kind_of<void> { static constexpr kind value = kind::none; };
template <class T, std::size_t K, std::size_t N, class Init>
struct kind_of<dense_layer<T, K, N, Init>> {
  static constexpr kind value = kind::dense;
};
template <class T, std::size_t C, std::size_t H, std::size_t W, std::size_t F, std::size_t K,
          std::size_t S, std::size_t P, bool B, class Init>
struct kind_of<conv2d_layer<T, C, H, W, F, K, S, P, B, Init>> {
  static constexpr kind value = kind::conv2d;
};
template <class T, class In> struct kind_of<batch_norm_layer<T, In>> {
  static constexpr kind value = kind::batch_norm;
};
template <class T, class In>
struct kind_of<graft::detail::elementwise_layer<T, In, graft::detail::relu_fn>> {
  static constexpr kind value = kind::relu;
};
template <class T, class In> struct kind_of<flatten_layer<T, In>> {
  static constexpr kind value = kind::flatten;
};
template <class T, std::size_t C, std::size_t H, std::size_t W, std::size_t K, std::size_t S>
struct kind_of<graft::detail::pool2d_layer<T, C, H, W, K, S, true>> {
  static constexpr kind value = kind::max_pool;
};
template <class T, std::size_t C, std::size_t H, std::size_t W>
struct kind_of<global_avg_pool_layer<T, C, H, W>> {
  static constexpr kind value = kind::global_avg_pool;
};
template <class T, class In, std::size_t Num, std::size_t Den>
struct kind_of<dropout_layer<T, In, Num, Den>> {
  static constexpr kind value = kind::dropout;
};

/// The int8 layer for float layer L (at index I) with relu fused or not.
template <class L, bool Relu, std::size_t I> struct qlayer_for {
  static_assert(sizeof(error::quant_unsupported_layer<layer_index<I>, L>) > 0);  // names L
  using type = qflatten<1>;
};
template <class T, std::size_t K, std::size_t N, class Init, bool Relu, std::size_t I>
struct qlayer_for<dense_layer<T, K, N, Init>, Relu, I> {
  using type = qdense<K, N, Relu>;
};
template <class T, std::size_t C, std::size_t H, std::size_t W, std::size_t F, std::size_t K,
          std::size_t S, std::size_t P, bool B, class Init, bool Relu, std::size_t I>
struct qlayer_for<conv2d_layer<T, C, H, W, F, K, S, P, B, Init>, Relu, I> {
  using type = qconv2d<C, H, W, F, K, S, P, Relu>;
};
template <class T, class In, bool Relu, std::size_t I>
struct qlayer_for<graft::detail::elementwise_layer<T, In, graft::detail::relu_fn>, Relu, I> {
  using type = qrelu<In::size>;
};
template <class T, class In, bool Relu, std::size_t I>
struct qlayer_for<flatten_layer<T, In>, Relu, I> {
  using type = qflatten<In::size>;
};
template <class T, class In, std::size_t Num, std::size_t Den, bool Relu, std::size_t I>
struct qlayer_for<dropout_layer<T, In, Num, Den>, Relu, I> {
  using type = qflatten<In::size>;
};
template <class T, std::size_t C, std::size_t H, std::size_t W, std::size_t K, std::size_t S,
          bool Relu, std::size_t I>
struct qlayer_for<graft::detail::pool2d_layer<T, C, H, W, K, S, true>, Relu, I> {
  using type = qmax_pool<C, H, W, K, S>;
};
template <class T, std::size_t C, std::size_t H, std::size_t W, bool Relu, std::size_t I>
struct qlayer_for<global_avg_pool_layer<T, C, H, W>, Relu, I> {
  using type = qglobal_avg_pool<C, H * W>;
};

/// The groups of float layers that become one int8 layer each.
template <class M> struct lowering {
  static constexpr std::size_t L = M::layer_count;
  template <std::size_t J> using at =
      std::conditional_t<(J < L), typename M::template layer_type<(J < L ? J : 0)>, void>;
  static constexpr std::array<kind, L + 2> kinds = []<std::size_t... J>(std::index_sequence<J...>) {
    return std::array<kind, L + 2>{kind_of<at<J>>::value...};
  }
  (std::make_index_sequence<L + 2>{});

  struct group {
    std::size_t first = 0, count = 0;
    bool bn = false, relu = false;
  };
  static constexpr auto plan = [] {
    std::array<group, L> g{};
    std::size_t n = 0;
    for (std::size_t i = 0; i < L;) {
      group gr{i, 1, false, false};
      if (kinds[i] == kind::dense || kinds[i] == kind::conv2d) {
        if (kinds[i + 1] == kind::batch_norm) gr.bn = true;
        if (kinds[i + 1 + gr.bn] == kind::relu) gr.relu = true;
        gr.count = 1 + gr.bn + gr.relu;
      }
      g[n++] = gr;
      i += gr.count;
    }
    return std::pair{g, n};
  }();
  static constexpr std::size_t groups = plan.second;
  static constexpr group at_group(std::size_t g) noexcept { return plan.first[g]; }

  template <std::size_t G> using qlayer =
      typename qlayer_for<typename M::template layer_type<at_group(G).first>, at_group(G).relu,
                          at_group(G).first>::type;
  template <std::size_t... G> static auto make(std::index_sequence<G...>)
      -> qnet<M::input_shape::size, qlayer<G>...>;
  using type = decltype(make(std::make_index_sequence<groups>{}));
};
}  // namespace detail

/// The int8 model of float model M.
template <class M> using quantized_t = typename detail::lowering<M>::type;

/// A dense or conv2d layer's weights and bias with a following batch norm folded in (double):
/// weights[c * K + k] for output channel c and input k (K = C*KS*KS for a convolution, in its
/// order; the dense layer's K inputs), bias[c].
struct folded_layer {
  std::size_t channels = 0, inputs = 0;
  std::vector<double> weights, bias;
};
template <class L, class BN = void> folded_layer fold(const L& l, const BN* bn = nullptr) {
  folded_layer f;
  if constexpr (detail::kind_of<L>::value == detail::kind::dense) {
    constexpr std::size_t K = L::input_shape::size, N = L::output_shape::size;
    f.channels = N;
    f.inputs = K;
    f.weights.resize(K * N);
    f.bias.resize(N);
    for (std::size_t n = 0; n < N; ++n) {
      for (std::size_t k = 0; k < K; ++k) f.weights[n * K + k] = l.param(0)[k * N + n];
      f.bias[n] = l.param(1)[n];
    }
  } else {
    static_assert(detail::kind_of<L>::value == detail::kind::conv2d);
    constexpr std::size_t F = L::output_shape::dims[0], CKK = L::CKK;
    f.channels = F;
    f.inputs = CKK;
    f.weights.assign(l.param(0), l.param(0) + F * CKK);
    f.bias.assign(F, 0.0);
    if constexpr (L::params.size() > 1)
      for (std::size_t c = 0; c < F; ++c) f.bias[c] = l.param(1)[c];
  }
  if constexpr (!std::is_void_v<BN>) {
    if (bn != nullptr)
      for (std::size_t c = 0; c < f.channels; ++c) {
        const double a = static_cast<double>(bn->param(0)[c]) /
                         std::sqrt(static_cast<double>(bn->buffer(1)[c]) + BN::eps);
        for (std::size_t k = 0; k < f.inputs; ++k) f.weights[c * f.inputs + k] *= a;
        f.bias[c] = (f.bias[c] - static_cast<double>(bn->buffer(0)[c])) * a +
                    static_cast<double>(bn->param(1)[c]);
      }
  }
  return f;
}

namespace detail {
inline std::int32_t clamp_to_int32(double v) {
  v = std::min(v, 2147483647.0);
  v = std::max(v, -2147483648.0);
  return static_cast<std::int32_t>(v);
}
/// Quantises a folded layer into the model's arrays: weights through place(c, k) (the offset of
/// weight (channel c, input k) in the layer's block), per-channel bias, multiplier and shift.
template <class Place> void quantize_layer(const folded_layer& f, activation_params in,
                                           activation_params out, std::int8_t* w,
                                           std::int32_t* bias, std::int32_t* mult,
                                           std::int32_t* shift, Place place) {
  for (std::size_t c = 0; c < f.channels; ++c) {
    double amax = 0;
    for (std::size_t k = 0; k < f.inputs; ++k)
      amax = std::max(amax, std::fabs(f.weights[c * f.inputs + k]));
    const double sw = amax > 0 ? amax / 127.0 : 1.0;
    std::int64_t wsum = 0;
    for (std::size_t k = 0; k < f.inputs; ++k) {
      double qv = std::round(f.weights[c * f.inputs + k] / sw);
      qv = std::clamp(qv, -127.0, 127.0);
      const auto qi = static_cast<std::int8_t>(qv);
      w[place(c, k)] = qi;
      wsum += qi;
    }
    const double s_acc = static_cast<double>(in.scale) * sw;
    const double bq = std::round(f.bias[c] / s_acc);
    bias[c] = clamp_to_int32(bq - static_cast<double>(in.zero_point) * static_cast<double>(wsum));
    const auto qm = quantize_multiplier(s_acc / static_cast<double>(out.scale));
    mult[c] = qm.multiplier;
    shift[c] = qm.shift;
  }
}
}  // namespace detail

/// Activation parameters of a calibrated range.
inline activation_params activation_of(const tensor_range& r) {
  return choose_activation_params(r.min, r.max);
}

/// The int8 parameters of net, with the activation ranges of cal (calibrate(net, ...)).
template <class M>
std::unique_ptr<qparams<quantized_t<M>>> quantize(const M& net, const calibration& cal) {
  using QM = quantized_t<M>;
  using low = detail::lowering<M>;
  static_assert(std::is_same_v<typename M::scalar, float>, "graft::quant: quantize a float model");
  auto qp = std::make_unique<qparams<QM>>();
  const activation_params input = activation_of(cal.ranges.at(0));
  activation_params cur = input;
  meta::static_for<low::groups>([&](auto gi) {
    constexpr std::size_t G = decltype(gi)::value;
    constexpr auto gr = low::at_group(G);
    using QL = typename QM::template layer_type<G>;
    std::int32_t* meta = qp->meta + 4 * G;
    if constexpr (QL::kind == op::dense || QL::kind == op::conv2d) {
      const auto& l = net.template layer<gr.first>();
      folded_layer f;
      if constexpr (gr.bn)
        f = fold(l, &net.template layer<gr.first + 1>());
      else
        f = fold(l);
      const activation_params out = activation_of(cal.ranges.at(gr.first + gr.count));
      std::int8_t* w = qp->weights + QM::weight_offsets[G];
      const std::size_t co = QM::channel_offsets[G];
      if constexpr (QL::kind == op::dense) {
        constexpr std::size_t K = QL::in_size;
        detail::quantize_layer(
            f, cur, out, w, qp->bias + co, qp->mult + co, qp->shift + co,
            [](std::size_t c, std::size_t k) { return kernels::panel_offset(k, c, K); });
      } else {
        detail::quantize_layer(f, cur, out, w, qp->bias + co, qp->mult + co, qp->shift + co,
                               [](std::size_t c, std::size_t k) { return c * QL::row_bytes + k; });
      }
      meta[0] = cur.zero_point;
      meta[1] = out.zero_point;
      meta[2] = gr.relu ? std::max(out.zero_point, -128) : -128;
      meta[3] = 127;
      cur = out;
    } else {
      meta[0] = cur.zero_point;
      meta[1] = cur.zero_point;
      meta[2] = QL::kind == op::relu ? cur.zero_point : -128;
      meta[3] = 127;
    }
  });
  qp->scales[0] = input.scale;
  qp->scales[1] = cur.scale;
  return qp;
}

}  // namespace quant
GRAFT_END_NAMESPACE
