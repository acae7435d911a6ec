// multi_head_attention<H, options...>: multi-head self-attention on a sequence [L, D] -> [L, D]
// (as PyTorch's nn.MultiheadAttention(D, H, batch_first=True) called as mha(x, x, x), without
// dropout), for token models after an embedding. Option: causal (query i sees keys j <= i).
// Design: docs/design/sequence_models.md, section 2.
//
// Layout. A sequence is [L, D] row-major, position-major (what the embedding layer and conv1d
// write). With dh = D / H and s = 1 / sqrt(dh), per sample:
//   [q k v] = x W_qkv + b_qkv        W_qkv [D, 3D]: columns [0, D) Q, [D, 2D) K, [2D, 3D) V;
//                                    head h uses columns h dh .. (h + 1) dh of each
//   P_h     = softmax_rows(s Q_h K_h^T)   over the valid keys only (see Padding)
//   o       = [P_0 V_0, ..., P_{H-1} V_{H-1}]   (heads side by side: [L, D])
//   y       = o W_o + b_o                W_o [D, D]
// PyTorch's in_proj_weight [3D, D] is the transpose of W_qkv, out_proj.weight the transpose of
// W_o (io/safetensors.hpp converts). Initialisation as nn.MultiheadAttention's: W_qkv
// xavier-uniform (fan_in D, fan_out 3D), W_o as nn.Linear (U(-1/sqrt(D), 1/sqrt(D))), biases 0.
//
// Padding. The layer is masked (layers/layer.hpp, sequence_use::masked): sample r has n =
// m.length(r, L) valid positions. Only rows < n of x are read; query i attends to keys j < n
// (and j <= i with causal); the output rows >= n are exact 0 and so is the input gradient there;
// dy's rows >= n are ignored. n = 0 gives all zeros. So a padded sample gives bitwise the output
// of the same sample in the layer of length n. (PyTorch gives NaN for a query whose keys are all
// masked; graft gives 0 at padded query rows, which no valid row ever reads.)
//
// Orders (bitwise the same on every instruction set with FMA and for any thread count, and a
// sample's output and input gradient whatever the batch it is in; every product goes through
// gemm_bcast / gemm_nt_packed, kernels/gemm.hpp, with I = n):
//   q, k, v, y     one fmadd chain from the bias over d ascending;
//   scores         one chain over c < dh ascending;
//   softmax        in double with graft's exp: z_j = s S_ij, M = max_j z_j (j ascending; a NaN
//                  wins, so a NaN row stays NaN), e_j = exp(z_j - M), sum over j ascending, P_ij =
//                  T(e_j / sum): every exponent <= 0 and the sum >= 1, so it never overflows;
//   o              one chain over j < n ascending (the causal zeros included);
//   dO, dP, dx     one chain over the inner index ascending (gemm_nt_packed);
//   dS             in double: s P_ij (dP_ij - sum_k P_ik dP_ik), k ascending, rounded once;
//   dq, dk, dv     one chain over j (resp. i) < n ascending;
//   dW_qkv, dW_o   one chain over (sample, valid row) ascending (the rows of dW split between
//                  threads, as conv1d does);
//   db_qkv, db_o   0 + rows ascending per sample, then the samples added in order (so that the
//                  device trainer, which adds per-sample gradients, gets the same bits).
//
// Backward recomputes the forward internals of each sample (q, k, v, each head's P, o) from x:
// nothing is kept from the forward. So forward_train is forward, and backward also works after
// the device trainer's evaluation forward, whose workspace other layers overwrite in between.
//
// Scratch memory (the caller's workspace; no static, thread_local or heap buffers): per thread
// slot the q, k, v rows of one sample, the same rearranged head by head, one head's [L, L]
// probabilities; in training also one head's dP / dS and dq, dk, dv, plus o and dqkv of every
// sample (the row-split weight-gradient passes) and a bias gradient. The softmax keeps L doubles
// on the stack.
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>

#include "graft/kernels/elementwise.hpp"
#include "graft/kernels/gemm.hpp"
#include "graft/kernels/parallel.hpp"
#include "graft/layers/init.hpp"
#include "graft/layers/layer.hpp"
#include "graft/layers/workspace.hpp"
#include "graft/numeric/math.hpp"
#include "graft/tensor/tensor.hpp"

GRAFT_BEGIN_NAMESPACE

/// Option of multi_head_attention: query i attends to keys j <= i only.
struct causal {};

/// Option of multi_head_attention: rank-R LoRA adapters on the query and value projections
/// (Hu et al.): q += s (x A_q) B_q, v += s (x A_v) B_v with s = Alpha / R; A uniform in
/// [-1/sqrt(D), 1/sqrt(D)], B = 0. The adapters are four more parameter tensors (tag adapter):
/// freeze::adapters_only trains them alone; merge_adapters folds them into W_qkv.
template <std::size_t R, std::size_t Alpha = R> struct lora_qv {
  static_assert(R > 0, "graft: lora_qv<R> needs a rank R > 0");
};

namespace detail {
template <class O> struct lora_qv_of { static constexpr std::size_t rank = 0, alpha = 0; };
template <std::size_t R, std::size_t A> struct lora_qv_of<lora_qv<R, A>> {
  static constexpr std::size_t rank = R, alpha = A;
};
template <class O> inline constexpr bool is_lora_qv_v = lora_qv_of<O>::rank > 0;

/// The adapters of an attention layer with lora_qv<R>: A_q, B_q, A_v, B_v.
template <class T, std::size_t D, std::size_t R> struct attention_adapters {
  tensor<T, D, R> a_q;
  tensor<T, R, D> b_q;
  tensor<T, D, R> a_v;
  tensor<T, R, D> b_v;
};
template <class T, std::size_t D> struct attention_adapters<T, D, 0> {};
}  // namespace detail

/// Bound multi-head self-attention: input and output [L, D], H heads of D / H.
template <class T, std::size_t L, std::size_t D, std::size_t H, bool Causal, std::size_t R = 0,
          std::size_t Alpha = 0>
class multi_head_attention_layer {
  static_assert(H > 0 && D % H == 0,
                "graft: multi_head_attention<H>: the width D of its [L, D] input must be a "
                "multiple of the number of heads H (each head gets D / H features)");

 public:
  static constexpr std::size_t heads = H;
  static constexpr std::size_t dh = D / H;  ///< features per head
  static constexpr std::size_t D3 = 3 * D;
  static constexpr bool is_causal = Causal;
  using scalar = T;
  using input_shape = shape<L, D>;
  using output_shape = shape<L, D>;
  static constexpr sequence_use sequence = sequence_use::masked;
  static constexpr std::size_t lora_rank = R;  ///< 0: no adapters
  static constexpr std::size_t lora_alpha = Alpha;
  static constexpr std::size_t parameter_count = D * D3 + D3 + D * D + D + 4 * D * R;
  static constexpr auto params = [] {
    constexpr param_desc base[4] = {{D * D3, role::weight, param_tag::attention},
                                    {D3, role::bias, param_tag::attention},
                                    {D * D, role::weight, param_tag::attention},
                                    {D, role::bias, param_tag::attention}};
    if constexpr (R == 0) {
      return std::array<param_desc, 4>{{base[0], base[1], base[2], base[3]}};
    } else {
      constexpr param_desc a{D * R, role::weight, param_tag::adapter};
      return std::array<param_desc, 8>{{base[0], base[1], base[2], base[3], a, a, a, a}};
    }
  }();
  /// s = Alpha / R (0 without adapters)
  static constexpr T lora_scale =
      R == 0 ? T(0) : static_cast<T>(static_cast<double>(Alpha) / static_cast<double>(R));

  tensor<T, D, D3> w_qkv;  ///< [D, 3D]: PyTorch's in_proj_weight transposed
  tensor<T, D3> b_qkv;     ///< PyTorch's in_proj_bias
  tensor<T, D, D> w_o;     ///< [D, D]: PyTorch's out_proj.weight transposed
  tensor<T, D> b_o;        ///< PyTorch's out_proj.bias
  [[no_unique_address]] detail::attention_adapters<T, D, R> adapters;  ///< with lora_qv<R>

  static std::string name() {
    std::string s = "multi_head_attention<";  // piece by piece: g++ 12's false -Wrestrict
    s += std::to_string(H);
    if (Causal) s += ",causal";
    if (R > 0) {
      s += ",lora_qv<";
      s += std::to_string(R);
      s += ',';
      s += std::to_string(Alpha);
      s += '>';
    }
    s += '>';
    return s;
  }
  T* param(std::size_t j) noexcept {
    if constexpr (R > 0) {
      if (j == 4) return adapters.a_q.data();
      if (j == 5) return adapters.b_q.data();
      if (j == 6) return adapters.a_v.data();
      if (j == 7) return adapters.b_v.data();
    }
    return j == 0 ? w_qkv.data() : j == 1 ? b_qkv.data() : j == 2 ? w_o.data() : b_o.data();
  }
  const T* param(std::size_t j) const noexcept {
    return const_cast<multi_head_attention_layer*>(this)->param(j);
  }

  /// nn.MultiheadAttention's: xavier_uniform_(in_proj_weight) (fan_in D, fan_out 3D), out_proj
  /// as nn.Linear(D, D), both biases 0.
  void init(splitmix64& rng) {
    init::glorot::weight(w_qkv.data(), D * D3, D, D3, rng);
    init::pytorch::weight(w_o.data(), D * D, D, D, rng);
    b_qkv.fill(T(0));
    b_o.fill(T(0));
    if constexpr (R > 0) init_adapters(rng);
  }
  /// A_q, A_v uniform in [-1/sqrt(D), 1/sqrt(D)] (nn.Linear's default), B_q = B_v = 0.
  void init_adapters(splitmix64& rng) requires(R > 0) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(D));
    for (std::size_t i = 0; i < D * R; ++i)
      adapters.a_q.data()[i] = static_cast<T>(rng.uniform(-bound, bound));
    for (std::size_t i = 0; i < D * R; ++i)
      adapters.a_v.data()[i] = static_cast<T>(rng.uniform(-bound, bound));
    adapters.b_q.fill(T(0));
    adapters.b_v.fill(T(0));
  }

  /// Workspace elements. Evaluation: per thread slot (at most one per sample) one sample's
  /// internals. Training: per slot one sample's internals and one head's gradients, plus o and
  /// dqkv of every sample and one bias gradient.
  static constexpr std::size_t inference_workspace(std::size_t rows) noexcept {
    return slots(rows) * forward_slot;
  }
  static constexpr std::size_t training_workspace(std::size_t rows) noexcept {
    return aligned_count<T>(rows * L * D) + aligned_count<T>(rows * L * D3) +
           slots(rows) * training_slot + aligned_count<T>(D3) + lora_training(rows);
  }

  /// Samples are independent: with threads (parallel.hpp) they are split between them, each with
  /// its own slot of ws; every sample's result is the same either way.
  void forward(const T* x, T* y, std::size_t rows, T* ws, sequence_mask m = {}) const noexcept {
    const auto p = pointers();
    forward_from(p.data(), nullptr, x, y, rows, ws, m);
  }
  /// Training forward: the evaluation forward (backward recomputes what it needs).
  template <train_mode> void forward_train(const T* x, T* y, std::size_t rows, T* ws,
                                           sequence_mask m = {}) const noexcept {
    forward(x, y, rows, ws, m);
  }
  /// The same from constant parameters p (w_qkv, b_qkv, w_o, b_o) read in place (a
  /// constant_model: weights compiled into the program).
  static void forward_from(const T* const* p, const T* const* /*buffers*/, const T* x, T* y,
                           std::size_t rows, T* ws, sequence_mask m = {}) noexcept {
    parallel::for_slots(rows, 1, [&](std::size_t begin, std::size_t end, std::size_t slot) {
      T* s = ws + slot * forward_slot;
      T* qkv = s;
      T* hd = qkv + qkv_elements;
      T* pr = hd + heads_elements;
      T* o = pr + probs_elements;
      for (std::size_t r = begin; r < end; ++r) {
        const std::size_t n = m.length(r, L);
        T* yr = y + r * L * D;
        project_qkv(p, x + r * L * D, n, qkv, hd, s + forward_slot - lora_slot, nullptr, nullptr);
        kernels::fill(L * D, T(0), o);
        for (std::size_t h = 0; h < H; ++h) {
          probabilities(hd, h, n, pr);
          head_output(hd, h, n, pr, qkv, o);  // qkv is free again: one head's output there
        }
        for (std::size_t i = 0; i < n; ++i) kernels::copy(D, p[3], yr + i * D);
        if (n > 0) kernels::gemm_bcast<D>(n, D, o, D, 1, p[2], yr, true);
        kernels::fill((L - n) * D, T(0), yr + n * D);
      }
    });
  }

  template <bool InputGrad, unsigned GradMask, train_mode Mode>
  void backward(const T* x, const T* y, const T* dy, T* dx, T* const* grads, std::size_t rows,
                T* ws, sequence_mask m = {}) const noexcept {
    const auto p = pointers();
    backward_from<InputGrad, GradMask, Mode>(p.data(), nullptr, x, y, dy, dx, grads, rows, ws, m);
  }
  /// The same from parameters p read in place (training on a device: train/device.hpp). Per
  /// sample (threads split the samples): the forward internals recomputed, then head by head dO,
  /// dP, dv, dS, dq, dk into the sample's dqkv, then dx = dqkv W_qkv^T. Then the weight gradients
  /// over every sample (threads split the rows of dW) and the bias gradients sample after sample.
  template <bool InputGrad, unsigned GradMask, train_mode>
  static void backward_from(const T* const* p, const T* const* /*buffers*/, const T* x,
                            const T* /*y*/, const T* dy, T* dx, T* const* grads, std::size_t rows,
                            T* ws, sequence_mask m = {}) noexcept {
    constexpr bool wqkv_grad = (GradMask & 1U) != 0;
    constexpr bool bqkv_grad = (GradMask & 2U) != 0;
    constexpr bool wo_grad = (GradMask & 4U) != 0;
    constexpr bool bo_grad = (GradMask & 8U) != 0;
    constexpr bool lora_grad = R > 0 && (GradMask & 0xF0U) != 0;
    constexpr bool need_dqkv = InputGrad || wqkv_grad || bqkv_grad || lora_grad;
    T* o_all = ws;
    T* dqkv_all = o_all + aligned_count<T>(rows * L * D);
    T* slots_at = dqkv_all + aligned_count<T>(rows * L * D3);
    T* part = slots_at + slots(rows) * training_slot;
    // LoRA (lora_qv): per sample t_q, t_v (s x A), dt_q, dt_v (s dQ B^T), dQ and dV contiguous
    T* lora_at = part + aligned_count<T>(D3);
    const std::size_t lr = R > 0 ? aligned_count<T>(rows * L * R) : 0;
    const std::size_t ld = R > 0 ? aligned_count<T>(rows * L * D) : 0;
    T* t_all[2] = {lora_at, lora_at + lr};
    T* dt_all[2] = {lora_at + 2 * lr, lora_at + 3 * lr};
    T* dc_all[2] = {lora_at + 4 * lr, lora_at + 4 * lr + ld};
    if constexpr (need_dqkv || wo_grad)
      parallel::for_slots(rows, 1, [&](std::size_t begin, std::size_t end, std::size_t slot) {
        T* qkv = slots_at + slot * training_slot;  // then do's head, one head's output
        T* hd = qkv + qkv_elements;
        T* pr = hd + heads_elements;
        T* dp = pr + probs_elements;
        T* dh3 = dp + probs_elements;  // dq, dk, dv of one head
        T* oh = qkv;                   // one head's output
        T* doh = qkv + L * dh;         // one head's dO
        for (std::size_t r = begin; r < end; ++r) {
          const std::size_t n = m.length(r, L);
          const T* dyr = dy + r * L * D;
          T* o = o_all + r * L * D;
          T* dq = dqkv_all + r * L * D3;
          T* tr[2] = {t_all[0] + r * L * R, t_all[1] + r * L * R};
          project_qkv(p, x + r * L * D, n, qkv, hd, qkv + training_slot - lora_slot,
                      R > 0 ? tr[0] : nullptr, R > 0 ? tr[1] : nullptr);
          if constexpr (wo_grad) kernels::fill(L * D, T(0), o);
          if constexpr (need_dqkv) kernels::fill(L * D3, T(0), dq);
          for (std::size_t h = 0; h < H; ++h) {
            probabilities(hd, h, n, pr);
            if constexpr (wo_grad) head_output(hd, h, n, pr, oh, o);
            if constexpr (need_dqkv) head_gradients(p, hd, h, n, pr, dyr, doh, dp, dh3, dq);
          }
          if constexpr (R > 0 && (InputGrad || lora_grad)) {
            // dQ, dV contiguous; dt = s dQ B^T (and the same for v)
            for (std::size_t t = 0; t < 2; ++t) {
              T* dc = dc_all[t] + r * L * D;
              T* dt = dt_all[t] + r * L * R;
              for (std::size_t i = 0; i < n; ++i)
                kernels::copy(D, dq + i * D3 + 2 * t * D, dc + i * D);
              if (n > 0) kernels::gemm_nt_packed<R, D>(n, dc, p[5 + 2 * t], dt);
              for (std::size_t i = 0; i < n * R; ++i) dt[i] *= lora_scale;
            }
          }
          if constexpr (InputGrad) {
            T* dxr = dx + r * L * D;
            if (n > 0) kernels::gemm_nt_packed<D, D3>(n, dq, p[0], dxr);
            if constexpr (R > 0)  // + dt_q A_q^T + dt_v A_v^T
              for (std::size_t t = 0; t < 2; ++t)
                if (n > 0)
                  kernels::gemm_nt_packed<D, R>(n, dt_all[t] + r * L * R, p[4 + 2 * t], dxr, true);
            kernels::fill((L - n) * D, T(0), dxr + n * D);
          }
        }
      });
    if constexpr (wqkv_grad || wo_grad)  // dW = sum over (sample, valid row) of x^T dqkv, o^T dy
      parallel::for_slots(D, 8, [&](std::size_t begin, std::size_t end, std::size_t) {
        if constexpr (wqkv_grad) kernels::fill((end - begin) * D3, T(0), grads[0] + begin * D3);
        if constexpr (wo_grad) kernels::fill((end - begin) * D, T(0), grads[2] + begin * D);
        for (std::size_t r = 0; r < rows; ++r) {
          const std::size_t n = m.length(r, L);
          if (n == 0) continue;
          // rows [begin, end) of x_r^T: A(i, l) = x_r[l * D + i]
          if constexpr (wqkv_grad)
            kernels::gemm_bcast<D3>(end - begin, n, x + r * L * D + begin, 1, D,
                                    dqkv_all + r * L * D3, grads[0] + begin * D3, true);
          if constexpr (wo_grad)
            kernels::gemm_bcast<D>(end - begin, n, o_all + r * L * D + begin, 1, D, dy + r * L * D,
                                   grads[2] + begin * D, true);
        }
      });
    if constexpr (lora_grad) {  // sample after sample, valid rows ascending
      for (std::size_t t = 0; t < 2; ++t) {
        constexpr unsigned a_bit = 1U << 4, b_bit = 1U << 5;
        const bool ga = (GradMask & (a_bit << (2 * t))) != 0;
        const bool gb = (GradMask & (b_bit << (2 * t))) != 0;
        T* da = grads[4 + 2 * t];
        T* db = grads[5 + 2 * t];
        bool any = false;
        for (std::size_t r = 0; r < rows; ++r) {
          const std::size_t n = m.length(r, L);
          if (n == 0) continue;
          if (ga)  // dA = x^T dt
            kernels::gemm_bcast<R>(D, n, x + r * L * D, 1, D, dt_all[t] + r * L * R, da, any);
          if (gb)  // dB = t^T dQ
            kernels::gemm_bcast<D>(R, n, t_all[t] + r * L * R, 1, R, dc_all[t] + r * L * D, db,
                                   any);
          any = true;
        }
        if (!any) {
          if (ga) kernels::fill(D * R, T(0), da);
          if (gb) kernels::fill(R * D, T(0), db);
        }
      }
    }
    if constexpr (bqkv_grad) bias_gradient<D3>(dqkv_all, rows, m, part, grads[1]);
    if constexpr (bo_grad) bias_gradient<D>(dy, rows, m, part, grads[3]);
  }

 private:
  static constexpr std::size_t qkv_elements = aligned_count<T>(L * D3);
  static constexpr std::size_t heads_elements = aligned_count<T>(3 * L * D);
  static constexpr std::size_t probs_elements = aligned_count<T>(L * L);
  static constexpr std::size_t out_elements = aligned_count<T>(L * D);
  // with lora_qv: one sample's q or v delta and its t = s x A (when not kept)
  static constexpr std::size_t lora_slot =
      R == 0 ? 0 : aligned_count<T>(L * D) + aligned_count<T>(L * (R > 0 ? R : 1));
  static constexpr std::size_t forward_slot =
      qkv_elements + heads_elements + probs_elements + out_elements + lora_slot;
  // LoRA's scratch in training: t_q, t_v, dt_q, dt_v of every sample, and dQ, dV contiguous.
  static constexpr std::size_t lora_training(std::size_t rows) noexcept {
    return R == 0 ? 0 : 4 * aligned_count<T>(rows * L * R) + 2 * aligned_count<T>(rows * L * D);
  }
  auto pointers() const noexcept {
    if constexpr (R == 0) {
      return std::array<const T*, 4>{w_qkv.data(), b_qkv.data(), w_o.data(), b_o.data()};
    } else {
      return std::array<const T*, 8>{w_qkv.data(),        b_qkv.data(),        w_o.data(),
                                     b_o.data(),          adapters.a_q.data(), adapters.b_q.data(),
                                     adapters.a_v.data(), adapters.b_v.data()};
    }
  }
  static constexpr std::size_t training_slot =
      qkv_elements + heads_elements + 2 * probs_elements + aligned_count<T>(3 * L * dh) + lora_slot;
  static_assert(2 * L * dh <= qkv_elements, "one head's output and dO fit where qkv was");

  static constexpr std::size_t slots(std::size_t rows) noexcept {
    return rows < parallel::max_threads ? (rows > 0 ? rows : 1) : parallel::max_threads;
  }
  // Head h's block t (0: Q, 1: K, 2: V) of the rearranged heads: [L, dh], rows >= n zero.
  static T* block(T* hd, std::size_t t, std::size_t h) noexcept {
    return hd + (t * H + h) * L * dh;
  }
  static const T* block(const T* hd, std::size_t t, std::size_t h) noexcept {
    return hd + (t * H + h) * L * dh;
  }
  // The keys query i sees among the n valid positions.
  static constexpr std::size_t keys(std::size_t i, std::size_t n) noexcept {
    if constexpr (Causal)
      return i + 1 < n ? i + 1 : n;
    else
      return n;
  }

  // db[i] = sum over samples, in order, of (0 + g_r[l][i] over the valid rows l ascending), with
  // g_r = g + r L N (column_sum per sample, as the device trainer adds them). 0 for no rows.
  template <std::size_t N> static void bias_gradient(const T* g, std::size_t rows, sequence_mask m,
                                                     T* part, T* db) noexcept {
    if (rows == 0) kernels::fill(N, T(0), db);
    for (std::size_t r = 0; r < rows; ++r) {
      kernels::column_sum<N>(m.length(r, L), g + r * L * N, r == 0 ? db : part, false);
      if (r > 0)
        for (std::size_t i = 0; i < N; ++i) db[i] += part[i];
    }
  }

  // qkv[l] = b_qkv + x_r[l] W_qkv for l < n (with lora_qv, then q += t_q B_q and v += t_v B_v,
  // t = s x A, into tq / tv when given, else into scratch; delta: L x D scratch), then rearranged
  // head by head into hd (hd[t][h][l][c] = qkv[l][t D + h dh + c]; rows l >= n zero).
  static void project_qkv(const T* const* p, const T* xr, std::size_t n, T* qkv, T* hd,
                          [[maybe_unused]] T* delta, [[maybe_unused]] T* tq,
                          [[maybe_unused]] T* tv) noexcept {
    for (std::size_t i = 0; i < n; ++i) kernels::copy(D3, p[1], qkv + i * D3);
    if (n > 0) kernels::gemm_bcast<D3>(n, D, xr, D, 1, p[0], qkv, true);
    if constexpr (R > 0) {
      if (n > 0)
        for (std::size_t t = 0; t < 2; ++t) {
          // t_x = s x A (tq / tv, or the delta scratch's tail when not kept), delta = t_x B
          T* tx = t == 0 ? tq : tv;
          if (tx == nullptr) tx = delta + aligned_count<T>(L * D);
          kernels::gemm_bcast<R>(n, D, xr, D, 1, p[4 + 2 * t], tx, false);
          for (std::size_t i = 0; i < n * R; ++i) tx[i] *= lora_scale;
          kernels::gemm_bcast<D>(n, R, tx, R, 1, p[5 + 2 * t], delta, false);
          for (std::size_t i = 0; i < n; ++i)
            for (std::size_t c = 0; c < D; ++c) qkv[i * D3 + 2 * t * D + c] += delta[i * D + c];
        }
    }
    for (std::size_t t = 0; t < 3; ++t)
      for (std::size_t h = 0; h < H; ++h) {
        T* b = block(hd, t, h);
        for (std::size_t l = 0; l < n; ++l)
          kernels::copy(dh, qkv + l * D3 + t * D + h * dh, b + l * dh);
        kernels::fill((L - n) * dh, T(0), b + n * dh);
      }
  }

  // Head h's probabilities P [n rows of L]: row i < n holds P_ij at the keys j < keys(i, n) and
  // 0 at the other j < n (columns >= n are never read).
  static void probabilities(const T* hd, std::size_t h, std::size_t n, T* pr) noexcept {
    if (n == 0) return;
    kernels::gemm_nt_packed<L, dh>(n, block(hd, 0, h), block(hd, 1, h), pr);  // S = Q K^T
    const double s = 1.0 / std::sqrt(static_cast<double>(dh));
    double e[L];
    for (std::size_t i = 0; i < n; ++i) {
      T* row = pr + i * L;
      const std::size_t k = keys(i, n);
      double mx = static_cast<double>(row[0]) * s;
      for (std::size_t j = 1; j < k; ++j) {
        const double z = static_cast<double>(row[j]) * s;
        if (z > mx || (std::isnan(z) && !std::isnan(mx))) mx = z;
      }
      double sum = 0;
      for (std::size_t j = 0; j < k; ++j) {
        e[j] = math::exp(static_cast<double>(row[j]) * s - mx);
        sum += e[j];
      }
      for (std::size_t j = 0; j < k; ++j) row[j] = static_cast<T>(e[j] / sum);
      for (std::size_t j = k; j < n; ++j) row[j] = T(0);
    }
  }

  // o[i][h dh + c] = sum_{j < n} P_ij V_h[j][c] for i < n (oh: scratch of one head's [n, dh]).
  static void head_output(const T* hd, std::size_t h, std::size_t n, const T* pr, T* oh,
                          T* o) noexcept {
    if (n == 0) return;
    kernels::gemm_bcast<dh>(n, n, pr, L, 1, block(hd, 2, h), oh, false);
    for (std::size_t i = 0; i < n; ++i) kernels::copy(dh, oh + i * dh, o + i * D + h * dh);
  }

  // Head h's share of dqkv (rows < n; dq is zero elsewhere), from dy's rows < n.
  static void head_gradients(const T* const* p, const T* hd, std::size_t h, std::size_t n,
                             const T* pr, const T* dyr, T* doh, T* dp, T* dh3, T* dq) noexcept {
    if (n == 0) return;
    const T* Q = block(hd, 0, h);
    const T* K = block(hd, 1, h);
    const T* V = block(hd, 2, h);
    // dO_h = dy W_o[h dh .. (h + 1) dh, :]^T  (the columns of do = dy W_o^T of head h)
    kernels::gemm_nt_packed<dh, D>(n, dyr, p[2] + h * dh * D, doh);
    kernels::gemm_nt_packed<L, dh>(n, doh, V, dp);  // dP = dO V^T
    T* dq_h = dh3;
    T* dk_h = dh3 + L * dh;
    T* dv_h = dh3 + 2 * L * dh;
    kernels::gemm_bcast<dh>(n, n, pr, 1, L, doh, dv_h, false);  // dv_h = P^T dO
    const double s = 1.0 / std::sqrt(static_cast<double>(dh));
    for (std::size_t i = 0; i < n; ++i) {  // dS in place of dP
      const T* pi = pr + i * L;
      T* di = dp + i * L;
      const std::size_t k = keys(i, n);
      double dot = 0;
      for (std::size_t j = 0; j < k; ++j)
        dot += static_cast<double>(pi[j]) * static_cast<double>(di[j]);
      for (std::size_t j = 0; j < k; ++j)
        di[j] = static_cast<T>(s * static_cast<double>(pi[j]) * (static_cast<double>(di[j]) - dot));
      for (std::size_t j = k; j < n; ++j) di[j] = T(0);
    }
    kernels::gemm_bcast<dh>(n, n, dp, L, 1, K, dq_h, false);  // dq_h = dS K
    kernels::gemm_bcast<dh>(n, n, dp, 1, L, Q, dk_h, false);  // dk_h = dS^T Q
    for (std::size_t i = 0; i < n; ++i) {
      T* row = dq + i * D3 + h * dh;
      kernels::copy(dh, dq_h + i * dh, row);
      kernels::copy(dh, dk_h + i * dh, row + D);
      kernels::copy(dh, dv_h + i * dh, row + 2 * D);
    }
  }
};

/// Multi-head self-attention with H heads on a sequence [L, D] (D a multiple of H); option
/// causal. See the file comment.
template <std::size_t H, class... Options> struct multi_head_attention {
  static_assert(H > 0, "graft: multi_head_attention<H> needs H > 0 heads");
  static_assert(((std::is_same_v<Options, causal> || detail::is_lora_qv_v<Options>)&&...),
                "graft: multi_head_attention<H, options...>: the options are causal and "
                "lora_qv<R, Alpha>");
  static constexpr bool is_causal = (std::is_same_v<Options, causal> || ...);
  static constexpr std::size_t lora_rank =
      (std::size_t{0} + ... + detail::lora_qv_of<Options>::rank);
  static constexpr std::size_t lora_alpha =
      (std::size_t{0} + ... + detail::lora_qv_of<Options>::alpha);
  using expects =
      diagnostics::expects_a_sequence_of_rows_length_x_width_such_as_an_embedding_output;
  template <class In> static constexpr bool accepts_impl() {
    if constexpr (Shape<In> && In::rank == 2)
      return true;
    else
      return false;
  }
  template <class In> static constexpr bool accepts = accepts_impl<In>();
  template <class T, class In> using bind =
      multi_head_attention_layer<T, In::dims[0], In::dims[1], H, is_causal, lora_rank, lora_alpha>;
};

GRAFT_END_NAMESPACE
