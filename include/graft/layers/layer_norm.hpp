// layer_norm: layer normalisation (Ba, Kiros & Hinton 2016) as PyTorch's nn.LayerNorm(D) with its
// defaults (eps = 1e-5, elementwise affine): each row of D values is normalised over its D values,
//   y = (x - mean) / sqrt(var + eps) * gamma + beta,   var the biased variance (divided by D),
// for an L x D sequence (rows are positions, as after an embedding) or a flat vector of D (one
// row). Parameters: gamma (role::weight, starts at 1) and beta (role::bias, starts at 0), one per
// feature and shared by all rows. No buffers, no workspace: the statistics depend on the row only,
// so evaluation and training are the same computation, and backward recomputes them from x.
//
// Determinism: a row's mean and variance are sums in double in ascending order (two passes: the
// mean, then the squared deviations from it), the normalisation is computed in double and rounded
// once to T, and the gradients of gamma and beta are sums over rows in ascending order; no SIMD
// reduction, so the bits do not depend on the instruction set.
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <string>

#include "graft/diagnostics.hpp"
#include "graft/kernels/gemm.hpp"
#include "graft/layers/layer.hpp"
#include "graft/tensor/tensor.hpp"

GRAFT_BEGIN_NAMESPACE

/// Bound layer norm over the last extent D of In (shape<D> or shape<L, D>).
template <class T, class In> class layer_norm_layer {
 public:
  static constexpr std::size_t D = In::dims[In::rank - 1];  ///< features normalised together
  static constexpr std::size_t R = In::size / D;            ///< rows per sample (L, or 1)
  static constexpr double eps = 1e-5;

  using scalar = T;
  using input_shape = In;
  using output_shape = In;
  static constexpr std::size_t parameter_count = 2 * D;
  static constexpr std::array<param_desc, 2> params{
      {{D, role::weight, param_tag::norm}, {D, role::bias, param_tag::norm}}};

  tensor<T, D> gamma;
  tensor<T, D> beta;

  static std::string name() { return "layer_norm"; }
  static constexpr sequence_use sequence = sequence_use::positionwise;
  T* param(std::size_t j) noexcept { return j == 0 ? gamma.data() : beta.data(); }
  const T* param(std::size_t j) const noexcept { return j == 0 ? gamma.data() : beta.data(); }

  void init(splitmix64&) noexcept {
    gamma.fill(T(1));
    beta.fill(T(0));
  }

  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    const T* p[2] = {gamma.data(), beta.data()};
    forward_from(p, nullptr, x, y, rows, nullptr);
  }
  /// The same from constant parameters p (gamma, beta) read in place (a constant_model).
  static void forward_from(const T* const* p, const T* const* /*buffers*/, const T* x, T* y,
                           std::size_t rows, T* /*ws*/) noexcept {
    for (std::size_t r = 0; r < rows * R; ++r) {
      const T* xr = x + r * D;
      T* yr = y + r * D;
      const stats s = row_stats(xr);
      for (std::size_t i = 0; i < D; ++i) {
        const double xhat = (static_cast<double>(xr[i]) - s.mean) * s.rstd;
        yr[i] = static_cast<T>(xhat * static_cast<double>(p[0][i]) + static_cast<double>(p[1][i]));
      }
    }
  }

  /// With xhat = (x - mean) rstd and g = dy gamma, per row:
  ///   dx = rstd (g - mean(g) - xhat mean(g xhat)),  dgamma = sum over rows of dy xhat,
  ///   dbeta = sum over rows of dy.
  template <bool InputGrad, unsigned GradMask> void backward(const T* x, const T* y, const T* dy,
                                                             T* dx, T* const* grads,
                                                             std::size_t rows) const noexcept {
    const T* p[2] = {gamma.data(), beta.data()};
    backward_from<InputGrad, GradMask>(p, nullptr, x, y, dy, dx, grads, rows, nullptr);
  }
  /// The same from parameters p read in place (training on a device: train/device.hpp).
  template <bool InputGrad, unsigned GradMask>
  static void backward_from(const T* const* p, const T* const* /*buffers*/, const T* x,
                            const T* /*y*/, const T* dy, T* dx, T* const* grads, std::size_t rows,
                            T* /*ws*/) noexcept {
    constexpr bool gamma_grad = (GradMask & 1U) != 0;
    constexpr bool beta_grad = (GradMask & 2U) != 0;
    if constexpr (gamma_grad)
      for (std::size_t i = 0; i < D; ++i) grads[0][i] = T(0);
    if constexpr (InputGrad || gamma_grad)
      for (std::size_t r = 0; r < rows * R; ++r) {
        const T* xr = x + r * D;
        const T* dyr = dy + r * D;
        const stats s = row_stats(xr);
        if constexpr (gamma_grad)
          for (std::size_t i = 0; i < D; ++i)
            grads[0][i] += static_cast<T>(static_cast<double>(dyr[i]) *
                                          ((static_cast<double>(xr[i]) - s.mean) * s.rstd));
        if constexpr (InputGrad) {
          double sg = 0;
          double sgx = 0;
          for (std::size_t i = 0; i < D; ++i) {
            const double g = static_cast<double>(dyr[i]) * static_cast<double>(p[0][i]);
            sg += g;
            sgx += g * ((static_cast<double>(xr[i]) - s.mean) * s.rstd);
          }
          const double mg = sg / static_cast<double>(D);
          const double mgx = sgx / static_cast<double>(D);
          T* dxr = dx + r * D;
          for (std::size_t i = 0; i < D; ++i) {
            const double g = static_cast<double>(dyr[i]) * static_cast<double>(p[0][i]);
            const double xhat = (static_cast<double>(xr[i]) - s.mean) * s.rstd;
            dxr[i] = static_cast<T>(s.rstd * (g - mg - xhat * mgx));
          }
        }
      }
    if constexpr (beta_grad) kernels::column_sum<D>(rows * R, dy, grads[1], false);
  }

 private:
  struct stats {
    double mean;
    double rstd;  ///< 1 / sqrt(var + eps)
  };
  /// Mean and 1/sqrt(biased variance + eps) of one row of D values, in double, ascending order.
  static stats row_stats(const T* xr) noexcept {
    double s = 0;
    for (std::size_t i = 0; i < D; ++i) s += static_cast<double>(xr[i]);
    const double mean = s / static_cast<double>(D);
    double q = 0;
    for (std::size_t i = 0; i < D; ++i) {
      const double d = static_cast<double>(xr[i]) - mean;
      q += d * d;
    }
    return {mean, 1.0 / std::sqrt(q / static_cast<double>(D) + eps)};
  }
};

/// Layer normalisation over the last extent: each row of an L x D sequence, or a flat vector of
/// D; see the file comment.
struct layer_norm {
  using expects = diagnostics::expects_a_flat_vector_or_a_sequence_of_rows_length_x_width;
  template <class In> static constexpr bool accepts = Shape<In> && (In::rank == 1 || In::rank == 2);
  template <class T, class In> using bind = layer_norm_layer<T, In>;
};

GRAFT_END_NAMESPACE
