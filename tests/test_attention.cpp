// multi_head_attention (issue 16, docs/design/sequence_models.md section 2): the forward against a
// naive long-double reference (heads, lengths, causal), padding (padded rows exactly 0, padded
// inputs change no valid bit, a padded sample equals the layer of its own length), batch position
// and thread count, softmax stability, gradient checks with lengths, whole models through the
// trainer, constant weights and the device trainer, no heap in a step, and the safetensors names.
//
// Built twice (tests/CMakeLists.txt): test_attention has everything; test_attention_threads
// (GRAFT_USE_THREADS, GRAFT_ATTENTION_THREADS_ONLY) only the thread-count case, with worker
// threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include <graft/graft.hpp>
#include <graft/layers/attention.hpp>

namespace g = graft;

namespace {
template <class T, std::size_t L, std::size_t D, std::size_t H, bool C> using mha =
    g::multi_head_attention_layer<T, L, D, H, C>;

template <class Layer> std::size_t workspace(std::size_t rows) {
  return g::detail::training_workspace_of<Layer>(rows) + 1;
}
// A layer with nn.MultiheadAttention's initialisation, and biases that count.
template <class Layer> std::unique_ptr<Layer> make_layer(std::uint64_t seed) {
  using T = typename Layer::scalar;
  g::splitmix64 rng(seed);
  auto l = std::make_unique<Layer>();
  l->init(rng);
  for (auto& v : l->b_qkv) v = static_cast<T>(rng.uniform(-0.5, 0.5));
  for (auto& v : l->b_o) v = static_cast<T>(rng.uniform(-0.5, 0.5));
  return l;
}
template <class T> std::vector<T> random_values(std::size_t n, std::uint64_t seed, double a = 1) {
  g::splitmix64 rng(seed);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(rng.uniform(-a, a));
  return v;
}
// Forward and backward (input and every tensor) of rows samples with the given lengths.
template <class Layer> struct pass {
  using T = typename Layer::scalar;
  static constexpr std::size_t in = Layer::input_shape::size;
  std::vector<T> y, dx, grads;
  pass(const Layer& l, const std::vector<T>& x, const std::vector<T>& dy, std::size_t rows,
       const std::size_t* lengths)
      : y(rows * in, T(7)), dx(rows * in, T(7)), grads(Layer::parameter_count, T(7)) {
    std::vector<T> ws(workspace<Layer>(rows));
    T* gp[4] = {
        grads.data(), grads.data() + Layer::params[0].size,
        grads.data() + Layer::params[0].size + Layer::params[1].size,
        grads.data() + Layer::params[0].size + Layer::params[1].size + Layer::params[2].size};
    const g::sequence_mask m{lengths};
    l.template forward_train<g::train_mode{}>(x.data(), y.data(), rows, ws.data(), m);
    l.template backward<true, 15U, g::train_mode{}>(x.data(), y.data(), dy.data(), dx.data(), gp,
                                                    rows, ws.data(), m);
  }
};
template <class T> bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}
}  // namespace

#ifndef GRAFT_ATTENTION_THREADS_ONLY
#include <graft/train/device.hpp>

#include "support/alloc_counter.hpp"
#include "support/attention_reference.hpp"
#include "support/compare.hpp"
#include "support/gradcheck.hpp"

#if __has_include(<nlohmann/json.hpp>)
#include <graft/io/safetensors.hpp>

#include "support/temp_dir.hpp"
#define GRAFT_TEST_SAFETENSORS 1
#endif

// The allocation counter's replacement operators, compiled into this test (as test_sequence does).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include "support/alloc_counter.cpp"  // NOLINT(bugprone-suspicious-include)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// ---- the spec while compiling -------------------------------------------------------------------
static_assert(std::is_same_v<g::multi_head_attention<2>::bind<float, g::shape<5, 8>>,
                             mha<float, 5, 8, 2, false>>);
static_assert(std::is_same_v<g::multi_head_attention<4, g::causal>::bind<double, g::shape<16, 8>>,
                             mha<double, 16, 8, 4, true>>);
static_assert(std::is_same_v<mha<float, 5, 8, 2, false>::output_shape, g::shape<5, 8>>);
static_assert(mha<float, 5, 8, 2, false>::parameter_count == 8 * 24 + 24 + 8 * 8 + 8);
static_assert(mha<float, 5, 8, 2, false>::params[0].size == 192 &&
              mha<float, 5, 8, 2, false>::params[0].kind == g::role::weight &&
              mha<float, 5, 8, 2, false>::params[1].size == 24 &&
              mha<float, 5, 8, 2, false>::params[1].kind == g::role::bias &&
              mha<float, 5, 8, 2, false>::params[2].size == 64 &&
              mha<float, 5, 8, 2, false>::params[3].kind == g::role::bias);
static_assert([] {
  for (const auto& p : mha<float, 5, 8, 2, false>::params)
    if (p.tag != g::param_tag::attention) return false;
  return true;
}());
static_assert(g::multi_head_attention<2>::accepts<g::shape<5, 8>> &&
              !g::multi_head_attention<2>::accepts<g::shape<40>> &&
              !g::multi_head_attention<2>::accepts<g::shape<1, 5, 8>>);
static_assert(g::detail::reads_mask_v<mha<float, 5, 8, 2, false>>);
static_assert(g::BoundLayer<mha<float, 5, 8, 2, true>> &&
              g::UsesWorkspace<mha<float, 5, 8, 2, true>>);
// workspaces: constant expressions, non-decreasing in rows
static_assert([] {
  using A = mha<float, 16, 64, 4, false>;
  for (std::size_t r = 0; r < 200; ++r)
    if (A::training_workspace(r + 1) < A::training_workspace(r) ||
        A::inference_workspace(r + 1) < A::inference_workspace(r))
      return false;
  return A::inference_workspace(1) > 0;
}());

TEST_CASE("multi_head_attention's names") {
  CHECK(mha<float, 5, 8, 4, false>::name() == "multi_head_attention<4>");
  CHECK(mha<float, 5, 8, 4, true>::name() == "multi_head_attention<4,causal>");
  CHECK(mha<float, 5, 8, 1, false>::name() == "multi_head_attention<1>");
}

namespace {
// ---- the forward against the long-double reference ----------------------------------------------
template <class T, std::size_t L, std::size_t D, std::size_t H, bool C>
void check_forward(std::uint64_t seed) {
  using Layer = mha<T, L, D, H, C>;
  constexpr std::size_t rows = 4;
  const std::size_t lengths[rows] = {0, 1, 3, L};  // 3 > L counts as L
  auto l = make_layer<Layer>(seed);
  const auto x = random_values<T>(rows * L * D, seed + 1, 2.0);
  std::vector<T> y(x.size(), T(7)), ws(workspace<Layer>(rows));
  l->forward(x.data(), y.data(), rows, ws.data(), {lengths});
  std::vector<long double> ref(L * D);
  const double tol = std::is_same_v<T, double> ? 1e-13 : 2e-6;
  std::size_t bad = 0, padded_nonzero = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t n = std::min(lengths[r], L);
    graft_test::reference_attention(x.data() + r * L * D, L, D, H, l->w_qkv.data(), l->b_qkv.data(),
                                    l->w_o.data(), l->b_o.data(), n, C, ref.data());
    for (std::size_t i = 0; i < L * D; ++i) {
      const double v = static_cast<double>(y[r * L * D + i]);
      const double e = static_cast<double>(ref[i]);
      bad += std::abs(v - e) <= tol * (1 + std::abs(e)) ? 0 : 1;
      padded_nonzero += i >= n * D && y[r * L * D + i] != T(0) ? 1 : 0;
    }
  }
  // without a mask: every position valid
  std::vector<T> y_all(x.size());
  l->forward(x.data(), y_all.data(), rows, ws.data());
  for (std::size_t r = 0; r < rows; ++r) {
    graft_test::reference_attention(x.data() + r * L * D, L, D, H, l->w_qkv.data(), l->b_qkv.data(),
                                    l->w_o.data(), l->b_o.data(), L, C, ref.data());
    for (std::size_t i = 0; i < L * D; ++i) {
      const double e = static_cast<double>(ref[i]);
      bad += std::abs(static_cast<double>(y_all[r * L * D + i]) - e) <= tol * (1 + std::abs(e)) ? 0
                                                                                                : 1;
    }
  }
  CAPTURE(Layer::name());
  CAPTURE(L);
  CHECK(bad == 0);
  CHECK(padded_nonzero == 0);
}
template <class T, std::size_t L, bool C> void check_forward_heads(std::uint64_t seed) {
  check_forward<T, L, 8, 1, C>(seed);
  check_forward<T, L, 8, 2, C>(seed + 10);
  check_forward<T, L, 8, 4, C>(seed + 20);
}
template <class T> void check_forward_all() {
  check_forward_heads<T, 1, false>(1);
  check_forward_heads<T, 5, false>(2);
  check_forward_heads<T, 16, false>(3);
  check_forward_heads<T, 1, true>(4);
  check_forward_heads<T, 5, true>(5);
  check_forward_heads<T, 16, true>(6);
}
}  // namespace

TEST_CASE(
    "attention equals the long-double reference: H in {1, 2, 4}, L in {1, 5, 16}, n in {0, 1, 3, "
    "L}, causal on and off") {
  check_forward_all<double>();
  check_forward_all<float>();
  check_forward<float, 16, 64, 4, false>(7);  // the tiny transformer's size
  check_forward<float, 16, 64, 4, true>(8);
}

namespace {
// ---- padding ------------------------------------------------------------------------------------
template <bool C> void check_padding_invariance() {
  using Layer = mha<float, 16, 8, 2, C>;
  constexpr std::size_t L = 16, D = 8, rows = 4;
  const std::size_t lengths[rows] = {16, 5, 1, 0};
  auto l = make_layer<Layer>(11);
  auto x = random_values<float>(rows * L * D, 12, 2.0);
  auto dy = random_values<float>(rows * L * D, 13);
  const pass<Layer> a(*l, x, dy, rows, lengths);
  std::size_t nonzero = 0;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = lengths[r] * D; i < L * D; ++i) {
      nonzero += a.y[r * L * D + i] != 0.0F || std::signbit(a.y[r * L * D + i]) ? 1 : 0;
      nonzero += a.dx[r * L * D + i] != 0.0F || std::signbit(a.dx[r * L * D + i]) ? 1 : 0;
    }
  CHECK(nonzero == 0);
  // NaN at every padded position of x and dy: no valid output, input gradient or parameter
  // gradient bit changes
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = lengths[r] * D; i < L * D; ++i) x[r * L * D + i] = dy[r * L * D + i] = nan;
  const pass<Layer> b(*l, x, dy, rows, lengths);
  CHECK(same_bits(a.y, b.y));
  CHECK(same_bits(a.dx, b.dx));
  CHECK(same_bits(a.grads, b.grads));
}

template <std::size_t N, bool C> void check_own_length() {
  using Long = mha<float, 16, 8, 2, C>;
  using Short = mha<float, N, 8, 2, C>;
  constexpr std::size_t D = 8, rows = 3;
  auto l = make_layer<Long>(21);
  auto s = std::make_unique<Short>();
  for (std::size_t j = 0; j < 4; ++j) std::copy_n(l->param(j), Long::params[j].size, s->param(j));
  const auto xs = random_values<float>(rows * N * D, 22, 2.0);
  const auto dys = random_values<float>(rows * N * D, 23);
  std::vector<float> xl(rows * 16 * D, 0.5F), dyl(rows * 16 * D, -0.25F);
  for (std::size_t r = 0; r < rows; ++r) {
    std::copy_n(xs.data() + r * N * D, N * D, xl.data() + r * 16 * D);
    std::copy_n(dys.data() + r * N * D, N * D, dyl.data() + r * 16 * D);
  }
  const std::size_t lengths[rows] = {N, N, N};
  const pass<Long> a(*l, xl, dyl, rows, lengths);
  const pass<Short> b(*s, xs, dys, rows, nullptr);
  std::size_t bad = 0;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < 16 * D; ++i) {
      const float ey = i < N * D ? b.y[r * N * D + i] : 0.0F;
      const float edx = i < N * D ? b.dx[r * N * D + i] : 0.0F;
      bad += std::memcmp(&a.y[r * 16 * D + i], &ey, sizeof(float)) == 0 ? 0 : 1;
      bad += std::memcmp(&a.dx[r * 16 * D + i], &edx, sizeof(float)) == 0 ? 0 : 1;
    }
  CAPTURE(N);
  CAPTURE(C);
  CHECK(bad == 0);
  CHECK(same_bits(a.grads, b.grads));
}
}  // namespace

TEST_CASE(
    "padded query rows are exactly 0; changing padded inputs changes no valid output or gradient "
    "bit") {
  check_padding_invariance<false>();
  check_padding_invariance<true>();
}

TEST_CASE("a padded sample equals the sample at its own length, bitwise (L = 16 against L = n)") {
  check_own_length<5, false>();
  check_own_length<5, true>();
  check_own_length<1, false>();
  check_own_length<13, true>();
}

TEST_CASE("a sample's output and input gradient do not depend on its place in the batch") {
  using Layer = mha<float, 16, 8, 2, true>;
  constexpr std::size_t L = 16, D = 8, rows = 5, in = L * D;
  const std::size_t lengths[rows] = {16, 3, 0, 9, 1};
  auto l = make_layer<Layer>(31);
  const auto x = random_values<float>(rows * in, 32, 2.0);
  const auto dy = random_values<float>(rows * in, 33);
  const pass<Layer> all(*l, x, dy, rows, lengths);
  std::size_t bad = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const std::vector<float> xr(x.begin() + static_cast<long>(r * in),
                                x.begin() + static_cast<long>((r + 1) * in));
    const std::vector<float> dyr(dy.begin() + static_cast<long>(r * in),
                                 dy.begin() + static_cast<long>((r + 1) * in));
    const pass<Layer> one(*l, xr, dyr, 1, lengths + r);
    bad += std::memcmp(one.y.data(), all.y.data() + r * in, in * sizeof(float)) == 0 ? 0 : 1;
    bad += std::memcmp(one.dx.data(), all.dx.data() + r * in, in * sizeof(float)) == 0 ? 0 : 1;
  }
  CHECK(bad == 0);
}

TEST_CASE(
    "softmax is stable: scores of +-1e4 give finite probabilities; equal scores give uniform "
    "ones; a NaN input gives a NaN row") {
  auto run = [](auto causal_tag, double a, const std::vector<double>& x) {
    constexpr bool C = decltype(causal_tag)::value;
    using Layer = mha<double, 3, 2, 1, C>;
    auto l = std::make_unique<Layer>();
    l->w_qkv.fill(0.0);
    l->b_qkv.fill(0.0);
    l->w_o.fill(0.0);
    l->b_o.fill(0.0);
    for (std::size_t d = 0; d < 2; ++d) {
      l->w_qkv(d, d) = a;        // Q = a x
      l->w_qkv(d, 2 + d) = a;    // K = a x
      l->w_qkv(d, 4 + d) = 1.0;  // V = x
      l->w_o(d, d) = 1.0;        // y = o
    }
    std::vector<double> y(6), ws(workspace<Layer>(1));
    l->forward(x.data(), y.data(), 1, ws.data());
    return y;
  };
  using plain = std::false_type;
  using causal = std::true_type;
  const std::vector<double> x{1.0, 0.5, -1.0, 0.3, 0.7, -0.9};
  // scores a^2 x_i.x_j / sqrt(2) with a = 150: up to 2e4 in size; each query's largest score
  // wins outright (the others are at least 1e4 below it)
  for (const auto& y : {run(plain{}, 150.0, x), run(causal{}, 150.0, x)}) {
    std::size_t finite = 0;
    for (double v : y) finite += std::isfinite(v) ? 1 : 0;
    CHECK(finite == 6);
  }
  const auto yp = run(plain{}, 150.0, x);
  // query 0 prefers key 0 (1.25 against -0.85 and 0.25), query 1 key 1, query 2 key 2
  for (std::size_t i = 0; i < 6; ++i) CHECK(yp[i] == doctest::Approx(x[i]).epsilon(1e-12));
  const auto yc = run(causal{}, 150.0, x);
  for (std::size_t i = 0; i < 6; ++i) CHECK(yc[i] == doctest::Approx(x[i]).epsilon(1e-12));
  // a = 0: every score 0, uniform probabilities: the mean of the values (causal: of the prefix)
  const auto up = run(plain{}, 0.0, x);
  const auto uc = run(causal{}, 0.0, x);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t d = 0; d < 2; ++d) {
      CHECK(up[i * 2 + d] == doctest::Approx((x[d] + x[2 + d] + x[4 + d]) / 3).epsilon(1e-15));
      double s = 0;
      for (std::size_t j = 0; j <= i; ++j) s += x[j * 2 + d];
      CHECK(uc[i * 2 + d] == doctest::Approx(s / static_cast<double>(i + 1)).epsilon(1e-15));
    }
  // NaN in position 1 (its query, key and value): every output row is NaN. With causal too:
  // query 0 does not see key 1, but its P V chain runs over every valid j (the causal zeros
  // included, in a fixed order), and 0 * NaN is NaN, as in PyTorch's masked P V.
  auto xn = x;
  xn[2] = std::numeric_limits<double>::quiet_NaN();
  for (const auto& y : {run(plain{}, 1.0, xn), run(causal{}, 1.0, xn)}) {
    std::size_t nans = 0;
    for (double v : y) nans += std::isnan(v) ? 1 : 0;
    CHECK(nans == 6);
  }
}

// ---- gradients ----------------------------------------------------------------------------------
namespace {
template <std::size_t L, std::size_t H, bool C> void check_gradients(std::uint64_t seed) {
  graft::testing::layer_input in;
  in.lengths = {L, 1, 3, 0};
  const auto rep = graft_test::check_layer<mha<double, L, 4, H, C>, 4>(seed, in);
  INFO(rep.first_failure);
  CHECK(rep.checked == 4 * L * 4 + mha<double, L, 4, H, C>::parameter_count);
  CHECK(rep.failures == 0);
}
}  // namespace

TEST_CASE(
    "layer gradients: attention (input and the 4 tensors) with lengths L, 1, 3, 0; H in {1, 2}, "
    "L in {1, 5}, causal on and off") {
  check_gradients<1, 1, false>(1);
  check_gradients<1, 2, false>(2);
  check_gradients<5, 1, false>(3);
  check_gradients<5, 2, false>(4);
  check_gradients<1, 1, true>(5);
  check_gradients<1, 2, true>(6);
  check_gradients<5, 1, true>(7);
  check_gradients<5, 2, true>(8);
  // without a mask
  GRAFT_CHECK_LAYER_GRADIENTS(mha<double, 5, 4, 2, false>);
  GRAFT_CHECK_LAYER_GRADIENTS(mha<double, 5, 4, 2, true>);
}

namespace {
template <class Attention, class T> using small_net =
    g::model<g::stack<g::input<5, 8>, Attention, g::global_mean_pool_time, g::dense<3>>,
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

TEST_CASE("whole-model gradients through the trainer (double): attention, pooling over time") {
  check_whole_model<small_net<g::multi_head_attention<2>, double>>(3);
  check_whole_model<small_net<g::multi_head_attention<1, g::causal>, double>>(4);
  // attention twice, with layer_norm and gelu between
  using deeper =
      g::model<g::stack<g::input<4, 4>, g::multi_head_attention<2, g::causal>, g::layer_norm,
                        g::gelu, g::multi_head_attention<2>, g::global_max_pool_time>,
               g::classifier<3>, double>;
  check_whole_model<deeper>(5);
}

// ---- constant weights and the device trainer ----------------------------------------------------
TEST_CASE("forward_from / backward_from give the member forms' bits") {
  using Layer = mha<float, 5, 8, 2, true>;
  constexpr std::size_t rows = 3, in = 40;
  const std::size_t lengths[rows] = {5, 2, 0};
  auto l = make_layer<Layer>(41);
  const auto x = random_values<float>(rows * in, 42);
  const auto dy = random_values<float>(rows * in, 43);
  const pass<Layer> a(*l, x, dy, rows, lengths);
  const float* p[4] = {l->w_qkv.data(), l->b_qkv.data(), l->w_o.data(), l->b_o.data()};
  std::vector<float> y(rows * in), dx(rows * in), gr(Layer::parameter_count),
      ws(workspace<Layer>(rows));
  float* gp[4] = {gr.data(), gr.data() + 192, gr.data() + 216, gr.data() + 280};
  // through the dispatch, as constant models and the device trainer call them
  const float* const* no_buffers = nullptr;
  const g::sequence_mask m{lengths};
  g::detail::forward_eval_from<Layer>(p, no_buffers, x.data(), y.data(), rows, ws.data(), m);
  g::detail::backward_of_from<true, 15U, g::train_mode{}, Layer>(
      p, no_buffers, x.data(), y.data(), dy.data(), dx.data(), gp, rows, ws.data(), m);
  CHECK(same_bits(a.y, y));
  CHECK(same_bits(a.dx, dx));
  CHECK(same_bits(a.grads, gr));
}

namespace {
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
    "runner, constant model and device trainer on an attention model: the runner's logits from "
    "constants are the model's; a device step is bitwise the trainer's under bias_only") {
  using net_t = small_net<g::multi_head_attention<2, g::causal>, float>;
  constexpr std::size_t B = 4, in = 40;
  {
    auto net = g::make_model<net_t>(g::seed{8});
    const auto x = random_values<float>(B * in, 9);
    auto r = std::make_unique<g::runner<net_t, B>>();
    std::copy(x.begin(), x.end(), r->input());
    const float* z = r->forward(*net, B);
    const std::vector<float> logits(z, z + B * 3);
    std::array<const float*, g::constant_model<net_t>::param_tensors> p{};
    std::array<const float*, g::constant_model<net_t>::buffer_tensors> b{};
    std::size_t pi = 0;
    net->for_each_parameter(
        [&](std::size_t, std::size_t, g::role, const float* d, std::size_t) { p[pi++] = d; });
    const auto constants = g::constant_model<net_t>::of(p, b);
    auto rc = std::make_unique<g::runner<net_t, B>>();
    std::copy(x.begin(), x.end(), rc->input());
    CHECK(std::equal(logits.begin(), logits.end(), rc->forward(constants, B)));
  }
  constexpr g::sgd opt{.lr = 0.05f, .momentum = 0.9f};
  auto check = [&](auto policy_tag, bool bitwise) {
    using Policy = typename decltype(policy_tag)::type;
    auto net = g::make_model<net_t>(g::seed{4});
    const auto start = std::make_unique<net_t>(*net);
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
      const std::size_t rows = s == 3 ? 3 : B;
      for (std::size_t i = 0; i < rows * in; ++i)
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
  check(std::type_identity<g::freeze::none>{}, false);
}

TEST_CASE("no heap allocation inside an attention model's training or inference step") {
  using net_t = small_net<g::multi_head_attention<2>, float>;
  auto net = g::make_model<net_t>(g::seed{1});
  auto t = std::make_unique<g::trainer<net_t, 8, g::adamw>>(*net, g::adamw{});
  auto r = std::make_unique<g::runner<net_t, 8>>();
  const auto x = random_values<float>(8 * 40, 2);
  std::copy(x.begin(), x.end(), t->input());
  std::copy(x.begin(), x.end(), r->input());
  const std::int32_t labels[8] = {0, 1, 2, 0, 1, 2, 0, 1};
  t->step(labels, 8);  // warm-up
  const long before = graft_test::allocations.load();
  for (int s = 0; s < 3; ++s) t->step(labels, 8);
  r->forward(*net, 8);
  r->forward(*net, 1);
  CHECK(graft_test::allocations.load() - before == 0);
  std::vector<int> v(10);  // the counter counts
  CHECK(graft_test::allocations.load() > before);
}

#ifdef GRAFT_TEST_SAFETENSORS
TEST_CASE("safetensors: nn.MultiheadAttention's names, shapes and layouts") {
  using net_t = small_net<g::multi_head_attention<2>, float>;
  auto a = g::make_model<net_t>(g::seed{1});
  for (auto& v : a->layer<0>().b_qkv) v = 0.25F * v + 0.125F;  // non-zero biases
  for (std::size_t k = 0; k < 8; ++k) a->layer<0>().b_o[k] = 0.01F * static_cast<float>(k);
  graft_test::temp_dir dir("graft_attention");
  const std::string path = dir.file("attention.safetensors");
  g::export_safetensors(*a, path);
  const auto f = g::read_safetensors(path);
  auto shape_of = [&](const std::string& name) {
    const auto* t = f.find(name);
    return t == nullptr ? std::vector<std::size_t>{} : t->shape;
  };
  CHECK(shape_of("0.in_proj_weight") == std::vector<std::size_t>{24, 8});
  CHECK(shape_of("0.in_proj_bias") == std::vector<std::size_t>{24});
  CHECK(shape_of("0.out_proj.weight") == std::vector<std::size_t>{8, 8});
  CHECK(shape_of("0.out_proj.bias") == std::vector<std::size_t>{8});
  // PyTorch's layouts: in_proj_weight[k][d] = w_qkv(d, k), out_proj.weight[k][d] = w_o(d, k)
  const auto& l = a->layer<0>();
  const auto wi = f.values("0.in_proj_weight");
  const auto wo = f.values("0.out_proj.weight");
  std::size_t bad = 0;
  for (std::size_t k = 0; k < 24; ++k)
    for (std::size_t d = 0; d < 8; ++d)
      bad += static_cast<float>(wi[k * 8 + d]) == l.w_qkv(d, k) ? 0 : 1;
  for (std::size_t k = 0; k < 8; ++k)
    for (std::size_t d = 0; d < 8; ++d)
      bad += static_cast<float>(wo[k * 8 + d]) == l.w_o(d, k) ? 0 : 1;
  const auto bi = f.values("0.in_proj_bias");
  for (std::size_t k = 0; k < 24; ++k) bad += static_cast<float>(bi[k]) == l.b_qkv[k] ? 0 : 1;
  CHECK(bad == 0);
  auto b = g::make_model<net_t>(g::seed{2});
  g::import_safetensors(*b, path);
  CHECK(graft_test::bitwise_equal(*a, *b));
  // matching in model order sorts a module's in_proj weight before its bias, as graft keeps them
  CHECK(g::detail::module_order_less("0.in_proj_weight", "0.in_proj_bias"));
  CHECK(!g::detail::module_order_less("0.in_proj_bias", "0.in_proj_weight"));
  CHECK(g::detail::module_order_less("0.in_proj_bias", "0.out_proj.weight"));
  CHECK(g::detail::module_order_less("0.out_proj.weight", "0.out_proj.bias"));
}
#endif
#endif  // GRAFT_ATTENTION_THREADS_ONLY

TEST_CASE("attention's results do not depend on the thread count (1 or 2 threads), bitwise") {
  using Layer = mha<float, 16, 64, 4, false>;
  constexpr std::size_t rows = 8, in = 16 * 64;
  const std::size_t lengths[rows] = {16, 3, 0, 9, 1, 16, 12, 5};
  auto l = make_layer<Layer>(51);
  const auto x = random_values<float>(rows * in, 52);
  const auto dy = random_values<float>(rows * in, 53);
  const int before = g::parallel::threads();
  g::parallel::set_threads(1);
  const pass<Layer> one(*l, x, dy, rows, lengths);
  g::parallel::set_threads(2);
  const pass<Layer> two(*l, x, dy, rows, lengths);
  g::parallel::set_threads(before);
  MESSAGE("threads available: " << std::string(g::parallel::available() ? "yes" : "no"));
  CHECK(same_bits(one.y, two.y));
  CHECK(same_bits(one.dx, two.dx));
  CHECK(same_bits(one.grads, two.grads));
}
