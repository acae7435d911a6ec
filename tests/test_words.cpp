// Word lists (graft/data/words.hpp, libutf8proc) on the fixtures of tests/fixtures/words: a
// Latin-1 list with å ä ö, a UTF-8 list with an NFD entry, upper case, hyphens, apostrophes,
// digits, multi-word lines, duplicates, CRLF lines and words outside [3, 16]; both cleaned exactly
// as expected (the expected lists were computed once with Python's unicodedata, by the rules of
// the header); a Latin-1 file with a C1 byte and a UTF-8 file with a bad byte refused naming the
// file and the byte; the second NFC; drop_shared_words.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "graft/data/text.hpp"
#include "graft/data/words.hpp"

namespace {

namespace gt = graft::text;
using list = std::vector<std::u32string>;

const std::string dir = GRAFT_WORDS_FIXTURES;

list parse(const std::string& bytes, gt::word_filter f = {}) {
  return gt::parse_word_list("memory", reinterpret_cast<const unsigned char*>(bytes.data()),
                             bytes.size(), gt::text_encoding::utf8, f);
}

}  // namespace

TEST_CASE("read_word_list: a Latin-1 list with \xC3\xA5 \xC3\xA4 \xC3\xB6, cleaned exactly") {
  // Åsa ärlig öga ö ärlig Älg's hus skörd-tid Ärlig ÖVERSÄTTNING sjuttonbokstäverx ål "två ord",
  // with CRLF on every third line
  const list expected = {U"hus", U"\u00E4rlig", U"\u00E5sa", U"\u00F6ga",
                         U"\u00F6vers\u00E4ttning"};
  CHECK(gt::read_word_list(dir + "/swedish_latin1.txt", gt::text_encoding::latin1) == expected);
  // without the length filter: the one- and two-letter words and the 17-letter word come back
  const list all = {
      U"hus",      U"sjuttonbokst\u00E4verx", U"\u00E4rlig", U"\u00E5l", U"\u00E5sa", U"\u00F6",
      U"\u00F6ga", U"\u00F6vers\u00E4ttning"};
  CHECK(gt::read_word_list(dir + "/swedish_latin1.txt", gt::text_encoding::latin1, {1, 100}) ==
        all);
  CHECK(gt::read_word_list(dir + "/swedish_latin1.txt", gt::text_encoding::latin1, {4, 5}) ==
        list{U"\u00E4rlig"});
}

TEST_CASE("read_word_list: a UTF-8 list with NFD, case, punctuation, digits, duplicates, CRLF") {
  // cafe+U+0301 café Straße ÉCOLE ABC(CRLF) e-mail l'homme abc123 "new york" hus ab
  // abcdefghijklmnopq abcdefghijklmnop word(CRLF) Ωmega İstanbul A+U+030Angstro+U+0308m ""
  // "trailing " ÅNGSTRÖM Zürich fin(no final newline)
  const list expected = {
      U"abc",         U"abcdefghijklmnop",
      U"caf\u00E9",   U"fin",
      U"hus",
      U"istanbul",  // İ: the simple mapping gives i (Python's lower(): i + U+0307)
      U"stra\u00DFe", U"word",
      U"z\u00FCrich", U"\u00E5ngstr\u00F6m",
      U"\u00E9cole",  U"\u03C9mega"};
  CHECK(gt::read_word_list(dir + "/mixed_utf8.txt", gt::text_encoding::utf8) == expected);
}

TEST_CASE("read_word_list refuses a file that is not in its declared encoding, naming the byte") {
  const std::string c1 = dir + "/latin1_c1.txt";  // "ok\nbad\x85word\n"
  CHECK_THROWS_WITH_AS((void)gt::read_word_list(c1, gt::text_encoding::latin1),
                       ("graft: " + c1 +
                        ": byte 6: expected Latin-1 text (no C1 control byte 0x80-0x9F), found "
                        "0x85 (the file may be UTF-8 or CP1252)")
                           .c_str(),
                       graft::data_error);
  const std::string bad = dir + "/bad_utf8.txt";  // "abc\n\xE5xyz\n"
  CHECK_THROWS_WITH_AS(
      (void)gt::read_word_list(bad, gt::text_encoding::utf8),
      ("graft: " + bad +
       ": byte 4: expected UTF-8, found an invalid continuation byte 0x78 after 0xE5")
          .c_str(),
      graft::data_error);
  // the Latin-1 list declared UTF-8: its first byte, Å (0xC5), starts a sequence "s" cannot end
  const std::string swedish = dir + "/swedish_latin1.txt";
  CHECK_THROWS_WITH_AS(
      (void)gt::read_word_list(swedish, gt::text_encoding::utf8),
      ("graft: " + swedish +
       ": byte 0: expected UTF-8, found an invalid continuation byte 0x73 after 0xC5")
          .c_str(),
      graft::data_error);
  // a missing file names the file
  CHECK_THROWS_WITH_AS((void)gt::read_word_list(dir + "/missing.txt", gt::text_encoding::utf8),
                       doctest::Contains("missing.txt: expected a readable file"),
                       graft::data_error);
}

TEST_CASE("parse_word_list: NFC, lowercase, NFC again, letters of every L category") {
  // NFD e + U+0301 becomes one code point, so "cafe" + U+0301 has 4 characters
  CHECK(parse("cafe\xCC\x81\n", {4, 4}) == list{U"caf\u00E9"});
  // uppercase NFD: composed, then lowercased
  CHECK(parse("E\xCC\x81t\xC3\xA9\n") == list{U"\u00E9t\u00E9"});
  // the second NFC: İ + U+0301 has no composed form; lowercased to i + U+0301, which composes to í
  CHECK(parse("\xC4\xB0\xCC\x81xy\n") == list{U"\u00EDxy"});
  // singletons: OHM SIGN and KELVIN SIGN become Ω and K under NFC, then lowercase
  CHECK(parse("\xE2\x84\xA6mega\n\xE2\x84\xAA"
              "elvin\n") == list{U"kelvin", U"\u03C9mega"});
  // Lm (ʻ U+02BB), Lt (ǅ U+01C5 lowercases to ǆ U+01C6) and Lo (日本語) are letters; a combining
  // mark alone (Mn), an Arabic-Indic digit (Nd), a space and a tab are not
  CHECK(parse("\xCA\xBBokina\n\xC7\x85"
              "ab\n\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\n") ==
        list{U"\u01C6ab", U"\u02BBokina", U"\u65E5\u672C\u8A9E"});
  CHECK(parse("\xCC\x81\xCC\x81\xCC\x81\nab\xD9\xA3\nab c\nab\tc\n").empty());
  // a byte order mark is dropped; a final line without '\n'; CR only at the end of a line
  CHECK(parse("\xEF\xBB\xBFword\r\nlast") == list{U"last", U"word"});
  CHECK(parse("wo\rrd\n").empty());
  CHECK(parse("").empty());
  CHECK(parse("\n\n\r\n").empty());
  // errors name the data set and the byte
  CHECK_THROWS_WITH_AS((void)parse("word\n\xED\xA0\x80\n"),
                       "graft: memory: byte 5: expected UTF-8, found a surrogate 0xED 0xA0 0x80 "
                       "(U+D800)",
                       graft::data_error);
}

TEST_CASE("drop_shared_words drops each word present in two or more lists, exactly") {
  std::vector<list> two = {
      gt::read_word_list(dir + "/swedish_latin1.txt", gt::text_encoding::latin1),
      gt::read_word_list(dir + "/mixed_utf8.txt", gt::text_encoding::utf8)};
  const std::size_t a = two[0].size(), b = two[1].size();
  gt::drop_shared_words(two);
  CHECK(two[0] == list{U"\u00E4rlig", U"\u00E5sa", U"\u00F6ga", U"\u00F6vers\u00E4ttning"});
  CHECK(two[0].size() == a - 1);  // hus
  CHECK(two[1].size() == b - 1);
  CHECK(std::find(two[1].begin(), two[1].end(), U"hus") == two[1].end());

  std::vector<list> lists = {
      {U"abc", U"bcd", U"xyz"}, {U"bcd", U"efg"}, {}, {U"abc", U"bcd", U"hij", U"xyzz"}, {U"zzz"}};
  gt::drop_shared_words(lists);
  CHECK(lists[0] == list{U"xyz"});
  CHECK(lists[1] == list{U"efg"});
  CHECK(lists[2].empty());
  CHECK(lists[3] == list{U"hij", U"xyzz"});
  CHECK(lists[4] == list{U"zzz"});

  std::vector<list> none;
  gt::drop_shared_words(none);
  CHECK(none.empty());
  std::vector<list> one = {{U"abc", U"abd"}};
  gt::drop_shared_words(one);
  CHECK(one[0] == list{U"abc", U"abd"});

  // an unsorted list, or one with a duplicate, is refused and nothing changes
  std::vector<list> unsorted = {{U"abc", U"xyz"}, {U"xyz", U"abc"}};
  const std::vector<list> before = unsorted;
  CHECK_THROWS_WITH_AS(gt::drop_shared_words(unsorted),
                       "graft: drop_shared_words: list 1, word 1 is not after word 0: expected "
                       "sorted lists without duplicates",
                       std::invalid_argument);
  CHECK(unsorted == before);
  std::vector<list> dup = {{U"abc", U"abc"}};
  CHECK_THROWS_AS(gt::drop_shared_words(dup), std::invalid_argument);
}
