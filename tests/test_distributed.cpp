// Data-parallel training (graft/train/distributed.hpp) with ranks as threads: N ranks give bitwise
// the weights of one process with shards{S}, for MLPs, LeNet, a batch-norm ResNet, dropout, a
// frozen backbone with its feature cache, any N dividing S; a rank's failure stops every rank with
// an error naming it and the step. The same over MPI processes: tests/mpi/.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <graft/graft.hpp>

#include "support/backbones.hpp"
#include "support/blobs.hpp"
#include "support/compare.hpp"
#include "support/temp_dir.hpp"
#include "support/thread_collective.hpp"

namespace g = graft;
using graft_test::bitwise_equal;
using graft_test::blobs;

namespace {

using mlp_net = g::model<g::stack<g::input<12>, g::dense<16>, g::relu, g::dense<16>, g::relu>,
                         g::classifier<3>>;
using rich_net = g::model<g::stack<g::input<12>, g::dense<16>, g::batch_norm, g::relu,
                                   g::dropout<20>, g::dense<8>, g::relu>,
                          g::classifier<3>>;

// Runs f(rank, comm) on n threads; returns each rank's exception message ("" when it returned).
std::vector<std::string> on_ranks(std::size_t n,
                                  const std::function<void(std::size_t, g::collective&)>& f) {
  graft_test::thread_world world(n);
  std::vector<std::string> errors(n);
  std::vector<std::thread> threads;
  for (std::size_t r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      graft_test::thread_collective comm(world, r);
      try {
        f(r, comm);
      } catch (const std::exception& e) {
        errors[r] = e.what();
        if (errors[r].empty()) errors[r] = "(empty message)";
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

// One process with shards{S} against n ranks: every rank must end with bitwise its weights.
template <class Net, std::size_t B, class Policy = g::freeze::none, class... Options>
void check_ranks_equal_one_process(const g::data::dataset& ds, std::size_t n, std::size_t s,
                                   Options... options) {
  Net ref;
  ref.initialize(g::seed{3});
  const Net start = ref;
  const auto r1 = g::finetune<Policy>(ref, ds, g::adam{.lr = 1e-2F}, g::batch<B>, g::seed{5},
                                      g::shards{s}, g::progress{false}, options...);
  std::vector<Net> nets(n, start);
  std::vector<double> losses(n);
  const auto errors = on_ranks(n, [&](std::size_t r, g::collective& comm) {
    const auto rep =
        g::finetune<Policy>(nets[r], ds, g::adam{.lr = 1e-2F}, g::batch<B>, g::seed{5},
                            g::shards{s}, g::distributed{&comm}, g::progress{false}, options...);
    losses[r] = rep.final_loss;
  });
  for (std::size_t r = 0; r < n; ++r) {
    INFO("rank " << r << " of " << n << ", " << s << " shards");
    CHECK(errors[r].empty());
    CHECK(bitwise_equal(nets[r], ref));
    CHECK(losses[r] == r1.final_loss);
    // the buffers (batch norm's running statistics) too
    std::vector<float> a, b;
    nets[r].for_each_saved(
        [&](std::size_t, const float* p, std::size_t k) { a.insert(a.end(), p, p + k); });
    ref.for_each_saved(
        [&](std::size_t, const float* p, std::size_t k) { b.insert(b.end(), p, p + k); });
    CHECK(a == b);
  }
  CHECK_FALSE(bitwise_equal(ref, start));  // it trained
}

}  // namespace

TEST_CASE("shards: contiguous slices, the first rows % S one row longer") {
  CHECK(g::detail::shard_of(10, 3, 0).begin == 0);
  CHECK(g::detail::shard_of(10, 3, 0).rows == 4);
  CHECK(g::detail::shard_of(10, 3, 1).begin == 4);
  CHECK(g::detail::shard_of(10, 3, 1).rows == 3);
  CHECK(g::detail::shard_of(10, 3, 2).begin == 7);
  CHECK(g::detail::shard_of(10, 3, 2).rows == 3);
  CHECK(g::detail::shard_of(1, 3, 0).rows == 1);
  CHECK(g::detail::shard_of(1, 3, 2).rows == 0);
}

TEST_CASE("one shard is the plain step; more shards train to nearly the same model") {
  const auto ds = blobs(300, {12}, 1);
  mlp_net a, b, c;
  a.initialize(g::seed{3});
  b = a;
  c = a;
  g::pretrain(a, ds, g::adam{.lr = 1e-2F}, g::batch<32>, g::epochs{2}, g::progress{false});
  g::pretrain(b, ds, g::adam{.lr = 1e-2F}, g::batch<32>, g::epochs{2}, g::shards{1},
              g::progress{false});
  g::pretrain(c, ds, g::adam{.lr = 1e-2F}, g::batch<32>, g::epochs{2}, g::shards{4},
              g::progress{false});
  CHECK(bitwise_equal(a, b));
  CHECK(g::evaluate(c, ds).accuracy == doctest::Approx(g::evaluate(a, ds).accuracy).epsilon(0.05));
}

TEST_CASE("N ranks give bitwise the one-process weights: MLP, any N dividing S") {
  const auto ds = blobs(203, {12}, 2);  // 203 = 6 batches of 32 and a last one of 11 rows
  check_ranks_equal_one_process<mlp_net, 32>(ds, 2, 2, g::epochs{2});
  check_ranks_equal_one_process<mlp_net, 32>(ds, 3, 3, g::epochs{2});
  check_ranks_equal_one_process<mlp_net, 32>(ds, 2, 4, g::epochs{2});
  check_ranks_equal_one_process<mlp_net, 32>(ds, 4, 4, g::epochs{1});
}

TEST_CASE("N ranks: batch norm statistics, dropout, a last batch smaller than S") {
  const auto ds = blobs(135, {12}, 4);  // a last batch of 7 rows: shards of 3, 2, 2
  check_ranks_equal_one_process<rich_net, 32>(ds, 3, 3, g::epochs{2});
  check_ranks_equal_one_process<rich_net, 32>(ds, 2, 2, g::epochs{2});
  const auto tiny_last = blobs(130, {12}, 4);  // a last batch of 2 rows: shard 2 of 3 is empty
  check_ranks_equal_one_process<mlp_net, 32>(tiny_last, 3, 3, g::epochs{2});
}

TEST_CASE("N ranks: a frozen backbone with the feature cache, and L2-SP") {
  const auto ds = blobs(150, {12}, 6);
  check_ranks_equal_one_process<mlp_net, 16, g::freeze::backbone>(ds, 2, 2, g::steps{20});
  check_ranks_equal_one_process<mlp_net, 16, g::freeze::first<2>>(ds, 2, 2, g::steps{20},
                                                                  g::l2_sp{});
}

TEST_CASE("N ranks: LeNet and the ResNet on images") {
  g::splitmix64 rng(9);
  std::vector<float> x(96 * 784);
  std::vector<std::int32_t> y(96);
  for (std::size_t i = 0; i < 96; ++i) {
    y[i] = static_cast<std::int32_t>(rng.below(10));
    for (std::size_t p = 0; p < 784; ++p)
      x[i * 784 + p] =
          static_cast<float>(rng.uniform01()) + (p % 10 == std::size_t(y[i]) ? 0.5F : 0.F);
  }
  const auto ds =
      g::data::make_classification("images", {1, 28, 28}, std::move(x), std::move(y), 10);
  using lenet_net = g::model<backbones::lenet, g::classifier<10>>;
  using resnet_net = g::model<backbones::resnet, g::classifier<10>>;
  check_ranks_equal_one_process<lenet_net, 16>(ds, 2, 2, g::steps{6});
  check_ranks_equal_one_process<resnet_net, 16>(ds, 2, 2, g::steps{3});
}

TEST_CASE("a rank's failure stops every rank, naming the rank and the step") {
  const auto ds = blobs(200, {12}, 7);
  SUBCASE("an exception on rank 1 at step 3") {
    const auto errors = on_ranks(2, [&](std::size_t r, g::collective& comm) {
      mlp_net net;
      net.initialize(g::seed{1});
      g::pretrain(net, ds, g::adam{}, g::batch<32>, g::epochs{3}, g::distributed{&comm},
                  g::progress{false}, g::on_step([&](const g::step_info& s) {
                    if (r == 1 && s.step == 3) throw std::runtime_error("disk full");
                  }));
    });
    CHECK(errors[1] == "disk full");
    CHECK(errors[0].find("rank 1 failed at step 3: disk full") != std::string::npos);
  }
  SUBCASE("a non-finite loss on rank 1 only") {
    auto bad = ds;
    for (float& v : bad.features) v = std::nanf("");
    mlp_net start;
    start.initialize(g::seed{1});
    std::vector<mlp_net> nets(3, start);
    const auto errors = on_ranks(3, [&](std::size_t r, g::collective& comm) {
      g::pretrain(nets[r], r == 1 ? bad : ds, g::adam{}, g::batch<32>, g::epochs{1},
                  g::distributed{&comm}, g::progress{false});
    });
    CHECK(errors[1].find("not finite") != std::string::npos);
    for (std::size_t r : {0, 2}) {
      INFO(errors[r]);
      CHECK(errors[r].find("rank 1 failed at step 1") != std::string::npos);
      CHECK(errors[r].find("not finite") != std::string::npos);
      CHECK(bitwise_equal(nets[r], start));  // no rank applied the step
    }
  }
  SUBCASE("ranks called differently") {
    const auto errors = on_ranks(2, [&](std::size_t r, g::collective& comm) {
      mlp_net net;
      net.initialize(g::seed{1});
      g::pretrain(net, ds, g::adam{}, g::batch<32>, g::epochs{1}, g::seed{r}, g::distributed{&comm},
                  g::progress{false});
    });
    CHECK(errors[1].find("rank 1 was called with") != std::string::npos);
    CHECK(errors[0].find("rank 1") != std::string::npos);
  }
  SUBCASE("a shard count that the ranks do not divide") {
    const auto errors = on_ranks(2, [&](std::size_t, g::collective& comm) {
      mlp_net net;
      g::pretrain(net, ds, g::adam{}, g::batch<32>, g::epochs{1}, g::shards{3},
                  g::distributed{&comm}, g::progress{false});
    });
    CHECK(errors[0].find("multiple of the rank count") != std::string::npos);
    CHECK(errors[1].find("multiple of the rank count") != std::string::npos);
  }
}

TEST_CASE("a resumed data-parallel run continues bitwise; rank 0 alone writes the checkpoint") {
  const auto ds = blobs(200, {12}, 8);
  const graft_test::temp_dir dir("graft_distributed");
  const std::string path = dir.file("run.ckpt");
  rich_net start;
  start.initialize(g::seed{2});
  std::vector<rich_net> whole(2, start), resumed(2, start);
  auto train = [&](std::vector<rich_net>& nets, bool crash, bool resume) {
    return on_ranks(2, [&](std::size_t r, g::collective& comm) {
      auto crash_at_5 = g::on_step([&](const g::step_info& s) {
        if (crash && s.step == 5) throw std::runtime_error("power cut");
      });
      if (resume)
        g::pretrain(nets[r], ds, g::adam{}, g::batch<32>, g::steps{10}, g::distributed{&comm},
                    g::progress{false}, g::checkpoint{path, 3}, g::resume{path});
      else
        g::pretrain(nets[r], ds, g::adam{}, g::batch<32>, g::steps{10}, g::distributed{&comm},
                    g::progress{false}, g::checkpoint{path, 3}, crash_at_5);
    });
  };
  auto e1 = train(whole, false, false);
  CHECK(e1[0].empty());
  CHECK(e1[1].empty());
  std::filesystem::remove(path);
  auto e2 = train(resumed, true, false);  // every rank stops at step 5; the file holds step 3
  CHECK(e2[0] == "power cut");
  CHECK(e2[1] == "power cut");
  CHECK_FALSE(bitwise_equal(resumed[0], whole[0]));
  resumed.assign(2, start);  // the weights come from the checkpoint
  auto e3 = train(resumed, false, true);
  CHECK(e3[0].empty());
  CHECK(e3[1].empty());
  CHECK(bitwise_equal(resumed[0], whole[0]));
  CHECK(bitwise_equal(resumed[1], whole[0]));
}

TEST_CASE("evaluate with distributed: each rank a block of batches, every rank the whole result") {
  auto ds = blobs(1000, {12}, 21);  // 1000 rows, batch 64: 16 batches, the last one short
  mlp_net net;
  net.initialize(g::seed{4});
  g::pretrain(net, ds.take(300), g::adam{}, g::batch<32>, g::steps{20}, g::progress{false});
  auto check = [&](const g::data::dataset& data, std::size_t n) {
    const auto one = g::evaluate(net, data, g::batch<64>);
    std::vector<g::evaluation> got(n);
    const auto errors = on_ranks(n, [&](std::size_t r, g::collective& comm) {
      got[r] = g::evaluate(net, data, g::batch<64>, g::distributed{&comm});
    });
    for (std::size_t r = 0; r < n; ++r) {
      CAPTURE(n);
      CAPTURE(r);
      CHECK(errors[r].empty());
      CHECK(got[r].samples == one.samples);
      CHECK(got[r].confusion == one.confusion);
      CHECK(got[r].accuracy == one.accuracy);  // counts: exact
      CHECK(got[r].nonfinite == one.nonfinite);
      CHECK(got[r].first_nonfinite == one.first_nonfinite);
      if (one.finite())
        CHECK(got[r].loss == one.loss);  // the batch totals summed in batch order: bitwise
      else
        CHECK(std::isnan(got[r].loss));
    }
  };
  for (std::size_t n : {2, 3, 5}) check(ds, n);
  ds.features[700 * 12 + 3] = std::nanf("");  // sample 700 (rank 1 of 2) and one later
  ds.features[950 * 12] = std::nanf("");
  const auto one = g::evaluate(net, ds, g::batch<64>);
  REQUIRE(one.nonfinite == 2);
  REQUIRE(one.first_nonfinite == 700);
  for (std::size_t n : {2, 3}) check(ds, n);
}
