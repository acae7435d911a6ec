// Convolution and pooling layers: shapes and parameter counts while compiling, forward against a
// direct scalar convolution, gradient checks in double, max-pool ties, and a whole small CNN.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include <graft/graft.hpp>

#include "support/blobs.hpp"
#include "support/gradcheck.hpp"

namespace g = graft;
using graft_test::check_layer;

// The LeNet-5-like backbone of the issues: 60,856 parameters.
using lenet = g::stack<g::input<1, 28, 28>, g::conv2d<6, 5, g::pad<2>>, g::relu, g::max_pool<2>,
                       g::conv2d<16, 5>, g::relu, g::max_pool<2>, g::flatten, g::dense<120>,
                       g::relu, g::dense<84>, g::relu>;
static_assert(lenet::parameter_count == 60'856);
static_assert(std::is_same_v<lenet::output_shape, g::shape<84>>);
static_assert(std::is_same_v<g::meta::list_element_t<1, lenet::shapes>, g::shape<6, 28, 28>>);
static_assert(std::is_same_v<g::meta::list_element_t<3, lenet::shapes>, g::shape<6, 14, 14>>);
static_assert(std::is_same_v<g::meta::list_element_t<4, lenet::shapes>, g::shape<16, 10, 10>>);
static_assert(std::is_same_v<g::meta::list_element_t<6, lenet::shapes>, g::shape<16, 5, 5>>);
static_assert(g::model<lenet, g::classifier<10>>::parameter_count == 60'856 + 850);
// what a conv or pooling layer accepts
static_assert(!g::conv2d<6, 5>::accepts<g::shape<784>>);
static_assert(!g::conv2d<6, 5>::accepts<g::shape<1, 4, 4>> &&
              g::conv2d<6, 5, g::pad<1>>::accepts<g::shape<1, 4, 4>>);
static_assert(!g::max_pool<2>::accepts<g::shape<10>> && g::max_pool<2>::accepts<g::shape<3, 2, 2>>);
static_assert(std::is_same_v<g::conv2d<4, 3, g::stride<2>,
                                       g::pad<1>>::bind<float, g::shape<2, 7, 7>>::output_shape,
                             g::shape<4, 4, 4>>);
static_assert(g::conv2d<4, 3, g::no_bias>::bind<float, g::shape<2, 7, 7>>::parameter_count ==
              4 * 2 * 9);

TEST_CASE("conv2d forward equals a direct convolution (padding, stride, no bias)") {
  auto check = [](auto layer_tag, std::size_t S, std::size_t P) {
    using L = typename decltype(layer_tag)::type;
    constexpr std::size_t C = L::input_shape::dims[0], H = L::input_shape::dims[1],
                          W = L::input_shape::dims[2];
    constexpr std::size_t F = L::output_shape::dims[0], HO = L::output_shape::dims[1],
                          WO = L::output_shape::dims[2];
    std::size_t K = 1;
    while (K * K * C < L::CKK) ++K;
    g::splitmix64 rng(3);
    auto l = std::make_unique<L>();
    l->init(rng);
    for (auto& b : l->bias) b = static_cast<double>(rng.uniform(-1, 1));
    std::vector<double> x(2 * C * H * W), y(2 * F * HO * WO);
    for (auto& v : x) v = rng.uniform(-1, 1);
    std::vector<double> ws(g::detail::training_workspace_of<L>(2));
    l->forward(x.data(), y.data(), 2, ws.data());
    std::size_t bad = 0;
    for (std::size_t r = 0; r < 2; ++r)
      for (std::size_t f = 0; f < F; ++f)
        for (std::size_t oy = 0; oy < HO; ++oy)
          for (std::size_t ox = 0; ox < WO; ++ox) {
            double s = L::params.size() == 2 ? l->bias[f] : 0.0;
            for (std::size_t c = 0; c < C; ++c)
              for (std::size_t ky = 0; ky < K; ++ky)
                for (std::size_t kx = 0; kx < K; ++kx) {
                  const long iy = static_cast<long>(oy * S + ky) - static_cast<long>(P);
                  const long ix = static_cast<long>(ox * S + kx) - static_cast<long>(P);
                  if (iy < 0 || ix < 0 || iy >= static_cast<long>(H) || ix >= static_cast<long>(W))
                    continue;
                  s += l->weight(f, (c * K + ky) * K + kx) *
                       x[r * C * H * W + (c * H + static_cast<std::size_t>(iy)) * W +
                         static_cast<std::size_t>(ix)];
                }
            bad += std::abs(s - y[((r * F + f) * HO + oy) * WO + ox]) < 1e-12 ? 0 : 1;
          }
    CHECK(bad == 0);
  };
  check(std::type_identity<g::conv2d<3, 3>::bind<double, g::shape<2, 6, 7>>>{}, 1, 0);
  check(std::type_identity<g::conv2d<4, 3, g::pad<1>>::bind<double, g::shape<2, 6, 7>>>{}, 1, 1);
  check(std::type_identity<
            g::conv2d<5, 3, g::stride<2>, g::pad<1>>::bind<double, g::shape<3, 7, 9>>>{},
        2, 1);
  check(
      std::type_identity<g::conv2d<2, 5, g::pad<2>, g::no_bias>::bind<double, g::shape<1, 8, 8>>>{},
      1, 2);
}

#define CHECK_GRADIENTS GRAFT_CHECK_LAYER_GRADIENTS

TEST_CASE("layer gradients: conv2d (input, weight, bias) with padding, stride, no bias") {
  CHECK_GRADIENTS(g::conv2d<3, 3>::bind<double, g::shape<2, 6, 7>>);
  CHECK_GRADIENTS(g::conv2d<4, 3, g::pad<1>>::bind<double, g::shape<2, 5, 5>>);
  CHECK_GRADIENTS(g::conv2d<3, 3, g::stride<2>, g::pad<1>>::bind<double, g::shape<2, 7, 6>>);
  CHECK_GRADIENTS(g::conv2d<2, 5, g::pad<2>, g::no_bias>::bind<double, g::shape<1, 6, 6>>);
  CHECK_GRADIENTS(g::conv2d<3, 1, g::init::he>::bind<double, g::shape<4, 3, 3>>);  // 1x1 projection
}

TEST_CASE("layer gradients: pooling") {
  CHECK_GRADIENTS(g::max_pool<2>::bind<double, g::shape<3, 6, 6>>);
  CHECK_GRADIENTS(g::max_pool<3, 2>::bind<double, g::shape<2, 7, 7>>);
  CHECK_GRADIENTS(g::avg_pool<2>::bind<double, g::shape<3, 6, 5>>);
  CHECK_GRADIENTS(g::avg_pool<3, 1>::bind<double, g::shape<2, 5, 5>>);
  CHECK_GRADIENTS(g::global_avg_pool::bind<double, g::shape<4, 3, 5>>);
}

TEST_CASE("max_pool ties: forward and backward pick the first maximum of each window") {
  using L = g::max_pool<2>::bind<float, g::shape<1, 4, 4>>;
  L l;
  std::vector<float> x(16, 1.0f), y(4), dy{1, 2, 3, 4}, dx(16);
  x[5] = 1.0f;  // ties everywhere
  l.forward(x.data(), y.data(), 1);
  l.backward<true, 0>(x.data(), y.data(), dy.data(), dx.data(), nullptr, 1);
  const std::vector<float> expected{1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0};
  CHECK(dx == expected);
  float total = 0;
  for (float v : dx) total += v;
  CHECK(total == 10.0f);  // every window's gradient lands exactly once
}

TEST_CASE("whole-model gradients: a small CNN through the trainer") {
  using backbone =
      g::stack<g::input<2, 8, 8>, g::conv2d<3, 3, g::pad<1>>, g::relu, g::max_pool<2>,
               g::conv2d<4, 3>, g::tanh, g::avg_pool<2>, g::flatten, g::dense<5>, g::sigmoid>;
  using M = g::model<backbone, g::classifier<3>, double>;
  using tr = g::trainer<M, 3, g::sgd>;
  auto net = g::make_model<M>(g::seed{3});
  auto t = std::make_unique<tr>(*net, g::sgd{});
  g::splitmix64 rng(9);
  for (std::size_t i = 0; i < 3 * 128; ++i) t->input()[i] = rng.uniform(-1, 1);
  std::int32_t y[3] = {0, 2, 1};
  t->compute_gradients(y, 3);
  const auto rep = graft_test::check_trainer(*net, *t, y, 3);
  INFO(rep.first_failure);
  CHECK(rep.checked == M::parameter_count);
  CHECK(rep.failures == 0);
}

TEST_CASE("LeNet trains on a synthetic task and freezing works across conv layers") {
  using net_t = g::model<lenet, g::classifier<3>>;
  // three classes: a bright square in one of three places
  g::splitmix64 rng(4);
  std::vector<float> x(300 * 784);
  std::vector<std::int32_t> labels(300);
  for (std::size_t i = 0; i < 300; ++i) {
    labels[i] = static_cast<std::int32_t>(rng.below(3));
    for (std::size_t p = 0; p < 784; ++p)
      x[i * 784 + p] = static_cast<float>(0.2 * rng.uniform01());
    const std::size_t oy = 4 + 8 * static_cast<std::size_t>(labels[i]);
    for (std::size_t dy = 0; dy < 6; ++dy)
      for (std::size_t dx = 0; dx < 6; ++dx) x[i * 784 + (oy + dy) * 28 + 10 + dx] = 1.0f;
  }
  const auto ds = g::data::make_classification("squares", {1, 28, 28}, x, labels, 3);
  auto net = g::make_model<net_t>(g::seed{1});
  g::pretrain(*net, ds, g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::epochs{3}, g::batch<32>);
  CHECK(g::evaluate(*net, ds).accuracy > 0.95);
  // first<1>: the first conv layer is frozen and cached; it stays bitwise unchanged
  const auto w0 = net->layer<0>().weight;
  const auto w3 = net->layer<3>().weight;
  const auto rep =
      g::finetune<g::freeze::first<1>>(*net, ds, g::sgd{.lr = 0.01f}, g::steps{5}, g::batch<32>);
  CHECK(rep.cached_features);
  CHECK(net->layer<0>().weight == w0);
  CHECK_FALSE(net->layer<3>().weight == w3);
}

TEST_CASE(
    "dropout: identity at evaluation, seeded inverted dropout in training, same mask backward") {
  using L = g::dropout<30>::bind<double, g::shape<10000>>;
  auto l = std::make_unique<L>();
  g::splitmix64 rng(1);
  l->init(rng);
  std::vector<double> x(10000), y(10000), dy(10000), dx(10000);
  for (auto& v : x) v = rng.uniform(0.5, 1.0);
  for (auto& v : dy) v = rng.uniform(-1.0, 1.0);
  l->forward(x.data(), y.data(), 1);
  CHECK(y == x);  // evaluation
  const auto saved = *l;
  l->forward_train(x.data(), y.data(), 1);
  std::size_t zeros = 0, wrong_scale = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (y[i] == 0.0)
      ++zeros;
    else if (std::abs(y[i] - x[i] / 0.7) > 1e-12)
      ++wrong_scale;
  }
  CHECK(static_cast<double>(zeros) / 10000.0 == doctest::Approx(0.3).epsilon(0.07));
  CHECK(wrong_scale == 0);
  l->backward<true, 0>(x.data(), y.data(), dy.data(), dx.data(), nullptr, 1);
  std::size_t mismatched = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    mismatched +=
        (y[i] == 0.0) == (dx[i] == 0.0) && (y[i] == 0.0 || std::abs(dx[i] - dy[i] / 0.7) < 1e-12)
            ? 0
            : 1;
  CHECK(mismatched == 0);
  // the same state gives the same mask (reproducible); the next call draws a new one
  auto again = std::make_unique<L>(saved);
  std::vector<double> y2(10000), y3(10000);
  again->forward_train(x.data(), y2.data(), 1);
  CHECK(y2 == y);
  again->forward_train(x.data(), y3.data(), 1);
  CHECK_FALSE(y3 == y);
  // central differences through a fixed mask
  std::vector<double> xs(x.begin(), x.begin() + 50), gs(dy.begin(), dy.begin() + 50), ys(50),
      dxs(50);
  using S = g::dropout<30>::bind<double, g::shape<50>>;
  S small;
  small.init(rng);
  const S before = small;
  small.forward_train(xs.data(), ys.data(), 1);
  small.backward<true, 0>(xs.data(), ys.data(), gs.data(), dxs.data(), nullptr, 1);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < 50; ++i) {
    auto objective = [&](double v) {
      S copy = before;
      auto xx = xs;
      xx[i] = v;
      std::vector<double> yy(50);
      copy.forward_train(xx.data(), yy.data(), 1);
      double s = 0;
      for (std::size_t k = 0; k < 50; ++k) s += gs[k] * yy[k];
      return s;
    };
    const double numeric = (objective(xs[i] + 1e-6) - objective(xs[i] - 1e-6)) / 2e-6;
    bad += graft_test::close(dxs[i], numeric) ? 0 : 1;
  }
  CHECK(bad == 0);
}

TEST_CASE(
    "dropout in a model: trains, evaluates deterministically, and a frozen prefix runs in "
    "evaluation mode") {
  using backbone = g::stack<g::input<2, 3>, g::flatten, g::dense<16>, g::relu, g::dropout<20>,
                            g::dense<8>, g::relu>;
  using net_t = g::model<backbone, g::classifier<3>>;
  const auto ds = graft_test::blobs(240, {2, 3}, 5);
  auto net = g::make_model<net_t>(g::seed{1});
  g::pretrain(*net, ds, g::sgd{.lr = 0.1f, .momentum = 0.9f}, g::epochs{10}, g::batch<16>);
  const auto e1 = g::evaluate(*net, ds), e2 = g::evaluate(*net, ds);
  CHECK(e1.accuracy > 0.9);
  CHECK(e1.loss == e2.loss);
  // freeze::first<1> keeps dense<16> frozen: the dropout above it is then below the lowest
  // trainable layer (dense<8>), runs as the identity, and the cached run equals the uncached one
  auto a = std::make_unique<net_t>(*net), b = std::make_unique<net_t>(*net);
  g::finetune<g::freeze::first<1>>(*a, ds, g::sgd{.lr = 0.05f}, g::steps{10}, g::batch<16>,
                                   g::feature_cache{true});
  g::finetune<g::freeze::first<1>>(*b, ds, g::sgd{.lr = 0.05f}, g::steps{10}, g::batch<16>,
                                   g::feature_cache{false});
  CHECK(a->layer<4>().weight == b->layer<4>().weight);
  CHECK(a->head().weight == b->head().weight);
}

// Scalar reference of max_pool<2> (first maximum of each window, NaN wins) and of relu.
namespace {
template <class L, class T> void check_max_pool2(std::uint64_t seed) {
  constexpr std::size_t C = L::input_shape::dims[0], H = L::input_shape::dims[1],
                        W = L::input_shape::dims[2], HO = H / 2, WO = W / 2;
  constexpr std::size_t rows = 3;
  g::splitmix64 rng(seed);
  std::vector<T> x(rows * C * H * W), y(rows * C * HO * WO), dy(y.size()), dx(x.size());
  for (auto& v : x) {  // few distinct values: many ties, some -0 and +0, a few NaN
    const auto k = rng.below(12);
    v = k == 0 ? std::numeric_limits<T>::quiet_NaN()
               : (k == 1 ? T(-0.0) : (k == 2 ? T(0) : static_cast<T>(rng.below(4)) - T(1)));
  }
  for (auto& v : dy) v = rng.below(8) == 0 ? T(-0.0) : static_cast<T>(rng.uniform(-1, 1));
  L l;
  l.forward(x.data(), y.data(), rows);
  l.template backward<true, 0>(x.data(), y.data(), dy.data(), dx.data(), nullptr, rows);
  std::vector<T> ry(y.size()), rdx(x.size(), T(0));
  for (std::size_t r = 0; r < rows * C; ++r)
    for (std::size_t oy = 0; oy < HO; ++oy)
      for (std::size_t ox = 0; ox < WO; ++ox) {
        std::size_t best = r * H * W + 2 * oy * W + 2 * ox;
        for (std::size_t ky = 0; ky < 2; ++ky)
          for (std::size_t kx = 0; kx < 2; ++kx) {
            const std::size_t i = r * H * W + (2 * oy + ky) * W + 2 * ox + kx;
            if (x[i] > x[best] || (std::isnan(x[i]) && !std::isnan(x[best]))) best = i;
          }
        ry[r * HO * WO + oy * WO + ox] = x[best];
        rdx[best] += dy[r * HO * WO + oy * WO + ox];
      }
  CHECK(std::memcmp(y.data(), ry.data(), y.size() * sizeof(T)) == 0);
  CHECK(std::memcmp(dx.data(), rdx.data(), dx.size() * sizeof(T)) == 0);
}
template <class T> void check_max_pool2_shapes() {
  check_max_pool2<typename g::max_pool<2>::bind<T, g::shape<3, 28, 28>>, T>(1);
  check_max_pool2<typename g::max_pool<2>::bind<T, g::shape<2, 10, 10>>, T>(2);
  check_max_pool2<typename g::max_pool<2>::bind<T, g::shape<3, 7, 9>>, T>(3);   // odd: uncovered
  check_max_pool2<typename g::max_pool<2>::bind<T, g::shape<2, 9, 35>>, T>(4);  // row + partial
  check_max_pool2<typename g::max_pool<2>::bind<T, g::shape<2, 5, 5>>, T>(5);   // scalar path
  check_max_pool2<typename g::max_pool<2>::bind<T, g::shape<1, 4, 40>>, T>(6);
}
template <class T, std::size_t N> void check_relu_bitwise() {
  using L = g::relu::bind<T, g::shape<N>>;
  constexpr std::size_t rows = 3;  // 3 * N values: whole vectors and a tail
  g::splitmix64 rng(N);
  std::vector<T> x(rows * N), y(x.size()), dy(x.size()), dx(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto k = rng.below(10);
    x[i] = k == 0 ? std::numeric_limits<T>::quiet_NaN()
                  : (k == 1 ? T(-0.0) : static_cast<T>(rng.uniform(-1, 1)));
    dy[i] = k == 2 ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(rng.uniform(-1, 1));
  }
  L l;
  l.forward(x.data(), y.data(), rows);
  l.template backward<true, 0>(x.data(), y.data(), dy.data(), dx.data(), nullptr, rows);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const T ry = x[i] < T(0) ? T(0) : x[i];
    const T rdx = dy[i] * (ry > T(0) ? T(1) : T(0));
    bad += std::memcmp(&ry, &y[i], sizeof(T)) == 0 && std::memcmp(&rdx, &dx[i], sizeof(T)) == 0 ? 0
                                                                                                : 1;
  }
  CHECK(bad == 0);
}
}  // namespace

TEST_CASE(
    "max_pool<2> (SIMD rows) equals the scalar first-maximum rule bitwise, float and double") {
  check_max_pool2_shapes<float>();
  check_max_pool2_shapes<double>();
}

TEST_CASE("relu (SIMD) equals the scalar definition bitwise, NaN and -0 included") {
  check_relu_bitwise<float, 101>();
  check_relu_bitwise<float, 8>();
  check_relu_bitwise<double, 101>();
  check_relu_bitwise<double, 3>();
}

TEST_CASE(
    "conv2d (float, LeNet shapes and a padded row length): each sample's output and "
    "gradients do not depend on its position in the batch") {
  auto check = [](auto layer_tag) {
    using L = typename decltype(layer_tag)::type;
    constexpr std::size_t in = L::input_shape::size, out = L::output_shape::size;
    g::splitmix64 rng(7);
    auto l = std::make_unique<L>();
    l->init(rng);
    constexpr std::size_t rows = 5;
    std::vector<float> x(rows * in), y(rows * out), dy(rows * out), dx(rows * in);
    for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
    for (auto& v : dy) v = static_cast<float>(rng.uniform(-1, 1));
    std::vector<float> ws(g::detail::training_workspace_of<L>(rows));
    l->forward(x.data(), y.data(), rows, ws.data());
    std::vector<float> gw(L::parameter_count), gw1(L::parameter_count);
    float* grads[2] = {gw.data(), gw.data() + L::params[0].size};
    l->template backward<true, 3, g::train_mode{}>(x.data(), y.data(), dy.data(), dx.data(), grads,
                                                   rows, ws.data());
    for (std::size_t r : {std::size_t{0}, std::size_t{3}}) {
      std::vector<float> y1(out), dx1(in);
      l->forward(x.data() + r * in, y1.data(), 1, ws.data());
      CHECK(std::memcmp(y1.data(), y.data() + r * out, out * sizeof(float)) == 0);
      float* g1[2] = {gw1.data(), gw1.data() + L::params[0].size};
      l->template backward<true, 3, g::train_mode{}>(
          x.data() + r * in, y1.data(), dy.data() + r * out, dx1.data(), g1, 1, ws.data());
      CHECK(std::memcmp(dx1.data(), dx.data() + r * in, in * sizeof(float)) == 0);
    }
  };
  check(std::type_identity<g::conv2d<6, 5, g::pad<2>>::bind<float, g::shape<1, 28, 28>>>{});
  check(std::type_identity<g::conv2d<16, 5>::bind<float, g::shape<6, 14, 14>>>{});
  check(std::type_identity<g::conv2d<5, 3, g::stride<2>>::bind<float, g::shape<3, 11, 9>>>{});
}

TEST_CASE(
    "conv2d weight, bias and input gradients in float equal direct sums (both weight-gradient "
    "kernels: F a multiple of the SIMD width, or not)") {
  auto check = [](auto layer_tag, std::size_t K, std::size_t P) {
    using L = typename decltype(layer_tag)::type;
    constexpr std::size_t C = L::input_shape::dims[0], H = L::input_shape::dims[1],
                          W = L::input_shape::dims[2];
    constexpr std::size_t F = L::output_shape::dims[0], HO = L::output_shape::dims[1],
                          WO = L::output_shape::dims[2];
    constexpr std::size_t rows = 3, in = C * H * W, out = F * HO * WO;
    g::splitmix64 rng(11);
    auto l = std::make_unique<L>();
    l->init(rng);
    std::vector<float> x(rows * in), y(rows * out), dy(rows * out), dx(rows * in);
    for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
    for (auto& v : dy) v = static_cast<float>(rng.uniform(-1, 1));
    std::vector<float> gw(L::parameter_count, 7.0f);  // overwritten, not accumulated
    float* grads[2] = {gw.data(), gw.data() + L::params[0].size};
    std::vector<float> ws(g::detail::training_workspace_of<L>(rows));
    l->forward(x.data(), y.data(), rows, ws.data());
    l->template backward<true, 3, g::train_mode{}>(x.data(), y.data(), dy.data(), dx.data(), grads,
                                                   rows, ws.data());
    std::vector<double> rw(F * L::CKK, 0.0), rb(F, 0.0), rdx(rows * in, 0.0);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t f = 0; f < F; ++f)
        for (std::size_t oy = 0; oy < HO; ++oy)
          for (std::size_t ox = 0; ox < WO; ++ox) {
            const double g = dy[r * out + (f * HO + oy) * WO + ox];
            rb[f] += g;
            for (std::size_t c = 0; c < C; ++c)
              for (std::size_t ky = 0; ky < K; ++ky)
                for (std::size_t kx = 0; kx < K; ++kx) {
                  const long iy = static_cast<long>(oy + ky) - static_cast<long>(P);
                  const long ix = static_cast<long>(ox + kx) - static_cast<long>(P);
                  if (iy < 0 || ix < 0 || iy >= static_cast<long>(H) || ix >= static_cast<long>(W))
                    continue;
                  const std::size_t xi = r * in + (c * H + static_cast<std::size_t>(iy)) * W +
                                         static_cast<std::size_t>(ix);
                  rw[f * L::CKK + (c * K + ky) * K + kx] += g * x[xi];
                  rdx[xi] += g * l->weight(f, (c * K + ky) * K + kx);
                }
          }
    std::size_t bad = 0;
    for (std::size_t i = 0; i < rw.size(); ++i) bad += std::abs(rw[i] - gw[i]) < 1e-3 ? 0 : 1;
    for (std::size_t f = 0; f < F; ++f) bad += std::abs(rb[f] - grads[1][f]) < 1e-3 ? 0 : 1;
    for (std::size_t i = 0; i < rdx.size(); ++i) bad += std::abs(rdx[i] - dx[i]) < 1e-4 ? 0 : 1;
    CHECK(bad == 0);
  };
  check(std::type_identity<g::conv2d<16, 5>::bind<float, g::shape<6, 14, 14>>>{}, 5, 0);
  check(std::type_identity<g::conv2d<6, 5, g::pad<2>>::bind<float, g::shape<1, 28, 28>>>{}, 5, 2);
  check(std::type_identity<g::conv2d<8, 3, g::pad<1>>::bind<float, g::shape<3, 7, 5>>>{}, 3, 1);
  check(std::type_identity<g::conv2d<5, 3>::bind<float, g::shape<2, 9, 6>>>{}, 3, 0);
}

TEST_CASE("fused activations: runner and trainer give what the layers give one by one, bitwise") {
  // LeNet: conv+relu (direct forward and im2col) and dense+relu pairs are fused; the reference
  // calls every layer's own forward, relu included.
  using net_t = g::model<lenet, g::classifier<10>>;
  using plan = g::detail::model_plan<net_t>;
  static_assert(plan::fused == std::array<bool, 12>{true, false, false, true, false, false, false,
                                                    true, false, true, false, false});
  constexpr std::size_t B = 5;
  auto net = g::make_model<net_t>(g::seed{8});
  g::splitmix64 rng(9);
  std::vector<float> x(B * 784);
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1.0, 1.0));

  std::vector<std::vector<float>> act(net_t::layer_count + 1);
  act[0] = x;
  g::meta::static_for<net_t::layer_count>([&](auto i) {
    act[i + 1].resize(B * plan::sizes[i + 1]);
    using L = typename net_t::template layer_type<i>;
    std::vector<float> ws(g::detail::inference_workspace_of<L>(B) + 1);
    g::detail::forward_eval(net->template layer<i>(), act[i].data(), act[i + 1].data(), B,
                            ws.data());
  });
  const auto& logits = act[net_t::layer_count];

  auto r = std::make_unique<g::runner<net_t, B>>();
  std::copy(x.begin(), x.end(), r->input());
  const float* out = r->forward(*net, B);
  CHECK(std::equal(logits.begin(), logits.end(), out));

  using tr_t = g::trainer<net_t, B, g::sgd>;
  auto t = std::make_unique<tr_t>(*net, g::sgd{});
  std::copy(x.begin(), x.end(), t->input());
  t->forward(B);
  CHECK(std::equal(logits.begin(), logits.end(), t->output()));
  // every activation the pass writes: all but the pre-activations of fused pairs
  for (std::size_t i = 1; i <= net_t::layer_count; ++i)
    if (!plan::fused[i - 1]) {
      CAPTURE(i);
      CHECK(std::equal(act[i].begin(), act[i].end(), t->activation(i)));
    }
  // a pass that stops between a layer and its activation writes the pre-activation
  t->forward(B, 0, 8);
  CHECK(std::equal(act[8].begin(), act[8].end(), t->activation(8)));
  // and one that starts at the activation applies it alone
  t->forward(B, 8);
  CHECK(std::equal(logits.begin(), logits.end(), t->output()));
}
