// Minimal batch-1 inference with dlib's DNN API: builds the MLP 784-256-ReLU-128-ReLU-10 (default
// initialisation), runs one forward of one sample and prints the argmax (net(x) returns the
// predicted label). For compile-time and binary-size comparisons with graft.
#include <dlib/dnn.h>

#include <iostream>

// clang-format off
using net_type = dlib::loss_multiclass_log<
                 dlib::fc<10,
                 dlib::relu<dlib::fc<128,
                 dlib::relu<dlib::fc<256,
                 dlib::input<dlib::matrix<float>>>>>>>>;
// clang-format on

int main() {
  net_type net;
  dlib::matrix<float> x(28, 28);
  for (long i = 0; i < x.size(); ++i) x(i) = static_cast<float>(i % 256) / 256.0f;
  std::cout << net(x) << '\n';
}
