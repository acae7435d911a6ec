// per_position<Spec>: a flat layer applied to every position of a sequence [L, D] -> [L, N], the
// same parameters for all positions (a transformer's feed-forward network: PyTorch's nn.Linear on
// [batch, L, D]). per_position<dense<128>> binds dense<128> to shape<D> and runs it on rows * L
// rows, so each output row is bitwise what dense gives for that row alone. It keeps the inner
// layer's parameters, initialisation, fusion with a following activation, constant-weight forms
// and workspace (sized for rows * L). Position-wise (layers/layer.hpp): row l of the output
// depends on row l of the input only.
//
// A wrapper rather than letting dense take [L, D]: dense on a 2-D input today asks for a
// flatten (the mistake of feeding an image to a dense layer is reported); per_position says
// what is meant.
#pragma once
#include <array>
#include <cstddef>
#include <string>

#include "graft/diagnostics.hpp"
#include "graft/layers/layer.hpp"
#include "graft/random/random.hpp"
#include "graft/tensor/shape.hpp"

GRAFT_BEGIN_NAMESPACE

/// Bound per_position over [L, D]: Inner bound to shape<D>.
template <class T, std::size_t L, class Inner> class per_position_layer {
 public:
  using scalar = T;
  using inner_type = Inner;
  static constexpr std::size_t D = Inner::input_shape::size;
  static constexpr std::size_t N = Inner::output_shape::size;
  using input_shape = shape<L, D>;
  using output_shape = shape<L, N>;
  static constexpr sequence_use sequence = sequence_use::positionwise;
  static constexpr std::size_t parameter_count = Inner::parameter_count;
  static constexpr auto params = Inner::params;

  static_assert(detail::buffer_count_v<Inner> == 0,
                "graft: per_position<Spec> takes a layer without buffers (dense, an activation)");

  Inner inner;

  static std::string name() {
    std::string s = "per_position<";  // piece by piece: g++ 12's false -Wrestrict (armv7 -O3)
    s += Inner::name();
    s += '>';
    return s;
  }
  T* param(std::size_t j) noexcept { return inner.param(j); }
  const T* param(std::size_t j) const noexcept { return inner.param(j); }
  void init(splitmix64& rng) { inner.init(rng); }

  // The workspace of the inner layer at rows * L rows, when it has one.
  static constexpr std::size_t training_workspace(std::size_t rows) noexcept {
    return detail::training_workspace_of<Inner>(rows * L);
  }
  static constexpr std::size_t inference_workspace(std::size_t rows) noexcept {
    return detail::inference_workspace_of<Inner>(rows * L);
  }

  void forward(const T* x, T* y, std::size_t rows, T* ws) const noexcept {
    detail::forward_eval(inner, x, y, rows * L, ws);
  }
  template <train_mode Mode>
  void forward_train(const T* x, T* y, std::size_t rows, T* ws) noexcept {
    detail::forward_training<Mode>(inner, x, y, rows * L, ws);
  }
  template <class Epi> void forward_fused(const T* x, T* y, std::size_t rows, T* ws) const noexcept
      requires(
          requires(const Inner& i, const T* a, T* b, std::size_t r) {
            i.template forward_fused<Epi>(a, b, r);
          } ||
          requires(const Inner& i, const T* a, T* b, std::size_t r, T* w) {
            i.template forward_fused<Epi>(a, b, r, w);
          }) {
    if constexpr (detail::uses_workspace<Inner>)
      inner.template forward_fused<Epi>(x, y, rows * L, ws);
    else
      inner.template forward_fused<Epi>(x, y, rows * L);
  }
  static void forward_from(const T* const* p, const T* const* b, const T* x, T* y, std::size_t rows,
                           T* ws) noexcept {
    detail::forward_eval_from<Inner>(p, b, x, y, rows * L, ws);
  }
  template <class Epi> static void forward_fused_from(const T* const* p, const T* const* b,
                                                      const T* x, T* y, std::size_t rows,
                                                      T* ws) noexcept requires requires {
    Inner::template forward_fused_from<Epi>(p, b, x, y, rows, ws);
  }
  { Inner::template forward_fused_from<Epi>(p, b, x, y, rows * L, ws); }
  template <bool InputGrad, unsigned GradMask, train_mode Mode>
  void backward(const T* x, const T* y, const T* dy, T* dx, T* const* grads, std::size_t rows,
                T* ws) const noexcept {
    detail::backward_of<InputGrad, GradMask, Mode>(inner, x, y, dy, dx, grads, rows * L, ws);
  }
  template <bool InputGrad, unsigned GradMask, train_mode Mode>
  static void backward_from(const T* const* p, const T* const* b, const T* x, const T* y,
                            const T* dy, T* dx, T* const* grads, std::size_t rows, T* ws) noexcept {
    detail::backward_of_from<InputGrad, GradMask, Mode, Inner>(p, b, x, y, dy, dx, grads, rows * L,
                                                               ws);
  }
};

/// Spec applied to every position of a sequence [L, D] (see the file comment).
template <class Spec> struct per_position {
  using expects = diagnostics::expects_a_length_x_channels_sequence;
  template <class In> static constexpr bool accepts_impl() {
    if constexpr (Shape<In> && In::rank == 2)
      return Spec::template accepts<shape<In::dims[1]>>;
    else
      return false;
  }
  template <class In> static constexpr bool accepts = accepts_impl<In>();
  template <class T, class In> using bind =
      per_position_layer<T, In::dims[0], typename Spec::template bind<T, shape<In::dims[1]>>>;
};

GRAFT_END_NAMESPACE
