// libFuzzer target: parse_idx_gzip() on the input bytes, as a gzip file (needs zlib:
// GRAFT_HAVE_ZLIB). Refusals are graft::data_error; any other exception (std::bad_alloc from a
// gzip bomb included), a crash or a sanitizer report is a finding. An accepted file is checked
// against zlib's own inflate of the same bytes (one-shot, members concatenated).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "graft/data/idx.hpp"

#ifndef GRAFT_HAVE_ZLIB
#error "fuzz_idx_gzip needs zlib (GRAFT_HAVE_ZLIB)"
#endif

namespace {
/// The whole inflated stream of a gzip file that parse_idx_gzip accepted (so it is well formed).
std::vector<unsigned char> inflate_all(const std::uint8_t* data, std::size_t size) {
  std::vector<unsigned char> out;
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) std::abort();
  unsigned char buf[1 << 14];
  z.next_in = const_cast<Bytef*>(data);
  z.avail_in = static_cast<uInt>(size);
  for (;;) {
    z.next_out = buf;
    z.avail_out = sizeof buf;
    const int rc = inflate(&z, Z_NO_FLUSH);
    out.insert(out.end(), buf, buf + (sizeof buf - z.avail_out));
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      inflateReset(&z);
    } else if (rc != Z_OK) {
      std::abort();  // parse_idx_gzip accepted what zlib refuses
    }
  }
  inflateEnd(&z);
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace gd = graft::data;
  gd::idx_array a;
  try {
    a = gd::parse_idx_gzip("fuzz.idx.gz", data, size);
  } catch (const graft::data_error&) {
    return 0;
  }
  if (!a.decompressed || a.count() * a.element_size() != a.payload.size()) std::abort();
  const std::vector<unsigned char> whole = inflate_all(data, size);
  if (whole.size() != a.header_size() + a.payload.size() ||
      std::memcmp(whole.data() + a.header_size(), a.payload.data(), a.payload.size()) != 0)
    std::abort();
  return 0;
}
