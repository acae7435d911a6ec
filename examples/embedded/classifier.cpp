// A freestanding batch-1 Fashion-MNIST classifier for a small target (issue 14): the README's MLP
// with its trained weights compiled in as constant data (mlp_weights.hpp, written on the host by
// train_export with graft::export_header, read in place: flash on a microcontroller), a few test
// images and the host's predictions of them compiled in too (fashion_samples.hpp). No file
// system, no iostream, no heap, no exceptions or RTTI: the runner lives in static storage and its
// RAM is a constant. It classifies the images, prints each class with printf, and exits non-zero
// unless every class equals the host's. (Whether the logits are also bitwise the host's is
// printed, not checked: graft's float results are the same bits on every target with FMA, but a
// host built without FMA rounds differently.)
#include <cstdio>
#include <cstring>

#include <graft/inference.hpp>
#include <graft/model/constant.hpp>

#include "fashion_samples.hpp"
#include "mlp_weights.hpp"
#include "models.hpp"

namespace {
using net_t = embedded::mlp_t;
using runner_t = graft::runner<net_t, 1>;
constexpr auto net = mlp_weights::bind<net_t>();  // static_assert: the header is net_t's
runner_t runner;                                  // static storage: RAM known while linking
constexpr std::size_t pixels = net_t::input_shape::size;
static_assert(sizeof(fashion_samples::images[0]) == pixels * sizeof(float));
}  // namespace

int main() {
  std::printf(
      "graft embedded classifier: %s\n  weights: %zu bytes of constant data, "
      "fingerprint %016llx; runner RAM %zu bytes\n",
      mlp_weights::description, graft::constant_model<net_t>::constant_bytes,
      static_cast<unsigned long long>(mlp_weights::fingerprint), runner_t::ram_bytes);
  int same_class = 0, same_bits = 0, correct = 0;
  for (int i = 0; i < fashion_samples::count; ++i) {
    float* x = runner.input();
    for (std::size_t k = 0; k < pixels; ++k) x[k] = fashion_samples::images[i][k];
    const float* logits = runner.forward(net, 1);
    int best = 0;
    for (int c = 1; c < 10; ++c)
      if (logits[c] > logits[best]) best = c;
    const bool agrees = best == fashion_samples::host_classes[i];
    const bool bits = std::memcmp(logits, fashion_samples::host_logits[i], sizeof(float) * 10) == 0;
    same_class += agrees;
    same_bits += bits;
    correct += best == fashion_samples::labels[i];
    std::printf("  image %2d: class %d %-11s (label %d, host %d)%s\n", i, best,
                fashion_samples::class_names[best], fashion_samples::labels[i],
                fashion_samples::host_classes[i], agrees ? "" : "  DIFFERS FROM THE HOST");
  }
  std::printf(
      "%d of %d classes equal the host's (%d of %d correct); logits bitwise the host's "
      "for %d of %d images\n",
      same_class, fashion_samples::count, correct, fashion_samples::count, same_bits,
      fashion_samples::count);
  return same_class == fashion_samples::count ? 0 : 1;
}
