// The building blocks of transformer encoders (issue 16, docs/design/sequence_models.md §3):
// per_position<Spec> (a flat layer on every position), group<...> (specs spliced into a stack),
// and residual blocks in token models (the mask passed to the inner layers).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <graft/graft.hpp>
#include <graft/layers/per_position.hpp>
#include <graft/testing/gradcheck.hpp>

#include "support/compare.hpp"

namespace g = graft;

namespace {
template <class A, class B> void copy_parameters(const A& a, B& b) {
  std::vector<std::vector<double>> p;
  a.for_each_parameter([&](std::size_t, std::size_t, g::role, const auto* d, std::size_t n) {
    p.emplace_back(d, d + n);
  });
  std::size_t k = 0;
  b.for_each_parameter([&](std::size_t, std::size_t, g::role, auto* d, std::size_t n) {
    REQUIRE(p[k].size() == n);
    using T = std::remove_cvref_t<decltype(*d)>;
    for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<T>(p[k][i]);
    ++k;
  });
  REQUIRE(k == p.size());
}
}  // namespace

TEST_CASE("per_position<dense<N>> is dense on every row, bitwise, and fuses relu") {
  using pp = g::per_position<g::dense<7>>::bind<float, g::shape<5, 9>>;
  using d = g::dense<7>::bind<float, g::shape<9>>;
  static_assert(std::is_same_v<pp::output_shape, g::shape<5, 7>>);
  static_assert(pp::parameter_count == 9 * 7 + 7);
  static_assert(g::detail::sequence_of_v<pp> == g::sequence_use::positionwise);
  static_assert(g::detail::fuses_v<pp, g::relu::bind<float, g::shape<5, 7>>>);
  static_assert(!g::per_position<g::dense<7>>::accepts<g::shape<9>>);
  CHECK(pp::name() == "per_position<dense<7>>");
  auto a = std::make_unique<pp>();
  g::splitmix64 rng(3);
  a->init(rng);
  d one = a->inner;
  std::vector<float> x(3 * 5 * 9), y(3 * 5 * 7), z(7), yf(3 * 5 * 7);
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
  std::vector<float> ws(g::detail::training_workspace_of<pp>(3) + 1);
  g::detail::forward_eval(*a, x.data(), y.data(), 3, ws.data());
  for (std::size_t r = 0; r < 15; ++r) {
    one.forward(x.data() + r * 9, z.data(), 1);
    for (std::size_t c = 0; c < 7; ++c) CHECK(y[r * 7 + c] == z[c]);
  }
  g::detail::forward_fused<g::relu::bind<float, g::shape<5, 7>>>(*a, x.data(), yf.data(), 3,
                                                                 ws.data());
  for (std::size_t i = 0; i < y.size(); ++i) CHECK(yf[i] == std::max(y[i], 0.0F));
  // gradients in double
  const auto rep =
      g::testing::check_layer<g::per_position<g::dense<4>>::bind<double, g::shape<3, 5>>>();
  INFO(rep.first_failure);
  CHECK(rep.checked > 0);
  CHECK(rep.failures == 0);
}

TEST_CASE("group<...> splices its specs: the same layers, description and parameters") {
  using block = g::group<g::layer_norm, g::per_position<g::dense<6>>, g::gelu>;
  using grouped = g::stack<g::input<4, 6>, block, g::group<g::relu, g::group<g::layer_norm>>,
                           g::global_mean_pool_time>;
  using flat = g::stack<g::input<4, 6>, g::layer_norm, g::per_position<g::dense<6>>, g::gelu,
                        g::relu, g::layer_norm, g::global_mean_pool_time>;
  static_assert(grouped::layer_count == 6);
  static_assert(std::is_same_v<grouped::layers<float>, flat::layers<float>>);
  static_assert(grouped::parameter_count == flat::parameter_count);
  using mg = g::model<grouped, g::classifier<2>>;
  using mf = g::model<flat, g::classifier<2>>;
  CHECK(mg::description() == mf::description());
  // inside a residual block too
  using rg = g::residual<block>::bind<float, g::shape<4, 6>>;
  using rf = g::residual<g::layer_norm, g::per_position<g::dense<6>>,
                         g::gelu>::bind<float, g::shape<4, 6>>;
  CHECK(rg::name() == rf::name());
  static_assert(rg::parameter_count == rf::parameter_count);
}

namespace {
constexpr std::size_t V = 10;
template <std::size_t L, class T = float> using res_net =
    g::model<g::stack<g::input_tokens<L, V>, g::embedding<V, 6>,
                      g::residual<g::conv1d<6, 3, g::pad<1>>, g::relu>, g::layer_norm,
                      g::residual<g::layer_norm, g::per_position<g::dense<8>>, g::gelu,
                                  g::per_position<g::dense<6>>>,
                      g::global_max_pool_time>,
             g::classifier<3>, T>;
}  // namespace

TEST_CASE("residual blocks in a token model: masked when an inner layer is, lengths passed in") {
  using plan = g::detail::forward_plan<res_net<8>>;
  static_assert(g::detail::sequence_of_v<res_net<8>::layer_type<1>> == g::sequence_use::masked);
  static_assert(g::detail::sequence_of_v<res_net<8>::layer_type<3>> ==
                g::sequence_use::positionwise);
  static_assert(plan::reads_mask[1] && plan::reads_mask[4]);
  // a padded sample gives bitwise the logits of the sample in the model of its own length
  auto big = g::make_model<res_net<8>>(g::seed{2});
  auto check = [&]<std::size_t N>(std::integral_constant<std::size_t, N>) {
    auto small = std::make_unique<res_net<N>>();
    copy_parameters(*big, *small);
    auto rb = std::make_unique<g::runner<res_net<8>, 1>>();
    auto rs = std::make_unique<g::runner<res_net<N>, 1>>();
    std::fill(rb->input(), rb->input() + 8, 0.0F);
    for (std::size_t k = 0; k < N; ++k)
      rb->input()[k] = rs->input()[k] = static_cast<float>(1 + (k * 7 + N) % (V - 1));
    const float* a = rb->forward(*big, 1);
    const float* b = rs->forward(*small, 1);
    for (std::size_t c = 0; c < 3; ++c) CHECK(a[c] == b[c]);
  };
  check(std::integral_constant<std::size_t, 1>{});
  check(std::integral_constant<std::size_t, 3>{});
  check(std::integral_constant<std::size_t, 5>{});
  check(std::integral_constant<std::size_t, 8>{});
}

TEST_CASE("whole-model gradients (double) of a token model with residual blocks and masks") {
  using M = res_net<8, double>;
  constexpr std::size_t rows = 4;
  auto net = g::make_model<M>(g::seed{5});
  auto t = std::make_unique<g::trainer<M, rows, g::sgd>>(*net, g::sgd{});
  const std::size_t lengths[rows] = {8, 1, 3, 5};
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t k = 0; k < 8; ++k)
      t->input()[r * 8 + k] = k < lengths[r] ? static_cast<double>(1 + (r * 3 + k) % (V - 1)) : 0.0;
  std::int32_t y[rows] = {0, 2, 1, 1};
  t->compute_gradients(y, rows);
  const auto rep = g::testing::check_trainer(*net, *t, y, rows);
  INFO(rep.first_failure);
  CHECK(rep.checked == M::parameter_count);
  CHECK(rep.failures == 0);
}

// ---- encoder layers (layers/encoder.hpp) --------------------------------------------------------
#include <graft/layers/encoder.hpp>

namespace {
template <class Enc, std::size_t L = 8, class T = double> using enc_net =
    g::model<g::stack<g::input_tokens<L, 12>, g::embedding<12, 8>, g::positional_embedding, Enc,
                      Enc, g::layer_norm, g::global_mean_pool_time>,
             g::classifier<3>, T>;

template <class M> void check_encoder_gradients(std::uint64_t seed) {
  constexpr std::size_t rows = 4, L = M::input_shape::size;
  auto net = g::make_model<M>(g::seed{seed});
  auto t = std::make_unique<g::trainer<M, rows, g::sgd>>(*net, g::sgd{});
  const std::size_t lengths[rows] = {L, 1, 3, 5};
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t k = 0; k < L; ++k)
      t->input()[r * L + k] = k < lengths[r] ? static_cast<double>(1 + (r * 5 + k * 3) % 11) : 0.0;
  std::int32_t y[rows] = {0, 2, 1, 1};
  t->compute_gradients(y, rows);
  const auto rep = g::testing::check_trainer(*net, *t, y, rows);
  INFO(rep.first_failure);
  CHECK(rep.checked == M::parameter_count);
  CHECK(rep.failures == 0);
}
}  // namespace

TEST_CASE("encoder layers: the pieces they are made of, and whole-model gradients with masks") {
  // post-norm: residual(attention), layer_norm, residual(ffn), layer_norm; dropout 0 adds nothing
  using post = enc_net<g::post_norm_encoder<8, 2, 16, 0>>;
  using pre = enc_net<g::pre_norm_encoder<8, 2, 16, 0>>;
  static_assert(post::backbone_layer_count == 2 + 2 * 4 + 2);
  static_assert(pre::backbone_layer_count == 2 + 2 * 2 + 2);
  // parameters of one layer: attention 4 D^2 + 4 D, two layer norms 4 D, ffn D FF + FF + FF D + D
  static_assert(post::parameter_count - pre::parameter_count == 0);
  static_assert(g::detail::forward_plan<post>::reads_mask[2]);
  // with dropout: the residual's dropout layers are there
  using drop = g::stack<g::input<8, 8>, g::post_norm_encoder<8, 2, 16, 10>>;
  static_assert(drop::layer_count == 4);
  static_assert(drop::layers<float>::type<0>::inner_count == 2);
  check_encoder_gradients<post>(1);
  check_encoder_gradients<pre>(2);
  check_encoder_gradients<enc_net<g::post_norm_encoder<8, 2, 16, 0, g::causal>>>(3);
  check_encoder_gradients<enc_net<g::post_norm_encoder_lora<8, 2, 16, 2, 0>>>(4);
}

TEST_CASE("an encoder model gives bitwise the logits of a padded word at its own length") {
  // no positional table here (its size depends on L): embedding, two pre-norm layers, pooling
  using enc = g::pre_norm_encoder<8, 2, 16, 0>;
  auto big = g::make_model<g::model<g::stack<g::input_tokens<8, 12>, g::embedding<12, 8>, enc, enc,
                                             g::layer_norm, g::global_mean_pool_time>,
                                    g::classifier<3>>>(g::seed{5});
  auto check = [&]<std::size_t N>(std::integral_constant<std::size_t, N>) {
    using small_t = g::model<g::stack<g::input_tokens<N, 12>, g::embedding<12, 8>, enc, enc,
                                      g::layer_norm, g::global_mean_pool_time>,
                             g::classifier<3>>;
    using big_t = std::remove_cvref_t<decltype(*big)>;
    auto small = std::make_unique<small_t>();
    copy_parameters(*big, *small);
    auto rb = std::make_unique<g::runner<big_t, 1>>();
    auto rs = std::make_unique<g::runner<small_t, 1>>();
    std::fill(rb->input(), rb->input() + 8, 0.0F);
    for (std::size_t k = 0; k < N; ++k)
      rb->input()[k] = rs->input()[k] = static_cast<float>(1 + (k * 5 + N) % 11);
    const float* a = rb->forward(*big, 1);
    const float* b = rs->forward(*small, 1);
    for (std::size_t c = 0; c < 3; ++c) CHECK(a[c] == b[c]);
  };
  check(std::integral_constant<std::size_t, 1>{});
  check(std::integral_constant<std::size_t, 4>{});
  check(std::integral_constant<std::size_t, 7>{});
}
