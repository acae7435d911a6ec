// The text transfer demo with the char-CNN backbone (issue 16; docs/design/sequence_models.md
// §6): identify the language of a single word from its characters. Pre-train the char-CNN +
// classifier<10> on 10 source languages (20,000 words each, Adam lr 1e-3, batch 64, 5 epochs),
// then fine-tune a fresh 5-way head on 5 languages never seen in pre-training with k = 10, 100
// words per class (seeds 0..9, 300 steps): scratch, linear probe, full fine-tuning, frozen
// embedding and LP-FT. Prints the tables (examples/support/text_transfer.hpp) and writes the
// learning curves as an SVG chart. The data: the Debian word lists under /usr/share/dict, split as
// examples/support/wordlang.hpp defines (and cached).
//
//   text_cnn [--seeds N] [--jobs N] [--plot PREFIX] [--source PREFIX] [--words DIR]
//            [--cache FILE] [--smoke]
//
// --plot PREFIX writes PREFIX_cnn.svg, --source PREFIX saves the pre-trained model to
// PREFIX_cnn.graft (vocabulary included). --jobs runs that many seeds at a time (one thread each);
// the results do not depend on it. --smoke: the tiny lists of tests/fixtures/words/smoke (or
// --words), 40 training words per source language, 2 seeds, 20 steps: the whole pipeline in
// seconds (the ctest text_smoke).
#include <chrono>
#include <cstdio>
#include <string>

#include <graft/graft.hpp>

#include "support/text_transfer.hpp"
#include "support/wordlang.hpp"

namespace g = graft;

using tokens = g::input_tokens<16, 128>;
using char_cnn =
    g::stack<tokens, g::embedding<128, 32>, g::conv1d<64, 3, g::pad<1>>, g::relu,
             g::conv1d<64, 3, g::pad<1>>, g::relu, g::global_max_pool_time, g::dense<64>, g::relu>;
static_assert(char_cnn::parameter_count == 26'816);

int main(int argc, char** argv) {
  text_transfer::config cfg;
  std::string plot = "text_curves", source = "text_source", words = "/usr/share/dict", cache;
  bool smoke = false, seeds_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--smoke") {
      smoke = true;
      continue;
    }
    if (i + 1 >= argc || (a != "--seeds" && a != "--jobs" && a != "--plot" && a != "--source" &&
                          a != "--words" && a != "--cache")) {
      std::fprintf(stderr,
                   "usage: text_cnn [--seeds N] [--jobs N] [--plot PREFIX] [--source PREFIX] "
                   "[--words DIR] [--cache FILE] [--smoke]\n");
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--seeds") {
      cfg.seeds = std::stoul(v);
      seeds_given = true;
    } else if (a == "--jobs") {
      cfg.jobs = std::stoul(v);
    } else if (a == "--plot") {
      plot = v;
    } else if (a == "--source") {
      source = v;
    } else if (a == "--words") {
      words = v;
    } else if (a == "--cache") {
      cache = v;
    }
  }
  wordlang::sizes sizes;
  if (smoke) {
    if (words == "/usr/share/dict") words = "tests/fixtures/words/smoke";
    if (cache.empty()) cache = "build/text/wordlang_smoke.tsv";
    sizes = {.source_train = 40, .source_test = 10, .target_test = 10, .target_pool = 30};
    if (!seeds_given) cfg.seeds = 2;
    cfg.steps = 20;
  } else if (cache.empty()) {
    cache = "build/text/wordlang.tsv";
  }
  cfg.plot = plot + "_cnn.svg";
  cfg.source_file = source + "_cnn.graft";
  try {
    const auto t0 = std::chrono::steady_clock::now();
    std::printf(
        "graft text transfer demo: the language of a word from its characters; pre-train on 10 "
        "languages, fine-tune a fresh 5-way head on 5 unseen ones with k words per class%s\n\n",
        smoke ? " (SMOKE RUN: tiny lists)" : "");
    const auto split = wordlang::load(words, cache, sizes);
    const auto data = wordlang::tokenized(split, tokens::length);
    wordlang::print_summary(split, data);
    text_transfer::run<char_cnn>("char-CNN", data, cfg);
    std::printf("whole demo %.0f s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
