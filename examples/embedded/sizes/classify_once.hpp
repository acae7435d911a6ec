// The body of tools/sizes.sh's minimal batch-1 programs: one forward of an input derived from argc
// (so that nothing folds away) through a runner in static storage, the class printed with printf.
#pragma once
#include <cstddef>
#include <cstdio>

#include <graft/inference.hpp>

namespace embedded {
template <class Net, class Model> int classify_once(const Model& net, int argc) {
  static graft::runner<Net, 1> runner;  // static storage: its RAM is known while linking
  float* x = runner.input();
  for (std::size_t i = 0; i < Net::input_shape::size; ++i)
    x[i] = static_cast<float>((i * static_cast<std::size_t>(argc)) % 17) / 17.0f;
  const float* logits = runner.forward(net, 1);
  int best = 0;
  for (int c = 1; c < 10; ++c)
    if (logits[c] > logits[best]) best = c;
  std::printf("class %d\n", best);
  return 0;
}
}  // namespace embedded
