// A batch-1 program that includes only graft/inference.hpp: a CNN with batch norm and a residual
// block runs forward from a runner in static storage (the include-graph test checks that the
// header pulls in nothing from train/, optim/, freeze/ or data/; this checks that it suffices).
#include <cmath>
#include <cstdio>

#include <graft/inference.hpp>

namespace g = graft;
using net_t = g::model<g::stack<g::input<1, 12, 12>, g::conv2d<4, 3, g::pad<1>>, g::batch_norm,
                                g::relu, g::residual<g::conv2d<4, 3, g::pad<1>>, g::relu>,
                                g::max_pool<2>, g::flatten, g::dense<16>, g::relu>,
                       g::classifier<3>>;
namespace {
g::runner<net_t, 1> runner;
}

int main() {
  auto net = g::make_model<net_t>(g::seed{1});
  for (std::size_t i = 0; i < 144; ++i) runner.input()[i] = static_cast<float>(i % 7) / 7.0f;
  const float* z = runner.forward(*net, 1);
  for (std::size_t k = 0; k < 3; ++k)
    if (!std::isfinite(z[k])) return 1;
  std::printf("inference_only: logits %.4f %.4f %.4f\n", static_cast<double>(z[0]),
              static_cast<double>(z[1]), static_cast<double>(z[2]));
  return 0;
}
