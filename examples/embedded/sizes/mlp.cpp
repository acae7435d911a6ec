// Minimal batch-1 float MLP with its weights compiled in (tools/sizes.sh).
#include <graft/model/constant.hpp>

#include "../models.hpp"
#include "classify_once.hpp"
#include "mlp_weights.hpp"

int main(int argc, char**) {
  static constexpr auto net = mlp_weights::bind<embedded::mlp_t>();
  return embedded::classify_once<embedded::mlp_t>(net, argc);
}
