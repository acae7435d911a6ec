// conv1d<Filters, Kernel, options...>: 1-D convolution over sequences (cross-correlation, as in
// PyTorch's Conv1d), for token models after an embedding. Options as for conv2d: pad<P> (zero
// padding at both ends, default 0), stride<S> (default 1), no_bias, and an initialiser
// (init::pytorch by default).
//
// Layout. A sequence is [L, C] row-major, position-major: row l holds the C channels of position
// l (what the embedding layer writes; attention and layer norm read the same). PyTorch's Conv1d
// is channels-first [C, L]; graft's is the transpose on purpose: no transposes between the
// sequence layers. The output is [LO, F], LO = (L + 2P - K) / S + 1.
//
// Weight: [K * C, F] row-major, weight(k * C + c, f) (like dense's [in, out]). Window lo of the
// zero-padded input is the K * C contiguous values of rows lo * S .. lo * S + K - 1, so the
// forward is one GEMM per sample, y = W_x * weight with W_x's rows the overlapping windows
// (row stride S * C): no im2col copy. PyTorch's Conv1d weight w[f][c][k] (shape [F, C, K]) maps
// to weight(k * C + c, f) = w[f][c][k], i.e. w.permute(2, 1, 0).reshape(K * C, F); the bias is
// the same [F].
//
// Orders (bitwise the same on every instruction set with FMA and for any thread count, as the GEMM
// kernels guarantee, kernels/gemm.hpp; a sample's output and input gradient also whatever the
// batch it is in):
//   forward      y[lo][f] = one fmadd chain from b[f] (0 without bias) over k * C + c ascending,
//                 the padding's zeros included (gemm_bcast);
//   weight grad  dW[k * C + c][f] = one fmadd chain over (sample, lo) ascending (gemm_bcast,
//                 sample after sample);
//   bias grad    db[f] = the sum over the samples, in order, of each sample's 0 + dy[r][lo][f]
//                 over lo ascending (column_sum per sample: the gradient is a sum of per-sample
//                 terms, so that the device trainer, which adds them up sample by sample, gets
//                 the same bits: train/device.hpp);
//   input grad   dwin[lo][k * C + c] = one fmadd chain over f ascending (gemm_nt_packed), then
//                 dx = 0 + dwin's entries over lo ascending (a 1-D col2im).
//
// Padding masks (token models): conv1d is masked (layers/layer.hpp). A sample of valid length n
// is computed as the sequence of its n rows alone: rows past n read as zeros, only the first
// LO(n) = output_length(n) output rows are computed (GEMMs of LO(n) rows), the others are exact
// zeros; dy past LO(n) is ignored and dx past n is zero. So a padded sample gives bitwise the
// outputs of the same sample in a conv1d of length n.
//
// Scratch memory (the caller's workspace, as for conv2d; no static, thread_local or heap
// buffers): per thread slot, a zero-padded copy of one sample ([L + 2P, C]; none without
// padding), and in training the window gradients of one sample ([LO, K * C]) and once a sample's
// bias gradient ([F]).
#pragma once
#include <array>
#include <cstddef>
#include <string>
#include <type_traits>

#include "graft/kernels/elementwise.hpp"
#include "graft/kernels/gemm.hpp"
#include "graft/kernels/parallel.hpp"
#include "graft/layers/conv2d.hpp"  // pad<P>, stride<S>, no_bias and the option parsing
#include "graft/layers/init.hpp"
#include "graft/layers/layer.hpp"
#include "graft/layers/workspace.hpp"
#include "graft/tensor/tensor.hpp"

GRAFT_BEGIN_NAMESPACE

/// Bound 1-D convolution: input [L, C] (position-major), F filters of K positions, stride S,
/// padding P, output [LO, F].
template <class T, std::size_t L, std::size_t C, std::size_t F, std::size_t K, std::size_t S,
          std::size_t P, bool Bias, class Init>
class conv1d_layer {
 public:
  static constexpr std::size_t kernel = K, step = S, padding = P;
  static constexpr std::size_t LP = L + 2 * P;         ///< rows of the padded input
  static constexpr std::size_t LO = (LP - K) / S + 1;  ///< output positions
  static constexpr std::size_t KC = K * C;             ///< values in one window
  using scalar = T;
  using input_shape = shape<L, C>;
  using output_shape = shape<LO, F>;
  static constexpr std::size_t parameter_count = KC * F + (Bias ? F : 0);
  static constexpr auto params = [] {
    if constexpr (Bias)
      return std::array<param_desc, 2>{
          {{KC * F, role::weight, param_tag::conv}, {F, role::bias, param_tag::conv}}};
    else
      return std::array<param_desc, 1>{{{KC * F, role::weight, param_tag::conv}}};
  }();

  tensor<T, KC, F> weight;  ///< weight(k * C + c, f) = PyTorch's weight[f][c][k]
  tensor<T, F> bias;        ///< unused (and not a parameter) with no_bias

  /// Masked (layers/layer.hpp): sample r of valid length n (the sequence_mask) is convolved as
  /// the sequence of its first n rows alone (zeros past them, as its own padding); its first
  /// output_length(n) output rows are valid, the rest are exact zeros.
  static constexpr sequence_use sequence = sequence_use::masked;
  static constexpr std::size_t output_length(std::size_t n) noexcept {
    return n == 0 || n + 2 * P < K ? 0 : (n + 2 * P - K) / S + 1;
  }
  static_assert(output_length(L) == LO);

  static std::string name() {
    return "conv1d<" + std::to_string(F) + "," + std::to_string(K) + ",s" + std::to_string(S) +
           ",p" + std::to_string(P) + (Bias ? "" : ",nobias") + ">";
  }
  T* param(std::size_t j) noexcept { return j == 0 ? weight.data() : bias.data(); }
  const T* param(std::size_t j) const noexcept { return j == 0 ? weight.data() : bias.data(); }

  /// PyTorch's fans: fan_in C * K, fan_out F * K.
  void init(splitmix64& rng) {
    Init::weight(weight.data(), KC * F, KC, F * K, rng);
    if constexpr (Bias)
      Init::bias(bias.data(), F, KC, F * K, rng);
    else
      bias.fill(T(0));
  }

  /// Workspace elements: per thread slot a forward uses (at most one per sample), the padded
  /// sample; training: per slot, the larger of that and the window gradients.
  static constexpr std::size_t inference_workspace(std::size_t rows) noexcept {
    const std::size_t slots =
        rows < parallel::max_threads ? (rows > 0 ? rows : 1) : parallel::max_threads;
    return slots * forward_slot;
  }
  static constexpr std::size_t training_workspace(std::size_t /*rows*/) noexcept {
    return parallel::max_threads * training_slot + db_elements;
  }

  /// Samples are independent: with threads (parallel.hpp) they are split between them, each
  /// with its own slot of ws; every sample's result is the same either way.
  void forward(const T* x, T* y, std::size_t rows, T* ws, sequence_mask m = {}) const noexcept {
    forward_fused<kernels::identity>(x, y, rows, ws, m);
  }
  template <train_mode> void forward_train(const T* x, T* y, std::size_t rows, T* ws,
                                           sequence_mask m = {}) const noexcept {
    forward_fused<kernels::identity>(x, y, rows, ws, m);
  }
  /// y = Epi(conv(x) + b): the activation after this layer, applied to the sums in registers
  /// before they are stored. (backward never reads y, so the pre-activation need not exist.)
  template <class Epi> void forward_fused(const T* x, T* y, std::size_t rows, T* ws,
                                          sequence_mask m = {}) const noexcept {
    const T* p[2] = {weight.data(), bias.data()};
    forward_fused_from<Epi>(p, nullptr, x, y, rows, ws, m);
  }
  /// The same from constant parameters p (weight, bias when the layer has one) read in place (a
  /// constant_model: weights compiled into the program).
  static void forward_from(const T* const* p, const T* const* b, const T* x, T* y, std::size_t rows,
                           T* ws, sequence_mask m = {}) noexcept {
    forward_fused_from<kernels::identity>(p, b, x, y, rows, ws, m);
  }
  template <class Epi>
  static void forward_fused_from(const T* const* p, const T* const* /*buffers*/, const T* x, T* y,
                                 std::size_t rows, T* ws, sequence_mask m = {}) noexcept {
    const T* w = p[0];
    const T* b = Bias ? p[1] : nullptr;
    parallel::for_slots(rows, 2, [&](std::size_t begin, std::size_t end, std::size_t slot) {
      T* xp = P > 0 ? ws + slot * forward_slot : nullptr;
      zero_border(xp);
      for (std::size_t r = begin; r < end; ++r) {
        const std::size_t n = m.length(r, L);
        const std::size_t lo_n = output_length(n);
        const T* win = windows(x, r, xp, n);
        T* yr = y + r * output_shape::size;
        if constexpr (Bias)
          for (std::size_t lo = 0; lo < lo_n; ++lo) kernels::copy(F, b, yr + lo * F);
        // y[lo_n x F] (+)= windows[lo_n x KC, rows S * C apart] * weight[KC x F]
        if (lo_n > 0) kernels::gemm_bcast<F, Epi>(lo_n, KC, win, S * C, 1, w, yr, Bias);
        if (lo_n < LO) kernels::fill((LO - lo_n) * F, T(0), yr + lo_n * F);
      }
    });
  }

  /// With threads: the input gradient splits the samples; the weight gradient, a sum over the
  /// samples, splits the rows of dW (each thread reads only its columns of every sample's
  /// windows), so every element is summed in the same order as on one thread.
  template <bool InputGrad, unsigned GradMask, train_mode Mode>
  void backward(const T* x, const T* y, const T* dy, T* dx, T* const* grads, std::size_t rows,
                T* ws, sequence_mask m = {}) const noexcept {
    const T* p[2] = {weight.data(), bias.data()};
    backward_from<InputGrad, GradMask, Mode>(p, nullptr, x, y, dy, dx, grads, rows, ws, m);
  }
  /// The same from parameters p read in place (training on a device: train/device.hpp).
  template <bool InputGrad, unsigned GradMask, train_mode>
  static void backward_from(const T* const* p, const T* const* /*buffers*/, const T* x,
                            const T* /*y*/, const T* dy, T* dx, T* const* grads, std::size_t rows,
                            T* ws, sequence_mask m = {}) noexcept {
    const T* w = p[0];
    constexpr bool weight_grad = (GradMask & 1U) != 0;
    constexpr bool bias_grad = Bias && (GradMask & 2U) != 0;
    if constexpr (InputGrad)  // dwin[LO x KC] = dy_r * W^T, then added back onto the positions
      parallel::for_slots(rows, 2, [&](std::size_t begin, std::size_t end, std::size_t slot) {
        T* dwin = ws + slot * training_slot;
        for (std::size_t r = begin; r < end; ++r) {
          const std::size_t n = m.length(r, L);
          const std::size_t lo_n = output_length(n);
          T* dxr = dx + r * input_shape::size;
          if (lo_n > 0) kernels::gemm_nt_packed<KC, F>(lo_n, dy + r * output_shape::size, w, dwin);
          col2seq(dwin, dxr, lo_n);
          if (n < L) kernels::fill((L - n) * C, T(0), dxr + n * C);  // padding: no gradient
        }
      });
    if constexpr (weight_grad) {  // dW[KC x F] = sum_r windows_r^T dy_r
      if (rows == 0) kernels::fill(KC * F, T(0), grads[0]);
      parallel::for_slots(KC, 32, [&](std::size_t begin, std::size_t end, std::size_t slot) {
        T* xp = P > 0 ? ws + slot * training_slot : nullptr;
        zero_border(xp);
        bool any = false;  // a sample before this one had valid outputs
        for (std::size_t r = 0; r < rows; ++r) {
          const std::size_t n = m.length(r, L);
          const std::size_t lo_n = output_length(n);
          if (lo_n == 0) continue;
          const T* win = windows(x, r, xp, n);
          // rows [begin, end) of windows^T: A(i, lo) = win[i + lo * S * C]
          kernels::gemm_bcast<F>(end - begin, lo_n, win + begin, 1, S * C,
                                 dy + r * output_shape::size, grads[0] + begin * F, any);
          any = true;
        }
        if (!any) kernels::fill((end - begin) * F, T(0), grads[0] + begin * F);
      });
    }
    if constexpr (bias_grad) {  // per sample, then added sample after sample
      T* part = ws + parallel::max_threads * training_slot;
      if (rows == 0) kernels::fill(F, T(0), grads[1]);
      for (std::size_t r = 0; r < rows; ++r) {
        kernels::column_sum<F>(output_length(m.length(r, L)), dy + r * output_shape::size,
                               r == 0 ? grads[1] : part, false);
        if (r > 0)
          for (std::size_t f = 0; f < F; ++f) grads[1][f] += part[f];
      }
    }
  }

 private:
  static constexpr std::size_t padded_values = LP * C;  // one padded sample
  static constexpr std::size_t pad_elements = P > 0 ? aligned_count<T>(padded_values) : 0;
  static constexpr std::size_t dwin_elements = aligned_count<T>(LO * KC);
  static constexpr std::size_t forward_slot = pad_elements;
  static constexpr std::size_t training_slot =
      pad_elements > dwin_elements ? pad_elements : dwin_elements;
  static constexpr std::size_t db_elements = Bias ? aligned_count<T>(F) : 0;

  // The padded copy's P zero rows at each end (once per call: the copies write only the inside).
  static void zero_border(T* xp) noexcept {
    if constexpr (P > 0) {
      kernels::fill(P * C, T(0), xp);
      kernels::fill(P * C, T(0), xp + (P + L) * C);
    } else {
      (void)xp;
    }
  }
  // Sample r (valid length n) as the rows the windows read: x itself without padding (the
  // first output_length(n) windows end at row n - 1 at the latest), else its first n rows copied
  // inside xp, zeros after them (a sequence of n rows with its own padding).
  static const T* windows(const T* x, std::size_t r, T* xp, std::size_t n) noexcept {
    const T* xr = x + r * input_shape::size;
    if constexpr (P > 0) {
      kernels::copy(n * C, xr, xp + P * C);
      if (n < L) kernels::fill((L - n) * C, T(0), xp + (P + n) * C);
      return xp;
    } else {
      (void)xp;
      (void)n;
      return xr;
    }
  }
  // dx (one sample, overwritten) = 0 + dwin[lo][k * C + c] added at input row lo * S + k - P,
  // windows in order lo ascending; the entries that fall on the padding are dropped. A window's
  // taps inside the input are contiguous in both dwin and dx. (Plain loops, which the compiler
  // vectorises: an element-wise sum has the same bits either way. kernels::add, inlined here,
  // trips g++ 12's -Waggressive-loop-optimizations on its scalar tail.)
  static void col2seq(const T* dwin, T* dx, std::size_t lo_n) noexcept {
    kernels::fill(L * C, T(0), dx);
    for (std::size_t lo = 0; lo < lo_n; ++lo) {
      const std::size_t first = lo * S;  // padded row of tap 0
      // taps [k0, k1) read the input (none when P >= K puts the whole window in the padding)
      const std::size_t k0 = first >= P ? 0 : (P - first < K ? P - first : K);
      const std::size_t k1 = first + K <= L + P ? K : (first < L + P ? L + P - first : 0);
      if (k0 >= k1) continue;
      const T* src = dwin + lo * KC + k0 * C;
      T* dst = dx + (first + k0 - P) * C;
      for (std::size_t i = 0; i < (k1 - k0) * C; ++i) dst[i] += src[i];
    }
  }
};

/// F filters of K positions over a sequence [L, C] (position-major). Options: pad<P>, stride<S>,
/// no_bias, an initialiser.
template <std::size_t F, std::size_t K, class... Options> struct conv1d {
  static_assert(F > 0 && K > 0, "graft: conv1d<F, K> needs F > 0 and K > 0");
  static constexpr std::size_t padding = detail::option_value<pad, 0, Options...>();
  static constexpr std::size_t step = detail::option_value<stride, 1, Options...>();
  static constexpr bool has_bias = !(std::is_same_v<Options, no_bias> || ...);
  using init_type = typename detail::first_init<Options...>::type;
  using expects = diagnostics::expects_a_length_x_channels_sequence_at_least_as_long_as_the_kernel;
  template <class In> static constexpr bool accepts_impl() {
    if constexpr (Shape<In> && In::rank == 2)
      return In::dims[0] + 2 * padding >= K;
    else
      return false;
  }
  template <class In> static constexpr bool accepts = accepts_impl<In>();
  template <class T, class In> using bind =
      conv1d_layer<T, In::dims[0], In::dims[1], F, K, step, padding, has_bias, init_type>;
};

GRAFT_END_NAMESPACE
