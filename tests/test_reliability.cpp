// Reliability (issue 10): options validated where they are given, a step whose update is not
// finite undone, evaluate refusing an empty set and flagging non-finite outputs, bitwise resume
// from checkpoints (SGD with momentum, AdamW with a schedule, dropout, batch norm, gradual
// unfreezing, the feature cache; mid-epoch and at epoch ends), a checkpoint surviving SIGKILL
// during its write, and the divergence guard.
#include <doctest/doctest.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <graft/graft.hpp>

#include "support/blobs.hpp"
#include "support/compare.hpp"
#include "support/temp_dir.hpp"

#if defined(__unix__)
#include <sys/wait.h>
#include <unistd.h>
#endif

namespace g = graft;
namespace fs = std::filesystem;

namespace {
using small_backbone = g::stack<g::input<2, 3>, g::flatten, g::dense<8>, g::relu>;
using small_net = g::model<small_backbone, g::classifier<3>>;

using rich_backbone = g::stack<g::input<2, 3>, g::flatten, g::dense<16>, g::batch_norm, g::relu,
                               g::dropout<20>, g::dense<8>, g::relu>;
using rich_net = g::model<rich_backbone, g::classifier<3>>;

g::data::dataset blobs(std::size_t n, std::uint64_t seed = 7) {
  return graft_test::blobs(n, {2, 3}, seed);
}

using graft_test::temp_dir;

template <class M> std::size_t nonfinite_parameters(const M& net) {
  std::size_t bad = 0;
  net.for_each_saved([&](std::size_t, const auto* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) bad += std::isfinite(p[i]) ? 0 : 1;
  });
  return bad;
}
template <class M> bool same_saved(const M& a, const M& b) {
  std::vector<typename M::scalar> x, y;
  a.for_each_saved([&](std::size_t, const auto* p, std::size_t n) { x.insert(x.end(), p, p + n); });
  b.for_each_saved([&](std::size_t, const auto* p, std::size_t n) { y.insert(y.end(), p, p + n); });
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(x[0])) == 0;
}
}  // namespace

TEST_CASE("regression: options that cannot train are refused where they are given") {
  auto net = g::make_model<small_net>(g::seed{1});
  const auto copy = std::make_unique<small_net>(*net);
  const auto d = blobs(64);
  auto refused = [&](auto opt, const char* text, auto... more) {
    CHECK_THROWS_WITH_AS(g::pretrain(*net, d, opt, g::steps{1}, g::quiet, more...),
                         doctest::Contains(text), std::invalid_argument);
    CHECK(same_saved(*net, *copy));
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  refused(g::sgd{.lr = nan}, "option sgd.lr = nan: expected a finite learning rate > 0");
  refused(g::sgd{.lr = inf}, "option sgd.lr = inf");
  refused(g::sgd{.lr = -0.1f}, "option sgd.lr = -0.1");
  refused(g::sgd{.lr = 0.0f}, "option sgd.lr = 0");
  refused(g::sgd{.lr = 0.1f, .momentum = 1.0f},
          "option sgd.momentum = 1: expected a momentum in [0, 1)");
  refused(g::sgd{.lr = 0.1f, .momentum = -0.5f}, "sgd.momentum = -0.5");
  refused(g::sgd{.lr = 0.1f, .weight_decay = nan}, "sgd.weight_decay = nan");
  refused(g::adam{.beta1 = 1.0f}, "option adam.beta1 = 1");
  refused(g::adamw{.beta2 = nan}, "option adamw.beta2 = nan");
  refused(g::adam{.eps = 0.0f}, "option adam.eps = 0");
  refused(g::adamw{.weight_decay = -1.0f}, "adamw.weight_decay = -1");
  refused(g::sgd{.lr = 0.1f}, "schedule::step_decay.every = 0",
          g::schedule::step_decay{.every = 0});
  refused(g::sgd{.lr = 0.1f}, "schedule::step_decay.gamma = nan",
          g::schedule::step_decay{.every = 1, .gamma = std::nan("")});
  refused(g::sgd{.lr = 0.1f}, "schedule::cosine.min_factor = 2",
          g::schedule::cosine{.min_factor = 2});
  refused(g::sgd{.lr = 0.1f}, "schedule::one_cycle.pct_start = 0",
          g::schedule::one_cycle{.pct_start = 0});
  refused(g::sgd{.lr = 0.1f}, "schedule::warmup.steps = 0", g::schedule::warmup<>{.steps = 0});
  refused(g::sgd{.lr = 0.1f}, "divergence_guard.factor = 0.5", g::divergence_guard{.factor = 0.5});
  CHECK_THROWS_WITH_AS(g::finetune<g::freeze::none>(*net, d, g::sgd{.lr = 0.1f}, g::steps{1},
                                                    g::quiet, g::discriminative_lr{.factor = 0}),
                       doctest::Contains("discriminative_lr.factor = 0"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(g::finetune<g::freeze::none>(*net, d, g::sgd{.lr = 0.1f}, g::steps{1},
                                                    g::quiet, g::l2_sp{.alpha = -1}),
                       doctest::Contains("l2_sp.alpha = -1"), std::invalid_argument);
  CHECK(same_saved(*net, *copy));
}

TEST_CASE("regression: a step whose update is not finite is undone and named") {
  // lr = 3e38 with large inputs: the update overflows to inf. Before the fix pretrain returned
  // normally with infinite parameters.
  auto d = blobs(64);
  for (auto& x : d.features) x *= 1e6f;
  auto net = g::make_model<small_net>(g::seed{1});
  const auto before = std::make_unique<small_net>(*net);
  CHECK_THROWS_WITH_AS(g::pretrain(*net, d, g::sgd{.lr = 3e38f}, g::steps{1}, g::quiet),
                       doctest::Contains("training stopped at step 1: its update made layer"),
                       g::training_error);
  CHECK(nonfinite_parameters(*net) == 0);
  CHECK(same_saved(*net, *before));  // bitwise the state before the step

  // With more steps, the model left behind is the last finite state: the weights after the last
  // step that passed, which a run of exactly that many steps reproduces.
  auto grow = g::make_model<small_net>(g::seed{1});
  std::size_t passed = 0;
  try {
    g::pretrain(*grow, d, g::sgd{.lr = 1e36f}, g::steps{50}, g::quiet,
                g::on_step([&](const g::step_info& s) { passed = s.step; }));
    FAIL("expected a training_error");
  } catch (const g::training_error& e) {
    CHECK(std::string(e.what()).find("step " + std::to_string(passed + 1)) != std::string::npos);
  }
  CHECK(nonfinite_parameters(*grow) == 0);
  if (passed > 0) {
    auto replay = g::make_model<small_net>(g::seed{1});
    g::pretrain(*replay, d, g::sgd{.lr = 1e36f}, g::steps{passed}, g::quiet);
    CHECK(same_saved(*grow, *replay));
  }
}

TEST_CASE("regression: a refused step leaves batch-norm statistics as they were") {
  auto d = blobs(64);
  d.features[5] = std::numeric_limits<float>::quiet_NaN();  // NaN input: the loss is NaN
  auto net = g::make_model<rich_net>(g::seed{3});
  const auto before = std::make_unique<rich_net>(*net);
  CHECK_THROWS_AS(g::pretrain(*net, d, g::sgd{.lr = 0.1f}, g::steps{1}, g::batch<64>, g::quiet),
                  g::training_error);
  CHECK(nonfinite_parameters(*net) == 0);  // the running mean and variance were not poisoned
  CHECK(same_saved(*net, *before));
}

TEST_CASE("regression: evaluate refuses an empty set and flags non-finite outputs") {
  auto net = g::make_model<small_net>(g::seed{1});
  const auto d = blobs(32);
  CHECK_THROWS_WITH_AS(g::evaluate(*net, d.subset({})), doctest::Contains("is empty"),
                       std::invalid_argument);
  auto nan_data = d;
  nan_data.features[3 * 6] = std::numeric_limits<float>::quiet_NaN();  // sample 3
  nan_data.features[9 * 6 + 2] = std::numeric_limits<float>::infinity();
  const auto ev = g::evaluate(*net, nan_data);
  CHECK_FALSE(ev.finite());
  CHECK(ev.nonfinite == 2);
  CHECK(ev.first_nonfinite == 3);
  CHECK(std::isnan(ev.loss));
  std::size_t counted = 0;
  for (auto c : ev.confusion) counted += c;
  CHECK(counted == 30);  // the flagged samples are not scored
  const auto clean = g::evaluate(*net, d);
  CHECK(clean.finite());
  CHECK(std::isfinite(clean.loss));
}

namespace {
/// Runs `run(net, extra options...)` uninterrupted, and interrupted after step k (an exception
/// thrown from on_step right after the checkpoint of step k) then resumed on a fresh model with
/// another seed; the two results must be bitwise equal.
template <class Net, class Run> void check_resume(Run run, std::size_t k, std::size_t every) {
  temp_dir dir;
  const std::string ck = dir.file("run.ckpt");
  auto whole = g::make_model<Net>(g::seed{5});
  const auto r1 = run(*whole, g::on_step([](const g::step_info&) {}));
  auto part = g::make_model<Net>(g::seed{5});
  struct interrupted {};
  CHECK_THROWS_AS(run(*part, g::checkpoint{ck, every}, g::on_step([&](const g::step_info& s) {
                    if (s.step == k) throw interrupted{};
                  })),
                  interrupted);
  auto resumed = g::make_model<Net>(g::seed{99});  // nothing of the old process survives
  const auto r2 = run(*resumed, g::checkpoint{ck, every}, g::resume{ck});
  CHECK(r2.resumed_from == k / every * every);
  CHECK(r2.steps == r1.steps);
  CHECK(r2.samples == r1.samples);
  CHECK(r2.final_loss == r1.final_loss);
  CHECK(same_saved(*whole, *resumed));
}
}  // namespace

TEST_CASE("resume is bitwise: SGD with momentum, mid-epoch and at an epoch's end") {
  const auto d = blobs(100);  // 7 steps per epoch at batch 16 (the last one partial)
  auto run = [&](small_net& net, auto... o) {
    return g::pretrain(net, d, g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::steps{30}, g::batch<16>,
                       g::seed{3}, g::quiet, o...);
  };
  for (std::size_t k : {1, 3, 7, 10, 14, 29}) {
    CAPTURE(k);
    check_resume<small_net>(run, k, 1);
  }
  check_resume<small_net>(run, 11, 5);  // the checkpoint of step 10, then 11 lost
}

TEST_CASE("resume is bitwise: AdamW with a schedule, dropout and batch norm") {
  const auto d = blobs(90);
  auto run = [&](rich_net& net, auto... o) {
    return g::pretrain(net, d, g::adamw{.lr = 0.01f}, g::steps{25}, g::batch<16>, g::seed{4},
                       g::schedule::warmup<g::schedule::cosine>{.steps = 5}, g::quiet, o...);
  };
  for (std::size_t k : {2, 6, 13, 24}) {
    CAPTURE(k);
    check_resume<rich_net>(run, k, 1);
  }
}

TEST_CASE(
    "resume is bitwise: finetune with gradual unfreezing, L2-SP, and with the feature cache") {
  const auto d = blobs(80);
  auto gradual = [&](rich_net& net, auto... o) {
    return g::finetune<g::freeze::none>(net, d, g::sgd{.lr = 0.02f, .momentum = 0.9f}, g::steps{24},
                                        g::batch<16>, g::gradual_unfreezing{},
                                        g::l2_sp{.alpha = 0.1, .beta = 0.01}, g::quiet, o...);
  };
  for (std::size_t k : {3, 9, 17}) {
    CAPTURE(k);
    check_resume<rich_net>(gradual, k, 1);
  }
  auto cached = [&](rich_net& net, auto... o) {
    return g::finetune<g::freeze::first<1>>(net, d, g::adam{.lr = 0.01f}, g::steps{20},
                                            g::batch<16>, g::quiet, o...);
  };
  auto probe = g::make_model<rich_net>(g::seed{1});
  CHECK(cached(*probe).cached_features);
  for (std::size_t k : {4, 11}) {
    CAPTURE(k);
    check_resume<rich_net>(cached, k, 1);
  }
}

TEST_CASE("a checkpoint of another run is refused and nothing changes") {
  temp_dir dir;
  const std::string ck = dir.file("a.ckpt");
  const auto d = blobs(64);
  auto net = g::make_model<small_net>(g::seed{1});
  g::pretrain(*net, d, g::sgd{.lr = 0.05f}, g::steps{4}, g::quiet, g::checkpoint{ck, 2});
  auto other = g::make_model<small_net>(g::seed{2});
  const auto copy = std::make_unique<small_net>(*other);
  CHECK_THROWS_WITH_AS(
      g::pretrain(*other, d, g::sgd{.lr = 0.05f}, g::steps{5}, g::quiet, g::resume{ck}),
      doctest::Contains("expected total steps 5 (this run's), found 4"), g::io_error);
  CHECK_THROWS_WITH_AS(g::pretrain(*other, d, g::adam{}, g::steps{4}, g::quiet, g::resume{ck}),
                       doctest::Contains("belongs to another run"), g::io_error);
  CHECK_THROWS_WITH_AS(
      g::pretrain(*other, blobs(65), g::sgd{.lr = 0.05f}, g::steps{4}, g::quiet, g::resume{ck}),
      doctest::Contains("data set size 65"), g::io_error);
  std::vector<char> bytes;
  {
    std::FILE* f = std::fopen(ck.c_str(), "rb");
    REQUIRE(f != nullptr);
    int c = 0;
    while ((c = std::fgetc(f)) != EOF) bytes.push_back(static_cast<char>(c));
    std::fclose(f);
  }
  bytes[bytes.size() / 2] ^= 1;
  {
    std::FILE* f = std::fopen(ck.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  CHECK_THROWS_WITH_AS(
      g::pretrain(*other, d, g::sgd{.lr = 0.05f}, g::steps{4}, g::quiet, g::resume{ck}),
      doctest::Contains("truncated or corrupted"), g::io_error);
  CHECK(same_saved(*other, *copy));
}

#if defined(__unix__)
TEST_CASE("a process killed while writing a checkpoint leaves the previous one loadable") {
  temp_dir dir;
  const std::string ck = dir.file("big.ckpt");
  using big_net = g::model<g::stack<g::input<1, 28, 28>, g::flatten, g::dense<512>, g::relu>,
                           g::classifier<3>>;  // ~1.2 MB of parameters, ~3.6 MB per checkpoint
  const auto d = graft_test::blobs(64, {1, 28, 28}, 3);
  auto run = [&](big_net& net, auto... o) {
    return g::pretrain(net, d, g::adam{.lr = 1e-4f}, g::steps{100000}, g::batch<16>, g::quiet,
                       g::checkpoint{ck, 1}, o...);
  };
  // The child writes a checkpoint after every step (each a few ms of writing and fsync); the
  // parent waits for the first one to be in place, then kills the child a varying time later, so
  // that the kill lands in a later step or in the middle of a later write (sanitizer builds run
  // slower: waiting for the first checkpoint instead of a fixed delay keeps every round useful).
  std::size_t loaded = 0, rounds = 0;
  for (int delay_us : {0, 1500, 4000, 9000, 17000}) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      auto net = g::make_model<big_net>(g::seed{1});
      try {
        run(*net);
      } catch (...) {
      }
      ::_exit(0);
    }
    for (int waited = 0; !fs::exists(ck) && waited < 60000; ++waited) ::usleep(1000);
    ::usleep(static_cast<useconds_t>(delay_us));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status));
    REQUIRE(fs::exists(ck));  // the first checkpoint came within a minute
    ++rounds;
    // the checkpoint on disk is complete: a resume reads and validates all of it, then trains on
    auto net = g::make_model<big_net>(g::seed{2});
    bool ok = true;
    try {
      g::pretrain(*net, d, g::adam{.lr = 1e-4f}, g::steps{100000}, g::batch<16>, g::quiet,
                  g::resume{ck}, g::on_step([](const g::step_info&) { throw 0; }));
    } catch (const g::io_error& e) {
      ok = false;
      FAIL_CHECK(e.what());
    } catch (int) {  // the first resumed step ran: the checkpoint loaded
    }
    loaded += ok ? 1 : 0;
    fs::remove(ck);
  }
  CHECK(rounds == 5);
  CHECK(loaded == rounds);
}
#endif

TEST_CASE("the divergence guard stops a diverging run and restores the best weights") {
  // Plain regression with a rate above the stability limit: the loss grows geometrically while
  // staying finite for many steps.
  using reg_net = g::model<g::stack<g::input<4>, g::dense<4>>, g::regressor<1>>;
  g::splitmix64 rng(11);
  std::vector<float> x(64 * 4), y(64);
  for (std::size_t i = 0; i < 64; ++i) {
    float s = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      x[i * 4 + j] = static_cast<float>(rng.normal());
      s += x[i * 4 + j];
    }
    y[i] = s;
  }
  const auto d = g::data::make_regression("lin", {4}, std::move(x), std::move(y), 1);
  auto net = g::make_model<reg_net>(g::seed{1});
  std::vector<double> losses;
  try {
    g::pretrain(*net, d, g::sgd{.lr = 0.9f}, g::steps{200}, g::batch<64>, g::quiet,
                g::divergence_guard{.factor = 4, .patience = 3},
                g::on_step([&](const g::step_info& s) { losses.push_back(s.loss); }));
    FAIL("expected divergence_error");
  } catch (const g::divergence_error& e) {
    const auto& r = e.report();
    CHECK(r.diverged);
    CHECK(r.best_step >= 1);
    CHECK(std::string(e.what()).find("restored the weights of step " +
                                     std::to_string(r.best_step)) != std::string::npos);
    // the model holds the weights that gave the best loss: evaluating them gives that loss
    const auto ev = g::evaluate(*net, d);
    CHECK(ev.loss == doctest::Approx(r.best_loss).epsilon(1e-4));
    CHECK(r.best_loss == doctest::Approx(*std::min_element(losses.begin(), losses.end())));
  }
  // a healthy run is not disturbed by the guard
  auto calm = g::make_model<reg_net>(g::seed{1});
  auto plain = g::make_model<reg_net>(g::seed{1});
  g::pretrain(*calm, d, g::sgd{.lr = 0.01f}, g::steps{50}, g::quiet, g::divergence_guard{});
  g::pretrain(*plain, d, g::sgd{.lr = 0.01f}, g::steps{50}, g::quiet);
  CHECK(same_saved(*calm, *plain));
}
