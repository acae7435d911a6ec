// The hand-written OpenBLAS MLP of bench/peers/bench_peer_openblas.cpp (cblas_sgemm for every
// matrix product, plain loops for bias, ReLU, softmax cross-entropy and the SGD update), copied
// here with the layer widths as run-time values: 784-H-ReLU-H-ReLU-10 for any H and batch.
// One addition for the sweep's batch-1 training step, which W1 (batch 64) never runs: with a
// single row the weight gradient is an outer product (cblas_sger) and the input gradient a
// matrix-vector product (cblas_sgemv), as an expert would call them, instead of sgemm with M = 1
// (the forward pass already takes sgemv for one row, as in the peer).
#pragma once
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "sweep_common.hpp"

namespace hand {

// One dense layer y = x·W + b, W stored row-major as in×out, with its gradients and momentum.
struct dense {
  int in, out;
  std::vector<float> w, b, gw, gb, vw, vb;

  dense(int n_in, int n_out, std::uint64_t seed)
      : in(n_in),
        out(n_out),
        w(std::size_t(n_in) * n_out),
        b(n_out, 0.0f),
        gw(w.size()),
        gb(n_out),
        vw(w.size(), 0.0f),
        vb(n_out, 0.0f) {
    // PyTorch's default bound 1/sqrt(fan_in); the values do not matter for speed.
    peers::splitmix64 rng(seed);
    const double bound = 1.0 / std::sqrt(static_cast<double>(n_in));
    for (auto& x : w) x = static_cast<float>((2.0 * rng.uniform01() - 1.0) * bound);
  }

  // y[rows×out] = x[rows×in]·W + b, then ReLU if asked; one fused pass after the GEMM.
  void forward(const float* x, float* y, int rows, bool relu) const {
    if (rows == 1) {  // y = W^T x: GEMV is OpenBLAS's fast path for a single row
      cblas_sgemv(CblasRowMajor, CblasTrans, in, out, 1.0f, w.data(), out, x, 1, 0.0f, y, 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, out, in, 1.0f, x, in, w.data(),
                  out, 0.0f, y, out);
    }
    for (int r = 0; r < rows; ++r) {
      float* yr = y + std::size_t(r) * out;
      if (relu) {
        for (int j = 0; j < out; ++j) yr[j] = std::max(yr[j] + b[j], 0.0f);
      } else {
        for (int j = 0; j < out; ++j) yr[j] += b[j];
      }
    }
  }

  // From dy[rows×out]: gW = x^T·dy, gb = column sums of dy and, if dx is given, dx = dy·W^T.
  void backward(const float* x, const float* dy, float* dx, int rows) {
    if (rows == 1) {  // gW = x dy^T (outer product), dx = W dy
      std::fill(gw.begin(), gw.end(), 0.0f);
      cblas_sger(CblasRowMajor, in, out, 1.0f, x, 1, dy, 1, gw.data(), out);
    } else {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, rows, 1.0f, x, in, dy, out,
                  0.0f, gw.data(), out);
    }
    std::fill(gb.begin(), gb.end(), 0.0f);
    for (int r = 0; r < rows; ++r) {
      const float* dyr = dy + std::size_t(r) * out;
      for (int j = 0; j < out; ++j) gb[j] += dyr[j];
    }
    if (dx != nullptr) {
      if (rows == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, in, out, 1.0f, w.data(), out, dy, 1, 0.0f, dx, 1);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, in, out, 1.0f, dy, out, w.data(),
                    out, 0.0f, dx, in);
      }
    }
  }

  // SGD with momentum, PyTorch's form (as graft's sgd): v = mu*v + g; p -= lr*v.
  void update(float lr, float mu) {
    auto step = [lr, mu](std::vector<float>& p, std::vector<float>& v,
                         const std::vector<float>& g) {
      for (std::size_t i = 0; i < p.size(); ++i) {
        v[i] = mu * v[i] + g[i];
        p[i] -= lr * v[i];
      }
    };
    step(w, vw, gw);
    step(b, vb, gb);
  }
};

// dx *= (y > 0): the ReLU's backward, from its output.
inline void relu_backward(const float* y, float* dx, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dx[i] : 0.0f;
}

// Mean softmax cross-entropy over rows; logits are overwritten with d(loss)/d(logits).
inline float softmax_xent(float* z, const int* labels, int rows) {
  constexpr int kOut = sweep::kOut;
  double loss = 0.0;
  const float inv = 1.0f / static_cast<float>(rows);
  for (int r = 0; r < rows; ++r) {
    float* zr = z + std::size_t(r) * kOut;
    const float m = *std::max_element(zr, zr + kOut);
    float s = 0.0f;
    for (int j = 0; j < kOut; ++j) s += (zr[j] = std::exp(zr[j] - m));
    loss -= std::log(zr[labels[r]] / s);
    for (int j = 0; j < kOut; ++j) zr[j] = zr[j] / s * inv;
    zr[labels[r]] -= inv;
  }
  return static_cast<float>(loss / rows);
}

// The MLP 784-h-h-10 with its activation buffers for `batch` rows.
class mlp {
 public:
  mlp(int h, int batch)
      : h_(h),
        l1_(sweep::kIn, h, 11),
        l2_(h, h, 12),
        l3_(h, sweep::kOut, 13),
        x_(std::size_t(batch) * sweep::kIn),
        a1_(std::size_t(batch) * h),
        a2_(std::size_t(batch) * h),
        z_(std::size_t(batch) * sweep::kOut),
        d1_(a1_.size()),
        d2_(a2_.size()) {}

  float* input() { return x_.data(); }

  const float* forward(int rows) {
    l1_.forward(x_.data(), a1_.data(), rows, true);
    l2_.forward(a1_.data(), a2_.data(), rows, true);
    l3_.forward(a2_.data(), z_.data(), rows, false);
    return z_.data();
  }

  // One SGD step on input() and labels.
  float train_step(const int* labels, int rows) {
    forward(rows);
    const float loss = softmax_xent(z_.data(), labels, rows);
    const std::size_t n = std::size_t(rows) * h_;
    l3_.backward(a2_.data(), z_.data(), d2_.data(), rows);
    relu_backward(a2_.data(), d2_.data(), n);
    l2_.backward(a1_.data(), d2_.data(), d1_.data(), rows);
    relu_backward(a1_.data(), d1_.data(), n);
    l1_.backward(x_.data(), d1_.data(), nullptr, rows);  // no dx for the input
    for (dense* l : {&l1_, &l2_, &l3_}) l->update(peers::kLr, peers::kMomentum);
    return loss;
  }

 private:
  int h_;
  dense l1_, l2_, l3_;
  std::vector<float> x_, a1_, a2_, z_, d1_, d2_;
};

}  // namespace hand
