// Character vocabularies and tokenization for graft::text. No dependency.
//
// A char_vocabulary gives id 0 to padding, id 1 to unknown characters, and ids 2, 3, ... to its
// characters in ascending code point order. from_words() takes every distinct character of a word
// list, so the vocabulary depends on the set of characters only, never on the words' order.
// fingerprint() identifies it: FNV-1a 64 over its characters (ids 2 to size()-1), each as a
// little-endian uint32. tokenize() turns words into a classification dataset of L ids per word
// (as floats), padded with 0 at the end, whose vocabulary field holds that fingerprint.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "graft/config.hpp"
#include "graft/data/dataset.hpp"
#include "graft/data/error.hpp"
#include "graft/data/text.hpp"
#include "graft/layers/embedding.hpp"

GRAFT_BEGIN_NAMESPACE
namespace text {

/// Padding, unknown, then characters in ascending code point order (see the top of this header).
class char_vocabulary {
 public:
  static constexpr std::size_t pad = 0;      ///< the id after a word's last character
  static constexpr std::size_t unknown = 1;  ///< the id of a character not in the vocabulary
  static constexpr std::size_t first = 2;    ///< the id of the smallest character

  /// Only pad and unknown (size() == 2).
  char_vocabulary() = default;

  /// Every distinct character of words, ascending. std::invalid_argument (naming the word and
  /// position) for a code point that is not a Unicode scalar value.
  static char_vocabulary from_words(const std::vector<std::u32string>& words) {
    std::vector<char32_t> all;
    for (std::size_t w = 0; w < words.size(); ++w)
      for (std::size_t i = 0; i < words[w].size(); ++i) {
        if (!is_scalar_value(words[w][i]))
          throw std::invalid_argument("graft: char_vocabulary::from_words: word " +
                                      std::to_string(w) + ", character " + std::to_string(i) +
                                      " (" + detail::code_point_name(words[w][i]) +
                                      ") is not a Unicode scalar value");
        all.push_back(words[w][i]);
      }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    char_vocabulary v;
    v.symbols_ = std::move(all);
    return v;
  }

  /// The vocabulary whose characters (ids 2, 3, ...) are symbols, e.g. symbols() of another one.
  /// std::invalid_argument, naming the index, unless they are strictly ascending scalar values.
  static char_vocabulary from_symbols(std::vector<char32_t> symbols) {
    for (std::size_t i = 0; i < symbols.size(); ++i) {
      if (!is_scalar_value(symbols[i]))
        throw std::invalid_argument("graft: char_vocabulary::from_symbols: symbol " +
                                    std::to_string(i) + " (" + detail::code_point_name(symbols[i]) +
                                    ") is not a Unicode scalar value");
      if (i != 0 && symbols[i] <= symbols[i - 1])
        throw std::invalid_argument("graft: char_vocabulary::from_symbols: symbol " +
                                    std::to_string(i) + " (" + detail::code_point_name(symbols[i]) +
                                    ") is not above symbol " + std::to_string(i - 1) + " (" +
                                    detail::code_point_name(symbols[i - 1]) +
                                    "): expected strictly ascending code points");
    }
    char_vocabulary v;
    v.symbols_ = std::move(symbols);
    return v;
  }

  /// The vocabulary stored in net's first embedding layer (its `symbols` buffer, saved with the
  /// weights): a fine-tuned model keeps the vocabulary of its pre-training. std::invalid_argument
  /// when net has no embedding or its vocabulary is unassigned.
  template <class M> static char_vocabulary of(const M& net) {
    std::vector<char32_t> chars;
    bool assigned = false;
    const bool found = graft::detail::with_first_vocabulary_layer(net, [&](const auto& l) {
      using Ly = std::remove_cvref_t<decltype(l)>;
      const auto* s = l.symbols.data();
      const std::size_t n = graft::detail::vocabulary_size(s, Ly::vocabulary);
      assigned = n != 0;
      for (std::size_t i = first; i < n; ++i) chars.push_back(static_cast<char32_t>(s[i]));
    });
    if (!found)
      throw std::invalid_argument("graft: char_vocabulary::of: the model has no embedding layer");
    if (!assigned)
      throw std::invalid_argument(
          "graft: char_vocabulary::of: the model's vocabulary is unassigned (assign_to(net) "
          "before training, or load weights that carry one)");
    return from_symbols(std::move(chars));
  }

  /// Writes this vocabulary into net's first embedding layer (ids beyond size() marked unused).
  /// std::invalid_argument when net has no embedding or size() exceeds its V.
  template <class M> void assign_to(M& net) const {
    const bool found = graft::detail::with_first_vocabulary_layer(net, [&](auto& l) {
      using Ly = std::remove_cvref_t<decltype(l)>;
      if (size() > Ly::vocabulary)
        throw std::invalid_argument("graft: char_vocabulary::assign_to: " + std::to_string(size()) +
                                    " ids, the embedding has " + std::to_string(Ly::vocabulary) +
                                    " (embedding<V, D>: V)");
      using T = std::remove_cvref_t<decltype(l.symbols.data()[0])>;
      auto* s = l.symbols.data();
      s[pad] = Ly::pad_symbol;
      s[unknown] = Ly::unknown_symbol;
      for (std::size_t i = first; i < Ly::vocabulary; ++i)
        s[i] = i < size() ? static_cast<T>(symbols_[i - first]) : Ly::unused_symbol;
    });
    if (!found)
      throw std::invalid_argument(
          "graft: char_vocabulary::assign_to: the model has no embedding "
          "layer");
  }

  /// 2 + the number of characters.
  std::size_t size() const noexcept { return first + symbols_.size(); }

  /// The id of c: 2 + its rank among the characters, or unknown when it is not one of them.
  std::size_t id(char32_t c) const noexcept {
    const auto it = std::lower_bound(symbols_.begin(), symbols_.end(), c);
    if (it == symbols_.end() || *it != c) return unknown;
    return first + static_cast<std::size_t>(it - symbols_.begin());
  }

  /// The character of id: U+FFFD for pad and unknown; std::out_of_range from size() on.
  char32_t symbol(std::size_t id) const {
    if (id >= size())
      throw std::out_of_range("graft: char_vocabulary::symbol: id " + std::to_string(id) +
                              " out of range (size " + std::to_string(size()) + ")");
    return id < first ? U'\uFFFD' : symbols_[id - first];
  }

  /// The characters, ascending (ids 2, 3, ...).
  const std::vector<char32_t>& symbols() const noexcept { return symbols_; }

  /// FNV-1a 64 over the characters, ids 2 to size()-1, each as 4 bytes little-endian.
  std::uint64_t fingerprint() const noexcept {
    std::uint64_t h = 14695981039346656037ull;
    for (char32_t c : symbols_)
      for (int k = 0; k < 4; ++k) {
        h ^= static_cast<std::uint64_t>((static_cast<std::uint32_t>(c) >> (8 * k)) & 0xFFu);
        h *= 1099511628211ull;
      }
    return h;
  }

  /// The characters as UTF-8, ascending (for messages).
  std::string str() const { return encode_utf8(std::u32string(symbols_.begin(), symbols_.end())); }

  friend bool operator==(const char_vocabulary&, const char_vocabulary&) = default;

 private:
  std::vector<char32_t> symbols_;
};

/// Words to a classification dataset named name: sample i holds the ids of word i's characters
/// (v.id(c), as floats) followed by pad (0) up to L (sample_shape {L}); labels[i] is its label;
/// class_ids is 0..the largest label; ds.vocabulary is v.fingerprint(). graft::data_error naming
/// the word's index for a word longer than L (no silent truncation), an empty word or a negative
/// label; std::invalid_argument when L is 0 or labels and words differ in number.
inline data::dataset tokenize(const std::vector<std::u32string>& words,
                              const std::vector<std::int32_t>& labels, const char_vocabulary& v,
                              std::size_t L, std::string name) {
  if (L == 0) throw std::invalid_argument("graft: tokenize(" + name + "): L is 0");
  if (labels.size() != words.size()) {
    const std::size_t first = std::min(labels.size(), words.size());
    throw std::invalid_argument(
        "graft: tokenize(" + name + "): " + data::detail::count_of(words.size(), "word") + " but " +
        data::detail::count_of(labels.size(), "label") + ": " +
        (labels.size() < words.size() ? "word " + std::to_string(first) + " has no label"
                                      : "label " + std::to_string(first) + " has no word"));
  }
  data::dataset d;
  d.features.assign(words.size() * L, 0.0f);
  std::int32_t top = -1;
  for (std::size_t w = 0; w < words.size(); ++w) {
    const std::u32string& word = words[w];
    const auto quoted = [&] {
      std::u32string shown = word.substr(0, 40);
      for (char32_t& c : shown)
        if (!is_scalar_value(c)) c = U'\uFFFD';
      return "\"" + encode_utf8(shown) + (word.size() > 40 ? "...\"" : "\"");
    };
    if (word.empty()) throw data_error(name, "word " + std::to_string(w) + " is empty");
    if (word.size() > L)
      throw data_error(name, "word " + std::to_string(w) + " (" + quoted() + ") has " +
                                 std::to_string(word.size()) +
                                 " characters, more than L = " + std::to_string(L));
    if (labels[w] < 0)
      throw data_error(name, "word " + std::to_string(w) + " (" + quoted() + ") has label " +
                                 std::to_string(labels[w]) + ", expected a label >= 0");
    top = std::max(top, labels[w]);
    float* row = d.features.data() + w * L;
    for (std::size_t i = 0; i < word.size(); ++i) row[i] = static_cast<float>(v.id(word[i]));
  }
  d.name = std::move(name);
  d.sample_shape = {L};
  d.labels = labels;
  d.class_ids.resize(static_cast<std::size_t>(top) + 1);
  for (std::size_t c = 0; c < d.class_ids.size(); ++c)
    d.class_ids[c] = static_cast<std::int32_t>(c);
  d.vocabulary = v.fingerprint();
  return d;
}

}  // namespace text
GRAFT_END_NAMESPACE
