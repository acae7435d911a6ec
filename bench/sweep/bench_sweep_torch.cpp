// The sweep (sweep_common.hpp) in LibTorch, written as bench/peers/bench_peer_torch.cpp writes W1
// and W2 (torch::nn::Linear, torch::relu, torch::nn::functional::cross_entropy,
// torch::optim::SGD; inference under torch::InferenceMode). One thread: intra-op and inter-op
// pools set to 1, and the OpenBLAS that Debian's LibTorch calls for GEMM pinned to 1.
//   sweep_train_h<H>_b<B>  zero_grad, forward, cross-entropy, backward, SGD-momentum step
//   sweep_infer_h<H>_b<B>  copy B samples in, forward them
#include <ATen/Version.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "sweep_common.hpp"

namespace {

struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(int h)
      : fc1(register_module("fc1", torch::nn::Linear(sweep::kIn, h))),
        fc2(register_module("fc2", torch::nn::Linear(h, h))),
        fc3(register_module("fc3", torch::nn::Linear(h, sweep::kOut))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    return fc3->forward(torch::relu(fc2->forward(torch::relu(fc1->forward(x)))));
  }

  torch::nn::Linear fc1, fc2, fc3;
};
TORCH_MODULE(Mlp);

void BM_train(benchmark::State& state, int h, int b) {
  torch::manual_seed(0);
  Mlp net(h);
  auto v = peers::uniform_pixels(std::size_t(b) * sweep::kIn, peers::kSeedTrain);
  const auto x = torch::from_blob(v.data(), {b, sweep::kIn}, torch::kFloat32).clone();
  auto l = peers::cyclic_labels<std::int64_t>(std::size_t(b));
  const auto y = torch::from_blob(l.data(), {b}, torch::kInt64).clone();
  torch::optim::SGD opt(net->parameters(),
                        torch::optim::SGDOptions(peers::kLr).momentum(peers::kMomentum));
  for (auto _ : state) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  peers::set_samples(state, b);
}

void BM_infer(benchmark::State& state, int h, int b) {
  torch::manual_seed(0);
  Mlp net(h);
  net->eval();
  torch::InferenceMode inference;  // no autograd bookkeeping at all
  const auto data = peers::uniform_pixels(std::size_t(b) * sweep::kIn, peers::kSeedInfer);
  auto x = torch::empty({b, sweep::kIn}, torch::kFloat32);
  for (auto _ : state) {
    std::memcpy(x.data_ptr<float>(), data.data(), data.size() * sizeof(float));
    auto logits = net->forward(x);
    benchmark::DoNotOptimize(logits.data_ptr<float>());
    benchmark::ClobberMemory();
  }
  peers::set_samples(state, b);
}

}  // namespace

int main(int argc, char** argv) {
  // Before any parallel work: the inter-op pool size can be set once only.
  at::set_num_interop_threads(1);
  torch::set_num_threads(1);
  const bool blas_pinned = peers::pin_openblas_to_one_thread();
  for (const auto& p : sweep::kGrid)
    benchmark::RegisterBenchmark(sweep::name("train", p.h, p.b).c_str(), BM_train, p.h, p.b);
  for (const auto& p : sweep::kGrid)
    benchmark::RegisterBenchmark(sweep::name("infer", p.h, p.b).c_str(), BM_infer, p.h, p.b);
  benchmark::AddCustomContext("peer", "LibTorch " + std::to_string(TORCH_VERSION_MAJOR) + "." +
                                          std::to_string(TORCH_VERSION_MINOR));
  benchmark::AddCustomContext("peer_threads", "intra-op " + std::to_string(at::get_num_threads()) +
                                                  ", inter-op " +
                                                  std::to_string(at::get_num_interop_threads()) +
                                                  (blas_pinned ? ", OpenBLAS 1" : ""));
  benchmark::AddCustomContext("torch_sgemm", peers::symbol_library("sgemm_"));
  peers::report_openblas("bench_sweep_torch");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
