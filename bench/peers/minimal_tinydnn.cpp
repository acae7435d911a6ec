// Minimal batch-1 inference with tiny-dnn: builds the MLP 784-256-ReLU-128-ReLU-10 (softmax output,
// default initialisation), runs one forward of one sample and prints the argmax. Built like the
// benchmark: CNN_SINGLE_THREAD, CNN_USE_AVX when the target has AVX. For compile-time and
// binary-size comparisons with graft.
#if defined(__AVX__) && !defined(CNN_USE_AVX)
#define CNN_USE_AVX
#endif
#include <tiny_dnn/tiny_dnn.h>

#include <iostream>

int main() {
  using tiny_dnn::fully_connected_layer;
  namespace act = tiny_dnn::activation;
  tiny_dnn::network<tiny_dnn::sequential> net;
  net << fully_connected_layer<act::relu>(784, 256) << fully_connected_layer<act::relu>(256, 128)
      << fully_connected_layer<act::softmax>(128, 10);
  tiny_dnn::vec_t x(784);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 256) / 256.0f;
  std::cout << net.predict_label(x) << '\n';
}
