// The text transfer protocol of issue 16 (docs/design/sequence_models.md §6.2), templated on the
// backbone: pre-train Backbone + classifier<10> on the 10 source languages, then fine-tune a fresh
// 5-way head on the 5 target languages with k words per class (k = 10, 100; seeds 0..N-1),
// comparing training from scratch with the fine-tuning methods, and print the tables: accuracy
// (mean +- sample std over seeds) and wall time per run, the paired difference method - scratch
// (same seed), learning curves of scratch and full fine-tuning, per-language accuracy at k = 100;
// and write the curves as an SVG chart. run<Backbone, LoraBackbone> adds a sixth method, LoRA: the
// pre-trained backbone copied into LoraBackbone (the same with lora<dense<N>, R> layers) by
// with_adapters, trained with freeze::adapters_only.
//
// Every method sees the same token ids: the vocabulary is the source training words', assigned
// to the scratch model too, and read back from the pre-trained weight file for the others.
#pragma once
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <graft/data/tokenizer.hpp>
#include <graft/graft.hpp>

#include "stats.hpp"
#include "svg_plot.hpp"
#include "wordlang.hpp"

namespace text_transfer {
namespace g = graft;

struct config {
  std::size_t seeds = 10;
  std::size_t steps = 300;  ///< fine-tuning steps per run
  std::size_t epochs = 5;   ///< pre-training epochs
  std::size_t jobs = 1;     ///< seeds run at a time (one thread each)
  std::string plot;         ///< the chart's path
  std::string source_file;  ///< where the pre-trained model is saved
  bool epoch_log = false;   ///< print the pre-training loss and time after every epoch
  std::string lora_note;    ///< printed under the target task's header (what LoRA adapts)
};

inline constexpr std::size_t n_methods = 6;  ///< the sixth, LoRA, only with a LoRA backbone
inline const char* const methods[n_methods] = {
    "scratch", "linear probe", "full fine-tuning", "frozen embedding", "LP-FT", "LoRA"};
inline constexpr std::size_t scratch = 0, full = 2, lora = 5;
/// run<Backbone>'s default second argument: no LoRA method.
struct no_adapters {};
inline constexpr std::size_t n_checkpoints = 4;

/// 25, 50, 100, 300 for 300 steps.
inline std::array<std::size_t, n_checkpoints> checkpoints_of(std::size_t steps) {
  return {std::max<std::size_t>(1, steps / 12), std::max<std::size_t>(1, steps / 6),
          std::max<std::size_t>(1, steps / 3), steps};
}

struct seed_result {  // one seed, per method
  std::array<double, n_methods> accuracy{}, seconds{};
  std::array<std::array<double, n_checkpoints>, n_methods> curve{};
  std::array<std::array<double, wordlang::n_target>, n_methods> per_language{};
};

struct result {  // over seeds, in seed order
  std::vector<seed_result> seeds;
  examples::stats accuracy(std::size_t m) const {
    examples::stats s;
    for (const auto& r : seeds) s.values.push_back(r.accuracy[m]);
    return s;
  }
  examples::stats seconds(std::size_t m) const {
    examples::stats s;
    for (const auto& r : seeds) s.values.push_back(r.seconds[m]);
    return s;
  }
  examples::stats curve(std::size_t m, std::size_t c) const {
    examples::stats s;
    for (const auto& r : seeds) s.values.push_back(r.curve[m][c]);
    return s;
  }
  examples::stats per_language(std::size_t m, std::size_t l) const {
    examples::stats s;
    for (const auto& r : seeds) s.values.push_back(r.per_language[m][l]);
    return s;
  }
  /// method - scratch, seed by seed
  examples::stats paired(std::size_t m) const {
    examples::stats s;
    for (const auto& r : seeds) s.values.push_back(r.accuracy[m] - r.accuracy[scratch]);
    return s;
  }
};

/// Accuracy per class from an evaluation's confusion matrix.
inline std::array<double, wordlang::n_target> per_class(const g::evaluation& e) {
  std::array<double, wordlang::n_target> a{};
  for (std::size_t c = 0; c < wordlang::n_target; ++c) {
    std::size_t row = 0;
    for (std::size_t p = 0; p < wordlang::n_target; ++p) row += e.confusion_at(c, p);
    a[c] = row == 0 ? 0.0 : static_cast<double>(e.confusion_at(c, c)) / static_cast<double>(row);
  }
  return a;
}

template <class Net, class LoraNet, std::size_t B>
seed_result run_seed(std::size_t k, std::size_t s, const config& cfg, const Net& source,
                     const g::text::char_vocabulary& vocabulary, const g::data::dataset& pool,
                     const g::data::dataset& test) {
  const g::adam ft{.lr = 1e-3f};
  const g::adam probe{.lr = 1e-2f};
  const auto checkpoints = checkpoints_of(cfg.steps);
  const auto train = pool.few_shot(k, g::seed{s});
  seed_result out;
  for (std::size_t m = 0; m < lora; ++m) {
    const std::string method = methods[m];
    std::unique_ptr<Net> net;
    if (m == scratch) {  // a fresh model that reads the ids as the source model does
      net = g::make_model<Net>(g::seed{s});
      vocabulary.assign_to(*net);
    } else {
      net = g::attach<typename Net::head_type>(std::make_unique<Net>(source), g::seed{s});
    }
    const bool curves = m == scratch || m == full;
    double in_curves = 0;  // evaluation time inside the run, not counted in its wall time
    auto curve = g::on_step([&](const g::step_info& i) {
      for (std::size_t c = 0; c < checkpoints.size(); ++c)
        if (curves && i.step == checkpoints[c]) {
          const auto e0 = std::chrono::steady_clock::now();
          out.curve[m][c] = g::evaluate(*net, test).accuracy;
          in_curves += std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
        }
    });
    const auto t0 = std::chrono::steady_clock::now();
    const auto run = [&](auto policy, auto opt) {
      g::finetune<decltype(policy)>(*net, train, opt, g::steps{cfg.steps}, g::batch<B>, g::seed{s},
                                    g::quiet, curve);
    };
    if (m == scratch || m == full)
      run(g::freeze::none{}, ft);
    else if (method == "linear probe")
      run(g::freeze::backbone{}, probe);
    else if (method == "frozen embedding")  // token (and positional) embeddings
      run(g::freeze::embeddings{}, ft);
    else if (method == "LP-FT")
      g::lp_ft(*net, train, probe, ft, g::probe_steps{cfg.steps / 2},
               g::full_steps{cfg.steps - cfg.steps / 2}, g::batch<B>, g::seed{s}, g::quiet);
    out.seconds[m] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() - in_curves;
    const auto ev = g::evaluate(*net, test);
    out.accuracy[m] = ev.accuracy;
    out.per_language[m] = per_class(ev);
  }
  if constexpr (!std::is_void_v<LoraNet>) {  // the adapters on a fresh head, as attach gives
    const auto base = g::attach<typename Net::head_type>(std::make_unique<Net>(source), g::seed{s});
    auto net = g::with_adapters<LoraNet>(*base, g::seed{s});
    const auto t0 = std::chrono::steady_clock::now();
    g::finetune<g::freeze::adapters_only>(*net, train, ft, g::steps{cfg.steps}, g::batch<B>,
                                          g::seed{s}, g::quiet);
    out.seconds[lora] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto ev = g::evaluate(*net, test);
    out.accuracy[lora] = ev.accuracy;
    out.per_language[lora] = per_class(ev);
  }
  return out;
}

template <class Net, class LoraNet, std::size_t B>
result run_k(std::size_t k, const config& cfg, const Net& source,
             const g::text::char_vocabulary& vocabulary, const g::data::dataset& pool,
             const g::data::dataset& test) {
  result res;
  res.seeds.resize(cfg.seeds);
  const std::size_t jobs = std::max<std::size_t>(1, cfg.jobs);
  std::vector<std::thread> workers;
  std::exception_ptr failed;
  std::mutex m;
  for (std::size_t j = 0; j < jobs; ++j)
    workers.emplace_back([&, j] {
      try {
        for (std::size_t s = j; s < cfg.seeds; s += jobs)
          res.seeds[s] = run_seed<Net, LoraNet, B>(k, s, cfg, source, vocabulary, pool, test);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(m);
        failed = std::current_exception();
      }
    });
  for (auto& w : workers) w.join();
  if (failed) std::rethrow_exception(failed);
  return res;
}

inline std::string pct(const examples::stats& s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f%% ± %.2f", 100 * s.mean(), 100 * s.stddev());
  return buf;
}

/// Pre-trains, fine-tunes, prints the tables and writes the chart (see the top of this file).
template <class Backbone, class LoraBackbone = no_adapters>
void run(const std::string& label, const wordlang::datasets& d, const config& cfg) {
  using source_net = g::model<Backbone, g::classifier<wordlang::n_source>>;
  using target_net = g::model<Backbone, g::classifier<wordlang::n_target>>;
  constexpr bool with_lora = !std::is_same_v<LoraBackbone, no_adapters>;
  using lora_net =
      std::conditional_t<with_lora, g::model<LoraBackbone, g::classifier<wordlang::n_target>>,
                         void>;
  constexpr std::size_t count = with_lora ? n_methods : lora;  // methods shown
  std::printf("== %s backbone: %s (%zu parameters; + classifier<10> %zu, classifier<5> %zu)\n\n",
              label.c_str(), target_net::backbone_description().c_str(), Backbone::parameter_count,
              source_net::parameter_count - Backbone::parameter_count,
              target_net::parameter_count - Backbone::parameter_count);

  // ---- pre-training on the source languages ----------------------------------------------------
  {
    auto net = g::make_model<source_net>(g::seed{0});
    d.vocabulary.assign_to(*net);  // saved with the weights
    const auto epoch = g::on_epoch([&](const g::epoch_info& e) {
      if (cfg.epoch_log)
        std::printf("pre-training epoch %zu/%zu: mean training loss %.4f, %.1f s since the start\n",
                    e.epoch + 1, cfg.epochs, e.mean_loss, e.seconds);
      std::fflush(stdout);
    });
    const auto rep = g::pretrain(*net, d.source_train, g::adam{.lr = 1e-3f}, g::epochs{cfg.epochs},
                                 g::batch<64>, g::seed{0}, epoch);
    g::save(*net, cfg.source_file);
    const auto ev = g::evaluate(*net, d.source_test);
    std::printf(
        "source task (%zu words of %zu languages): %zu epochs of Adam (lr 1e-3, batch 64) in %.1f "
        "s "
        "(%.0f samples/s), final loss %.4f; test accuracy on the %zu source test words: %.2f%% "
        "(saved to %s)\n",
        d.source_train.size(), wordlang::n_source, cfg.epochs, rep.seconds,
        rep.samples_per_second(), rep.final_loss, d.source_test.size(), 100 * ev.accuracy,
        cfg.source_file.c_str());
    std::printf("source test accuracy per language:");
    for (std::size_t c = 0; c < wordlang::n_source; ++c) {
      std::size_t row = 0;
      for (std::size_t p = 0; p < wordlang::n_source; ++p) row += ev.confusion_at(c, p);
      std::printf(
          " %s %.1f%%%s", wordlang::languages[c].name,
          row == 0 ? 0.0
                   : 100.0 * static_cast<double>(ev.confusion_at(c, c)) / static_cast<double>(row),
          c + 1 < wordlang::n_source ? "," : "\n\n");
    }
  }
  // the source model as stored on disk: its backbone (and vocabulary) in a fresh 5-way model
  auto source = g::make_model<target_net>(g::seed{0});
  g::load_backbone(*source, cfg.source_file);
  const auto vocabulary = g::text::char_vocabulary::of(*source);
  if (vocabulary != d.vocabulary)
    throw std::runtime_error("text_transfer: the vocabulary loaded from " + cfg.source_file +
                             " is not the one the data were tokenized with");

  const auto t0 = std::chrono::steady_clock::now();
  std::map<std::size_t, result> res;
  res[10] =
      run_k<target_net, lora_net, 50>(10, cfg, *source, vocabulary, d.target_pool, d.target_test);
  res[100] =
      run_k<target_net, lora_net, 64>(100, cfg, *source, vocabulary, d.target_pool, d.target_test);
  const double grid = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto checkpoints = checkpoints_of(cfg.steps);

  std::printf(
      "target task (%s): a fresh 5-way head on %zu unseen languages with k words per class; %zu "
      "steps of Adam, batch min(64, 5k), lr 1e-3 (linear probe 1e-2; LP-FT = %zu probe steps at "
      "1e-2, then %zu at 1e-3); test accuracy on all %zu target test words, mean ± sample std over "
      "%zu seeds; wall time per run%s (the grid: %.0f s)\n\n",
      label.c_str(), wordlang::n_target, cfg.steps, cfg.steps / 2, cfg.steps - cfg.steps / 2,
      d.target_test.size(), cfg.seeds,
      (cfg.jobs > 1 ? " (" + std::to_string(cfg.jobs) + " runs at a time)" : std::string()).c_str(),
      grid);
  if (!cfg.lora_note.empty()) std::printf("%s\n\n", cfg.lora_note.c_str());
  std::printf("| method | k=10 | k=100 | time k=10 / k=100 |\n|---|---|---|---|\n");
  for (std::size_t m = 0; m < count; ++m)
    std::printf("| %s | %s | %s | %.3f / %.3f s |\n", methods[m], pct(res[10].accuracy(m)).c_str(),
                pct(res[100].accuracy(m)).c_str(), res[10].seconds(m).mean(),
                res[100].seconds(m).mean());

  std::printf(
      "\npaired difference, method - scratch on the same seed (the same k-shot words in the "
      "same batch order), in points: mean ± sample std of the %zu differences (seeds where the "
      "method is ahead)\n\n",
      cfg.seeds);
  std::printf("| method | k=10 | k=100 |\n|---|---|---|\n");
  for (std::size_t m = 1; m < count; ++m) {
    std::printf("| %s |", methods[m]);
    for (std::size_t k : {10, 100}) {
      const auto p = res[k].paired(m);
      std::size_t ahead = 0;
      for (double v : p.values) ahead += v > 0 ? 1 : 0;
      std::printf(" %+.2f ± %.2f (%zu/%zu) |", 100 * p.mean(), 100 * p.stddev(), ahead,
                  p.values.size());
    }
    std::printf("\n");
  }

  std::printf("\nlearning curves (%s; test accuracy, mean over seeds)\n\n", label.c_str());
  std::printf("| k | method |");
  for (std::size_t c : checkpoints) std::printf(" %zu steps |", c);
  std::printf("\n|---|---|---|---|---|---|\n");
  std::vector<examples::series> lines;
  for (std::size_t k : {10, 100})
    for (std::size_t m : {scratch, full}) {
      std::printf("| %zu | %s |", k, methods[m]);
      examples::series sr{std::string(methods[m]) + ", k=" + std::to_string(k),
                          m == scratch ? "#d62728" : "#1f77b4",
                          {},
                          {},
                          {},
                          k == 10};
      for (std::size_t c = 0; c < checkpoints.size(); ++c) {
        const auto st = res[k].curve(m, c);
        std::printf(" %.2f%% |", 100 * st.mean());
        sr.x.push_back(static_cast<double>(checkpoints[c]));
        sr.y.push_back(st.mean());
        sr.err.push_back(st.stddev());
      }
      std::printf("\n");
      lines.push_back(sr);
    }
  examples::write_svg_chart(
      cfg.plot, "5 languages unseen in pre-training (" + label + "): scratch vs fine-tuning",
      "fine-tuning steps", "test accuracy (mean +- std over seeds)", lines, 0,
      static_cast<double>(cfg.steps), 0.0, 1.0);

  std::printf(
      "\nper target language, k=100 (test accuracy on its %zu test words, mean ± sample std over "
      "seeds; unknown: its test words with a character the source vocabulary lacks)\n\n",
      d.target_test.size() / wordlang::n_target);
  std::printf(
      "| language | scratch | full fine-tuning | full - scratch (paired) | unknown |\n"
      "|---|---|---|---|---|\n");
  for (std::size_t l = 0; l < wordlang::n_target; ++l) {
    examples::stats diff;
    for (const auto& r : res[100].seeds)
      diff.values.push_back(r.per_language[full][l] - r.per_language[scratch][l]);
    std::size_t with = 0, n = 0;
    for (std::size_t i = 0; i < d.target_test.size(); ++i)
      if (d.target_test.labels[i] == static_cast<std::int32_t>(l)) {
        ++n;
        const float* x = d.target_test.sample(i);
        for (std::size_t j = 0; j < d.target_test.sample_size(); ++j)
          if (x[j] == static_cast<float>(g::text::char_vocabulary::unknown)) {
            ++with;
            break;
          }
      }
    std::printf("| %s | %s | %s | %+.2f ± %.2f | %.1f%% |\n",
                wordlang::languages[wordlang::n_source + l].name,
                pct(res[100].per_language(scratch, l)).c_str(),
                pct(res[100].per_language(full, l)).c_str(), 100 * diff.mean(), 100 * diff.stddev(),
                n == 0 ? 0.0 : 100.0 * static_cast<double>(with) / static_cast<double>(n));
  }
  const auto gain = res[10].paired(full), gain100 = res[100].paired(full);
  std::printf(
      "\n%s: full fine-tuning - scratch after %zu steps: %+.2f points at k=10, %+.2f at k=100; "
      "after %zu steps: %+.2f and %+.2f; curves written to %s\n\n",
      label.c_str(), cfg.steps, 100 * gain.mean(), 100 * gain100.mean(), checkpoints[0],
      100 * (res[10].curve(full, 0).mean() - res[10].curve(scratch, 0).mean()),
      100 * (res[100].curve(full, 0).mean() - res[100].curve(scratch, 0).mean()), cfg.plot.c_str());
}

}  // namespace text_transfer
