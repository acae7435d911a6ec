// Fine-tuning by kind of layer and LoRA (issue 16, docs/design/sequence_models.md §4): parameter
// tags, freeze::embeddings / norms_and_biases_only / adapters_only, lora<dense<N>, R, Alpha>,
// with_adapters and merge_adapters.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include <graft/graft.hpp>
#include <graft/layers/lora.hpp>
#include <graft/layers/per_position.hpp>
#include <graft/model/adapters.hpp>
#include <graft/testing/gradcheck.hpp>
#include <graft/train/device.hpp>

#include "support/compare.hpp"
#include "support/temp_dir.hpp"

namespace g = graft;

namespace {
template <class T> using base_net =
    g::model<g::stack<g::input<6>, g::dense<8>, g::relu, g::dense<5>, g::tanh>, g::classifier<3>,
             T>;
template <class T> using lora_net = g::model<
    g::stack<g::input<6>, g::lora<g::dense<8>, 2>, g::relu, g::lora<g::dense<5>, 3, 6>, g::tanh>,
    g::classifier<3>, T>;
static_assert(std::is_same_v<g::strip_adapters_t<lora_net<float>>, base_net<float>>);

constexpr std::size_t V = 10;
using seq_base = g::model<g::stack<g::input_tokens<6, V>, g::embedding<V, 4>,
                                   g::residual<g::layer_norm, g::per_position<g::dense<8>>, g::gelu,
                                               g::per_position<g::dense<4>>>,
                                   g::layer_norm, g::global_mean_pool_time>,
                          g::classifier<3>>;
using seq_lora =
    g::model<g::stack<g::input_tokens<6, V>, g::embedding<V, 4>,
                      g::residual<g::layer_norm, g::per_position<g::lora<g::dense<8>, 2>>, g::gelu,
                                  g::per_position<g::lora<g::dense<4>, 2>>>,
                      g::layer_norm, g::global_mean_pool_time>,
             g::classifier<3>>;
static_assert(std::is_same_v<g::strip_adapters_t<seq_lora>, seq_base>);

// A LoRA layer with a nonzero B (init leaves B = 0, where dA is zero): for the gradient check.
template <std::size_t K, std::size_t N, std::size_t R, std::size_t A> struct lora_randomised
    : g::lora_dense_layer<double, K, N, R, A, g::init::pytorch> {
  void init(g::splitmix64& rng) {
    g::lora_dense_layer<double, K, N, R, A, g::init::pytorch>::init(rng);
    for (std::size_t i = 0; i < R * N; ++i) this->b.data()[i] = rng.uniform(-1, 1);
  }
};

void require_clean(const g::testing::grad_report& rep) {
  INFO(rep.first_failure);
  CHECK(rep.checked > 0);
  CHECK(rep.failures == 0);
}
}  // namespace

TEST_CASE("parameter tags, and the policies that select by them") {
  using d = g::dense<4>::bind<float, g::shape<3>>;
  static_assert(d::params[0].tag == g::param_tag::dense && d::params[1].tag == g::param_tag::dense);
  static_assert(g::layer_norm::bind<float, g::shape<2, 3>>::params[0].tag == g::param_tag::norm);
  static_assert(g::embedding<5, 2>::bind<float, g::shape<3>>::params[0].tag ==
                g::param_tag::embedding);
  static_assert(g::conv1d<2, 2>::bind<float, g::shape<3, 2>>::params[1].tag == g::param_tag::conv);
  using ld = g::lora<g::dense<4>, 2>::bind<float, g::shape<3>>;
  static_assert(ld::params[2].tag == g::param_tag::adapter &&
                ld::params[3].tag == g::param_tag::adapter);
  // residual blocks keep their inner layers' tags
  using res = seq_lora::layer_type<1>;
  static_assert(res::params[0].tag == g::param_tag::norm &&
                res::params[4].tag == g::param_tag::adapter);

  // trainable parts, while compiling: embedding (40) frozen; norms and biases; adapters
  using emb = g::trainer<seq_base, 4, g::adam, g::freeze::embeddings>;
  static_assert(emb::trainable_parameter_count == seq_base::parameter_count - V * 4);
  using nb = g::trainer<seq_base, 4, g::adam, g::freeze::norms_and_biases_only>;
  // LN (8 + 8) + the two dense biases (8 + 4) + the head (4 * 3 + 3)
  static_assert(nb::trainable_parameter_count == 16 + 12 + 15);
  using ad = g::trainer<seq_lora, 4, g::adam, g::freeze::adapters_only>;
  // adapters 4 * 2 + 2 * 8 and 8 * 2 + 2 * 4, and the head
  static_assert(ad::trainable_parameter_count == 24 + 24 + 15);
  static_assert(ad::optimizer_state_bytes == 2 * (24 + 24 + 15) * sizeof(float));
  // old and new policies combine
  using both = g::trainer<seq_base, 4, g::sgd,
                          g::freeze::all_of<g::freeze::embeddings, g::freeze::bias_only>>;
  // backbone biases but the embedding's (it has none): LN 4, dense 8 and 4, LN 4; the head
  static_assert(both::trainable_parameter_count == 4 + 8 + 4 + 4 + 15);

  auto net = g::make_model<seq_lora>(g::seed{1});
  auto t = std::make_unique<ad>(*net, g::adam{});
  CHECK(t->gradient(0, 0) == nullptr);  // the embedding
  for (std::size_t j = 0; j < 10; ++j) {
    const bool adapter = res::params[j].tag == g::param_tag::adapter;
    CHECK((t->gradient(1, j) != nullptr) == adapter);
  }
  CHECK(t->gradient(2, 0) == nullptr);  // the final layer_norm
  CHECK(t->gradient(seq_lora::head_index, 0) != nullptr);
}

TEST_CASE("lora<dense>: gradient checks (double) of W, b, A, B and the input") {
  require_clean(g::testing::check_layer<lora_randomised<5, 4, 2, 2>>(1));
  require_clean(g::testing::check_layer<lora_randomised<3, 7, 3, 6>, 4>(2));
  require_clean(g::testing::check_layer<lora_randomised<9, 2, 1, 4>, 2>(3));
  // through per_position in a sequence
  require_clean(g::testing::check_layer<
                g::per_position<g::lora<g::dense<3>, 2>>::bind<double, g::shape<4, 5>>>(4));
}

TEST_CASE("with_adapters: B = 0 gives the base model's logits; training moves only the adapters") {
  auto base = g::make_model<base_net<double>>(g::seed{3});
  auto net = g::with_adapters<lora_net<double>>(*base, g::seed{4});
  for (std::size_t i = 0; i < 5 * 3; ++i)  // the same head type: copied
    CHECK(net->head().weight.data()[i] == base->head().weight.data()[i]);
  auto rb = std::make_unique<g::runner<base_net<double>, 4>>();
  auto rl = std::make_unique<g::runner<lora_net<double>, 4>>();
  g::splitmix64 rng(5);
  for (std::size_t i = 0; i < 24; ++i) rb->input()[i] = rl->input()[i] = rng.uniform(-1, 1);
  const double* yb = rb->forward(*base, 4);
  const double* yl = rl->forward(*net, 4);
  for (std::size_t i = 0; i < 12; ++i) CHECK(yl[i] == doctest::Approx(yb[i]).epsilon(1e-14));

  // whole-model gradients with the adapters only
  auto t = std::make_unique<g::trainer<lora_net<double>, 4, g::sgd, g::freeze::adapters_only>>(
      *net, g::sgd{.lr = 0.1F});
  for (std::size_t i = 0; i < 24; ++i) t->input()[i] = rng.uniform(-1, 1);
  const std::int32_t y[4] = {0, 1, 2, 1};
  for (int s = 0; s < 3; ++s) t->step(y, 4);  // B moves away from 0
  t->compute_gradients(y, 4);
  const auto rep = g::testing::check_trainer(*net, *t, y, 4);
  INFO(rep.first_failure);
  CHECK(rep.failures == 0);
  CHECK(rep.checked == 6 * 2 + 2 * 8 + 8 * 3 + 3 * 5 + 5 * 3 + 3);
  // W and b did not move
  CHECK(net->layer<0>().weight.data()[0] == base->layer<0>().weight.data()[0]);
  CHECK(net->layer<2>().bias.data()[1] == base->layer<2>().bias.data()[1]);
  bool moved = false;
  for (std::size_t i = 0; i < 2 * 8; ++i) moved = moved || net->layer<0>().b.data()[i] != 0.0;
  CHECK(moved);
}

TEST_CASE("merge_adapters: the base-typed model computes what the adapted one does") {
  graft_test::temp_dir dir;
  auto base = g::make_model<seq_base>(g::seed{6});
  auto net = g::with_adapters<seq_lora>(*base, g::seed{7});
  // train the adapters a little on token data
  g::data::dataset ds;
  ds.name = "tokens";
  ds.sample_shape = {6};
  g::splitmix64 rng(8);
  for (std::size_t i = 0; i < 64; ++i) {
    const std::size_t n = 1 + rng.below(6);
    for (std::size_t k = 0; k < 6; ++k)
      ds.features.push_back(k < n ? static_cast<float>(1 + rng.below(V - 1)) : 0.0F);
    ds.labels.push_back(static_cast<std::int32_t>(n % 3));
  }
  ds.class_ids = {0, 1, 2};
  g::finetune<g::freeze::adapters_only>(*net, ds, g::adam{.lr = 0.01F}, g::steps{30}, g::batch<16>,
                                        g::seed{9});
  for (std::size_t i = 0; i < V * 4; ++i)  // the embedding (frozen) is the base's
    CHECK(net->layer<0>().weight.data()[i] == base->layer<0>().weight.data()[i]);
  auto merged = g::merge_adapters(*net);
  static_assert(std::is_same_v<std::remove_cvref_t<decltype(*merged)>, seq_base>);
  auto rm = std::make_unique<g::runner<seq_base, 64>>();
  auto rl = std::make_unique<g::runner<seq_lora, 64>>();
  std::copy(ds.features.begin(), ds.features.end(), rm->input());
  std::copy(ds.features.begin(), ds.features.end(), rl->input());
  const float* a = rm->forward(*merged, 64);
  const float* b = rl->forward(*net, 64);
  double worst = 0;
  for (std::size_t i = 0; i < 64 * 3; ++i) worst = std::max(worst, std::abs(double(a[i]) - b[i]));
  MESSAGE("merged vs adapted logits: largest difference " << worst);
  CHECK(worst < 1e-5);
  // the merged model saves and loads as the base type
  g::save(*merged, dir.file("merged.graft"));
  auto again = g::make_model<seq_base>(g::seed{1});
  g::load(*again, dir.file("merged.graft"));
  CHECK(graft_test::bitwise_equal(*again, *merged));
}

TEST_CASE("LoRA on a device: the base in flash, the adapters in RAM; a step as the trainer's") {
  using net_t = lora_net<float>;
  constexpr std::size_t B = 4;
  auto net = g::make_model<net_t>(g::seed{10});
  for (std::size_t i = 0; i < 2 * 8; ++i)
    net->layer<0>().b.data()[i] = 0.01F * static_cast<float>(i);
  const auto flash = std::make_unique<net_t>(*net);
  std::array<const float*, g::constant_model<net_t>::param_tensors> p{};
  std::array<const float*, g::constant_model<net_t>::buffer_tensors> bf{};
  std::size_t pi = 0;
  flash->for_each_parameter(
      [&](std::size_t, std::size_t, g::role, const float* d, std::size_t) { p[pi++] = d; });
  using device_t = g::device_trainer<net_t, B, g::sgd, g::freeze::adapters_only>;
  auto dev = std::make_unique<device_t>(g::constant_model<net_t>::of(p, bf), g::sgd{.lr = 0.05F});
  auto host = std::make_unique<g::trainer<net_t, B, g::sgd, g::freeze::adapters_only>>(
      *net, g::sgd{.lr = 0.05F});
  g::splitmix64 rng(11);
  std::int32_t labels[B]{};
  for (std::size_t i = 0; i < B * 6; ++i)
    host->input()[i] = dev->input()[i] = static_cast<float>(rng.uniform(-1, 1));
  for (std::size_t r = 0; r < B; ++r)
    labels[r] = dev->targets()[r] = static_cast<std::int32_t>(r % 3);
  const double hl = host->step(labels, B);
  REQUIRE(dev->step(B) == g::device_status::ok);
  CHECK(hl == doctest::Approx(dev->last_loss()).epsilon(1e-6));
  // RAM: only the adapters and the head are copied in
  static_assert(device_t::trainable_parameter_count == 6 * 2 + 2 * 8 + 8 * 3 + 3 * 5 + 5 * 3 + 3);
}

// ---- LoRA on attention's query and value projections (lora_qv) ----------------------------------
namespace {
template <std::size_t L, std::size_t D, std::size_t H, bool C, std::size_t R>
struct attention_lora_randomised : g::multi_head_attention_layer<double, L, D, H, C, R, R> {
  void init(g::splitmix64& rng) {
    g::multi_head_attention_layer<double, L, D, H, C, R, R>::init(rng);
    for (std::size_t i = 0; i < R * D; ++i) this->adapters.b_q.data()[i] = rng.uniform(-1, 1);
    for (std::size_t i = 0; i < R * D; ++i) this->adapters.b_v.data()[i] = rng.uniform(-1, 1);
    for (std::size_t i = 0; i < 3 * D; ++i) this->b_qkv.data()[i] = rng.uniform(-0.5, 0.5);
  }
};
using enc_base = g::model<g::stack<g::input_tokens<8, V>, g::embedding<V, 8>,
                                   g::post_norm_encoder<8, 2, 16, 0>, g::global_mean_pool_time>,
                          g::classifier<3>>;
using enc_lora =
    g::model<g::stack<g::input_tokens<8, V>, g::embedding<V, 8>,
                      g::post_norm_encoder<8, 2, 16, 0, g::lora_qv<2>>, g::global_mean_pool_time>,
             g::classifier<3>>;
static_assert(std::is_same_v<g::strip_adapters_t<enc_lora>, enc_base>);
}  // namespace

TEST_CASE("lora_qv: attention with adapters on q and v; gradients, B = 0, pruning, merging") {
  using att = g::multi_head_attention<2, g::lora_qv<2>>::bind<float, g::shape<8, 8>>;
  static_assert(att::params.size() == 8 && att::params[4].tag == g::param_tag::adapter);
  static_assert(att::parameter_count == 8 * 24 + 24 + 64 + 8 + 4 * 8 * 2);
  CHECK(att::name() == "multi_head_attention<2,lora_qv<2,2>>");
  // gradient checks (double), B nonzero, with padding masks and causal
  g::testing::layer_input in;
  in.lengths = {5, 1, 3, 0};
  require_clean(g::testing::check_layer<attention_lora_randomised<5, 4, 2, false, 2>, 4>(21, in));
  require_clean(g::testing::check_layer<attention_lora_randomised<5, 4, 1, true, 3>, 4>(22, in));

  // with_adapters: B = 0 gives the base logits; adapters_only trains 4 D R per attention + head
  using tr = g::trainer<enc_lora, 8, g::adam, g::freeze::adapters_only>;
  static_assert(tr::trainable_parameter_count == 4 * 8 * 2 + 8 * 3 + 3);
  auto base = g::make_model<enc_base>(g::seed{31});
  auto net = g::with_adapters<enc_lora>(*base, g::seed{32});
  g::data::dataset ds;
  ds.name = "tokens";
  ds.sample_shape = {8};
  g::splitmix64 rng(33);
  for (std::size_t i = 0; i < 64; ++i) {
    const std::size_t n = 1 + rng.below(8);
    for (std::size_t k = 0; k < 8; ++k)
      ds.features.push_back(k < n ? static_cast<float>(1 + rng.below(V - 1)) : 0.0F);
    ds.labels.push_back(
        static_cast<std::int32_t>((n + static_cast<std::size_t>(ds.features[i * 8])) % 3));
  }
  ds.class_ids = {0, 1, 2};
  auto rb = std::make_unique<g::runner<enc_base, 64>>();
  auto rl = std::make_unique<g::runner<enc_lora, 64>>();
  std::copy(ds.features.begin(), ds.features.end(), rb->input());
  std::copy(ds.features.begin(), ds.features.end(), rl->input());
  {
    const float* a = rb->forward(*base, 64);
    const float* b = rl->forward(*net, 64);
    for (std::size_t i = 0; i < 64 * 3; ++i) CHECK(a[i] == b[i]);  // t B with B = 0 adds +0
  }
  g::finetune<g::freeze::adapters_only>(*net, ds, g::adam{.lr = 0.01F}, g::steps{20}, g::batch<16>,
                                        g::seed{34});
  // the base weights did not move, the adapters did
  CHECK(net->layer<1>().inner<0>().w_qkv.data()[5] == base->layer<1>().inner<0>().w_qkv.data()[5]);
  bool moved = false;
  for (std::size_t i = 0; i < 2 * 8; ++i)
    moved = moved || net->layer<1>().inner<0>().adapters.b_v.data()[i] != 0.0F;
  CHECK(moved);
  // a runner's forward overwrites its input (ping-pong buffers): the ids again before each pass
  auto ids = [&] {
    std::copy(ds.features.begin(), ds.features.end(), rb->input());
    std::copy(ds.features.begin(), ds.features.end(), rl->input());
  };
  {  // the adapters change the logits
    ids();
    const float* a = rb->forward(*base, 64);
    const float* b = rl->forward(*net, 64);
    double moved_logits = 0;
    for (std::size_t i = 0; i < 64 * 3; ++i)
      moved_logits = std::max(moved_logits, std::abs(double(a[i]) - b[i]));
    MESSAGE("attention LoRA: adapted vs base logits, largest difference " << moved_logits);
    CHECK(moved_logits > 1e-3);
  }
  auto merged = g::merge_adapters(*net);
  static_assert(std::is_same_v<std::remove_cvref_t<decltype(*merged)>, enc_base>);
  ids();
  const float* a = rb->forward(*merged, 64);
  const float* b = rl->forward(*net, 64);
  double worst = 0;
  for (std::size_t i = 0; i < 64 * 3; ++i) worst = std::max(worst, std::abs(double(a[i]) - b[i]));
  MESSAGE("attention LoRA: merged vs adapted logits, largest difference " << worst);
  CHECK(worst < 1e-5);
}
