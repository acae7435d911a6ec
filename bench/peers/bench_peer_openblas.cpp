// Peer benchmark: the MLP 784-256-ReLU-128-ReLU-10 written by hand on OpenBLAS (cblas_sgemm for
// every matrix product, plain loops for bias, ReLU, softmax cross-entropy and the SGD update), the
// way an expert would write it without a framework. Same workloads and data as graft's bench_mlp
// and bench_finetune; OpenBLAS is pinned to one thread.
//   W1  training step, SGD momentum 0.9, lr 0.01, batch 64 (items/s = samples/s)
//   W2  inference, batch 1 (latency; sgemv, as an expert would for one row) and batch 256
//   W4  fine-tuning step, the two lower dense layers frozen: they run forward only, and the
//       backward pass stops at the head (no gradient below the 128->10 layer is computed)
//   W5  sgemm GFLOP/s at the MLP's shapes (and sgemv at batch 1, for context)
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <benchmark/benchmark.h>

#include "peer_common.hpp"

namespace {

using peers::kH1;
using peers::kH2;
using peers::kIn;
using peers::kOut;

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
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, rows, 1.0f, x, in, dy, out, 0.0f,
                gw.data(), out);
    std::fill(gb.begin(), gb.end(), 0.0f);
    for (int r = 0; r < rows; ++r) {
      const float* dyr = dy + std::size_t(r) * out;
      for (int j = 0; j < out; ++j) gb[j] += dyr[j];
    }
    if (dx != nullptr) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, in, out, 1.0f, dy, out, w.data(),
                  out, 0.0f, dx, in);
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
void relu_backward(const float* y, float* dx, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dx[i] : 0.0f;
}

// Mean softmax cross-entropy over rows; logits are overwritten with d(loss)/d(logits).
float softmax_xent(float* z, const int* labels, int rows) {
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

// The MLP with its activation buffers for `batch` rows.
class mlp {
 public:
  explicit mlp(int batch)
      : l1_(kIn, kH1, 11),
        l2_(kH1, kH2, 12),
        l3_(kH2, kOut, 13),
        x_(std::size_t(batch) * kIn),
        a1_(std::size_t(batch) * kH1),
        a2_(std::size_t(batch) * kH2),
        z_(std::size_t(batch) * kOut),
        d1_(a1_.size()),
        d2_(a2_.size()) {}

  float* input() { return x_.data(); }

  const float* forward(int rows) {
    l1_.forward(x_.data(), a1_.data(), rows, true);
    l2_.forward(a1_.data(), a2_.data(), rows, true);
    l3_.forward(a2_.data(), z_.data(), rows, false);
    return z_.data();
  }

  // One SGD step on input() and labels; frozen2 keeps the two lower layers fixed (W4).
  float train_step(const int* labels, int rows, bool frozen2) {
    forward(rows);
    const float loss = softmax_xent(z_.data(), labels, rows);
    if (frozen2) {  // only the head: no dx below it, no gradient of the frozen layers
      l3_.backward(a2_.data(), z_.data(), nullptr, rows);
      l3_.update(peers::kLr, peers::kMomentum);
      return loss;
    }
    l3_.backward(a2_.data(), z_.data(), d2_.data(), rows);
    relu_backward(a2_.data(), d2_.data(), std::size_t(rows) * kH2);
    l2_.backward(a1_.data(), d2_.data(), d1_.data(), rows);
    relu_backward(a1_.data(), d1_.data(), std::size_t(rows) * kH1);
    l1_.backward(x_.data(), d1_.data(), nullptr, rows);  // no dx for the input
    for (dense* l : {&l1_, &l2_, &l3_}) l->update(peers::kLr, peers::kMomentum);
    return loss;
  }

 private:
  dense l1_, l2_, l3_;
  std::vector<float> x_, a1_, a2_, z_, d1_, d2_;
};

void train_bench(benchmark::State& state, bool frozen2) {
  constexpr int B = peers::kTrainBatch;
  mlp net(B);
  const auto x = peers::uniform_pixels(std::size_t(B) * kIn, peers::kSeedTrain);
  std::copy(x.begin(), x.end(), net.input());
  const auto y = peers::cyclic_labels<int>(B);
  for (auto _ : state) benchmark::DoNotOptimize(net.train_step(y.data(), B, frozen2));
  peers::set_samples(state, B);
}

void BM_W1_train_step_batch64(benchmark::State& state) { train_bench(state, false); }
void BM_W4_finetune_frozen2_batch64(benchmark::State& state) { train_bench(state, true); }

template <int B> void BM_W2_inference(benchmark::State& state) {
  mlp net(B);
  const auto x = peers::uniform_pixels(std::size_t(B) * kIn, peers::kSeedInfer);
  for (auto _ : state) {
    std::copy(x.begin(), x.end(), net.input());  // as graft's benchmark: copy in, then forward
    benchmark::DoNotOptimize(net.forward(B));
    benchmark::ClobberMemory();
  }
  peers::set_samples(state, B);
}

template <int M, int K, int N> void BM_W5_gemm(benchmark::State& state) {
  const auto a = peers::uniform_pixels(std::size_t(M) * K, peers::kSeedGemmA);
  const auto b = peers::uniform_pixels(std::size_t(K) * N, peers::kSeedGemmB);
  std::vector<float> c(static_cast<std::size_t>(M * N));
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a.data(), K, b.data(), N,
                0.0f, c.data(), N);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  peers::set_gflops(state, M, K, N);
}

// The batch-1 product as an expert would call it: y = B^T a with sgemv.
template <int K, int N> void BM_W5_gemv(benchmark::State& state) {
  const auto a = peers::uniform_pixels(K, peers::kSeedGemmA);
  const auto b = peers::uniform_pixels(std::size_t(K) * N, peers::kSeedGemmB);
  std::vector<float> c(N);
  for (auto _ : state) {
    cblas_sgemv(CblasRowMajor, CblasTrans, K, N, 1.0f, b.data(), N, a.data(), 1, 0.0f, c.data(), 1);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  peers::set_gflops(state, 1, K, N);
}

BENCHMARK(BM_W1_train_step_batch64)->Name("W1_train_step_batch64");
BENCHMARK(BM_W2_inference<1>)->Name("W2_inference_batch1");
BENCHMARK(BM_W2_inference<256>)->Name("W2_inference_batch256");
BENCHMARK(BM_W4_finetune_frozen2_batch64)->Name("W4_finetune_frozen2_batch64");
BENCHMARK(BM_W5_gemm<64, 784, 256>)->Name("W5_gemm_64x784x256");
BENCHMARK(BM_W5_gemm<64, 256, 128>)->Name("W5_gemm_64x256x128");
BENCHMARK(BM_W5_gemm<1, 784, 256>)->Name("W5_gemm_1x784x256");
BENCHMARK(BM_W5_gemv<784, 256>)->Name("W5_gemv_784x256");

}  // namespace

int main(int argc, char** argv) {
  openblas_set_num_threads(1);
  benchmark::AddCustomContext("peer", OPENBLAS_VERSION);
  benchmark::AddCustomContext("peer_config", openblas_get_config());
  peers::report_openblas("bench_peer_openblas");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
