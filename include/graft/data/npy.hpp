// NumPy's .npy files (np.save), without any library: read_npy() reads one array, parse_npy()
// validates one held in memory, from_npy() / from_npy_regression() build a dataset from a
// features file and a labels (or targets) file, write_npy() writes float32 or int32 arrays.
//
// The format: the magic "\x93NUMPY", a version byte pair (1.0, 2.0 or 3.0), the header length
// (little-endian uint16 for 1.0, uint32 for 2.0 and 3.0), the header, a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// padded with spaces and a newline, then the data in C order. graft reads the little-endian dtypes
// '<f4' float32, '<f8' float64, '|u1' uint8, '<i4' int32 and '<i8' int64 in C order; big-endian,
// Fortran order, other dtypes and pickled objects are refused (never unpickled). The data must be
// exactly product(shape) * itemsize bytes: a truncated file and trailing bytes are refused. Every
// malformed file throws graft::data_error naming the file, the byte offset, what was expected and
// what was found. Light header (no xtensor, no iostream).
#pragma once
#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "graft/config.hpp"
#include "graft/data/dataset.hpp"
#include "graft/data/error.hpp"
#include "graft/data/idx.hpp"

GRAFT_BEGIN_NAMESPACE
namespace data {

/// The element types graft reads from .npy files (all little-endian).
enum class npy_dtype : std::uint8_t { float32, float64, uint8, int32, int64 };

namespace detail {
struct npy_dtype_info {
  std::size_t size;   ///< bytes per element
  const char* name;   ///< NumPy's name
  const char* descr;  ///< the header's descr string
};
/// Indexed by npy_dtype.
inline constexpr npy_dtype_info npy_dtypes[] = {{4, "float32", "<f4"},
                                                {8, "float64", "<f8"},
                                                {1, "uint8", "|u1"},
                                                {4, "int32", "<i4"},
                                                {8, "int64", "<i8"}};
}  // namespace detail

/// Bytes per element.
constexpr std::size_t npy_dtype_size(npy_dtype t) noexcept {
  return detail::npy_dtypes[static_cast<std::size_t>(t)].size;
}
/// "float32", "float64", "uint8", "int32" or "int64".
constexpr const char* npy_dtype_name(npy_dtype t) noexcept {
  return detail::npy_dtypes[static_cast<std::size_t>(t)].name;
}
/// The header's descr string: "<f4", "<f8", "|u1", "<i4" or "<i8".
constexpr const char* npy_dtype_descr(npy_dtype t) noexcept {
  return detail::npy_dtypes[static_cast<std::size_t>(t)].descr;
}

constexpr bool npy_is_integer(npy_dtype t) noexcept {
  return t == npy_dtype::uint8 || t == npy_dtype::int32 || t == npy_dtype::int64;
}

namespace detail {

inline std::uint32_t load_le32(const unsigned char* p) noexcept {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
         (std::uint32_t{p[3]} << 24);
}
inline std::uint64_t load_le64(const unsigned char* p) noexcept {
  return std::uint64_t{load_le32(p)} | (std::uint64_t{load_le32(p + 4)} << 32);
}
inline void store_le32(unsigned char* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

/// Converts n elements of little-endian .npy data with f(value) -> T for each element (the
/// value is float, double, std::uint8_t, std::int32_t or std::int64_t).
template <class T, class F>
void convert_npy(npy_dtype type, const unsigned char* p, std::size_t n, T* out, F f) {
  switch (type) {
    case npy_dtype::float32:
      for (std::size_t i = 0; i < n; ++i) out[i] = f(std::bit_cast<float>(load_le32(p + 4 * i)));
      break;
    case npy_dtype::float64:
      for (std::size_t i = 0; i < n; ++i) out[i] = f(std::bit_cast<double>(load_le64(p + 8 * i)));
      break;
    case npy_dtype::uint8:
      for (std::size_t i = 0; i < n; ++i) out[i] = f(static_cast<std::uint8_t>(p[i]));
      break;
    case npy_dtype::int32:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = f(static_cast<std::int32_t>(load_le32(p + 4 * i)));
      break;
    case npy_dtype::int64:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = f(static_cast<std::int64_t>(load_le64(p + 8 * i)));
      break;
  }
}

/// "(3, 4)", "(3,)" or "()": a shape as NumPy prints it.
inline std::string npy_shape_string(const std::vector<std::size_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

/// Up to max bytes of b[pos, end) for a message: quoted, with non-printable bytes as \xNN and
/// "..." when cut; "the end of the header" when pos == end.
inline std::string excerpt(const unsigned char* b, std::size_t pos, std::size_t end,
                           std::size_t max = 24) {
  if (pos >= end) return "the end of the header";
  std::string s = "\"";
  const std::size_t stop = end - pos > max ? pos + max : end;
  for (std::size_t i = pos; i < stop; ++i) {
    const unsigned char c = b[i];
    if (c == '\n')
      s += "\\n";
    else if (c == '"' || c == '\\')
      (s += '\\') += static_cast<char>(c);
    else if (c >= 0x20 && c < 0x7f)
      s += static_cast<char>(c);
    else
      s += "\\x" + hex_byte(c).substr(2);
  }
  s += stop < end ? "...\"" : "\"";
  return s;
}

/// The header dict's parser: a small recursive-descent reader of the Python literal subset that
/// np.save writes (quoted strings, True/False, tuples of non-negative integers), with the byte
/// offset of every token for messages.
class npy_header_parser {
 public:
  npy_header_parser(const std::string& name, const unsigned char* b, std::size_t begin,
                    std::size_t end)
      : name_(name), b_(b), pos_(begin), begin_(begin), end_(end) {}

  /// Parses the whole header into a (dtype, shape, offsets; no data).
  void parse(npy_dtype& dtype, std::vector<std::size_t>& shape, std::size_t& descr_at,
             std::size_t& shape_at) {
    skip_space();
    expect('{', "'{' (the header is a Python dict literal)");
    bool seen[3] = {false, false, false};  // descr, fortran_order, shape
    const char* keys[3] = {"descr", "fortran_order", "shape"};
    skip_space();
    while (peek() != '}') {
      const std::size_t key_at = pos_;
      const std::string key = string_literal("a key 'descr', 'fortran_order' or 'shape'");
      int k = -1;
      for (int i = 0; i < 3; ++i)
        if (key == keys[i]) k = i;
      if (k < 0) throw fail(key_at, "a key 'descr', 'fortran_order' or 'shape'", "'" + key + "'");
      if (seen[k]) throw fail(key_at, "each key once", "'" + key + "' a second time");
      seen[k] = true;
      skip_space();
      expect(':', "':' after the key '" + key + "'");
      skip_space();
      if (k == 0) {
        descr_at = pos_;
        dtype = descr();
      } else if (k == 1) {
        fortran_order();
      } else {
        shape_at = pos_;
        shape = tuple();
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        skip_space();
      } else if (peek() != '}') {
        throw fail(pos_, "',' or '}' after the value of '" + key + "'", excerpt(b_, pos_, end_));
      }
    }
    ++pos_;  // '}'
    skip_space();
    if (pos_ != end_)
      throw fail(pos_, "only spaces and a newline after the header dict", excerpt(b_, pos_, end_));
    for (int i = 0; i < 3; ++i)
      if (!seen[i])
        throw fail(begin_, "the keys 'descr', 'fortran_order' and 'shape'",
                   "no '" + std::string(keys[i]) + "'");
  }

 private:
  data_error fail(std::size_t at, std::string expected, std::string found) const {
    return {name_, at, std::move(expected), std::move(found)};
  }
  int peek() const { return pos_ < end_ ? b_[pos_] : -1; }
  void skip_space() {
    while (pos_ < end_ &&
           (b_[pos_] == ' ' || b_[pos_] == '\t' || b_[pos_] == '\n' || b_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c, const std::string& what) {
    if (peek() != static_cast<unsigned char>(c)) throw fail(pos_, what, excerpt(b_, pos_, end_));
    ++pos_;
  }
  bool word(const char* w) {
    const std::size_t n = std::strlen(w);
    if (end_ - pos_ < n || std::memcmp(b_ + pos_, w, n) != 0) return false;
    pos_ += n;
    return true;
  }

  /// A '...' or "..." string without escapes or line breaks (np.save writes none).
  std::string string_literal(const std::string& what) {
    const int q = peek();
    if (q != '\'' && q != '"') throw fail(pos_, what + " in quotes", excerpt(b_, pos_, end_));
    const std::size_t start = pos_++;
    std::string s;
    while (pos_ < end_ && b_[pos_] != q) {
      const unsigned char c = b_[pos_];
      if (c == '\\' || c == '\n' || c == '\r')
        throw fail(pos_, "a string without escapes or line breaks", excerpt(b_, pos_, end_));
      s += static_cast<char>(c);
      ++pos_;
    }
    if (pos_ == end_) throw fail(start, "a closing quote for this string", "the end of the header");
    ++pos_;
    return s;
  }

  npy_dtype descr() {
    const std::size_t at = pos_;
    if (peek() == '[')
      throw fail(at, "a simple dtype string such as '<f4'",
                 "a list (a structured dtype, which graft does not read)");
    const std::string d = string_literal("a dtype string such as '<f4'");
    const std::pair<const char*, npy_dtype> known[] = {
        {"<f4", npy_dtype::float32}, {"<f8", npy_dtype::float64}, {"|u1", npy_dtype::uint8},
        {"<u1", npy_dtype::uint8},   {"<i4", npy_dtype::int32},   {"<i8", npy_dtype::int64}};
    for (const auto& [text, type] : known)
      if (d == text) return type;
    std::string found = "'" + d + "'";
    if (!d.empty() && d[0] == '>')
      found += " (big-endian: save x.astype(x.dtype.newbyteorder('<')))";
    else if (d == "|O" || d == "O")
      found += " (Python objects: save a numeric array)";
    throw fail(at,
               "a dtype '<f4' (float32), '<f8' (float64), '|u1' (uint8), '<i4' (int32) or '<i8' "
               "(int64)",
               std::move(found));
  }

  void fortran_order() {
    const std::size_t at = pos_;
    if (word("False")) return;
    if (word("True"))
      throw fail(at, "'fortran_order': False (C order)",
                 "True (Fortran order: save np.ascontiguousarray(x))");
    throw fail(at, "False or True", excerpt(b_, pos_, end_));
  }

  /// (), (n,), (n, m), ... with an optional trailing comma; a one-element tuple needs its comma.
  std::vector<std::size_t> tuple() {
    expect('(', "a shape tuple such as (3, 4)");
    std::vector<std::size_t> dims;
    bool trailing_comma = false;
    skip_space();
    while (peek() != ')') {
      dims.push_back(dimension());
      trailing_comma = false;
      skip_space();
      if (peek() == ',') {
        ++pos_;
        trailing_comma = true;
        skip_space();
      } else if (peek() != ')') {
        throw fail(pos_, "',' or ')' in the shape tuple", excerpt(b_, pos_, end_));
      }
    }
    if (dims.size() == 1 && !trailing_comma)
      throw fail(pos_, "',' after the only dimension (a 1-tuple is written (n,))", "')'");
    ++pos_;  // ')'
    return dims;
  }

  /// A non-negative decimal integer that fits in std::size_t (Python 2's 'L' suffix allowed).
  std::size_t dimension() {
    const std::size_t at = pos_;
    if (peek() < '0' || peek() > '9')
      throw fail(at, "a non-negative integer dimension", excerpt(b_, pos_, end_));
    std::size_t v = 0;
    constexpr std::size_t top = std::numeric_limits<std::size_t>::max();
    while (peek() >= '0' && peek() <= '9') {
      const auto digit = static_cast<std::size_t>(b_[pos_] - '0');
      if (v > (top - digit) / 10)
        throw fail(at, "a dimension of at most " + std::to_string(top), excerpt(b_, at, end_));
      v = v * 10 + digit;
      ++pos_;
    }
    if (peek() == 'L' || peek() == 'l') ++pos_;
    return v;
  }

  const std::string& name_;
  const unsigned char* b_;
  std::size_t pos_, begin_, end_;
};

}  // namespace detail

/// One .npy array: its dtype, shape and raw (little-endian, C order) data.
struct npy_array {
  std::string path;  ///< the file it was read from (used in error messages)
  npy_dtype dtype = npy_dtype::float32;
  std::vector<std::size_t> shape;   ///< empty for a 0-d array (one element)
  std::vector<unsigned char> data;  ///< count() * element_size() bytes, little-endian
  std::size_t data_offset = 0;      ///< where the data starts in the file
  std::size_t descr_offset = 0;     ///< where the header's 'descr' value is (for messages)
  std::size_t shape_offset = 0;     ///< where the header's 'shape' value is (for messages)

  std::size_t rank() const noexcept { return shape.size(); }
  std::size_t element_size() const noexcept { return npy_dtype_size(dtype); }
  /// Number of elements: the product of shape (1 for a 0-d array, 0 when a dimension is 0).
  std::size_t count() const noexcept {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
  }
  /// Byte offset of element i in the file (for messages).
  std::size_t offset_of(std::size_t i) const noexcept { return data_offset + i * element_size(); }
  /// Element i as double (int64 beyond 2^53 rounded). std::out_of_range past the end.
  double at(std::size_t i) const {
    const std::size_t es = element_size();
    if (i >= count() || i >= data.size() / es)
      throw std::out_of_range("graft: " + path + ": npy element " + std::to_string(i) +
                              " out of range (" + std::to_string(count()) + " elements)");
    double v = 0;
    detail::convert_npy(dtype, data.data() + i * es, 1, &v,
                        [](auto x) { return static_cast<double>(x); });
    return v;
  }
  /// Every element converted to float (float64 and int64 rounded), divided by divisor.
  std::vector<float> to_float(float divisor = 1.0f) const {
    const std::size_t n = count();
    if (data.size() / element_size() < n)
      throw std::invalid_argument("graft: " + path + ": npy data smaller than its shape");
    std::vector<float> out(n);
    if (divisor == 1.0f)
      detail::convert_npy(dtype, data.data(), n, out.data(),
                          [](auto x) { return static_cast<float>(x); });
    else
      detail::convert_npy(dtype, data.data(), n, out.data(),
                          [divisor](auto x) { return static_cast<float>(x) / divisor; });
    return out;
  }
};

namespace detail {

/// Validates the preamble, the header and the data size of a .npy file held in b[0, n) and
/// returns the array without its data (data_offset says where it starts; it is exactly the rest
/// of the buffer).
inline npy_array parse_npy_header(const std::string& name, const unsigned char* b, std::size_t n) {
  auto fail = [&](std::uint64_t at, std::string expected, std::string found) {
    return data_error(name, at, std::move(expected), std::move(found));
  };
  static constexpr unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  for (std::size_t i = 0; i < 6; ++i) {
    if (i == n)
      throw fail(i, "the 6-byte magic \\x93NUMPY of a .npy file",
                 "the end of the file after " + count_of(n, "byte"));
    if (b[i] != magic[i]) {
      std::string found = hex_byte(b[i]);
      if (i == 0 && n >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4)
        found += " 'P' (a zip archive: an .npz file from np.savez; save each array with np.save)";
      else if (i == 0 && n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
        found += " (a gzip stream: gunzip the file)";
      throw fail(i, "the magic \\x93NUMPY of a .npy file (byte " + hex_byte(magic[i]) + ")",
                 std::move(found));
    }
  }
  if (n < 8) throw fail(6, "a 2-byte format version", count_of(n - 6, "byte"));
  const unsigned major = b[6], minor = b[7];
  if (major < 1 || major > 3 || minor != 0)
    throw fail(6, "format version 1.0, 2.0 or 3.0",
               std::to_string(major) + "." + std::to_string(minor));
  const std::size_t len_size = major == 1 ? 2 : 4;
  if (n < 8 + len_size)
    throw fail(8,
               "a " + std::to_string(len_size) + "-byte header length (format " +
                   std::to_string(major) + ".0)",
               count_of(n - 8, "byte"));
  const std::size_t header_len =
      major == 1 ? std::size_t{b[8]} | (std::size_t{b[9]} << 8) : std::size_t{load_le32(b + 8)};
  const std::size_t begin = 8 + len_size;
  if (header_len > n - begin)
    throw fail(
        8,
        "a header length of at most " + std::to_string(n - begin) + " (the bytes left in the file)",
        std::to_string(header_len));
  const std::size_t end = begin + header_len;

  npy_array a;
  npy_header_parser(name, b, begin, end).parse(a.dtype, a.shape, a.descr_offset, a.shape_offset);
  a.data_offset = end;
  const std::size_t es = npy_dtype_size(a.dtype);
  std::size_t total = es;
  for (std::size_t d : a.shape) {
    if (d != 0 && total > std::numeric_limits<std::size_t>::max() / d)
      throw fail(a.shape_offset,
                 "a shape whose data size fits in " +
                     std::to_string(std::numeric_limits<std::size_t>::digits) + " bits",
                 npy_shape_string(a.shape) + " of " + npy_dtype_name(a.dtype));
    total *= d;
  }
  const std::size_t available = n - end;
  if (available < total)
    throw fail(end,
               std::to_string(total) + " data bytes (shape " + npy_shape_string(a.shape) + " of " +
                   npy_dtype_descr(a.dtype) + ")",
               std::to_string(available) + " (the file is truncated)");
  if (available > total)
    throw fail(end + total, "the end of the file after " + count_of(total, "data byte"),
               count_of(available - total, "trailing byte"));
  return a;
}

/// The whole file at path (data_error when it is missing, a directory or unreadable).
inline std::vector<unsigned char> read_file_bytes(const std::string& path) {
  check_not_directory(path);
  errno = 0;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw_unreadable(path, errno);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, &std::fclose);
  std::vector<unsigned char> bytes(file_size_or(path, 0) + 1);  // + 1: the final short read
  std::size_t size = 0;
  for (;;) {
    if (size == bytes.size()) bytes.resize(bytes.size() < 4096 ? 4096 : bytes.size() * 2);
    const std::size_t got = std::fread(bytes.data() + size, 1, bytes.size() - size, f);
    size += got;
    if (got == 0) break;
  }
  if (std::ferror(f)) throw_unreadable(path, errno);
  bytes.resize(size);
  return bytes;
}

}  // namespace detail

/// Parses and validates a whole .npy file held in bytes[0, n); name is used in error messages.
inline npy_array parse_npy(std::string name, const unsigned char* bytes, std::size_t n) {
  npy_array a = detail::parse_npy_header(name, bytes, n);
  a.data.assign(bytes + a.data_offset, bytes + n);
  a.path = std::move(name);
  return a;
}

/// Reads and validates a whole .npy file (see the top of this header for what is accepted).
inline npy_array read_npy(const std::string& path) {
  std::vector<unsigned char> bytes = detail::read_file_bytes(path);
  npy_array a = detail::parse_npy_header(path, bytes.data(), bytes.size());
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(a.data_offset));
  a.data = std::move(bytes);
  a.path = path;
  return a;
}

namespace detail {

/// The samples of a features array (its first dimension; shape (n,) is n samples of one value)
/// converted to float, uint8 divided by 255 as from_idx does; every value must be finite.
inline void npy_features(const npy_array& f, dataset& d) {
  if (f.rank() == 0 || f.shape[0] == 0)
    throw data_error(f.path, f.shape_offset, "features of shape (samples, ...) with samples > 0",
                     npy_shape_string(f.shape));
  if (f.rank() == 1)
    d.sample_shape = {1};
  else
    d.sample_shape.assign(f.shape.begin() + 1, f.shape.end());
  if (f.count() == 0)
    throw data_error(f.path, f.shape_offset, "samples of at least one value",
                     npy_shape_string(f.shape));
  d.features = f.to_float(f.dtype == npy_dtype::uint8 ? 255.0f : 1.0f);
  for (std::size_t i = 0; i < d.features.size(); ++i)
    if (!std::isfinite(d.features[i])) {
      const double v = f.at(i);
      throw data_error(f.path, f.offset_of(i),
                       std::isfinite(v) ? "a value within float range" : "a finite value",
                       number_string(v) + " (element " + std::to_string(i) + ")");
    }
}

}  // namespace detail

/// A classification dataset from a features array (shape (samples, ...): the sample shape is the
/// rest, (samples,) is samples of one value; float32/float64/int32/int64 taken as they are,
/// uint8 divided by 255 as from_idx does; every value finite) and a labels array (shape
/// (samples,), dtype uint8, int32 or int64, each label in [0, classes)). classes == 0: the
/// largest label + 1, labels at most max_idx_label. class_ids becomes 0..classes-1; name defaults
/// to the features' path. data_error naming the file, the byte offset and the element otherwise.
inline dataset from_npy(const npy_array& features, const npy_array& labels, std::size_t classes,
                        std::string name = {}) {
  if (classes > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw std::invalid_argument("graft: from_npy(" + features.path + "): classes is " +
                                std::to_string(classes) + ", expected at most 2^31-1");
  if (!npy_is_integer(labels.dtype))
    throw data_error(labels.path, labels.descr_offset,
                     "labels of an integer dtype ('|u1', '<i4' or '<i8')",
                     std::string("'") + npy_dtype_descr(labels.dtype) + "' (" +
                         npy_dtype_name(labels.dtype) + ": save y.astype(np.int64))");
  if (labels.rank() != 1)
    throw data_error(labels.path, labels.shape_offset,
                     "labels of shape (samples,) (one per sample: save y.ravel())",
                     detail::npy_shape_string(labels.shape));
  const std::size_t n = labels.shape[0];
  if (labels.data.size() != n * labels.element_size())
    throw std::invalid_argument("graft: " + labels.path + ": npy data does not match its shape");
  dataset d;
  if (name.empty())
    d.name = features.path;
  else
    d.name = std::move(name);
  detail::npy_features(features, d);
  if (features.shape[0] != n)
    throw data_error(features.path, features.shape_offset,
                     "as many samples as the " + std::to_string(n) + " labels in " + labels.path,
                     detail::npy_shape_string(features.shape) + ": " +
                         std::to_string(features.shape[0]) + " samples");
  const std::int64_t limit =
      classes != 0 ? static_cast<std::int64_t>(classes) : std::int64_t{max_idx_label} + 1;
  std::vector<std::int64_t> raw(n);
  detail::convert_npy(labels.dtype, labels.data.data(), n, raw.data(),
                      [](auto x) { return static_cast<std::int64_t>(x); });
  d.labels.resize(n);
  std::int64_t top = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (raw[i] < 0 || raw[i] >= limit)
      throw data_error(labels.path, labels.offset_of(i),
                       classes != 0 ? "a label in [0, " + std::to_string(classes) + ")"
                                    : "a label in [0, " + std::to_string(max_idx_label) +
                                          "] (pass classes for more)",
                       std::to_string(raw[i]) + " (element " + std::to_string(i) + ")");
    d.labels[i] = static_cast<std::int32_t>(raw[i]);
    top = std::max(top, raw[i]);
  }
  const std::size_t k = classes != 0 ? classes : static_cast<std::size_t>(top) + 1;
  d.class_ids.resize(k);
  for (std::size_t c = 0; c < k; ++c) d.class_ids[c] = static_cast<std::int32_t>(c);
  return d;
}

/// from_npy on the files features_path and labels_path (read_npy each).
inline dataset from_npy(const std::string& features_path, const std::string& labels_path,
                        std::size_t classes, std::string name = {}) {
  return from_npy(read_npy(features_path), read_npy(labels_path), classes, std::move(name));
}

/// A regression dataset: features as in from_npy, targets of shape (samples,) (one float each)
/// or (samples, ...) (target_size = the product of the rest), any dtype converted to float and
/// finite.
inline dataset from_npy_regression(const npy_array& features, const npy_array& targets,
                                   std::string name = {}) {
  dataset d;
  if (name.empty())
    d.name = features.path;
  else
    d.name = std::move(name);
  detail::npy_features(features, d);
  if (targets.rank() == 0 || targets.shape[0] != features.shape[0])
    throw data_error(targets.path, targets.shape_offset,
                     "targets of shape (" + std::to_string(features.shape[0]) +
                         ", ...) (one per "
                         "sample of " +
                         features.path + ")",
                     detail::npy_shape_string(targets.shape));
  const std::size_t n = targets.shape[0];
  d.target_size = targets.count() / n;
  if (d.target_size == 0)
    throw data_error(targets.path, targets.shape_offset, "targets of at least one value",
                     detail::npy_shape_string(targets.shape));
  d.targets = targets.to_float();
  for (std::size_t i = 0; i < d.targets.size(); ++i)
    if (!std::isfinite(d.targets[i])) {
      const double v = targets.at(i);
      throw data_error(targets.path, targets.offset_of(i),
                       std::isfinite(v) ? "a value within float range" : "a finite value",
                       detail::number_string(v) + " (element " + std::to_string(i) + ")");
    }
  return d;
}

/// from_npy_regression on the files features_path and targets_path.
inline dataset from_npy_regression(const std::string& features_path,
                                   const std::string& targets_path, std::string name = {}) {
  return from_npy_regression(read_npy(features_path), read_npy(targets_path), std::move(name));
}

namespace detail {

/// The bytes of a .npy file of the given dtype and shape up to its data: format 1.0 when the
/// header fits in 65535 bytes (2.0 otherwise), padded with spaces and a newline so that the data
/// starts at a multiple of 64 bytes, as np.save does.
inline std::string npy_preamble(npy_dtype type, const std::vector<std::size_t>& shape) {
  std::string dict = std::string("{'descr': '") + npy_dtype_descr(type) +
                     "', 'fortran_order': False, 'shape': " + npy_shape_string(shape) + ", }";
  const auto padded = [&](std::size_t lead) { return (lead + dict.size() + 1 + 63) / 64 * 64; };
  const bool v1 = padded(10) - 10 <= 65535;
  const std::size_t lead = v1 ? 10 : 12;
  const std::size_t total = padded(lead);
  dict.append(total - lead - dict.size() - 1, ' ');
  dict += '\n';
  const std::size_t len = dict.size();
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(v1 ? 1 : 2);
  out += '\0';
  for (std::size_t i = 0; i < (v1 ? 2u : 4u); ++i)
    out += static_cast<char>((len >> (8 * i)) & 0xff);
  return out + dict;
}

/// Writes the file through path + ".part" renamed to path at the end, so that a failed write
/// leaves no partial file under path. data_error when a step fails.
template <class T> void write_npy_file(const std::string& path, npy_dtype type, const T* values,
                                       const std::vector<std::size_t>& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) {
    if (d != 0 && n > std::numeric_limits<std::size_t>::max() / sizeof(T) / d)
      throw std::invalid_argument("graft: write_npy(" + path + "): shape " +
                                  npy_shape_string(shape) + " overflows");
    n *= d;
  }
  const std::string header = npy_preamble(type, shape);
  const std::string tmp = path + ".part";
  errno = 0;
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr)
    throw data_error(path, data_error::no_offset, "a writable file (" + tmp + ")",
                     std::strerror(errno));
  int err = 0;  // errno of the first step that failed
  auto step = [&](bool ok) {
    if (!ok && err == 0) err = errno != 0 ? errno : EIO;
  };
  step(std::fwrite(header.data(), 1, header.size(), f) == header.size());
  unsigned char buf[4096];
  static_assert(sizeof(T) == 4 && sizeof buf % 4 == 0);
  for (std::size_t i = 0; err == 0 && i < n;) {
    std::size_t k = 0;
    for (; i < n && k < sizeof buf; ++i, k += 4)
      store_le32(buf + k, std::bit_cast<std::uint32_t>(values[i]));
    step(std::fwrite(buf, 1, k, f) == k);
  }
  step(std::fflush(f) == 0);
  step(std::fclose(f) == 0);
  if (err == 0) step(std::rename(tmp.c_str(), path.c_str()) == 0);
  if (err != 0) {
    std::remove(tmp.c_str());
    throw data_error(path, data_error::no_offset, "a writable file", std::strerror(err));
  }
}

}  // namespace detail

/// Writes a float32 ('<f4') .npy file of the given shape (C order; values holds product(shape)
/// floats) that np.load reads. The file appears under path only once complete.
inline void write_npy(const std::string& path, const float* values,
                      const std::vector<std::size_t>& shape) {
  detail::write_npy_file(path, npy_dtype::float32, values, shape);
}
/// Writes an int32 ('<i4') .npy file, e.g. labels of shape {n}.
inline void write_npy(const std::string& path, const std::int32_t* values,
                      const std::vector<std::size_t>& shape) {
  detail::write_npy_file(path, npy_dtype::int32, values, shape);
}
/// The same from a vector; std::invalid_argument when its size is not the product of shape.
template <class T>
requires(std::is_same_v<T, float> || std::is_same_v<T, std::int32_t>) void write_npy(
    const std::string& path, const std::vector<T>& values, const std::vector<std::size_t>& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) n = d != 0 && n > values.size() / d ? values.size() + 1 : n * d;
  if (values.size() != n)
    throw std::invalid_argument("graft: write_npy(" + path + "): " + std::to_string(values.size()) +
                                " values for shape " + detail::npy_shape_string(shape));
  write_npy(path, values.data(), shape);
}

}  // namespace data
GRAFT_END_NAMESPACE
