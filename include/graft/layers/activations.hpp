// Element-wise layers: relu, leaky_relu, tanh, sigmoid, gelu, and flatten. Shape-preserving
// (flatten changes only the shape type); no parameters. The maps are run by kernels::map and
// kernels::map_grad (kernels/elementwise.hpp), which also holds the SIMD maps (relu, leaky_relu);
// gelu, whose derivative needs its input, has its own scalar layer.
#pragma once
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>

#include "graft/kernels/elementwise.hpp"
#include "graft/kernels/parallel.hpp"
#include "graft/layers/layer.hpp"
#include "graft/numeric/math.hpp"

GRAFT_BEGIN_NAMESPACE

namespace detail {
// Fn gives the map (op) and its derivative expressed through the output y = f(x) (grad; relu,
// tanh and sigmoid all allow it), as stateless functors on scalars. The SIMD ones
// (kernels/elementwise.hpp) also take SIMD batches, bitwise the same: the layer then runs whole
// vectors without branches (a sign-dependent branch per element mispredicts half the time), and
// the scalar forms take the tail.
template <class T, class In, class Fn> class elementwise_layer : public without_parameters<T> {
  using op = typename Fn::op;
  using grad = typename Fn::grad;
  static constexpr bool vectorised = kernels::maps_batches<op, T> && kernels::maps_batches<grad, T>;

 public:
  using scalar = T;
  /// What the layer before may apply in its output pass instead of this layer's forward (void:
  /// this activation is not fused): op, on the sums in registers before they are stored
  /// (kernels::gemm_bcast, kernels::conv_direct). Its backward reads only its output, never its
  /// input.
  using epilogue = std::conditional_t<vectorised, op, void>;
  using input_shape = In;
  using output_shape = In;
  static constexpr std::size_t size = In::size;

  static std::string name() { return Fn::name(); }
  static constexpr sequence_use sequence = sequence_use::positionwise;

  // Large batches are split between threads by rows (the same values either way).
  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    parallel::for_rows(rows, size, [&](std::size_t b, std::size_t e) {
      kernels::map<op>((e - b) * size, x + b * size, y + b * size);
    });
  }
  template <bool InputGrad, unsigned> void backward(const T* /*x*/, const T* y, const T* dy, T* dx,
                                                    T* const*, std::size_t rows) const noexcept {
    if constexpr (InputGrad)
      parallel::for_rows(rows, size, [&](std::size_t b, std::size_t e) {
        kernels::map_grad<grad>((e - b) * size, y + b * size, dy + b * size, dx + b * size);
      });
  }
};

template <class Fn> struct elementwise_spec {
  using expects = diagnostics::expects_any_shape;
  template <class In> static constexpr bool accepts = Shape<In>;
  template <class T, class In> using bind = elementwise_layer<T, In, Fn>;
};

struct relu_fn {
  static std::string name() { return "relu"; }
  using op = kernels::relu;  // NaN propagates, as in PyTorch
  using grad = kernels::relu_grad;
};
template <std::size_t Num, std::size_t Den> struct leaky_relu_fn {
  static_assert(Num > 0 && Den > 0,
                "graft: leaky_relu needs a positive slope (its derivative is read from the sign "
                "of the output)");
  static std::string name() {
    return "leaky_relu<" + std::to_string(Num) + "/" + std::to_string(Den) + ">";
  }
  using op = kernels::leaky_relu<Num, Den>;
  using grad = kernels::leaky_relu_grad<Num, Den>;
};
struct tanh_fn {
  static std::string name() { return "tanh"; }
  struct op {
    // graft's tanh (numeric/math.hpp): the same bits on every platform, unlike libm's
    template <std::floating_point T> T operator()(T x) const noexcept { return math::tanh(x); }
  };
  struct grad {
    template <std::floating_point T> T operator()(T y) const noexcept { return T(1) - y * y; }
  };
};
struct sigmoid_fn {
  static std::string name() { return "sigmoid"; }
  struct op {
    // Stable for large |x| (never exponentiates a large positive number), graft's exp.
    template <std::floating_point T> T operator()(T x) const noexcept { return math::sigmoid(x); }
  };
  struct grad {
    template <std::floating_point T> T operator()(T y) const noexcept { return y * (T(1) - y); }
  };
};

/// GELU, exact (PyTorch's nn.GELU() default, approximate='none'): x Phi(x) with Phi the standard
/// normal CDF (math::normal_cdf: Cody's erfc with the Gaussian factor computed from x, accurate in
/// relative terms for negative x too, where PyTorch's 1 + erf(x / sqrt 2) cancels: the two differ
/// by about 1e-16 |x| at most). Derivative Phi(x) + x phi(x), phi the normal density. Both in
/// double (float rounds once), with graft's exp: the same bits on every target with FMA. Limits:
/// below -40 the value is -0 and the derivative 0, above 40 they are x and 1 (so that +-inf give
/// no NaN); NaN stays NaN.
struct gelu_fn {
  static std::string name() { return "gelu"; }
  static double value(double x) noexcept {
    if (x < -40.0) return -0.0;
    if (x > 40.0) return x;
    return x * math::normal_cdf(x);
  }
  static double derivative(double x) noexcept {
    if (x < -40.0) return 0.0;
    if (x > 40.0) return 1.0;
    return math::normal_cdf(x) + x * math::normal_pdf(x);
  }
};

/// The GELU layer: a scalar map. Not fused into the layer before it (no epilogue): its backward
/// reads its input, which a fused pair never writes.
template <class T, class In> class gelu_layer : public without_parameters<T> {
 public:
  using scalar = T;
  using input_shape = In;
  using output_shape = In;
  static constexpr std::size_t size = In::size;

  static std::string name() { return gelu_fn::name(); }
  static constexpr sequence_use sequence = sequence_use::positionwise;

  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    parallel::for_rows(rows, size, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b * size; i < e * size; ++i)
        y[i] = static_cast<T>(gelu_fn::value(static_cast<double>(x[i])));
    });
  }
  template <bool InputGrad, unsigned> void backward(const T* x, const T* /*y*/, const T* dy, T* dx,
                                                    T* const*, std::size_t rows) const noexcept {
    if constexpr (InputGrad)
      parallel::for_rows(rows, size, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b * size; i < e * size; ++i)
          dx[i] = static_cast<T>(static_cast<double>(dy[i]) *
                                 gelu_fn::derivative(static_cast<double>(x[i])));
      });
  }
};
}  // namespace detail

// Distinct types (not aliases) so that diagnostics print "graft::relu", not the detail template.
struct relu : detail::elementwise_spec<detail::relu_fn> {};
/// leaky_relu_slope<Num, Den>: x for x > 0, (Num/Den) * x otherwise; leaky_relu_slope<2, 10> has
/// slope 0.2, and Den defaults to 100 (leaky_relu_slope<1> is PyTorch's default 0.01).
template <std::size_t Num, std::size_t Den = 100> struct leaky_relu_slope
    : detail::elementwise_spec<detail::leaky_relu_fn<Num, Den>> {};
struct leaky_relu : leaky_relu_slope<1, 100> {};
struct tanh : detail::elementwise_spec<detail::tanh_fn> {};
struct sigmoid : detail::elementwise_spec<detail::sigmoid_fn> {};
/// GELU (exact, erf-based: PyTorch's nn.GELU()); see detail::gelu_fn.
struct gelu {
  using expects = diagnostics::expects_any_shape;
  template <class In> static constexpr bool accepts = Shape<In>;
  template <class T, class In> using bind = detail::gelu_layer<T, In>;
};

template <class T, class In> class flatten_layer : public without_parameters<T> {
 public:
  using scalar = T;
  using input_shape = In;
  using output_shape = shape<In::size>;

  static std::string name() { return "flatten"; }
  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    std::memcpy(y, x, rows * In::size * sizeof(T));
  }
  template <bool InputGrad, unsigned> void backward(const T*, const T*, const T* dy, T* dx,
                                                    T* const*, std::size_t rows) const noexcept {
    if constexpr (InputGrad) std::memcpy(dx, dy, rows * In::size * sizeof(T));
  }
};

/// Reshapes any input to a flat vector (row-major order).
struct flatten {
  using expects = diagnostics::expects_any_shape;
  template <class In> static constexpr bool accepts = Shape<In>;
  template <class T, class In> using bind = flatten_layer<T, In>;
};

GRAFT_END_NAMESPACE
