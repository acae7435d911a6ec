// Peer benchmark: the MLP 784-256-ReLU-128-ReLU-10 in dlib's DNN API
// (loss_multiclass_log<fc<10, relu<fc<128, relu<fc<256, input<matrix<float>>>>>>>>), trained
// step by step without dnn_trainer: net.compute_parameter_gradients() (which is forward, then
// loss.compute_loss_value_and_gradient(), then back_propagate_error(), dlib's own public sequence)
// and net.update_parameters() with one dlib::sgd per layer. Same workloads and data as graft's
// bench_mlp and bench_finetune; single thread (no dnn_trainer thread, OpenBLAS pinned to 1).
//   W1  training step, SGD momentum 0.9, lr 0.01, no weight decay, batch 64 (items/s = samples/s)
//   W2  inference, batch 1 (latency) and batch 256 (throughput): to_tensor + forward (logits)
//   W3  the LeNet-5-like CNN (con_, max_pool, fc; loss_multiclass_log) on the same 28x28 matrices:
//       training step as W1, batch-1 inference as W2
//   W4  fine-tuning step with the two lower fc layers frozen by learning-rate multiplier 0, dlib's
//       freezing mechanism: update_parameters() skips them, but back_propagate_error() still
//       computes their parameter gradients and the gradient down to the input
#include <dlib/dnn.h>
#include <dlib/revision.h>

#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "peer_common.hpp"

namespace {

using peers::kIn;

// clang-format off
using net_type = dlib::loss_multiclass_log<
                 dlib::fc<peers::kOut,
                 dlib::relu<dlib::fc<peers::kH2,
                 dlib::relu<dlib::fc<peers::kH1,
                 dlib::input<dlib::matrix<float>>>>>>>>;
// clang-format on

// A k x k convolution, stride 1, with explicit padding. dlib's con<> leaves the padding to con_'s
// default, which is k/2 ("same") at stride 1: right for the first conv, not for the second.
template <long num_filters, long k, int padding, class SUBNET> using con_pad =
    dlib::add_layer<dlib::con_<num_filters, k, k, 1, 1, padding, padding>, SUBNET>;
template <class SUBNET> using pool2 = dlib::max_pool<2, 2, 2, 2, SUBNET>;  // default padding 0

// W3's LeNet: 28x28 -> con 6 (padding 2) 28x28 -> pool 14x14 -> con 16 (no padding) 10x10 ->
// pool 5x5 -> fc 120 -> fc 84 -> fc 10 (fc flattens its 16x5x5 input).
// clang-format off
using lenet_type = dlib::loss_multiclass_log<
                   dlib::fc<peers::kOut,
                   dlib::relu<dlib::fc<peers::kF2,
                   dlib::relu<dlib::fc<peers::kF1,
                   pool2<dlib::relu<con_pad<peers::kC2, peers::kKernel, 0,
                   pool2<dlib::relu<con_pad<peers::kC1, peers::kKernel, peers::kPad1,
                   dlib::input<dlib::matrix<float>>>>>>>>>>>>>>;
// clang-format on

// rows 28x28 images holding the shared synthetic data (input<matrix<float>> takes matrices).
std::vector<dlib::matrix<float>> images(int rows, std::uint64_t seed) {
  const auto v = peers::uniform_pixels(std::size_t(rows) * kIn, seed);
  std::vector<dlib::matrix<float>> out(rows, dlib::matrix<float>(peers::kSide, peers::kSide));
  for (int r = 0; r < rows; ++r)
    std::copy_n(v.begin() + std::ptrdiff_t(r) * kIn, kIn, out[r].begin());
  return out;
}

template <class Net> void train_bench(benchmark::State& state, bool frozen2) {
  constexpr int B = peers::kTrainBatch;
  Net net;
  // dlib's sgd(weight_decay, momentum): v = momentum*v - lr*grad; p += v.
  std::vector<dlib::sgd> solvers(Net::num_computational_layers, dlib::sgd(0.0f, peers::kMomentum));
  if (frozen2) {
    // In the MLP, layer<1> is fc<10> (the head); everything from layer<2> down is the frozen
    // backbone.
    dlib::set_all_learning_rate_multipliers(dlib::layer<2>(net), 0.0);
  }
  const auto x_images = images(B, peers::kSeedTrain);
  const auto y = peers::cyclic_labels<unsigned long>(B);
  dlib::resizable_tensor x;
  net.to_tensor(x_images.begin(), x_images.end(), x);  // once: the data is resident, as graft's
  for (auto _ : state) {
    benchmark::DoNotOptimize(net.compute_parameter_gradients(x, y.begin()));
    net.update_parameters(solvers, peers::kLr);
  }
  peers::set_samples(state, B);
}

void BM_W1_train_step_batch64(benchmark::State& state) { train_bench<net_type>(state, false); }
void BM_W3_lenet_train_step_batch64(benchmark::State& state) {
  train_bench<lenet_type>(state, false);
}
void BM_W4_finetune_frozen2_batch64(benchmark::State& state) { train_bench<net_type>(state, true); }

template <class Net, int B> void BM_inference(benchmark::State& state) {
  Net net;
  const auto x_images = images(B, peers::kSeedInfer);
  dlib::resizable_tensor x;
  net.to_tensor(x_images.begin(), x_images.end(), x);
  net.forward(x);  // dlib allocates and initialises the parameters on the first forward
  for (auto _ : state) {
    // As graft's benchmark: copy the input in, then forward (to the logits).
    net.to_tensor(x_images.begin(), x_images.end(), x);
    const dlib::tensor& logits = net.forward(x);
    benchmark::DoNotOptimize(logits.host());
    benchmark::ClobberMemory();
  }
  peers::set_samples(state, B);
}

BENCHMARK(BM_W1_train_step_batch64)->Name("W1_train_step_batch64");
BENCHMARK(BM_inference<net_type, 1>)->Name("W2_inference_batch1");
BENCHMARK(BM_inference<net_type, 256>)->Name("W2_inference_batch256");
BENCHMARK(BM_W3_lenet_train_step_batch64)->Name("W3_lenet_train_step_batch64");
BENCHMARK(BM_inference<lenet_type, 1>)->Name("W3_lenet_inference_batch1");
BENCHMARK(BM_W4_finetune_frozen2_batch64)->Name("W4_finetune_frozen2_batch64");

}  // namespace

int main(int argc, char** argv) {
  const bool blas_pinned = peers::pin_openblas_to_one_thread();
  benchmark::AddCustomContext("peer", "dlib " + std::to_string(DLIB_MAJOR_VERSION) + "." +
                                          std::to_string(DLIB_MINOR_VERSION));
  benchmark::AddCustomContext("peer_threads", blas_pinned ? "1 (OpenBLAS pinned)" : "1");
  peers::report_openblas("bench_peer_dlib");  // DLIB_USE_BLAS: its tensor products call sgemm
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
