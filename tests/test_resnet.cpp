// Batch norm and residual blocks: forward values against direct formulas, running statistics,
// gradient checks in double (batch statistics and frozen statistics, identity and projection
// shortcuts, nested blocks, whole ResNet-like models through the trainer), statistics under
// freezing policies, weight files with running statistics, feature caching and no heap in a step.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <graft/graft.hpp>

#include "../examples/support/backbones.hpp"
#include "support/alloc_counter.hpp"
#include "support/blobs.hpp"
#include "support/gradcheck.hpp"

namespace g = graft;
using graft_test::check_layer;

namespace {
// A batch norm whose scale, shift and running statistics start random, so that the gradient
// checks do not run at gamma = 1, beta = 0, mean = 0, var = 1.
template <class T, class In> struct random_bn_layer : g::batch_norm_layer<T, In> {
  void init(g::splitmix64& rng) {
    for (std::size_t c = 0; c < this->C; ++c) {
      this->gamma[c] = static_cast<T>(rng.uniform(0.5, 1.5));
      this->beta[c] = static_cast<T>(rng.uniform(-0.5, 0.5));
      this->running_mean[c] = static_cast<T>(rng.uniform(-0.5, 0.5));
      this->running_var[c] = static_cast<T>(rng.uniform(0.5, 2.0));
    }
  }
};
struct random_bn : g::batch_norm {
  template <class T, class In> using bind = random_bn_layer<T, In>;
};

using block = g::residual<g::conv2d<2, 3, g::pad<1>, g::no_bias>, random_bn, g::relu,
                          g::conv2d<2, 3, g::pad<1>, g::no_bias>, random_bn>;
using down_block = g::residual<g::conv2d<3, 3, g::pad<1>, g::stride<2>, g::no_bias>, random_bn,
                               g::relu, g::conv2d<3, 3, g::pad<1>, g::no_bias>, random_bn>;
using plain_down = g::residual<g::conv2d<3, 3, g::pad<1>, g::stride<2>>, g::tanh>;
using declared = g::residual<g::projection<g::conv2d<3, 1, g::stride<2>>, g::tanh>,
                             g::conv2d<3, 3, g::pad<1>, g::stride<2>>, g::tanh>;
using nested = g::residual<g::residual<g::dense<5>, g::tanh>, g::dense<5>>;

// Shapes, parameters and the inferred shortcut, while compiling.
using block_l = block::bind<float, g::shape<2, 5, 5>>;
static_assert(std::is_same_v<block_l::output_shape, g::shape<2, 5, 5>> &&
              block_l::identity_shortcut);
static_assert(block_l::parameter_count == 2 * (2 * 2 * 9) + 2 * (2 * 2));
static_assert(block_l::params.size() == 6 && block_l::buffers.size() == 4);
using down_l = down_block::bind<float, g::shape<2, 6, 6>>;
static_assert(std::is_same_v<down_l::output_shape, g::shape<3, 3, 3>> &&
              !down_l::identity_shortcut);
// inferred projection: conv2d<3, 1, stride<2>, no_bias> and batch_norm (the block has one)
static_assert(
    std::is_same_v<down_l::inner_type<5>,
                   g::conv2d<3, 1, g::stride<2>, g::no_bias>::bind<float, g::shape<2, 6, 6>>>);
static_assert(std::is_same_v<down_l::inner_type<6>, g::batch_norm_layer<float, g::shape<3, 3, 3>>>);
static_assert(down_l::parameter_count == 3 * 2 * 9 + 6 + 3 * 3 * 9 + 6 + 3 * 2 + 6);
// without batch norm in the block, the inferred projection has a bias and no batch norm
static_assert(plain_down::bind<float, g::shape<2, 6, 6>>::parameter_count ==
              (3 * 2 * 9 + 3) + (3 * 2 + 3));
static_assert(g::batch_norm::bind<float, g::shape<7>>::C == 7 &&
              g::batch_norm::bind<float, g::shape<4, 3, 3>>::HW == 9);

template <class T> double max_abs_diff(const std::vector<T>& a, const std::vector<T>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  return m;
}
}  // namespace

TEST_CASE("batch norm: batch statistics, running averages, evaluation with running statistics") {
  using L = g::batch_norm::bind<double, g::shape<2, 2, 3>>;
  L bn;
  g::splitmix64 rng(4);
  bn.init(rng);
  constexpr std::size_t rows = 5, n = rows * 6;
  std::vector<double> x(rows * 12), y(rows * 12), ws(L::training_workspace(rows));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-2, 3) + (i % 12 < 6 ? 1.0 : -4.0);
  bn.gamma[1] = 2.0;
  bn.beta[1] = 0.5;
  bn.forward_train<g::train_mode{true}>(x.data(), y.data(), rows, ws.data());
  for (std::size_t c = 0; c < 2; ++c) {
    double m = 0, v = 0;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t k = 0; k < 6; ++k) m += x[r * 12 + c * 6 + k];
    m /= n;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t k = 0; k < 6; ++k)
        v += (x[r * 12 + c * 6 + k] - m) * (x[r * 12 + c * 6 + k] - m);
    const double var = v / n;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t k = 0; k < 6; ++k) {
        const std::size_t i = r * 12 + c * 6 + k;
        CHECK(y[i] == doctest::Approx(bn.gamma[c] * (x[i] - m) / std::sqrt(var + 1e-5) + bn.beta[c])
                          .epsilon(1e-12));
      }
    // PyTorch: momentum 0.1, the running variance takes the unbiased batch variance
    CHECK(bn.running_mean[c] == doctest::Approx(0.1 * m).epsilon(1e-12));
    CHECK(bn.running_var[c] == doctest::Approx(0.9 + 0.1 * v / (n - 1)).epsilon(1e-12));
  }
  // evaluation and frozen-statistics training use the running averages and leave them as they are
  const auto rm = bn.running_mean, rv = bn.running_var;
  std::vector<double> ye(y.size()), yf(y.size());
  bn.forward(x.data(), ye.data(), rows, nullptr);
  bn.forward_train<g::train_mode{false}>(x.data(), yf.data(), rows, ws.data());
  CHECK(ye == yf);
  CHECK((bn.running_mean == rm && bn.running_var == rv));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t c = i % 12 / 6;
    CHECK(ye[i] ==
          doctest::Approx(bn.gamma[c] * (x[i] - rm[c]) / std::sqrt(rv[c] + 1e-5) + bn.beta[c])
              .epsilon(1e-12));
  }
}

TEST_CASE("batch norm gradients: batch statistics and frozen statistics, images and vectors") {
  GRAFT_CHECK_LAYER_GRADIENTS(random_bn::bind<double, g::shape<3, 2, 2>>, 3, g::train_mode{true});
  GRAFT_CHECK_LAYER_GRADIENTS(random_bn::bind<double, g::shape<3, 2, 2>>, 3, g::train_mode{false});
  GRAFT_CHECK_LAYER_GRADIENTS(random_bn::bind<double, g::shape<5>>, 4, g::train_mode{true});
  GRAFT_CHECK_LAYER_GRADIENTS(random_bn::bind<double, g::shape<5>>, 4, g::train_mode{false});
}

TEST_CASE("residual gradients: identity, inferred and declared projections, nested blocks") {
  GRAFT_CHECK_LAYER_GRADIENTS(block::bind<double, g::shape<2, 5, 5>>, 3, g::train_mode{true});
  GRAFT_CHECK_LAYER_GRADIENTS(block::bind<double, g::shape<2, 5, 5>>, 3, g::train_mode{false});
  GRAFT_CHECK_LAYER_GRADIENTS(down_block::bind<double, g::shape<2, 6, 6>>, 3, g::train_mode{true});
  GRAFT_CHECK_LAYER_GRADIENTS(down_block::bind<double, g::shape<2, 5, 5>>, 2, g::train_mode{false});
  GRAFT_CHECK_LAYER_GRADIENTS(plain_down::bind<double, g::shape<2, 6, 6>>, 2, g::train_mode{true});
  GRAFT_CHECK_LAYER_GRADIENTS(declared::bind<double, g::shape<2, 6, 6>>, 2, g::train_mode{true});
  GRAFT_CHECK_LAYER_GRADIENTS(nested::bind<double, g::shape<5>>, 3, g::train_mode{true});
}

TEST_CASE("residual forward is block(x) + shortcut(x) computed layer by layer") {
  using R = down_block::bind<double, g::shape<2, 6, 6>>;
  R r;
  g::splitmix64 rng(9);
  r.init(rng);
  constexpr std::size_t rows = 2;
  std::vector<double> x(rows * 72), y(rows * 27), ws(R::training_workspace(rows));
  for (auto& v : x) v = rng.uniform(-1, 1);
  r.forward(x.data(), y.data(), rows, ws.data());
  // by hand, in evaluation mode, through the inner layers themselves
  std::vector<double> a1(rows * 27), a2(rows * 27), a3(rows * 27), a4(rows * 27), a5(rows * 27),
      p1(rows * 27), p2(rows * 27);
  std::vector<double> iws(R::inference_workspace(rows));  // more than any inner layer needs
  r.inner<0>().forward(x.data(), a1.data(), rows, iws.data());
  r.inner<1>().forward(a1.data(), a2.data(), rows, nullptr);
  r.inner<2>().forward(a2.data(), a3.data(), rows);
  r.inner<3>().forward(a3.data(), a4.data(), rows, iws.data());
  r.inner<4>().forward(a4.data(), a5.data(), rows, nullptr);
  r.inner<5>().forward(x.data(), p1.data(), rows, iws.data());
  r.inner<6>().forward(p1.data(), p2.data(), rows, nullptr);
  for (std::size_t i = 0; i < y.size(); ++i) CHECK(y[i] == a5[i] + p2[i]);
  // parameters and buffers are the inner layers' own, block first, then the shortcut
  CHECK(r.param(0) == r.inner<0>().weight.data());
  CHECK(r.param(1) == r.inner<1>().gamma.data());
  CHECK(r.param(6) == r.inner<5>().weight.data());
  CHECK(r.param(8) == r.inner<6>().beta.data());
  CHECK(r.buffer(5) == r.inner<6>().running_var.data());
}

namespace {
using small_resnet = g::stack<g::input<1, 6, 6>, g::conv2d<2, 3, g::pad<1>, g::no_bias>, random_bn,
                              g::relu, block, g::relu, down_block, g::relu, g::global_avg_pool>;
using small_net = g::model<small_resnet, g::classifier<3>, double>;
// layer indices: 0 conv, 1 bn, 2 relu, 3 block, 4 relu, 5 down_block, 6 relu, 7 pool, 8 head

template <class Policy> void check_whole_model() {
  auto net = g::make_model<small_net>(g::seed{5});
  g::trainer<small_net, 4, g::sgd, Policy> t(*net, g::sgd{.lr = 0.1f});
  g::splitmix64 rng(6);
  for (std::size_t i = 0; i < 4 * 36; ++i) t.input()[i] = rng.uniform(-1, 1);
  const std::int32_t y[4] = {0, 2, 1, 2};
  t.compute_gradients(y, 4);
  const auto rep = graft_test::check_trainer(*net, t, y, 4);
  INFO(rep.first_failure);
  CHECK(rep.checked > 0);
  CHECK(rep.failures == 0);
}
}  // namespace

namespace {
// The full-size backbones of the examples, in double: 16 entries of every parameter tensor.
template <class Backbone> void check_full_size(std::size_t seed) {
  using net_t = g::model<Backbone, g::classifier<10>, double>;
  auto net = g::make_model<net_t>(g::seed{seed});
  auto t = std::make_unique<g::trainer<net_t, 3, g::sgd>>(*net, g::sgd{});
  g::splitmix64 rng(seed);
  for (std::size_t i = 0; i < 3 * 784; ++i) t->input()[i] = rng.uniform(0, 1);
  const std::int32_t y[3] = {3, 7, 1};
  t->compute_gradients(y, 3);
  const auto rep = graft_test::check_trainer(*net, *t, y, 3, 16);
  INFO(rep.first_failure);
  CHECK(rep.checked > 16 * 8);
  CHECK(rep.failures == 0);
}
}  // namespace

TEST_CASE("full-size LeNet and ResNet: gradients through the trainer match central differences") {
  check_full_size<backbones::lenet>(1);
  check_full_size<backbones::resnet>(2);
}

TEST_CASE("whole ResNet-like model: gradients through the trainer match central differences") {
  check_whole_model<g::freeze::none>();
  check_whole_model<g::freeze::statistics>();
  check_whole_model<g::freeze::first<2>>();
  check_whole_model<g::freeze::bias_only>();
}

namespace {
using float_net = g::model<small_resnet, g::classifier<3>>;
std::vector<float> saved_state(float_net& net) {
  std::vector<float> v;
  net.for_each_saved(
      [&](std::size_t, const float* p, std::size_t n) { v.insert(v.end(), p, p + n); });
  return v;
}
std::vector<float> statistics_of(float_net& net, std::size_t layer) {
  std::vector<float> v;
  net.for_each_saved([&](std::size_t i, const float* p, std::size_t n) {
    if (i == layer) v.insert(v.end(), p, p + n);
  });
  return v;
}
template <class Policy> void steps(float_net& net, std::size_t n, std::size_t from = 0) {
  g::trainer<float_net, 8, g::sgd, Policy> t(net, g::sgd{.lr = 0.05f, .momentum = 0.9f});
  t.set_trainable_from(from);
  g::splitmix64 rng(7);
  std::int32_t y[8];
  for (std::size_t s = 0; s < n; ++s) {
    for (std::size_t i = 0; i < 8 * 36; ++i) t.input()[i] = static_cast<float>(rng.uniform(-1, 2));
    for (auto& v : y) v = static_cast<std::int32_t>(rng.below(3));
    t.step(y, 8);
  }
}
}  // namespace

TEST_CASE("batch-norm statistics follow the freezing policy") {
  using g::freeze::all_of;
  using g::freeze::first;
  using g::freeze::statistics;
  static_assert(g::trainer<float_net, 8, g::sgd>::batch_stats[1]);
  static_assert(!g::trainer<float_net, 8, g::sgd, g::freeze::backbone>::batch_stats[1]);
  static_assert(!g::trainer<float_net, 8, g::sgd, statistics>::batch_stats[3]);
  static_assert(!g::trainer<float_net, 8, g::sgd, first<2>>::batch_stats[1]);
  static_assert(g::trainer<float_net, 8, g::sgd, first<2>>::batch_stats[3]);
  static_assert(!g::trainer<float_net, 8, g::sgd, all_of<first<2>, statistics>>::batch_stats[5]);

  const auto start = g::make_model<float_net>(g::seed{2});
  auto run = [&](auto policy, std::size_t from = 0) {
    auto net = std::make_unique<float_net>(*start);
    steps<decltype(policy)>(*net, 5, from);
    return net;
  };
  {  // freeze nothing: every statistic moves
    auto net = run(g::freeze::none{});
    for (std::size_t layer : {1, 3, 5})
      CHECK(statistics_of(*net, layer) != statistics_of(*start, layer));
  }
  {  // linear probe: the backbone's batch norms keep their statistics bitwise (no drift)
    auto net = run(g::freeze::backbone{});
    for (std::size_t layer : {1, 3, 5})
      CHECK(statistics_of(*net, layer) == statistics_of(*start, layer));
  }
  {  // first<2> freezes the stem conv and its batch norm: those statistics stay, the blocks' move
    auto net = run(first<2>{});
    CHECK(statistics_of(*net, 1) == statistics_of(*start, 1));
    CHECK(statistics_of(*net, 3) != statistics_of(*start, 3));
  }
  {  // statistics frozen, scale and shift train
    auto net = run(statistics{});
    const auto& before = start->layer<1>();
    const auto& after = net->layer<1>();
    CHECK((after.running_mean == before.running_mean && after.running_var == before.running_var));
    CHECK(after.gamma != before.gamma);
    CHECK(after.beta != before.beta);
  }
  {  // gradual unfreezing: below the runtime boundary a batch norm is frozen, statistics included
    auto net = run(g::freeze::none{}, 5);
    CHECK(statistics_of(*net, 1) == statistics_of(*start, 1));
    CHECK(statistics_of(*net, 3) == statistics_of(*start, 3));
    CHECK(statistics_of(*net, 5) != statistics_of(*start, 5));
  }
}

TEST_CASE("weight files carry the running statistics; a refused file changes nothing") {
  auto net = g::make_model<float_net>(g::seed{3});
  steps<g::freeze::none>(*net, 3);
  const std::string path = "test_resnet_weights.graft";
  g::save(*net, path);
  auto other = g::make_model<float_net>(g::seed{4});
  g::load(*other, path);
  CHECK(saved_state(*other) == saved_state(*net));
  CHECK(other->layer<5>().inner<6>().running_var == net->layer<5>().inner<6>().running_var);
  // evaluation uses the running statistics: both models give the same outputs
  auto r = std::make_unique<g::runner<float_net, 4>>();
  std::vector<float> x(4 * 36);
  g::splitmix64 rng(8);
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
  auto outputs = [&](const float_net& m) {
    std::copy(x.begin(), x.end(), r->input());
    const float* out = r->forward(m, 4);
    return std::vector<float>(out, out + 12);
  };
  const auto a = outputs(*net), b = outputs(*other);
  CHECK(a == b);
  // a truncated file is refused and leaves the model as it was
  {
    std::FILE* f = std::fopen(path.c_str(), "rb+");
    REQUIRE(f != nullptr);
    std::fseek(f, 0, SEEK_END);
    const long size = std::ftell(f);
    std::fclose(f);
    std::vector<char> bytes(static_cast<std::size_t>(size));
    f = std::fopen(path.c_str(), "rb");
    REQUIRE(std::fread(bytes.data(), 1, bytes.size(), f) == bytes.size());
    std::fclose(f);
    f = std::fopen(path.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size() - 20, f);
    std::fclose(f);
  }
  auto third = g::make_model<float_net>(g::seed{5});
  const auto before = saved_state(*third);
  CHECK_THROWS_AS(g::load(*third, path), g::io_error);
  CHECK(saved_state(*third) == before);
  std::remove(path.c_str());
}

TEST_CASE("feature caching across conv, batch-norm and residual layers gives the same model") {
  const auto ds = graft_test::blobs(96, {1, 6, 6}, 11);
  const auto start = g::make_model<float_net>(g::seed{6});
  auto tune = [&](bool cache) {
    auto net = std::make_unique<float_net>(*start);
    g::finetune<g::freeze::first<3>>(*net, ds, g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::epochs{2},
                                     g::batch<16>, g::feature_cache{cache}, g::seed{1});
    return saved_state(*net);
  };
  const auto cached = tune(true), uncached = tune(false);
  CHECK(cached == uncached);
  CHECK(cached != saved_state(*std::make_unique<float_net>(*start)));
  CHECK(max_abs_diff(cached, uncached) == 0.0);
}

TEST_CASE("a ResNet-like model learns, and a training step allocates nothing") {
  const auto ds = graft_test::blobs(300, {1, 6, 6}, 12);
  auto net = g::make_model<float_net>(g::seed{7});
  g::pretrain(*net, ds, g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::epochs{4}, g::batch<16>,
              g::seed{2});
  CHECK(g::evaluate(*net, ds).accuracy > 0.9);

  g::trainer<float_net, 16, g::sgd> t(*net, g::sgd{.lr = 0.01f});
  std::int32_t y[16] = {};
  auto r = std::make_unique<g::runner<float_net, 1>>();
  const long before = graft_test::allocations.load();
  for (int s = 0; s < 3; ++s) t.step(y, 16);
  const long mid = graft_test::allocations.load();
  r->forward(*net, 1);
  const long after = graft_test::allocations.load();
  CHECK(mid == before);
  CHECK(after == before);
}

TEST_CASE("batch statistics over flat features refuse a batch of one row, naming the layer") {
  using flat = g::stack<g::input<4>, g::dense<6>, g::batch_norm, g::relu>;
  using net = g::model<flat, g::classifier<2>>;
  static_assert(g::trainer<net, 8, g::sgd>::min_rows.first == 2);
  static_assert(g::trainer<net, 8, g::sgd, g::freeze::statistics>::min_rows.first == 1);
  static_assert(g::trainer<float_net, 8, g::sgd>::min_rows.first == 1);  // images: H x W values
  auto m = g::make_model<net>(g::seed{1});
  g::trainer<net, 8, g::sgd> t(*m, g::sgd{});
  const std::int32_t y[8] = {};
  CHECK_NOTHROW(t.step(y, 2));
  try {
    t.step(y, 1);
    FAIL("a one-row batch through batch statistics must throw");
  } catch (const g::training_error& e) {
    const std::string what = e.what();
    CHECK(what.find("layer 1 (batch_norm)") != std::string::npos);
    CHECK(what.find("at least 2 rows") != std::string::npos);
  }
}
