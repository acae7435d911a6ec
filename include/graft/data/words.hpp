// Word lists (one word per line, as Debian's w* packages install them under /usr/share/dict) for
// graft::text, cleaned by fixed rules so that every language's list is comparable:
//   1. decode by the declared encoding: UTF-8 (a leading byte order mark is dropped) or Latin-1
//      (a C1 control byte 0x80-0x9F is refused: the file is then probably UTF-8 or CP1252); an
//      error is a graft::data_error naming the file and the byte offset;
//   2. split at '\n'; a '\r' ending a line is removed (CRLF files);
//   3. per line: NFC, lowercase by the simple (one code point to one) mapping of each code point
//      (utf8proc_tolower), NFC again;
//   4. keep the line iff every code point is a letter (general category Lu, Ll, Lt, Lm or Lo) and
//      its length in code points is in [filter.min_length, filter.max_length]: hyphenated,
//      apostrophised, multi-word, digit and empty lines go;
//   5. sort by code point and drop duplicates.
// drop_shared_words() then removes the words that several languages' lists have in common.
//
// Needs libutf8proc (Debian: libutf8proc-dev) for NFC, lowercase and the general category.
// graft's CMake target links it and defines GRAFT_HAVE_UTF8PROC when it finds it;
// graft/graft.hpp does not include this header.
#pragma once
#ifndef GRAFT_HAVE_UTF8PROC
#error \
    "graft/data/words.hpp needs libutf8proc: install it (Debian: apt install libutf8proc-dev) and reconfigure, so that graft::graft links it and defines GRAFT_HAVE_UTF8PROC; without CMake, compile with -DGRAFT_HAVE_UTF8PROC=1 and link with -lutf8proc"
#endif

#include <utf8proc.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <queue>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "graft/config.hpp"
#include "graft/data/error.hpp"
#include "graft/data/npy.hpp"
#include "graft/data/text.hpp"

GRAFT_BEGIN_NAMESPACE
namespace text {

/// How a word list file is encoded.
enum class text_encoding { utf8, latin1 };

/// The lengths of the words kept, in code points after normalisation.
struct word_filter {
  std::size_t min_length = 3;
  std::size_t max_length = 16;
};

namespace detail {

/// The per-line steps 3 and 4 with buffers reused from line to line.
class word_cleaner {
 public:
  /// The cleaned line in out, or false when the line is not kept.
  bool clean(const char32_t* p, std::size_t n, const word_filter& f, std::u32string& out) {
    bool ascii = true;
    for (std::size_t i = 0; i < n && ascii; ++i) ascii = p[i] < 0x80;
    if (ascii) {  // ASCII is NFC, and lowercases to ASCII: the same as the general path
      if (n < f.min_length || n > f.max_length) return false;
      out.assign(p, n);
      for (char32_t& c : out) {
        if (c >= U'A' && c <= U'Z') c = c - U'A' + U'a';
        if (c < U'a' || c > U'z') return false;
      }
      return true;
    }
    nfc(p, n);
    for (std::size_t i = 0; i < size_; ++i) buf_[i] = utf8proc_tolower(buf_[i]);
    lowered_.assign(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(size_));
    nfc(lowered_.data(), lowered_.size());
    if (size_ < f.min_length || size_ > f.max_length) return false;
    out.resize(size_);
    for (std::size_t i = 0; i < size_; ++i) {
      switch (utf8proc_category(buf_[i])) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
          break;
        default:
          return false;
      }
      out[i] = static_cast<char32_t>(buf_[i]);
    }
    return true;
  }

 private:
  /// buf_[0, size_) = NFC of p[0, n) (scalar values, as decoding gives them).
  template <class C> void nfc(const C* p, std::size_t n) {
    utf8_.clear();
    unsigned char b[4] = {};
    for (std::size_t i = 0; i < n; ++i)
      utf8_.append(reinterpret_cast<const char*>(b), encode_utf8(static_cast<char32_t>(p[i]), b));
    constexpr auto options = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    const auto* s = reinterpret_cast<const utf8proc_uint8_t*>(utf8_.data());
    const auto len = static_cast<utf8proc_ssize_t>(utf8_.size());
    if (buf_.size() < 4 * n + 16) buf_.resize(4 * n + 16);
    utf8proc_ssize_t got = 0;
    for (;;) {
      got = utf8proc_decompose(s, len, buf_.data(), static_cast<utf8proc_ssize_t>(buf_.size()),
                               options);
      if (got < 0 || static_cast<std::size_t>(got) <= buf_.size()) break;
      buf_.resize(static_cast<std::size_t>(got));
    }
    if (got >= 0) got = utf8proc_normalize_utf32(buf_.data(), got, options);
    if (got < 0)
      throw std::runtime_error(std::string("graft: words: utf8proc failed: ") +
                               utf8proc_errmsg(got));
    size_ = static_cast<std::size_t>(got);
  }

  std::string utf8_;
  std::vector<utf8proc_int32_t> buf_;
  std::vector<utf8proc_int32_t> lowered_;
  std::size_t size_ = 0;
};

}  // namespace detail

/// The cleaned word list held in bytes[0, n) (see the top of this header); name is used in
/// messages. graft::data_error naming name and the byte for text that is not in encoding enc.
inline std::vector<std::u32string> parse_word_list(const std::string& name,
                                                   const unsigned char* bytes, std::size_t n,
                                                   text_encoding enc, word_filter f = {}) {
  const std::string_view raw(reinterpret_cast<const char*>(bytes), n);
  std::u32string all =
      enc == text_encoding::utf8 ? decode_utf8(raw, name) : decode_latin1_checked(raw, name);
  std::size_t start = enc == text_encoding::utf8 && !all.empty() && all[0] == U'\uFEFF' ? 1 : 0;
  std::vector<std::u32string> words;
  detail::word_cleaner cleaner;
  std::u32string word;
  while (start < all.size()) {
    std::size_t end = all.find(U'\n', start);
    if (end == std::u32string::npos) end = all.size();
    std::size_t stop = end;
    if (stop > start && all[stop - 1] == U'\r') --stop;
    if (cleaner.clean(all.data() + start, stop - start, f, word)) words.push_back(word);
    start = end + 1;
  }
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  return words;
}

/// The cleaned word list in the file at path, declared to be in encoding enc. graft::data_error
/// naming the file (and the byte) for a missing or unreadable file or text not in enc.
inline std::vector<std::u32string> read_word_list(const std::string& path, text_encoding enc,
                                                  word_filter f = {}) {
  const std::vector<unsigned char> bytes = data::detail::read_file_bytes(path);
  return parse_word_list(path, bytes.data(), bytes.size(), enc, f);
}

/// Drops, from every list, each word present in two or more of the lists (a k-way merge of the
/// sorted lists: exact, no hashing, O(N log k) comparisons). Each list must be sorted by code
/// point without duplicates, as read_word_list returns it: std::invalid_argument otherwise,
/// naming the list and the index (nothing is changed then).
inline void drop_shared_words(std::vector<std::vector<std::u32string>>& lists) {
  for (std::size_t l = 0; l < lists.size(); ++l)
    for (std::size_t i = 1; i < lists[l].size(); ++i)
      if (!(lists[l][i - 1] < lists[l][i]))
        throw std::invalid_argument("graft: drop_shared_words: list " + std::to_string(l) +
                                    ", word " + std::to_string(i) + " is not after word " +
                                    std::to_string(i - 1) +
                                    ": expected sorted lists without duplicates");
  // cursors (list, index), smallest word first
  using cursor = std::pair<std::size_t, std::size_t>;
  const auto later = [&](const cursor& a, const cursor& b) {
    const std::u32string& wa = lists[a.first][a.second];
    const std::u32string& wb = lists[b.first][b.second];
    return wb < wa || (wa == wb && b.first < a.first);
  };
  std::priority_queue<cursor, std::vector<cursor>, decltype(later)> heap(later);
  for (std::size_t l = 0; l < lists.size(); ++l)
    if (!lists[l].empty()) heap.push({l, 0});
  std::vector<std::vector<bool>> drop(lists.size());
  for (std::size_t l = 0; l < lists.size(); ++l) drop[l].assign(lists[l].size(), false);
  std::vector<cursor> same;
  while (!heap.empty()) {
    same.assign(1, heap.top());
    heap.pop();
    const std::u32string& w = lists[same[0].first][same[0].second];
    while (!heap.empty() && lists[heap.top().first][heap.top().second] == w) {
      same.push_back(heap.top());
      heap.pop();
    }
    for (const cursor& c : same) {
      if (same.size() >= 2) drop[c.first][c.second] = true;
      if (c.second + 1 < lists[c.first].size()) heap.push({c.first, c.second + 1});
    }
  }
  for (std::size_t l = 0; l < lists.size(); ++l) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < lists[l].size(); ++i)
      if (!drop[l][i]) {
        if (kept != i) lists[l][kept] = std::move(lists[l][i]);
        ++kept;
      }
    lists[l].resize(kept);
  }
}

}  // namespace text
GRAFT_END_NAMESPACE
