// Peer benchmark: the MLP 784-256-ReLU-128-ReLU-10 in LibTorch (torch::nn::Linear, torch::relu,
// torch::nn::functional::cross_entropy, torch::optim::SGD), written the way the LibTorch docs
// teach. Same workloads and data as graft's bench_mlp and bench_finetune; one thread: intra-op
// and inter-op pools set to 1, and the OpenBLAS that Debian's LibTorch calls for GEMM pinned to 1.
//   W1  training step, SGD momentum 0.9, lr 0.01, batch 64 (items/s = samples/s)
//   W2  inference under torch::InferenceMode, batch 1 (latency) and batch 256 (throughput)
//   W3  the LeNet-5-like CNN (torch::nn::Conv2d, torch::max_pool2d, torch::nn::Linear) on the
//       inputs as [batch, 1, 28, 28] images: training step as W1, batch-1 inference as W2
//   W4  fine-tuning step with fc1 and fc2 frozen: requires_grad=false on their parameters, the
//       optimiser only sees fc3, and the frozen part runs under torch::NoGradGuard (no autograd
//       graph is recorded below the head)
#include <ATen/Version.h>
#include <ATen/native/ConvUtils.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "peer_common.hpp"

namespace {

using peers::kH1;
using peers::kH2;
using peers::kIn;
using peers::kOut;
// W3's LeNet.
using peers::kC1;
using peers::kC2;
using peers::kF1;
using peers::kF2;
using peers::kFlat;
using peers::kKernel;
using peers::kPad1;

struct MlpImpl : torch::nn::Module {
  MlpImpl()
      : fc1(register_module("fc1", torch::nn::Linear(kIn, kH1))),
        fc2(register_module("fc2", torch::nn::Linear(kH1, kH2))),
        fc3(register_module("fc3", torch::nn::Linear(kH2, kOut))) {}

  // The two lower dense layers with their ReLUs: the part that W4 freezes.
  torch::Tensor features(const torch::Tensor& x) {
    return torch::relu(fc2->forward(torch::relu(fc1->forward(x))));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc3->forward(features(x)); }

  torch::nn::Linear fc1, fc2, fc3;
};
TORCH_MODULE(Mlp);

struct LenetImpl : torch::nn::Module {
  using Conv = torch::nn::Conv2dOptions;  // (in_channels, out_channels, kernel_size)
  LenetImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(Conv(1, kC1, kKernel).padding(kPad1)))),
        conv2(register_module("conv2", torch::nn::Conv2d(Conv(kC1, kC2, kKernel)))),
        fc1(register_module("fc1", torch::nn::Linear(kFlat, kF1))),
        fc2(register_module("fc2", torch::nn::Linear(kF1, kF2))),
        fc3(register_module("fc3", torch::nn::Linear(kF2, kOut))) {}

  // x: [batch, 1, 28, 28]; returns the logits.
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::max_pool2d(torch::relu(conv1->forward(x)), peers::kPool);
    h = torch::max_pool2d(torch::relu(conv2->forward(h)), peers::kPool).flatten(1);
    return fc3->forward(torch::relu(fc2->forward(torch::relu(fc1->forward(h)))));
  }

  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc1, fc2, fc3;
};
TORCH_MODULE(Lenet);

// A [rows, 784] float tensor and a [rows] int64 label tensor holding the shared synthetic data.
torch::Tensor inputs(int rows, std::uint64_t seed) {
  auto v = peers::uniform_pixels(std::size_t(rows) * kIn, seed);
  return torch::from_blob(v.data(), {rows, kIn}, torch::kFloat32).clone();
}
// The same data as [rows, 1, 28, 28] images, W3's input.
torch::Tensor images(int rows, std::uint64_t seed) {
  return inputs(rows, seed).view({rows, 1, peers::kSide, peers::kSide});
}
torch::Tensor labels(int rows) {
  auto v = peers::cyclic_labels<std::int64_t>(rows);
  return torch::from_blob(v.data(), {rows}, torch::kInt64).clone();
}

torch::optim::SGD make_sgd(std::vector<torch::Tensor> params) {
  return torch::optim::SGD(std::move(params),
                           torch::optim::SGDOptions(peers::kLr).momentum(peers::kMomentum));
}

// A full training step (SGD momentum, cross-entropy) of Net on the rows of x, as many times as
// the benchmark asks.
template <class Net> void train_steps(benchmark::State& state, Net& net, const torch::Tensor& x) {
  auto opt = make_sgd(net->parameters());
  const auto y = labels(static_cast<int>(x.size(0)));
  for (auto _ : state) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.template item<float>());
  }
  peers::set_samples(state, x.size(0));
}

void BM_W1_train_step_batch64(benchmark::State& state) {
  torch::manual_seed(0);
  Mlp net;
  train_steps(state, net, inputs(peers::kTrainBatch, peers::kSeedTrain));
}

void BM_W4_finetune_frozen2_batch64(benchmark::State& state) {
  constexpr int B = peers::kTrainBatch;
  torch::manual_seed(0);
  Mlp net;
  for (auto* frozen : {&net->fc1, &net->fc2})
    for (auto& p : (*frozen)->parameters()) p.requires_grad_(false);
  auto opt = make_sgd(net->fc3->parameters());
  const auto x = inputs(B, peers::kSeedTrain);
  const auto y = labels(B);
  for (auto _ : state) {
    opt.zero_grad();
    torch::Tensor h;
    {
      torch::NoGradGuard no_grad;  // frozen backbone: forward only, no graph recorded
      h = net->features(x);
    }
    auto loss = torch::nn::functional::cross_entropy(net->fc3->forward(h), y);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  peers::set_samples(state, B);
}

void BM_W3_lenet_train_step_batch64(benchmark::State& state) {
  torch::manual_seed(0);
  Lenet net;
  train_steps(state, net, images(peers::kTrainBatch, peers::kSeedTrain));
}

template <int B> void BM_W2_inference(benchmark::State& state) {
  torch::manual_seed(0);
  Mlp net;
  net->eval();
  torch::InferenceMode inference;  // no autograd bookkeeping at all (stronger than NoGradGuard)
  const auto data = peers::uniform_pixels(std::size_t(B) * kIn, peers::kSeedInfer);
  auto x = torch::empty({B, kIn}, torch::kFloat32);
  for (auto _ : state) {
    // As graft's benchmark: copy the input in, then forward.
    std::memcpy(x.data_ptr<float>(), data.data(), data.size() * sizeof(float));
    auto logits = net->forward(x);
    benchmark::DoNotOptimize(logits.data_ptr<float>());
    benchmark::ClobberMemory();
  }
  peers::set_samples(state, B);
}

void BM_W3_lenet_inference_batch1(benchmark::State& state) {
  torch::manual_seed(0);
  Lenet net;
  net->eval();
  torch::InferenceMode inference;
  const auto data = peers::uniform_pixels(kIn, peers::kSeedInfer);
  auto x = torch::empty({1, 1, peers::kSide, peers::kSide}, torch::kFloat32);
  for (auto _ : state) {
    // As W2: copy the input in, then forward.
    std::memcpy(x.data_ptr<float>(), data.data(), data.size() * sizeof(float));
    auto logits = net->forward(x);
    benchmark::DoNotOptimize(logits.data_ptr<float>());
    benchmark::ClobberMemory();
  }
  peers::set_samples(state, 1);
}

// What computes W3's convolutions: the backend LibTorch's dispatch selects for conv1 and conv2
// (at::native::select_conv_backend, the function at::convolution itself asks) for the batch-64
// training step (autograd on) and for batch-1 inference (InferenceMode). "oneDNN" is Mkldnn;
// "Slow2d" is LibTorch's own im2col and BLAS sgemm.
std::string conv_backends() {
  using at::native::ConvBackend;
  auto name = [](ConvBackend b) -> std::string {
    switch (b) {
      case ConvBackend::Mkldnn:
        return "oneDNN";
      case ConvBackend::Slow2d:
        return "Slow2d (im2col + BLAS)";
      case ConvBackend::NnpackSpatial:
        return "NNPACK";
      case ConvBackend::Xnnpack2d:
        return "XNNPACK";
      default:
        return "other (" + std::to_string(static_cast<int>(b)) + ")";
    }
  };
  torch::manual_seed(0);
  Lenet net;
  auto backends = [&](int batch) {
    const auto x1 = torch::zeros({batch, 1, peers::kSide, peers::kSide});
    const auto x2 = torch::zeros({batch, kC1, peers::kSide1, peers::kSide1});
    const auto b1 = at::native::select_conv_backend(
        x1, net->conv1->weight, net->conv1->bias, {1, 1}, {kPad1, kPad1}, {1, 1}, false, {0, 0}, 1);
    const auto b2 = at::native::select_conv_backend(x2, net->conv2->weight, net->conv2->bias,
                                                    {1, 1}, {0, 0}, {1, 1}, false, {0, 0}, 1);
    return b1 == b2 ? name(b1) : "conv1 " + name(b1) + ", conv2 " + name(b2);
  };
  std::string training = backends(peers::kTrainBatch);
  torch::InferenceMode inference;
  return "training batch 64: " + training + "; inference batch 1: " + backends(1);
}

// The value of KEY=... in at::show_config() (LibTorch's build configuration), or "?".
std::string build_setting(const std::string& key) {
  std::istringstream config(at::show_config());
  std::string word;
  while (config >> word) {
    if (word.rfind(key + "=", 0) == 0) {
      word = word.substr(key.size() + 1);
      if (!word.empty() && word.back() == ',') word.pop_back();
      return word;
    }
  }
  return "?";
}

BENCHMARK(BM_W1_train_step_batch64)->Name("W1_train_step_batch64");
BENCHMARK(BM_W2_inference<1>)->Name("W2_inference_batch1");
BENCHMARK(BM_W2_inference<256>)->Name("W2_inference_batch256");
BENCHMARK(BM_W3_lenet_train_step_batch64)->Name("W3_lenet_train_step_batch64");
BENCHMARK(BM_W3_lenet_inference_batch1)->Name("W3_lenet_inference_batch1");
BENCHMARK(BM_W4_finetune_frozen2_batch64)->Name("W4_finetune_frozen2_batch64");

}  // namespace

int main(int argc, char** argv) {
  // Before any parallel work: the inter-op pool size can be set once only.
  at::set_num_interop_threads(1);
  torch::set_num_threads(1);
  const bool blas_pinned = peers::pin_openblas_to_one_thread();
  benchmark::AddCustomContext("peer", "LibTorch " + std::to_string(TORCH_VERSION_MAJOR) + "." +
                                          std::to_string(TORCH_VERSION_MINOR));
  benchmark::AddCustomContext("peer_threads", "intra-op " + std::to_string(at::get_num_threads()) +
                                                  ", inter-op " +
                                                  std::to_string(at::get_num_interop_threads()) +
                                                  (blas_pinned ? ", OpenBLAS 1" : ""));
  // Which libraries do the work: oneDNN (MKLDNN) for the convolutions if LibTorch was built with
  // it and it is enabled, and the BLAS of its build (Debian: OpenBLAS via libblas.so.3) for the
  // dense layers' matrix products (addmm; float32 matmuls do not go through oneDNN in 1.13).
  const std::string onednn = std::string("built ") + (at::hasMKLDNN() ? "yes" : "no") +
                             ", enabled " +
                             (at::globalContext().userEnabledMkldnn() ? "yes" : "no") +
                             "; convolutions: " + conv_backends();
  const std::string blas = "BLAS_INFO=" + build_setting("BLAS_INFO") +
                           ", LAPACK_INFO=" + build_setting("LAPACK_INFO") + ", sgemm_ from " +
                           peers::symbol_library("sgemm_");
  benchmark::AddCustomContext("torch_onednn", onednn);
  benchmark::AddCustomContext("torch_blas", blas);
  std::fprintf(stderr, "bench_peer_torch: oneDNN %s\nbench_peer_torch: %s\n", onednn.c_str(),
               blas.c_str());
  peers::report_openblas("bench_peer_torch");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
