// The IDX format of LeCun's MNIST files: two zero bytes, a type code, the number of dimensions,
// that many big-endian uint32 dimensions, then the big-endian payload. read_idx() reads raw or
// gzip files (gzip needs zlib: GRAFT_HAVE_ZLIB); parse_idx() validates a buffer, parse_idx_gzip()
// a gzip file in a buffer. Every malformed input throws graft::data_error naming the file, the
// byte offset, what was expected and found. A gzip file is inflated only as far as its IDX header
// declares (a gzip bomb is refused after a few KiB more, never allocated), and bytes after its
// last gzip member are refused. Light header (no xtensor).
#pragma once
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifdef GRAFT_HAVE_ZLIB
#include <zlib.h>
#endif

#include "graft/config.hpp"
#include "graft/data/error.hpp"
#include "graft/tensor/shape.hpp"

GRAFT_BEGIN_NAMESPACE
namespace data {

/// IDX type codes (the third byte of the file).
namespace idx_type {
inline constexpr std::uint8_t ubyte = 0x08;
inline constexpr std::uint8_t sbyte = 0x09;
inline constexpr std::uint8_t int16 = 0x0B;
inline constexpr std::uint8_t int32 = 0x0C;
inline constexpr std::uint8_t float32 = 0x0D;
inline constexpr std::uint8_t float64 = 0x0E;
}  // namespace idx_type

/// Bytes per element of an IDX type code, 0 for an unknown code.
constexpr std::size_t idx_element_size(std::uint8_t type) noexcept {
  switch (type) {
    case idx_type::ubyte:
    case idx_type::sbyte:
      return 1;
    case idx_type::int16:
      return 2;
    case idx_type::int32:
    case idx_type::float32:
      return 4;
    case idx_type::float64:
      return 8;
    default:
      return 0;
  }
}

/// "ubyte", "sbyte", "int16", "int32", "float32", "float64", or "unknown".
constexpr const char* idx_type_name(std::uint8_t type) noexcept {
  switch (type) {
    case idx_type::ubyte:
      return "ubyte";
    case idx_type::sbyte:
      return "sbyte";
    case idx_type::int16:
      return "int16";
    case idx_type::int32:
      return "int32";
    case idx_type::float32:
      return "float32";
    case idx_type::float64:
      return "float64";
    default:
      return "unknown";
  }
}

namespace detail {

inline std::uint16_t load_be16(const unsigned char* p) noexcept {
  return static_cast<std::uint16_t>((unsigned{p[0]} << 8) | unsigned{p[1]});
}
inline std::uint32_t load_be32(const unsigned char* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}
inline std::uint64_t load_be64(const unsigned char* p) noexcept {
  return (std::uint64_t{load_be32(p)} << 32) | std::uint64_t{load_be32(p + 4)};
}

inline std::string hex_byte(unsigned char b) {
  const char* digits = "0123456789ABCDEF";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

inline std::string count_of(std::uint64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

inline std::string dims_string(const std::vector<std::size_t>& dims) {
  return graft::dims_string(dims.data(), dims.size());
}

/// Converts n elements of an IDX payload (big-endian) with f(value) -> T for each element.
template <class T, class F>
void convert_payload(std::uint8_t type, const unsigned char* p, std::size_t n, T* out, F f) {
  switch (type) {
    case idx_type::ubyte:
      for (std::size_t i = 0; i < n; ++i) out[i] = f(p[i]);
      break;
    case idx_type::sbyte:
      for (std::size_t i = 0; i < n; ++i) out[i] = f(static_cast<std::int8_t>(p[i]));
      break;
    case idx_type::int16:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = f(static_cast<std::int16_t>(load_be16(p + 2 * i)));
      break;
    case idx_type::int32:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = f(static_cast<std::int32_t>(load_be32(p + 4 * i)));
      break;
    case idx_type::float32:
      for (std::size_t i = 0; i < n; ++i) out[i] = f(std::bit_cast<float>(load_be32(p + 4 * i)));
      break;
    case idx_type::float64:
      for (std::size_t i = 0; i < n; ++i) out[i] = f(std::bit_cast<double>(load_be64(p + 8 * i)));
      break;
    default:
      throw std::invalid_argument("graft: unknown IDX type code " + hex_byte(type));
  }
}

}  // namespace detail

/// One IDX file: its type code, dimensions and raw (big-endian) payload.
struct idx_array {
  std::string path;                    ///< the file it was read from (used in error messages)
  std::uint8_t type = 0;               ///< an idx_type code
  std::vector<std::size_t> dims;       ///< dims[0] is usually the number of samples
  std::vector<unsigned char> payload;  ///< count() * element_size() bytes, big-endian
  bool decompressed = false;           ///< read from a gzip stream (offsets are decompressed)

  std::size_t rank() const noexcept { return dims.size(); }
  std::size_t element_size() const noexcept { return idx_element_size(type); }
  /// Byte offset of the payload in the (decompressed) file.
  std::size_t header_size() const noexcept { return 4 + 4 * dims.size(); }
  /// Number of elements: the product of dims (0 without dims).
  std::size_t count() const noexcept {
    if (dims.empty()) return 0;
    std::size_t n = 1;
    for (std::size_t d : dims) n *= d;
    return n;
  }
  /// Element i converted from big-endian to double. Throws std::out_of_range past the end.
  double at(std::size_t i) const {
    const std::size_t es = element_size();
    if (es == 0 || i >= count() || i >= payload.size() / es)
      throw std::out_of_range("graft: " + path + ": IDX element " + std::to_string(i) +
                              " out of range (" + std::to_string(count()) + " elements)");
    double v = 0;
    detail::convert_payload(type, payload.data() + i * es, 1, &v,
                            [](auto x) { return static_cast<double>(x); });
    return v;
  }
};

/// Converts every element to float and divides it by divisor, in a tight loop (out must hold
/// count() floats). float64 values are rounded to float.
inline void convert_to_float(const idx_array& a, float* out, float divisor = 1.0f) {
  const std::size_t n = a.count();
  if (a.element_size() == 0 || a.payload.size() / a.element_size() < n)
    throw std::invalid_argument("graft: " + a.path + ": IDX payload smaller than its dims");
  if (divisor == 1.0f) {
    detail::convert_payload(a.type, a.payload.data(), n, out,
                            [](auto x) { return static_cast<float>(x); });
  } else {
    detail::convert_payload(a.type, a.payload.data(), n, out,
                            [divisor](auto x) { return static_cast<float>(x) / divisor; });
  }
}

/// Parses and validates a whole IDX file held in bytes[0, n). name is used in error messages;
/// decompressed says that offsets are into a decompressed gzip stream.
inline idx_array parse_idx(std::string name, const unsigned char* bytes, std::size_t n,
                           bool decompressed = false) {
  auto fail = [&](std::uint64_t offset, std::string expected, std::string found) {
    return data_error(name, offset, std::move(expected), std::move(found), decompressed);
  };
  if (n < 4)
    throw fail(0, "a 4-byte IDX header (0x00 0x00 type rank)", detail::count_of(n, "byte"));
  for (std::size_t i = 0; i < 2; ++i) {
    if (bytes[i] != 0) {
      std::string found = detail::hex_byte(bytes[i]);
      if (i == 0 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
#ifdef GRAFT_HAVE_ZLIB
        found += " 0x8B (the gzip magic: a gzip stream inside the gzip stream)";
#else
        found += " 0x8B (the gzip magic: graft was built without zlib, gunzip the file)";
#endif
      }
      throw fail(i, "0x00 (an IDX file starts with two zero bytes)", std::move(found));
    }
  }
  const std::uint8_t type = bytes[2];
  const std::size_t es = idx_element_size(type);
  if (es == 0)
    throw fail(2,
               "an IDX type code (0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float32 or "
               "0x0E float64)",
               detail::hex_byte(type));
  const std::size_t rank = bytes[3];
  if (rank == 0) throw fail(3, "a positive number of dimensions", "0");
  const std::size_t header = 4 + 4 * rank;
  if (n < header)
    throw fail(4,
               detail::count_of(4 * rank, "byte") + " of dimensions (" + std::to_string(rank) +
                   " big-endian uint32)",
               detail::count_of(n - 4, "byte"));

  idx_array a;
  a.type = type;
  a.decompressed = decompressed;
  a.dims.resize(rank);
  bool overflow = false;
  std::size_t total = es;  // payload bytes
  for (std::size_t i = 0; i < rank; ++i) {
    const std::uint32_t d = detail::load_be32(bytes + 4 + 4 * i);
    if (d == 0)
      throw fail(4 + 4 * i,
                 "a positive dimension (dimension " + std::to_string(i) + " of " +
                     std::to_string(rank) + ")",
                 "0");
    a.dims[i] = d;
    if (total > std::numeric_limits<std::size_t>::max() / d)
      overflow = true;
    else
      total *= d;
  }
  if (overflow)
    throw fail(4,
               "dimensions whose payload size fits in " +
                   std::to_string(std::numeric_limits<std::size_t>::digits) + " bits",
               detail::dims_string(a.dims) + " of " + idx_type_name(type) + " (" +
                   std::to_string(es) + " bytes each)");
  const std::size_t available = n - header;
  if (available < total)
    throw fail(header,
               std::to_string(total) + " payload bytes (" + detail::dims_string(a.dims) + " " +
                   idx_type_name(type) + ")",
               std::to_string(available));
  if (available > total)
    throw fail(header + total,
               "the end of the data after " + std::to_string(total) + " payload bytes",
               detail::count_of(available - total, "trailing byte"));
  a.payload.assign(bytes + header, bytes + n);
  a.path = std::move(name);
  return a;
}

namespace detail {

/// A growable byte buffer that does not zero what it allocates.
struct byte_buffer {
  std::unique_ptr<unsigned char[]> data;
  std::size_t size = 0;
  std::size_t capacity = 0;

  void reserve(std::size_t cap) {
    if (cap <= capacity) return;
    std::unique_ptr<unsigned char[]> bigger(new unsigned char[cap]);
    if (size != 0) std::memcpy(bigger.get(), data.get(), size);
    data = std::move(bigger);
    capacity = cap;
  }
  /// Makes room for at least one more byte and returns how many bytes are free.
  std::size_t make_room() {
    if (size == capacity) reserve(capacity < 4096 ? 4096 : capacity * 2);
    return capacity - size;
  }
};

inline std::size_t file_size_or(const std::string& path, std::size_t fallback) {
  std::error_code ec;
  const auto s = std::filesystem::file_size(path, ec);
  if (ec || s > std::numeric_limits<std::size_t>::max() / 2) return fallback;
  return static_cast<std::size_t>(s);
}

[[noreturn]] inline void throw_unreadable(const std::string& path, int err) {
  throw data_error(path, data_error::no_offset, "a readable file",
                   err != 0 ? std::string(std::strerror(err)) : std::string("an unreadable file"));
}

inline void check_not_directory(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw data_error(path, data_error::no_offset, "a readable file", "a directory");
}

#ifdef GRAFT_HAVE_ZLIB
/// How far past the size its header declares a gzip IDX stream is inflated before reading stops:
/// a few trailing bytes are counted exactly (parse_idx reports them), more are a gzip bomb.
inline constexpr std::size_t gzip_idx_slack = 4096;

/// The sizes declared by a complete and valid IDX header at the start of b[0, n).
struct idx_declared {
  std::size_t header = 0;   ///< 4 + 4 * rank
  std::size_t payload = 0;  ///< bytes: element size times the product of the dimensions
};

/// True, with the declared sizes, when b[0, n) starts with a complete IDX header that parse_idx
/// accepts; false while the header is incomplete or when it is invalid (parse_idx says why).
inline bool peek_idx_header(const unsigned char* b, std::size_t n, idx_declared& out) noexcept {
  if (n < 4 || b[0] != 0 || b[1] != 0) return false;
  const std::size_t es = idx_element_size(b[2]), rank = b[3];
  if (es == 0 || rank == 0 || n < 4 + 4 * rank) return false;
  std::size_t total = es;
  for (std::size_t i = 0; i < rank; ++i) {
    const std::uint32_t d = load_be32(b + 4 + 4 * i);
    if (d == 0 || total > std::numeric_limits<std::size_t>::max() / d) return false;
    total *= d;
  }
  out.header = 4 + 4 * rank;
  out.payload = total;
  return true;
}

/// "N payload bytes (AxB type)" for a header peek_idx_header accepted.
inline std::string declared_payload(const unsigned char* b, const idx_declared& d) {
  std::vector<std::size_t> dims((d.header - 4) / 4);
  for (std::size_t i = 0; i < dims.size(); ++i) dims[i] = load_be32(b + 4 + 4 * i);
  return count_of(d.payload, "payload byte") + " (" + dims_string(dims) + " " +
         idx_type_name(b[2]) + ")";
}
#endif

}  // namespace detail

#ifdef GRAFT_HAVE_ZLIB
/// Inflates a gzip file held in bytes[0, n) and parses the IDX data in it (see parse_idx; offsets
/// in its errors are into the decompressed stream). Concatenated gzip members are one stream;
/// anything else after the last member is a data_error at its offset in the compressed file.
/// Memory grows with the data actually inflated, up to the size the IDX header declares (plus
/// detail::gzip_idx_slack): a stream that goes on past that is refused without inflating the rest.
inline idx_array parse_idx_gzip(std::string name, const unsigned char* bytes, std::size_t n) {
  z_stream z{};
  if (const int rc = inflateInit2(&z, 16 + MAX_WBITS); rc != Z_OK) {
    if (rc == Z_MEM_ERROR) throw std::bad_alloc();
    throw std::runtime_error("graft: zlib's inflateInit2 failed (" + std::to_string(rc) + ")");
  }
  std::unique_ptr<z_stream, int (*)(z_streamp)> end_inflate(&z, &inflateEnd);
  constexpr std::size_t max_header = 4 + 4 * 255;
  constexpr std::size_t max_step = std::size_t{1} << 30;  // avail_in and avail_out are uInt
  detail::byte_buffer out;
  detail::idx_declared declared;
  bool header_known = false;
  // Inflating stops when the output exceeds limit: the declared size plus the slack once the
  // header is known; before, room for the largest header plus the slack (a longer stream without
  // a valid header is refused by parse_idx for its header).
  std::size_t limit = max_header + detail::gzip_idx_slack;
  std::size_t pos = 0;  // compressed bytes consumed
  for (;;) {
    if (out.size > limit) {
      if (!header_known) {
        (void)parse_idx(name, out.data.get(), out.size, true);  // refuses the header
        throw data_error(name, 0, "an IDX header", "none parse_idx_gzip could read", true);
      }
      throw data_error(name, declared.header + declared.payload,
                       "the end of the data after " +
                           detail::declared_payload(out.data.get(), declared) +
                           " declared by the header",
                       "more than " + detail::count_of(detail::gzip_idx_slack, "further byte") +
                           ": more data follows (inflating stopped there)",
                       true);
    }
    if (out.size == out.capacity) {
      const std::size_t grown = out.capacity < 65536 ? 65536 : out.capacity * 2;
      out.reserve(grown < limit + 1 ? grown : limit + 1);  // limit + 1: to see it exceeded
    }
    const std::size_t in_step = n - pos < max_step ? n - pos : max_step;
    const std::size_t room_now = (out.capacity < limit + 1 ? out.capacity : limit + 1) - out.size;
    const std::size_t out_step = room_now < max_step ? room_now : max_step;
    z.next_in = const_cast<Bytef*>(bytes + pos);
    z.avail_in = static_cast<uInt>(in_step);
    z.next_out = out.data.get() + out.size;
    z.avail_out = static_cast<uInt>(out_step);
    const int rc = inflate(&z, Z_NO_FLUSH);
    pos += in_step - z.avail_in;
    out.size += out_step - z.avail_out;
    if (!header_known && detail::peek_idx_header(out.data.get(), out.size, declared)) {
      header_known = true;
      const std::size_t declared_end = declared.header + declared.payload;
      const std::size_t top = std::numeric_limits<std::size_t>::max() - 1;
      limit =
          declared_end < top - detail::gzip_idx_slack ? declared_end + detail::gzip_idx_slack : top;
    }
    if (rc == Z_STREAM_END) {
      if (pos == n) break;
      if (n - pos >= 2 && bytes[pos] == 0x1f && bytes[pos + 1] == 0x8b) {
        inflateReset(&z);  // the next gzip member
        continue;
      }
      std::string found = detail::count_of(n - pos, "trailing byte") +
                          (n - pos == 1 ? " that does not" : " that do not") +
                          " start a gzip member (" + detail::hex_byte(bytes[pos]);
      if (n - pos >= 2) {  // not " " + string&&: g++ 12's false -Wrestrict
        found += ' ';
        found += detail::hex_byte(bytes[pos + 1]);
      }
      throw data_error(name, pos,
                       "the end of the file or another gzip member (0x1F 0x8B) after the gzip "
                       "member ending here",
                       found + (n - pos > 2 ? " ...)" : ")"));
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && z.avail_out == 0) continue;  // the output buffer grows
    if (rc == Z_BUF_ERROR && pos == n)
      throw data_error(name, out.size, "a complete gzip stream",
                       "the end of the file after " + detail::count_of(n, "compressed byte"), true);
    if (rc == Z_MEM_ERROR) throw std::bad_alloc();
    throw data_error(
        name, out.size, "a valid gzip stream",
        z.msg != nullptr && *z.msg != 0 ? std::string(z.msg) : "zlib error " + std::to_string(rc),
        true);
  }
  return parse_idx(std::move(name), out.data.get(), out.size, true);
}
#endif

/// Reads and validates a whole IDX file. With zlib (GRAFT_HAVE_ZLIB) both gzip and raw files are
/// read (whatever the name); without zlib only raw files, and a .gz file is a data_error.
inline idx_array read_idx(const std::string& path) {
  detail::check_not_directory(path);
#ifndef GRAFT_HAVE_ZLIB
  if (path.size() >= 3 && path.compare(path.size() - 3, 3, ".gz") == 0)
    throw data_error(path, data_error::no_offset, "a raw IDX file",
                     "a .gz file, and graft was built without zlib (gunzip it, or install zlib and "
                     "reconfigure)");
#endif
  errno = 0;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) detail::throw_unreadable(path, errno);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, &std::fclose);
  detail::byte_buffer buf;
  buf.reserve(detail::file_size_or(path, 0) + 1);  // + 1: the final short read needs no more
  for (;;) {
    const std::size_t room = buf.make_room();
    const std::size_t got = std::fread(buf.data.get() + buf.size, 1, room, f);
    buf.size += got;
    if (got < room) break;
  }
  if (std::ferror(f)) detail::throw_unreadable(path, errno);
  closer.reset();
#ifdef GRAFT_HAVE_ZLIB
  // gzip is recognised by its magic, whatever the name (as zlib's gzread does).
  if (buf.size >= 2 && buf.data[0] == 0x1f && buf.data[1] == 0x8b)
    return parse_idx_gzip(path, buf.data.get(), buf.size);
#endif
  return parse_idx(path, buf.data.get(), buf.size, false);
}

}  // namespace data
GRAFT_END_NAMESPACE
