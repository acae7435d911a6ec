// Datasets from the files users have: .npy arrays (every dtype, format versions 1.0-3.0, every
// refusal with its file, byte offset, expected and found values, from_npy's label and feature
// checks, write_npy round trips) and CSV files through libcsv (headers, label columns by name and
// index, quoting with delimiters and line breaks inside fields, other delimiters, CRLF, every
// refusal with its file, line and column). The CSV cases compile only with libcsv.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "graft/data/data.hpp"
#ifdef GRAFT_HAVE_LIBCSV
#include "graft/data/csv.hpp"
#endif
#include "support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
namespace gd = graft::data;
using bytes = std::vector<unsigned char>;
using graft_test::temp_dir;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

void write_raw(const std::string& path, const bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  REQUIRE(f.good());
}

void put_le(bytes& out, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

// ---- .npy ------------------------------------------------------------------------------------

/// The header dict np.save writes for descr and shape (shape as Python prints it), unpadded.
std::string npy_dict(const std::string& descr, const std::string& shape,
                     const std::string& fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }\n";
}

/// A .npy file: magic, version major.0, the header length (2 bytes for 1.0, 4 after), the
/// header as given, then the data.
bytes npy_file(const std::string& header, const bytes& data, unsigned major = 1) {
  bytes b = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(major), 0};
  put_le(b, header.size(), major == 1 ? 2 : 4);
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

/// The byte offset of part of a version 1.0 header in the file (the header starts at byte 10).
std::uint64_t at(const std::string& header, const std::string& part) {
  const auto p = header.find(part);
  REQUIRE(p != std::string::npos);
  return 10 + p;
}

template <class T> bytes le_data(const std::vector<T>& values) {
  bytes b;
  for (T v : values) {
    if constexpr (sizeof(T) == 1)
      b.push_back(static_cast<unsigned char>(v));
    else if constexpr (sizeof(T) == 4)
      put_le(b, std::bit_cast<std::uint32_t>(v), 4);
    else
      put_le(b, std::bit_cast<std::uint64_t>(v), 8);
  }
  return b;
}

/// what() of the data_error parse_npy throws for file (named "bad.npy"), its offset in *offset.
std::string npy_error(const bytes& file, std::uint64_t* offset = nullptr) {
  try {
    (void)gd::parse_npy("bad.npy", file.data(), file.size());
  } catch (const graft::data_error& e) {
    CHECK(e.file() == "bad.npy");
    if (offset != nullptr) *offset = e.offset();
    return e.what();
  }
  return "<no data_error>";
}

struct npy_good {
  const char* name;
  const char* descr;
  gd::npy_dtype dtype;
  bytes data;
  std::vector<double> values;  // the 6 elements of a (2, 3) array
};

std::vector<npy_good> npy_goods() {
  return {
      {"float32",
       "<f4",
       gd::npy_dtype::float32,
       le_data<float>({-1.5f, 0.0f, 3.25f, 0.125f, -1e6f, 65504.0f}),
       {-1.5, 0.0, 3.25, 0.125, -1e6, 65504.0}},
      {"float64",
       "<f8",
       gd::npy_dtype::float64,
       le_data<double>({-1.5, 0.0, 0.1, 1e300, -2.5e-300, 42.0}),
       {-1.5, 0.0, 0.1, 1e300, -2.5e-300, 42.0}},
      {"uint8",
       "|u1",
       gd::npy_dtype::uint8,
       le_data<std::uint8_t>({0, 1, 127, 128, 200, 255}),
       {0, 1, 127, 128, 200, 255}},
      {"int32",
       "<i4",
       gd::npy_dtype::int32,
       le_data<std::int32_t>({std::numeric_limits<std::int32_t>::min(), -1, 0, 0x01020304, -70000,
                              std::numeric_limits<std::int32_t>::max()}),
       {-2147483648.0, -1, 0, 16909060, -70000, 2147483647.0}},
      {"int64",
       "<i8",
       gd::npy_dtype::int64,
       le_data<std::int64_t>({-(std::int64_t{1} << 40), -1, 0, 7, std::int64_t{1} << 52, 3}),
       {-1099511627776.0, -1, 0, 7, 4503599627370496.0, 3}},
  };
}

struct npy_bad {
  const char* name;
  bytes file;
  std::uint64_t offset;
  std::vector<std::string> parts;  // substrings of what() besides the file name and offset
};

std::vector<npy_bad> npy_bads() {
  const bytes f12 = le_data<float>({1, 2, 3});
  const std::string ok = npy_dict("<f4", "(3,)");
  auto with_header = [&](const std::string& h) { return npy_file(h, f12); };
  auto bad_header = [&](const char* name, const std::string& h, const std::string& where,
                        std::vector<std::string> parts) {
    return npy_bad{name, with_header(h), at(h, where), std::move(parts)};
  };
  const std::string two_descr = "{'descr': '<f4', 'descr': '<f4', 'shape': (3,)}";
  const std::string huge = npy_dict("<f8", "(4294967296, 4294967296)");
  const std::string digits = npy_dict("<f4", "(99999999999999999999999,)");
  return {
      {"empty", {}, 0, {"expected the 6-byte magic \\x93NUMPY", "found the end of the file"}},
      {"magic", {0x93, 'N', 'U', 'M', 'P', 'X', 1, 0}, 5, {"expected the magic", "found 0x58"}},
      {"npz",
       {'P', 'K', 3, 4, 20, 0, 0, 0},
       0,
       {"found 0x50 'P' (a zip archive: an .npz file from np.savez"}},
      {"version 4.0",
       {0x93, 'N', 'U', 'M', 'P', 'Y', 4, 0, 0, 0},
       6,
       {"expected format version 1.0, 2.0 or 3.0, found 4.0"}},
      {"version 1.1",
       {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 1, 0, 0},
       6,
       {"expected format version 1.0, 2.0 or 3.0, found 1.1"}},
      {"no header length",
       {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 5},
       8,
       {"expected a 4-byte header length (format 2.0), found 1 byte"}},
      {"header length past the end",
       [&] {
         bytes b = npy_file(ok, f12);
         b[8] = 0xff;  // 255 + 256 * (its high byte)
         return b;
       }(),
       8,
       {"expected a header length of at most " + std::to_string(ok.size() + 12) +
            " (the bytes left in the file)",
        "found " + std::to_string(255 + 256 * (ok.size() >> 8))}},
      bad_header("not a dict", "['descr', '<f4']\n", "[",
                 {"expected '{' (the header is a Python dict literal), found \"['descr'"}),
      bad_header("unquoted key", "{descr: '<f4'}", "descr",
                 {"expected a key 'descr', 'fortran_order' or 'shape' in quotes"}),
      bad_header("unknown key", "{'descr': '<f4', 'order': 'C'}", "'order'",
                 {"expected a key 'descr', 'fortran_order' or 'shape', found 'order'"}),
      {"duplicate key",
       with_header(two_descr),
       10 + 17,
       {"expected each key once, found 'descr' a second time"}},
      bad_header("missing shape", "{'descr': '<f4', 'fortran_order': False}\n", "{",
                 {"expected the keys 'descr', 'fortran_order' and 'shape', found no 'shape'"}),
      bad_header("big-endian", npy_dict(">f4", "(3,)"), "'>f4'",
                 {"expected a dtype '<f4' (float32), '<f8' (float64), '|u1' (uint8), '<i4' "
                  "(int32) or '<i8' (int64)",
                  "found '>f4' (big-endian"}),
      bad_header("float16", npy_dict("<f2", "(6,)"), "'<f2'", {"found '<f2'"}),
      bad_header("bool", npy_dict("|b1", "(12,)"), "'|b1'", {"found '|b1'"}),
      bad_header("object", npy_dict("|O", "(3,)"), "'|O'", {"found '|O' (Python objects"}),
      bad_header("structured", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}",
                 "[", {"expected a simple dtype string", "found a list (a structured dtype"}),
      bad_header("fortran", npy_dict("<f4", "(3,)", "True"), "True",
                 {"expected 'fortran_order': False (C order), found True (Fortran order"}),
      bad_header("fortran lowercase", npy_dict("<f4", "(3,)", "false"), "false",
                 {"expected False or True, found \"false"}),
      bad_header("1-tuple without comma", npy_dict("<f4", "(3)"), ")",
                 {"expected ',' after the only dimension (a 1-tuple is written (n,)), found ')'"}),
      bad_header("negative dimension", npy_dict("<f4", "(-3,)"), "-3",
                 {"expected a non-negative integer dimension, found \"-3,)"}),
      bad_header("dimension text", npy_dict("<f4", "(3, x)"), "x)",
                 {"expected a non-negative integer dimension, found \"x)"}),
      bad_header("dimension separator", npy_dict("<f4", "(3; 1)"), "; 1",
                 {"expected ',' or ')' in the shape tuple, found \"; 1)"}),
      bad_header("dimension digits", digits, "99999",
                 {"expected a dimension of at most 18446744073709551615"}),
      {"data size overflow",
       with_header(huge),
       at(huge, "(4294"),
       {"expected a shape whose data size fits in 64 bits, found (4294967296, 4294967296) of "
        "float64"}},
      bad_header("unterminated string", "{'descr': '<f4", "'<f4",
                 {"expected a closing quote for this string, found the end of the header"}),
      bad_header("escape in string", "{'descr': '<f\\4'}", "\\",
                 {"expected a string without escapes or line breaks"}),
      bad_header("no comma between entries", "{'descr': '<f4' 'fortran_order': False}", "'fort",
                 {"expected ',' or '}' after the value of 'descr'"}),
      bad_header("text after the dict", npy_dict("<f4", "(3,)") + "x", "x",
                 {"expected only spaces and a newline after the header dict, found \"x\""}),
      {"truncated data",
       npy_file(ok, le_data<float>({1, 2})),
       10 + ok.size(),
       {"expected 12 data bytes (shape (3,) of <f4), found 8 (the file is truncated)"}},
      {"truncated 2-d",
       npy_file(npy_dict("<i8", "(2, 3)"), bytes(40)),
       10 + npy_dict("<i8", "(2, 3)").size(),
       {"expected 48 data bytes (shape (2, 3) of <i8), found 40"}},
      {"trailing bytes",
       [&] {
         bytes b = npy_file(ok, f12);
         b.push_back(0);
         b.push_back(0);
         return b;
       }(),
       10 + ok.size() + 12,
       {"expected the end of the file after 12 data bytes, found 2 trailing bytes"}},
  };
}

TEST_CASE("npy: every dtype, format versions 1.0, 2.0 and 3.0, from a file and from memory") {
  temp_dir dir;
  for (const npy_good& c : npy_goods()) {
    for (unsigned major = 1; major <= 3; ++major) {
      const std::string name = c.name;
      CAPTURE(name);
      CAPTURE(major);
      const bytes file = npy_file(npy_dict(c.descr, "(2, 3)"), c.data, major);
      const std::string path = dir.file(std::string(c.name) + std::to_string(major) + ".npy");
      write_raw(path, file);
      for (const gd::npy_array& a :
           {gd::read_npy(path), gd::parse_npy(path, file.data(), file.size())}) {
        CHECK(a.path == path);
        CHECK(a.dtype == c.dtype);
        CHECK(a.shape == std::vector<std::size_t>{2, 3});
        CHECK(a.count() == 6);
        CHECK(a.data == c.data);
        CHECK(a.data_offset == file.size() - c.data.size());
        for (std::size_t i = 0; i < 6; ++i) CHECK(a.at(i) == c.values[i]);
        CHECK_THROWS_AS((void)a.at(6), std::out_of_range);
        const std::vector<float> f = a.to_float();
        for (std::size_t i = 0; i < 6; ++i) CHECK(f[i] == static_cast<float>(c.values[i]));
      }
    }
  }
}

TEST_CASE("npy: what np.save writes besides: '<u1', Python 2 longs, a 0-d array, empty arrays") {
  const bytes u1 = npy_file(npy_dict("<u1", "(2,)"), {7, 9});
  CHECK(gd::parse_npy("u1", u1.data(), u1.size()).dtype == gd::npy_dtype::uint8);
  const bytes py2 = npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }\n",
                             le_data<float>({1, 2}));
  CHECK(gd::parse_npy("py2", py2.data(), py2.size()).shape == std::vector<std::size_t>{1, 2});
  // keys in another order, double quotes, no trailing comma, tabs
  const bytes other = npy_file("{\"shape\": (2,),\t\"fortran_order\": False, \"descr\": \"<i4\"}",
                               le_data<std::int32_t>({5, -5}));
  const gd::npy_array o = gd::parse_npy("other", other.data(), other.size());
  CHECK(o.dtype == gd::npy_dtype::int32);
  CHECK(o.at(1) == -5);
  const bytes scalar = npy_file(npy_dict("<f8", "()"), le_data<double>({2.5}));
  const gd::npy_array s = gd::parse_npy("scalar", scalar.data(), scalar.size());
  CHECK(s.rank() == 0);
  CHECK(s.count() == 1);
  CHECK(s.at(0) == 2.5);
  const bytes empty = npy_file(npy_dict("<f4", "(0, 3)"), {});
  const gd::npy_array e = gd::parse_npy("empty", empty.data(), empty.size());
  CHECK(e.count() == 0);
  CHECK(e.data.empty());
}

TEST_CASE("npy: every malformed file is refused with its file, offset, expected and found") {
  temp_dir dir;
  for (const npy_bad& c : npy_bads()) {
    const std::string name = c.name;
    CAPTURE(name);
    std::uint64_t offset = 0;
    const std::string what = npy_error(c.file, &offset);
    CAPTURE(what);
    CHECK(offset == c.offset);
    CHECK(contains(what, "graft: bad.npy: byte " + std::to_string(c.offset) + ": expected "));
    for (const std::string& part : c.parts) CHECK(contains(what, part));
    // the same from a file names the file
    const std::string path = dir.file("bad.npy");
    write_raw(path, c.file);
    try {
      (void)gd::read_npy(path);
      FAIL("read_npy accepted it");
    } catch (const graft::data_error& e) {
      CHECK(e.file() == path);
      CHECK(e.offset() == c.offset);
      CHECK(contains(e.what(), "graft: " + path + ": byte " + std::to_string(c.offset)));
    }
  }
}

TEST_CASE("npy: missing files and directories") {
  temp_dir dir;
  const std::string missing = dir.file("missing.npy");
  CHECK_THROWS_WITH_AS((void)gd::read_npy(missing),
                       ("graft: " + missing +
                        ": expected a readable file, found No such file or "
                        "directory")
                           .c_str(),
                       graft::data_error);
  CHECK_THROWS_WITH_AS(
      (void)gd::read_npy(dir.path.string()),
      ("graft: " + dir.path.string() + ": expected a readable file, found a directory").c_str(),
      graft::data_error);
}

TEST_CASE("npy: write_npy round trips float32 and int32, with np.save's header") {
  temp_dir dir;
  std::vector<float> x(2 * 3 * 4);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.5f - 3.0f;
  x[5] = std::numeric_limits<float>::denorm_min();
  x[6] = -0.0f;
  const std::string xp = dir.file("x.npy");
  gd::write_npy(xp, x, {2, 3, 4});
  const gd::npy_array a = gd::read_npy(xp);
  CHECK(a.dtype == gd::npy_dtype::float32);
  CHECK(a.shape == std::vector<std::size_t>{2, 3, 4});
  CHECK(a.data_offset % 64 == 0);  // np.save aligns the data to 64 bytes
  const std::vector<float> back = a.to_float();
  REQUIRE(back.size() == x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    CHECK(std::bit_cast<std::uint32_t>(back[i]) == std::bit_cast<std::uint32_t>(x[i]));
  // the header exactly as np.save writes it
  std::ifstream f(xp, std::ios::binary);
  std::string head(a.data_offset, '\0');
  f.read(head.data(), static_cast<std::streamsize>(head.size()));
  CHECK(head.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  CHECK(contains(head, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }"));
  CHECK(head.back() == '\n');

  const std::vector<std::int32_t> y = {3, -1, 0, 2147483647};
  const std::string yp = dir.file("y.npy");
  gd::write_npy(yp, y, {4});
  const gd::npy_array b = gd::read_npy(yp);
  CHECK(b.dtype == gd::npy_dtype::int32);
  CHECK(b.shape == std::vector<std::size_t>{4});
  for (std::size_t i = 0; i < y.size(); ++i) CHECK(b.at(i) == y[i]);

  gd::write_npy(yp, y.data(), {2, 2});  // replaces the file
  CHECK(gd::read_npy(yp).shape == std::vector<std::size_t>{2, 2});
  CHECK_FALSE(fs::exists(yp + ".part"));

  CHECK_THROWS_WITH_AS(gd::write_npy(yp, y, {3}), doctest::Contains("4 values for shape (3,)"),
                       std::invalid_argument);
  const std::string nowhere = dir.file("no/such/dir/z.npy");
  CHECK_THROWS_WITH_AS(gd::write_npy(nowhere, y, {4}),
                       ("graft: " + nowhere + ": expected a writable file (" + nowhere +
                        ".part), found No such file or directory")
                           .c_str(),
                       graft::data_error);
}

TEST_CASE("npy: from_npy builds a classification dataset") {
  temp_dir dir;
  const std::string xp = dir.file("x.npy"), yp = dir.file("y.npy");
  std::vector<float> x(4 * 2 * 3);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  gd::write_npy(xp, x, {4, 2, 3});
  gd::write_npy(yp, std::vector<std::int32_t>{2, 0, 1, 2}, {4});
  const gd::dataset d = gd::from_npy(xp, yp, 5, "mine");
  CHECK(d.name == "mine");
  CHECK(d.sample_shape == std::vector<std::size_t>{2, 3});
  CHECK(d.size() == 4);
  CHECK(d.features == x);
  CHECK(d.labels == std::vector<std::int32_t>{2, 0, 1, 2});
  CHECK(d.class_ids == std::vector<std::int32_t>{0, 1, 2, 3, 4});
  // classes 0: the largest label + 1; the name defaults to the features' path
  const gd::dataset inferred = gd::from_npy(xp, yp, 0);
  CHECK(inferred.name == xp);
  CHECK(inferred.num_classes() == 3);

  // uint8 features are divided by 255 (as from_idx does), int64 labels, (n,) features
  const bytes u8 = npy_file(npy_dict("|u1", "(3,)"), {0, 51, 255});
  const bytes l8 = npy_file(npy_dict("<i8", "(3,)"), le_data<std::int64_t>({1, 0, 1}));
  const gd::dataset p = gd::from_npy(gd::parse_npy("u8", u8.data(), u8.size()),
                                     gd::parse_npy("l8", l8.data(), l8.size()), 2);
  CHECK(p.sample_shape == std::vector<std::size_t>{1});
  CHECK(p.features == std::vector<float>{0.0f, 0.2f, 1.0f});
  CHECK(p.labels == std::vector<std::int32_t>{1, 0, 1});
}

/// what() of the data_error from_npy throws for arrays made from these files.
std::string from_npy_error(const bytes& x, const bytes& y, std::size_t classes,
                           std::uint64_t* offset = nullptr) {
  try {
    (void)gd::from_npy(gd::parse_npy("x.npy", x.data(), x.size()),
                       gd::parse_npy("y.npy", y.data(), y.size()), classes);
  } catch (const graft::data_error& e) {
    if (offset != nullptr) *offset = e.offset();
    return e.what();
  }
  return "<no data_error>";
}

TEST_CASE("npy: from_npy refuses labels and features it cannot use") {
  const std::string xh = npy_dict("<f4", "(3, 2)");
  const bytes x = npy_file(xh, le_data<float>({1, 2, 3, 4, 5, 6}));
  const std::string yh = npy_dict("<i4", "(3,)");
  const std::size_t y_data = 10 + yh.size();
  std::uint64_t offset = 0;

  // a label out of range: the file, the offset of the element, its index and value
  const bytes y_big = npy_file(yh, le_data<std::int32_t>({0, 1, 7}));
  CHECK(from_npy_error(x, y_big, 3, &offset) ==
        "graft: y.npy: byte " + std::to_string(y_data + 8) +
            ": expected a label in [0, 3), found 7 (element 2)");
  CHECK(offset == y_data + 8);
  const bytes y_neg = npy_file(yh, le_data<std::int32_t>({0, -1, 1}));
  CHECK(from_npy_error(x, y_neg, 3) == "graft: y.npy: byte " + std::to_string(y_data + 4) +
                                           ": expected a label in [0, 3), found -1 (element 1)");
  CHECK(from_npy_error(x, y_big, 0) == "<no data_error>");  // classes inferred: 7 is fine
  const std::string y8h = npy_dict("<i8", "(3,)");
  const bytes y_huge = npy_file(y8h, le_data<std::int64_t>({0, std::int64_t{1} << 40, 1}));
  CHECK(contains(from_npy_error(x, y_huge, 0),
                 "expected a label in [0, 65535] (pass classes for more), found 1099511627776 "
                 "(element 1)"));
  // float labels, labels of shape (n, 1), too few labels
  const std::string yfh = npy_dict("<f4", "(3,)");
  CHECK(from_npy_error(x, npy_file(yfh, le_data<float>({0, 1, 2})), 3, &offset) ==
        "graft: y.npy: byte 20: expected labels of an integer dtype ('|u1', '<i4' or '<i8'), found "
        "'<f4' (float32: save y.astype(np.int64))");
  const std::string y2h = npy_dict("<i4", "(3, 1)");
  CHECK(from_npy_error(x, npy_file(y2h, le_data<std::int32_t>({0, 1, 2})), 3) ==
        "graft: y.npy: byte " + std::to_string(at(y2h, "(3, 1)")) +
            ": expected labels of shape (samples,) (one per sample: save y.ravel()), found (3, 1)");
  const std::string y1h = npy_dict("<i4", "(2,)");
  CHECK(from_npy_error(x, npy_file(y1h, le_data<std::int32_t>({0, 1})), 3) ==
        "graft: x.npy: byte " + std::to_string(at(xh, "(3, 2)")) +
            ": expected as many samples as the 2 labels in y.npy, found (3, 2): 3 samples");
  // a NaN feature and a float64 value beyond float's range, by element
  const bytes y_ok = npy_file(yh, le_data<std::int32_t>({0, 1, 2}));
  const bytes x_nan =
      npy_file(xh, le_data<float>({1, 2, 3, std::numeric_limits<float>::quiet_NaN(), 5, 6}));
  CHECK(from_npy_error(x_nan, y_ok, 3) == "graft: x.npy: byte " +
                                              std::to_string(10 + xh.size() + 12) +
                                              ": expected a finite value, found nan (element 3)");
  const std::string x8h = npy_dict("<f8", "(3, 2)");
  const bytes x_big = npy_file(x8h, le_data<double>({1, 2, 3, 4, 1e300, 6}));
  CHECK(from_npy_error(x_big, y_ok, 3) == "graft: x.npy: byte " +
                                              std::to_string(10 + x8h.size() + 32) +
                                              ": expected a value within float range, found "
                                              "1e+300 (element 4)");
  // no samples, or samples of no values
  const std::string x0h = npy_dict("<f4", "(0, 2)");
  CHECK(contains(from_npy_error(npy_file(x0h, {}), y_ok, 3),
                 "expected features of shape (samples, ...) with samples > 0, found (0, 2)"));
  const std::string x30h = npy_dict("<f4", "(3, 0)");
  CHECK(contains(from_npy_error(npy_file(x30h, {}), y_ok, 3),
                 "expected samples of at least one value, found (3, 0)"));
}

TEST_CASE("npy: from_npy_regression takes targets of shape (n,) or (n, k)") {
  const bytes x = npy_file(npy_dict("<f4", "(2, 2)"), le_data<float>({1, 2, 3, 4}));
  const bytes t1 = npy_file(npy_dict("<f8", "(2,)"), le_data<double>({0.5, -0.5}));
  const bytes t2 = npy_file(npy_dict("<i4", "(2, 3)"), le_data<std::int32_t>({1, 2, 3, 4, 5, 6}));
  const gd::npy_array xa = gd::parse_npy("x.npy", x.data(), x.size());
  const gd::dataset a =
      gd::from_npy_regression(xa, gd::parse_npy("t1.npy", t1.data(), t1.size()), "reg");
  CHECK(a.name == "reg");
  CHECK(a.target_size == 1);
  CHECK(a.targets == std::vector<float>{0.5f, -0.5f});
  CHECK_FALSE(a.has_labels());
  const gd::dataset b = gd::from_npy_regression(xa, gd::parse_npy("t2.npy", t2.data(), t2.size()));
  CHECK(b.target_size == 3);
  CHECK(b.targets == std::vector<float>{1, 2, 3, 4, 5, 6});
  const bytes t3 = npy_file(npy_dict("<f4", "(3,)"), le_data<float>({1, 2, 3}));
  CHECK_THROWS_WITH_AS(
      (void)gd::from_npy_regression(xa, gd::parse_npy("t3.npy", t3.data(), t3.size())),
      doctest::Contains("graft: t3.npy: byte 60: expected targets of shape (2, ...) (one per "
                        "sample of x.npy), found (3,)"),
      graft::data_error);
}

// ---- CSV ---------------------------------------------------------------------------------------
#ifdef GRAFT_HAVE_LIBCSV

void write_text(const std::string& path, const std::string& s) {
  write_raw(path, bytes(s.begin(), s.end()));
}

gd::dataset csv(const std::string& text, const gd::csv_options& o = {}) {
  return gd::parse_csv("mem.csv", reinterpret_cast<const unsigned char*>(text.data()), text.size(),
                       o);
}

/// what() of the csv_error parse_csv throws for text (named "mem.csv"), or "<no csv_error>".
std::string csv_error_of(const std::string& text, const gd::csv_options& o = {}) {
  try {
    (void)csv(text, o);
  } catch (const gd::csv_error& e) {
    CHECK(e.file() == "mem.csv");
    return e.what();
  }
  return "<no csv_error>";
}

TEST_CASE("csv: a header row, the label in the last column, classes inferred") {
  temp_dir dir;
  const std::string path = dir.file("iris.csv");
  write_text(path,
             "sepal_length,sepal_width,species\n"
             "5.1,3.5,0\n"
             "4.9,3.0,0\n"
             "6.3,-2.5e1,2\n");
  const gd::dataset d = gd::read_csv(path);
  CHECK(d.name == path);
  CHECK(d.sample_shape == std::vector<std::size_t>{2});
  CHECK(d.size() == 3);
  CHECK(d.features == std::vector<float>{5.1f, 3.5f, 4.9f, 3.0f, 6.3f, -25.0f});
  CHECK(d.labels == std::vector<std::int32_t>{0, 0, 2});
  CHECK(d.class_ids == std::vector<std::int32_t>{0, 1, 2});
  // classes given: class_ids 0..classes-1 even when some class has no row
  gd::csv_options o;
  o.classes = 5;
  o.name = "iris";
  const gd::dataset e = gd::read_csv(path, o);
  CHECK(e.name == "iris");
  CHECK(e.class_ids.size() == 5);
}

TEST_CASE("csv: the label column by name or index, and without a header") {
  const std::string text = "a,label,b\n1,1,2\n3,0,4\n";
  gd::csv_options by_name;
  by_name.label_column = "label";
  const gd::dataset d = csv(text, by_name);
  CHECK(d.features == std::vector<float>{1, 2, 3, 4});
  CHECK(d.labels == std::vector<std::int32_t>{1, 0});
  gd::csv_options by_index;
  by_index.label_index = 1;
  CHECK(csv(text, by_index).labels == d.labels);
  by_index.label_index = -2;
  CHECK(csv(text, by_index).labels == d.labels);
  by_index.label_index = 0;
  CHECK(csv(text, by_index).labels == std::vector<std::int32_t>{1, 3});

  gd::csv_options no_header;
  no_header.header = false;
  const gd::dataset n = csv("1,2,1\n3,4,0\n", no_header);
  CHECK(n.size() == 2);
  CHECK(n.features == std::vector<float>{1, 2, 3, 4});
  CHECK(n.labels == std::vector<std::int32_t>{1, 0});
  no_header.label_column = "label";
  CHECK_THROWS_AS((void)csv("1,2\n", no_header), std::invalid_argument);
  gd::csv_options quote;
  quote.delimiter = '"';
  CHECK_THROWS_AS((void)csv("1,2\n", quote), std::invalid_argument);
}

TEST_CASE("csv: numbers as from_chars reads them, integral labels written as floats") {
  const gd::dataset d = csv("x,y,l\n+1.5, 2 ,1.0\n\"-0.25\",\" 1e-3 \",2e0\n1e-50,.5,0\n");
  CHECK(d.features == std::vector<float>{1.5f, 2.0f, -0.25f, 1e-3f, 0.0f, 0.5f});
  CHECK(d.labels == std::vector<std::int32_t>{1, 2, 0});
}

TEST_CASE("csv: quoted fields with delimiters, quotes and line breaks; lines count them") {
  // The header spans lines 1-2 (a line break inside a quoted name), so the data rows are on
  // lines 3-5 and the error on line 5.
  const std::string text =
      "\"x, in cm\",\"say \"\"y\"\"\",\"the\nlabel\"\n"
      "1,2,0\n"
      "\"3\",\"4\",\"1\"\n"
      "5,oops,1\n";
  const std::string what = csv_error_of(text);
  CHECK(what ==
        "graft: mem.csv: line 5, column 2 (\"say \"y\"\"): expected a number, found "
        "\"oops\"");
  gd::csv_options o;
  o.label_column = "the\nlabel";
  const gd::dataset d = csv("\"x, in cm\",\"the\nlabel\"\n1,0\n\"2\",\"1\"\n", o);
  CHECK(d.features == std::vector<float>{1, 2});
  CHECK(d.labels == std::vector<std::int32_t>{0, 1});
  // a bad field that spans lines 3-4 is named by the line it starts on; the next line is 5
  const std::string spans = "a,b,l\n1,2,0\n1,\"2\n\",0\n3,x,1\n";
  CHECK(csv_error_of(spans) ==
        "graft: mem.csv: line 3, column 2 (\"b\"): expected a number, found \"2\\n\"");
  try {
    (void)csv("a,b,l\n1,2,0\n\"1\r\n\r\n\",2,0\n");
    FAIL("accepted");
  } catch (const gd::csv_error& e) {
    CHECK(e.line() == 3);
    CHECK(e.column() == 1);
    CHECK(e.column_name() == "a");
  }
}

TEST_CASE("csv: other delimiters (';' and tab), CRLF and CR line ends, blank lines, a BOM") {
  gd::csv_options semi;
  semi.delimiter = ';';
  const gd::dataset s = csv("a;\"b;c\";l\n1.5;\"2\";1\n", semi);
  CHECK(s.features == std::vector<float>{1.5f, 2.0f});
  CHECK(csv_error_of("a;\"b;c\";l\n1.5;x;1\n", semi) ==
        "graft: mem.csv: line 2, column 2 (\"b;c\"): expected a number, found \"x\"");
  CHECK(csv_error_of("a;b;l\n1,5;2;0\n", semi) ==
        "graft: mem.csv: line 2, column 1 (\"a\"): expected a number, found \"1,5\"");
  gd::csv_options tab;
  tab.delimiter = '\t';
  const gd::dataset t = csv("a\tb\tl\n 1\t2 \t1\n3\t\"4\"\t0\n", tab);
  CHECK(t.features == std::vector<float>{1, 2, 3, 4});
  CHECK(t.labels == std::vector<std::int32_t>{1, 0});
  CHECK(csv_error_of("a\tb\tl\n1\t\t1\n", tab) ==
        "graft: mem.csv: line 2, column 2 (\"b\"): expected a number, found an empty field");

  const gd::dataset crlf = csv("a,b,l\r\n1,2,1\r\n3,4,0\r\n");
  CHECK(crlf.features == std::vector<float>{1, 2, 3, 4});
  CHECK(csv_error_of("a,b,l\r\n1,2,1\r\n\r\n3,4\r\n") ==
        "graft: mem.csv: line 4: expected 3 fields (as in the header, line 1), found 2");
  CHECK(csv_error_of("a,b,l\r1,2,1\r3,x,0\r") ==
        "graft: mem.csv: line 3, column 2 (\"b\"): expected a number, found \"x\"");
  // blank lines are skipped and counted; no newline at the end is fine
  CHECK(csv("\n\na,b,l\n\n1,2,1\n\n3,4,0").size() == 2);
  CHECK(csv_error_of("\n\na,b,l\n\n1,2,1\n\n3,4,-1") ==
        "graft: mem.csv: line 7, column 3 (\"l\"): expected an integer label in [0, 65535] (set "
        "classes for more), found \"-1\"");
  // a UTF-8 byte order mark (spreadsheets write one) is not part of the first name
  gd::csv_options first;
  first.label_column = "l";
  CHECK(csv("\xEF\xBB\xBFl,a\n1,2\n", first).labels == std::vector<std::int32_t>{1});
}

TEST_CASE("csv: every refusal names the file, the line and the column") {
  gd::csv_options three;
  three.classes = 3;
  const std::string h = "a,b,l\n";
  CHECK(csv_error_of("") ==
        "graft: mem.csv: expected a header row and rows of data, found an empty file (no rows)");
  CHECK(csv_error_of("\n\r\n\n") ==
        "graft: mem.csv: expected a header row and rows of data, found an empty file (no rows)");
  CHECK(csv_error_of(h) ==
        "graft: mem.csv: line 1: expected rows of data after the header, found none");
  CHECK(csv_error_of(h + "1,2,0\n1,2\n") ==
        "graft: mem.csv: line 3: expected 3 fields (as in the header, line 1), found 2");
  CHECK(csv_error_of(h + "1,2,0,4\n") ==
        "graft: mem.csv: line 2: expected 3 fields (as in the header, line 1), found 4");
  gd::csv_options no_header;
  no_header.header = false;
  CHECK(csv_error_of("1,2,0\n1,2,0,5\n", no_header) ==
        "graft: mem.csv: line 2: expected 3 fields (as in the first row, line 1), found 4");
  CHECK(csv_error_of(h + "1,abc,0\n") ==
        "graft: mem.csv: line 2, column 2 (\"b\"): expected a number, found \"abc\"");
  CHECK(csv_error_of(h + "1,,0\n") ==
        "graft: mem.csv: line 2, column 2 (\"b\"): expected a number, found an empty field");
  CHECK(csv_error_of(h + "1,\"\",0\n") ==
        "graft: mem.csv: line 2, column 2 (\"b\"): expected a number, found an empty field");
  CHECK(csv_error_of(h + "nan,1,0\n") ==
        "graft: mem.csv: line 2, column 1 (\"a\"): expected a finite number, found \"nan\"");
  CHECK(csv_error_of(h + "1,-inf,0\n") ==
        "graft: mem.csv: line 2, column 2 (\"b\"): expected a finite number, found \"-inf\"");
  CHECK(csv_error_of(h + "1e39,1,0\n") ==
        "graft: mem.csv: line 2, column 1 (\"a\"): expected a number within float range "
        "(magnitude at most 3.4e38), found \"1e39\"");
  CHECK(csv_error_of(h + "0x10,1,0\n") ==
        "graft: mem.csv: line 2, column 1 (\"a\"): expected a number, found \"0x10\"");
  CHECK(csv_error_of(h + "1,2,3\n", three) ==
        "graft: mem.csv: line 2, column 3 (\"l\"): expected an integer label in [0, 3), found "
        "\"3\"");
  CHECK(csv_error_of(h + "1,2,1.5\n", three) ==
        "graft: mem.csv: line 2, column 3 (\"l\"): expected an integer label in [0, 3), found "
        "\"1.5\"");
  CHECK(csv_error_of(h + "1,2,cat\n", three) ==
        "graft: mem.csv: line 2, column 3 (\"l\"): expected an integer label in [0, 3), found "
        "\"cat\"");
  CHECK(csv_error_of(h + "1,2,\n", three) ==
        "graft: mem.csv: line 2, column 3 (\"l\"): expected an integer label in [0, 3), found an "
        "empty field");
  CHECK(csv_error_of(h + "1,2,99999999999999999999\n") ==
        "graft: mem.csv: line 2, column 3 (\"l\"): expected an integer label in [0, 65535] (set "
        "classes for more), found \"99999999999999999999\"");
  // without a header a column has no name
  CHECK(csv_error_of("1,x,0\n", no_header) ==
        "graft: mem.csv: line 1, column 2: expected a number, found \"x\"");
  // malformed quoting (libcsv's strict mode)
  CHECK(csv_error_of(h + "1,\"2\"x,0\n") ==
        "graft: mem.csv: line 2, column 2 (\"b\"): expected the delimiter ',' or the end of the "
        "line after the closing quote, found 'x'");
  CHECK(csv_error_of(h + "1,2\"3,0\n") ==
        "graft: mem.csv: line 2, column 2 (\"b\"): expected no quote inside an unquoted field "
        "(quote the whole field and double its quotes), found a quote");
  CHECK(csv_error_of(h + "1,2,0\n3,\"4,0\n5,6,1\n") ==
        "graft: mem.csv: line 3, column 2 (\"b\"): expected a closing quote for the quoted field "
        "that starts here, found the end of the file");
  // long text is cut in the message
  CHECK(csv_error_of(h + std::string(100, 'z') + ",1,0\n") ==
        "graft: mem.csv: line 2, column 1 (\"a\"): expected a number, found \"" +
            std::string(40, 'z') + "...\"");
}

TEST_CASE("csv: column choices that do not fit the file") {
  gd::csv_options species;
  species.label_column = "species";
  CHECK(csv_error_of("a,b,label\n1,2,0\n", species) ==
        "graft: mem.csv: line 1: expected a column named \"species\" (label_column), found the "
        "columns \"a\", \"b\", \"label\"");
  CHECK(csv_error_of("species,b,species\n1,2,0\n", species) ==
        "graft: mem.csv: line 1: expected one column named \"species\" (label_column), found "
        "columns 1 and 3");
  gd::csv_options index;
  index.label_index = 3;
  CHECK(csv_error_of("a,b,l\n1,2,0\n", index) ==
        "graft: mem.csv: line 1: expected a column at label_index 3 (0-based, negative from the "
        "end), found 3 columns");
  CHECK(csv_error_of("l\n1\n") ==
        "graft: mem.csv: line 1: expected at least one feature column besides the label column, "
        "found 1 column");
}

TEST_CASE("csv: regression targets by name (in the order given) or index") {
  const std::string text = "x1,y1,x2,y2\n1,10,2,20\n3,30,4,40\n";
  gd::csv_regression_options by_name;
  by_name.target_columns = {"y2", "y1"};
  const gd::dataset d = gd::parse_csv_regression(
      "mem.csv", reinterpret_cast<const unsigned char*>(text.data()), text.size(), by_name);
  CHECK(d.sample_shape == std::vector<std::size_t>{2});
  CHECK(d.features == std::vector<float>{1, 2, 3, 4});
  CHECK(d.target_size == 2);
  CHECK(d.targets == std::vector<float>{20, 10, 40, 30});
  CHECK_FALSE(d.has_labels());
  const gd::dataset last = gd::parse_csv_regression(
      "mem.csv", reinterpret_cast<const unsigned char*>(text.data()), text.size());
  CHECK(last.target_size == 1);
  CHECK(last.targets == std::vector<float>{20, 40});
  CHECK(last.features == std::vector<float>{1, 10, 2, 3, 30, 4});
  gd::csv_regression_options twice;
  twice.target_indices = {1, -3};
  CHECK_THROWS_WITH_AS(
      (void)gd::parse_csv_regression("mem.csv", reinterpret_cast<const unsigned char*>(text.data()),
                                     text.size(), twice),
      "graft: mem.csv: line 1, column 2 (\"y1\"): expected each column once in "
      "target_indices, found this one twice",
      gd::csv_error);
}

TEST_CASE("csv: a file larger than the 64 KiB pieces it is read in, CRLF split between two") {
  temp_dir dir;
  std::string text = "a,b,label\r\n";
  std::size_t rows = 0;
  // rows until a '\r' falls on the last byte of the first 64 KiB piece (the '\n' starts the next)
  while (text.size() < 65536 - 40) {
    text += std::to_string(rows) + "," + std::to_string(rows % 7) + ".5," +
            std::to_string(rows % 3) + "\r\n";
    ++rows;
  }
  std::string last = "1,2,0";
  last.insert(0, 65536 - 1 - text.size() - last.size(), ' ');  // leading spaces are dropped
  text += last + "\r\n";
  ++rows;
  REQUIRE(text[65535] == '\r');
  while (rows < 20000) {
    text += std::to_string(rows) + ",1,2\r\n";
    ++rows;
  }
  const std::string path = dir.file("big.csv");
  write_text(path, text);
  gd::csv_options o;
  o.classes = 3;
  const gd::dataset d = gd::read_csv(path, o);
  CHECK(d.size() == rows);
  CHECK(d.features[2 * 9999] == 9999.0f);
  // an error far into the file names its line (header + 15000 rows before it)
  write_text(path, text + "1,2,3\r\n");
  CHECK_THROWS_WITH_AS((void)gd::read_csv(path, o),
                       ("graft: " + path + ": line " + std::to_string(rows + 2) +
                        ", column 3 (\"label\"): expected an integer label in [0, 3), found \"3\"")
                           .c_str(),
                       gd::csv_error);
  const std::string missing = dir.file("missing.csv");
  CHECK_THROWS_WITH_AS((void)gd::read_csv(missing),
                       ("graft: " + missing +
                        ": expected a readable file, found No such file or "
                        "directory")
                           .c_str(),
                       graft::data_error);
}

#endif  // GRAFT_HAVE_LIBCSV

}  // namespace

// Found by fuzz_csv (CI, stop 22): a file of two byte order marks fed as two pieces lost the second
// one (the reader still thought it was at the file's start after the first piece), so the pieces
// and the whole file disagreed. Every split into two or three pieces must give what the whole
// file gives, including splits inside a byte order mark.
TEST_CASE("csv: feeding a file in pieces gives the whole file's result at every split") {
  const std::vector<std::string> files = {
      "\xEF\xBB\xBF\xEF\xBB\xBF",            // two BOMs: the second is data (one field)
      "\xEF\xBB\xBFl,a\n1,2\n",              // a BOM before the header
      "\xEF\xBB\xBF\xEF\xBB\xBFl,a\n1,2\n",  // the second BOM is part of the first name
      "\xEF\xBB"
      "l,a\n1,2\n",  // half a BOM: data
      "l,a\n1,2\n\xEF\xBB\xBF"
      "3,4\n"};  // a BOM inside the file: data
  gd::csv_options o;
  o.label_column = "l";
  const gd::detail::csv_reader::selection which = gd::detail::csv_label_selection(o);
  auto outcome = [&](const std::vector<std::size_t>& cuts, const std::string& f) {
    try {
      gd::detail::csv_reader r("mem.csv", o.delimiter, o.header, which);
      std::size_t at = 0;
      for (std::size_t c : cuts) {
        r.feed(reinterpret_cast<const unsigned char*>(f.data()) + at, c - at);
        at = c;
      }
      r.feed(reinterpret_cast<const unsigned char*>(f.data()) + at, f.size() - at);
      r.finish();
      const gd::dataset d = gd::detail::csv_classification(r, "mem.csv", 0);
      std::string s = "ok";
      for (float v : d.features) s += " " + std::to_string(v);
      for (auto l : d.labels) s += " l" + std::to_string(l);
      return s;
    } catch (const graft::data_error& e) {
      return std::string(e.what());
    }
  };
  for (const std::string& f : files) {
    const std::string whole = outcome({}, f);
    for (std::size_t i = 0; i <= f.size(); ++i) {
      CHECK_MESSAGE(outcome({i}, f) == whole, "split at ", i);
      for (std::size_t j = i; j <= f.size() && j < 5; ++j)
        CHECK_MESSAGE(outcome({i, j}, f) == whole, "split at ", i, " and ", j);
    }
  }
  CHECK(outcome({}, files[1]) == "ok 2.000000 l1");
  CHECK(contains(outcome({}, files[2]), "\xEF\xBB\xBFl"));
}
