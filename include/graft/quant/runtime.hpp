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
  // Stride 1: the patches of "virtual" pixels j = oy * WP + ox (ox < WP, the columns past WO
  // computed and dropped), so that row k = (c, ky, kx) of the patch matrix is the bordered image
  // from c * HP * WP + ky * WP + kx on: the panels are packed straight from the image, with no
  // copy per output row. Other strides: WO pixels per output row, copied row by row.
  static constexpr std::size_t WV = S == 1 ? WP : WO, NV = HO * WV;
  static constexpr std::size_t PP = kernels::panels(NV), Q = kernels::quads(CKK);
  // the bordered image, with room for the last panels' reads past it (stride 1)
  static constexpr std::size_t image_bytes = S == 1  ? align64(C * HP * WP + KS - 1 + PP * 16 - NV)
                                             : P > 0 ? align64(C* HP* WP)
                                                     : 0;
  static constexpr std::size_t col_bytes = kernels::panel_bytes(CKK, NV);
  // every filter's sums over B panels at a time (at most 4 KiB); other strides: the work area
  // first holds four rows of the patch matrix (one quad)
  static constexpr std::size_t B = [] {
    std::size_t b = 4096 / (F * 64);
    b = b > 8 ? 8 : b < 1 ? 1 : b;
    return b > PP ? PP : b;
  }();
  // with a 2 x 2 max pooling fused (forward_pooled): RB output rows (an even count) at a time,
  // over the panels they touch (TP at most)
  static constexpr bool poolable = HO % 2 == 0 && WO % 2 == 0;
  static constexpr std::size_t RB = 2 * (B * 16 / (2 * WV) > 0 ? B * 16 / (2 * WV) : 1);
  static constexpr std::size_t TP = (RB * WV + 15) / 16 + 1 > B ? (RB* WV + 15) / 16 + 1 : B;
  static constexpr std::size_t acc_bytes = F * TP * 16 * 4, rows_bytes = S == 1 ? 0 : 4 * PP * 16;
  static constexpr std::size_t work_bytes = acc_bytes > rows_bytes ? acc_bytes : rows_bytes;
  static constexpr std::size_t scratch_bytes = image_bytes + col_bytes + work_bytes;
  static constexpr std::array<std::uint64_t, 8> signature{2, C, H, W, F, KS, S * 1000 + P, Relu};

  /// The patch matrix of one image, in panels, at scratch + image_bytes.
  static void patches(const layer_view& p, const std::int8_t* xr, std::uint8_t* scratch) noexcept {
    auto* col = reinterpret_cast<std::int8_t*>(scratch + image_bytes);
    std::uint8_t* work = scratch + image_bytes + col_bytes;
    constexpr std::size_t NP = PP * 16, stride = Q * 64;
    {
      const std::int8_t* img = xr;
      if constexpr (image_bytes > 0) {
        // the image with a border of the input's zero point (the real value 0)
        auto* padded = reinterpret_cast<std::int8_t*>(scratch);
        if constexpr (P > 0) {
          std::memset(padded, static_cast<std::int8_t>(p.meta[0]), image_bytes);
          for (std::size_t c = 0; c < C; ++c)
            for (std::size_t i = 0; i < H; ++i)
              std::memcpy(padded + (c * HP + i + P) * WP + P, xr + (c * H + i) * W, W);
        } else {
          std::memcpy(padded, xr, in_size);
          std::memset(padded + in_size, 0, image_bytes - in_size);
        }
        img = padded;
      }
      // the patch matrix in panels, one quad of rows k = (c, ky, kx) at a time: row k holds
      // pixel (oy, ox)'s input (c, oy * S + ky, ox * S + kx); the rows past C*K*K meet the zero
      // bytes of the filters (any bytes do: the image's)
      for (std::size_t q = 0; q < Q; ++q) {
        const std::int8_t* quad_rows[4];
        for (std::size_t i = 0; i < 4; ++i) {
          const std::size_t k = 4 * q + i < CKK ? 4 * q + i : 0;
          const std::size_t c = k / (KS * KS), ky = k / KS % KS, kx = k % KS;
          const std::int8_t* src = img + (c * HP + ky) * WP + kx;
          if constexpr (S == 1) {
            quad_rows[i] = src;
          } else {
            std::int8_t* row = reinterpret_cast<std::int8_t*>(work) + i * NP;
            for (std::size_t oy = 0; oy < HO; ++oy)
              for (std::size_t ox = 0; ox < WO; ++ox) row[oy * WO + ox] = src[oy * S * WP + ox * S];
            for (std::size_t j = HWO; j < NP; ++j) row[j] = 0;
            quad_rows[i] = row;
          }
        }
        kernels::pack_quad(quad_rows, PP, col + q * 64, stride);
      }
    }
  }

  template <kernels::isa A> static void forward(const layer_view& p, const std::int8_t* x,
                                                std::int8_t* y, std::size_t rows,
                                                std::uint8_t* scratch) noexcept {
    auto* col = reinterpret_cast<std::int8_t*>(scratch + image_bytes);
    auto* acc = reinterpret_cast<std::int32_t*>(scratch + image_bytes + col_bytes);
    constexpr std::size_t stride = Q * 64;
    for (std::size_t r = 0; r < rows; ++r) {
      patches(p, x + r * in_size, scratch);
      // every filter over B panels of pixels at a time (each panel row of patches loaded once for
      // several filters), then requantised, output row by output row
      std::int8_t* yr = y + r * out_size;
      for (std::size_t p0 = 0; p0 < PP; p0 += B) {
        const std::size_t j0 = p0 * 16, nj = NV - j0 < B * 16 ? NV - j0 : B * 16;
        kernels::gemm<A>(F, nj, CKK, p.weights, row_bytes, col + p0 * stride, acc, B * 16);
        for (std::size_t oy = j0 / WV; oy < HO && oy * WV < j0 + nj; ++oy) {
          const std::size_t a = oy * WV > j0 ? oy * WV : j0;
          const std::size_t e = oy * WV + WO < j0 + nj ? oy * WV + WO : j0 + nj;
          if (a >= e) continue;
          for (std::size_t f = 0; f < F; ++f) {
            const kernels::output_stage o{p.bias + f, p.mult + f, p.shift + f,
                                          p.meta[1],  p.meta[2],  p.meta[3]};
            kernels::requantize_row<A>(e - a, acc + f * B * 16 + (a - j0), o, 0,
                                       yr + f * HWO + oy * WO + (a - oy * WV));
          }
        }
      }
    }
  }

  /// forward, then a 2 x 2 max pooling of stride 2 (qmax_pool<F, HO, WO, 2, 2>), bitwise: the
  /// requantisation is nondecreasing in the sum when it does not shift left (a left shift wraps),
  /// so the largest of four sums gives the largest of their four outputs and is the only one
  /// requantised. Filters with a left shift are requantised first and pooled after.
  template <kernels::isa A> static void forward_pooled(const layer_view& p, const std::int8_t* x,
                                                       std::int8_t* y, std::size_t rows,
                                                       std::uint8_t* scratch) noexcept {
    static_assert(poolable);
    auto* col = reinterpret_cast<std::int8_t*>(scratch + image_bytes);
    auto* acc = reinterpret_cast<std::int32_t*>(scratch + image_bytes + col_bytes);
    constexpr std::size_t stride = Q * 64, HO2 = HO / 2, WO2 = WO / 2, out2 = F * HO2 * WO2;
    for (std::size_t r = 0; r < rows; ++r) {
      patches(p, x + r * in_size, scratch);
      std::int8_t* yr = y + r * out2;
      for (std::size_t oy0 = 0; oy0 < HO; oy0 += RB) {
        const std::size_t oy1 = oy0 + RB < HO ? oy0 + RB : HO;
        // the panels of output rows oy0..oy1 (virtual pixels oy0 * WV .. oy1 * WV)
        const std::size_t pa = oy0 * WV / 16, pb = (oy1 * WV + 15) / 16, j0 = pa * 16;
        kernels::gemm<A>(F, (pb - pa) * 16, CKK, p.weights, row_bytes, col + pa * stride, acc,
                         TP * 16);
        for (std::size_t f = 0; f < F; ++f) {
          const kernels::output_stage o{p.bias + f, p.mult + f, p.shift + f,
                                        p.meta[1],  p.meta[2],  p.meta[3]};
          const std::int32_t* af = acc + f * TP * 16;
          for (std::size_t oy = oy0; oy < oy1; oy += 2) {
            const std::int32_t* r0 = af + oy * WV - j0;
            std::int8_t* out = yr + f * HO2 * WO2 + oy / 2 * WO2;
            if (p.shift[f] <= 0) {
              kernels::pool2_requantize_row<A>(WO2, r0, r0 + WV, o, out);
            } else {
              std::int8_t q0[WO], q1[WO];
              kernels::requantize_row<A>(WO, r0, o, 0, q0);
              kernels::requantize_row<A>(WO, r0 + WV, o, 0, q1);
              for (std::size_t ox = 0; ox < WO2; ++ox) {
                std::int8_t v = q0[2 * ox] > q0[2 * ox + 1] ? q0[2 * ox] : q0[2 * ox + 1];
                v = q1[2 * ox] > v ? q1[2 * ox] : v;
                out[ox] = q1[2 * ox + 1] > v ? q1[2 * ox + 1] : v;
              }
            }
          }
        }
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
  static constexpr std::size_t window = KS, step = S;
  static constexpr std::array<std::uint64_t, 8> signature{3, C, H, W, KS, S, 0, 0};

  template <kernels::isa> static void forward(const layer_view&, const std::int8_t* x,
                                              std::int8_t* y, std::size_t rows,
                                              std::uint8_t*) noexcept {
    if constexpr (KS == 2 && S == 2) {
      // the common 2 x 2 pooling: the larger of two rows, then of neighbours (vectorised)
      for (std::size_t plane = 0; plane < rows * C; ++plane) {
        const std::int8_t* xp = x + plane * H * W;
        std::int8_t* yp = y + plane * HO * WO;
        for (std::size_t oy = 0; oy < HO; ++oy) {
          const std::int8_t* a = xp + 2 * oy * W;
          const std::int8_t* b = a + W;
          std::int8_t* out = yp + oy * WO;
          for (std::size_t ox = 0; ox < WO; ++ox) {
            const std::int8_t m0 = a[2 * ox] > b[2 * ox] ? a[2 * ox] : b[2 * ox];
            const std::int8_t m1 = a[2 * ox + 1] > b[2 * ox + 1] ? a[2 * ox + 1] : b[2 * ox + 1];
            out[ox] = m0 > m1 ? m0 : m1;
          }
        }
      }
      return;
    }
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
    kernels::quantize_row(rows * QM::input_size, x, s, zp, buffers_);
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
  /// Layer I is a convolution whose outputs go to a 2 x 2 max pooling of stride 2 (layer I + 1):
  /// the two run as one (qconv2d::forward_pooled).
  template <std::size_t I> static constexpr bool pools_next() noexcept {
    if constexpr (I + 1 >= QM::layer_count) {
      return false;
    } else {
      using L = typename QM::template layer_type<I>;
      using N = typename QM::template layer_type<I + 1>;
      if constexpr (L::kind == op::conv2d && N::kind == op::max_pool)
        return L::poolable && N::window == 2 && N::step == 2;
      else
        return false;
    }
  }
  template <std::size_t I> static constexpr bool pooled_before() noexcept {
    if constexpr (I == 0)
      return false;
    else
      return pools_next<I - 1>();
  }
  template <std::size_t I>
  void step(const qview<QM>& p, std::size_t rows, std::int8_t*& cur, std::int8_t*& next) noexcept {
    using L = typename QM::template layer_type<I>;
    if constexpr (pools_next<I>()) {
      L::template forward_pooled<A>(p.layer(I), cur, next, rows, scratch_);
      std::int8_t* t = cur;
      cur = next;
      next = t;
    } else if constexpr (pooled_before<I>()) {
      // done with the convolution before
    } else if constexpr (L::kind != op::flatten) {
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
