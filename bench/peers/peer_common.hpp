// Shared by the peer benchmarks (bench_peer_*.cpp): the workloads' shapes, the synthetic data,
// single-thread pinning and the report of the OpenBLAS core a peer runs. Deliberately independent
// of graft, so that a peer's benchmark only pays for its own library; the data generator
// reproduces graft::splitmix64 bit for bit, so the inputs are the same numbers that graft's own
// benchmarks (bench_mlp.cpp, bench_finetune.cpp) use.
#pragma once
#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace peers {

// The MLP 784-256-ReLU-128-ReLU-10 (softmax cross-entropy) and the workloads' settings.
inline constexpr int kIn = 784, kH1 = 256, kH2 = 128, kOut = 10;
inline constexpr int kTrainBatch = 64;
inline constexpr float kLr = 0.01f, kMomentum = 0.9f;

// W3's LeNet-5-like CNN, on the same inputs read as 1 x 28 x 28 images: conv 5x5 kC1 padding 2
// ("same"), ReLU, max-pool 2 (14 x 14), conv 5x5 kC2 no padding (10 x 10), ReLU, max-pool 2
// (5 x 5), flatten (kFlat = 400), dense kF1, ReLU, dense kF2, ReLU, dense kOut (softmax
// cross-entropy). Same training settings as W1 (batch 64, SGD momentum 0.9, lr 0.01).
inline constexpr int kSide = 28, kKernel = 5, kPad1 = 2, kPool = 2;
inline constexpr int kC1 = 6, kC2 = 16, kF1 = 120, kF2 = 84;
inline constexpr int kSide1 = kSide / kPool;                   // 14, after the first pool
inline constexpr int kSide2 = (kSide1 - kKernel + 1) / kPool;  // 5, after the second pool
inline constexpr int kFlat = kC2 * kSide2 * kSide2;            // 400
static_assert(kSide * kSide == kIn && kFlat == 400);

// Seeds of graft's benchmarks: W1, W3 (training) and W4 inputs 1, W2 and W3 (inference) inputs 2,
// W5 operands 3 and 4.
inline constexpr std::uint64_t kSeedTrain = 1, kSeedInfer = 2, kSeedGemmA = 3, kSeedGemmB = 4;

// SplitMix64, as graft::splitmix64 (same constants, same 53-bit uniform01).
class splitmix64 {
 public:
  explicit splitmix64(std::uint64_t s) noexcept : state_(s) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double uniform01() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
};

// n floats uniform in [0, 1), row-major (sample after sample).
inline std::vector<float> uniform_pixels(std::size_t n, std::uint64_t seed) {
  splitmix64 rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.uniform01());
  return v;
}

// W7's char-CNN (docs/design/sequence_models.md §6.1, the text demo's backbone with a 10-class
// head): words of kTokens positions, vocabulary kVocab (id 0 is pad), embedding kEmbed, two 1-D
// convolutions of kConv filters (kernel kConvKernel, padding kConvPad: the length stays kTokens),
// ReLUs, max over the word's positions (the padding masked), dense kTextDense, ReLU, dense kOut
// (softmax cross-entropy). Training: batch kTrainBatch, Adam lr kAdamLr (betas 0.9, 0.999, eps
// 1e-8, no weight decay: graft's and PyTorch's defaults).
inline constexpr int kTokens = 16, kVocab = 128, kEmbed = 32, kConv = 64, kConvKernel = 3,
                     kConvPad = 1, kTextDense = 64;
inline constexpr float kAdamLr = 1e-3f;
// The ids: word lengths 3..16 drawn from the fixed histogram kLengthPercent (percent of the words
// of each length, mean 10.19 positions of 16, as the word lists' 10.2, §5.5), ids 1..kIds
// uniform (the printable characters of a vocabulary of that size), pad 0 after the word.
inline constexpr int kMinLength = 3, kIds = 93;
inline constexpr int kLengthPercent[] = {1, 2, 4, 6, 8, 9, 11, 12, 12, 11, 9, 6, 4, 5};  // 3..16
static_assert(kMinLength + int(std::size(kLengthPercent)) - 1 == kTokens && kIds < kVocab);
static_assert([] {
  int sum = 0;
  for (int p : kLengthPercent) sum += p;
  return sum;
}() == 100);
// W8's tiny transformer (§6.1's tiny BERT, dropout 0, 10-class head) on the same ids: embedding
// kVocab x kBertWidth plus a learned embedding per position, layer norm, two post-norm encoder
// layers (kBertHeads heads, feed-forward kBertFeedForward with GELU), the mean over the word's
// positions, dense kOut. Same training settings as W7.
inline constexpr int kBertWidth = 64, kBertHeads = 4, kBertFeedForward = 128;
// Batch-1 inference cycles through this many samples (one per iteration), so that its latency is
// the mean over the length histogram rather than one word's.
inline constexpr int kTextInferSamples = 64;

// rows samples of kTokens ids each (row-major), converted to Id (float for graft's input, int64
// for LibTorch's): the same numbers on every side for a seed.
template <class Id> std::vector<Id> token_ids(std::size_t rows, std::uint64_t seed) {
  splitmix64 rng(seed);
  std::vector<Id> v(rows * kTokens, Id(0));
  for (std::size_t r = 0; r < rows; ++r) {
    const auto u = static_cast<int>(rng.next() % 100);
    int length = kMinLength, below = kLengthPercent[0];
    while (u >= below) below += kLengthPercent[++length - kMinLength];
    for (int k = 0; k < length; ++k)
      v[r * kTokens + std::size_t(k)] = static_cast<Id>(1 + rng.next() % kIds);
  }
  return v;
}

// Labels i % 10, converted to whatever integer type the peer wants.
template <class Int = std::int64_t> std::vector<Int> cyclic_labels(std::size_t n) {
  std::vector<Int> y(n);
  for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<Int>(i % kOut);
  return y;
}

// Pins OpenBLAS to one thread if it is loaded in the process (LibTorch and dlib reach it through
// libblas.so.3 on Debian). Looked up at run time so that a peer needs no link-time dependency on
// OpenBLAS; returns false when no OpenBLAS is loaded (then there is nothing to pin).
inline bool pin_openblas_to_one_thread() {
  using set_threads_fn = void (*)(int);
  auto fn = reinterpret_cast<set_threads_fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (fn == nullptr) return false;
  fn(1);
  return true;
}

// The OpenBLAS core (the kernel set OpenBLAS chose at load time, e.g. "Haswell", "SkylakeX",
// "Cooperlake", "Zen", or "Prescott" when it falls back to generic SSE kernels) of the OpenBLAS
// loaded in this process, from openblas_get_corename() looked up at run time; nullptr when no
// OpenBLAS is loaded. OPENBLAS_CORETYPE in the environment overrides OpenBLAS's own choice
// (tools/bench_table.py sets it for the peers' processes).
inline const char* openblas_corename() {
  using corename_fn = char* (*)();
  auto fn = reinterpret_cast<corename_fn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  return fn == nullptr ? nullptr : fn();
}

// The shared library that defines `symbol` in this process (dladdr, symlinks resolved), e.g. which
// file's sgemm_ a peer calls through libblas.so.3; "none" when the symbol is not loaded.
inline std::string symbol_library(const char* symbol) {
  void* address = dlsym(RTLD_DEFAULT, symbol);
  Dl_info info{};
  if (address == nullptr || dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "none";
  char* real = realpath(info.dli_fname, nullptr);  // through the alternatives' symlinks
  std::string path = real != nullptr ? real : info.dli_fname;
  std::free(real);
  return path;
}

// Records which BLAS this peer runs: the benchmark contexts "openblas_core" (the core name, or
// "none") and "openblas_coretype_env" (OPENBLAS_CORETYPE as this process saw it, or "unset"),
// which tools/bench_table.py reads from the JSON output, and one line on stderr for a reader
// running the peer by hand. Call before benchmark::Initialize.
inline void report_openblas(const char* peer) {
  const char* core = openblas_corename();
  const char* env = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("openblas_core", core != nullptr ? core : "none");
  benchmark::AddCustomContext("openblas_coretype_env", env != nullptr ? env : "unset");
  if (core != nullptr)
    std::fprintf(stderr, "%s: OpenBLAS core %s (OPENBLAS_CORETYPE %s)\n", peer, core,
                 env != nullptr ? env : "unset");
  else
    std::fprintf(stderr, "%s: no OpenBLAS loaded\n", peer);
}

// items/s = samples/s.
inline void set_samples(benchmark::State& state, std::int64_t batch) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * batch);
}

// The "GFLOP/s" counter of graft's W5 benchmarks: 2*M*K*N per iteration, as a rate.
inline void set_gflops(benchmark::State& state, double m, double k, double n) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * k * n * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

}  // namespace peers
