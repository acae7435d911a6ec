// 1-D convolution over sequences and pooling over time (issue 16): shapes while compiling, the
// forward against a direct convolution in double (PyTorch's weight layout, padding 0/1/2 and
// beyond the sequence, stride 2 and 3, no bias), gradient checks per layer and through whole
// models in double, float against the double reference, the fixed summation orders (bitwise the
// scalar reference kernels), fused against unfused, batch position, constant models and the
// device trainer, pooling ties, NaN and lengths, and a small char-CNN trained on a synthetic
// sequence task.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include <graft/graft.hpp>
#include <graft/kernels/reference.hpp>
#include <graft/train/device.hpp>

#include "support/gradcheck.hpp"

namespace g = graft;

// ---- shapes while compiling ---------------------------------------------------------------------
static_assert(std::is_same_v<g::conv1d<6, 3, g::pad<1>>::bind<float, g::shape<10, 4>>::output_shape,
                             g::shape<10, 6>>);
static_assert(
    std::is_same_v<g::conv1d<5, 3, g::stride<2>>::bind<float, g::shape<10, 6>>::output_shape,
                   g::shape<4, 5>>);
static_assert(std::is_same_v<
              g::conv1d<3, 4, g::stride<2>, g::pad<2>>::bind<float, g::shape<11, 2>>::output_shape,
              g::shape<6, 3>>);
static_assert(g::conv1d<6, 3>::bind<float, g::shape<10, 4>>::parameter_count == 3 * 4 * 6 + 6);
static_assert(g::conv1d<6, 3, g::no_bias>::bind<float, g::shape<10, 4>>::parameter_count ==
              3 * 4 * 6);
static_assert(g::conv1d<6, 3, g::no_bias>::bind<float, g::shape<10, 4>>::params.size() == 1);
static_assert(!g::conv1d<4, 5>::accepts<g::shape<4, 3>> &&
              g::conv1d<4, 5, g::pad<1>>::accepts<g::shape<3, 3>>);
static_assert(!g::conv1d<4, 3>::accepts<g::shape<12>> &&
              !g::conv1d<4, 3>::accepts<g::shape<1, 4, 4>>);
static_assert(g::global_max_pool_time::accepts<g::shape<7, 5>> &&
              !g::global_max_pool_time::accepts<g::shape<35>> &&
              !g::global_mean_pool_time::accepts<g::shape<1, 7, 5>>);
static_assert(std::is_same_v<g::global_mean_pool_time::bind<float, g::shape<7, 5>>::output_shape,
                             g::shape<5>>);
// The char-CNN backbone of issue 16 after its embedding (32 channels, 16 positions): two conv1d
// 64 k3 (pad 1 keeps the length), global max pool, dense 64.
using char_cnn =
    g::stack<g::input<16, 32>, g::conv1d<64, 3, g::pad<1>>, g::relu, g::conv1d<64, 3, g::pad<1>>,
             g::relu, g::global_max_pool_time, g::dense<64>, g::relu>;
static_assert(char_cnn::parameter_count == (96 * 64 + 64) + (192 * 64 + 64) + (64 * 64 + 64));
static_assert(std::is_same_v<char_cnn::output_shape, g::shape<64>>);
static_assert(std::is_same_v<g::meta::list_element_t<2, char_cnn::shapes>, g::shape<16, 64>>);

namespace {
// ---- a direct convolution in double, on PyTorch's weight layout [F][C][K] -----------------------
struct geometry {
  std::size_t L, C, F, K, S, P;
  std::size_t LO() const { return (L + 2 * P - K) / S + 1; }
};
template <class Layer> geometry geometry_of() {
  return {Layer::input_shape::dims[0],
          Layer::input_shape::dims[1],
          Layer::output_shape::dims[1],
          Layer::kernel,
          Layer::step,
          Layer::padding};
}
// The layer's weight in PyTorch's layout: wt[(f * C + c) * K + k] = weight(k * C + c, f).
template <class Layer> std::vector<double> torch_weight(const Layer& l) {
  const geometry d = geometry_of<Layer>();
  std::vector<double> wt(d.F * d.C * d.K);
  for (std::size_t f = 0; f < d.F; ++f)
    for (std::size_t c = 0; c < d.C; ++c)
      for (std::size_t k = 0; k < d.K; ++k)
        wt[(f * d.C + c) * d.K + k] = static_cast<double>(l.weight(k * d.C + c, f));
  return wt;
}
// The input position window lo's tap k reads, or -1 in the padding.
long tap(const geometry& d, std::size_t lo, std::size_t k) {
  const long i = static_cast<long>(lo * d.S + k) - static_cast<long>(d.P);
  return i >= 0 && i < static_cast<long>(d.L) ? i : -1;
}
// y[r][lo][f] = b[f] + sum_{c,k} wt[f][c][k] x[r][lo S + k - P][c]
std::vector<double> naive_forward(const geometry& d, const std::vector<double>& x,
                                  const std::vector<double>& wt, const double* b,
                                  std::size_t rows) {
  std::vector<double> y(rows * d.LO() * d.F);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t lo = 0; lo < d.LO(); ++lo)
      for (std::size_t f = 0; f < d.F; ++f) {
        double s = b != nullptr ? b[f] : 0.0;
        for (std::size_t c = 0; c < d.C; ++c)
          for (std::size_t k = 0; k < d.K; ++k) {
            const long i = tap(d, lo, k);
            if (i >= 0)
              s += wt[(f * d.C + c) * d.K + k] *
                   x[(r * d.L + static_cast<std::size_t>(i)) * d.C + c];
          }
        y[(r * d.LO() + lo) * d.F + f] = s;
      }
  return y;
}
struct naive_grads {
  std::vector<double> dx, dwt, db;  // dwt in PyTorch's layout
};
naive_grads naive_backward(const geometry& d, const std::vector<double>& x,
                           const std::vector<double>& wt, const std::vector<double>& dy,
                           std::size_t rows) {
  naive_grads gr{std::vector<double>(rows * d.L * d.C), std::vector<double>(wt.size()),
                 std::vector<double>(d.F)};
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t lo = 0; lo < d.LO(); ++lo)
      for (std::size_t f = 0; f < d.F; ++f) {
        const double gy = dy[(r * d.LO() + lo) * d.F + f];
        gr.db[f] += gy;
        for (std::size_t c = 0; c < d.C; ++c)
          for (std::size_t k = 0; k < d.K; ++k) {
            const long i = tap(d, lo, k);
            if (i < 0) continue;
            const std::size_t xi = (r * d.L + static_cast<std::size_t>(i)) * d.C + c;
            gr.dwt[(f * d.C + c) * d.K + k] += gy * x[xi];
            gr.dx[xi] += gy * wt[(f * d.C + c) * d.K + k];
          }
      }
  return gr;
}

template <class Layer> std::size_t workspace(std::size_t rows) {
  return g::detail::training_workspace_of<Layer>(rows) + 1;
}

// ---- double: the layer against the direct convolution -------------------------------------------
template <class Layer> void check_forward_double(std::uint64_t seed) {
  using T = double;
  const geometry d = geometry_of<Layer>();
  constexpr std::size_t rows = 3;
  constexpr bool bias = Layer::params.size() == 2;
  g::splitmix64 rng(seed);
  auto l = std::make_unique<Layer>();
  l->init(rng);
  if constexpr (bias)
    for (auto& b : l->bias) b = rng.uniform(-1, 1);  // pytorch init: small; make it count
  std::vector<T> x(rows * d.L * d.C), y(rows * d.LO() * d.F);
  for (auto& v : x) v = rng.uniform(-1, 1);
  std::vector<T> ws(workspace<Layer>(rows));
  l->forward(x.data(), y.data(), rows, ws.data());
  const auto ref = naive_forward(d, x, torch_weight(*l), bias ? l->bias.data() : nullptr, rows);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < y.size(); ++i) bad += std::abs(y[i] - ref[i]) < 1e-12 ? 0 : 1;
  CAPTURE(Layer::name());
  CHECK(bad == 0);
}

// ---- float: the layer within tolerance of the double reference ----------------------------------
template <class Layer> void check_float_against_double(std::uint64_t seed) {
  using T = float;
  const geometry d = geometry_of<Layer>();
  constexpr std::size_t rows = 4;
  constexpr bool bias = Layer::params.size() == 2;
  g::splitmix64 rng(seed);
  auto l = std::make_unique<Layer>();
  l->init(rng);
  std::vector<T> x(rows * d.L * d.C), y(rows * d.LO() * d.F), dy(y.size()), dx(x.size());
  for (auto& v : x) v = static_cast<T>(rng.uniform(-1, 1));
  for (auto& v : dy) v = static_cast<T>(rng.uniform(-1, 1));
  std::vector<T> gw(Layer::parameter_count, 7.0f);  // overwritten, not accumulated
  T* grads[2] = {gw.data(), gw.data() + Layer::params[0].size};
  std::vector<T> ws(workspace<Layer>(rows));
  l->forward(x.data(), y.data(), rows, ws.data());
  constexpr unsigned all = bias ? 3U : 1U;
  l->template backward<true, all, g::train_mode{}>(x.data(), y.data(), dy.data(), dx.data(), grads,
                                                   rows, ws.data());
  const std::vector<double> xd(x.begin(), x.end()), dyd(dy.begin(), dy.end());
  std::vector<double> bd(d.F);
  for (std::size_t f = 0; f < d.F; ++f) bd[f] = l->bias[f];
  const auto wt = torch_weight(*l);
  const auto ry = naive_forward(d, xd, wt, bias ? bd.data() : nullptr, rows);
  const auto rg = naive_backward(d, xd, wt, dyd, rows);
  auto near = [](double a, double b) { return std::abs(a - b) <= 1e-5 * (1 + std::abs(b)) * 8; };
  std::size_t bad = 0;
  for (std::size_t i = 0; i < y.size(); ++i) bad += near(y[i], ry[i]) ? 0 : 1;
  for (std::size_t i = 0; i < dx.size(); ++i) bad += near(dx[i], rg.dx[i]) ? 0 : 1;
  for (std::size_t f = 0; f < d.F; ++f)
    for (std::size_t c = 0; c < d.C; ++c)
      for (std::size_t k = 0; k < d.K; ++k)
        bad += near(gw[(k * d.C + c) * d.F + f], rg.dwt[(f * d.C + c) * d.K + k]) ? 0 : 1;
  if constexpr (bias)
    for (std::size_t f = 0; f < d.F; ++f) bad += near(grads[1][f], rg.db[f]) ? 0 : 1;
  CAPTURE(Layer::name());
  CHECK(bad == 0);
}

// ---- the fixed orders: bitwise the scalar reference kernels (kernels/reference.hpp) -------------
// forward: per sample, reference::gemm_bcast on the padded sample (windows S * C apart) from the
// bias; dW: one reference::gemm_bcast chain over the samples; db: reference::column_sum per
// sample, the samples' sums added in order; dx: reference::gemm_nt_packed per sample, then the
// window gradients added at their positions, 0 + windows in order. The reference is scalar fmadd:
// the same bits on every instruction set.
template <class Layer> void check_bitwise_reference(std::uint64_t seed) {
  using T = typename Layer::scalar;
  namespace ref = g::kernels::reference;
  const geometry d = geometry_of<Layer>();
  constexpr std::size_t rows = 5;
  constexpr bool bias = Layer::params.size() == 2;
  const std::size_t LO = d.LO(), KC = d.K * d.C, LP = d.L + 2 * d.P, in = d.L * d.C, out = LO * d.F;
  g::splitmix64 rng(seed);
  auto l = std::make_unique<Layer>();
  l->init(rng);
  std::vector<T> x(rows * in), y(rows * out), dy(y.size()), dx(x.size());
  for (auto& v : x) v = static_cast<T>(rng.uniform(-1, 1));
  for (auto& v : dy) v = static_cast<T>(rng.uniform(-1, 1));
  std::vector<T> gw(Layer::parameter_count);
  T* grads[2] = {gw.data(), gw.data() + Layer::params[0].size};
  std::vector<T> ws(workspace<Layer>(rows));
  l->forward(x.data(), y.data(), rows, ws.data());
  constexpr unsigned all = bias ? 3U : 1U;
  l->template backward<true, all, g::train_mode{}>(x.data(), y.data(), dy.data(), dx.data(), grads,
                                                   rows, ws.data());

  std::vector<T> xp(rows * LP * d.C, T(0)), ry(y.size()), rdx(dx.size(), T(0)), rdw(KC * d.F),
      rdb(d.F), part(d.F), dwin(LO * KC);
  for (std::size_t r = 0; r < rows; ++r)
    std::copy_n(x.data() + r * in, in, xp.data() + (r * LP + d.P) * d.C);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = xp.data() + r * LP * d.C;
    T* yr = ry.data() + r * out;
    for (std::size_t lo = 0; lo < LO; ++lo)
      for (std::size_t f = 0; f < d.F; ++f) yr[lo * d.F + f] = bias ? l->bias[f] : T(0);
    ref::gemm_bcast(LO, KC, d.F, xr, d.S * d.C, 1, l->weight.data(), yr, true);
    ref::gemm_bcast(KC, LO, d.F, xr, 1, d.S * d.C, dy.data() + r * out, rdw.data(), r > 0);
    ref::gemm_nt_packed(LO, KC, d.F, dy.data() + r * out, l->weight.data(), dwin.data());
    ref::column_sum(LO, d.F, dy.data() + r * out, part.data(), false);
    for (std::size_t f = 0; f < d.F; ++f) rdb[f] = r == 0 ? part[f] : rdb[f] + part[f];
    for (std::size_t lo = 0; lo < LO; ++lo)
      for (std::size_t k = 0; k < d.K; ++k) {
        const long i = tap(d, lo, k);
        if (i >= 0)
          for (std::size_t c = 0; c < d.C; ++c)
            rdx[r * in + static_cast<std::size_t>(i) * d.C + c] += dwin[lo * KC + k * d.C + c];
      }
  }
  CAPTURE(Layer::name());
  CHECK(std::memcmp(y.data(), ry.data(), y.size() * sizeof(T)) == 0);
  CHECK(std::memcmp(dx.data(), rdx.data(), dx.size() * sizeof(T)) == 0);
  CHECK(std::memcmp(grads[0], rdw.data(), rdw.size() * sizeof(T)) == 0);
  if constexpr (bias) CHECK(std::memcmp(grads[1], rdb.data(), rdb.size() * sizeof(T)) == 0);

  // each sample's output and input gradient do not depend on its place in the batch
  for (std::size_t r : {std::size_t{0}, std::size_t{3}}) {
    std::vector<T> y1(out), dx1(in), gw1(Layer::parameter_count);
    T* g1[2] = {gw1.data(), gw1.data() + Layer::params[0].size};
    l->forward(x.data() + r * in, y1.data(), 1, ws.data());
    l->template backward<true, all, g::train_mode{}>(
        x.data() + r * in, y1.data(), dy.data() + r * out, dx1.data(), g1, 1, ws.data());
    CHECK(std::memcmp(y1.data(), y.data() + r * out, out * sizeof(T)) == 0);
    CHECK(std::memcmp(dx1.data(), dx.data() + r * in, in * sizeof(T)) == 0);
  }
}

// ---- forward_fused<relu's epilogue> against forward then relu, bitwise --------------------------
template <class Layer> void check_fused_bitwise(std::uint64_t seed) {
  using T = typename Layer::scalar;
  using Relu = g::relu::bind<T, typename Layer::output_shape>;
  static_assert(g::Fusable<Layer, Relu>);
  constexpr std::size_t rows = 3, in = Layer::input_shape::size, out = Layer::output_shape::size;
  g::splitmix64 rng(seed);
  auto l = std::make_unique<Layer>();
  l->init(rng);
  std::vector<T> x(rows * in), pre(rows * out), y(rows * out), fused(rows * out);
  for (auto& v : x) v = static_cast<T>(rng.uniform(-1, 1));
  std::vector<T> ws(workspace<Layer>(rows));
  l->forward(x.data(), pre.data(), rows, ws.data());
  Relu{}.forward(pre.data(), y.data(), rows);
  l->template forward_fused<typename Relu::epilogue>(x.data(), fused.data(), rows, ws.data());
  CAPTURE(Layer::name());
  CHECK(std::memcmp(y.data(), fused.data(), y.size() * sizeof(T)) == 0);
  std::size_t zeros = 0;
  for (T v : y) zeros += v == T(0) ? 1 : 0;
  CHECK(zeros > 0);  // the relu did something
  CHECK(zeros < y.size());
}

template <class T, std::size_t L, std::size_t C> using max_pool_t =
    g::global_max_pool_time::bind<T, g::shape<L, C>>;
template <class T, std::size_t L, std::size_t C> using mean_pool_t =
    g::global_mean_pool_time::bind<T, g::shape<L, C>>;
}  // namespace

// The layer configurations: padding 0, 1, 2, more than the sequence and at least the kernel,
// strides 1, 2, 3, even and odd kernels, a pointwise kernel, no bias, filters below, at and above a
// SIMD vector, the size.
#define GRAFT_CONV1D_CONFIGS(T, CHECK_FN)                                          \
  CHECK_FN<g::conv1d<6, 3, g::pad<1>>::bind<T, g::shape<10, 4>>>(1);               \
  CHECK_FN<g::conv1d<5, 3, g::stride<2>>::bind<T, g::shape<10, 6>>>(2);            \
  CHECK_FN<g::conv1d<7, 5, g::pad<2>>::bind<T, g::shape<12, 5>>>(3);               \
  CHECK_FN<g::conv1d<3, 4, g::stride<2>, g::pad<2>>::bind<T, g::shape<11, 2>>>(4); \
  CHECK_FN<g::conv1d<4, 3, g::pad<1>, g::no_bias>::bind<T, g::shape<9, 3>>>(5);    \
  CHECK_FN<g::conv1d<2, 1>::bind<T, g::shape<5, 7>>>(6);                           \
  CHECK_FN<g::conv1d<3, 3, g::pad<2>, g::stride<3>>::bind<T, g::shape<4, 2>>>(7);  \
  CHECK_FN<g::conv1d<6, 5, g::pad<4>>::bind<T, g::shape<3, 2>>>(8);                \
  CHECK_FN<g::conv1d<17, 3, g::pad<1>>::bind<T, g::shape<7, 3>>>(9);               \
  CHECK_FN<g::conv1d<3, 2, g::pad<3>, g::stride<2>>::bind<T, g::shape<3, 2>>>(13); \
  CHECK_FN<g::conv1d<2, 1, g::pad<2>>::bind<T, g::shape<4, 3>>>(14)

TEST_CASE("conv1d forward equals a direct convolution in double (PyTorch's weight layout)") {
  GRAFT_CONV1D_CONFIGS(double, check_forward_double);
  check_forward_double<g::conv1d<64, 3, g::pad<1>>::bind<double, g::shape<16, 32>>>(10);
  check_forward_double<g::conv1d<64, 3, g::pad<1>>::bind<double, g::shape<16, 64>>>(11);
}

#define CHECK_GRADIENTS GRAFT_CHECK_LAYER_GRADIENTS

TEST_CASE("layer gradients: conv1d (input, weight, bias) with padding, stride, no bias") {
  CHECK_GRADIENTS(g::conv1d<6, 3, g::pad<1>>::bind<double, g::shape<10, 4>>);
  CHECK_GRADIENTS(g::conv1d<5, 3, g::stride<2>>::bind<double, g::shape<10, 6>>);
  CHECK_GRADIENTS(g::conv1d<7, 5, g::pad<2>>::bind<double, g::shape<12, 5>>);
  CHECK_GRADIENTS(g::conv1d<3, 4, g::stride<2>, g::pad<2>>::bind<double, g::shape<11, 2>>);
  CHECK_GRADIENTS(g::conv1d<4, 3, g::pad<1>, g::no_bias>::bind<double, g::shape<9, 3>>);
  CHECK_GRADIENTS(g::conv1d<2, 1, g::init::he>::bind<double, g::shape<5, 7>>);
  CHECK_GRADIENTS(g::conv1d<3, 3, g::pad<2>, g::stride<3>>::bind<double, g::shape<4, 2>>);
  CHECK_GRADIENTS(g::conv1d<6, 5, g::pad<4>>::bind<double, g::shape<3, 2>>);
  CHECK_GRADIENTS(g::conv1d<17, 3, g::pad<1>>::bind<double, g::shape<7, 3>>);
  // windows wholly in the padding (P >= K)
  CHECK_GRADIENTS(g::conv1d<3, 2, g::pad<3>, g::stride<2>>::bind<double, g::shape<3, 2>>);
  CHECK_GRADIENTS(g::conv1d<2, 1, g::pad<2>>::bind<double, g::shape<4, 3>>);
}

TEST_CASE("layer gradients: pooling over time") {
  CHECK_GRADIENTS(max_pool_t<double, 7, 5>);
  CHECK_GRADIENTS(max_pool_t<double, 1, 3>);
  CHECK_GRADIENTS(max_pool_t<double, 9, 40>);  // channels in two blocks
  CHECK_GRADIENTS(mean_pool_t<double, 7, 5>);
  CHECK_GRADIENTS(mean_pool_t<double, 16, 33>);
}

TEST_CASE("layer gradients: pooling over time with a padding mask (lengths L, 1, 3, 0)") {
  // Through the dispatch (forward_training / backward_of with a sequence_mask): the padded
  // positions get an exact zero gradient (their numerical derivative is 0), n = 0 pools to 0.
  auto clean = [](const graft::testing::grad_report& rep) {
    INFO(rep.first_failure);
    CHECK(rep.checked > 0);
    CHECK(rep.failures == 0);
  };
  graft::testing::layer_input in;
  in.lengths = {7, 1, 3, 0};
  clean(graft_test::check_layer<max_pool_t<double, 7, 5>, 4>(21, in));
  clean(graft_test::check_layer<mean_pool_t<double, 7, 5>, 4>(22, in));
  in.lengths = {9, 1, 3, 12};  // above L counts as L
  clean(graft_test::check_layer<max_pool_t<double, 9, 40>, 4>(23, in));
  clean(graft_test::check_layer<mean_pool_t<double, 9, 40>, 4>(24, in));
}

TEST_CASE("layer gradients: conv1d with a padding mask (lengths L, 1, 3, 0 and 2)") {
  auto clean = [](const graft::testing::grad_report& rep) {
    INFO(rep.first_failure);
    CHECK(rep.checked > 0);
    CHECK(rep.failures == 0);
  };
  graft::testing::layer_input in;
  in.lengths = {10, 1, 3, 0};
  clean(graft_test::check_layer<g::conv1d<6, 3, g::pad<1>>::bind<double, g::shape<10, 4>>, 4>(31,
                                                                                              in));
  clean(graft_test::check_layer<g::conv1d<5, 3, g::stride<2>>::bind<double, g::shape<10, 3>>, 4>(
      32, in));
  clean(graft_test::check_layer<
        g::conv1d<3, 4, g::stride<2>, g::pad<2>>::bind<double, g::shape<10, 2>>, 4>(33, in));
  clean(
      graft_test::check_layer<g::conv1d<4, 3, g::pad<1>, g::no_bias>::bind<double, g::shape<10, 3>>,
                              4>(34, in));
  in.lengths = {2, 7, 5, 10};
  clean(graft_test::check_layer<
        g::conv1d<3, 2, g::pad<3>, g::stride<2>>::bind<double, g::shape<10, 2>>, 4>(35, in));
}

namespace {
// conv1d bound at length L with sample length N against the same weights bound at length N: the
// valid outputs, the input gradient and the weight and bias gradients are the same bits; the
// invalid output rows are exact zeros; dy there is ignored, dx past N is zero.
template <class T, std::size_t L, std::size_t N, std::size_t F, std::size_t K, class... O>
void check_conv1d_own_length(std::uint64_t seed) {
  constexpr std::size_t C = 3;
  using big = typename g::conv1d<F, K, O...>::template bind<T, g::shape<L, C>>;
  using small = typename g::conv1d<F, K, O...>::template bind<T, g::shape<N, C>>;
  constexpr std::size_t lo_n = big::output_length(N);
  static_assert(small::LO == lo_n);
  auto a = std::make_unique<big>();
  auto b = std::make_unique<small>();
  g::splitmix64 rng(seed);
  a->init(rng);
  std::copy(a->weight.data(), a->weight.data() + big::KC * F, b->weight.data());
  std::copy(a->bias.data(), a->bias.data() + F, b->bias.data());
  std::vector<T> xa(L * C), xb(N * C), ya(big::LO * F), yb(lo_n * F);
  for (auto& v : xa) v = static_cast<T>(rng.uniform(-1, 1));  // garbage past N
  std::copy(xa.begin(), xa.begin() + N * C, xb.begin());
  std::vector<T> wsa(g::detail::training_workspace_of<big>(1) + 1),
      wsb(g::detail::training_workspace_of<small>(1) + 1);
  const std::size_t lengths[1] = {N};
  const g::sequence_mask m{lengths};
  g::detail::forward_eval(*a, xa.data(), ya.data(), 1, wsa.data(), m);
  g::detail::forward_eval(*b, xb.data(), yb.data(), 1, wsb.data());
  for (std::size_t i = 0; i < lo_n * F; ++i) CHECK(ya[i] == yb[i]);
  for (std::size_t i = lo_n * F; i < big::LO * F; ++i) CHECK(ya[i] == T(0));
  std::vector<T> dya(big::LO * F), dyb(lo_n * F), dxa(L * C), dxb(N * C);
  for (auto& v : dya) v = static_cast<T>(rng.uniform(-1, 1));  // garbage past lo_n
  std::copy(dya.begin(), dya.begin() + lo_n * F, dyb.begin());
  std::vector<T> ga0(big::KC * F), ga1(F), gb0(big::KC * F), gb1(F);
  T* ga[g::detail::max_params_per_layer] = {ga0.data(), ga1.data()};
  T* gb[g::detail::max_params_per_layer] = {gb0.data(), gb1.data()};
  g::detail::backward_of<true, 3U, g::train_mode{}>(*a, xa.data(), ya.data(), dya.data(),
                                                    dxa.data(), ga, 1, wsa.data(), m);
  g::detail::backward_of<true, 3U, g::train_mode{}>(*b, xb.data(), yb.data(), dyb.data(),
                                                    dxb.data(), gb, 1, wsb.data());
  for (std::size_t i = 0; i < N * C; ++i) CHECK(dxa[i] == dxb[i]);
  for (std::size_t i = N * C; i < L * C; ++i) CHECK(dxa[i] == T(0));
  CHECK(ga0 == gb0);
  CHECK(ga1 == gb1);
}
}  // namespace

TEST_CASE(
    "conv1d with a length equals conv1d bound at that length (values and gradients, bitwise)") {
  check_conv1d_own_length<float, 10, 7, 6, 3, g::pad<1>>(1);
  check_conv1d_own_length<float, 10, 1, 6, 3, g::pad<1>>(2);
  check_conv1d_own_length<float, 10, 3, 5, 3>(3);
  check_conv1d_own_length<float, 10, 9, 5, 3, g::stride<2>>(4);
  check_conv1d_own_length<float, 10, 4, 3, 4, g::stride<2>, g::pad<2>>(5);
  check_conv1d_own_length<double, 16, 11, 64, 3, g::pad<1>>(6);
  check_conv1d_own_length<float, 16, 5, 64, 3, g::pad<1>>(7);
  check_conv1d_own_length<double, 10, 2, 4, 3, g::pad<2>, g::stride<3>>(8);
}

TEST_CASE(
    "the pools read the mask through the dispatch: forward_lengths' values, zeros for n = 0") {
  using pool = max_pool_t<float, 6, 3>;
  using mean = mean_pool_t<float, 6, 3>;
  std::vector<float> x(2 * 18);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7) % 11) - 5.0F;
  const std::size_t lengths[2] = {2, 0};
  const g::sequence_mask m{lengths};
  float* const no_ws = nullptr;  // the pools' workspace has 0 elements
  std::vector<float> a(6), b(6), c(6), d(6);
  const pool p{};
  const mean q{};
  g::detail::forward_eval(p, x.data(), a.data(), 2, no_ws, m);
  pool::forward_lengths(x.data(), b.data(), 2, lengths);
  CHECK(a == b);
  CHECK(b[3] == 0.0F);
  g::detail::forward_eval(q, x.data(), c.data(), 2, no_ws, m);
  mean::forward_lengths(x.data(), d.data(), 2, lengths);
  CHECK(c == d);
  // without a mask the dispatch pools every position
  g::detail::forward_eval(p, x.data(), a.data(), 2, no_ws);
  pool::forward_lengths(x.data(), b.data(), 2, nullptr);
  CHECK(a == b);
  static_assert(g::detail::reads_mask_v<pool> && g::detail::reads_mask_v<mean>);
  static_assert(!g::detail::reads_mask_v<g::relu::bind<float, g::shape<6, 3>>>);
}

TEST_CASE("conv1d in float is within tolerance of the double reference (forward, dx, dW, db)") {
  GRAFT_CONV1D_CONFIGS(float, check_float_against_double);
  check_float_against_double<g::conv1d<64, 3, g::pad<1>>::bind<float, g::shape<16, 32>>>(10);
  check_float_against_double<g::conv1d<64, 3, g::pad<1>>::bind<float, g::shape<16, 64>>>(11);
}

TEST_CASE(
    "conv1d sums in its documented order: bitwise the scalar reference kernels, float and "
    "double, and each sample independent of its place in the batch") {
  GRAFT_CONV1D_CONFIGS(float, check_bitwise_reference);
  GRAFT_CONV1D_CONFIGS(double, check_bitwise_reference);
  check_bitwise_reference<g::conv1d<64, 3, g::pad<1>>::bind<float, g::shape<16, 32>>>(10);
  check_bitwise_reference<g::conv1d<64, 3, g::pad<1>>::bind<float, g::shape<16, 64>>>(11);
  check_bitwise_reference<g::conv1d<32, 5, g::stride<2>>::bind<double, g::shape<20, 16>>>(12);
}

TEST_CASE("conv1d + relu fused equals conv1d then relu, bitwise") {
  GRAFT_CONV1D_CONFIGS(float, check_fused_bitwise);
  GRAFT_CONV1D_CONFIGS(double, check_fused_bitwise);
  check_fused_bitwise<g::conv1d<64, 3, g::pad<1>>::bind<float, g::shape<16, 32>>>(10);
}

TEST_CASE("global_max_pool_time: ties go to the first position, NaN wins, -0 before +0") {
  using P = max_pool_t<float, 5, 4>;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // channel 0: all equal; 1: a later tie of the maximum; 2: NaN (the first one wins); 3: -0, +0
  const std::vector<float> x{2, 1, 1,   -0.0f,  //
                             2, 3, nan, 0.0f,   //
                             2, 3, 5,   -1,     //
                             2, 0, nan, 0.0f,   //
                             2, 3, 7,   -0.0f};
  std::vector<float> y(4), dy{1, 2, 3, 4}, dx(20, 9.0f);
  P p;
  p.forward(x.data(), y.data(), 1);
  CHECK(y[0] == 2);
  CHECK(y[1] == 3);
  CHECK(std::isnan(y[2]));
  CHECK((y[3] == 0 && std::signbit(y[3])));  // the first zero, -0, is kept
  p.backward<true, 0>(x.data(), y.data(), dy.data(), dx.data(), nullptr, 1);
  const std::vector<float> expected{1, 0, 0, 4,  //
                                    0, 2, 3, 0,  //
                                    0, 0, 0, 0,  //
                                    0, 0, 0, 0,  //
                                    0, 0, 0, 0};
  CHECK(dx == expected);
}

TEST_CASE("pooling over time against direct sums, several samples, and over leading lengths") {
  auto check = [](auto max_tag, auto mean_tag) {
    using Max = typename decltype(max_tag)::type;
    using Mean = typename decltype(mean_tag)::type;
    constexpr std::size_t L = Max::input_shape::dims[0], C = Max::input_shape::dims[1], rows = 4;
    g::splitmix64 rng(L * 100 + C);
    std::vector<double> x(rows * L * C), dy(rows * C);
    for (auto& v : x) v = static_cast<double>(rng.below(5));  // many ties
    for (auto& v : dy) v = rng.uniform(-1, 1);
    // lengths: all, a prefix, one position, none (and one above L: all)
    for (const auto& lengths :
         {std::vector<std::size_t>{L, L, L, L}, std::vector<std::size_t>{L, L - 1, 1, 0},
          std::vector<std::size_t>{0, L + 3, 2, L / 2}}) {
      const bool all = lengths[0] == L && lengths[3] == L;
      std::vector<double> ymax(rows * C), ymean(rows * C), dxmax(x.size(), 9), dxmean(x.size(), 9);
      if (all) {
        Max{}.forward(x.data(), ymax.data(), rows);
        Mean{}.forward(x.data(), ymean.data(), rows);
        Max{}.template backward<true, 0>(x.data(), ymax.data(), dy.data(), dxmax.data(), nullptr,
                                         rows);
        Mean{}.template backward<true, 0>(x.data(), ymean.data(), dy.data(), dxmean.data(), nullptr,
                                          rows);
      } else {
        Max::forward_lengths(x.data(), ymax.data(), rows, lengths.data());
        Mean::forward_lengths(x.data(), ymean.data(), rows, lengths.data());
        Max::backward_lengths(x.data(), dy.data(), dxmax.data(), rows, lengths.data());
        Mean::backward_lengths(x.data(), dy.data(), dxmean.data(), rows, lengths.data());
      }
      std::size_t bad = 0;
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t n = std::min(lengths[r], L);
        for (std::size_t c = 0; c < C; ++c) {
          std::size_t best = 0;
          double sum = 0;
          for (std::size_t l = 0; l < n; ++l) {
            const double v = x[(r * L + l) * C + c];
            if (v > x[(r * L + best) * C + c]) best = l;
            sum += v;
          }
          const double rmax = n > 0 ? x[(r * L + best) * C + c] : 0.0;
          const double rmean = n > 0 ? sum / static_cast<double>(n) : 0.0;
          bad += ymax[r * C + c] == rmax ? 0 : 1;
          bad += ymean[r * C + c] == rmean ? 0 : 1;  // the same order: bitwise
          for (std::size_t l = 0; l < L; ++l) {
            const std::size_t i = (r * L + l) * C + c;
            const double gmax = n > 0 && l == best ? dy[r * C + c] : 0.0;
            const double gmean = l < n ? dy[r * C + c] / static_cast<double>(n) : 0.0;
            bad += dxmax[i] == gmax ? 0 : 1;
            bad += dxmean[i] == gmean ? 0 : 1;
          }
        }
      }
      CAPTURE(L);
      CAPTURE(C);
      CHECK(bad == 0);
    }
  };
  check(std::type_identity<max_pool_t<double, 7, 5>>{},
        std::type_identity<mean_pool_t<double, 7, 5>>{});
  check(std::type_identity<max_pool_t<double, 16, 64>>{},
        std::type_identity<mean_pool_t<double, 16, 64>>{});
  check(std::type_identity<max_pool_t<double, 3, 70>>{},
        std::type_identity<mean_pool_t<double, 3, 70>>{});
}

TEST_CASE("a sequence pooled over its first n positions equals the same sequence of length n") {
  constexpr std::size_t L = 9, C = 6, n = 5, rows = 3;
  g::splitmix64 rng(21);
  std::vector<float> x(rows * L * C), xn(rows * n * C), dy(rows * C);
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
  for (auto& v : dy) v = static_cast<float>(rng.uniform(-1, 1));
  for (std::size_t r = 0; r < rows; ++r)
    std::copy_n(x.data() + r * L * C, n * C, xn.data() + r * n * C);
  const std::vector<std::size_t> lengths(rows, n);
  auto check = [&](auto long_tag, auto short_tag) {
    using Long = typename decltype(long_tag)::type;
    using Short = typename decltype(short_tag)::type;
    std::vector<float> y(rows * C), yn(rows * C), dx(x.size()), dxn(xn.size());
    Long::forward_lengths(x.data(), y.data(), rows, lengths.data());
    Long::backward_lengths(x.data(), dy.data(), dx.data(), rows, lengths.data());
    Short{}.forward(xn.data(), yn.data(), rows);
    Short{}.template backward<true, 0>(xn.data(), yn.data(), dy.data(), dxn.data(), nullptr, rows);
    CHECK(y == yn);
    std::size_t bad = 0;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < L * C; ++i)
        bad += dx[r * L * C + i] == (i < n * C ? dxn[r * n * C + i] : 0.0f) ? 0 : 1;
    CHECK(bad == 0);
  };
  check(std::type_identity<max_pool_t<float, L, C>>{},
        std::type_identity<max_pool_t<float, n, C>>{});
  check(std::type_identity<mean_pool_t<float, L, C>>{},
        std::type_identity<mean_pool_t<float, n, C>>{});
}

namespace {
// The model shape, small: two conv1d (padding, then stride 2), relu, pooling over time.
template <class Pool, class T> using small_net =
    g::model<g::stack<g::input<10, 4>, g::conv1d<6, 3, g::pad<1>>, g::relu,
                      g::conv1d<5, 3, g::stride<2>>, g::relu, Pool, g::dense<3>>,
             g::classifier<3>, T>;

template <class M> void check_whole_model(std::uint64_t seed) {
  constexpr std::size_t rows = 3, in = M::input_shape::size;
  using tr = g::trainer<M, rows, g::sgd>;
  auto net = g::make_model<M>(g::seed{seed});
  auto t = std::make_unique<tr>(*net, g::sgd{});
  g::splitmix64 rng(seed + 10);
  for (std::size_t i = 0; i < rows * in; ++i) t->input()[i] = rng.uniform(-1, 1);
  std::int32_t y[rows] = {0, 2, 1};
  t->compute_gradients(y, rows);
  const auto rep = graft_test::check_trainer(*net, *t, y, rows);
  INFO(rep.first_failure);
  CHECK(rep.checked == M::parameter_count);
  CHECK(rep.failures == 0);
}
}  // namespace

TEST_CASE("whole-model gradients through the trainer (double): conv1d, relu, pooling over time") {
  check_whole_model<small_net<g::global_max_pool_time, double>>(3);
  check_whole_model<small_net<g::global_mean_pool_time, double>>(4);
  // no bias, padding 2, tanh (not fused), the mean
  using other = g::model<
      g::stack<g::input<8, 3>, g::conv1d<4, 5, g::pad<2>, g::no_bias>, g::tanh,
               g::conv1d<4, 2, g::stride<2>, g::pad<1>>, g::relu, g::global_mean_pool_time>,
      g::classifier<3>, double>;
  check_whole_model<other>(5);
}

TEST_CASE(
    "fused conv1d + relu in models: runner, trainer, constant model give what the layers give "
    "one by one, bitwise") {
  using net_t = small_net<g::global_max_pool_time, float>;
  using plan = g::detail::model_plan<net_t>;
  static_assert(plan::fused == std::array<bool, 7>{true, false, true, false, false, false, false});
  constexpr std::size_t B = 5;
  auto net = g::make_model<net_t>(g::seed{8});
  g::splitmix64 rng(9);
  std::vector<float> x(B * 40);
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
  CHECK(std::equal(logits.begin(), logits.end(), r->forward(*net, B)));

  // the same weights as constants read in place (forward_from / forward_fused_from)
  std::array<const float*, g::constant_model<net_t>::param_tensors> p{};
  std::array<const float*, g::constant_model<net_t>::buffer_tensors> b{};
  std::size_t pi = 0;
  net->for_each_parameter(
      [&](std::size_t, std::size_t, g::role, const float* d, std::size_t) { p[pi++] = d; });
  const auto constants = g::constant_model<net_t>::of(p, b);
  auto rc = std::make_unique<g::runner<net_t, B>>();
  std::copy(x.begin(), x.end(), rc->input());
  CHECK(std::equal(logits.begin(), logits.end(), rc->forward(constants, B)));

  using tr_t = g::trainer<net_t, B, g::sgd>;
  auto t = std::make_unique<tr_t>(*net, g::sgd{});
  std::copy(x.begin(), x.end(), t->input());
  t->forward(B);
  CHECK(std::equal(logits.begin(), logits.end(), t->output()));
  for (std::size_t i = 1; i <= net_t::layer_count; ++i)
    if (!plan::fused[i - 1]) {
      CAPTURE(i);
      CHECK(std::equal(act[i].begin(), act[i].end(), t->activation(i)));
    }
}

namespace {
// Counts the trainable parameters of dev that differ from net's in their bits, and those that
// differ by more than rounding.
template <class M, class Dev>
void compare_trainable(const M& net, const Dev& dev, std::size_t& differ, std::size_t& far) {
  net.for_each_layer([&](auto i, const auto& l) {
    using L = std::remove_cvref_t<decltype(l)>;
    for (std::size_t j = 0; j < L::params.size(); ++j) {
      if (!Dev::trains(i, j)) continue;
      const float* a = l.param(j);
      const float* d = dev.param(i, j);
      for (std::size_t k = 0; k < L::params[j].size; ++k) {
        differ += std::memcmp(a + k, d + k, sizeof(float)) == 0 ? 0 : 1;
        far += std::abs(a[k] - d[k]) <= 1e-5f * (1 + std::abs(a[k])) ? 0 : 1;
      }
    }
  });
}
}  // namespace

TEST_CASE(
    "device_trainer on a conv1d model: a step is bitwise the hosted trainer's under bias_only "
    "and backbone (per-sample sums), within rounding when it trains the conv1d weights") {
  using net_t = small_net<g::global_max_pool_time, float>;
  constexpr std::size_t B = 4;
  constexpr g::sgd opt{.lr = 0.05f, .momentum = 0.9f};
  auto check = [&](auto policy_tag, bool bitwise) {
    using Policy = typename decltype(policy_tag)::type;
    auto net = g::make_model<net_t>(g::seed{4});
    const auto start = std::make_unique<net_t>(*net);  // the "flash" copy
    std::array<const float*, g::constant_model<net_t>::param_tensors> p{};
    std::array<const float*, g::constant_model<net_t>::buffer_tensors> b{};
    std::size_t pi = 0;
    start->for_each_parameter(
        [&](std::size_t, std::size_t, g::role, const float* d, std::size_t) { p[pi++] = d; });
    auto dev = std::make_unique<g::device_trainer<net_t, B, g::sgd, Policy>>(
        g::constant_model<net_t>::of(p, b), opt);
    auto host = std::make_unique<g::trainer<net_t, B, g::sgd, Policy>>(*net, opt);
    g::splitmix64 rng(5);
    std::size_t differ = 0, far = 0, losses = 0;
    std::int32_t labels[B]{};
    for (std::size_t s = 0; s < 4; ++s) {
      const std::size_t rows = s == 3 ? 3 : B;  // a short last batch too
      for (std::size_t i = 0; i < rows * 40; ++i)
        host->input()[i] = dev->input()[i] = static_cast<float>(rng.uniform(-1, 1));
      for (std::size_t r = 0; r < rows; ++r)
        labels[r] = dev->targets()[r] = static_cast<std::int32_t>(rng.below(3));
      const double hl = host->step(labels, rows);
      REQUIRE(dev->step(rows) == g::device_status::ok);
      losses += bitwise ? (hl == dev->last_loss() ? 0 : 1)
                        : (std::abs(hl - dev->last_loss()) < 1e-5 ? 0 : 1);
      compare_trainable(*net, *dev, differ, far);
    }
    CHECK(losses == 0);
    CHECK(far == 0);
    if (bitwise) CHECK(differ == 0);
  };
  check(std::type_identity<g::freeze::bias_only>{}, true);
  check(std::type_identity<g::freeze::backbone>{}, true);
  check(std::type_identity<g::freeze::none>{}, false);
}

TEST_CASE("a small char-CNN learns a sequence task (which 3-symbol motif, in any position)") {
  // Sequences of 16 one-hot symbols (6 channels): background symbols 0-2, and one motif of the
  // symbols 3, 4, 5 planted at a random position; the class is the motif's order (3-4-5, 5-4-3
  // or 4-5-3): the same symbols in each class, so only their order tells the classes apart.
  constexpr std::size_t L = 16, C = 6;
  const std::size_t motifs[3][3] = {{3, 4, 5}, {5, 4, 3}, {4, 5, 3}};
  auto make = [&](std::size_t n, std::uint64_t seed) {
    g::splitmix64 rng(seed);
    std::vector<float> x(n * L * C, 0.0f);
    std::vector<std::int32_t> y(n);
    for (std::size_t i = 0; i < n; ++i) {
      y[i] = static_cast<std::int32_t>(rng.below(3));
      const std::size_t at = rng.below(L - 2);
      for (std::size_t l = 0; l < L; ++l) {
        const std::size_t s = l >= at && l < at + 3 ? motifs[static_cast<std::size_t>(y[i])][l - at]
                                                    : static_cast<std::size_t>(rng.below(3));
        x[(i * L + l) * C + s] = 1.0f;
      }
    }
    return g::data::make_classification("motifs", {L, C}, std::move(x), std::move(y), 3);
  };
  const auto train = make(600, 1), test = make(300, 2);
  using net_t = g::model<
      g::stack<g::input<L, C>, g::conv1d<16, 3, g::pad<1>>, g::relu, g::conv1d<16, 3, g::pad<1>>,
               g::relu, g::global_max_pool_time, g::dense<16>, g::relu>,
      g::classifier<3>>;
  auto net = g::make_model<net_t>(g::seed{1});
  const double before = g::evaluate(*net, test).accuracy;
  g::pretrain(*net, train, g::adam{.lr = 0.01f}, g::epochs{15}, g::batch<32>, g::quiet);
  const double after = g::evaluate(*net, test).accuracy;
  MESSAGE("char-CNN on the motif task: test accuracy " << 100 * before << "% -> " << 100 * after
                                                       << "%");
  CHECK(after > 0.95);
}
