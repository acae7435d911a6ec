// The text transfer task of issue 16 (docs/design/sequence_models.md §5.4, §5.5): identify the
// language of a single word from its characters. Ten source languages for pre-training, five
// target languages never seen in pre-training; the Debian word lists under /usr/share/dict.
//
// The split, which is the task's definition:
//   * each list is read and cleaned by graft/data/words.hpp (decoded by its real encoding, NFC,
//     lowercase, letters only, 3-16 characters, sorted, duplicates removed), then every word found
//     in two or more of the 15 cleaned lists is dropped from all of them (drop_shared_words);
//   * the words of language i (its index in the table below) are taken in the order of
//     graft::data::permutation(n, seed{i}) (graft's SplitMix64-driven Fisher-Yates);
//   * a source language: the first 20,000 words are its training words, the next 2,000 its test
//     words; a target language: the first 2,000 are its test words, the next 20,000 its k-shot pool
//     (dataset::few_shot(k, seed{s}) then picks k per class along one permutation, so the k = 10
//     set is inside the k = 100 set);
//   * the vocabulary is char_vocabulary::from_words over the source training words (pad, unknown,
//     then their characters): target characters no source training word has become unknown.
//
// Reading and cleaning the 15 lists (11.6M lines) takes a while, so the split is cached in a text
// file (build/text/wordlang.tsv by default) together with the FNV-1a 64 of every list file: a rerun
// reads the cache, and a list whose bytes changed (another Debian version) rebuilds it, with a
// warning on stderr.
#pragma once
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <graft/data/dataset.hpp>
#include <graft/data/tokenizer.hpp>
#include <graft/data/words.hpp>

namespace wordlang {
namespace g = graft;
using g::text::text_encoding;

struct language {
  const char* name;
  const char* package;  ///< the Debian package that installs the list
  const char* file;     ///< its name under /usr/share/dict
  text_encoding encoding;
  bool source;
};

/// The 15 languages: the 10 source languages (labels 0-9 in this order), then the 5 targets
/// (labels 0-4). Swedish and Bokmål are Latin-1 (design §5.5).
inline constexpr std::array<language, 15> languages{{
    {"english", "wamerican", "american-english", text_encoding::utf8, true},
    {"french", "wfrench", "french", text_encoding::utf8, true},
    {"german", "wngerman", "ngerman", text_encoding::utf8, true},
    {"dutch", "wdutch", "dutch", text_encoding::utf8, true},
    {"danish", "wdanish", "danish", text_encoding::utf8, true},
    {"swedish", "wswedish", "swedish", text_encoding::latin1, true},
    {"polish", "wpolish", "polish", text_encoding::utf8, true},
    {"italian", "witalian", "italian", text_encoding::utf8, true},
    {"spanish", "wspanish", "spanish", text_encoding::utf8, true},
    {"bulgarian", "wbulgarian", "bulgarian", text_encoding::utf8, true},
    {"bokmål", "wnorwegian", "bokmaal", text_encoding::latin1, false},
    {"portuguese", "wportuguese", "portuguese", text_encoding::utf8, false},
    {"catalan", "wcatalan", "catalan", text_encoding::utf8, false},
    {"ukrainian", "wukrainian", "ukrainian", text_encoding::utf8, false},
    {"esperanto", "wesperanto", "esperanto", text_encoding::utf8, false},
}};
inline constexpr std::size_t n_languages = languages.size();
inline constexpr std::size_t n_source = 10, n_target = 5;
static_assert(n_source + n_target == n_languages);

/// Words per language in each part (the sizes by default; --smoke uses smaller ones).
struct sizes {
  std::size_t source_train = 20'000, source_test = 2'000;
  std::size_t target_test = 2'000, target_pool = 20'000;
};

/// One language after cleaning and splitting.
struct language_words {
  std::string path;                    ///< the list file read
  std::uint64_t fnv1a = 0;             ///< FNV-1a 64 of its bytes
  std::size_t cleaned = 0;             ///< words after the cleaning rules
  std::size_t kept = 0;                ///< of those, the words no other language's list has
  std::vector<std::u32string> first;   ///< source: training words; target: test words
  std::vector<std::u32string> second;  ///< source: test words; target: the k-shot pool
};

struct split {
  std::array<language_words, n_languages> lang;
  bool from_cache = false;
  double seconds = 0;  ///< reading (cache or lists)
};

namespace detail {
inline std::uint64_t fnv1a(const std::vector<unsigned char>& bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char b : bytes) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}
inline std::string hex(std::uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}
inline std::string header(const sizes& s) {
  const g::text::word_filter f{};
  return "graft-wordlang 1 min " + std::to_string(f.min_length) + " max " +
         std::to_string(f.max_length) + " sizes " + std::to_string(s.source_train) + " " +
         std::to_string(s.source_test) + " " + std::to_string(s.target_test) + " " +
         std::to_string(s.target_pool);
}
inline std::vector<unsigned char> file_bytes(const std::string& path, const language& l) {
  if (!std::filesystem::exists(path))
    throw std::runtime_error("wordlang: " + path + " not found: the " + l.name +
                             " word list comes from the Debian package " + l.package +
                             " (apt install " + l.package + ")");
  return g::data::detail::read_file_bytes(path);
}

/// The cache's content, or false (with the reason in why) when it cannot be used.
inline bool read_cache(const std::string& cache, const sizes& sz, split& out,
                       const std::array<std::uint64_t, n_languages>& hashes,
                       const std::array<std::string, n_languages>& paths, std::string& why) {
  std::ifstream f(cache, std::ios::binary);
  if (!f) {
    why = "";
    return false;
  }
  std::string line;
  if (!std::getline(f, line) || line != header(sz)) {
    why = "it was written with other settings or by another version";
    return false;
  }
  for (std::size_t i = 0; i < n_languages; ++i) {
    if (!std::getline(f, line)) {
      why = "it is truncated";
      return false;
    }
    std::istringstream ls(line);
    std::string tag, name, path, fnv, hash, cleaned, c, kept, k;
    if (!(ls >> tag >> name >> path >> fnv >> hash >> cleaned >> c >> kept >> k) || tag != "list" ||
        name != languages[i].name) {
      why = "its line " + std::to_string(i + 2) + " is not the list of " + languages[i].name;
      return false;
    }
    if (path != paths[i] || hash != hex(hashes[i])) {
      why = path != paths[i] ? "it was made from " + path + ", not " + paths[i]
                             : paths[i] + " changed since it was written (fnv1a " + hex(hashes[i]) +
                                   ", cached " + hash + "; another Debian version?)";
      return false;
    }
    out.lang[i].path = paths[i];
    out.lang[i].fnv1a = hashes[i];
    out.lang[i].cleaned = std::stoul(c);
    out.lang[i].kept = std::stoul(k);
  }
  for (std::size_t i = 0; i < n_languages; ++i)
    for (int part = 0; part < 2; ++part) {
      if (!std::getline(f, line)) {
        why = "it is truncated";
        return false;
      }
      const std::size_t tab1 = line.find('\t'), tab2 = line.find('\t', tab1 + 1);
      if (tab1 == std::string::npos || tab2 == std::string::npos ||
          line.substr(0, tab1) != languages[i].name ||
          line.substr(tab1 + 1, tab2 - tab1 - 1) != std::to_string(part)) {
        why = "a words line is not where it should be";
        return false;
      }
      const std::u32string all =
          g::text::decode_utf8(std::string_view(line).substr(tab2 + 1), cache);
      auto& words = part == 0 ? out.lang[i].first : out.lang[i].second;
      std::size_t start = 0;
      while (start < all.size()) {
        std::size_t end = all.find(U' ', start);
        if (end == std::u32string::npos) end = all.size();
        words.emplace_back(all.substr(start, end - start));
        start = end + 1;
      }
      const std::size_t want = languages[i].source ? (part == 0 ? sz.source_train : sz.source_test)
                                                   : (part == 0 ? sz.target_test : sz.target_pool);
      if (words.size() != want) {
        why = "it has " + std::to_string(words.size()) + " words for " + languages[i].name +
              " part " + std::to_string(part) + ", not " + std::to_string(want);
        return false;
      }
    }
  return true;
}

inline void write_cache(const std::string& cache, const sizes& sz, const split& s) {
  const std::filesystem::path p(cache);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  const std::string tmp = cache + ".part";
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw std::runtime_error("wordlang: cannot write " + tmp);
    f << header(sz) << '\n';
    for (std::size_t i = 0; i < n_languages; ++i)
      f << "list " << languages[i].name << ' ' << s.lang[i].path << " fnv1a "
        << hex(s.lang[i].fnv1a) << " cleaned " << s.lang[i].cleaned << " kept " << s.lang[i].kept
        << '\n';
    for (std::size_t i = 0; i < n_languages; ++i)
      for (int part = 0; part < 2; ++part) {
        f << languages[i].name << '\t' << part << '\t';
        const auto& words = part == 0 ? s.lang[i].first : s.lang[i].second;
        for (std::size_t w = 0; w < words.size(); ++w)
          f << (w == 0 ? "" : " ") << g::text::encode_utf8(words[w]);
        f << '\n';
      }
    if (!f) throw std::runtime_error("wordlang: cannot write " + tmp);
  }
  std::filesystem::rename(tmp, cache);
}
}  // namespace detail

/// The split of the 15 lists found in dir (their Debian file names), read from the cache file
/// when it matches the lists' bytes and the sizes, else built from the lists and cached (an empty
/// cache path: no cache). Errors name the file (a missing list names its package).
inline split load(const std::string& dir, const std::string& cache, const sizes& sz = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  std::array<std::string, n_languages> paths;
  std::array<std::uint64_t, n_languages> hashes{};
  std::array<std::vector<unsigned char>, n_languages> bytes;
  for (std::size_t i = 0; i < n_languages; ++i) {
    paths[i] = dir + "/" + languages[i].file;
    bytes[i] = detail::file_bytes(paths[i], languages[i]);
    hashes[i] = detail::fnv1a(bytes[i]);
  }
  split s;
  std::string why;
  if (!cache.empty() && detail::read_cache(cache, sz, s, hashes, paths, why)) {
    s.from_cache = true;
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return s;
  }
  if (!why.empty())
    std::fprintf(stderr, "warning: wordlang: not using the cache %s: %s; rebuilding it\n",
                 cache.c_str(), why.c_str());
  s = split{};
  std::vector<std::vector<std::u32string>> lists(n_languages);
  for (std::size_t i = 0; i < n_languages; ++i) {
    lists[i] =
        g::text::parse_word_list(paths[i], bytes[i].data(), bytes[i].size(), languages[i].encoding);
    bytes[i] = {};
    s.lang[i].path = paths[i];
    s.lang[i].fnv1a = hashes[i];
    s.lang[i].cleaned = lists[i].size();
  }
  g::text::drop_shared_words(lists);
  for (std::size_t i = 0; i < n_languages; ++i) {
    const auto& w = lists[i];
    auto& L = s.lang[i];
    L.kept = w.size();
    const std::size_t a = languages[i].source ? sz.source_train : sz.target_test;
    const std::size_t b = languages[i].source ? sz.source_test : sz.target_pool;
    if (w.size() < a + b)
      throw std::runtime_error(
          "wordlang: " + paths[i] + ": " + std::to_string(w.size()) +
          " words after cleaning and dropping the shared ones, fewer than the " +
          std::to_string(a + b) + " the split needs");
    const std::vector<std::size_t> p = g::data::permutation(w.size(), g::seed{i});
    for (std::size_t j = 0; j < a; ++j) L.first.push_back(w[p[j]]);
    for (std::size_t j = a; j < a + b; ++j) L.second.push_back(w[p[j]]);
    lists[i] = {};
  }
  if (!cache.empty()) detail::write_cache(cache, sz, s);
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

/// The token data sets: labels are the language's index among the sources (0-9) or among the
/// targets (0-4); L ids per word.
struct datasets {
  g::text::char_vocabulary vocabulary;
  g::data::dataset source_train, source_test, target_pool, target_test;
};

inline datasets tokenized(const split& s, std::size_t L) {
  datasets d;
  std::vector<std::u32string> w[4];
  std::vector<std::int32_t> y[4];
  for (std::size_t i = 0; i < n_languages; ++i) {
    const std::size_t base = languages[i].source ? 0 : 2;
    const auto label = static_cast<std::int32_t>(languages[i].source ? i : i - n_source);
    for (int part = 0; part < 2; ++part) {
      const auto& words = part == 0 ? s.lang[i].first : s.lang[i].second;
      w[base + static_cast<std::size_t>(part)].insert(
          w[base + static_cast<std::size_t>(part)].end(), words.begin(), words.end());
      y[base + static_cast<std::size_t>(part)].insert(
          y[base + static_cast<std::size_t>(part)].end(), words.size(), label);
    }
  }
  d.vocabulary = g::text::char_vocabulary::from_words(w[0]);
  d.source_train = g::text::tokenize(w[0], y[0], d.vocabulary, L, "source train");
  d.source_test = g::text::tokenize(w[1], y[1], d.vocabulary, L, "source test");
  d.target_test = g::text::tokenize(w[2], y[2], d.vocabulary, L, "target test");
  d.target_pool = g::text::tokenize(w[3], y[3], d.vocabulary, L, "target pool");
  return d;
}

/// The characters of words that v does not have, ascending, and how many words have one.
inline std::u32string unknown_characters(const std::vector<std::u32string>& words,
                                         const g::text::char_vocabulary& v,
                                         std::size_t& words_with) {
  std::u32string chars;
  words_with = 0;
  for (const auto& w : words) {
    bool any = false;
    for (char32_t c : w)
      if (v.id(c) == g::text::char_vocabulary::unknown) {
        any = true;
        if (chars.find(c) == std::u32string::npos) chars += c;
      }
    words_with += any ? 1 : 0;
  }
  std::sort(chars.begin(), chars.end());
  return chars;
}

/// Prints the vocabulary and the per-language counts (markdown table).
inline void print_summary(const split& s, const datasets& d) {
  std::printf(
      "word lists %s in %.1f s; vocabulary of the source training words: %zu ids (pad, "
      "unknown and %zu characters)\n\n",
      s.from_cache ? "read from the cache" : "read, cleaned and split", s.seconds,
      d.vocabulary.size(), d.vocabulary.size() - 2);
  std::printf(
      "| language | role | list | fnv1a | cleaned | not shared | train / pool | test | "
      "unknown characters (test words with one) |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (std::size_t i = 0; i < n_languages; ++i) {
    const auto& L = s.lang[i];
    const bool src = languages[i].source;
    const auto& test = src ? L.second : L.first;
    std::size_t with = 0;
    const std::u32string unk = unknown_characters(test, d.vocabulary, with);
    std::string unk_s;
    for (char32_t c : unk) {
      if (!unk_s.empty()) unk_s += ' ';
      unk_s += g::text::encode_utf8({&c, 1});
    }
    std::printf(
        "| %s | %s | %s (%s) | %s | %zu | %zu | %zu | %zu | %s (%.1f%%) |\n", languages[i].name,
        src ? "source" : "target", languages[i].file, languages[i].package,
        detail::hex(L.fnv1a).substr(0, 8).c_str(), L.cleaned, L.kept,
        src ? L.first.size() : L.second.size(), test.size(), unk_s.empty() ? "-" : unk_s.c_str(),
        test.empty() ? 0.0 : 100.0 * static_cast<double>(with) / static_cast<double>(test.size()));
  }
  std::printf("\n");
}

}  // namespace wordlang
