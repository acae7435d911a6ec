// The text transfer demo with a tiny transformer backbone (issue 16; docs/design/sequence_models.md
// §6.1): identify the language of a single word from its characters. The backbone is BERT's shape
// in miniature: token embedding 64 + learned positions, LayerNorm, dropout 10%, two post-norm
// encoder layers (4 heads, feed-forward 128, GELU, dropout 10%), masked mean over the word's
// characters. Pre-train it + classifier<10> on 10 source languages (20,000 words each, Adam lr
// 1e-3, batch 64, 5 epochs), then fine-tune a fresh 5-way head on 5 languages never seen in
// pre-training with k = 10, 100 words per class (seeds 0..9, 300 steps): scratch, linear probe,
// full fine-tuning, frozen embedding (token and positional), LP-FT and LoRA (rank-4 adapters on the
// two feed-forward layers of each encoder layer; not on the attention projections, which graft
// cannot adapt yet). The protocol and tables are the char-CNN's
// (examples/support/text_transfer.hpp). Slower than the char-CNN by far: ./run demo runs it only
// under GRAFT_DEMO_TRANSFORMER=1.
//
//   text_transformer [--seeds N] [--jobs N] [--epochs N] [--plot PREFIX] [--source PREFIX]
//                    [--words DIR] [--cache FILE] [--smoke]
//
// --plot PREFIX writes PREFIX_transformer.svg, --source PREFIX saves the pre-trained model to
// PREFIX_transformer.graft (vocabulary included). --jobs runs that many seeds at a time (one
// thread each); the results do not depend on it. --epochs sets the pre-training epochs (5; fewer
// only to measure the cost). Every pre-training epoch prints its loss and time. --smoke: the tiny
// lists of tests/fixtures/words/smoke (or --words), 40 training words per source language, 2 seeds,
// 20 steps: the whole pipeline in seconds (the ctest text_transformer_smoke).
#include <chrono>
#include <cstdio>
#include <string>

#include <graft/graft.hpp>

#include "support/text_transfer.hpp"
#include "support/wordlang.hpp"

namespace g = graft;

using tokens = g::input_tokens<16, 128>;
using tiny_bert = g::stack<tokens, g::embedding<128, 64>, g::positional_embedding, g::layer_norm,
                           g::dropout<10>, g::post_norm_encoder<64, 4, 128, 10>,
                           g::post_norm_encoder<64, 4, 128, 10>, g::global_mean_pool_time>;
static_assert(tiny_bert::parameter_count == 76'288);
// the same with rank-4 LoRA adapters on the attention's query and value projections and on both
// feed-forward layers of each encoder layer
using tiny_bert_lora =
    g::stack<tokens, g::embedding<128, 64>, g::positional_embedding, g::layer_norm, g::dropout<10>,
             g::post_norm_encoder_lora<64, 4, 128, 4, 10, g::lora_qv<4>>,
             g::post_norm_encoder_lora<64, 4, 128, 4, 10, g::lora_qv<4>>, g::global_mean_pool_time>;
// per encoder layer: q and v (4 x 64 + 64 x 4 each), W1 (4 x 64 + 128 x 4), W2 (4 x 128 + 64 x 4)
static_assert(tiny_bert_lora::parameter_count ==
              tiny_bert::parameter_count +
                  std::size_t{2} * (2 * 4 * (64 + 64) + 2 * 4 * (64 + 128)));

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
    if (i + 1 >= argc || (a != "--seeds" && a != "--jobs" && a != "--epochs" && a != "--plot" &&
                          a != "--source" && a != "--words" && a != "--cache")) {
      std::fprintf(stderr,
                   "usage: text_transformer [--seeds N] [--jobs N] [--epochs N] [--plot PREFIX] "
                   "[--source PREFIX] [--words DIR] [--cache FILE] [--smoke]\n");
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--seeds") {
      cfg.seeds = std::stoul(v);
      seeds_given = true;
    } else if (a == "--jobs") {
      cfg.jobs = std::stoul(v);
    } else if (a == "--epochs") {
      cfg.epochs = std::stoul(v);
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
  cfg.epoch_log = true;
  cfg.lora_note =
      "LoRA: rank-4 adapters (alpha = rank) on the attention's query and value projections and on "
      "the two feed-forward layers of each encoder layer, trained with the fresh head "
      "(freeze::adapters_only, Adam lr 1e-3); every pre-trained weight stays frozen.";
  cfg.plot = plot + "_transformer.svg";
  cfg.source_file = source + "_transformer.graft";
  try {
    const auto t0 = std::chrono::steady_clock::now();
    std::printf(
        "graft text transfer demo: the language of a word from its characters; pre-train on 10 "
        "languages, fine-tune a fresh 5-way head on 5 unseen ones with k words per class%s\n\n",
        smoke ? " (SMOKE RUN: tiny lists)" : "");
    const auto split = wordlang::load(words, cache, sizes);
    const auto data = wordlang::tokenized(split, tokens::length);
    wordlang::print_summary(split, data);
    text_transfer::run<tiny_bert, tiny_bert_lora>("tiny transformer", data, cfg);
    std::printf("whole demo %.0f s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
