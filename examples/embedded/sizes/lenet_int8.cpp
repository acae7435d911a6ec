// Minimal batch-1 int8 LeNet with its parameters compiled in (tools/sizes.sh).
#include "lenet_int8.hpp"

#include "classify_once_int8.hpp"

int main(int argc, char**) {
  static constexpr auto net = lenet_int8::view<lenet_int8::model>();
  return embedded::classify_once_int8<lenet_int8::model>(net, argc);
}
