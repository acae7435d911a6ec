// Minimal batch-1 float LeNet with its weights compiled in (tools/sizes.sh).
#include <graft/model/constant.hpp>

#include "../models.hpp"
#include "classify_once.hpp"
#include "lenet_weights.hpp"

int main(int argc, char**) {
  static constexpr auto net = lenet_weights::bind<embedded::lenet_t>();
  return embedded::classify_once<embedded::lenet_t>(net, argc);
}
