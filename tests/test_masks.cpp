// Padding masks in token models (issue 16, docs/design/sequence_models.md §1): input_tokens<L, V>
// gives each sample a length (the position of its first pad id 0), the runner, trainer, feature
// cache and device trainer pass it to the masked layers, and a padded sample gives bitwise the
// logits of the same sample in the model of its own length.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <graft/graft.hpp>
#include <graft/train/device.hpp>

#include "support/alloc_counter.hpp"
#include "support/compare.hpp"

namespace g = graft;

namespace {
constexpr std::size_t V = 11;

template <std::size_t L, class Pool> using token_net =
    g::model<g::stack<g::input_tokens<L, V>, g::embedding<V, 6>, g::layer_norm, g::gelu, Pool,
                      g::dense<5>, g::relu>,
             g::classifier<3>>;

static_assert(g::detail::forward_plan<token_net<8, g::global_max_pool_time>>::masked);
static_assert(g::detail::forward_plan<token_net<8, g::global_max_pool_time>>::reads_mask[3]);
static_assert(!g::detail::forward_plan<token_net<8, g::global_max_pool_time>>::reads_mask[4]);
// an image model is untouched: no lengths, no mask
static_assert(!g::detail::forward_plan<g::model<g::stack<g::input<4, 3>, g::global_max_pool_time>,
                                                g::classifier<2>>>::masked);
static_assert(g::runner<token_net<8, g::global_max_pool_time>, 4>::ram_bytes ==
              sizeof(g::runner<token_net<8, g::global_max_pool_time>, 4>));
static_assert(
    g::runner<g::model<g::stack<g::input<4, 3>, g::global_max_pool_time>, g::classifier<2>>,
              4>::ram_bytes ==
    sizeof(g::runner<g::model<g::stack<g::input<4, 3>, g::global_max_pool_time>, g::classifier<2>>,
                     4>));

/// Copies every parameter of a into b (same layer types up to the sequence length).
template <class A, class B> void copy_parameters(const A& a, B& b) {
  std::vector<std::vector<float>> p;
  a.for_each_parameter([&](std::size_t, std::size_t, g::role, const float* d, std::size_t n) {
    p.emplace_back(d, d + n);
  });
  std::size_t k = 0;
  b.for_each_parameter([&](std::size_t, std::size_t, g::role, float* d, std::size_t n) {
    REQUIRE(p[k].size() == n);
    std::copy(p[k].begin(), p[k].end(), d);
    ++k;
  });
  REQUIRE(k == p.size());
}

/// Token samples: lengths from 0 to L, ids 1..V-1, then pads.
std::vector<float> token_rows(std::size_t rows, std::size_t L, std::uint64_t seed,
                              std::vector<std::size_t>* lengths = nullptr) {
  g::splitmix64 rng(seed);
  std::vector<float> x(rows * L, 0.0F);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t n = r == 0 ? L : static_cast<std::size_t>(rng.below(L + 1));
    if (lengths != nullptr) lengths->push_back(n);
    for (std::size_t k = 0; k < n; ++k) x[r * L + k] = static_cast<float>(1 + rng.below(V - 1));
  }
  return x;
}

template <class Pool, std::size_t N> void check_own_length(const token_net<8, Pool>& big) {
  auto small = std::make_unique<token_net<N, Pool>>();
  copy_parameters(big, *small);
  auto rb = std::make_unique<g::runner<token_net<8, Pool>, 1>>();
  auto rs = std::make_unique<g::runner<token_net<N, Pool>, 1>>();
  g::splitmix64 rng(N);
  std::fill(rb->input(), rb->input() + 8, 0.0F);
  for (std::size_t k = 0; k < N; ++k)
    rb->input()[k] = rs->input()[k] = static_cast<float>(1 + rng.below(V - 1));
  const float* yb = rb->forward(big, 1);
  const float* ys = rs->forward(*small, 1);
  for (std::size_t c = 0; c < 3; ++c) CHECK(yb[c] == ys[c]);
}
}  // namespace

TEST_CASE("a padded sample gives bitwise the logits of the same sample at its own length") {
  auto max_net = g::make_model<token_net<8, g::global_max_pool_time>>(g::seed{3});
  auto mean_net = g::make_model<token_net<8, g::global_mean_pool_time>>(g::seed{4});
  [&]<std::size_t... N>(std::index_sequence<N...>) {
    (check_own_length<g::global_max_pool_time, N + 1>(*max_net), ...);
    (check_own_length<g::global_mean_pool_time, N + 1>(*mean_net), ...);
  }
  (std::make_index_sequence<8>{});
}

TEST_CASE("changing the ids after the first pad is refused; padded positions change nothing") {
  // What the masks guarantee inside the model: a valid id at a padded position would be a token
  // (check_dataset refuses it, below); the pad row of the embedding never reaches the output.
  using net_t = token_net<8, g::global_max_pool_time>;
  auto net = g::make_model<net_t>(g::seed{5});
  // the pad embedding row changed: the logits of padded samples stay the same bits
  auto other = std::make_unique<net_t>(*net);
  for (std::size_t d = 0; d < 6; ++d) other->template layer<0>().param(0)[d] += 3.0F;
  auto r1 = std::make_unique<g::runner<net_t, 16>>();
  auto r2 = std::make_unique<g::runner<net_t, 16>>();
  std::vector<std::size_t> lengths;
  const auto x = token_rows(16, 8, 6, &lengths);
  std::copy(x.begin(), x.end(), r1->input());
  std::copy(x.begin(), x.end(), r2->input());
  const float* a = r1->forward(*net, 16);
  const float* b = r2->forward(*other, 16);
  for (std::size_t i = 0; i < 16 * 3; ++i) CHECK(a[i] == b[i]);
}

TEST_CASE("runner, trainer, cached trainer and device trainer agree under masks") {
  using net_t = token_net<8, g::global_max_pool_time>;
  constexpr std::size_t B = 8;
  auto net = g::make_model<net_t>(g::seed{7});
  std::vector<std::size_t> lengths;
  const auto x = token_rows(B, 8, 8, &lengths);
  CHECK(std::count(lengths.begin(), lengths.end(), std::size_t{0}) +
            std::count(lengths.begin(), lengths.end(), std::size_t{8}) <
        static_cast<std::ptrdiff_t>(B));  // some lengths strictly inside
  auto r = std::make_unique<g::runner<net_t, B>>();
  std::copy(x.begin(), x.end(), r->input());
  const float* y = r->forward(*net, B);
  auto t = std::make_unique<g::trainer<net_t, B, g::sgd>>(*net, g::sgd{.lr = 0.1F});
  std::copy(x.begin(), x.end(), t->input());
  t->forward(B);
  for (std::size_t i = 0; i < B * 3; ++i) CHECK(t->output()[i] == y[i]);

  // the gradient of a one-sample batch equals (as values) the gradient at the sample's length
  for (std::size_t r0 = 0; r0 < B; ++r0) {
    const std::size_t n = lengths[r0];
    if (n == 0 || n == 8) continue;
    auto tb = std::make_unique<g::trainer<net_t, 1, g::sgd>>(*net, g::sgd{.lr = 0.1F});
    std::copy(x.begin() + static_cast<std::ptrdiff_t>(r0 * 8),
              x.begin() + static_cast<std::ptrdiff_t>(r0 * 8 + 8), tb->input());
    const std::int32_t label = 1;
    tb->compute_gradients(&label, 1);
    CHECK(tb->gradient(0, 0) != nullptr);
    // padded positions: the pad row's embedding gradient is exactly zero
    for (std::size_t d = 0; d < 6; ++d) CHECK(tb->gradient(0, 0)[d] == 0.0F);
    break;
  }

  // training with the feature cache (embedding frozen: the cache holds its output, the masked
  // pool reads the lengths from the ids the cache puts in input()) equals training without
  g::data::dataset ds;
  ds.name = "tokens";
  ds.sample_shape = {8};
  std::vector<std::size_t> ls;
  ds.features = token_rows(64, 8, 9, &ls);
  for (std::size_t i = 0; i < 64; ++i) ds.labels.push_back(static_cast<std::int32_t>(ls[i] % 3));
  ds.class_ids = {0, 1, 2};
  auto cached = std::make_unique<net_t>(*net);
  auto plain = std::make_unique<net_t>(*net);
  g::finetune<g::freeze::first<1>>(*cached, ds, g::sgd{.lr = 0.05F}, g::epochs{2}, g::batch<16>,
                                   g::seed{2});
  g::finetune<g::freeze::first<1>>(*plain, ds, g::sgd{.lr = 0.05F}, g::epochs{2}, g::batch<16>,
                                   g::seed{2}, g::feature_cache{false});
  CHECK(graft_test::bitwise_equal(*cached, *plain));
  CHECK(!graft_test::bitwise_equal(*cached, *net));

  // the device trainer (one sample at a time, its own length) is bitwise the trainer with
  // frozen weights below the head (per-sample sums) ...
  using policy = g::freeze::bias_only;
  auto host_net = std::make_unique<net_t>(*net);
  const auto flash = std::make_unique<net_t>(*net);
  std::array<const float*, g::constant_model<net_t>::param_tensors> p{};
  std::array<const float*, g::constant_model<net_t>::buffer_tensors> b{};
  std::size_t pi = 0;
  flash->for_each_parameter(
      [&](std::size_t, std::size_t, g::role, const float* d, std::size_t) { p[pi++] = d; });
  auto dev = std::make_unique<g::device_trainer<net_t, B, g::sgd, policy>>(
      g::constant_model<net_t>::of(p, b), g::sgd{.lr = 0.05F});
  auto host =
      std::make_unique<g::trainer<net_t, B, g::sgd, policy>>(*host_net, g::sgd{.lr = 0.05F});
  std::copy(x.begin(), x.end(), dev->input());
  std::copy(x.begin(), x.end(), host->input());
  std::int32_t labels[B]{};
  for (std::size_t i = 0; i < B; ++i)
    labels[i] = dev->targets()[i] = static_cast<std::int32_t>(i % 3);
  const double hl = host->step(labels, B);
  REQUIRE(dev->step(B) == g::device_status::ok);
  CHECK(hl == dev->last_loss());
}

TEST_CASE("check_dataset names the sample, position and value of a bad token id") {
  using net_t = token_net<8, g::global_max_pool_time>;
  auto net = g::make_model<net_t>(g::seed{1});
  g::data::dataset ds;
  ds.name = "words";
  ds.sample_shape = {8};
  ds.features = token_rows(4, 8, 3);
  ds.labels = {0, 1, 2, 0};
  ds.class_ids = {0, 1, 2};
  auto bad = ds;
  bad.features[2 * 8 + 3] = 11.0F;
  CHECK_THROWS_WITH_AS(g::evaluate(*net, bad),
                       "graft: dataset 'words': sample 2, position 3: 11 is not a token id of "
                       "input_tokens<8,11> (0..10)",
                       std::invalid_argument);
  bad = ds;
  bad.features[1 * 8 + 2] = 2.5F;
  CHECK_THROWS_WITH_AS(g::evaluate(*net, bad),
                       "graft: dataset 'words': sample 1, position 2: 2.5 is not a token id of "
                       "input_tokens<8,11> (0..10)",
                       std::invalid_argument);
  bad = ds;
  std::fill(bad.features.begin() + 24, bad.features.end(), 0.0F);
  bad.features[3 * 8 + 5] = 4.0F;
  CHECK_THROWS_WITH_AS(g::evaluate(*net, bad),
                       "graft: dataset 'words': sample 3, position 5: id 4 after the padding that "
                       "starts at position 0 (pad id 0 only at the end)",
                       std::invalid_argument);
  CHECK_NOTHROW(g::evaluate(*net, ds));
}

TEST_CASE("no heap allocation in a masked token model's training or inference step") {
  using net_t = token_net<8, g::global_mean_pool_time>;
  auto net = g::make_model<net_t>(g::seed{1});
  auto t = std::make_unique<g::trainer<net_t, 16, g::adamw>>(*net, g::adamw{});
  auto r = std::make_unique<g::runner<net_t, 16>>();
  const auto x = token_rows(16, 8, 2);
  std::copy(x.begin(), x.end(), t->input());
  std::copy(x.begin(), x.end(), r->input());
  std::int32_t labels[16]{};
  t->step(labels, 16);  // warm-up
  const long before = graft_test::allocations.load();
  for (int s = 0; s < 3; ++s) t->step(labels, 16);
  r->forward(*net, 16);
  CHECK(graft_test::allocations.load() - before == 0);
}
