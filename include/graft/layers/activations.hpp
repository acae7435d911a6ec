// Element-wise layers: relu, leaky_relu, tanh, sigmoid, and flatten. Shape-preserving (flatten
// changes only the shape type); no parameters.
#pragma once
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "graft/kernels/parallel.hpp"
#include "graft/layers/layer.hpp"

GRAFT_BEGIN_NAMESPACE

namespace detail {
// Fn gives f(x) and f'(x) expressed through the output y = f(x) (relu, tanh, sigmoid all can).
// Fn may also give batch versions (f_batch, df_batch, bitwise the same as the scalar ones): the
// layer then runs whole SIMD vectors without branches (a sign-dependent branch per element
// mispredicts half the time), and the scalar functions take the tail.
template <class Fn, class B>
concept has_batch_fn = requires(B b) {
  { Fn::f_batch(b) } -> std::same_as<B>;
  { Fn::df_batch(b) } -> std::same_as<B>;
};
/// Fn as a GEMM epilogue: f on SIMD batches (f_batch) and on scalars (f), applied to a layer's
/// sums in registers before they are stored (kernels::gemm_bcast).
template <class Fn> struct activation_epilogue {
  template <class V> V operator()(V v) const noexcept {
    if constexpr (std::is_arithmetic_v<V>)
      return Fn::f(v);
    else
      return Fn::f_batch(v);
  }
};

template <class T, class In, class Fn> class elementwise_layer : public without_parameters<T> {
  using batch = xsimd::batch<T>;
  static constexpr bool vectorised = has_batch_fn<Fn, batch>;

 public:
  using scalar = T;
  /// What the layer before may apply in its output pass instead of this layer's forward (void:
  /// this activation is not fused). Its backward reads only its output, never its input.
  using epilogue = std::conditional_t<vectorised, activation_epilogue<Fn>, void>;
  using input_shape = In;
  using output_shape = In;
  static constexpr std::size_t size = In::size;

  static std::string name() { return Fn::name(); }

  // Large batches are split between threads by rows (the same values either way).
  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    parallel::for_rows(rows, size, [&](std::size_t b, std::size_t e) {
      const std::size_t n = (e - b) * size;
      const T* xb = x + b * size;
      T* yb = y + b * size;
      std::size_t i = 0;
      if constexpr (vectorised)
        for (const std::size_t nv = n / batch::size * batch::size; i < nv; i += batch::size)
          Fn::f_batch(batch::load_unaligned(xb + i)).store_unaligned(yb + i);
      for (; i < n; ++i) yb[i] = Fn::f(xb[i]);
    });
  }
  template <bool InputGrad, unsigned> void backward(const T* /*x*/, const T* y, const T* dy, T* dx,
                                                    T* const*, std::size_t rows) const noexcept {
    if constexpr (InputGrad)
      parallel::for_rows(rows, size, [&](std::size_t b, std::size_t e) {
        const std::size_t n = (e - b) * size;
        const T *yb = y + b * size, *dyb = dy + b * size;
        T* dxb = dx + b * size;
        std::size_t i = 0;
        if constexpr (vectorised)
          for (const std::size_t nv = n / batch::size * batch::size; i < nv; i += batch::size)
            (batch::load_unaligned(dyb + i) * Fn::df_batch(batch::load_unaligned(yb + i)))
                .store_unaligned(dxb + i);
        for (; i < n; ++i) dxb[i] = dyb[i] * Fn::df_from_y(yb[i]);
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
  // NaN propagates (x < 0 is false for NaN), as in PyTorch: a NaN input is not silently zeroed.
  template <class T> static T f(T x) noexcept { return x < T(0) ? T(0) : x; }
  template <class T> static T df_from_y(T y) noexcept { return y > T(0) ? T(1) : T(0); }
  template <class B> static B f_batch(B x) noexcept { return xsimd::select(x < B(0), B(0), x); }
  template <class B> static B df_batch(B y) noexcept { return xsimd::select(y > B(0), B(1), B(0)); }
};
// The slope is Num/Den: integers, because clang 14 does not take floating-point template
// arguments.
template <std::size_t Num, std::size_t Den> struct leaky_relu_fn {
  static_assert(Num > 0 && Den > 0,
                "graft: leaky_relu needs a positive slope (its derivative is read from the sign "
                "of the output)");
  static constexpr double slope = static_cast<double>(Num) / static_cast<double>(Den);
  static std::string name() {
    return "leaky_relu<" + std::to_string(Num) + "/" + std::to_string(Den) + ">";
  }
  template <class T> static T f(T x) noexcept { return x < T(0) ? static_cast<T>(slope) * x : x; }
  template <class T> static T df_from_y(T y) noexcept {
    return y > T(0) ? T(1) : static_cast<T>(slope);
  }
  template <class B> static B f_batch(B x) noexcept {
    using T = typename B::value_type;
    return xsimd::select(x < B(0), B(static_cast<T>(slope)) * x, x);
  }
  template <class B> static B df_batch(B y) noexcept {
    using T = typename B::value_type;
    return xsimd::select(y > B(0), B(T(1)), B(static_cast<T>(slope)));
  }
};
struct tanh_fn {
  static std::string name() { return "tanh"; }
  template <class T> static T f(T x) noexcept { return std::tanh(x); }
  template <class T> static T df_from_y(T y) noexcept { return T(1) - y * y; }
};
struct sigmoid_fn {
  static std::string name() { return "sigmoid"; }
  template <class T> static T f(T x) noexcept {
    // Stable for large |x|: never exponentiates a large positive number.
    if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
    const T e = std::exp(x);
    return e / (T(1) + e);
  }
  template <class T> static T df_from_y(T y) noexcept { return y * (T(1) - y); }
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
