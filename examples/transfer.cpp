// The transfer demo: supervised pre-training on MNIST digits 0-4, then fine-tuning on digits 5-9
// with k labelled images per class (k = 10, 100; seeds 0..9), comparing training from scratch with
// the fine-tuning methods graft offers. Prints a table and the learning curves of scratch vs full
// fine-tuning, and writes those curves as an SVG chart.
//
//   transfer [--seeds N] [--plot FILE] [--source FILE]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <graft/graft.hpp>

#include "support/svg_plot.hpp"

namespace g = graft;

using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;
using net_t = g::model<mlp, g::classifier<5>>;

namespace {
constexpr std::size_t total_steps = 300;
constexpr std::size_t checkpoints[] = {25, 50, 100, 300};

struct stats {
  std::vector<double> values;
  double mean() const {
    double s = 0;
    for (double v : values) s += v;
    return values.empty() ? 0 : s / static_cast<double>(values.size());
  }
  double stddev() const {  // sample standard deviation
    if (values.size() < 2) return 0;
    const double m = mean();
    double s = 0;
    for (double v : values) s += (v - m) * (v - m);
    return std::sqrt(s / static_cast<double>(values.size() - 1));
  }
};

struct result {
  std::map<std::string, stats> accuracy, seconds;
  std::map<std::string, std::map<std::size_t, stats>> curve;  // method -> step -> accuracy
};

const char* const methods[] = {
    "scratch",        "linear probe", "full fine-tuning",   "bias-only",
    "freeze first 1", "LP-FT",        "gradual unfreezing", "discriminative lr"};

template <std::size_t B> void run_k(std::size_t k, std::size_t seeds, const net_t& source,
                                    const g::data::dataset& pool, const g::data::dataset& test,
                                    result& res) {
  const g::sgd ft{.lr = 0.01f, .momentum = 0.9f};
  const g::sgd probe{.lr = 0.1f, .momentum = 0.9f};
  for (std::size_t s = 0; s < seeds; ++s) {
    const auto train = pool.few_shot(k, g::seed{s});
    auto pretrained = [&] {
      return g::attach<g::classifier<5>>(std::make_unique<net_t>(source), g::seed{s});
    };
    for (const std::string method : methods) {
      auto net = method == "scratch" ? g::make_model<net_t>(g::seed{s}) : pretrained();
      auto curve = g::on_step([&](const g::step_info& i) {
        for (std::size_t c : checkpoints)
          if (i.step == c && (method == "scratch" || method == "full fine-tuning"))
            res.curve[method][c].values.push_back(g::evaluate(*net, test).accuracy);
      });
      const auto t0 = std::chrono::steady_clock::now();
      const auto common = [&](auto policy, auto opt, auto... extra) {
        g::finetune<decltype(policy)>(*net, train, opt, g::steps{total_steps}, g::batch<B>,
                                      g::seed{s}, g::quiet, curve, extra...);
      };
      if (method == "scratch" || method == "full fine-tuning")
        common(g::freeze::none{}, ft);
      else if (method == "linear probe")
        common(g::freeze::backbone{}, probe);
      else if (method == "bias-only")
        common(g::freeze::bias_only{}, ft);
      else if (method == "freeze first 1")
        common(g::freeze::first<1>{}, ft);
      else if (method == "gradual unfreezing")
        common(g::freeze::none{}, ft, g::gradual_unfreezing{});
      else if (method == "discriminative lr")
        common(g::freeze::none{}, ft, g::discriminative_lr{2.6});
      else if (method == "LP-FT")
        g::lp_ft(*net, train, probe, ft, total_steps / 2, total_steps / 2, g::batch<B>, g::seed{s},
                 g::quiet);
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      res.accuracy[method].values.push_back(g::evaluate(*net, test).accuracy);
      res.seconds[method].values.push_back(secs);
    }
    if (g::stderr_is_terminal())
      std::fprintf(stderr, "\r  k=%zu: seed %zu/%zu done", k, s + 1, seeds);
  }
  if (g::stderr_is_terminal()) std::fprintf(stderr, "\n");
}
}  // namespace

int main(int argc, char** argv) {
  std::size_t seeds = 10;
  std::string plot = "transfer_curves.svg", source_file = "transfer_source_mlp.graft";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--seeds")
      seeds = std::stoul(v);
    else if (a == "--plot")
      plot = v;
    else if (a == "--source")
      source_file = v;
    else {
      std::fprintf(stderr, "usage: transfer [--seeds N] [--plot FILE] [--source FILE]\n");
      return 2;
    }
  }
  try {
    const auto run_start = std::chrono::steady_clock::now();
    const auto mnist = g::data::mnist();
    const auto source = mnist.train.only_classes({0, 1, 2, 3, 4});
    const auto pool = mnist.train.only_classes({5, 6, 7, 8, 9}).relabeled();
    const auto target_test = mnist.test.only_classes({5, 6, 7, 8, 9}).relabeled();
    std::printf(
        "graft transfer demo (MNIST): pre-train on digits 0-4 (%zu images), fine-tune on "
        "digits 5-9 with k images per class, test on all %zu test images of 5-9\n",
        source.size(), target_test.size());
    std::printf("backbone: %s\n\n", net_t::backbone_description().c_str());

    auto net = g::make_model<net_t>(g::seed{0});
    const auto rep = g::pretrain(*net, source, g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::epochs{5},
                                 g::batch<64>, g::seed{0});
    g::save(*net, source_file);
    const auto src_eval = g::evaluate(*net, mnist.test.only_classes({0, 1, 2, 3, 4}));
    std::printf(
        "source task: 5 epochs in %.1f s, test accuracy on digits 0-4: %.2f%% (saved to %s)\n\n",
        rep.seconds, 100 * src_eval.accuracy, source_file.c_str());

    // the source model as stored on disk: load_backbone into a fresh 5-way model
    auto source_model = g::make_model<net_t>(g::seed{0});
    g::load_backbone(*source_model, source_file);

    std::map<std::size_t, result> results;
    run_k<50>(10, seeds, *source_model, pool, target_test, results[10]);
    run_k<64>(100, seeds, *source_model, pool, target_test, results[100]);

    std::printf(
        "target task, 300 steps of SGD (momentum 0.9), batch min(64, 5k), lr 0.01 (probe 0.1); "
        "test accuracy, mean +- std over %zu seeds; wall time per run\n\n",
        seeds);
    std::printf(
        "| method             | k=10             | k=100            | time k=10 | time k=100 |\n");
    std::printf(
        "|--------------------|------------------|------------------|-----------|------------|\n");
    for (const std::string m : methods)
      std::printf("| %-18s | %6.2f%% +- %5.2f | %6.2f%% +- %5.2f | %7.3f s | %8.3f s |\n",
                  m.c_str(), 100 * results[10].accuracy[m].mean(),
                  100 * results[10].accuracy[m].stddev(), 100 * results[100].accuracy[m].mean(),
                  100 * results[100].accuracy[m].stddev(), results[10].seconds[m].mean(),
                  results[100].seconds[m].mean());

    std::printf("\nlearning curves (test accuracy, mean over seeds)\n\n");
    std::printf("| k   | method           | 25 steps | 50 steps | 100 steps | 300 steps |\n");
    std::printf("|-----|------------------|----------|----------|-----------|-----------|\n");
    std::vector<examples::series> lines;
    for (std::size_t k : {10, 100})
      for (const std::string m : {"scratch", "full fine-tuning"}) {
        auto& c = results[k].curve[m];
        std::printf("| %-3zu | %-16s |", k, m.c_str());
        examples::series sr{m + ", k=" + std::to_string(k),
                            m == "scratch" ? "#d62728" : "#1f77b4",
                            {},
                            {},
                            {},
                            k == 10};
        for (std::size_t step : checkpoints) {
          std::printf(" %7.2f%% |", 100 * c[step].mean());
          sr.x.push_back(static_cast<double>(step));
          sr.y.push_back(c[step].mean());
          sr.err.push_back(c[step].stddev());
        }
        std::printf("\n");
        lines.push_back(sr);
      }
    examples::write_svg_chart(plot, "MNIST 5-9 after pre-training on 0-4: scratch vs fine-tuning",
                              "fine-tuning steps", "test accuracy (mean +- std over seeds)", lines,
                              0, 300, 0.0, 1.0);
    const double k10_gain =
        results[10].accuracy["full fine-tuning"].mean() - results[10].accuracy["scratch"].mean();
    const double k10_gain25 =
        results[10].curve["full fine-tuning"][25].mean() - results[10].curve["scratch"][25].mean();
    std::printf(
        "\nfull fine-tuning - scratch at k=10: %+.2f points after 300 steps, %+.2f points after 25 "
        "steps\n",
        100 * k10_gain, 100 * k10_gain25);
    std::printf(
        "curves written to %s; whole demo %.0f s\n", plot.c_str(),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
