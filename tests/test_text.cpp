// Text (graft/data/text.hpp, graft/data/tokenizer.hpp): every invalid UTF-8 form refused with the
// byte offset of its sequence, the valid 1-4 byte forms decoded and re-encoded, Latin-1 total and
// its C1 refusal, the freestanding core at compile time; char_vocabulary's order (independent of
// the words' order), unknown mapping, fingerprint and rebuilding; tokenize's padding, labels and
// refusals; dataset transforms keep the vocabulary fingerprint.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "graft/data/text.hpp"
#include "graft/data/tokenizer.hpp"

namespace {

namespace gt = graft::text;
using gt::utf8_status;

/// The message decode_utf8 throws for bytes (empty when it accepts them).
std::string utf8_error(std::string_view bytes) {
  try {
    (void)gt::decode_utf8(bytes, "sample.txt");
  } catch (const graft::data_error& e) {
    return e.what();
  }
  return "";
}

gt::utf8_result core(std::string_view bytes, std::size_t& count) {
  std::u32string out(bytes.size(), U'\0');
  return gt::decode_utf8(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                         out.data(), out.size(), count);
}

// The freestanding core works at compile time.
constexpr bool decodes_at_compile_time() {
  const unsigned char b[] = {'a', 0xC3, 0xA5, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80};
  char32_t out[4] = {};
  std::size_t count = 0;
  const gt::utf8_result r = gt::decode_utf8(b, sizeof b, out, 4, count);
  return r.status == utf8_status::ok && r.byte == sizeof b && count == 4 && out[0] == U'a' &&
         out[1] == U'\u00E5' && out[2] == U'\u20AC' && out[3] == U'\U0001F600';
}
static_assert(decodes_at_compile_time());
constexpr bool refuses_at_compile_time() {
  const unsigned char b[] = {'a', 'b', 0xED, 0xA0, 0x80};
  std::size_t count = 0;
  const gt::utf8_result r = gt::decode_utf8(b, sizeof b, nullptr, 0, count);
  return r.status == utf8_status::surrogate && r.byte == 2 && r.length == 3 && count == 2;
}
static_assert(refuses_at_compile_time());

}  // namespace

TEST_CASE("decode_utf8 refuses each invalid form, naming the byte offset of its sequence") {
  struct bad_case {
    std::string bytes;
    utf8_status status;
    std::size_t byte;
    std::string message;  // the whole what()
  };
  const std::vector<bad_case> cases = {
      {"abc\xE5xyz", utf8_status::invalid_continuation, 3,
       "graft: sample.txt: byte 3: expected UTF-8, found an invalid continuation byte 0x78 after "
       "0xE5"},
      {"ab\x80", utf8_status::invalid_lead, 2,
       "graft: sample.txt: byte 2: expected UTF-8, found an invalid lead byte 0x80"},
      {"a\xBF", utf8_status::invalid_lead, 1,
       "graft: sample.txt: byte 1: expected UTF-8, found an invalid lead byte 0xBF"},
      {"abcd\xF8\x88\x80\x80\x80", utf8_status::invalid_lead, 4,
       "graft: sample.txt: byte 4: expected UTF-8, found an invalid lead byte 0xF8"},
      {"\xFF", utf8_status::invalid_lead, 0,
       "graft: sample.txt: byte 0: expected UTF-8, found an invalid lead byte 0xFF"},
      {"hello \xE2\x82", utf8_status::truncated, 6,
       "graft: sample.txt: byte 6: expected UTF-8, found a truncated sequence 0xE2 0x82 (the input "
       "ends)"},
      {"\xF0\x9F\x98", utf8_status::truncated, 0,
       "graft: sample.txt: byte 0: expected UTF-8, found a truncated sequence 0xF0 0x9F 0x98 (the "
       "input ends)"},
      {"xy\xC3", utf8_status::truncated, 2,
       "graft: sample.txt: byte 2: expected UTF-8, found a truncated sequence 0xC3 (the input "
       "ends)"},
      {"x\xE2\x82\xC3\xA5", utf8_status::invalid_continuation, 1,
       "graft: sample.txt: byte 1: expected UTF-8, found an invalid continuation byte 0xC3 after "
       "0xE2 0x82"},
      {"\xC0\x80", utf8_status::overlong, 0,
       "graft: sample.txt: byte 0: expected UTF-8, found an overlong form 0xC0 0x80 (U+0000)"},
      {"ok \xC1\xBF", utf8_status::overlong, 3,
       "graft: sample.txt: byte 3: expected UTF-8, found an overlong form 0xC1 0xBF (U+007F)"},
      {"\xE0\x9F\xBF", utf8_status::overlong, 0,
       "graft: sample.txt: byte 0: expected UTF-8, found an overlong form 0xE0 0x9F 0xBF "
       "(U+07FF)"},
      {"\xC3\xA5\xF0\x8F\xBF\xBF", utf8_status::overlong, 2,
       "graft: sample.txt: byte 2: expected UTF-8, found an overlong form 0xF0 0x8F 0xBF 0xBF "
       "(U+FFFF)"},
      {"a\xED\xA0\x80", utf8_status::surrogate, 1,
       "graft: sample.txt: byte 1: expected UTF-8, found a surrogate 0xED 0xA0 0x80 (U+D800)"},
      {"\xED\xBF\xBF", utf8_status::surrogate, 0,
       "graft: sample.txt: byte 0: expected UTF-8, found a surrogate 0xED 0xBF 0xBF (U+DFFF)"},
      {"ab\xF4\x90\x80\x80", utf8_status::too_large, 2,
       "graft: sample.txt: byte 2: expected UTF-8, found a value above U+10FFFF 0xF4 0x90 0x80 "
       "0x80 (U+110000)"},
      {"\xF7\xBF\xBF\xBF", utf8_status::too_large, 0,
       "graft: sample.txt: byte 0: expected UTF-8, found a value above U+10FFFF 0xF7 0xBF 0xBF "
       "0xBF (U+1FFFFF)"},
  };
  for (const bad_case& c : cases) {
    CAPTURE(c.message);
    std::size_t count = 99;
    const gt::utf8_result r = core(c.bytes, count);
    CHECK(r.status == c.status);
    CHECK(r.byte == c.byte);
    CHECK(r.byte < c.bytes.size());
    CHECK(utf8_error(c.bytes) == c.message);
    // the code points before the bad sequence were decoded
    std::size_t before = 0;
    const gt::utf8_result head = core(c.bytes.substr(0, c.byte), before);
    CHECK(head.status == utf8_status::ok);
    CHECK(count == before);
  }
  // the exception carries the offset
  try {
    (void)gt::decode_utf8("abc\xE5xyz", "swedish");
    FAIL("no exception");
  } catch (const graft::data_error& e) {
    CHECK(e.file() == "swedish");
    CHECK(e.offset() == 3);
    CHECK(e.expected() == "UTF-8");
  }
}

TEST_CASE("decode_utf8 and encode_utf8: the valid 1-4 byte forms round-trip") {
  struct good_case {
    std::string bytes;
    char32_t c;
  };
  const std::vector<good_case> cases = {
      {std::string(1, '\0'), U'\0'},
      {"A", U'A'},
      {"\x7F", U'\x7F'},
      {"\xC2\x80", U'\u0080'},
      {"\xC3\xA5", U'\u00E5'},
      {"\xDF\xBF", U'\u07FF'},
      {"\xE0\xA0\x80", U'\u0800'},
      {"\xE2\x82\xAC", U'\u20AC'},
      {"\xED\x9F\xBF", U'\uD7FF'},
      {"\xEE\x80\x80", U'\uE000'},
      {"\xEF\xBF\xBD", U'\uFFFD'},
      {"\xEF\xBF\xBF", U'\uFFFF'},
      {"\xF0\x90\x80\x80", U'\U00010000'},
      {"\xF0\x9F\x98\x80", U'\U0001F600'},
      {"\xF4\x8F\xBF\xBF", U'\U0010FFFF'},
  };
  std::string all;
  std::u32string expected;
  for (const good_case& c : cases) {
    CAPTURE(static_cast<std::uint32_t>(c.c));
    const std::u32string d = gt::decode_utf8(c.bytes, "one");
    REQUIRE(d.size() == 1);
    CHECK(d[0] == c.c);
    CHECK(gt::encode_utf8(d) == c.bytes);
    all += c.bytes;
    expected += c.c;
  }
  CHECK(gt::decode_utf8(all, "all") == expected);
  CHECK(gt::encode_utf8(expected) == all);
  CHECK(gt::decode_utf8("", "empty").empty());

  // the core stops when out is full and resumes where it stopped
  const auto* p = reinterpret_cast<const unsigned char*>(all.data());
  char32_t out[4] = {};
  std::size_t count = 0;
  const gt::utf8_result r = gt::decode_utf8(p, all.size(), out, 4, count);
  CHECK(r.status == utf8_status::ok);
  CHECK(count == 4);
  CHECK(r.byte == 1 + 1 + 1 + 2);
  CHECK(std::u32string(out, 4) == expected.substr(0, 4));
  std::size_t total = 0;
  CHECK(gt::decode_utf8(p, all.size(), nullptr, 0, total).status == utf8_status::ok);
  CHECK(total == expected.size());

  // encode_utf8 refuses what is not a scalar value, naming its index
  CHECK_THROWS_WITH_AS((void)gt::encode_utf8(U"ab" + std::u32string(1, char32_t{0xD800})),
                       "graft: encode_utf8: code point 2 (U+D800) is not a Unicode scalar value",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS((void)gt::encode_utf8(std::u32string(1, char32_t{0x110000})),
                       "graft: encode_utf8: code point 0 (U+110000) is not a Unicode scalar value",
                       std::invalid_argument);
}

TEST_CASE("decode_latin1 is total; decode_latin1_checked refuses C1 bytes, naming the byte") {
  std::string every;
  for (int b = 0; b < 256; ++b) every += static_cast<char>(b);
  const std::u32string d = gt::decode_latin1(every);
  REQUIRE(d.size() == 256);
  for (std::size_t b = 0; b < 256; ++b) CHECK(d[b] == static_cast<char32_t>(b));
  // Latin-1 text round-trips through UTF-8
  const std::string swedish = "\xC5sa \xE4rlig \xF6ga";
  CHECK(gt::encode_utf8(gt::decode_latin1(swedish)) == "\xC3\x85sa \xC3\xA4rlig \xC3\xB6ga");
  CHECK(gt::decode_latin1_checked(swedish, "swedish") == gt::decode_latin1(swedish));
  CHECK(gt::decode_latin1_checked("\x7F\xA0\xFF", "edges") == U"\x7F\u00A0\u00FF");

  CHECK_THROWS_WITH_AS((void)gt::decode_latin1_checked("ok\nbad\x85word", "list.txt"),
                       "graft: list.txt: byte 6: expected Latin-1 text (no C1 control byte "
                       "0x80-0x9F), found 0x85 (the file may be UTF-8 or CP1252)",
                       graft::data_error);
  for (int b = 0x80; b <= 0x9F; ++b) {
    const std::string s = std::string("abcd") + static_cast<char>(b);
    try {
      (void)gt::decode_latin1_checked(s, "x");
      FAIL("accepted a C1 byte");
    } catch (const graft::data_error& e) {
      CHECK(e.offset() == 4);
    }
  }
  // UTF-8 text declared Latin-1 is caught by its continuation bytes 0x80-0x9F when it has them
  CHECK_THROWS_AS((void)gt::decode_latin1_checked("\xE2\x82\xAC", "euro"), graft::data_error);
}

TEST_CASE("char_vocabulary: ids in code point order, independent of the words' order") {
  const std::vector<std::u32string> words = {U"hus", U"\u00E5sa", U"abc", U"\u00F6ga", U"sus"};
  const std::vector<std::u32string> reordered = {U"sus", U"\u00F6ga", U"abc",
                                                 U"hus", U"\u00E5sa", U"abc"};
  const auto v = gt::char_vocabulary::from_words(words);
  const auto w = gt::char_vocabulary::from_words(reordered);
  CHECK(v == w);
  CHECK(v.fingerprint() == w.fingerprint());
  // pad, unknown, a b c g h s u å ö
  const std::vector<char32_t> expected = {U'a', U'b', U'c',      U'g',     U'h',
                                          U's', U'u', U'\u00E5', U'\u00F6'};
  CHECK(v.symbols() == expected);
  CHECK(v.size() == 2 + expected.size());
  CHECK(v.str() == "abcghsu\xC3\xA5\xC3\xB6");
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CHECK(v.id(expected[i]) == 2 + i);
    CHECK(v.symbol(2 + i) == expected[i]);
  }
  CHECK(v.symbol(gt::char_vocabulary::pad) == U'\uFFFD');
  CHECK(v.symbol(gt::char_vocabulary::unknown) == U'\uFFFD');
  CHECK_THROWS_AS((void)v.symbol(v.size()), std::out_of_range);

  // characters not in the vocabulary map to unknown
  CHECK(v.id(U'z') == gt::char_vocabulary::unknown);
  CHECK(v.id(U'\u00E4') == gt::char_vocabulary::unknown);
  CHECK(v.id(U'A') == gt::char_vocabulary::unknown);
  CHECK(v.id(U'\0') == gt::char_vocabulary::unknown);
  const gt::char_vocabulary empty;
  CHECK(empty.size() == 2);
  CHECK(empty.id(U'a') == gt::char_vocabulary::unknown);

  // rebuilt from its symbols: the same vocabulary
  const auto r = gt::char_vocabulary::from_symbols(v.symbols());
  CHECK(r == v);
  CHECK(r.fingerprint() == v.fingerprint());
  CHECK_THROWS_WITH_AS((void)gt::char_vocabulary::from_symbols({U'a', U'c', U'b'}),
                       "graft: char_vocabulary::from_symbols: symbol 2 (U+0062) is not above "
                       "symbol 1 (U+0063): expected strictly ascending code points",
                       std::invalid_argument);
  CHECK_THROWS_AS((void)gt::char_vocabulary::from_symbols({U'a', U'a'}), std::invalid_argument);
  CHECK_THROWS_AS((void)gt::char_vocabulary::from_symbols({char32_t{0xDC00}}),
                  std::invalid_argument);
  CHECK_THROWS_AS(
      (void)gt::char_vocabulary::from_words({U"a" + std::u32string(1, char32_t{0x110000})}),
      std::invalid_argument);
}

TEST_CASE(
    "char_vocabulary::fingerprint: FNV-1a 64 over the code points, changed by one character") {
  // FNV-1a 64 of the bytes 61 00 00 00 62 00 00 00 (a, b as u32 LE), computed by hand below
  std::uint64_t h = 14695981039346656037ull;
  for (std::uint64_t byte : {0x61, 0, 0, 0, 0x62, 0, 0, 0}) {
    h ^= byte;
    h *= 1099511628211ull;
  }
  const auto ab = gt::char_vocabulary::from_words({U"ab"});
  CHECK(ab.fingerprint() == h);
  CHECK(gt::char_vocabulary().fingerprint() == 14695981039346656037ull);

  const auto v = gt::char_vocabulary::from_words({U"hus", U"\u00E5sa"});
  const auto one_changed = gt::char_vocabulary::from_words({U"hus", U"\u00E4sa"});  // å -> ä
  const auto one_more = gt::char_vocabulary::from_words({U"hus", U"\u00E5sa", U"\u00E5"});
  const auto one_added = gt::char_vocabulary::from_words({U"hus", U"\u00E5sa", U"z"});
  CHECK(v.fingerprint() != one_changed.fingerprint());
  CHECK(v.fingerprint() == one_more.fingerprint());
  CHECK(v.fingerprint() != one_added.fingerprint());
  CHECK(v.size() == one_changed.size());
  // the same characters as other code points (a high byte differs)
  const auto high = gt::char_vocabulary::from_symbols({U'a', U'\U00010062'});
  CHECK(high.fingerprint() != ab.fingerprint());
}

TEST_CASE("tokenize: ids padded with 0 at the end, labels, the vocabulary's fingerprint") {
  const std::vector<std::u32string> words = {U"hus", U"\u00E5sa", U"abc", U"x"};
  const auto v = gt::char_vocabulary::from_words({U"hus", U"\u00E5sa", U"abc"});
  // a b c h s u å -> 2..8
  const auto d = gt::tokenize(words, {0, 2, 1, 0}, v, 5, "tiny");
  CHECK(d.name == "tiny");
  CHECK(d.sample_shape == std::vector<std::size_t>{5});
  CHECK(d.size() == 4);
  const std::vector<float> expected = {
      5, 7, 6, 0, 0,  // h u s
      8, 6, 2, 0, 0,  // å s a
      2, 3, 4, 0, 0,  // a b c
      1, 0, 0, 0, 0,  // x: unknown
  };
  CHECK(d.features == expected);
  CHECK(d.labels == std::vector<std::int32_t>{0, 2, 1, 0});
  CHECK(d.class_ids == std::vector<std::int32_t>{0, 1, 2});
  CHECK(d.vocabulary == v.fingerprint());
  CHECK(d.vocabulary != 0);
  // a word of exactly L characters has no pad
  const auto full = gt::tokenize({U"abcab"}, {3}, v, 5, "full");
  CHECK(full.features == std::vector<float>{2, 3, 4, 2, 3});
  CHECK(full.class_ids.size() == 4);

  // transforms keep the fingerprint (gather); a dataset not made by tokenize has none
  CHECK(d.shuffled(graft::seed{3}).vocabulary == v.fingerprint());
  CHECK(d.take(2).vocabulary == v.fingerprint());
  CHECK(d.subset({3, 0}).vocabulary == v.fingerprint());
  CHECK(d.only_classes({0, 2}).vocabulary == v.fingerprint());
  CHECK(d.few_shot(1, graft::seed{1}).vocabulary == v.fingerprint());
  CHECK(d.relabeled().vocabulary == v.fingerprint());
  CHECK(graft::data::make_classification("plain", {2}, {0, 1}, {0}, 1).vocabulary == 0);
}

TEST_CASE("tokenize refuses a word longer than L, an empty word and mismatched labels") {
  const auto v = gt::char_vocabulary::from_words({U"abc"});
  const std::vector<std::u32string> words = {U"ab", U"abcabc", U"c"};
  CHECK_THROWS_WITH_AS((void)gt::tokenize(words, {0, 1, 0}, v, 5, "words"),
                       "graft: words: word 1 (\"abcabc\") has 6 characters, more than L = 5",
                       graft::data_error);
  CHECK_NOTHROW((void)gt::tokenize(words, {0, 1, 0}, v, 6, "words"));
  CHECK_THROWS_WITH_AS((void)gt::tokenize({U"\u00E5\u00E5\u00E5"}, {0}, v, 2, "nordic"),
                       "graft: nordic: word 0 (\"\xC3\xA5\xC3\xA5\xC3\xA5\") has 3 characters, "
                       "more than L = 2",
                       graft::data_error);
  CHECK_THROWS_WITH_AS((void)gt::tokenize({U"ab", U""}, {0, 0}, v, 4, "words"),
                       "graft: words: word 1 is empty", graft::data_error);
  CHECK_THROWS_WITH_AS((void)gt::tokenize({U"ab", U"ca"}, {0, -1}, v, 4, "words"),
                       "graft: words: word 1 (\"ca\") has label -1, expected a label >= 0",
                       graft::data_error);
  CHECK_THROWS_WITH_AS((void)gt::tokenize(words, {0, 1}, v, 8, "words"),
                       "graft: tokenize(words): 3 words but 2 labels: word 2 has no label",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS((void)gt::tokenize({U"ab"}, {0, 1}, v, 8, "words"),
                       "graft: tokenize(words): 1 word but 2 labels: label 1 has no word",
                       std::invalid_argument);
  CHECK_THROWS_AS((void)gt::tokenize(words, {0, 1, 0}, v, 0, "words"), std::invalid_argument);
}

// ---- the vocabulary in the model (docs/design/sequence_models.md, section 5.3) ------------------
#include <memory>

#include <graft/graft.hpp>

#include "support/compare.hpp"
#include "support/temp_dir.hpp"

namespace {
namespace g = graft;
using vocab_net =
    g::model<g::stack<g::input_tokens<6, 16>, g::embedding<16, 4>, g::global_mean_pool_time>,
             g::classifier<2>>;
using vocab_net3 =
    g::model<g::stack<g::input_tokens<6, 16>, g::embedding<16, 4>, g::global_mean_pool_time>,
             g::classifier<3>>;

g::data::dataset vocab_words(const gt::char_vocabulary& v) {
  return gt::tokenize({U"abc", U"cab", U"bca", U"aab"}, {0, 1, 1, 0}, v, 6, "words");
}
}  // namespace

TEST_CASE("the vocabulary is stored in the embedding, saved, loaded and part of the fingerprint") {
  graft_test::temp_dir dir;
  const auto v = gt::char_vocabulary::from_words({U"abc", U"xyz\u00e5"});
  auto net = g::make_model<vocab_net>(g::seed{1});
  CHECK(net->state_description().empty());
  CHECK_THROWS_AS(gt::char_vocabulary::of(*net), std::invalid_argument);
  v.assign_to(*net);
  CHECK(gt::char_vocabulary::of(*net) == v);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(v.fingerprint()));
  CHECK(net->state_description() == "layer 0: vocabulary 9 fnv1a " + std::string(hex));
  g::save(*net, dir.file("v.graft"));

  // a fresh model adopts the file's vocabulary, by load and by load_backbone (another head)
  auto fresh = g::make_model<vocab_net>(g::seed{2});
  g::load(*fresh, dir.file("v.graft"));
  CHECK(gt::char_vocabulary::of(*fresh) == v);
  CHECK(graft_test::bitwise_equal(*net, *fresh));
  auto target = g::make_model<vocab_net3>(g::seed{3});
  g::load_backbone(*target, dir.file("v.graft"));
  CHECK(gt::char_vocabulary::of(*target) == v);

  // a model with another vocabulary refuses the file and stays as it was
  auto other = g::make_model<vocab_net>(g::seed{4});
  const auto w = gt::char_vocabulary::from_words({U"abd"});
  w.assign_to(*other);
  const auto before = std::make_unique<vocab_net>(*other);
  CHECK_THROWS_WITH_AS(g::load(*other, dir.file("v.graft")),
                       doctest::Contains("vocabulary differs (file: layer 0: vocabulary 9 fnv1a"),
                       g::io_error);
  CHECK(graft_test::bitwise_equal(*other, *before));
  CHECK(gt::char_vocabulary::of(*other) == w);

  // a model with a vocabulary refuses a file without one
  auto plain = g::make_model<vocab_net>(g::seed{5});
  g::save(*plain, dir.file("plain.graft"));
  CHECK_THROWS_WITH_AS(g::load(*other, dir.file("plain.graft")),
                       doctest::Contains("the file's model has no vocabulary"), g::io_error);
  // the vocabulary is in the fingerprint: the two files' backbone fingerprints differ
  CHECK(g::detail::read_file(dir.file("v.graft")) != g::detail::read_file(dir.file("plain.graft")));

  // too many characters for V
  std::u32string many;
  for (char32_t c = U'a'; c < U'a' + 20; ++c) many += c;
  CHECK_THROWS_AS(gt::char_vocabulary::from_words({many}).assign_to(*plain), std::invalid_argument);
}

TEST_CASE("training and evaluation refuse data tokenized with another vocabulary") {
  const auto v = gt::char_vocabulary::from_words({U"abc"});
  const auto w = gt::char_vocabulary::from_words({U"abcd"});
  auto net = g::make_model<vocab_net>(g::seed{1});
  const auto ds = vocab_words(v);
  CHECK_THROWS_WITH_AS(g::evaluate(*net, ds), doctest::Contains("the model's is unassigned"),
                       std::invalid_argument);
  w.assign_to(*net);
  CHECK_THROWS_WITH_AS(g::pretrain(*net, ds, g::sgd{}, g::epochs{1}, g::batch<2>),
                       doctest::Contains("tokenized with another vocabulary"),
                       std::invalid_argument);
  v.assign_to(*net);
  CHECK_NOTHROW(g::pretrain(*net, ds, g::sgd{}, g::epochs{1}, g::batch<2>));
  CHECK(gt::char_vocabulary::of(*net) == v);  // training leaves the buffer as it is
}
