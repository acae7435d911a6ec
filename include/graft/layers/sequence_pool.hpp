// Pooling over time: global_max_pool_time and global_mean_pool_time take a sequence [L, C]
// (position-major, as conv1d and the embedding layer write it) to one value per channel, [C].
//
//   max:  y[c] = the first maximum of x[0][c] .. x[L-1][c] (an element replaces the best so far
//         when it is larger, or when it is NaN and the best is not: max_pool's rule); the
//         gradient goes to that element only, so ties send it to the earliest position;
//   mean: y[c] = (0 + x[0][c] + ... + x[L-1][c], positions ascending) / L; dx[l][c] = dy[c] / L.
//
// Exact (max) or in a fixed order (mean): the same bits on every instruction set and thread
// count. Samples are independent: with threads they are split between them.
//
// Padding. Both layers are masked (layers/layer.hpp, sequence_use::masked): through the workspace
// forms they pool each sample over its first n positions only (n from the sequence_mask; the rest
// is padding: ignored by the forward, given a zero gradient; n = 0 gives 0). In a token model
// (input_tokens<L, V>) the lengths come from the ids: the position of the first pad id, mapped
// through the layers below that change lengths (conv1d). forward_lengths / backward_lengths are
// the same computation with the lengths as a plain pointer.
#pragma once
#include <cmath>
#include <cstddef>
#include <string>

#include "graft/kernels/elementwise.hpp"
#include "graft/kernels/parallel.hpp"
#include "graft/layers/layer.hpp"

GRAFT_BEGIN_NAMESPACE

namespace detail {
template <class T, std::size_t L, std::size_t C, bool Max> class time_pool_layer
    : public without_parameters<T> {
 public:
  using scalar = T;
  using input_shape = shape<L, C>;
  using output_shape = shape<C>;

  static std::string name() { return Max ? "global_max_pool_time" : "global_mean_pool_time"; }

  /// Masked (layers/layer.hpp): sample r is pooled over its first m.length(r) positions; the
  /// output is flat, so the lengths end here. No scratch: the workspace forms take 0 elements.
  static constexpr sequence_use sequence = sequence_use::masked;
  static constexpr std::size_t training_workspace(std::size_t) noexcept { return 0; }
  static constexpr std::size_t inference_workspace(std::size_t) noexcept { return 0; }

  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    forward_lengths(x, y, rows, nullptr);
  }
  void forward(const T* x, T* y, std::size_t rows, T* /*ws*/, sequence_mask m = {}) const noexcept {
    forward_lengths(x, y, rows, m.lengths);
  }
  template <train_mode> void forward_train(const T* x, T* y, std::size_t rows, T* /*ws*/,
                                           sequence_mask m = {}) const noexcept {
    forward_lengths(x, y, rows, m.lengths);
  }
  template <bool InputGrad, unsigned> void backward(const T* x, const T* /*y*/, const T* dy, T* dx,
                                                    T* const* /*grads*/,
                                                    std::size_t rows) const noexcept {
    if constexpr (InputGrad) backward_lengths(x, dy, dx, rows, nullptr);
  }
  template <bool InputGrad, unsigned, train_mode>
  void backward(const T* x, const T* /*y*/, const T* dy, T* dx, T* const* /*grads*/,
                std::size_t rows, T* /*ws*/, sequence_mask m = {}) const noexcept {
    if constexpr (InputGrad) backward_lengths(x, dy, dx, rows, m.lengths);
  }

  /// The forward over the first lengths[r] positions of sample r (all L when lengths is null;
  /// a length above L counts as L).
  static void forward_lengths(const T* x, T* y, std::size_t rows,
                              const std::size_t* lengths) noexcept {
    parallel::for_rows(rows, input_shape::size, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        const T* xr = x + r * input_shape::size;
        T* yr = y + r * C;
        const std::size_t n = length(lengths, r);
        if (n == 0) {
          kernels::fill(C, T(0), yr);
        } else if constexpr (Max) {
          std::size_t at[block];
          for (std::size_t c0 = 0; c0 < C; c0 += block)
            first_max(xr, n, c0, width(c0), at, yr + c0);
        } else {
          kernels::fill(C, T(0), yr);
          for (std::size_t l = 0; l < n; ++l)
            for (std::size_t c = 0; c < C; ++c) yr[c] += xr[l * C + c];
          for (std::size_t c = 0; c < C; ++c) yr[c] /= static_cast<T>(n);
        }
      }
    });
  }
  /// The input gradient of forward_lengths (dx overwritten; zero on the padding).
  static void backward_lengths(const T* x, const T* dy, T* dx, std::size_t rows,
                               const std::size_t* lengths) noexcept {
    parallel::for_rows(rows, input_shape::size, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        const T* dyr = dy + r * C;
        T* dxr = dx + r * input_shape::size;
        const std::size_t n = length(lengths, r);
        kernels::fill(input_shape::size, T(0), dxr);
        if (n == 0) continue;
        if constexpr (Max) {
          std::size_t at[block];
          T best[block];
          for (std::size_t c0 = 0; c0 < C; c0 += block) {
            const std::size_t w = width(c0);
            first_max(x + r * input_shape::size, n, c0, w, at, best);
            for (std::size_t j = 0; j < w; ++j) dxr[at[j] * C + c0 + j] = dyr[c0 + j];
          }
        } else {
          for (std::size_t l = 0; l < n; ++l)
            for (std::size_t c = 0; c < C; ++c) dxr[l * C + c] = dyr[c] / static_cast<T>(n);
        }
      }
    });
  }

 private:
  // Channels handled together by the max: positions are read row by row (contiguous), keeping
  // the best value and its position per channel.
  static constexpr std::size_t block = C < 32 ? C : 32;
  static constexpr std::size_t width(std::size_t c0) noexcept {
    return C - c0 < block ? C - c0 : block;
  }
  static std::size_t length(const std::size_t* lengths, std::size_t r) noexcept {
    return lengths == nullptr || lengths[r] > L ? L : lengths[r];
  }
  // For channels [c0, c0 + w): the position of the first maximum over positions [0, n) (n > 0)
  // into at, its value into best. The forward and the backward both use it: they agree on ties.
  static void first_max(const T* xr, std::size_t n, std::size_t c0, std::size_t w, std::size_t* at,
                        T* best) noexcept {
    for (std::size_t j = 0; j < w; ++j) {
      at[j] = 0;
      best[j] = xr[c0 + j];
    }
    for (std::size_t l = 1; l < n; ++l) {
      const T* row = xr + l * C + c0;
      for (std::size_t j = 0; j < w; ++j)
        if (row[j] > best[j] || (std::isnan(row[j]) && !std::isnan(best[j]))) {
          best[j] = row[j];
          at[j] = l;
        }
    }
  }
};

template <bool Max> struct time_pool_spec {
  using expects = diagnostics::expects_a_length_x_channels_sequence;
  template <class In> static constexpr bool accepts_impl() {
    if constexpr (Shape<In>)
      return In::rank == 2;
    else
      return false;
  }
  template <class In> static constexpr bool accepts = accepts_impl<In>();
  template <class T, class In> using bind = time_pool_layer<T, In::dims[0], In::dims[1], Max>;
};
}  // namespace detail

/// Max over the positions of each channel: [L, C] -> [C]; the gradient to the first maximum.
struct global_max_pool_time : detail::time_pool_spec<true> {};
/// Mean over the positions of each channel: [L, C] -> [C].
struct global_mean_pool_time : detail::time_pool_spec<false> {};

GRAFT_END_NAMESPACE
