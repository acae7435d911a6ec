// conv2d<Filters, Kernel, options...>: 2-D convolution over CHW images (cross-correlation, as in
// PyTorch), by the kernels of kernels/conv.hpp (im2col, col2im, direct convolution) and the
// shared GEMM kernels. Options: pad<P> (zero padding, default 0), stride<S> (default 1), no_bias,
// and an initialiser (init::pytorch by default).
//
// The weight is stored [Filters][Channels * Kernel * Kernel] (PyTorch's layout, flattened). The
// kernels' scratch memory (im2col matrices, a zero-bordered image) is a workspace the caller owns
// (runner, trainer, residual block): one part per thread that a call may use
// (parallel::max_threads, 1 without threads), counted in every footprint; no static or
// thread_local buffers, no heap.
#pragma once
#include <array>
#include <cstddef>
#include <string>
#include <type_traits>

#include "graft/kernels/conv.hpp"
#include "graft/kernels/elementwise.hpp"
#include "graft/kernels/gemm.hpp"
#include "graft/kernels/parallel.hpp"
#include "graft/layers/init.hpp"
#include "graft/layers/layer.hpp"
#include "graft/layers/workspace.hpp"
#include "graft/tensor/tensor.hpp"

GRAFT_BEGIN_NAMESPACE

template <std::size_t P> struct pad { static constexpr std::size_t value = P; };
template <std::size_t S> struct stride {
  static_assert(S > 0, "graft: stride<S> needs S > 0");
  static constexpr std::size_t value = S;
};
struct no_bias {};

namespace detail {
template <class T> struct is_pad : std::false_type {};
template <std::size_t P> struct is_pad<pad<P>> : std::true_type {};
template <class T> struct is_stride : std::false_type {};
template <std::size_t S> struct is_stride<stride<S>> : std::true_type {};
template <class T> struct is_init
    : std::bool_constant<!is_pad<T>::value && !is_stride<T>::value && !std::is_same_v<T, no_bias>> {
};

}  // namespace detail

/// Bound convolution: input C x H x W, F filters of K x K, stride S, padding P.
template <class T, std::size_t C, std::size_t H, std::size_t W, std::size_t F, std::size_t K,
          std::size_t S, std::size_t P, bool Bias, class Init>
class conv2d_layer {
 public:
  static constexpr std::size_t HO = (H + 2 * P - K) / S + 1;
  static constexpr std::size_t WO = (W + 2 * P - K) / S + 1;
  static constexpr std::size_t CKK = C * K * K;  ///< rows of the im2col matrix
  static constexpr std::size_t HWO = HO * WO;    ///< its columns
  using scalar = T;
  using input_shape = shape<C, H, W>;
  using output_shape = shape<F, HO, WO>;
  static constexpr std::size_t parameter_count = F * CKK + (Bias ? F : 0);
  static constexpr auto params = [] {
    if constexpr (Bias)
      return std::array<param_desc, 2>{
          {{F * CKK, role::weight, param_tag::conv}, {F, role::bias, param_tag::conv}}};
    else
      return std::array<param_desc, 1>{{{F * CKK, role::weight, param_tag::conv}}};
  }();

  tensor<T, F, CKK> weight;  ///< weight(f, (c * K + ky) * K + kx)
  tensor<T, F> bias;         ///< unused (and not a parameter) with no_bias

  static std::string name() {
    return "conv2d<" + std::to_string(F) + "," + std::to_string(K) + ",s" + std::to_string(S) +
           ",p" + std::to_string(P) + (Bias ? "" : ",nobias") + ">";
  }
  T* param(std::size_t j) noexcept { return j == 0 ? weight.data() : bias.data(); }
  const T* param(std::size_t j) const noexcept { return j == 0 ? weight.data() : bias.data(); }

  void init(splitmix64& rng) {
    Init::weight(weight.data(), F * CKK, CKK, F * K * K, rng);
    if constexpr (Bias)
      Init::bias(bias.data(), F, CKK, F * K * K, rng);
    else
      bias.fill(T(0));
  }

  /// Workspace elements: per thread slot, the im2col matrix (or, for the direct convolution, the
  /// zero-bordered image) and the padded output rows; training adds the transposed output
  /// gradient per slot and the transposed weight gradient once. A forward uses at most one slot
  /// per row.
  static constexpr std::size_t inference_workspace(std::size_t rows) noexcept {
    const std::size_t slots =
        rows < parallel::max_threads ? (rows > 0 ? rows : 1) : parallel::max_threads;
    return slots * forward_slot;
  }
  static constexpr std::size_t training_workspace(std::size_t /*rows*/) noexcept {
    return parallel::max_threads * training_slot + dwt_elements;
  }

  /// Samples are independent: with threads (parallel.hpp) they are split between them, each
  /// with its own slot of ws; every sample's result is the same either way.
  void forward(const T* x, T* y, std::size_t rows, T* ws) const noexcept {
    forward_fused<kernels::identity>(x, y, rows, ws);
  }
  template <train_mode>
  void forward_train(const T* x, T* y, std::size_t rows, T* ws) const noexcept {
    forward_fused<kernels::identity>(x, y, rows, ws);
  }
  /// y = Epi(conv(x) + b): the activation after this layer, applied to the sums in registers
  /// before they are stored. (backward never reads y, so the pre-activation need not exist.)
  template <class Epi>
  void forward_fused(const T* x, T* y, std::size_t rows, T* ws) const noexcept {
    const T* p[2] = {weight.data(), bias.data()};
    forward_fused_from<Epi>(p, nullptr, x, y, rows, ws);
  }
  /// The same from constant parameters p (weight, bias when the layer has one) read in place (a
  /// constant_model: weights compiled into the program).
  static void forward_from(const T* const* p, const T* const* b, const T* x, T* y, std::size_t rows,
                           T* ws) noexcept {
    forward_fused_from<kernels::identity>(p, b, x, y, rows, ws);
  }
  template <class Epi> static void forward_fused_from(const T* const* p,
                                                      const T* const* /*buffers*/, const T* x, T* y,
                                                      std::size_t rows, T* ws) noexcept {
    const T* weight = p[0];
    const T* bias = Bias ? p[1] : nullptr;
    parallel::for_slots(rows, 2, [&](std::size_t begin, std::size_t end, std::size_t slot) {
      T* mine = ws + slot * forward_slot;
      if constexpr (direct) {
        T* xp = mine;  // the border stays zero; conv_direct writes only the inside
        kernels::fill(C * HP * WP, T(0), xp);
        for (std::size_t r = begin; r < end; ++r)
          kernels::conv_direct<C, H, W, F, K, P, Epi>(x + r * input_shape::size, weight, bias, xp,
                                                      y + r * output_shape::size);
      } else {
        T* col = mine;  // its zeros (padding, columns past HWO) are at the same places per image
        T* pad = mine + col_elements;
        kernels::fill(CKK * HWOP, T(0), col);
        for (std::size_t r = begin; r < end; ++r) {
          kernels::im2col<C, H, W, K, S, P, HWOP>(x + r * input_shape::size, col, 0, CKK);
          T* yr = y + r * output_shape::size;
          T* out = padded ? pad : yr;  // the product runs over HWOP columns
          for (std::size_t f = 0; f < F; ++f)
            for (std::size_t i = 0; i < HWOP; ++i) out[f * HWOP + i] = Bias ? bias[f] : T(0);
          kernels::gemm_bcast<HWOP, Epi>(F, CKK, weight, CKK, 1, col, out, true);
          if constexpr (padded)
            for (std::size_t f = 0; f < F; ++f) kernels::copy(HWO, pad + f * HWOP, yr + f * HWO);
        }
      }
    });
  }

  /// With threads: the input gradient splits the samples; the weight gradient, a sum over the
  /// samples, splits the rows of dW^T (each thread builds only its rows of every sample's im2col
  /// matrix), so every element is summed in the same order as on one thread.
  template <bool InputGrad, unsigned GradMask, train_mode Mode>
  void backward(const T* x, const T* y, const T* dy, T* dx, T* const* grads, std::size_t rows,
                T* ws) const noexcept {
    const T* p[2] = {weight.data(), bias.data()};
    backward_from<InputGrad, GradMask, Mode>(p, nullptr, x, y, dy, dx, grads, rows, ws);
  }
  /// The same from parameters p read in place (training on a device: train/device.hpp).
  template <bool InputGrad, unsigned GradMask, train_mode>
  static void backward_from(const T* const* p, const T* const* /*buffers*/, const T* x,
                            const T* /*y*/, const T* dy, T* dx, T* const* grads, std::size_t rows,
                            T* ws) noexcept {
    const T* weight = p[0];
    constexpr bool weight_grad = (GradMask & 1U) != 0;
    constexpr bool bias_grad = Bias && (GradMask & 2U) != 0;
    if constexpr (InputGrad)  // dcol[CKK x HWO] = W^T dy_r, then scattered back
      parallel::for_slots(rows, 2, [&](std::size_t begin, std::size_t end, std::size_t slot) {
        T* dcol = ws + slot * training_slot;  // written everywhere by the product
        T* pad = dcol + col_elements;
        for (std::size_t r = begin; r < end; ++r) {
          kernels::gemm_bcast<HWOP>(CKK, F, weight, 1, CKK, padded_dy(dy, r, pad), dcol, false);
          kernels::col2im<C, H, W, K, S, P, HWOP>(dcol, dx + r * input_shape::size);
        }
      });
    if constexpr (weight_grad && transposed_weight_grad) {  // dW^T[CKK x F] = sum_r col_r dy_r^T
      T* dwt = ws + parallel::max_threads * training_slot;
      parallel::for_slots(CKK, 32, [&](std::size_t begin, std::size_t end, std::size_t slot) {
        T* col = ws + slot * training_slot;
        T* dyt = col + col_elements + pad_elements;
        kernels::fill((end - begin) * HWOP, T(0), col + begin * HWOP);  // im2col writes values
        for (std::size_t r = 0; r < rows; ++r) {
          const T* dyr = dy + r * output_shape::size;  // transposed straight from dy, zero-padded
          for (std::size_t f = 0; f < F; ++f) {
            for (std::size_t i = 0; i < HWO; ++i) dyt[i * F + f] = dyr[f * HWO + i];
            for (std::size_t i = HWO; i < HWOP; ++i) dyt[i * F + f] = T(0);
          }
          kernels::im2col<C, H, W, K, S, P, HWOP>(x + r * input_shape::size, col, begin, end);
          kernels::gemm_bcast<F>(end - begin, HWOP, col + begin * HWOP, HWOP, 1, dyt,
                                 dwt + begin * F, r > 0);
        }
        if (rows > 0)
          for (std::size_t f = 0; f < F; ++f)
            for (std::size_t i = begin; i < end; ++i) grads[0][f * CKK + i] = dwt[i * F + f];
      });
    }
    if constexpr ((weight_grad && !transposed_weight_grad) || bias_grad) {
      T* col = ws;
      T* pad = ws + col_elements;
      if constexpr (weight_grad && !transposed_weight_grad) kernels::fill(CKK * HWOP, T(0), col);
      for (std::size_t r = 0; r < rows; ++r) {
        const T* dyr = padded_dy(dy, r, pad);
        if constexpr (weight_grad && !transposed_weight_grad) {  // dW[F x CKK] += dy_r col_r^T
          kernels::im2col<C, H, W, K, S, P, HWOP>(x + r * input_shape::size, col, 0, CKK);
          kernels::gemm_nt_dots<CKK, HWOP>(F, dyr, col, grads[0], r > 0);
        }
        if constexpr (bias_grad) kernels::row_sum<HWOP>(F, dyr, grads[1], r > 0);
      }
    }
  }

 private:
  // Rows of the im2col matrix (and of the products' outputs) are HWOP long: HWO rounded up to
  // whole 64-byte logical vectors (kernels::wide: 16 floats, 8 doubles), so that columns take
  // vector paths, not slow scalar ones, and so that the padded length, and with it every sum's
  // order, is the same on every vector width. The padding columns hold zeros.
  static constexpr std::size_t simd_width = kernels::simd_width<T>;
  static constexpr std::size_t row_lanes = std::is_floating_point_v<T> ? 64 / sizeof(T) : 1;
  static constexpr std::size_t HWOP = (HWO + row_lanes - 1) / row_lanes * row_lanes;
  static constexpr bool padded = HWOP != HWO;
  // With F a multiple of 16 floats (8 doubles), the weight gradient is computed transposed, as
  // col * dy^T (rows of F: whole vectors), by the register-blocked gemm_bcast, which runs nearer
  // the FMA peak than gemm_nt_dots's dot products (no reductions); dy is transposed per sample and
  // dW^T once per call. Otherwise (conv1's F = 6) gemm_nt_dots. The two sum in different orders:
  // the choice depends on F and the scalar type only, never on the vector width.
  static constexpr bool transposed_weight_grad = row_lanes > 1 && F % row_lanes == 0;

  // Direct forward convolution (stride 1, rows of at least two SIMD vectors, few filters: conv1
  // of LeNet; kernels::conv_direct): no im2col matrix, the same values bit for bit. Its image
  // buffer (in the workspace) has a zero border; only the inside is written per image.
  static constexpr bool direct = S == 1 && kernels::conv_direct_fits<T, WO> && F <= 12;
  static constexpr std::size_t HP = H + 2 * P, WP = W + 2 * P;

  // The workspace, per thread slot: the im2col matrix (CKK x HWOP; in backward also the input
  // gradient's), output (gradient) rows padded to HWOP, and in training dy transposed (HWOP x F);
  // after the slots, dW transposed (CKK x F).
  static constexpr std::size_t col_elements = aligned_count<T>(CKK * HWOP);
  static constexpr std::size_t pad_elements = aligned_count<T>(padded ? F * HWOP : 0);
  static constexpr std::size_t dyt_elements =
      aligned_count<T>(transposed_weight_grad ? HWOP * F : 0);
  static constexpr std::size_t dwt_elements =
      aligned_count<T>(transposed_weight_grad ? CKK * F : 0);
  static constexpr std::size_t forward_slot =
      direct ? aligned_count<T>(C * HP * WP) : col_elements + pad_elements;
  static constexpr std::size_t training_slot = [] {
    const std::size_t t = col_elements + pad_elements + dyt_elements;
    return t > forward_slot ? t : forward_slot;
  }();

  // Sample r of dy with rows of HWOP (zeros past HWO): dy itself when HWO is whole vectors, else a
  // copy in pad (this slot's padded rows).
  static const T* padded_dy(const T* dy, std::size_t r, T* pad) noexcept {
    (void)pad;
    const T* dyr = dy + r * output_shape::size;
    if constexpr (padded) {
      for (std::size_t f = 0; f < F; ++f) {
        kernels::copy(HWO, dyr + f * HWO, pad + f * HWOP);
        for (std::size_t i = HWO; i < HWOP; ++i) pad[f * HWOP + i] = T(0);
      }
      return pad;
    }
    return dyr;
  }
};

namespace detail {
template <template <std::size_t> class Opt, class O> struct is_option : std::false_type {};
template <template <std::size_t> class Opt, std::size_t V> struct is_option<Opt, Opt<V>>
    : std::true_type {};
template <template <std::size_t> class Opt, std::size_t Default, class... O>
constexpr std::size_t option_value() {
  std::size_t v = Default;
  (
      [&] {
        if constexpr (is_option<Opt, O>::value) v = O::value;
      }(),
      ...);
  return v;
}
template <class... O> struct first_init { using type = init::pytorch; };
template <class O0, class... O> struct first_init<O0, O...> {
  using type = std::conditional_t<is_init<O0>::value, O0, typename first_init<O...>::type>;
};
}  // namespace detail

/// F filters of K x K over a CHW image. Options: pad<P>, stride<S>, no_bias, an initialiser.
template <std::size_t F, std::size_t K, class... Options> struct conv2d {
  static_assert(F > 0 && K > 0, "graft: conv2d<F, K> needs F > 0 and K > 0");
  static constexpr std::size_t padding = detail::option_value<pad, 0, Options...>();
  static constexpr std::size_t step = detail::option_value<stride, 1, Options...>();
  static constexpr bool has_bias = !(std::is_same_v<Options, no_bias> || ...);
  using init_type = typename detail::first_init<Options...>::type;
  using expects =
      diagnostics::expects_a_channels_x_height_x_width_image_at_least_as_large_as_the_kernel;
  template <class In> static constexpr bool accepts_impl() {
    if constexpr (Shape<In> && In::rank == 3)
      return In::dims[1] + 2 * padding >= K && In::dims[2] + 2 * padding >= K;
    else
      return false;
  }
  template <class In> static constexpr bool accepts = accepts_impl<In>();
  template <class T, class In> using bind = conv2d_layer<T, In::dims[0], In::dims[1], In::dims[2],
                                                         F, K, step, padding, has_bias, init_type>;
};

GRAFT_END_NAMESPACE
