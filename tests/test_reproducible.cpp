// Bitwise reproducibility across instruction sets (issue 12): a few training steps of the MLP, an
// MLP with tanh and sigmoid under Adam and a cosine schedule, LeNet and the small ResNet, from
// seeded initialisations on seeded synthetic images, and graft's elementary functions over a sweep,
// each reduced to a 64-bit hash (FNV-1a over the bytes of every parameter, buffer and output).
//
// The hashes are committed below. Every target with FMA must give them: x86-64-v3 (AVX2),
// x86-64-v4 and native AVX-512, aarch64 (NEON) under qemu. Targets without FMA (x86-64 SSE2 and
// x86-64-v2) multiply and add with two roundings and have their own committed values, the same for
// both. A change to graft's numerics that is meant (a new summation order, a better exp) changes
// them: run this test, check that every target prints the same new values, and commit those.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <graft/graft.hpp>

#include "support/backbones.hpp"
#include "support/fnv1a.hpp"

namespace g = graft;

namespace {
using graft_test::fnv1a;

// Seeded synthetic 1 x 28 x 28 images: noise, plus a bright 6 x 6 square whose place is the label.
g::data::dataset images(std::size_t n, std::uint64_t seed) {
  g::splitmix64 rng(seed);
  std::vector<float> x(n * 784);
  std::vector<std::int32_t> y(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<std::int32_t>(rng.below(10));
    y[i] = c;
    float* img = x.data() + i * 784;
    for (std::size_t p = 0; p < 784; ++p) img[p] = static_cast<float>(0.3 * rng.uniform01());
    const std::size_t r0 = 3 + static_cast<std::size_t>(c / 5) * 12, c0 = 2 + (c % 5) * 5;
    for (std::size_t r = r0; r < r0 + 6; ++r)
      for (std::size_t q = c0; q < c0 + 6; ++q) img[r * 28 + q] += 0.7f;
  }
  return g::data::make_classification("synthetic", {1, 28, 28}, std::move(x), std::move(y), 10);
}

// The hash of a model's parameters and buffers, and of its logits on the first 8 images, run one
// at a time (the one-row kernels) and as one batch of 8.
template <class M> std::uint64_t state_hash(const M& net, const g::data::dataset& ds) {
  constexpr std::size_t in = M::input_shape::size;
  fnv1a h;
  net.for_each_saved([&](std::size_t, const float* p, std::size_t n) { h.values(p, n); });
  auto one = std::make_unique<g::runner<M, 1>>();
  auto eight = std::make_unique<g::runner<M, 8>>();
  for (std::size_t i = 0; i < 8; ++i) {
    std::memcpy(one->input(), ds.features.data() + i * in, in * sizeof(float));
    std::memcpy(eight->input() + i * in, ds.features.data() + i * in, in * sizeof(float));
    h.values(one->forward(net, 1), M::head_type::classes);
  }
  h.values(eight->forward(net, 8), 8 * M::head_type::classes);
  return h.h;
}

// Expected values: targets with FMA, targets without.
struct expected {
  std::uint64_t fma, no_fma;
  std::uint64_t value() const { return GRAFT_HAS_FMA ? fma : no_fma; }
};
void check_hash(const char* what, std::uint64_t got, expected want) {
  INFO(what << ": hash 0x" << std::hex << got << " (expected 0x" << want.value() << " on a target "
            << (GRAFT_HAS_FMA ? "with" : "without") << " FMA)");
  std::printf("reproducible: %-28s 0x%016llx\n", what, static_cast<unsigned long long>(got));
  CHECK(got == want.value());
}

using mlp = g::model<
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>,
    g::classifier<10>>;
using smooth_mlp = g::model<
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<40>, g::tanh, g::dense<24>, g::sigmoid>,
    g::classifier<10>>;
using lenet = g::model<backbones::lenet, g::classifier<10>>;

// Token models (issue 16) with padding masks: words of 1..12 ids from 20, padded to 12.
g::data::dataset words(std::size_t n, std::uint64_t seed) {
  g::splitmix64 rng(seed);
  std::vector<float> x(n * 12, 0.0F);
  std::vector<std::int32_t> y(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto len = static_cast<std::size_t>(1 + rng.below(12));
    for (std::size_t k = 0; k < len; ++k) x[i * 12 + k] = static_cast<float>(1 + rng.below(19));
    y[i] = static_cast<std::int32_t>((len + static_cast<std::size_t>(x[i * 12])) % 4);
  }
  return g::data::make_classification("words", {12}, std::move(x), std::move(y), 4);
}
using char_cnn =
    g::model<g::stack<g::input_tokens<12, 20>, g::embedding<20, 8>, g::conv1d<12, 3, g::pad<1>>,
                      g::relu, g::conv1d<12, 3, g::stride<2>>, g::relu, g::global_max_pool_time,
                      g::dense<8>, g::relu>,
             g::classifier<4>>;
using tiny_encoder = g::model<
    g::stack<g::input_tokens<12, 20>, g::embedding<20, 8>, g::positional_embedding, g::layer_norm,
             g::post_norm_encoder<8, 2, 16, 0>, g::pre_norm_encoder<8, 2, 16, 0, g::causal>,
             g::layer_norm, g::global_mean_pool_time>,
    g::classifier<4>>;
using resnet = g::model<backbones::resnet, g::classifier<10>>;
}  // namespace

TEST_CASE("reproducible: graft's elementary functions give the committed bits") {
  fnv1a h;
  for (int i = 0; i <= 20000; ++i) {
    const double x = -30.0 + 60.0 * i / 20000;
    const auto xf = static_cast<float>(x);
    const float f[] = {g::math::exp(xf),     g::math::tanh(xf),
                       g::math::sigmoid(xf), g::math::log(xf * xf + 1e-3f),
                       g::math::cospi(xf),   g::math::expm1(xf / 8)};
    const double d[] = {g::math::exp(x),     g::math::tanh(x),
                        g::math::sigmoid(x), g::math::log(x * x + 1e-3),
                        g::math::cospi(x),   g::math::expm1(x / 8)};
    h.values(f, 6);
    h.values(d, 6);
  }
  check_hash("math functions", h.h, {0xc875ae0658d69b4fULL, 0x1f1c843293e0634fULL});
}

TEST_CASE("reproducible: MLP, 20 SGD steps") {
  const auto ds = images(512, 1);
  auto net = g::make_model<mlp>(g::seed{1});
  g::pretrain(*net, ds, g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::steps{20}, g::batch<32>,
              g::seed{2});
  check_hash("mlp sgd", state_hash(*net, ds), {0x1fcf2b8243d2542aULL, 0x8462abe2332448f2ULL});
}

TEST_CASE("reproducible: tanh/sigmoid MLP, 20 Adam steps, cosine schedule") {
  const auto ds = images(512, 3);
  auto net = g::make_model<smooth_mlp>(g::seed{3});
  g::pretrain(*net, ds, g::adam{.lr = 0.01f}, g::schedule::cosine{}, g::steps{20}, g::batch<24>,
              g::seed{4});
  check_hash("smooth mlp adam cosine", state_hash(*net, ds),
             {0x1368c0f7bbe394f6ULL, 0xf0548ba1a166ada7ULL});
}

TEST_CASE("reproducible: LeNet, 6 SGD steps") {
  const auto ds = images(256, 5);
  auto net = g::make_model<lenet>(g::seed{5});
  g::pretrain(*net, ds, g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::steps{6}, g::batch<16>,
              g::seed{6});
  check_hash("lenet sgd", state_hash(*net, ds), {0x2deecfd98764f21bULL, 0xfca6482c1c0ca7baULL});
}

TEST_CASE("reproducible: ResNet (batch norm, residual blocks), 3 AdamW steps") {
  const auto ds = images(64, 7);
  auto net = g::make_model<resnet>(g::seed{7});
  g::pretrain(*net, ds, g::adamw{.lr = 0.003f}, g::steps{3}, g::batch<8>, g::seed{8});
  check_hash("resnet adamw", state_hash(*net, ds), {0x4534e99f813aaa15ULL, 0x2dfb6481d465fb1eULL});
}

TEST_CASE("reproducible: char-CNN and a tiny transformer with padding masks, 5 Adam steps") {
  const auto ds = words(256, 9);
  auto cnn = g::make_model<char_cnn>(g::seed{9});
  g::pretrain(*cnn, ds, g::adam{.lr = 0.01f}, g::steps{5}, g::batch<16>, g::seed{10});
  check_hash("char-cnn adam", state_hash(*cnn, ds), {0xaeefe3085ad0e946ULL, 0xe511357c3925f4c7ULL});
  auto enc = g::make_model<tiny_encoder>(g::seed{11});
  g::pretrain(*enc, ds, g::adam{.lr = 0.01f}, g::steps{5}, g::batch<16>, g::seed{12});
  check_hash("tiny transformer adam", state_hash(*enc, ds),
             {0x2f565607f7de725aULL, 0xbed7438306807fb8ULL});
}
