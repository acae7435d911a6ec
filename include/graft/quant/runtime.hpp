// The freestanding int8 runtime: quantised layer types, a quantised model type (qnet), its
// parameters as six plain arrays read in place through const pointers (qview), owned storage for
// them (qparams), and quant::runner<QM, Batch>, which holds every int8/int32 buffer inline.
//
//   using QM = quant::quantized_t<float_model>;        // quant/quantize.hpp, while compiling
//   auto qp = quant::quantize(net, calibration);       // hosted: a qparams<QM> on the heap
//   static quant::runner<QM, 1> r;                     // ram_bytes, exactly sizeof(r)
//   const std::int8_t* logits = r.forward(qp->view(), x, 1);
//
// The parameters of a whole model are six arrays (quant/export.hpp writes them as alignas(64)
// constexpr arrays of a header, so that they stay in flash):
//   weights  int8   every layer's weights, each layer's block 64-byte aligned:
//                   dense<K -> N>: K x N in panels (kernels.hpp: [N/16][K/4][16][4]);
//                   conv2d: F rows of C*K*K weights (PyTorch's order), each padded to quads
//   bias     int32  per output channel: round(b / (s_in * s_w[c])) - zp_in * sum_k w[c][k]
//   mult     int32  per output channel: s_in * s_w[c] / s_out as a Q0.31 multiplier ...
//   shift    int32  ... and its power of two (requant.hpp)
//   meta     int32  four per layer: zero point in, zero point out, clamp low, clamp high
//   scales   float  the input's scale, the output's (logits') scale
// Freestanding: compiles with -fno-exceptions -fno-rtti; no heap, no thread_local, no iostream;
// includes nothing but the standard's <array>, <cstddef>, <cstdint>, <cstring>, <tuple>, <utility>
// and graft's config, requant and kernels headers.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <utility>

#include "graft/config.hpp"
#include "graft/quant/kernels.hpp"
#include "graft/quant/requant.hpp"

GRAFT_BEGIN_NAMESPACE
namespace quant {

/// Rounds a byte count up to 64 (every array block and buffer starts on a cache line).
constexpr std::size_t align64(std::size_t n) noexcept { return (n + 63) / 64 * 64; }

/// One layer's parameters, pointers into the model's arrays.
struct layer_view {
  const std::int8_t* weights;
  const std::int32_t* bias;
  const std::int32_t* mult;
  const std::int32_t* shift;
  const std::int32_t* meta;  ///< zero point in, zero point out, clamp low, clamp high
};

enum class op : std::uint8_t { dense = 1, conv2d, max_pool, global_avg_pool, relu, flatten };

/// dense: y = requant(x W + b), with relu fused into the clamp.
template <std::size_t K, std::size_t N, bool Relu> struct qdense {
  static constexpr op kind = op::dense;
  static constexpr std::size_t in_size = K, out_size = N;
  static constexpr std::size_t weight_bytes = kernels::panel_bytes(K, N);
  static constexpr std::size_t channels = N;
  static constexpr std::size_t scratch_bytes = kernels::panels(N) * kernels::panel_width * 4;
  static constexpr std::array<std::uint64_t, 8> signature{1, K, N, Relu, 0, 0, 0, 0};

  template <kernels::isa A> static void forward(const layer_view& p, const std::int8_t* x,
                                                std::int8_t* y, std::size_t rows,
                                                std::uint8_t* scratch) noexcept {
    auto* acc = reinterpret_cast<std::int32_t*>(scratch);
    const kernels::output_stage o{p.bias, p.mult, p.shift, p.meta[1], p.meta[2], p.meta[3]};
    for (std::size_t r = 0; r < rows; ++r) {
      kernels::gemm<A>(1, N, K, x + r * K, K, p.weights, acc, 0);
      kernels::requantize_row<A>(N, acc, o, 1, y + r * N);
    }
  }
};

/// conv2d over C x H x W: F filters of KS x KS, stride S, zero padding P (the input's zero point).
template <std::size_t C, std::size_t H, std::size_t W, std::size_t F, std::size_t KS, std::size_t S,
          std::size_t P, bool Relu>
struct qconv2d {
  static constexpr op kind = op::conv2d;
  static constexpr std::size_t HO = (H + 2 * P - KS) / S + 1, WO = (W + 2 * P - KS) / S + 1;
  static constexpr std::size_t HP = H + 2 * P, WP = W + 2 * P;
  static constexpr std::size_t CKK = C * KS * KS, row_bytes = kernels::quads(CKK) * 4;
  static constexpr std::size_t HWO = HO * WO;
  static constexpr std::size_t in_size = C * H * W, out_size = F * HWO;
  static constexpr std::size_t weight_bytes = F * row_bytes;
  static constexpr std::size_t channels = F;
  static constexpr std::size_t image_bytes = align64(C * HP * WP);
  static constexpr std::size_t col_bytes = kernels::panel_bytes(CKK, HWO);
  static constexpr std::size_t scratch_bytes =
      image_bytes + col_bytes + kernels::panels(HWO) * kernels::panel_width * 4;
  static constexpr std::array<std::uint64_t, 8> signature{2, C, H, W, F, KS, S * 1000 + P, Relu};

  template <kernels::isa A> static void forward(const layer_view& p, const std::int8_t* x,
                                                std::int8_t* y, std::size_t rows,
                                                std::uint8_t* scratch) noexcept {
    auto* img = reinterpret_cast<std::int8_t*>(scratch);
    auto* col = reinterpret_cast<std::int8_t*>(scratch + image_bytes);
    auto* acc = reinterpret_cast<std::int32_t*>(scratch + image_bytes + col_bytes);
    const auto zp_in = static_cast<std::int8_t>(p.meta[0]);
    for (std::size_t r = 0; r < rows; ++r) {
      const std::int8_t* xr = x + r * in_size;
      // the image with a border of the input's zero point (the real value 0)
      if constexpr (P > 0) std::memset(img, zp_in, C * HP * WP);
      for (std::size_t c = 0; c < C; ++c)
        for (std::size_t i = 0; i < H; ++i)
          std::memcpy(img + (c * HP + i + P) * WP + P, xr + (c * H + i) * W, W);
      // its patches, in panels: pixel p's quad q at (p/16) * Q * 64 + q * 64 + (p % 16) * 4
      constexpr std::size_t Q = kernels::quads(CKK);
      for (std::size_t px = 0; px < HWO; ++px) {
        const std::size_t oy = px / WO, ox = px % WO;
        std::int8_t patch[row_bytes]{};
        for (std::size_t c = 0; c < C; ++c)
          for (std::size_t ky = 0; ky < KS; ++ky)
            std::memcpy(patch + (c * KS + ky) * KS, img + (c * HP + oy * S + ky) * WP + ox * S, KS);
        std::int8_t* dst = col + (px / 16) * Q * 64 + (px % 16) * 4;
        for (std::size_t q = 0; q < Q; ++q) std::memcpy(dst + q * 64, patch + 4 * q, 4);
      }
      std::int8_t* yr = y + r * out_size;
      for (std::size_t f = 0; f < F; ++f) {
        kernels::gemm<A>(1, HWO, CKK, p.weights + f * row_bytes, row_bytes, col, acc, 0);
        const kernels::output_stage o{p.bias + f, p.mult + f, p.shift + f,
                                      p.meta[1],  p.meta[2],  p.meta[3]};
        kernels::requantize_row<A>(HWO, acc, o, 0, yr + f * HWO);
      }
    }
  }
};

/// Max over KS x KS windows, stride S (exact in int8: the same scale and zero point).
template <std::size_t C, std::size_t H, std::size_t W, std::size_t KS, std::size_t S>
struct qmax_pool {
  static constexpr op kind = op::max_pool;
  static constexpr std::size_t HO = (H - KS) / S + 1, WO = (W - KS) / S + 1;
  static constexpr std::size_t in_size = C * H * W, out_size = C * HO * WO;
  static constexpr std::size_t weight_bytes = 0, channels = 0, scratch_bytes = 0;
  static constexpr std::array<std::uint64_t, 8> signature{3, C, H, W, KS, S, 0, 0};

  template <kernels::isa> static void forward(const layer_view&, const std::int8_t* x,
                                              std::int8_t* y, std::size_t rows,
                                              std::uint8_t*) noexcept {
    for (std::size_t plane = 0; plane < rows * C; ++plane) {
      const std::int8_t* xp = x + plane * H * W;
      std::int8_t* yp = y + plane * HO * WO;
      for (std::size_t oy = 0; oy < HO; ++oy)
        for (std::size_t ox = 0; ox < WO; ++ox) {
          std::int8_t m = xp[oy * S * W + ox * S];
          for (std::size_t ky = 0; ky < KS; ++ky)
            for (std::size_t kx = 0; kx < KS; ++kx) {
              const std::int8_t v = xp[(oy * S + ky) * W + ox * S + kx];
              m = v > m ? v : m;
            }
          yp[oy * WO + ox] = m;
        }
    }
  }
};

/// Mean of each channel, rounded half away from zero (the same scale and zero point).
template <std::size_t C, std::size_t HW> struct qglobal_avg_pool {
  static constexpr op kind = op::global_avg_pool;
  static constexpr std::size_t in_size = C * HW, out_size = C;
  static constexpr std::size_t weight_bytes = 0, channels = 0, scratch_bytes = 0;
  static constexpr std::array<std::uint64_t, 8> signature{4, C, HW, 0, 0, 0, 0, 0};

  template <kernels::isa> static void forward(const layer_view&, const std::int8_t* x,
                                              std::int8_t* y, std::size_t rows,
                                              std::uint8_t*) noexcept {
    constexpr auto n = static_cast<std::int32_t>(HW);
    for (std::size_t i = 0; i < rows * C; ++i) {
      std::int32_t s = 0;
      for (std::size_t k = 0; k < HW; ++k) s += x[i * HW + k];
      s = s >= 0 ? (s + n / 2) / n : -((-s + n / 2) / n);
      y[i] = static_cast<std::int8_t>(s);
    }
  }
};

/// relu on its own (one not after a dense or conv2d layer): max(x, zero point).
template <std::size_t N> struct qrelu {
  static constexpr op kind = op::relu;
  static constexpr std::size_t in_size = N, out_size = N;
  static constexpr std::size_t weight_bytes = 0, channels = 0, scratch_bytes = 0;
  static constexpr std::array<std::uint64_t, 8> signature{5, N, 0, 0, 0, 0, 0, 0};

  template <kernels::isa> static void forward(const layer_view& p, const std::int8_t* x,
                                              std::int8_t* y, std::size_t rows,
                                              std::uint8_t*) noexcept {
    const auto zp = static_cast<std::int8_t>(p.meta[0]);
    for (std::size_t i = 0; i < rows * N; ++i) y[i] = x[i] > zp ? x[i] : zp;
  }
};

/// flatten: nothing to do (CHW order is kept); the runner does not even switch buffers.
template <std::size_t N> struct qflatten {
  static constexpr op kind = op::flatten;
  static constexpr std::size_t in_size = N, out_size = N;
  static constexpr std::size_t weight_bytes = 0, channels = 0, scratch_bytes = 0;
  static constexpr std::array<std::uint64_t, 8> signature{6, N, 0, 0, 0, 0, 0, 0};
};

/// A quantised model: input size, then the layers in order.
template <std::size_t InSize, class... Layers> struct qnet {
  static_assert(sizeof...(Layers) > 0, "graft::quant: a model needs a layer");
  static constexpr std::size_t layer_count = sizeof...(Layers);
  static constexpr std::size_t input_size = InSize;
  static constexpr std::array<std::size_t, layer_count> weight_sizes{Layers::weight_bytes...};
  static constexpr std::array<std::size_t, layer_count> channel_counts{Layers::channels...};
  static constexpr std::array<std::size_t, layer_count + 1> sizes{InSize, Layers::out_size...};
  static constexpr std::size_t output_size = sizes[layer_count];
  template <std::size_t I> using layer_type = std::tuple_element_t<I, std::tuple<Layers...>>;

  /// Where each layer's block starts in the weights (64-byte aligned blocks) and channel arrays.
  static constexpr std::array<std::size_t, layer_count + 1> weight_offsets = [] {
    std::array<std::size_t, layer_count + 1> o{};
    for (std::size_t i = 0; i < layer_count; ++i) o[i + 1] = o[i] + align64(weight_sizes[i]);
    return o;
  }();
  static constexpr std::array<std::size_t, layer_count + 1> channel_offsets = [] {
    std::array<std::size_t, layer_count + 1> o{};
    for (std::size_t i = 0; i < layer_count; ++i) o[i + 1] = o[i] + channel_counts[i];
    return o;
  }();
  static constexpr std::size_t weight_bytes = weight_offsets[layer_count];
  static constexpr std::size_t channels = channel_offsets[layer_count];
  static constexpr std::size_t meta_count = 4 * layer_count;
  /// Read-only bytes: every array (the weights with their alignment padding).
  static constexpr std::size_t parameter_bytes =
      weight_bytes + 3 * channels * sizeof(std::int32_t) + meta_count * sizeof(std::int32_t) +
      2 * sizeof(float);
  static constexpr std::size_t widest = [] {
    std::size_t w = 0;
    for (std::size_t s : sizes) w = s > w ? s : w;
    return w;
  }();
  static constexpr std::size_t scratch_bytes = [] {
    std::size_t w = 0;
    for (std::size_t s : {Layers::scratch_bytes...}) w = s > w ? s : w;
    return w;
  }();
  /// FNV-1a over every layer's signature (kind and dimensions): an exported header records it.
  static constexpr std::uint64_t fingerprint = [] {
    std::uint64_t h = 14695981039346656037ULL;
    for (const auto& sig : {Layers::signature...})
      for (std::uint64_t v : sig)
        for (int b = 0; b < 8; ++b) h = (h ^ ((v >> (8 * b)) & 0xff)) * 1099511628211ULL;
    return h;
  }();
};

template <class QM> struct qview {
  const std::int8_t* weights;
  const std::int32_t* bias;
  const std::int32_t* mult;
  const std::int32_t* shift;
  const std::int32_t* meta;
  const float* scales;  ///< input scale, output scale

  constexpr layer_view layer(std::size_t i) const noexcept {
    return {weights + QM::weight_offsets[i], bias + QM::channel_offsets[i],
            mult + QM::channel_offsets[i], shift + QM::channel_offsets[i], meta + 4 * i};
  }
  constexpr float input_scale() const noexcept { return scales[0]; }
  constexpr float output_scale() const noexcept { return scales[1]; }
  constexpr std::int32_t input_zero_point() const noexcept { return meta[0]; }
  constexpr std::int32_t output_zero_point() const noexcept {
    return meta[4 * (QM::layer_count - 1) + 1];
  }
};

namespace detail {
template <std::size_t N> struct at_least_one {
  static constexpr std::size_t value = N > 0 ? N : 1;
};
}  // namespace detail

/// The parameters in owned storage (quantize() fills one; static storage works too).
template <class QM> struct qparams {
  alignas(64) std::int8_t weights[detail::at_least_one<QM::weight_bytes>::value]{};
  alignas(64) std::int32_t bias[detail::at_least_one<QM::channels>::value]{};
  alignas(64) std::int32_t mult[detail::at_least_one<QM::channels>::value]{};
  alignas(64) std::int32_t shift[detail::at_least_one<QM::channels>::value]{};
  alignas(64) std::int32_t meta[QM::meta_count]{};
  float scales[2]{1.0f, 1.0f};

  constexpr qview<QM> view() const noexcept { return {weights, bias, mult, shift, meta, scales}; }
};

/// Batched int8 inference: two ping-pong activation buffers of the widest tensor and the largest
/// scratch a layer needs (convolution: the padded image, its patches, a row of int32 sums), all
/// inline. ram_bytes == sizeof(runner); rom_bytes: the parameters it reads in place.
template <class QM, std::size_t Batch = 1, kernels::isa A = kernels::best> class runner {
 public:
  static constexpr std::size_t batch = Batch;
  static constexpr std::size_t buffer_bytes = align64(Batch * QM::widest);
  static constexpr std::size_t scratch_bytes = QM::scratch_bytes > 0 ? align64(QM::scratch_bytes)
                                                                     : 64;
  static constexpr std::size_t ram_bytes = 2 * buffer_bytes + scratch_bytes;
  static constexpr std::size_t rom_bytes = QM::parameter_bytes;

  /// The int8 input buffer (Batch x QM::input_size), for a caller that quantises itself.
  std::int8_t* input() noexcept { return buffers_; }

  /// Quantises rows x input_size floats with the model's input scale and zero point, runs, and
  /// returns rows x output_size int8 logits (valid until the next forward).
  const std::int8_t* forward(const qview<QM>& p, const float* x, std::size_t rows) noexcept {
    const float s = p.input_scale();
    const std::int32_t zp = p.input_zero_point();
    for (std::size_t i = 0; i < rows * QM::input_size; ++i)
      buffers_[i] = quantize_value(x[i], s, zp);
    return forward_quantized(p, rows);
  }
  /// Runs rows already quantised in input().
  const std::int8_t* forward_quantized(const qview<QM>& p, std::size_t rows) noexcept {
    std::int8_t* cur = buffers_;
    std::int8_t* next = buffers_ + buffer_bytes;
    run(p, rows, cur, next, std::make_index_sequence<QM::layer_count>{});
    return cur;
  }

  /// The real value of an output.
  static float dequantize(const qview<QM>& p, std::int8_t v) noexcept {
    return dequantize_value(v, p.output_scale(), p.output_zero_point());
  }
  /// The index of the largest of a row of outputs (the first one on ties).
  static std::size_t argmax(const std::int8_t* row) noexcept {
    std::size_t best = 0;
    for (std::size_t i = 1; i < QM::output_size; ++i)
      if (row[i] > row[best]) best = i;
    return best;
  }

 private:
  template <std::size_t... I> void run(const qview<QM>& p, std::size_t rows, std::int8_t*& cur,
                                       std::int8_t*& next, std::index_sequence<I...>) noexcept {
    (step<I>(p, rows, cur, next), ...);
  }
  template <std::size_t I>
  void step(const qview<QM>& p, std::size_t rows, std::int8_t*& cur, std::int8_t*& next) noexcept {
    using L = typename QM::template layer_type<I>;
    if constexpr (L::kind != op::flatten) {
      L::template forward<A>(p.layer(I), cur, next, rows, scratch_);
      std::int8_t* t = cur;
      cur = next;
      next = t;
    }
  }

  alignas(64) std::int8_t buffers_[2 * buffer_bytes]{};
  alignas(64) std::uint8_t scratch_[scratch_bytes]{};
};

}  // namespace quant
GRAFT_END_NAMESPACE
