// Compile-time facts (static_assert: these checks happen when the file compiles) and the core
// types: shapes, tensors, stacks, models, heads, attach, seeded initialisation.
#include <doctest/doctest.h>

#include <graft/graft.hpp>

#include "support/compare.hpp"

namespace g = graft;

using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;
using mlp_net = g::model<mlp, g::classifier<10>>;

// ---- the MLP figures ----
static_assert(mlp::parameter_count == 233'856);
static_assert(mlp_net::parameter_count == 235'146);
static_assert(mlp::layer_count == 5 && mlp_net::layer_count == 6);
static_assert(std::is_same_v<mlp::output_shape, g::shape<128>>);
static_assert(std::is_same_v<mlp_net::output_shape, g::shape<10>>);
static_assert(mlp::parameter_bytes<float> == 233'856 * 4 &&
              mlp::parameter_bytes<double> == 233'856 * 8);
static_assert(mlp_net::parameter_bytes == 235'146 * 4);
static_assert(mlp::sizes[0] == 784 && mlp::sizes[2] == 256 && mlp::widest == 784);

// ---- shapes and packs ----
static_assert(g::shape<2, 3, 4>::size == 24 && g::shape<2, 3, 4>::rank == 3);
static_assert(g::Shape<g::shape<5>> && !g::Shape<g::shape<0>> && !g::Shape<int>);
static_assert(g::FlatShape<g::shape<5>> && !g::FlatShape<g::shape<1, 5>>);
static_assert(std::is_same_v<g::meta::pack_element_t<2, int, char, double, float>, double>);
static_assert(
    std::is_same_v<mlp_net::layer_type<1>, g::dense_layer<float, 784, 256, g::init::pytorch>>);
static_assert(std::is_same_v<mlp_net::layer_type<5>, mlp_net::head_layer>);
static_assert(g::BoundLayer<mlp_net::layer_type<0>> && g::BoundLayer<mlp_net::layer_type<1>>);

// ---- footprints: what a trainer and a runner allocate is known while compiling ----
using mlp_trainer = g::trainer<mlp_net, 64, g::sgd>;
static_assert(mlp_trainer::trainable_parameter_count == 235'146);
static_assert(mlp_trainer::gradient_bytes == 235'146 * 4);
static_assert(mlp_trainer::optimizer_state_bytes == 235'146 * 4);
static_assert(g::trainer<mlp_net, 64, g::adam>::optimizer_state_bytes == 2 * 235'146 * 4);
static_assert(g::runner<mlp_net, 1>::activation_bytes == 2 * 784 * 4);
static_assert(sizeof(g::runner<mlp_net, 1>) == g::runner<mlp_net, 1>::activation_bytes);
static_assert(mlp_trainer::arena_bytes >=
              (64 * (784 + 784 + 256 + 256 + 128 + 128 + 10) + 2 * 64 * 784 + 2 * 235'146) * 4);

// A deep stack binds flat (no recursion limit at 300 layers).
template <std::size_t... I> auto deep_stack(std::index_sequence<I...>)
    -> g::stack<g::input<4>, std::conditional_t<I % 2 == 0, g::relu, g::tanh>...>;
using deep = decltype(deep_stack(std::make_index_sequence<300>{}));
static_assert(deep::layer_count == 300 && std::is_same_v<deep::output_shape, g::shape<4>>);
static_assert(
    std::is_same_v<g::model<deep, g::regressor<2>>::layer_type<299>::output_shape, g::shape<4>>);

TEST_CASE("tensor: same-shape assignment copies, reshape_copy moves between shapes") {
  g::tensor<float, 3, 4> a(2.0f), b;
  b = a;
  CHECK(b == a);
  a(1, 2) = 5.0f;
  CHECK(a[1 * 4 + 2] == 5.0f);
  CHECK(b(1, 2) == 2.0f);
  g::tensor<float, 4, 3> c;
  g::reshape_copy(a, c);
  CHECK(c[6] == 5.0f);
  CHECK(g::tensor<float, 2, 2, 2>::rank == 3);
  CHECK(g::shape<1, 28, 28>::str() == "1x28x28");
}

TEST_CASE("make_model: seeded, deterministic, independent streams per layer") {
  auto a = g::make_model<mlp_net>(g::seed{7});
  auto b = g::make_model<mlp_net>(g::seed{7});
  auto c = g::make_model<mlp_net>(g::seed{8});
  CHECK(graft_test::bitwise_equal(*a, *b));  // bitwise identical
  CHECK(!(a->layer<1>().weight == c->layer<1>().weight));
  // PyTorch-default bound 1/sqrt(fan_in)
  const float bound = 1.0f / std::sqrt(784.0f);
  float lo = 1, hi = -1;
  for (float w : a->layer<1>().weight) {
    lo = std::min(lo, w);
    hi = std::max(hi, w);
  }
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(lo < -0.9f * bound);
  CHECK(hi > 0.9f * bound);
}

TEST_CASE("initialisers: He and Glorot statistics") {
  using he_net = g::model<g::stack<g::input<400>, g::dense<300, g::init::he>>,
                          g::classifier<2, g::init::glorot>>;
  auto m = g::make_model<he_net>(g::seed{1});
  double s = 0, s2 = 0;
  for (float w : m->layer<0>().weight) {
    s += w;
    s2 += double(w) * w;
  }
  const double n = 400.0 * 300.0, var = s2 / n - (s / n) * (s / n);
  CHECK(std::abs(s / n) < 0.002);
  CHECK(var == doctest::Approx(2.0 / 400.0).epsilon(0.02));
  for (float b : m->layer<0>().bias) CHECK(b == 0.0f);
  const float gb = std::sqrt(6.0f / (300 + 2));
  for (float w : m->head().weight) CHECK(std::abs(w) <= gb);
}

TEST_CASE("attach: a new head keeps the backbone's weights and is freshly initialised") {
  auto net = g::make_model<mlp_net>(g::seed{1});
  net->layer<3>().weight[5] = 42.0f;
  const auto before = std::make_unique<mlp_net>(*net);
  auto five = g::attach<g::classifier<5>>(std::move(net), g::seed{2});
  static_assert(std::is_same_v<decltype(five)::element_type, g::model<mlp, g::classifier<5>>>);
  CHECK(five->layer<3>().weight[5] == 42.0f);
  auto before_five = g::attach<g::classifier<5>>(std::make_unique<mlp_net>(*before));
  CHECK(graft_test::bitwise_equal(*five, *before_five, false));
  auto again = g::attach<g::classifier<5>>(g::make_model<mlp_net>(g::seed{1}), g::seed{2});
  CHECK(again->head().weight == five->head().weight);  // head init depends only on the seed
  auto reg = g::attach<g::regressor<3>>(std::move(again));
  CHECK(reg->layer<1>().weight == five->layer<1>().weight);
}

TEST_CASE("descriptions name every layer and shape") {
  CHECK(mlp_net::description() ==
        "input<1x28x28> flatten:784 dense<256>:256 relu:256 dense<128>:128 relu:128 | "
        "classifier<10>:128->10");
}

TEST_CASE("runner: batch-1 inference equals the trainer's forward") {
  auto net = g::make_model<mlp_net>(g::seed{3});
  g::runner<mlp_net, 4> r;
  auto t = std::make_unique<mlp_trainer>(*net, g::sgd{});
  g::splitmix64 rng(1);
  for (std::size_t i = 0; i < 4 * 784; ++i)
    r.input()[i] = t->input()[i] = static_cast<float>(rng.uniform01());
  const float* z = r.forward(*net, 4);
  t->forward(4);
  for (std::size_t i = 0; i < 40; ++i) CHECK(z[i] == t->output()[i]);
}
