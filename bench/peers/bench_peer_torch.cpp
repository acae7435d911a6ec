// Peer benchmark: the MLP 784-256-ReLU-128-ReLU-10 in LibTorch (torch::nn::Linear, torch::relu,
// torch::nn::functional::cross_entropy, torch::optim::SGD), written the way the LibTorch docs
// teach, and the CNNs of W3 and W6 (torch::nn::Conv2d, torch::nn::BatchNorm2d). Same workloads
// and data as graft's bench_mlp, bench_finetune and (W6) bench_cnn; one thread: intra-op
// and inter-op pools set to 1, and the OpenBLAS that Debian's LibTorch calls for GEMM pinned to 1.
//   W1  training step, SGD momentum 0.9, lr 0.01, batch 64 (items/s = samples/s)
//   W2  inference under torch::InferenceMode, batch 1 (latency) and batch 256 (throughput)
//   W3  the LeNet-5-like CNN (torch::nn::Conv2d, torch::max_pool2d, torch::nn::Linear) on the
//       inputs as [batch, 1, 28, 28] images: training step as W1, batch-1 inference as W2
//   W4  fine-tuning step with fc1 and fc2 frozen: requires_grad=false on their parameters, the
//       optimiser only sees fc3, and the frozen part runs under torch::NoGradGuard (no autograd
//       graph is recorded below the head)
//   W6  the small ResNet of graft's examples/support/backbones.hpp (graft's bench_cnn runs the
//       same workloads under the same names): 3x3 stem convolution without bias, batch norm,
//       ReLU, 2x2 max-pool (16 x 14 x 14), three basic blocks (16 channels at 14 x 14, 32 at
//       7 x 7, 64 at 4 x 4; the last two stride 2 and take a 1x1 projection with batch norm on
//       the shortcut), global average pooling, dense 10. Training step as W1 with the batch norms
//       in training mode (batch statistics, running averages updated); batch-1 inference as W2
//       (eval mode: running averages, under torch::InferenceMode)
//   W7  the char-CNN of graft's text demo (graft's bench_text runs the same workloads under the
//       same names): torch::nn::Embedding(128, 32, padding_idx 0), the [B, L, C] embeddings
//       transposed to [B, C, L] for torch::nn::Conv1d (channels-first; the transpose is in the
//       forward, so it is timed, as users pay it), Conv1d(32, 64, 3, padding 1), ReLU,
//       Conv1d(64, 64, 3, padding 1), ReLU, the max over time of the word's positions
//       (masked_fill of the padded positions with -inf, then amax), Linear(64, 64), ReLU,
//       Linear(64, 10). Every position is computed, padding included (graft's token model skips
//       it: its W7u rows compute every position too). Training step at batch 64 with
//       torch::optim::Adam (lr 1e-3); batch-1 inference as W2, one word per iteration, cycling
//       through 64 words
//   W8  the tiny transformer (graft's bench_text, §6.1's tiny BERT with dropout 0) on the same
//       ids: torch::nn::Embedding(128, 64, padding_idx 0) plus a learned position embedding
//       (torch::nn::Embedding(16, 64), added), torch::nn::LayerNorm(64), two
//       torch::nn::TransformerEncoderLayer(64, 4) with dim_feedforward 128, dropout 0 and GELU
//       (post-norm, as BERT), src_key_padding_mask from the pad ids, the mean over the word's
//       positions (padded positions zeroed, divided by the length), Linear(64, 10). LibTorch
//       1.13's C++ TransformerEncoderLayer has no batch_first: it takes [L, B, D], so the forward
//       transposes the [B, L, D] embeddings once per batch (timed, as users pay it) and pools over
//       dim 0. Every position is computed (graft's W8 computes the word's positions only; its W8u
//       rows compute every position too). Training step and batch-1 inference as W7
#include <ATen/Version.h>
#include <ATen/native/ConvUtils.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
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

// W6's ResNet: graft's backbones::resnet with classifier<10>.
inline constexpr int kStage1 = 16, kStage2 = 32, kStage3 = 64;  // channels of the three stages
inline constexpr std::int64_t kResnetParameters = 77'754;       // graft's count (bench_cnn.cpp)
// graft's batch_norm has PyTorch's defaults (eps 1e-5, momentum 0.1, running variance updated with
// the unbiased batch variance); set explicitly so that the match is visible here.
inline constexpr double kBnEps = 1e-5, kBnMomentum = 0.1;

// graft: conv2d<Out, 3, pad<1>, stride<Stride>, no_bias>.
torch::nn::Conv2d conv3x3(int in, int out, int stride) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}
torch::nn::BatchNorm2d batch_norm(int channels) {
  return torch::nn::BatchNorm2d(
      torch::nn::BatchNorm2dOptions(channels).eps(kBnEps).momentum(kBnMomentum));
}

// graft's backbones::basic_block<Out, Stride>: conv3x3, batch norm, ReLU, conv3x3, batch norm,
// plus the shortcut: the identity when the shape is kept, else the projection graft infers
// (conv2d<Out, 1, stride<Stride>, no_bias> and batch_norm, since the block has batch norms). The
// ReLU after the sum is the caller's, as in graft's stack.
struct BasicBlockImpl : torch::nn::Module {
  BasicBlockImpl(int in, int out, int stride)
      : conv1(register_module("conv1", conv3x3(in, out, stride))),
        bn1(register_module("bn1", batch_norm(out))),
        conv2(register_module("conv2", conv3x3(out, out, 1))),
        bn2(register_module("bn2", batch_norm(out))) {
    if (in != out || stride != 1) {
      proj = register_module(
          "proj",
          torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)));
      proj_bn = register_module("proj_bn", batch_norm(out));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto h = bn2->forward(conv2->forward(torch::relu(bn1->forward(conv1->forward(x)))));
    return h + (proj ? proj_bn->forward(proj->forward(x)) : x);
  }

  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
  torch::nn::Conv2d proj{nullptr};  // the shortcut's projection, when there is one
  torch::nn::BatchNorm2d proj_bn{nullptr};
};
TORCH_MODULE(BasicBlock);

struct ResnetImpl : torch::nn::Module {
  ResnetImpl()
      : stem(register_module("stem", conv3x3(1, kStage1, 1))),
        stem_bn(register_module("stem_bn", batch_norm(kStage1))),
        block1(register_module("block1", BasicBlock(kStage1, kStage1, 1))),
        block2(register_module("block2", BasicBlock(kStage1, kStage2, 2))),
        block3(register_module("block3", BasicBlock(kStage2, kStage3, 2))),
        fc(register_module("fc", torch::nn::Linear(kStage3, kOut))) {}

  // x: [batch, 1, 28, 28]; returns the logits.
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::max_pool2d(torch::relu(stem_bn->forward(stem->forward(x))), peers::kPool);
    h = torch::relu(block1->forward(h));  // 16 x 14 x 14
    h = torch::relu(block2->forward(h));  // 32 x 7 x 7
    h = torch::relu(block3->forward(h));  // 64 x 4 x 4
    return fc->forward(torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1));
  }

  std::int64_t parameter_count() {
    std::int64_t n = 0;
    for (const auto& p : parameters()) n += p.numel();
    return n;
  }

  torch::nn::Conv2d stem;
  torch::nn::BatchNorm2d stem_bn;
  BasicBlock block1, block2, block3;
  torch::nn::Linear fc;
};
TORCH_MODULE(Resnet);

// W7's char-CNN.
inline constexpr std::int64_t kCharCnnParameters = 26'816 + 650;  // graft's (bench_text.cpp)

struct CharCnnImpl : torch::nn::Module {
  using Conv = torch::nn::Conv1dOptions;  // (in_channels, out_channels, kernel_size)
  CharCnnImpl()
      : embed(register_module(
            "embed",
            torch::nn::Embedding(
                torch::nn::EmbeddingOptions(peers::kVocab, peers::kEmbed).padding_idx(0)))),
        conv1(register_module(
            "conv1",
            torch::nn::Conv1d(
                Conv(peers::kEmbed, peers::kConv, peers::kConvKernel).padding(peers::kConvPad)))),
        conv2(register_module(
            "conv2",
            torch::nn::Conv1d(
                Conv(peers::kConv, peers::kConv, peers::kConvKernel).padding(peers::kConvPad)))),
        fc(register_module("fc", torch::nn::Linear(peers::kConv, peers::kTextDense))),
        out(register_module("out", torch::nn::Linear(peers::kTextDense, kOut))) {}

  // ids: [batch, 16] int64, pad 0 after each word; returns the logits.
  torch::Tensor forward(const torch::Tensor& ids) {
    const auto pad = ids.eq(0).unsqueeze(1);       // [B, 1, L]
    auto h = embed->forward(ids).transpose(1, 2);  // [B, L, C] -> [B, C, L]
    h = torch::relu(conv2->forward(torch::relu(conv1->forward(h))));
    h = h.masked_fill(pad, -std::numeric_limits<float>::infinity()).amax(2);  // [B, C]
    return out->forward(torch::relu(fc->forward(h)));
  }

  std::int64_t parameter_count() {
    std::int64_t n = 0;
    for (const auto& p : parameters()) n += p.numel();
    return n;
  }

  torch::nn::Embedding embed;
  torch::nn::Conv1d conv1, conv2;
  torch::nn::Linear fc, out;
};
TORCH_MODULE(CharCnn);

// W8's tiny transformer.
inline constexpr std::int64_t kTinyBertParameters = 76'288 + 650;  // graft's (bench_text.cpp)

struct TinyBertImpl : torch::nn::Module {
  TinyBertImpl()
      : embed(register_module(
            "embed",
            torch::nn::Embedding(
                torch::nn::EmbeddingOptions(peers::kVocab, peers::kBertWidth).padding_idx(0)))),
        position(
            register_module("position", torch::nn::Embedding(peers::kTokens, peers::kBertWidth))),
        norm(register_module(
            "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({peers::kBertWidth})))),
        encoder1(register_module("encoder1", torch::nn::TransformerEncoderLayer(layer_options()))),
        encoder2(register_module("encoder2", torch::nn::TransformerEncoderLayer(layer_options()))),
        out(register_module("out", torch::nn::Linear(peers::kBertWidth, kOut))),
        positions(register_buffer("positions", torch::arange(peers::kTokens, torch::kInt64))) {}

  static torch::nn::TransformerEncoderLayerOptions layer_options() {
    return torch::nn::TransformerEncoderLayerOptions(peers::kBertWidth, peers::kBertHeads)
        .dim_feedforward(peers::kBertFeedForward)
        .dropout(0)
        .activation(torch::kGELU);
  }

  // ids: [batch, 16] int64, pad 0 after each word; returns the logits.
  torch::Tensor forward(const torch::Tensor& ids) {
    const auto pad = ids.eq(0);  // [B, L], true: padding
    auto h = norm->forward(embed->forward(ids) + position->forward(positions));  // [B, L, D]
    h = h.transpose(0, 1);  // [L, B, D]: no batch_first
    h = encoder2->forward(encoder1->forward(h, {}, pad), {}, pad);
    const auto valid = pad.logical_not().transpose(0, 1).unsqueeze(2).to(h.scalar_type());
    const auto mean = (h * valid).sum(0) / valid.sum(0);  // [B, D]
    return out->forward(mean);
  }

  std::int64_t parameter_count() {
    std::int64_t n = 0;
    for (const auto& p : parameters()) n += p.numel();
    return n;
  }

  torch::nn::Embedding embed, position;
  torch::nn::LayerNorm norm;
  torch::nn::TransformerEncoderLayer encoder1, encoder2;
  torch::nn::Linear out;
  torch::Tensor positions;
};
TORCH_MODULE(TinyBert);

// [rows, 16] int64 ids: the words of graft's bench_text for this seed.
torch::Tensor token_ids(int rows, std::uint64_t seed) {
  auto v = peers::token_ids<std::int64_t>(std::size_t(rows), seed);
  return torch::from_blob(v.data(), {rows, peers::kTokens}, torch::kInt64).clone();
}

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

void BM_W6_resnet_train_step_batch64(benchmark::State& state) {
  torch::manual_seed(0);
  Resnet net;  // training mode: batch statistics
  if (net->parameter_count() != kResnetParameters) {
    state.SkipWithError("the ResNet's parameter count is not graft's");
    return;
  }
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

void BM_W6_resnet_inference_batch1(benchmark::State& state) {
  torch::manual_seed(0);
  Resnet net;
  net->eval();  // batch norms on their running averages
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

// A training step (Adam lr 1e-3, cross-entropy) of W7's or W8's Net at batch 64 on the shared ids;
// Net's parameter count must be graft's.
template <class Net, std::int64_t Parameters> void text_train_steps(benchmark::State& state) {
  constexpr int B = peers::kTrainBatch;
  torch::manual_seed(0);
  Net net;
  if (net->parameter_count() != Parameters) {
    state.SkipWithError("the model's parameter count is not graft's");
    return;
  }
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(peers::kAdamLr));
  const auto x = token_ids(B, peers::kSeedTrain);
  const auto y = labels(B);
  for (auto _ : state) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.template item<float>());
  }
  peers::set_samples(state, B);
}

// Batch-1 inference (eval mode, InferenceMode) of W7's or W8's Net, one word per iteration.
template <class Net> void text_inference_batch1(benchmark::State& state) {
  constexpr int N = peers::kTextInferSamples, L = peers::kTokens;
  torch::manual_seed(0);
  Net net;
  net->eval();
  torch::InferenceMode inference;
  const auto data = peers::token_ids<std::int64_t>(N, peers::kSeedInfer);
  auto x = torch::empty({1, L}, torch::kInt64);
  int i = 0;
  for (auto _ : state) {
    // As W2: copy the input (one word) in, then forward.
    std::memcpy(x.data_ptr<std::int64_t>(), data.data() + std::size_t(i) * L,
                L * sizeof(std::int64_t));
    const torch::Tensor logits = net->forward(x);
    benchmark::DoNotOptimize(logits.data_ptr<float>());
    benchmark::ClobberMemory();
    i = i + 1 == N ? 0 : i + 1;
  }
  peers::set_samples(state, 1);
}

// What computes the convolutions of W3 and W6: the backend LibTorch's dispatch selects for each
// convolution (at::native::select_conv_backend, the function at::convolution itself asks) for the
// batch-64 training step (autograd on) and for batch-1 inference (InferenceMode). "oneDNN" is
// Mkldnn; "Slow2d" is LibTorch's own im2col and BLAS sgemm.
std::string backend_name(at::native::ConvBackend b) {
  using at::native::ConvBackend;
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
}

// A convolution of a network: its module, the shape of its input image, its stride and padding.
struct ConvSite {
  std::string name;
  torch::nn::Conv2d conv;
  std::int64_t channels, side, stride, pad;
};

// The backends of the convolutions at this batch size: one name when they all get the same,
// otherwise each backend with the convolutions that get it.
std::string backends(const std::vector<ConvSite>& sites, std::int64_t batch) {
  std::vector<std::pair<std::string, std::string>> groups;  // backend, its convolutions
  for (const auto& s : sites) {
    const auto x = torch::zeros({batch, s.channels, s.side, s.side});
    const auto b = backend_name(
        at::native::select_conv_backend(x, s.conv->weight, s.conv->bias, {s.stride, s.stride},
                                        {s.pad, s.pad}, {1, 1}, false, {0, 0}, 1));
    auto g =
        std::find_if(groups.begin(), groups.end(), [&](const auto& e) { return e.first == b; });
    if (g == groups.end())
      groups.emplace_back(b, s.name);
    else
      g->second += ", " + s.name;
  }
  if (groups.size() == 1) return groups[0].first;
  std::string out;
  for (const auto& [b, convs] : groups) out += (out.empty() ? "" : ", ") + b + " (" + convs + ")";
  return out;
}

// W7's two Conv1d at this batch size, on the transposed embeddings as the forward passes them.
std::string conv1d_backends(CharCnn& net, std::int64_t batch) {
  std::string names[2];
  int k = 0;
  for (auto* conv : {&net->conv1, &net->conv2}) {
    const std::int64_t in = (*conv)->options.in_channels();
    const auto x = torch::zeros({batch, peers::kTokens, in}).transpose(1, 2);
    names[k++] = backend_name(at::native::select_conv_backend(
        x, (*conv)->weight, (*conv)->bias, {1}, {peers::kConvPad}, {1}, false, {0}, 1));
  }
  return names[0] == names[1] ? names[0] : names[0] + " (conv1), " + names[1] + " (conv2)";
}

std::string conv_backends() {
  torch::manual_seed(0);
  Lenet lenet;
  Resnet resnet;
  const std::vector<ConvSite> lenet_sites = {{"conv1", lenet->conv1, 1, peers::kSide, 1, kPad1},
                                             {"conv2", lenet->conv2, kC1, peers::kSide1, 1, 0}};
  constexpr std::int64_t s1 = peers::kSide1, s2 = (s1 + 1) / 2;  // 14, 7: the blocks' inputs
  std::vector<ConvSite> resnet_sites = {{"stem", resnet->stem, 1, peers::kSide, 1, 1}};
  auto add_block = [&](const std::string& name, BasicBlock& block, std::int64_t in,
                       std::int64_t side, std::int64_t stride) {
    const std::int64_t out = block->conv1->options.out_channels();
    resnet_sites.push_back({name + ".conv1", block->conv1, in, side, stride, 1});
    resnet_sites.push_back({name + ".conv2", block->conv2, out, (side - 1) / stride + 1, 1, 1});
    if (block->proj) resnet_sites.push_back({name + ".proj", block->proj, in, side, stride, 0});
  };
  add_block("block1", resnet->block1, kStage1, s1, 1);
  add_block("block2", resnet->block2, kStage1, s1, 2);
  add_block("block3", resnet->block3, kStage2, s2, 2);
  const std::string lenet_training = backends(lenet_sites, peers::kTrainBatch);
  const std::string resnet_training = backends(resnet_sites, peers::kTrainBatch);
  CharCnn charcnn;
  const std::string charcnn_training = conv1d_backends(charcnn, peers::kTrainBatch);
  torch::InferenceMode inference;
  return "W3 LeNet training batch 64: " + lenet_training +
         ", inference batch 1: " + backends(lenet_sites, 1) +
         "; W6 ResNet training batch 64: " + resnet_training +
         ", inference batch 1: " + backends(resnet_sites, 1) +
         "; W7 char-CNN (Conv1d) training batch 64: " + charcnn_training +
         ", inference batch 1: " + conv1d_backends(charcnn, 1);
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
BENCHMARK(BM_W6_resnet_train_step_batch64)->Name("W6_resnet_train_step_batch64");
BENCHMARK(BM_W6_resnet_inference_batch1)->Name("W6_resnet_inference_batch1");
BENCHMARK(text_train_steps<CharCnn, kCharCnnParameters>)->Name("W7_charcnn_train_step_batch64");
BENCHMARK(text_inference_batch1<CharCnn>)->Name("W7_charcnn_inference_batch1");
BENCHMARK(text_train_steps<TinyBert, kTinyBertParameters>)
    ->Name("W8_transformer_train_step_batch64");
BENCHMARK(text_inference_batch1<TinyBert>)->Name("W8_transformer_inference_batch1");

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
