// Fine-tuning on the device (issue 14, point 7), freestanding: LeNet pre-trained on the host on
// Fashion-MNIST classes 0-4 with a new classifier<5> (lenet_start_weights.hpp, written by
// finetune_export with graft::export_header) is fine-tuned here on 100 labelled images of classes
// 5-9 (fewshot_target.hpp) under freeze::bias_only: the frozen weights are read in place from
// constant data (flash on a microcontroller); only the biases, the head, their gradients and
// momentum, one batch of 8 and one sample's activations live in RAM, in a static
// graft::device_trainer whose size is a constant. Three epochs in graft::finetune's batch order
// (each epoch: 0..n-1 shuffled by fisher_yates with splitmix64::stream(seed, epoch)), then a
// static runner reads the new weights (t.weights()) and classifies 500 target test images.
// No heap, no iostream, no files, no exceptions or RTTI; printf only.
//
// Exits non-zero if a step reports anything but device_status::ok, or unless the correct answers
// before and after and an FNV-1a hash of every trainable tensor's bytes equal the host's
// graft::finetune<freeze::bias_only> (a device step is bitwise the hosted step, and graft's
// arithmetic is bitwise the same on x86 and aarch64).
#include <cstddef>
#include <cstdint>
#include <cstdio>

#include <graft/inference.hpp>
#include <graft/model/constant.hpp>
#include <graft/train/device.hpp>

#include "fewshot_target.hpp"
#include "lenet_start_weights.hpp"
#include "models.hpp"

namespace {
using net_t = embedded::lenet5_t;
using trainer_t =
    graft::device_trainer<net_t, fewshot::batch, graft::sgd, graft::freeze::bias_only>;
using runner_t = graft::runner<net_t, 1>;
static_assert(trainer_t::ram_bytes <= 256 * 1024, "bias_only fine-tuning must fit in 256 KiB");
static_assert(sizeof(trainer_t) == trainer_t::ram_bytes);
static_assert(trainer_t::trainable_parameter_count == fewshot::trainable_scalars,
              "the host hashed the same tensors");
static_assert(fewshot::pixels == net_t::input_shape::size);

constexpr auto start = lenet_start::bind<net_t>();  // static_assert: the header is net_t's
// static storage: RAM known while linking
trainer_t trainer(start, graft::sgd{.lr = fewshot::lr, .momentum = fewshot::momentum});
runner_t runner;
std::size_t order[fewshot::train_count];

/// Correct answers on the target test images, batch 1, with the weights w.
std::size_t correct(const graft::constant_model<net_t>& w) {
  std::size_t right = 0;
  for (std::size_t i = 0; i < fewshot::test_count; ++i) {
    float* x = runner.input();
    for (std::size_t k = 0; k < fewshot::pixels; ++k) x[k] = fewshot::test_images[i][k];
    const float* z = runner.forward(w, 1);
    std::int32_t best = 0;
    for (std::int32_t c = 1; c < 5; ++c)
      if (z[c] > z[best]) best = c;
    right += best == fewshot::test_labels[i] ? 1 : 0;
  }
  return right;
}

/// FNV-1a (64-bit) of every trainable tensor's bytes, layer by layer, tensor by tensor.
std::uint64_t trainable_hash() {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  graft::meta::static_for<net_t::layer_count>([&](auto i) {
    using Layer = typename net_t::template layer_type<i>;
    for (std::size_t j = 0; j < Layer::params.size(); ++j)
      if (trainer_t::trains(i, j)) {
        const auto* b = reinterpret_cast<const unsigned char*>(trainer.param(i, j));
        for (std::size_t k = 0; k < Layer::params[j].size * sizeof(float); ++k)
          h = (h ^ b[k]) * 0x100000001b3ULL;
      }
  });
  return h;
}

const char* name_of(graft::device_status s) {
  switch (s) {
    case graft::device_status::ok:
      return "ok";
    case graft::device_status::nonfinite_loss:
      return "non-finite loss";
    case graft::device_status::nonfinite_gradient:
      return "non-finite gradient";
    case graft::device_status::nonfinite_update:
      return "non-finite update";
  }
  return "?";
}

double percent(std::size_t k) {
  return 100.0 * static_cast<double>(k) / static_cast<double>(fewshot::test_count);
}
}  // namespace

int main() {
  std::printf(
      "graft on-device fine-tuning: %s\n  constant data %zu bytes (fingerprint %016llx); RAM: "
      "device_trainer %zu bytes (%zu trainable scalars, batch %zu), runner %zu bytes\n",
      lenet_start::description, graft::constant_model<net_t>::constant_bytes,
      static_cast<unsigned long long>(lenet_start::fingerprint), trainer_t::ram_bytes,
      trainer_t::trainable_parameter_count, trainer_t::batch, runner_t::ram_bytes);
  const std::size_t before = correct(start);
  std::printf("  before: %zu of %zu target test images correct (%.1f%%; host %zu)\n", before,
              fewshot::test_count, percent(before), fewshot::host_correct_before);

  constexpr std::size_t n = fewshot::train_count, b = fewshot::batch;
  for (std::size_t e = 0; e < fewshot::epochs; ++e) {
    for (std::size_t k = 0; k < n; ++k) order[k] = k;  // graft::finetune's order: iota, shuffled
    auto rng = graft::splitmix64::stream(graft::seed{fewshot::shuffle_seed}, e);
    graft::fisher_yates(order, n, rng);
    double loss = 0;
    for (std::size_t s = 0; s * b < n; ++s) {
      const std::size_t rows = n - s * b < b ? n - s * b : b;
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t k = order[s * b + r];
        float* x = trainer.input() + r * fewshot::pixels;
        for (std::size_t p = 0; p < fewshot::pixels; ++p) x[p] = fewshot::train_images[k][p];
        trainer.targets()[r] = fewshot::train_labels[k];
      }
      const graft::device_status st = trainer.step(rows);
      if (st != graft::device_status::ok) {
        std::printf("FAILED: epoch %zu, step %zu: %s\n", e + 1, s + 1, name_of(st));
        return 1;
      }
      loss += trainer.last_loss() * static_cast<double>(rows);
    }
    std::printf("  epoch %zu: mean loss %.4f\n", e + 1, loss / static_cast<double>(n));
  }

  const std::size_t after = correct(trainer.weights());
  const std::uint64_t hash = trainable_hash();
  const bool same = before == fewshot::host_correct_before &&
                    after == fewshot::host_correct_after && hash == fewshot::host_trainable_hash;
  std::printf("  after:  %zu of %zu target test images correct (%.1f%%; host %zu)\n", after,
              fewshot::test_count, percent(after), fewshot::host_correct_after);
  std::printf(
      "fine-tuned on the device: accuracy %.1f%% -> %.1f%%, trainable weights hash "
      "%016llx (host %016llx): %s\n",
      percent(before), percent(after), static_cast<unsigned long long>(hash),
      static_cast<unsigned long long>(fewshot::host_trainable_hash),
      same ? "equal to the host's finetune" : "DIFFERS FROM THE HOST");
  return same ? 0 : 1;
}
