// libFuzzer target: text decoding and tokenization (graft/data/text.hpp, graft/data/tokenizer.hpp)
// on the input. Byte 0 chooses: bits 0-3 the length L - 1 for tokenize, bit 4 the vocabulary
// from every word (else from every other word, so that unknown characters occur), bits 5-7 the
// output capacity - 1 of a chunked decode. The rest is decoded as UTF-8 by the core (counting
// only, whole, and in chunks resumed where the output filled up) and by the throwing decoder,
// and as Latin-1 (total, and checked for C1 bytes). Findings (std::abort): the decoders
// disagreeing, an error offset outside the input or not at the core's offset, a decoded string
// that does not re-encode to the input bytes, a Latin-1 C1 refusal where there is no C1 byte or
// none where there is. Then the decoded text (UTF-8 if valid, else Latin-1) is split at '\n' and
// tokenized: an accepted dataset must hold each word's ids followed by zeros only, ids below the
// vocabulary's size mapping back to the word's characters; a refusal must be a graft::data_error
// naming a word that is empty or longer than L.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "graft/data/text.hpp"
#include "graft/data/tokenizer.hpp"

namespace {
namespace gt = graft::text;

void require(bool ok) {
  if (!ok) std::abort();
}

void tokenize_checked(const std::u32string& text, unsigned sel) {
  std::vector<std::u32string> words;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find(U'\n', start);
    words.push_back(text.substr(start, end == std::u32string::npos ? end : end - start));
    if (end == std::u32string::npos) break;
    start = end + 1;
  }
  const std::size_t L = (sel & 15u) + 1;
  std::vector<std::u32string> for_vocabulary;
  for (std::size_t i = 0; i < words.size(); ++i)
    if ((sel & 16u) != 0 || i % 2 == 0) for_vocabulary.push_back(words[i]);
  const auto v = gt::char_vocabulary::from_words(for_vocabulary);
  require(gt::char_vocabulary::from_symbols(v.symbols()) == v);
  for (std::size_t i = 1; i < v.symbols().size(); ++i) require(v.symbols()[i - 1] < v.symbols()[i]);
  std::vector<std::int32_t> labels(words.size());
  for (std::size_t i = 0; i < words.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 3);

  bool refusable = false;
  for (const std::u32string& w : words) refusable = refusable || w.empty() || w.size() > L;
  graft::data::dataset d;
  try {
    d = gt::tokenize(words, labels, v, L, "fuzz");
  } catch (const graft::data_error&) {
    require(refusable);
    return;
  }
  require(!refusable);
  require(d.size() == words.size() && d.sample_size() == L && d.vocabulary == v.fingerprint());
  for (std::size_t i = 0; i < words.size(); ++i) {
    const float* row = d.sample(i);
    for (std::size_t k = 0; k < L; ++k) {
      const float f = row[k];
      require(f >= 0 && f < static_cast<float>(v.size()));
      const auto id = static_cast<std::size_t>(f);
      require(static_cast<float>(id) == f);
      if (k >= words[i].size()) {
        require(id == gt::char_vocabulary::pad);
      } else if (id == gt::char_vocabulary::unknown) {
        require(v.id(words[i][k]) == gt::char_vocabulary::unknown);
      } else {
        require(id >= gt::char_vocabulary::first && v.symbol(id) == words[i][k]);
      }
    }
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const unsigned sel = data[0];
  const unsigned char* p = data + 1;
  const std::size_t n = size - 1;
  const std::string_view bytes(reinterpret_cast<const char*>(p), n);

  // UTF-8: the counting core, the chunked core and the throwing decoder agree
  std::size_t count = 0;
  const gt::utf8_result r = gt::decode_utf8(p, n, nullptr, 0, count);
  require(r.status == gt::utf8_status::ok ? r.byte == n && r.length == 0
                                          : r.byte < n && r.length >= 1 && r.byte + r.length <= n);
  std::u32string chunked;
  {
    const std::size_t cap = (sel >> 5) + 1;
    char32_t out[8] = {};
    std::size_t at = 0;
    for (;;) {
      std::size_t got = 0;
      const gt::utf8_result c = gt::decode_utf8(p + at, n - at, out, cap, got);
      chunked.append(out, got);
      if (c.status != gt::utf8_status::ok) {
        require(c.status == r.status && at + c.byte == r.byte && c.length == r.length);
        break;
      }
      require(got <= cap && (got == cap || at + c.byte == n));
      if (at + c.byte == n) break;
      require(c.byte > 0);
      at += c.byte;
    }
  }
  require(chunked.size() == count);
  std::u32string utf8;
  bool valid = false;
  try {
    utf8 = gt::decode_utf8(bytes, "fuzz");
    valid = true;
  } catch (const graft::data_error& e) {
    require(r.status != gt::utf8_status::ok && e.has_offset() && e.offset() == r.byte &&
            e.offset() < n);
  }
  if (valid) {
    require(r.status == gt::utf8_status::ok && utf8.size() == count && utf8 == chunked);
    require(gt::encode_utf8(utf8) == bytes);
  }

  // Latin-1: total; the checked decoder refuses exactly the inputs with a C1 byte, at the first
  const std::u32string latin1 = gt::decode_latin1(bytes);
  require(latin1.size() == n);
  for (std::size_t i = 0; i < n; ++i) require(latin1[i] == p[i]);
  const std::size_t c1 = gt::find_c1_byte(p, n);
  try {
    require(gt::decode_latin1_checked(bytes, "fuzz") == latin1);
    require(c1 == n);
  } catch (const graft::data_error& e) {
    require(c1 < n && e.offset() == c1 && gt::is_c1_byte(p[c1]));
  }
  require(gt::decode_utf8(gt::encode_utf8(latin1), "latin1") == latin1);

  tokenize_checked(valid ? utf8 : latin1, sel);
  return 0;
}
