// Minimal batch-1 int8 MLP with its parameters compiled in (tools/sizes.sh).
#include "mlp_int8.hpp"

#include "classify_once_int8.hpp"

int main(int argc, char**) {
  static constexpr auto net = mlp_int8::view<mlp_int8::model>();
  return embedded::classify_once_int8<mlp_int8::model>(net, argc);
}
