// Peer benchmark: the MLP 784-256-ReLU-128-ReLU-10 in tiny-dnn (network<sequential> of
// fully_connected_layer<relu> x2 and fully_connected_layer<softmax>, cross_entropy_multiclass,
// the momentum optimiser), through its public API only. Same workloads and data as graft's
// bench_mlp and bench_finetune. Single thread: built with CNN_SINGLE_THREAD (tiny-dnn would
// otherwise spawn std::async tasks); AVX dot products (CNN_USE_AVX) when the target has AVX.
//   W1  training step, momentum 0.9, lr 0.01, batch 64: net.train() on one batch, epochs 1.
//       tiny-dnn's fit() resets the optimiser on entry, so with one call per step the momentum
//       buffer is cleared every step (the step is plain SGD, and re-allocates the buffers).
//       W1_train_step_batch64_fit10 calls train() on 10 batches at once, so that momentum
//       persists over 10 steps and the per-call setup is amortised (items = 640 per call).
//   W2  inference with net.predict(): batch 1 (latency), batch 256 (throughput); the outputs are
//       the softmax probabilities, since the softmax is the last layer's activation in tiny-dnn
//   W3  the LeNet-5-like CNN: convolutional_layer<relu> (padding::same, i.e. 2 for 5x5, then
//       padding::valid), max_pooling_layer, fully_connected_layer; the input is the same vec_t
//       read as 1x28x28. Training step as W1 (so the same caveat: momentum cleared every step),
//       batch-1 inference as W2. Each ReLU is the activation of its conv/fc layer, as tiny-dnn
//       expresses it; the math is the same as separate ReLU layers
//   W4  fine-tuning step with the two lower layers frozen by layer::set_trainable(false): their
//       weights are not updated, but tiny-dnn still back-propagates through them and computes
//       their weight gradients
#if defined(__AVX__) && !defined(CNN_USE_AVX)
#define CNN_USE_AVX
#endif
#include <tiny_dnn/tiny_dnn.h>

#include <vector>

#include <benchmark/benchmark.h>

#include "peer_common.hpp"

namespace {

namespace tdnn = tiny_dnn;
using peers::kIn;

tdnn::network<tdnn::sequential> make_mlp() {
  using tdnn::fully_connected_layer;
  tdnn::network<tdnn::sequential> net;
  net << fully_connected_layer<tdnn::activation::relu>(kIn, peers::kH1)
      << fully_connected_layer<tdnn::activation::relu>(peers::kH1, peers::kH2)
      << fully_connected_layer<tdnn::activation::softmax>(peers::kH2, peers::kOut);
  net.init_weight();
  return net;
}

// convolutional_layer(in_width, in_height, window, in_channels, out_channels, padding) and
// max_pooling_layer(in_width, in_height, in_channels, pooling_size) (stride = pooling_size).
tdnn::network<tdnn::sequential> make_lenet() {
  using tdnn::convolutional_layer;
  using tdnn::fully_connected_layer;
  using tdnn::max_pooling_layer;
  using tdnn::padding;
  using tdnn::activation::identity;
  using tdnn::activation::relu;
  constexpr int S0 = peers::kSide, S1 = peers::kSide1, S2 = S1 - peers::kKernel + 1;
  constexpr int K = peers::kKernel, P = peers::kPool;
  tdnn::network<tdnn::sequential> net;
  net << convolutional_layer<relu>(S0, S0, K, 1, peers::kC1, padding::same)            // 6x28x28
      << max_pooling_layer<identity>(S0, S0, peers::kC1, P)                            // 6x14x14
      << convolutional_layer<relu>(S1, S1, K, peers::kC1, peers::kC2, padding::valid)  // 16x10x10
      << max_pooling_layer<identity>(S2, S2, peers::kC2, P)                            // 16x5x5
      << fully_connected_layer<relu>(peers::kFlat, peers::kF1)
      << fully_connected_layer<relu>(peers::kF1, peers::kF2)
      << fully_connected_layer<tdnn::activation::softmax>(peers::kF2, peers::kOut);
  net.init_weight();
  return net;
}

tdnn::momentum make_momentum() {
  tdnn::momentum opt;  // W += mu*V - alpha*grad (no weight decay)
  opt.alpha = peers::kLr;
  opt.mu = peers::kMomentum;
  opt.lambda = 0.0f;
  return opt;
}

// rows samples (vec_t each) holding the shared synthetic data.
std::vector<tdnn::vec_t> samples(int rows, std::uint64_t seed) {
  const auto v = peers::uniform_pixels(std::size_t(rows) * kIn, seed);
  std::vector<tdnn::vec_t> out(rows);
  for (int r = 0; r < rows; ++r)
    out[r].assign(v.begin() + std::ptrdiff_t(r) * kIn, v.begin() + std::ptrdiff_t(r + 1) * kIn);
  return out;
}

// One net.train() call per iteration over batches*64 samples in batches of 64, epochs 1.
void train_bench(benchmark::State& state, tdnn::network<tdnn::sequential> net, int batches,
                 bool frozen2) {
  constexpr int B = peers::kTrainBatch;
  if (frozen2) {
    net[0]->set_trainable(false);  // after init_weight(): an untrainable layer is not initialised
    net[1]->set_trainable(false);
  }
  auto opt = make_momentum();
  const auto x = samples(batches * B, peers::kSeedTrain);
  const auto y = peers::cyclic_labels<tdnn::label_t>(std::size_t(batches) * B);
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        net.train<tdnn::cross_entropy_multiclass>(opt, x, y, std::size_t(B), /*epoch=*/1));
  }
  peers::set_samples(state, std::int64_t(batches) * B);
}

void BM_W1_train_step_batch64(benchmark::State& state) { train_bench(state, make_mlp(), 1, false); }
void BM_W1_train_step_batch64_fit10(benchmark::State& state) {
  train_bench(state, make_mlp(), 10, false);
}
void BM_W3_lenet_train_step_batch64(benchmark::State& state) {
  train_bench(state, make_lenet(), 1, false);
}
void BM_W4_finetune_frozen2_batch64(benchmark::State& state) {
  train_bench(state, make_mlp(), 1, true);
}

template <tdnn::network<tdnn::sequential> (*MakeNet)()>
void BM_inference_batch1(benchmark::State& state) {
  auto net = MakeNet();
  const auto x = samples(1, peers::kSeedInfer);
  for (auto _ : state) {
    tdnn::vec_t probs = net.predict(x[0]);  // predict() copies its input in
    benchmark::DoNotOptimize(probs.data());
    benchmark::ClobberMemory();
  }
  peers::set_samples(state, 1);
}

void BM_W2_inference_batch256(benchmark::State& state) {
  constexpr int B = 256;
  auto net = make_mlp();
  // The batched predict() takes one tensor_t (the input channels: one vec_t here) per sample.
  std::vector<tdnn::tensor_t> batch;
  for (auto& s : samples(B, peers::kSeedInfer)) batch.push_back(tdnn::tensor_t{std::move(s)});
  for (auto _ : state) {
    std::vector<tdnn::tensor_t> probs = net.predict(batch);  // copies its input in, too
    benchmark::DoNotOptimize(probs.data());
    benchmark::ClobberMemory();
  }
  peers::set_samples(state, B);
}

BENCHMARK(BM_W1_train_step_batch64)->Name("W1_train_step_batch64");
BENCHMARK(BM_W1_train_step_batch64_fit10)->Name("W1_train_step_batch64_fit10");
BENCHMARK(BM_inference_batch1<make_mlp>)->Name("W2_inference_batch1");
BENCHMARK(BM_W2_inference_batch256)->Name("W2_inference_batch256");
BENCHMARK(BM_W3_lenet_train_step_batch64)->Name("W3_lenet_train_step_batch64");
BENCHMARK(BM_inference_batch1<make_lenet>)->Name("W3_lenet_inference_batch1");
BENCHMARK(BM_W4_finetune_frozen2_batch64)->Name("W4_finetune_frozen2_batch64");

}  // namespace

int main(int argc, char** argv) {
#ifdef CNN_USE_AVX
  benchmark::AddCustomContext("peer", "tiny-dnn 1.0.0a3 (CNN_USE_AVX, CNN_SINGLE_THREAD)");
#else
  benchmark::AddCustomContext("peer", "tiny-dnn 1.0.0a3 (CNN_SINGLE_THREAD)");
#endif
  peers::report_openblas("bench_peer_tinydnn");  // none: tiny-dnn has its own kernels
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
