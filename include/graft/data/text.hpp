// Text decoding for graft::text: UTF-8 and Latin-1 bytes to code points, and code points back to
// UTF-8. No dependency.
//
// The core, decode_utf8(p, n, out, cap, count) and encode_utf8(c, out), is constexpr, noexcept and
// allocates nothing: it is the part a freestanding target uses (compiled with -fno-exceptions
// the hosted part below is left out). It accepts exactly the well-formed UTF-8 of Unicode's
// Table 3-7 and refuses, naming the first byte of the sequence:
//   invalid_lead          a byte that starts no sequence: 0x80-0xBF (a continuation byte with no
//                         lead) or 0xF8-0xFF
//   truncated             the input ends inside a sequence
//   invalid_continuation  a byte after the lead that is not 0x80-0xBF
//   overlong              a value encoded in more bytes than it needs (0xC0 0x80, 0xE0 0x80 ...)
//   surrogate             U+D800-DFFF (0xED 0xA0 0x80 ...)
//   too_large             a value above U+10FFFF (0xF4 0x90 0x80 0x80, 0xF5 ...)
// The hosted decode_utf8(bytes, what) throws graft::data_error for them, e.g.
//   graft: swedish: byte 1043: expected UTF-8, found an invalid lead byte 0xE5
// decode_latin1 maps byte b to U+00bb and cannot fail; decode_latin1_checked refuses the C1
// control bytes 0x80-0x9F, which are never text (a "Latin-1" file with them is usually UTF-8 or
// CP1252).
#pragma once
#include <cstddef>
#include <cstdint>

#if defined(__cpp_exceptions)
#include <stdexcept>
#include <string>
#include <string_view>

#include "graft/data/error.hpp"
#endif

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE
namespace text {

/// What decode_utf8 found (see the top of this header).
enum class utf8_status : unsigned char {
  ok,
  invalid_lead,
  truncated,
  invalid_continuation,
  overlong,
  surrogate,
  too_large
};

/// decode_utf8's outcome. On an error, byte is the offset of the first byte of the bad sequence
/// and length the bytes of it that were examined (the lead, and the continuation bytes up to and
/// including the bad one). On ok, byte is the number of bytes decoded: n, or less when out filled
/// up first (decoding can resume there); length is 0.
struct utf8_result {
  utf8_status status = utf8_status::ok;
  std::size_t byte = 0;
  std::size_t length = 0;
};

/// The largest Unicode code point.
inline constexpr char32_t max_code_point = 0x10FFFF;

/// True for a Unicode scalar value: at most U+10FFFF and not a surrogate.
constexpr bool is_scalar_value(char32_t c) noexcept {
  return c <= max_code_point && (c < 0xD800 || c > 0xDFFF);
}

/// Decodes the UTF-8 in p[0, n) into out[0, cap) and sets count to the code points written;
/// stops at the first error (count then holds those before it) or when out is full. With
/// out == nullptr it only validates and counts (cap is ignored). Freestanding: no heap, no throw.
constexpr utf8_result decode_utf8(const unsigned char* p, std::size_t n, char32_t* out,
                                  std::size_t cap, std::size_t& count) noexcept {
  count = 0;
  std::size_t i = 0;
  while (i < n) {
    if (out != nullptr && count == cap) return {utf8_status::ok, i, 0};
    const unsigned char b = p[i];
    if (b < 0x80) {
      if (out != nullptr) out[count] = b;
      ++count;
      ++i;
      continue;
    }
    std::size_t len = 0;
    char32_t c = 0;
    if (b >= 0xC0 && b <= 0xDF) {
      len = 2;
      c = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      c = b & 0x0Fu;
    } else if (b >= 0xF0 && b <= 0xF7) {
      len = 4;
      c = b & 0x07u;
    } else {
      return {utf8_status::invalid_lead, i, 1};
    }
    for (std::size_t k = 1; k < len; ++k) {
      if (i + k >= n) return {utf8_status::truncated, i, k};
      const unsigned char t = p[i + k];
      if ((t & 0xC0u) != 0x80u) return {utf8_status::invalid_continuation, i, k + 1};
      c = static_cast<char32_t>((c << 6) | (t & 0x3Fu));
    }
    constexpr char32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < least[len]) return {utf8_status::overlong, i, len};
    if (c >= 0xD800 && c <= 0xDFFF) return {utf8_status::surrogate, i, len};
    if (c > max_code_point) return {utf8_status::too_large, i, len};
    if (out != nullptr) out[count] = c;
    ++count;
    i += len;
  }
  return {utf8_status::ok, n, 0};
}

/// Writes the UTF-8 form of c to out[0, 4) and returns its length (1-4); 0, writing nothing, when
/// c is not a scalar value (a surrogate or above U+10FFFF).
constexpr std::size_t encode_utf8(char32_t c, unsigned char* out) noexcept {
  if (!is_scalar_value(c)) return 0;
  if (c < 0x80) {
    out[0] = static_cast<unsigned char>(c);
    return 1;
  }
  if (c < 0x800) {
    out[0] = static_cast<unsigned char>(0xC0u | (c >> 6));
    out[1] = static_cast<unsigned char>(0x80u | (c & 0x3Fu));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = static_cast<unsigned char>(0xE0u | (c >> 12));
    out[1] = static_cast<unsigned char>(0x80u | ((c >> 6) & 0x3Fu));
    out[2] = static_cast<unsigned char>(0x80u | (c & 0x3Fu));
    return 3;
  }
  out[0] = static_cast<unsigned char>(0xF0u | (c >> 18));
  out[1] = static_cast<unsigned char>(0x80u | ((c >> 12) & 0x3Fu));
  out[2] = static_cast<unsigned char>(0x80u | ((c >> 6) & 0x3Fu));
  out[3] = static_cast<unsigned char>(0x80u | (c & 0x3Fu));
  return 4;
}

/// True for a C1 control byte (0x80-0x9F), which decode_latin1_checked refuses.
constexpr bool is_c1_byte(unsigned char b) noexcept { return b >= 0x80 && b <= 0x9F; }

/// The offset of the first C1 control byte in p[0, n), or n when there is none.
constexpr std::size_t find_c1_byte(const unsigned char* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    if (is_c1_byte(p[i])) return i;
  return n;
}

/// The status as a phrase for messages ("an invalid lead byte", ...).
constexpr const char* describe(utf8_status s) noexcept {
  switch (s) {
    case utf8_status::ok:
      return "valid UTF-8";
    case utf8_status::invalid_lead:
      return "an invalid lead byte";
    case utf8_status::truncated:
      return "a truncated sequence";
    case utf8_status::invalid_continuation:
      return "an invalid continuation byte";
    case utf8_status::overlong:
      return "an overlong form";
    case utf8_status::surrogate:
      return "a surrogate";
    case utf8_status::too_large:
      return "a value above U+10FFFF";
  }
  return "?";
}

#if defined(__cpp_exceptions)

namespace detail {

inline std::string hex_bytes(const unsigned char* p, std::size_t n) {
  const char* digits = "0123456789ABCDEF";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    if (i != 0) s += ' ';
    s += "0x";
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

/// "U+00E5" (at least four hex digits).
inline std::string code_point_name(char32_t c) {
  const char* digits = "0123456789ABCDEF";
  std::string h;
  for (std::uint32_t v = c; v != 0; v >>= 4) h.insert(h.begin(), digits[v & 15]);
  while (h.size() < 4) h.insert(h.begin(), '0');
  return "U+" + h;
}

/// The value bytes p[0, len) would encode, ignoring the checks (for overlong, surrogate and
/// too_large messages).
inline char32_t raw_value(const unsigned char* p, std::size_t len) {
  char32_t c = p[0] & (len == 2 ? 0x1Fu : len == 3 ? 0x0Fu : 0x07u);
  for (std::size_t k = 1; k < len; ++k) c = static_cast<char32_t>((c << 6) | (p[k] & 0x3Fu));
  return c;
}

/// "an invalid lead byte 0xE5", "a truncated sequence 0xE5 0x80 (the input ends)", ...
inline std::string utf8_found(const unsigned char* p, const utf8_result& r) {
  const unsigned char* s = p + r.byte;
  std::string f = describe(r.status);
  switch (r.status) {
    case utf8_status::ok:
      break;
    case utf8_status::invalid_lead:
      f += " " + hex_bytes(s, 1);
      break;
    case utf8_status::truncated:
      f += " " + hex_bytes(s, r.length) + " (the input ends)";
      break;
    case utf8_status::invalid_continuation:
      f += " " + hex_bytes(s + r.length - 1, 1) + " after " + hex_bytes(s, r.length - 1);
      break;
    case utf8_status::overlong:
    case utf8_status::surrogate:
    case utf8_status::too_large:
      f += " " + hex_bytes(s, r.length) + " (" + code_point_name(raw_value(s, r.length)) + ")";
      break;
  }
  return f;
}

}  // namespace detail

/// The code points of the UTF-8 text in bytes. graft::data_error naming what (a file or data
/// set), the byte offset of the first bad sequence and the fault, e.g.
///   graft: swedish: byte 1043: expected UTF-8, found an invalid lead byte 0xE5
inline std::u32string decode_utf8(std::string_view bytes, const std::string& what) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::u32string out(bytes.size(), U'\0');
  std::size_t count = 0;
  const utf8_result r = decode_utf8(p, bytes.size(), out.data(), out.size(), count);
  if (r.status != utf8_status::ok)
    throw data_error(what, r.byte, "UTF-8", detail::utf8_found(p, r));
  out.resize(count);
  return out;
}

/// Latin-1 (ISO 8859-1): byte b becomes U+00bb. Total: every byte string is accepted.
inline std::u32string decode_latin1(std::string_view bytes) {
  std::u32string out(bytes.size(), U'\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) out[i] = static_cast<unsigned char>(bytes[i]);
  return out;
}

/// decode_latin1, refusing the C1 control bytes 0x80-0x9F: graft::data_error naming what and the
/// byte, e.g.
///   graft: swedish: byte 17: expected Latin-1 text (no C1 control byte 0x80-0x9F), found 0x85
///   (the file may be UTF-8 or CP1252)
inline std::u32string decode_latin1_checked(std::string_view bytes, const std::string& what) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t at = find_c1_byte(p, bytes.size());
  if (at != bytes.size())
    throw data_error(what, at, "Latin-1 text (no C1 control byte 0x80-0x9F)",
                     detail::hex_bytes(p + at, 1) + " (the file may be UTF-8 or CP1252)");
  return decode_latin1(bytes);
}

/// The UTF-8 form of s. std::invalid_argument, naming the index, for a code point that is not a
/// scalar value (a surrogate or above U+10FFFF).
inline std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  unsigned char buf[4] = {};
  for (std::size_t i = 0; i < s.size(); ++i) {
    const std::size_t len = encode_utf8(s[i], buf);
    if (len == 0)
      throw std::invalid_argument("graft: encode_utf8: code point " + std::to_string(i) + " (" +
                                  detail::code_point_name(s[i]) +
                                  ") is not a Unicode scalar value");
    out.append(reinterpret_cast<const char*>(buf), len);
  }
  return out;
}

#endif  // __cpp_exceptions

}  // namespace text
GRAFT_END_NAMESPACE
