// A layer written outside graft, against the contract in graft/layers/concept.hpp: an element-wise
// affine map y = x * scale + shift with one scale and one shift per feature (a learnable
// normalisation without statistics). README "Writing a layer" walks through it;
// tests/test_user_layer.cpp checks its gradients, trains it, saves, loads and fine-tunes it.
#pragma once
#include <array>
#include <cstddef>
#include <string>

#include <graft/layers/concept.hpp>
#include <graft/tensor/tensor.hpp>

namespace mylib {

// The bound layer: every member the contract requires.
template <class T, class In> struct affine_layer {
  using scalar = T;
  using input_shape = In;
  using output_shape = In;  // same shape out
  static constexpr std::size_t N = In::size;
  static constexpr std::size_t parameter_count = 2 * N;
  static constexpr std::array<graft::param_desc, 2> params{
      {{N, graft::role::weight}, {N, graft::role::bias}}};  // bias_only trains the shift

  graft::tensor<T, N> scale, shift;

  T* param(std::size_t j) noexcept { return j == 0 ? scale.data() : shift.data(); }
  const T* param(std::size_t j) const noexcept { return j == 0 ? scale.data() : shift.data(); }
  void init(graft::splitmix64& rng) noexcept {
    for (std::size_t i = 0; i < N; ++i) {
      scale[i] = static_cast<T>(1.0 + 0.1 * rng.normal());  // near the identity
      shift[i] = T(0);
    }
  }
  static std::string name() { return "affine"; }  // part of the weight-file fingerprint

  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < N; ++i) y[r * N + i] = x[r * N + i] * scale[i] + shift[i];
  }
  template <bool InputGrad, unsigned GradMask> void backward(const T* x, const T* /*y*/,
                                                             const T* dy, T* dx, T* const* grads,
                                                             std::size_t rows) const noexcept {
    if constexpr (InputGrad)
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t i = 0; i < N; ++i) dx[r * N + i] = dy[r * N + i] * scale[i];
    if constexpr ((GradMask & 1U) != 0) {  // scale trains: d scale = sum over rows of dy * x
      for (std::size_t i = 0; i < N; ++i) grads[0][i] = T(0);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t i = 0; i < N; ++i) grads[0][i] += dy[r * N + i] * x[r * N + i];
    }
    if constexpr ((GradMask & 2U) != 0) {  // shift trains: d shift = sum over rows of dy
      for (std::size_t i = 0; i < N; ++i) grads[1][i] = T(0);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t i = 0; i < N; ++i) grads[1][i] += dy[r * N + i];
    }
  }
};

// The spec: what it accepts, and how it binds.
struct affine {
  using expects = graft::diagnostics::expects_any_shape;
  template <class In> static constexpr bool accepts = true;
  template <class T, class In> using bind = affine_layer<T, In>;
};

static_assert(graft::BoundLayer<affine_layer<float, graft::shape<8>>>);

}  // namespace mylib
