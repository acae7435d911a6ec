// Google Benchmark: the char-CNN (W7) and the tiny transformer (W8) of the text demos
// (docs/design/sequence_models.md §6.1 and §6.4, with a 10-class head), float32, one thread
// (whatever GRAFT_THREADS says), items/s = samples/s:
//   W7_charcnn_train_step_batch64   a training step at batch 64, Adam lr 1e-3
//   W7_charcnn_inference_batch1     batch-1 inference, one word per iteration (the input copied
//                                   in, as W2), cycling through 64 words
//   W8_transformer_train_step_batch64, W8_transformer_inference_batch1: the same for §6.1's
//                                   tiny BERT (two post-norm encoder layers, D 64, 4 heads, FF
//                                   128), with dropout 0 (left out) on both sides
// on input_tokens<16, 128>: each word's padding (id 0 after it) is skipped exactly by the
// convolutions and the max over time (layers/conv1d.hpp, layers/sequence_pool.hpp). The W7u rows
// are the same layers on input<16>: no masks, every position computed, as PyTorch computes them.
// W8 likewise: on input_tokens the attention reads the word's rows only and the other layers
// compute its rows only; W8u is the same layers on input<16> with the same ids (every position a
// query and a key, as PyTorch computes them; PyTorch then masks the padded keys).
// bench/peers/bench_peer_torch.cpp runs W7 and W8 under the same names (same ids, labels, batch,
// optimiser and item counting: bench/peers/peer_common.hpp), and tools/bench_table.py pairs them,
// with W7u and W8u as graft-only variants of W7 and W8.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include <graft/graft.hpp>

#include "peers/peer_common.hpp"

namespace g = graft;

namespace {
template <class Input> using char_cnn =
    g::stack<Input, g::embedding<128, 32>, g::conv1d<64, 3, g::pad<1>>, g::relu,
             g::conv1d<64, 3, g::pad<1>>, g::relu, g::global_max_pool_time, g::dense<64>, g::relu>;
using tokens = g::input_tokens<16, 128>;
using cnn10 = g::model<char_cnn<tokens>, g::classifier<10>>;                 // masked (W7)
using cnn10_unmasked = g::model<char_cnn<g::input<16>>, g::classifier<10>>;  // W7u
// §6.1's count; the LibTorch peer checks that its model has as many parameters (+ the head's 650).
static_assert(char_cnn<tokens>::parameter_count == 26'816);
static_assert(peers::kTokens == 16 && peers::kVocab == 128);

// §6.1's tiny BERT with dropout 0 (maybe_dropout<0> is no layer: the benchmark measures the
// arithmetic, as the peer's dropout(0)).
template <class Input> using tiny_bert =
    g::stack<Input, g::embedding<128, 64>, g::positional_embedding, g::layer_norm,
             g::post_norm_encoder<64, 4, 128, 0>, g::post_norm_encoder<64, 4, 128, 0>,
             g::global_mean_pool_time>;
using bert10 = g::model<tiny_bert<tokens>, g::classifier<10>>;                 // masked (W8)
using bert10_unmasked = g::model<tiny_bert<g::input<16>>, g::classifier<10>>;  // W8u
// §6.1's count (8,192 + 1,024 + 128 + 2 x 33,472); the peer checks it (+ the head's 650).
static_assert(tiny_bert<tokens>::parameter_count == 76'288);
static_assert(peers::kBertWidth == 64 && peers::kBertHeads == 4 && peers::kBertFeedForward == 128);

struct threads_scope {  // the benchmark's thread count, the previous one afterwards
  explicit threads_scope(int n) : previous_(g::parallel::threads()) { g::parallel::set_threads(n); }
  ~threads_scope() { g::parallel::set_threads(previous_); }
  threads_scope(const threads_scope&) = delete;
  threads_scope& operator=(const threads_scope&) = delete;

 private:
  int previous_;
};

template <class Net> void BM_text_step(benchmark::State& state) {
  threads_scope one(1);
  constexpr std::size_t B = peers::kTrainBatch;
  auto net = g::make_model<Net>(g::seed{0});
  auto t = std::make_unique<g::trainer<Net, B, g::adam>>(*net, g::adam{.lr = peers::kAdamLr});
  const auto x = peers::token_ids<float>(B, peers::kSeedTrain);
  std::copy(x.begin(), x.end(), t->input());
  const auto y = peers::cyclic_labels<std::int32_t>(B);
  for (auto _ : state) benchmark::DoNotOptimize(t->step(y.data(), B));
  peers::set_samples(state, B);
}

template <class Net> void BM_text_inference_batch1(benchmark::State& state) {
  threads_scope one(1);
  constexpr std::size_t L = peers::kTokens, N = peers::kTextInferSamples;
  auto net = g::make_model<Net>(g::seed{0});
  auto r = std::make_unique<g::runner<Net, 1>>();
  const auto x = peers::token_ids<float>(N, peers::kSeedInfer);
  std::size_t i = 0;
  for (auto _ : state) {
    std::copy_n(x.begin() + static_cast<std::ptrdiff_t>(i * L), L, r->input());
    benchmark::DoNotOptimize(r->forward(*net, 1));
    i = i + 1 == N ? 0 : i + 1;
  }
  peers::set_samples(state, 1);
}

BENCHMARK(BM_text_step<cnn10>)->Name("W7_charcnn_train_step_batch64");
BENCHMARK(BM_text_inference_batch1<cnn10>)->Name("W7_charcnn_inference_batch1");
BENCHMARK(BM_text_step<cnn10_unmasked>)->Name("W7u_charcnn_train_step_batch64");
BENCHMARK(BM_text_inference_batch1<cnn10_unmasked>)->Name("W7u_charcnn_inference_batch1");
BENCHMARK(BM_text_step<bert10>)->Name("W8_transformer_train_step_batch64");
BENCHMARK(BM_text_inference_batch1<bert10>)->Name("W8_transformer_inference_batch1");
BENCHMARK(BM_text_step<bert10_unmasked>)->Name("W8u_transformer_train_step_batch64");
BENCHMARK(BM_text_inference_batch1<bert10_unmasked>)->Name("W8u_transformer_inference_batch1");
}  // namespace

BENCHMARK_MAIN();
