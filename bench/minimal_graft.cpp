// The smallest useful graft program: the MLP 784-256-128-10 and one batch-1 forward (weights
// from a seed; a deployed binary would load() them). Compile time and stripped size are compared
// with the peers' minimal programs by tools/bench_table.py.
#include <cstdio>

#include <graft/layers/activations.hpp>
#include <graft/model/model.hpp>
#include <graft/train/trainer.hpp>

namespace g = graft;
using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;
using net_t = g::model<mlp, g::classifier<10>>;

int main() {
  static net_t net;  // static storage: no heap for the parameters
  net.initialize(g::seed{0});
  static g::runner<net_t, 1> run;
  for (std::size_t i = 0; i < 784; ++i) run.input()[i] = static_cast<float>(i % 255) / 255.0f;
  const float* z = run.forward(net, 1);
  std::size_t best = 0;
  for (std::size_t c = 1; c < 10; ++c) best = z[c] > z[best] ? c : best;
  std::printf("%zu\n", best);
  return 0;
}
