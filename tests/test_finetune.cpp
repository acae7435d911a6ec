// Fine-tuning: static freezing policies (frozen parameters bitwise unchanged, with SGD and with
// AdamW's decay), compile-time pruning of frozen work (footprints, kernel-call counts), feature
// caching (same results, fewer forward calls), runtime strategies and schedules.
#include <doctest/doctest.h>

#include <array>
#include <map>
#include <vector>

#include <graft/graft.hpp>

#include "support/blobs.hpp"
#include "support/compare.hpp"
#include "support/gradcheck.hpp"

namespace g = graft;

namespace {
// ---- an instrumented dense layer: counts its forward and backward calls by kind --------------
struct call_counts {
  std::size_t forward_rows = 0;
  std::size_t backward = 0, input_grad = 0, weight_grad = 0, bias_grad = 0;
};
inline std::map<std::size_t, call_counts> counts;  // by Id

template <std::size_t Id, class T, std::size_t K, std::size_t N> struct counted_dense_layer
    : g::dense_layer<T, K, N, g::init::pytorch> {
  using base = g::dense_layer<T, K, N, g::init::pytorch>;
  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    counts[Id].forward_rows += rows;
    base::forward(x, y, rows);
  }
  template <class Epi> void forward_fused(const T* x, T* y, std::size_t rows) const noexcept {
    counts[Id].forward_rows += rows;  // followed by relu: the trainer calls this one
    base::template forward_fused<Epi>(x, y, rows);
  }
  template <bool InputGrad, unsigned Mask> void backward(const T* x, const T* y, const T* dy, T* dx,
                                                         T* const* grads,
                                                         std::size_t rows) const noexcept {
    auto& c = counts[Id];
    ++c.backward;
    c.input_grad += InputGrad ? 1 : 0;
    c.weight_grad += (Mask & 1U) != 0 ? 1 : 0;
    c.bias_grad += (Mask & 2U) != 0 ? 1 : 0;
    base::template backward<InputGrad, Mask>(x, y, dy, dx, grads, rows);
  }
};
template <std::size_t N, std::size_t Id> struct counted_dense : g::dense<N> {
  template <class T, class In> using bind = counted_dense_layer<Id, T, In::size, N>;
};

using backbone = g::stack<g::input<2, 3>, g::flatten, g::dense<8>, g::relu, g::dense<7>, g::tanh>;
using net_t = g::model<backbone, g::classifier<3>>;
// layer indices: 0 flatten, 1 dense<8>, 2 relu, 3 dense<7>, 4 tanh, 5 head

using counted_backbone = g::stack<g::input<6>, counted_dense<8, 1>, g::relu, counted_dense<7, 2>,
                                  g::relu, counted_dense<5, 3>, g::relu>;
using counted_net = g::model<counted_backbone, g::classifier<3>>;
// layer indices: 0 dense(1), 1 relu, 2 dense(2), 3 relu, 4 dense(3), 5 relu, 6 head

g::data::dataset blobs(std::size_t n, std::size_t dims, std::uint64_t seed) {
  return graft_test::blobs(
      n, dims == 6 ? std::vector<std::size_t>{2, 3} : std::vector<std::size_t>{dims}, seed);
}

// Which tensors changed, as "layer.param" strings.
template <class M> std::vector<std::string> changed(const M& before, const M& after) {
  std::vector<std::string> out;
  before.for_each_parameter(
      [&](std::size_t l, std::size_t j, g::role, const float* p, std::size_t n) {
        after.for_each_parameter(
            [&](std::size_t l2, std::size_t j2, g::role, const float* q, std::size_t) {
              if (l == l2 && j == j2 && std::memcmp(p, q, n * sizeof(float)) != 0)
                out.push_back(std::to_string(l) + "." + std::to_string(j));
            });
      });
  return out;
}

template <class Policy, class Opt> std::vector<std::string> run_policy(Opt opt) {
  auto net = g::make_model<net_t>(g::seed{1});
  const auto before = std::make_unique<net_t>(*net);
  g::finetune<Policy>(*net, blobs(100, 6, 2), opt, g::steps{7}, g::batch<16>);
  return changed(*before, *net);
}
using sv = std::vector<std::string>;
}  // namespace

// ---- compile-time pruning: footprints ----------------------------------------------------------
using tr_none = g::trainer<net_t, 16, g::adamw, g::freeze::none>;
using tr_backbone = g::trainer<net_t, 16, g::adamw, g::freeze::backbone>;
using tr_first1 = g::trainer<net_t, 16, g::adamw, g::freeze::first<1>>;
using tr_bias = g::trainer<net_t, 16, g::adamw, g::freeze::bias_only>;
constexpr std::size_t p1 = 6 * 8 + 8, p3 = 8 * 7 + 7, ph = 7 * 3 + 3;
static_assert(tr_none::trainable_parameter_count == p1 + p3 + ph);
static_assert(tr_backbone::trainable_parameter_count == ph);
static_assert(tr_first1::trainable_parameter_count == p3 + ph);
static_assert(tr_bias::trainable_parameter_count == 8 + 7 + ph);
static_assert(tr_backbone::gradient_bytes == ph * 4 &&
              tr_backbone::optimizer_state_bytes == 2 * ph * 4);
static_assert(tr_backbone::training_bytes < tr_first1::training_bytes &&
              tr_first1::training_bytes < tr_none::training_bytes);
// dense<8> applies the relu after it in its output pass; tanh has no SIMD form and is not fused
static_assert(tr_none::plan::fused == std::array<bool, 6>{false, true, false, false, false, false});
// a frozen prefix keeps no activations for backward: its outputs share two regions, every forward
// writes the region its input is not in (flatten 0 -> 1, dense+relu 1 -> 3, dense 3 -> 4), the
// unwritten pre-activation 2 shares its pair's output region, and the input of the lowest
// trainable layer has its own
static_assert(tr_backbone::layout.act[1] != tr_backbone::layout.act[3] &&
              tr_backbone::layout.act[3] != tr_backbone::layout.act[4] &&
              tr_backbone::layout.act[1] == tr_backbone::layout.act[4] &&
              tr_backbone::layout.act[2] == tr_backbone::layout.act[3] &&
              tr_backbone::layout.act[5] != tr_backbone::layout.act[4] &&
              tr_backbone::layout.act[5] != tr_backbone::layout.act[3]);
static_assert(tr_none::layout.act[1] != tr_none::layout.act[3]);
// no backward below the lowest trainable layer, no input gradient for that layer
static_assert(tr_backbone::lowest_trainable == 5 && !tr_backbone::runs_backward(4) &&
              tr_backbone::runs_backward(5) && !tr_backbone::computes_input_grad(5));
static_assert(tr_first1::lowest_trainable == 3 && !tr_first1::runs_backward(2) &&
              !tr_first1::computes_input_grad(3) && tr_first1::computes_input_grad(4));
static_assert(tr_none::lowest_trainable == 1 && !tr_none::computes_input_grad(1));
static_assert(g::trainer<net_t, 16, g::sgd, g::freeze::layers<3>>::trainable_parameter_count ==
              p1 + ph);
static_assert(
    g::trainer<net_t, 16, g::sgd, g::freeze::all_of<g::freeze::first<1>, g::freeze::bias_only>>::
        trainable_parameter_count == 7 + ph);
static_assert(
    g::trainer<net_t, 16, g::sgd, g::freeze::any_of<g::freeze::first<1>, g::freeze::bias_only>>::
        trainable_parameter_count == 8 + p3 + ph);

TEST_CASE("static policies: frozen tensors bitwise unchanged, trainable ones change (SGD)") {
  const g::sgd opt{.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f};
  CHECK(run_policy<g::freeze::none>(opt) == sv{"1.0", "1.1", "3.0", "3.1", "5.0", "5.1"});
  CHECK(run_policy<g::freeze::backbone>(opt) == sv{"5.0", "5.1"});
  CHECK(run_policy<g::freeze::first<1>>(opt) == sv{"3.0", "3.1", "5.0", "5.1"});
  CHECK(run_policy<g::freeze::bias_only>(opt) == sv{"1.1", "3.1", "5.0", "5.1"});
  CHECK(run_policy<g::freeze::layers<3>>(opt) == sv{"1.0", "1.1", "5.0", "5.1"});
  CHECK(run_policy<g::freeze::all_of<g::freeze::first<1>, g::freeze::bias_only>>(opt) ==
        sv{"3.1", "5.0", "5.1"});
}

TEST_CASE("static policies with AdamW: decoupled weight decay never touches a frozen tensor") {
  const g::adamw opt{.lr = 0.01f, .weight_decay = 0.5f};
  CHECK(run_policy<g::freeze::backbone>(opt) == sv{"5.0", "5.1"});
  CHECK(run_policy<g::freeze::first<1>>(opt) == sv{"3.0", "3.1", "5.0", "5.1"});
  CHECK(run_policy<g::freeze::bias_only>(opt) == sv{"1.1", "3.1", "5.0", "5.1"});
  CHECK(run_policy<g::freeze::none>(opt).size() == 6);
}

TEST_CASE("pruning: kernel calls per layer follow the policy") {
  auto ds = blobs(64, 6, 3);
  ds.sample_shape = {6};
  auto run = [&](auto policy, bool cache) {
    counts.clear();
    auto net = g::make_model<counted_net>(g::seed{1});
    g::finetune<decltype(policy)>(*net, ds, g::sgd{.lr = 0.05f}, g::steps{4}, g::batch<16>,
                                  g::feature_cache{cache});
  };
  run(g::freeze::none{}, true);
  CHECK(counts[1].backward == 4);
  CHECK(counts[1].input_grad == 0);  // the lowest trainable layer computes no input gradient
  CHECK(counts[2].input_grad == 4);
  CHECK(counts[1].weight_grad == 4);

  run(g::freeze::first<2>{}, false);  // dense 1 and 2 frozen, dense 3 trains
  CHECK(counts[1].backward == 0);     // below the lowest trainable layer: no backward at all
  CHECK(counts[2].backward == 0);
  CHECK(counts[3].backward == 4);
  CHECK(counts[3].input_grad == 0);
  CHECK(counts[1].forward_rows == 4 * 16);  // uncached: the prefix runs every step

  run(g::freeze::first<2>{}, true);
  CHECK(counts[1].forward_rows == 64);  // cached: once per sample
  CHECK(counts[2].forward_rows == 64);
  CHECK(counts[3].forward_rows == 4 * 16);
  CHECK(counts[3].backward == 4);

  run(g::freeze::bias_only{}, true);  // every layer trains its bias: backward everywhere, no dW
  CHECK(counts[1].backward == 4);
  CHECK(counts[1].weight_grad == 0);
  CHECK(counts[1].bias_grad == 4);
  CHECK(counts[1].input_grad == 0);
  CHECK(counts[3].input_grad == 4);
}

TEST_CASE("feature caching gives the same model as running the frozen prefix every step") {
  const auto ds = blobs(150, 6, 4);  // 150 = 9 batches of 16 + 6
  auto run = [&](auto policy, bool cache, auto opt) {
    auto net = g::make_model<net_t>(g::seed{5});
    const auto rep = g::finetune<decltype(policy)>(*net, ds, opt, g::epochs{3}, g::batch<16>,
                                                   g::feature_cache{cache}, g::seed{3});
    CHECK(rep.cached_features == cache);
    return net;
  };
  const g::sgd sgd{.lr = 0.1f, .momentum = 0.9f};
  CHECK(graft_test::bitwise_equal(*run(g::freeze::backbone{}, true, sgd),
                                  *run(g::freeze::backbone{}, false, sgd)));
  CHECK(graft_test::bitwise_equal(*run(g::freeze::first<1>{}, true, sgd),
                                  *run(g::freeze::first<1>{}, false, sgd)));
  const g::adamw adamw{.lr = 0.01f};
  CHECK(graft_test::bitwise_equal(*run(g::freeze::backbone{}, true, adamw),
                                  *run(g::freeze::backbone{}, false, adamw)));
  // and caching is not a no-op that trains nothing: the head moved
  auto fresh = g::make_model<net_t>(g::seed{5});
  CHECK_FALSE(graft_test::bitwise_equal(*run(g::freeze::backbone{}, true, sgd), *fresh));
}

TEST_CASE("gradients of partially frozen models match central differences") {
  using dnet = g::model<backbone, g::classifier<3>, double>;
  auto check = [](auto policy) {
    using tr = g::trainer<dnet, 4, g::sgd, decltype(policy)>;
    auto net = g::make_model<dnet>(g::seed{3});
    auto t = std::make_unique<tr>(*net, g::sgd{});
    g::splitmix64 rng(9);
    for (std::size_t i = 0; i < 4 * 6; ++i) t->input()[i] = rng.uniform(-1, 1);
    std::int32_t y[4] = {0, 2, 1, 2};
    t->compute_gradients(y, 4);
    const auto rep = graft_test::check_trainer(*net, *t, y, 4);
    INFO(rep.first_failure);
    CHECK(rep.checked == tr::trainable_parameter_count);  // frozen tensors have no gradient
    CHECK(rep.failures == 0);
  };
  check(g::freeze::first<1>{});
  check(g::freeze::bias_only{});
  check(g::freeze::backbone{});
}

TEST_CASE("gradual unfreezing: the head trains first, then one more layer per stage") {
  const auto ds = blobs(64, 6, 5);
  auto net = g::make_model<net_t>(g::seed{1});
  auto before = std::make_unique<net_t>(*net);
  g::finetune<g::freeze::none>(*net, ds, g::sgd{.lr = 0.1f}, g::steps{2}, g::batch<16>,
                               g::gradual_unfreezing{.stage_steps = 2});
  CHECK(changed(*before, *net) == sv{"5.0", "5.1"});
  net = g::make_model<net_t>(g::seed{1});
  g::finetune<g::freeze::none>(*net, ds, g::sgd{.lr = 0.1f}, g::steps{4}, g::batch<16>,
                               g::gradual_unfreezing{.stage_steps = 2});
  CHECK(changed(*before, *net) == sv{"3.0", "3.1", "5.0", "5.1"});
  net = g::make_model<net_t>(g::seed{1});
  g::finetune<g::freeze::none>(*net, ds, g::sgd{.lr = 0.1f}, g::steps{5}, g::batch<16>,
                               g::gradual_unfreezing{.stage_steps = 2});
  CHECK(changed(*before, *net).size() == 6);
}

TEST_CASE("discriminative learning rates divide by the factor per parametric layer downwards") {
  const auto ds = blobs(16, 6, 6);
  // one plain SGD step: the update is lr_layer * gradient, so the ratio of updates between two
  // runs with and without discriminative rates is the multiplier of each layer
  auto delta = [&](bool disc) {
    auto net = g::make_model<net_t>(g::seed{1});
    auto before = std::make_unique<net_t>(*net);
    if (disc)
      g::finetune<g::freeze::none>(*net, ds, g::sgd{.lr = 0.1f}, g::steps{1}, g::batch<16>,
                                   g::discriminative_lr{2.0});
    else
      g::finetune<g::freeze::none>(*net, ds, g::sgd{.lr = 0.1f}, g::steps{1}, g::batch<16>);
    return std::array<double, 3>{before->layer<1>().bias[0] - net->layer<1>().bias[0],
                                 before->layer<3>().bias[0] - net->layer<3>().bias[0],
                                 before->head().bias[0] - net->head().bias[0]};
  };
  const auto plain = delta(false), disc = delta(true);
  CHECK(disc[2] == doctest::Approx(plain[2]).epsilon(1e-5));
  CHECK(disc[1] == doctest::Approx(plain[1] / 2).epsilon(1e-4));
  CHECK(disc[0] == doctest::Approx(plain[0] / 4).epsilon(1e-4));
}

TEST_CASE("LP-FT and L2-SP") {
  const auto ds = blobs(200, 6, 7);
  auto net = g::make_model<net_t>(g::seed{1});
  auto before = std::make_unique<net_t>(*net);
  const auto rep = g::lp_ft(*net, ds, g::sgd{.lr = 0.1f, .momentum = 0.9f},
                            g::sgd{.lr = 0.01f, .momentum = 0.9f}, g::probe_steps{30},
                            g::full_steps{30}, g::batch<16>);
  CHECK(rep.steps == 60);
  CHECK(changed(*before, *net).size() == 6);
  CHECK(g::evaluate(*net, ds).accuracy > 0.8);

  // L2-SP pulls the backbone toward its starting point: with a strong penalty it moves less
  auto distance = [&](double alpha) {
    auto m = g::make_model<net_t>(g::seed{1});
    g::finetune<g::freeze::none>(*m, ds, g::sgd{.lr = 0.1f}, g::steps{60}, g::batch<16>,
                                 g::l2_sp{.alpha = alpha});
    double d = 0;
    for (std::size_t i = 0; i < 48; ++i)
      d += std::abs(m->layer<1>().weight[i] - before->layer<1>().weight[i]);
    return d;
  };
  CHECK(distance(5.0) < 0.5 * distance(0.0));
}

TEST_CASE("learning-rate schedules") {
  using namespace g::schedule;
  CHECK(step_decay{.every = 10, .gamma = 0.5}.lr(25, 100, 1.0) == doctest::Approx(0.25));
  CHECK(cosine{}.lr(0, 101, 1.0) == doctest::Approx(1.0));
  CHECK(cosine{}.lr(50, 101, 1.0) == doctest::Approx(0.5));
  CHECK(cosine{}.lr(100, 101, 1.0) == doctest::Approx(0.0));
  CHECK(warmup<cosine>{.steps = 10}.lr(4, 110, 1.0) == doctest::Approx(0.5));
  CHECK(warmup<cosine>{.steps = 10}.lr(10, 111, 1.0) == doctest::Approx(1.0));
  const one_cycle oc{};
  CHECK(oc.lr(0, 100, 1.0) == doctest::Approx(1.0 / 25));
  CHECK(oc.lr(29, 100, 1.0) == doctest::Approx(1.0));
  CHECK(oc.lr(99, 100, 1.0) == doctest::Approx(1.0 / 25 / 1e4));
  // a schedule reaches the optimizer: the learning rate each step reports follows it
  std::vector<double> lrs;
  auto net = g::make_model<net_t>(g::seed{1});
  g::finetune<g::freeze::backbone>(
      *net, blobs(64, 6, 8), g::adam{.lr = 0.01f}, g::steps{4}, g::batch<16>,
      step_decay{.every = 2, .gamma = 0.1},
      g::on_step([&](const g::step_info& s) { lrs.push_back(s.learning_rate); }));
  REQUIRE(lrs.size() == 4);
  CHECK(lrs[0] == doctest::Approx(0.01));
  CHECK(lrs[3] == doctest::Approx(0.001));
}
