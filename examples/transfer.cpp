// The transfer demo: supervised pre-training on MNIST digits 0-4, then fine-tuning on digits 5-9
// with k labelled images per class (k = 10, 100; seeds 0..9), comparing training from scratch with
// the fine-tuning methods graft offers, for two backbones: the MLP 784-256-128 and the
// LeNet-5-like CNN (--backbone all, the default), or the small ResNet with batch norm
// (--backbone resnet, which adds full fine-tuning with frozen batch-norm statistics). Prints, per
// backbone, a table and the learning curves of scratch vs full fine-tuning, and writes those
// curves as SVG charts.
//
//   transfer [--backbone mlp|cnn|all|resnet] [--seeds N] [--jobs N] [--plot PREFIX]
//            [--source PREFIX]
//
// --jobs runs that many seeds at a time (one thread each); the results do not depend on it, the
// wall time per run does (each run then shares the machine).
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <graft/graft.hpp>

#include "support/backbones.hpp"
#include "support/stats.hpp"
#include "support/svg_plot.hpp"

namespace g = graft;

using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;
using backbones::lenet;

namespace {
constexpr std::size_t total_steps = 300;
constexpr std::array<std::size_t, 4> checkpoints{25, 50, 100, 300};
constexpr std::size_t n_methods = 9;
const char* const methods[n_methods] = {
    "scratch", "linear probe",       "full fine-tuning",  "bias-only",      "freeze first 1",
    "LP-FT",   "gradual unfreezing", "discriminative lr", "frozen BN stats"};

using examples::stats;

// What one seed produces, per method: final accuracy, wall time, accuracy at the checkpoints.
struct seed_result {
  std::array<double, n_methods> accuracy{}, seconds{};
  std::array<std::array<double, checkpoints.size()>, n_methods> curve{};
};

struct result {  // aggregated over seeds, in seed order
  std::array<stats, n_methods> accuracy, seconds;
  std::array<std::array<stats, checkpoints.size()>, n_methods> curve;
};

template <class Net, std::size_t B>
seed_result run_seed(std::size_t k, std::size_t s, const Net& source, const g::data::dataset& pool,
                     const g::data::dataset& test) {
  const g::sgd ft{.lr = 0.01f, .momentum = 0.9f};
  const g::sgd probe{.lr = 0.1f, .momentum = 0.9f};
  const auto train = pool.few_shot(k, g::seed{s});
  seed_result out;
  for (std::size_t m = 0; m < n_methods; ++m) {
    const std::string method = methods[m];
    if (method == "frozen BN stats" && Net::buffer_scalars == 0) {  // no batch norm: not a method
      out.accuracy[m] = out.seconds[m] = std::nan("");
      continue;
    }
    auto net = method == "scratch"
                   ? g::make_model<Net>(g::seed{s})
                   : g::attach<g::classifier<5>>(std::make_unique<Net>(source), g::seed{s});
    const bool curves = method == "scratch" || method == "full fine-tuning";
    auto curve = g::on_step([&](const g::step_info& i) {
      for (std::size_t c = 0; c < checkpoints.size(); ++c)
        if (curves && i.step == checkpoints[c]) out.curve[m][c] = g::evaluate(*net, test).accuracy;
    });
    const auto t0 = std::chrono::steady_clock::now();
    const auto run = [&](auto policy, auto opt, auto... extra) {
      g::finetune<decltype(policy)>(*net, train, opt, g::steps{total_steps}, g::batch<B>,
                                    g::seed{s}, g::quiet, curve, extra...);
    };
    if (method == "scratch" || method == "full fine-tuning")
      run(g::freeze::none{}, ft);
    else if (method == "linear probe")
      run(g::freeze::backbone{}, probe);
    else if (method == "bias-only")
      run(g::freeze::bias_only{}, ft);
    else if (method == "freeze first 1")
      run(g::freeze::first<1>{}, ft);
    else if (method == "gradual unfreezing")
      run(g::freeze::none{}, ft, g::gradual_unfreezing{});
    else if (method == "discriminative lr")
      run(g::freeze::none{}, ft, g::discriminative_lr{2.6});
    else if (method == "frozen BN stats")  // full fine-tuning, running statistics kept
      run(g::freeze::statistics{}, ft);
    else if (method == "LP-FT")
      g::lp_ft(*net, train, probe, ft, g::probe_steps{total_steps / 2},
               g::full_steps{total_steps / 2}, g::batch<B>, g::seed{s}, g::quiet);
    out.seconds[m] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.accuracy[m] = g::evaluate(*net, test).accuracy;
  }
  return out;
}

template <class Net, std::size_t B> result run_k(std::size_t k, std::size_t seeds, std::size_t jobs,
                                                 const Net& source, const g::data::dataset& pool,
                                                 const g::data::dataset& test) {
  std::vector<seed_result> per_seed(seeds);
  std::vector<std::thread> workers;
  for (std::size_t j = 0; j < std::max<std::size_t>(1, jobs); ++j)
    workers.emplace_back([&, j] {
      for (std::size_t s = j; s < seeds; s += std::max<std::size_t>(1, jobs))
        per_seed[s] = run_seed<Net, B>(k, s, source, pool, test);
    });
  for (auto& w : workers) w.join();
  result res;
  for (const auto& r : per_seed)
    for (std::size_t m = 0; m < n_methods; ++m) {
      res.accuracy[m].values.push_back(r.accuracy[m]);
      res.seconds[m].values.push_back(r.seconds[m]);
      for (std::size_t c = 0; c < checkpoints.size(); ++c)
        res.curve[m][c].values.push_back(r.curve[m][c]);
    }
  return res;
}

template <class Backbone>
void run_backbone(const std::string& label, const g::data::split& mnist, std::size_t seeds,
                  std::size_t jobs, const std::string& plot, const std::string& source_file) {
  using Net = g::model<Backbone, g::classifier<5>>;
  const auto source = mnist.train.only_classes({0, 1, 2, 3, 4});
  const auto pool = mnist.train.only_classes({5, 6, 7, 8, 9}).relabeled();
  const auto target_test = mnist.test.only_classes({5, 6, 7, 8, 9}).relabeled();
  std::printf("== %s backbone: %s\n\n", label.c_str(), Net::backbone_description().c_str());

  auto net = g::make_model<Net>(g::seed{0});
  const auto rep = g::pretrain(*net, source, g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::epochs{5},
                               g::batch<64>, g::seed{0});
  g::save(*net, source_file);
  const auto src_eval = g::evaluate(*net, mnist.test.only_classes({0, 1, 2, 3, 4}));
  std::printf(
      "source task (%zu images of 0-4): 5 epochs in %.1f s, test accuracy on 0-4: %.2f%% (saved to "
      "%s)\n\n",
      source.size(), rep.seconds, 100 * src_eval.accuracy, source_file.c_str());
  // the source model as stored on disk: load_backbone into a fresh 5-way model
  auto source_model = g::make_model<Net>(g::seed{0});
  g::load_backbone(*source_model, source_file);

  std::map<std::size_t, result> results;
  results[10] = run_k<Net, 50>(10, seeds, jobs, *source_model, pool, target_test);
  results[100] = run_k<Net, 64>(100, seeds, jobs, *source_model, pool, target_test);

  std::printf(
      "target task (%s): 300 steps of SGD (momentum 0.9), batch min(64, 5k), lr 0.01 (probe 0.1); "
      "test accuracy on all %zu test images of 5-9, mean +- std over %zu seeds; wall time per "
      "run%s\n\n",
      label.c_str(), target_test.size(), seeds, jobs > 1 ? " (runs sharing the machine)" : "");
  std::printf(
      "| method             | k=10             | k=100            | time k=10 | time k=100 |\n");
  std::printf(
      "|--------------------|------------------|------------------|-----------|------------|\n");
  for (std::size_t m = 0; m < n_methods; ++m)
    if (!std::isnan(results[10].accuracy[m].mean()))
      std::printf("| %-18s | %6.2f%% +- %5.2f | %6.2f%% +- %5.2f | %7.3f s | %8.3f s |\n",
                  methods[m], 100 * results[10].accuracy[m].mean(),
                  100 * results[10].accuracy[m].stddev(), 100 * results[100].accuracy[m].mean(),
                  100 * results[100].accuracy[m].stddev(), results[10].seconds[m].mean(),
                  results[100].seconds[m].mean());

  std::printf("\nlearning curves (%s; test accuracy, mean over seeds)\n\n", label.c_str());
  std::printf("| k   | method           | 25 steps | 50 steps | 100 steps | 300 steps |\n");
  std::printf("|-----|------------------|----------|----------|-----------|-----------|\n");
  std::vector<examples::series> lines;
  for (std::size_t k : {10, 100})
    for (std::size_t m : {std::size_t{0}, std::size_t{2}}) {  // scratch, full fine-tuning
      std::printf("| %-3zu | %-16s |", k, methods[m]);
      examples::series sr{std::string(methods[m]) + ", k=" + std::to_string(k),
                          m == 0 ? "#d62728" : "#1f77b4",
                          {},
                          {},
                          {},
                          k == 10};
      for (std::size_t c = 0; c < checkpoints.size(); ++c) {
        const auto& st = results[k].curve[m][c];
        std::printf(" %7.2f%% |", 100 * st.mean());
        sr.x.push_back(static_cast<double>(checkpoints[c]));
        sr.y.push_back(st.mean());
        sr.err.push_back(st.stddev());
      }
      std::printf("\n");
      lines.push_back(sr);
    }
  examples::write_svg_chart(
      plot, "MNIST 5-9 after pre-training on 0-4 (" + label + "): scratch vs fine-tuning",
      "fine-tuning steps", "test accuracy (mean +- std over seeds)", lines, 0, 300, 0.0, 1.0);
  const double gain = results[10].accuracy[2].mean() - results[10].accuracy[0].mean();
  const double gain25 = results[10].curve[2][0].mean() - results[10].curve[0][0].mean();
  std::printf(
      "\n%s: full fine-tuning - scratch at k=10: %+.2f points after 300 steps, %+.2f points after "
      "25 steps; curves written to %s\n\n",
      label.c_str(), 100 * gain, 100 * gain25, plot.c_str());
}
}  // namespace

int main(int argc, char** argv) {
  std::size_t seeds = 10, jobs = 1;
  std::string backbone = "all", plot = "transfer_curves", source_prefix = "transfer_source";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--seeds")
      seeds = std::stoul(v);
    else if (a == "--jobs")
      jobs = std::stoul(v);
    else if (a == "--backbone")
      backbone = v;
    else if (a == "--plot")
      plot = v;
    else if (a == "--source")
      source_prefix = v;
    else {
      std::fprintf(stderr,
                   "usage: transfer [--backbone mlp|cnn|all|resnet] [--seeds N] [--jobs N] [--plot "
                   "PREFIX] [--source PREFIX]\n");
      return 2;
    }
  }
  try {
    const auto run_start = std::chrono::steady_clock::now();
    const auto mnist = g::data::mnist();
    std::printf(
        "graft transfer demo (MNIST): pre-train on digits 0-4, fine-tune a fresh 5-way head on "
        "digits 5-9 with k images per class\n\n");
    if (backbone == "mlp" || backbone == "all")
      run_backbone<mlp>("MLP", mnist, seeds, jobs, plot + "_mlp.svg", source_prefix + "_mlp.graft");
    if (backbone == "cnn" || backbone == "all")
      run_backbone<lenet>("CNN", mnist, seeds, jobs, plot + "_cnn.svg",
                          source_prefix + "_cnn.graft");
    if (backbone == "resnet")  // not in "all": about 10x the CNN's time
      run_backbone<backbones::resnet>("ResNet", mnist, seeds, jobs, plot + "_resnet.svg",
                                      source_prefix + "_resnet.graft");
    std::printf(
        "whole demo %.0f s\n",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
