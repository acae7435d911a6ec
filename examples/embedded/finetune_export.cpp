// examples/embedded/'s host generator for the on-device fine-tuning (finetune.cpp, issue 14 point
// 7): pre-trains LeNet on Fashion-MNIST classes 0-4, attaches a new classifier<5>, and writes the
// two headers the device program compiles in:
//   <dir>/lenet_start_weights.hpp  the model the device starts from (graft::export_header): its
//                                  frozen tensors stay there, in constant data (flash)
//   <dir>/fewshot_target.hpp       the few-shot target set (classes 5-9 relabelled 0-4, 20 images
//                                  per class), the first 500 target test images, the recipe, and
//                                  the host's result of the same fine-tuning: correct answers on
//                                  those 500 images before and after, and an FNV-1a hash of every
//                                  trainable tensor's bytes (layer order)
//
//   finetune_export <dir>
//
// The recipe (tests/test_device.cpp's): source 6000 images of classes 0-4, 1 epoch, SGD lr 0.05
// momentum 0.9, batch 64, seed 1; head attached with seed 3; target few_shot(20, seed 2);
// graft::finetune<freeze::bias_only>, 3 epochs, batch 8, shuffle seed 7. Fashion-MNIST comes from
// graft::data::fashion_mnist() (/usr/share/datasets/fashion-mnist, Debian's
// dataset-fashion-mnist, or $GRAFT_DATA_DIR/fashion-mnist).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>

#include <graft/graft.hpp>
#include <graft/train/device.hpp>

#include "host_util.hpp"
#include "models.hpp"
#include "support/backbones.hpp"

namespace g = graft;

namespace {
using source_t = g::model<backbones::lenet, g::classifier<10>>;
using target_t = g::model<backbones::lenet, g::classifier<5>>;
static_assert(std::is_same_v<target_t, embedded::lenet5_t>, "the device's model type");
constexpr std::size_t batch = 8, epochs = 3, test_images = 500;
constexpr std::uint64_t shuffle_seed = 7;
constexpr g::sgd opt{.lr = 0.05f, .momentum = 0.9f};
// which tensors train: the device trainer's own answer (freeze::bias_only's gradient masks)
using device_t = g::device_trainer<target_t, batch, g::sgd, g::freeze::bias_only>;
constexpr std::size_t pixels = target_t::input_shape::size;

std::string hex(float v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%af", static_cast<double>(v));
  return buf;
}

/// FNV-1a (64-bit) of every trainable tensor's bytes, layer by layer, tensor by tensor.
std::uint64_t trainable_hash(const target_t& net, std::size_t& scalars) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  scalars = 0;
  net.for_each_layer([&](auto i, const auto& l) {
    using L = std::remove_cvref_t<decltype(l)>;
    for (std::size_t j = 0; j < L::params.size(); ++j)
      if (device_t::trains(i, j)) {
        const auto* b = reinterpret_cast<const unsigned char*>(l.param(j));
        for (std::size_t k = 0; k < L::params[j].size * sizeof(float); ++k)
          h = (h ^ b[k]) * 0x100000001b3ULL;
        scalars += L::params[j].size;
      }
  });
  return h;
}

/// Correct answers on the first n images of `test`, batch 1 through a runner (as on the device).
std::size_t correct(const target_t& net, const g::data::dataset& test, std::size_t n) {
  auto r = std::make_unique<g::runner<target_t, 1>>();
  std::size_t right = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::copy_n(test.sample(i), pixels, r->input());
    const float* z = r->forward(net, 1);
    std::size_t best = 0;
    for (std::size_t c = 1; c < 5; ++c)
      if (z[c] > z[best]) best = c;
    right += static_cast<std::int32_t>(best) == test.labels[i];
  }
  return right;
}

void put_images(std::string& out, const char* name, const g::data::dataset& ds, std::size_t n) {
  out += "inline constexpr std::int32_t " + std::string(name) + "_labels[" + std::to_string(n) +
         "] = {";
  for (std::size_t i = 0; i < n; ++i) out += (i ? ", " : "") + std::to_string(ds.labels[i]);
  out += "};\nalignas(64) inline constexpr float " + std::string(name) + "_images[" +
         std::to_string(n) + "][" + std::to_string(pixels) + "] = {";
  for (std::size_t i = 0; i < n; ++i) {
    out += "\n    {";
    embedded::put_floats(out, ds.sample(i), pixels);
    out += "},";
  }
  out += "};\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: finetune_export <dir>\n");
    return 2;
  }
  const std::string dir = argv[1];
  try {
    const auto data = g::data::fashion_mnist();
    const auto source = data.train.only_classes({0, 1, 2, 3, 4}).take(6000);
    const auto target =
        data.train.only_classes({5, 6, 7, 8, 9}).relabeled().few_shot(20, g::seed{2});
    const auto test = data.test.only_classes({5, 6, 7, 8, 9}).relabeled();
    const std::size_t n_test = std::min(test_images, test.size());

    auto pre = g::make_model<source_t>(g::seed{1});
    const auto rep =
        g::pretrain(*pre, source, opt, g::epochs{1}, g::batch<64>, g::seed{1}, g::quiet);
    const auto start = g::attach<g::classifier<5>>(std::move(pre), g::seed{3});
    const std::size_t before = correct(*start, test, n_test);

    auto hosted = std::make_unique<target_t>(*start);
    g::finetune<g::freeze::bias_only>(*hosted, target, opt, g::epochs{epochs}, g::batch<batch>,
                                      g::seed{shuffle_seed}, g::quiet);
    const std::size_t after = correct(*hosted, test, n_test);
    std::size_t scalars = 0;
    const std::uint64_t hash = trainable_hash(*hosted, scalars);
    std::printf(
        "finetune_export: %s\n  pre-trained on %zu images of classes 0-4 (1 epoch, %.1f s); "
        "new classifier<5>\n  finetune<bias_only> on %zu images of classes 5-9 (%zu epochs, "
        "batch %zu): %zu -> %zu of %zu target test images correct; %zu trainable scalars, "
        "hash %016llx\n",
        target_t::description().c_str(), source.size(), rep.seconds, target.size(), epochs, batch,
        before, after, n_test, scalars, static_cast<unsigned long long>(hash));

    g::export_header(*start, dir + "/lenet_start_weights.hpp", "lenet_start");
    char hash_hex[32];
    std::snprintf(hash_hex, sizeof hash_hex, "0x%016llxULL", static_cast<unsigned long long>(hash));
    const auto z = [](std::size_t v) { return std::to_string(v); };
    std::string out =
        "// Generated by examples/embedded/finetune_export: Fashion-MNIST classes 5-9 relabelled "
        "0-4, the\n// few-shot target set (few_shot(20, seed 2)) and the first " +
        z(n_test) +
        " test images, the recipe, and the host's\n// result of "
        "graft::finetune<freeze::bias_only> from lenet_start_weights.hpp.\n#pragma once\n"
        "#include <cstddef>\n#include <cstdint>\n\nnamespace fewshot {\n"
        "inline constexpr float lr = " +
        hex(opt.lr) + ", momentum = " + hex(opt.momentum) +
        ";\ninline constexpr std::size_t batch = " + z(batch) + ", epochs = " + z(epochs) +
        ";\ninline constexpr std::uint64_t shuffle_seed = " + std::to_string(shuffle_seed) +
        ";\ninline constexpr std::size_t train_count = " + z(target.size()) +
        ", test_count = " + z(n_test) + ", pixels = " + z(pixels) +
        ";\n// the host's result\ninline constexpr std::size_t host_correct_before = " + z(before) +
        ", host_correct_after = " + z(after) +
        ";\ninline constexpr std::size_t trainable_scalars = " + z(scalars) +
        ";\ninline constexpr std::uint64_t host_trainable_hash = " + hash_hex + ";\n";
    put_images(out, "train", target, target.size());
    put_images(out, "test", test, n_test);
    out += "}  // namespace fewshot\n";
    embedded::write_file(dir + "/fewshot_target.hpp", out, "finetune_export");
    std::printf("  wrote %s/lenet_start_weights.hpp and %s/fewshot_target.hpp\n", dir.c_str(),
                dir.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "finetune_export: %s\n", e.what());
    return 1;
  }
  return 0;
}
