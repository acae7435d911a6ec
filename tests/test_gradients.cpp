// Gradient checks in double precision: every layer, both losses, and whole models through the
// trainer. A mutation test shows the checker catches a broken backward pass.
#include <doctest/doctest.h>

#include <graft/graft.hpp>

#include "support/gradcheck.hpp"

namespace g = graft;
using graft_test::check_layer;
using graft_test::close;

#define CHECK_GRADIENTS GRAFT_CHECK_LAYER_GRADIENTS

TEST_CASE("layer gradients: dense (input, weight, bias)") {
  CHECK_GRADIENTS(g::dense<7>::bind<double, g::shape<5>>);
  CHECK_GRADIENTS(g::dense<1>::bind<double, g::shape<1>>);
  CHECK_GRADIENTS(g::dense<17, g::init::he>::bind<double, g::shape<13>>);  // SIMD tails
  CHECK_GRADIENTS(g::dense<10, g::init::glorot>::bind<double, g::shape<33>>);
  // more rows than the kernel's 6-row block, plus a tail
  const auto rep = check_layer<g::dense<9>::bind<double, g::shape<11>>, 13>();
  INFO(rep.first_failure);
  CHECK(rep.failures == 0);
}

TEST_CASE("layer gradients: activations and flatten") {
  CHECK_GRADIENTS(g::relu::bind<double, g::shape<2, 3, 4>>);
  CHECK_GRADIENTS(g::leaky_relu::bind<double, g::shape<11>>);
  CHECK_GRADIENTS(g::leaky_relu_slope<2, 10>::bind<double, g::shape<11>>);
  CHECK_GRADIENTS(g::tanh::bind<double, g::shape<9>>);
  CHECK_GRADIENTS(g::sigmoid::bind<double, g::shape<9>>);
  CHECK_GRADIENTS(g::flatten::bind<double, g::shape<2, 3, 2>>);
}

// A dense layer whose bias gradient is off by a factor of two: the checker must notice.
template <class T, std::size_t K, std::size_t N> struct broken_dense
    : g::dense_layer<T, K, N, g::init::pytorch> {
  using base = g::dense_layer<T, K, N, g::init::pytorch>;
  template <bool InputGrad, unsigned Mask> void backward(const T* x, const T* y, const T* dy, T* dx,
                                                         T* const* grads,
                                                         std::size_t rows) const noexcept {
    base::template backward<InputGrad, Mask>(x, y, dy, dx, grads, rows);
    for (std::size_t n = 0; n < N; ++n) grads[1][n] *= 2;
  }
};

TEST_CASE("the gradient checker fails on a broken backward pass") {
  const auto rep = check_layer<broken_dense<double, 4, 3>>();
  CHECK(rep.failures == 3);  // exactly the three bias entries
  CHECK(rep.first_failure.find("param 1") != std::string::npos);
}

template <class Loss, class Target>
void check_loss(const std::vector<double>& z0, const std::vector<Target>& t, std::size_t rows) {
  std::vector<double> z = z0, dz(z.size());
  Loss::evaluate(z.data(), t.data(), rows, dz.data(), 1.0);
  const double h = 1e-6;
  for (std::size_t i = 0; i < z.size(); ++i) {
    const double old = z[i];
    z[i] = old + h;
    const double fp = Loss::evaluate(z.data(), t.data(), rows, static_cast<double*>(nullptr), 0.0);
    z[i] = old - h;
    const double fm = Loss::evaluate(z.data(), t.data(), rows, static_cast<double*>(nullptr), 0.0);
    z[i] = old;
    const double numeric = (fp - fm) / (2 * h);
    INFO("logit " << i << " analytic " << dz[i] << " numeric " << numeric);
    CHECK(close(dz[i], numeric));
  }
}

TEST_CASE("loss gradients: softmax cross-entropy and mean squared error") {
  check_loss<g::softmax_cross_entropy<4>, std::int32_t>(
      {0.3, -1.2, 2.0, 0.1, -0.5, 0.7, 0.2, -2.0, 1.5, 1.4, -0.1, 0.0}, {2, 1, 0}, 3);
  check_loss<g::mean_squared_error<3>, float>({0.3, -1.2, 2.0, 0.1, -0.5, 0.7},
                                              {1.0f, 0.5f, -0.25f, 0.0f, 2.0f, 1.0f}, 2);
}

TEST_CASE("softmax cross-entropy is finite for logits of +-1e4") {
  std::vector<float> z{1e4f, -1e4f, 0.0f, -1e4f, 1e4f, 1e4f};
  std::vector<std::int32_t> t{1, 0};
  std::vector<float> dz(6);
  const double loss = g::softmax_cross_entropy<3>::evaluate(z.data(), t.data(), 2, dz.data(), 0.5);
  CHECK(std::isfinite(loss));
  CHECK(loss == doctest::Approx(2e4 + (2e4 + std::log(2.0))).epsilon(1e-9));
  for (float v : dz) CHECK(std::isfinite(v));
  CHECK(dz[0] == doctest::Approx(0.5));
  CHECK(dz[1] == doctest::Approx(-0.5));
}

// Whole models through the trainer: perturb every parameter of a small model and compare the
// mean loss's numeric derivative with the gradients the trainer computed.
template <class M> void check_model(std::size_t rows) {
  using tr = g::trainer<M, 5, g::sgd>;
  using target = typename tr::target_type;
  auto net = g::make_model<M>(g::seed{3});
  auto t = std::make_unique<tr>(*net, g::sgd{});
  g::splitmix64 rng(9);
  for (std::size_t i = 0; i < rows * M::input_shape::size; ++i) t->input()[i] = rng.uniform(-1, 1);
  std::vector<target> tg(rows * tr::target_size);
  for (auto& v : tg) {
    if constexpr (std::is_integral_v<target>)
      v = static_cast<target>(rng.below(M::output_shape::size));
    else
      v = static_cast<target>(rng.uniform(-1, 1));
  }
  t->compute_gradients(tg.data(), rows);
  const auto rep = graft_test::check_trainer(*net, *t, tg.data(), rows);
  INFO(rep.first_failure);
  CHECK(rep.checked == M::parameter_count);
  CHECK(rep.failures == 0);
}

TEST_CASE("whole-model gradients: classifier over every layer kind") {
  using backbone = g::stack<g::input<2, 3, 2>, g::flatten, g::dense<9>, g::tanh, g::dense<8>,
                            g::leaky_relu, g::dense<7>, g::sigmoid, g::dense<6>, g::relu>;
  check_model<g::model<backbone, g::classifier<4>, double>>(5);
  check_model<g::model<backbone, g::classifier<4>, double>>(2);  // a partial batch
}

TEST_CASE("whole-model gradients: regressor") {
  using backbone = g::stack<g::input<6>, g::dense<5>, g::tanh>;
  check_model<g::model<backbone, g::regressor<3>, double>>(4);
}
