// Cross-framework fine-tuning: a backbone pre-trained in PyTorch, fine-tuned in graft.
//
// The MLP 784-256-128 + 5-way head pre-trained on MNIST digits 0-4 by
// `tools/torch_interop.py pretrain FILE` (safetensors, the state_dict names of the equivalent
// nn.Sequential: 1.*, 3.* backbone, 5.* head) is imported into g::model<mlp, g::classifier<5>>
// with import_backbone_safetensors, then fine-tuned on digits 5-9 with k images per class exactly
// as examples/transfer.cpp does: few_shot(k, seed{s}), a fresh classifier<5> head from
// attach(..., seed{s}), 300 steps of SGD (momentum 0.9) with batch min(64, 5k), lr 0.1 for the
// linear probe (backbone frozen) and 0.01 for full fine-tuning, and training from scratch (same
// protocol, no pre-trained backbone) as a reference. Accuracy on all test images of 5-9, per seed
// and mean +- sample std; the last line is one JSON object, like `torch_interop.py finetune`'s, so
// that `./run torch` can put both side by side.
//
//   torch_finetune --weights FILE [--k 10] [--seeds 10] [--methods probe,full,scratch]
//
// k from 1 to 12 gives a batch of 5k (the whole few-shot set), k >= 13 a batch of 64.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <graft/graft.hpp>
#include <graft/io/safetensors.hpp>

#include <nlohmann/json.hpp>
#include "support/stats.hpp"

namespace g = graft;

using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;
using net_t = g::model<mlp, g::classifier<5>>;

namespace {
constexpr std::size_t total_steps = 300;
constexpr std::size_t max_small_k = 12;  // 5k < 64: the batch is the whole few-shot set

using examples::stats;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One seed of one method, as transfer.cpp's run_seed does it.
template <std::size_t B> double run_one(const std::string& method, std::size_t k, std::size_t s,
                                        const net_t& source, const g::data::dataset& pool,
                                        const g::data::dataset& test) {
  const g::sgd ft{.lr = 0.01f, .momentum = 0.9f};
  const g::sgd probe{.lr = 0.1f, .momentum = 0.9f};
  const auto train = pool.few_shot(k, g::seed{s});
  auto net = method == "scratch"
                 ? g::make_model<net_t>(g::seed{s})
                 : g::attach<g::classifier<5>>(std::make_unique<net_t>(source), g::seed{s});
  if (method == "probe")
    g::finetune<g::freeze::backbone>(*net, train, probe, g::steps{total_steps}, g::batch<B>,
                                     g::seed{s}, g::quiet);
  else  // "full" and "scratch": everything trains
    g::finetune<g::freeze::none>(*net, train, ft, g::steps{total_steps}, g::batch<B>, g::seed{s},
                                 g::quiet);
  return g::evaluate(*net, test).accuracy;
}

// run_one with batch<min(64, 5k)>: the batch is a template argument, so k = 1..12 are listed.
template <std::size_t K = 1>
double dispatch(const std::string& method, std::size_t k, std::size_t s, const net_t& source,
                const g::data::dataset& pool, const g::data::dataset& test) {
  if constexpr (K > max_small_k) {
    return run_one<64>(method, k, s, source, pool, test);
  } else {
    if (k == K) return run_one<5 * K>(method, k, s, source, pool, test);
    return dispatch<K + 1>(method, k, s, source, pool, test);
  }
}

const char* rule_name(g::safetensors_report::rule r) {
  return r == g::safetensors_report::rule::by_name ? "by name" : "in model order";
}
}  // namespace

int main(int argc, char** argv) {
  std::string weights, methods_arg = "probe,full,scratch";
  std::size_t k = 10, seeds = 10;
  bool ok = true;
  for (int i = 1; i < argc && ok; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      ok = false;
      break;
    }
    const std::string v = argv[++i];
    if (a == "--weights")
      weights = v;
    else if (a == "--k")
      k = std::stoul(v);
    else if (a == "--seeds")
      seeds = std::stoul(v);
    else if (a == "--methods")
      methods_arg = v;
    else
      ok = false;
  }
  std::vector<std::string> methods;
  std::stringstream list(methods_arg);
  for (std::string m; std::getline(list, m, ',');) {
    if (m != "probe" && m != "full" && m != "scratch") ok = false;
    methods.push_back(m);
  }
  if (!ok || weights.empty() || k == 0 || seeds == 0 || methods.empty()) {
    std::fprintf(stderr,
                 "usage: torch_finetune --weights FILE [--k 10] [--seeds 10] "
                 "[--methods probe,full,scratch]\n"
                 "  FILE: from `tools/torch_interop.py pretrain FILE` (the PyTorch MLP "
                 "784-256-128 + 5-way head, safetensors)\n");
    return 2;
  }
  try {
    const auto t_start = std::chrono::steady_clock::now();
    const auto mnist = g::data::mnist();
    const auto pool = mnist.train.only_classes({5, 6, 7, 8, 9}).relabeled();
    const auto target_test = mnist.test.only_classes({5, 6, 7, 8, 9}).relabeled();
    const auto source_test = mnist.test.only_classes({0, 1, 2, 3, 4});

    // The backbone, as every fine-tuning run starts from it: the head of `source` is replaced by
    // attach(..., seed{s}) per seed, so its initial value does not matter.
    auto source = g::make_model<net_t>(g::seed{0});
    const auto rep = g::import_backbone_safetensors(*source, weights);
    std::string unused;
    for (const auto& u : rep.unused) unused += (unused.empty() ? "" : ", ") + u;
    std::printf("imported the backbone %s from %s\n", net_t::backbone_description().c_str(),
                weights.c_str());
    std::printf("  rule: %s; %zu pairs:", rule_name(rep.matched_by), rep.pairs.size());
    for (const auto& [mine, theirs] : rep.pairs)
      std::printf(" %s<-%s", mine.c_str(), theirs.c_str());
    std::printf("\n  unused in the file: %s\n", unused.empty() ? "none" : unused.c_str());

    // Sanity check of the import: the whole source model (PyTorch's 5-way head included) on the
    // source task's test images; torch_interop.py pretrain prints its own figure for the same.
    auto whole = g::make_model<net_t>(g::seed{0});
    g::import_safetensors(*whole, weights);
    const double source_acc = g::evaluate(*whole, source_test).accuracy;
    std::printf(
        "  source check: the whole PyTorch model (head 5.*) in graft, test accuracy on %zu "
        "images of 0-4: %.2f%%\n\n",
        source_test.size(), 100 * source_acc);

    const std::size_t batch = std::min<std::size_t>(64, 5 * k);
    std::printf(
        "fine-tuning on digits 5-9, k=%zu per class (%zu images), %zu steps of SGD (momentum 0.9, "
        "batch %zu; lr 0.1 probe, 0.01 full and scratch), seeds 0..%zu; test accuracy on %zu "
        "images of 5-9\n",
        k, 5 * k, total_steps, batch, seeds - 1, target_test.size());
    std::map<std::string, stats> acc, secs;
    for (std::size_t s = 0; s < seeds; ++s) {
      std::printf("seed %zu:", s);
      for (const auto& m : methods) {
        const auto t0 = std::chrono::steady_clock::now();
        const double a = dispatch(m, k, s, *source, pool, target_test);
        acc[m].values.push_back(a);
        secs[m].values.push_back(seconds_since(t0));
        std::printf("  %s %.2f%% (%.2f s)", m.c_str(), 100 * a, secs[m].values.back());
      }
      std::printf("\n");
      std::fflush(stdout);
    }
    for (const auto& m : methods)
      std::printf("%-7s k=%zu: %.2f%% +- %.2f over %zu seeds (%.2f s per run)\n", m.c_str(), k,
                  100 * acc[m].mean(), 100 * acc[m].stddev(), seeds, secs[m].mean());
    const double total = seconds_since(t_start);
    std::printf("whole run %.1f s\n", total);

    nlohmann::ordered_json j;
    j["framework"] = "graft";
    j["k"] = k;
    j["seeds"] = seeds;
    j["steps"] = total_steps;
    j["batch"] = batch;
    j["test_images"] = target_test.size();
    j["weights"] = weights;
    j["import"] = {{"rule", rep.matched_by == g::safetensors_report::rule::by_name ? "by_name"
                                                                                   : "model_order"},
                   {"pairs", rep.pairs.size()},
                   {"unused", rep.unused}};
    j["source_accuracy"] = std::round(source_acc * 1e6) / 1e6;
    for (const auto& m : methods) {
      std::vector<double> r;
      for (double v : acc[m].values) r.push_back(std::round(v * 1e6) / 1e6);
      j["methods"][m] = {{"lr", m == "probe" ? 0.1 : 0.01},
                         {"accuracy", r},
                         {"mean", std::round(acc[m].mean() * 1e6) / 1e6},
                         {"std", std::round(acc[m].stddev() * 1e6) / 1e6},
                         {"seconds_per_run", std::round(secs[m].mean() * 1e3) / 1e3}};
    }
    j["seconds"] = std::round(total * 10) / 10;
    std::printf("%s\n", j.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "torch_finetune: %s\n", e.what());
    return 1;
  }
  return 0;
}
