// Fine-tuning on the device (issue 14, point 7): device_trainer (train/device.hpp) keeps the frozen
// tensors in constant data and only the trainable ones, their gradients and optimizer state and
// one sample's activations in RAM. Checked here: LeNet's bias_only fine-tuning at batch 8 fits in
// 256 KB (constexpr, and sizeof is that figure); a device step is bitwise the hosted trainer's
// step on the same batch, under bias_only and backbone; the few-shot fine-tuning run by hand with
// finetune's batch order ends with bitwise finetune's weights, hence the same accuracy; a
// non-finite loss is reported, not thrown.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#include <doctest/doctest.h>
#include <graft/graft.hpp>
#include <graft/train/device.hpp>

#include "support/backbones.hpp"
#include "support/blobs.hpp"
#include "support/real_data.hpp"

namespace g = graft;

namespace {
using source_t = g::model<backbones::lenet, g::classifier<10>>;
using target_t = g::model<backbones::lenet, g::classifier<5>>;
using opt_t = g::sgd;
constexpr opt_t opt{.lr = 0.05f, .momentum = 0.9f};
template <class Policy> using device_t = g::device_trainer<target_t, 8, opt_t, Policy>;

// The model as constant data: pointers to its tensors (in RAM here, flash on a device).
template <class M> g::constant_model<M> as_constants(const M& net) {
  std::array<const float*, g::constant_model<M>::param_tensors> p{};
  std::array<const float*, g::constant_model<M>::buffer_tensors> b{};
  std::size_t pi = 0;
  net.for_each_parameter(
      [&](std::size_t, std::size_t, g::role, const float* d, std::size_t) { p[pi++] = d; });
  return g::constant_model<M>::of(p, b);
}

template <class Policy, class Dev> bool same_trainable(const target_t& net, const Dev& dev) {
  bool same = true;
  net.for_each_layer([&](auto i, const auto& l) {
    using L = std::remove_cvref_t<decltype(l)>;
    for (std::size_t j = 0; j < L::params.size(); ++j)
      same =
          same && std::memcmp(l.param(j), dev.param(i, j), L::params[j].size * sizeof(float)) == 0;
  });
  return same;
}
}  // namespace

TEST_CASE("device_trainer: LeNet bias_only fine-tuning at batch 8 fits in 256 KB of RAM") {
  using dev = device_t<g::freeze::bias_only>;
  static_assert(sizeof(dev) == dev::ram_bytes, "the constexpr figure is the object's size");
  static_assert(dev::ram_bytes <= 256 * 1024);
  MESSAGE("device_trainer<LeNet + classifier<5>, batch 8, sgd, bias_only>: RAM "
          << dev::ram_bytes << " bytes (" << dev::trainable_parameter_count
          << " trainable parameters), constant data " << g::constant_model<target_t>::constant_bytes
          << " bytes; the hosted trainer's arena "
          << g::trainer<target_t, 8, opt_t, g::freeze::bias_only>::arena_bytes
          << " bytes plus the model's " << target_t::parameter_bytes);
  // whole-model training would not fit
  CHECK(device_t<g::freeze::none>::ram_bytes > 256 * 1024);
}

TEST_CASE("device_trainer: a step is bitwise the hosted trainer's step (bias_only, backbone)") {
  const auto ds = graft_test::blobs(40, {1, 28, 28}, 3);  // 3 classes of 5: labels 0-2
  auto check = [&](auto policy_tag) {
    using Policy = typename decltype(policy_tag)::type;
    auto net = g::make_model<target_t>(g::seed{4});
    const auto start = std::make_unique<target_t>(*net);  // the "flash" copy
    auto dev = std::make_unique<device_t<Policy>>(as_constants(*start), opt);
    auto host = std::make_unique<g::trainer<target_t, 8, opt_t, Policy>>(*net, opt);
    bool same = true, losses = true;
    std::int32_t labels[8]{};
    for (std::size_t s = 0; s < 5; ++s) {
      const std::size_t rows = s == 4 ? 3 : 8;  // a short last batch too
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t k = (s * 8 + r) % ds.size();
        std::copy_n(ds.sample(k), 784, host->input() + r * 784);
        std::copy_n(ds.sample(k), 784, dev->input() + r * 784);
        labels[r] = dev->targets()[r] = ds.labels[k];
      }
      const double hl = host->step(labels, rows);
      REQUIRE(dev->step(rows) == g::device_status::ok);
      losses = losses && hl == dev->last_loss();
      same = same && same_trainable<Policy>(*net, *dev);
    }
    CHECK(losses);
    CHECK(same);
  };
  check(std::type_identity<g::freeze::bias_only>{});
  check(std::type_identity<g::freeze::backbone>{});
}

TEST_CASE("device_trainer: few-shot fine-tuning equals finetune's (weights and accuracy)") {
  const auto loaded =
      graft_test::real_data("Fashion-MNIST", [] { return g::data::fashion_mnist(); });
  if (!loaded) return;
  const g::data::split& fashion = *loaded;
  // source: classes 0-4 (6000 images, 1 epoch); target: classes 5-9, 20 labelled images each
  const auto source = fashion.train.only_classes({0, 1, 2, 3, 4}).take(6000);
  const auto target =
      fashion.train.only_classes({5, 6, 7, 8, 9}).relabeled().few_shot(20, g::seed{2});
  const auto test = fashion.test.only_classes({5, 6, 7, 8, 9}).relabeled();
  auto pre = g::make_model<source_t>(g::seed{1});
  g::pretrain(*pre, source, opt, g::epochs{1}, g::batch<64>, g::seed{1}, g::quiet);
  const auto start = g::attach<g::classifier<5>>(std::move(pre), g::seed{3});
  const double before = g::evaluate(*start, test).accuracy;

  auto hosted = std::make_unique<target_t>(*start);
  g::finetune<g::freeze::bias_only>(*hosted, target, opt, g::epochs{3}, g::batch<8>, g::seed{7},
                                    g::quiet);
  // the device: the same batches in the same order (finetune's shuffle per epoch)
  auto dev = std::make_unique<device_t<g::freeze::bias_only>>(as_constants(*start), opt);
  const std::size_t n = target.size();
  std::vector<std::size_t> order(n);
  for (std::size_t e = 0; e < 3; ++e) {
    std::iota(order.begin(), order.end(), std::size_t{0});
    auto rng = g::splitmix64::stream(g::seed{7}, e);
    g::fisher_yates(order.begin(), n, rng);
    for (std::size_t b = 0; b * 8 < n; ++b) {
      const std::size_t rows = std::min<std::size_t>(8, n - b * 8);
      for (std::size_t r = 0; r < rows; ++r) {
        std::copy_n(target.sample(order[b * 8 + r]), 784, dev->input() + r * 784);
        dev->targets()[r] = target.labels[order[b * 8 + r]];
      }
      REQUIRE(dev->step(rows) == g::device_status::ok);
    }
  }
  CHECK(same_trainable<g::freeze::bias_only>(*hosted, *dev));
  // accuracy of the device's weights, by a runner reading them where they are
  auto r = std::make_unique<g::runner<target_t, 100>>();
  std::size_t right = 0;
  for (std::size_t i = 0; i < test.size(); i += 100) {
    const std::size_t rows = std::min<std::size_t>(100, test.size() - i);
    std::copy_n(test.sample(i), rows * 784, r->input());
    const float* z = r->forward(dev->weights(), rows);
    for (std::size_t k = 0; k < rows; ++k)
      right += static_cast<std::int32_t>(std::max_element(z + 5 * k, z + 5 * k + 5) -
                                         (z + 5 * k)) == test.labels[i + k];
  }
  const double device_acc = static_cast<double>(right) / static_cast<double>(test.size());
  const double hosted_acc = g::evaluate(*hosted, test).accuracy;
  MESSAGE(
      "LeNet pre-trained on Fashion-MNIST 0-4, bias_only fine-tuning on 5-9 (20 per class, 3 "
      "epochs, batch 8): accuracy before "
      << 100 * before << "%, hosted finetune " << 100 * hosted_acc << "%, device_trainer "
      << 100 * device_acc << "% (" << test.size() << " test images)");
  CHECK(device_acc == hosted_acc);
  CHECK(device_acc > before + 0.2);
}

TEST_CASE("device_trainer: a non-finite loss is a status, and changes nothing") {
  auto net = g::make_model<target_t>(g::seed{4});
  auto dev = std::make_unique<device_t<g::freeze::bias_only>>(as_constants(*net), opt);
  for (std::size_t i = 0; i < 8 * 784; ++i) dev->input()[i] = 0.5f;
  for (std::size_t r = 0; r < 8; ++r) dev->targets()[r] = 1;
  dev->input()[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK(dev->step(8) == g::device_status::nonfinite_loss);
  CHECK(same_trainable<g::freeze::bias_only>(*net, *dev));
}
