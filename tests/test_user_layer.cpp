// A layer written outside graft (examples/support/affine.hpp), through public headers only: its
// gradients against central differences with the public checker, then everything a user does
// with a layer: stacks, pretrain, save/load, attach, finetune<bias_only> and first<1>, inference.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <unistd.h>
#include <graft/graft.hpp>
#include <graft/testing/gradcheck.hpp>

#include "../examples/support/affine.hpp"
#include "support/blobs.hpp"
#include "support/compare.hpp"

namespace g = graft;
using net_t = g::model<g::stack<g::input<2, 3>, g::flatten, mylib::affine, g::dense<8>, g::relu>,
                       g::classifier<3>>;

TEST_CASE("a user-defined layer passes the public gradient checker") {
  const auto rep = g::testing::check_layer<mylib::affine::bind<double, g::shape<7>>, 5>();
  INFO(rep.first_failure);
  CHECK(rep.checked == 5 * 7 + 2 * 7);
  CHECK(rep.failures == 0);
  // and through a whole model in double, via a trainer
  using dnet = g::model<g::stack<g::input<6>, mylib::affine, g::dense<5>, g::tanh>,
                        g::classifier<3>, double>;
  auto net = g::make_model<dnet>(g::seed{2});
  auto t = std::make_unique<g::trainer<dnet, 4, g::sgd>>(*net, g::sgd{});
  g::splitmix64 rng(3);
  for (std::size_t i = 0; i < 4 * 6; ++i) t->input()[i] = rng.uniform(-1.0, 1.0);
  const std::int32_t y[4] = {0, 1, 2, 1};
  t->compute_gradients(y, 4);
  const auto whole = g::testing::check_trainer(*net, *t, y, 4);
  INFO(whole.first_failure);
  CHECK(whole.checked == dnet::parameter_count);
  CHECK(whole.failures == 0);
}

TEST_CASE("a user-defined layer trains, saves, loads, takes a new head and fine-tunes") {
  static_assert(net_t::parameter_count == 12 + (6 * 8 + 8) + (8 * 3 + 3));
  const auto ds = graft_test::blobs(300, {2, 3}, 5);
  auto net = g::make_model<net_t>(g::seed{1});
  g::pretrain(*net, ds, g::sgd{.lr = 0.1f, .momentum = 0.9f}, g::epochs{5}, g::batch<16>, g::quiet);
  CHECK(g::evaluate(*net, ds).accuracy > 0.9);

  const auto path = (std::filesystem::temp_directory_path() /
                     ("graft_user_layer_" + std::to_string(::getpid()) + ".graft"))
                        .string();
  g::save(*net, path);
  auto back = g::make_model<net_t>(g::seed{9});
  g::load(*back, path);
  CHECK(graft_test::bitwise_equal(*net, *back));
  std::remove(path.c_str());

  // a new head on the same backbone; bias_only trains the affine's shift, not its scale
  auto five = g::attach<g::classifier<5>>(std::move(back), g::seed{3});
  const auto scale_before = five->layer<1>().scale;
  const auto shift_before = five->layer<1>().shift;
  auto target = graft_test::blobs(100, {2, 3}, 8);
  g::finetune<g::freeze::bias_only>(*five, target, g::sgd{.lr = 0.05f}, g::steps{20}, g::batch<16>,
                                    g::quiet);
  CHECK(five->layer<1>().scale == scale_before);
  CHECK_FALSE(five->layer<1>().shift == shift_before);
  // first<1> freezes the affine layer entirely (and caches its features)
  const auto shift_now = five->layer<1>().shift;
  const auto rep = g::finetune<g::freeze::first<1>>(*five, target, g::sgd{.lr = 0.05f},
                                                    g::steps{20}, g::batch<16>, g::quiet);
  CHECK(rep.cached_features);
  CHECK(five->layer<1>().shift == shift_now);

  // inference with a runner
  g::runner<decltype(five)::element_type, 1> r;
  for (std::size_t i = 0; i < 6; ++i) r.input()[i] = target.sample(0)[i];
  const float* z = r.forward(*five, 1);
  CHECK(std::isfinite(z[0]));
}
