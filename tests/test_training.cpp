// Training: optimizer update rules, partial batches, determinism, NaN detection, no heap
// allocation in a step, dataset validation, callbacks, and learning on real MNIST.
#include <doctest/doctest.h>

#include <cstdlib>
#include <vector>

#include <graft/graft.hpp>

#include "support/alloc_counter.hpp"
#include "support/blobs.hpp"
#include "support/compare.hpp"
#include "support/real_data.hpp"

namespace g = graft;

namespace {
using small_backbone = g::stack<g::input<2, 3>, g::flatten, g::dense<8>, g::relu>;
using small_net = g::model<small_backbone, g::classifier<3>>;

g::data::dataset synthetic(std::size_t n, std::uint64_t seed) {
  return graft_test::blobs(n, {2, 3}, seed);
}

// Applies an optimizer to one parameter vector with a fixed gradient sequence, through the
// optimizer's own update(); returns the parameters after the steps.
template <class Opt> std::vector<double> run_optimizer(const Opt& opt, std::vector<double> w,
                                                       const std::vector<std::vector<double>>& gs) {
  std::vector<std::vector<double>> state(Opt::state_count, std::vector<double>(w.size()));
  std::vector<double*> sp;
  for (auto& s : state) sp.push_back(s.data());
  for (std::size_t t = 0; t < gs.size(); ++t)
    opt.update(w.data(), gs[t].data(), sp.data(), w.size(), g::update_context{t + 1, opt.lr});
  return w;
}
}  // namespace

TEST_CASE("SGD follows PyTorch's rule (momentum, Nesterov, weight decay)") {
  const std::vector<double> w0{1.0, -2.0};
  const std::vector<std::vector<double>> gs{{0.5, 0.1}, {-0.2, 0.3}, {0.4, -0.1}};
  const double lr = 0.1, mu = 0.9, wd = 0.01;
  for (bool nesterov : {false, true}) {
    std::vector<double> w = w0, buf(2);
    for (std::size_t t = 0; t < gs.size(); ++t)
      for (std::size_t i = 0; i < 2; ++i) {
        const double d = gs[t][i] + wd * w[i];
        buf[i] = t == 0 ? d : mu * buf[i] + d;
        w[i] -= lr * (nesterov ? d + mu * buf[i] : buf[i]);
      }
    const auto got = run_optimizer(
        g::sgd{.lr = 0.1f, .momentum = 0.9f, .nesterov = nesterov, .weight_decay = 0.01f}, w0, gs);
    for (std::size_t i = 0; i < 2; ++i) CHECK(got[i] == doctest::Approx(w[i]).epsilon(1e-6));
  }
  const auto plain = run_optimizer(g::sgd{.lr = 0.1f}, w0, gs);
  CHECK(plain[0] == doctest::Approx(1.0 - 0.1 * (0.5 - 0.2 + 0.4)).epsilon(1e-6));
}

TEST_CASE("Adam and AdamW follow PyTorch's rules") {
  const std::vector<double> w0{1.0, -2.0};
  const std::vector<std::vector<double>> gs{{0.5, 0.1}, {-0.2, 0.3}, {0.4, -0.1}};
  for (bool decoupled : {false, true}) {
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
    std::vector<double> w = w0, m(2), v(2);
    for (std::size_t t = 0; t < gs.size(); ++t)
      for (std::size_t i = 0; i < 2; ++i) {
        double gi = gs[t][i];
        if (decoupled)
          w[i] *= 1 - lr * wd;
        else
          gi += wd * w[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        const double mh = m[i] / (1 - std::pow(b1, static_cast<double>(t) + 1.0)),
                     vh = v[i] / (1 - std::pow(b2, static_cast<double>(t) + 1.0));
        w[i] -= lr * mh / (std::sqrt(vh) + eps);
      }
    const auto got = decoupled ? run_optimizer(g::adamw{.lr = 0.01f, .weight_decay = 0.1f}, w0, gs)
                               : run_optimizer(g::adam{.lr = 0.01f, .weight_decay = 0.1f}, w0, gs);
    for (std::size_t i = 0; i < 2; ++i) CHECK(got[i] == doctest::Approx(w[i]).epsilon(1e-6));
  }
}

TEST_CASE("a partial batch trains exactly like a smaller batch") {
  auto a = g::make_model<small_net>(g::seed{1});
  auto b = g::make_model<small_net>(g::seed{1});
  auto ta =
      std::make_unique<g::trainer<small_net, 8, g::sgd>>(*a, g::sgd{.lr = 0.1f, .momentum = 0.9f});
  auto tb =
      std::make_unique<g::trainer<small_net, 3, g::sgd>>(*b, g::sgd{.lr = 0.1f, .momentum = 0.9f});
  const auto ds = synthetic(3, 5);
  for (std::size_t i = 0; i < 18; ++i) ta->input()[i] = tb->input()[i] = ds.features[i];
  for (std::size_t i = 18; i < 48; ++i) ta->input()[i] = 1e6f;  // garbage beyond the valid rows
  for (int s = 0; s < 3; ++s) {
    const double la = ta->step(ds.labels.data(), 3);
    const double lb = tb->step(ds.labels.data(), 3);
    CHECK(la == lb);
  }
  CHECK(graft_test::bitwise_equal(*a, *b));
}

TEST_CASE("pretrain: epochs, a partial last batch, callbacks, determinism") {
  const auto ds = synthetic(100, 1);  // 100 = 64 + 36
  std::vector<std::size_t> rows;
  std::vector<double> losses1, losses2;
  std::size_t epochs_seen = 0;
  auto a = g::make_model<small_net>(g::seed{4});
  const auto rep = g::pretrain(*a, ds, g::sgd{.lr = 0.1f, .momentum = 0.9f}, g::epochs{3},
                               g::seed{11}, g::on_step([&](const g::step_info& s) {
                                 rows.push_back(s.rows);
                                 losses1.push_back(s.loss);
                               }),
                               g::on_epoch([&](const g::epoch_info&) { ++epochs_seen; }));
  CHECK(rep.steps == 6);
  CHECK(rep.samples == 300);
  CHECK(epochs_seen == 3);
  CHECK(rows == std::vector<std::size_t>{64, 36, 64, 36, 64, 36});
  auto b = g::make_model<small_net>(g::seed{4});
  g::pretrain(*b, ds, g::sgd{.lr = 0.1f, .momentum = 0.9f}, g::epochs{3}, g::seed{11},
              g::on_step([&](const g::step_info& s) { losses2.push_back(s.loss); }));
  CHECK(losses1 == losses2);                 // same batches, same order
  CHECK(graft_test::bitwise_equal(*a, *b));  // bitwise-identical weights
  auto c = g::make_model<small_net>(g::seed{4});
  std::vector<double> losses3;
  g::pretrain(*c, ds, g::sgd{.lr = 0.1f, .momentum = 0.9f}, g::epochs{3}, g::seed{12},
              g::on_step([&](const g::step_info& s) { losses3.push_back(s.loss); }));
  CHECK(losses3 != losses1);  // another shuffling seed, another batch order
  CHECK(g::evaluate(*a, ds).accuracy > 0.9);
}

TEST_CASE("steps{n} and batch<N> options; Adam trains too") {
  const auto ds = synthetic(200, 2);
  auto a = g::make_model<small_net>(g::seed{4});
  const auto rep = g::pretrain(*a, ds, g::adam{.lr = 0.01f}, g::steps{45}, g::batch<16>);
  CHECK(rep.steps == 45);
  CHECK(rep.samples == 3 * 200 + 6 * 16);  // 13 steps per epoch (the 13th has 8 rows)
  CHECK(g::evaluate(*a, ds).accuracy > 0.9);
}

TEST_CASE("no heap allocation inside a training or inference step") {
  auto net = g::make_model<small_net>(g::seed{1});
  auto t = std::make_unique<g::trainer<small_net, 16, g::adamw>>(*net, g::adamw{});
  auto r = std::make_unique<g::runner<small_net, 16>>();
  const auto ds = synthetic(16, 3);
  std::copy(ds.features.begin(), ds.features.end(), t->input());
  std::copy(ds.features.begin(), ds.features.end(), r->input());
  t->step(ds.labels.data(), 16);  // warm-up
  const long before = graft_test::allocations.load();
  for (int s = 0; s < 10; ++s) t->step(ds.labels.data(), 16);
  r->forward(*net, 16);
  const long after = graft_test::allocations.load();
  CHECK(after - before == 0);
  // the counter does count: a vector allocates
  std::vector<int> v(10);
  CHECK(graft_test::allocations.load() > after);
}

TEST_CASE("no heap allocation inside a LeNet (conv, pooling) training or inference step") {
  using lenet = g::stack<g::input<1, 28, 28>, g::conv2d<6, 5, g::pad<2>>, g::relu, g::max_pool<2>,
                         g::conv2d<16, 5>, g::relu, g::max_pool<2>, g::flatten, g::dense<120>,
                         g::relu, g::dense<84>, g::relu>;
  using net_t = g::model<lenet, g::classifier<10>>;
  auto net = g::make_model<net_t>(g::seed{1});
  auto t = std::make_unique<g::trainer<net_t, 8, g::sgd>>(*net, g::sgd{});
  auto r = std::make_unique<g::runner<net_t, 8>>();
  g::splitmix64 rng(2);
  for (std::size_t i = 0; i < 8 * 784; ++i)
    t->input()[i] = r->input()[i] = static_cast<float>(rng.uniform01());
  std::int32_t y[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  t->step(y, 8);  // warm-up
  r->forward(*net, 8);
  const long before = graft_test::allocations.load();
  for (int s = 0; s < 3; ++s) t->step(y, 8);
  r->forward(*net, 8);
  r->forward(*net, 1);
  CHECK(graft_test::allocations.load() - before == 0);
}

TEST_CASE("NaN or infinity stops training with a clear error") {
  auto ds = synthetic(64, 1);
  ds.features[7] = std::nanf("");
  auto net = g::make_model<small_net>(g::seed{1});
  CHECK_THROWS_WITH_AS(g::pretrain(*net, ds, g::sgd{.lr = 0.1f}, g::epochs{1}),
                       doctest::Contains("training stopped at step 1: the loss is"),
                       g::training_error);
  // exploding weights: a huge learning rate overflows within a few steps
  auto ds2 = synthetic(256, 1);
  for (auto& v : ds2.features) v *= 1e18f;
  auto net2 = g::make_model<small_net>(g::seed{1});
  CHECK_THROWS_AS(g::pretrain(*net2, ds2, g::sgd{.lr = 1e10f}, g::epochs{5}), g::training_error);
  // a gradient that is inf while the loss is finite is named with its layer: huge inputs times
  // tiny first-layer weights give moderate logits, but x^T dy overflows
  auto net3 = g::make_model<small_net>(g::seed{1});
  auto t = std::make_unique<g::trainer<small_net, 4, g::sgd>>(*net3, g::sgd{});
  for (std::size_t i = 0; i < 24; ++i) t->input()[i] = 3e37f;
  net3->layer<1>().weight.fill(1e-37f);
  for (auto& w : net3->head().weight) w *= 1e4f;
  std::int32_t y[4] = {0, 1, 2, 0};
  CHECK_THROWS_WITH_AS(t->step(y, 4), doctest::Contains("layer 1 (dense<8>) weight is not finite"),
                       g::training_error);
}

TEST_CASE("a dataset that does not fit the model is refused with both shapes named") {
  auto net = g::make_model<small_net>(g::seed{1});
  auto wrong = g::data::make_classification("wrong", {7}, std::vector<float>(14), {0, 1}, 2);
  CHECK_THROWS_WITH_AS(g::pretrain(*net, wrong, g::sgd{}, g::epochs{1}),
                       "graft: dataset 'wrong' has samples of shape 7 (7 values), but the model's "
                       "input is 2x3 (6 values)",
                       std::invalid_argument);
  auto labels = g::data::make_classification("ten", {2, 3}, std::vector<float>(18), {0, 9, 1}, 10);
  CHECK_THROWS_WITH_AS(
      g::evaluate(*net, labels),
      "graft: dataset 'ten': sample 1 has label 9, but classifier<3> expects labels "
      "0..2 (use only_classes(...).relabeled() to map classes)",
      std::invalid_argument);
}

TEST_CASE("a regressor learns a linear map") {
  using reg_net = g::model<g::stack<g::input<4>, g::dense<16>, g::tanh>, g::regressor<2>>;
  g::splitmix64 rng(5);
  std::vector<float> x(512 * 4), y(512 * 2);
  for (std::size_t i = 0; i < 512; ++i) {
    for (std::size_t d = 0; d < 4; ++d) x[i * 4 + d] = static_cast<float>(rng.uniform(-1, 1));
    y[i * 2] = 0.5f * x[i * 4] - 0.25f * x[i * 4 + 1];
    y[i * 2 + 1] = 0.3f * x[i * 4 + 2] + 0.1f;
  }
  const auto ds = g::data::make_regression("linear", {4}, x, y, 2);
  auto net = g::make_model<reg_net>(g::seed{2});
  const double before = g::evaluate(*net, ds).loss;
  g::pretrain(*net, ds, g::adam{.lr = 0.01f}, g::epochs{30}, g::batch<32>);
  const auto ev = g::evaluate(*net, ds);
  CHECK(ev.loss < 0.01 * before);
  CHECK(std::isnan(ev.accuracy));
}

TEST_CASE("learning on real MNIST (a subset): above 89% after one epoch on 24000 images") {
  const auto loaded = graft_test::real_data("MNIST", [] { return g::data::mnist(); });
  if (!loaded) return;
  const g::data::split& mnist = *loaded;
  using mlp = g::stack<g::input<1, 28, 28>, g::flatten, g::dense<128>, g::relu>;
  using net_t = g::model<mlp, g::classifier<10>>;
  auto net = g::make_model<net_t>(g::seed{0});
  const auto before = g::evaluate(*net, mnist.test.take(2000));
  g::pretrain(*net, mnist.train.take(24000), g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::epochs{1});
  const auto ev = g::evaluate(*net, mnist.test.take(2000));
  MESSAGE("MNIST subset: accuracy " << ev.accuracy << " (before training " << before.accuracy
                                    << ")");
  CHECK(before.accuracy < 0.3);
  CHECK(ev.accuracy > 0.89);
  std::size_t diagonal = 0, total = 0;
  for (std::size_t c = 0; c < 10; ++c)
    for (std::size_t p = 0; p < 10; ++p) {
      total += ev.confusion_at(c, p);
      diagonal += c == p ? ev.confusion_at(c, p) : 0;
    }
  CHECK(total == 2000);
  CHECK(static_cast<double>(diagonal) / 2000.0 == doctest::Approx(ev.accuracy));
}
