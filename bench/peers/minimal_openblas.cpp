// Minimal batch-1 inference by hand on OpenBLAS: the MLP 784-256-ReLU-128-ReLU-10 as three sgemv
// calls with bias and ReLU loops (weights uniform in +-1/sqrt(fan_in) from a small LCG), one
// forward of one sample, prints the argmax. For compile-time and binary-size comparisons with
// graft.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <vector>

namespace {

struct dense {
  int in, out;
  std::vector<float> w, b;  // w: in x out, row-major
};

dense make_dense(int in, int out, std::uint32_t& state) {
  dense d{in, out, std::vector<float>(std::size_t(in) * out), std::vector<float>(out, 0.0f)};
  const float bound = 1.0f / std::sqrt(static_cast<float>(in));
  for (auto& v : d.w) {
    state = state * 1664525u + 1013904223u;
    v = (static_cast<float>(state >> 8) * 0x1.0p-24f * 2.0f - 1.0f) * bound;
  }
  return d;
}

// y = relu?(W^T x + b)
std::vector<float> forward(const dense& d, const std::vector<float>& x, bool relu) {
  std::vector<float> y(d.b);
  cblas_sgemv(CblasRowMajor, CblasTrans, d.in, d.out, 1.0f, d.w.data(), d.out, x.data(), 1, 1.0f,
              y.data(), 1);
  if (relu)
    for (auto& v : y) v = std::max(v, 0.0f);
  return y;
}

}  // namespace

int main() {
  std::uint32_t state = 0;
  const dense l1 = make_dense(784, 256, state), l2 = make_dense(256, 128, state),
              l3 = make_dense(128, 10, state);
  std::vector<float> x(784);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 256) / 256.0f;
  const auto z = forward(l3, forward(l2, forward(l1, x, true), true), false);
  std::cout << std::max_element(z.begin(), z.end()) - z.begin() << '\n';
}
