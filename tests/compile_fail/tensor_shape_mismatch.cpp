// Must not compile: assignment between tensors of different shapes (xtensor would overflow).
#include <graft/tensor/tensor.hpp>
int main() {
  graft::tensor<float, 3, 4> a(1.0f);
  graft::tensor<float, 4, 3> b;
  b = a;
  return static_cast<int>(b[0]);
}
