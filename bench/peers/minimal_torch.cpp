// Minimal batch-1 inference with LibTorch: builds the MLP 784-256-ReLU-128-ReLU-10 (default
// initialisation), runs one forward of one sample and prints the argmax. For compile-time and
// binary-size comparisons with graft.
#include <torch/torch.h>

#include <iostream>

int main() {
  torch::manual_seed(0);
  torch::nn::Sequential net(torch::nn::Linear(784, 256), torch::nn::ReLU(),
                            torch::nn::Linear(256, 128), torch::nn::ReLU(),
                            torch::nn::Linear(128, 10));
  torch::InferenceMode inference;
  auto x = torch::arange(784, torch::kFloat32).remainder(256).div(256).reshape({1, 784});
  std::cout << net->forward(x).argmax(1).item<std::int64_t>() << '\n';
}
