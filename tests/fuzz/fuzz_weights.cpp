// libFuzzer target: the weight loader, graft::detail::load_bytes() (load() and load_backbone() on
// bytes in memory), into the small model of harness_model.hpp.
//
// Input: byte 0 selects (bit 0: load or load_backbone; bit 1: leave the file as it is), the rest
// is the weight file. Unless bit 1 is set the harness repairs the file so that mutations reach the
// count and payload checks instead of stopping at the fingerprints or the checksum: when the two
// descriptions can be parsed, bytes 16..31 become their FNV-1a fingerprints, and the trailing u64
// becomes the FNV-1a checksum of every byte before it (see the layout in graft/io/weights.hpp).
//
// Findings: any exception but graft::io_error, a crash or a sanitizer report; a refused load that
// changed the model (compared bitwise with a copy of its saved tensors taken before); an accepted
// load whose model does not hold exactly the file's payload (backbone only for load_backbone, the
// head then unchanged).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "harness_model.hpp"

namespace {
using net_t = graft_fuzz::net_t;
using bytes = std::vector<unsigned char>;

using graft_fuzz::saved_bytes;

std::uint64_t get_u32(const bytes& b, std::size_t at) {
  return graft::detail::get_le<std::uint32_t>(b.data() + at);
}
void put_u64(bytes& b, std::size_t at, std::uint64_t v) {
  for (std::size_t i = 0; i < 8; ++i) b[at + i] = static_cast<unsigned char>(v >> (8 * i));
}

/// Where the two descriptions are (offset and length of each) and the payload begins (after the
/// two counts), when the descriptions can be parsed; payload 0 otherwise.
struct layout {
  std::size_t desc[2][2] = {};
  std::size_t payload = 0;
};
layout parse_layout(const bytes& f) {
  layout l;
  std::size_t at = 32;
  for (auto& d : l.desc) {
    if (f.size() < at + 4) return {};
    const std::uint64_t len = get_u32(f, at);
    at += 4;
    if (f.size() - at < len) return {};
    d[0] = at;
    d[1] = static_cast<std::size_t>(len);
    at += d[1];
  }
  l.payload = at + 16;
  return l;
}

/// Rewrites the fingerprints and the checksum to match the file's contents (see above).
void repair(bytes& f, const layout& l) {
  if (l.payload == 0) return;
  put_u64(f, 16, graft::detail::fnv1a(f.data() + l.desc[0][0], l.desc[0][1]));
  put_u64(f, 24, graft::detail::fnv1a(f.data() + l.desc[1][0], l.desc[1][1]));
  // the checksum must not overwrite the descriptions it follows
  if (f.size() >= l.payload - 16 + 8)
    put_u64(f, f.size() - 8, graft::detail::fnv1a(f.data(), f.size() - 8));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::unique_ptr<net_t> net = graft::make_model<net_t>(graft::seed{7});
  if (size == 0) return 0;
  const bool include_head = (data[0] & 1) == 0;
  const bool as_is = (data[0] & 2) != 0;
  bytes file(data + 1, data + size);
  const layout l = parse_layout(file);
  if (!as_is) repair(file, l);
  const std::size_t payload_at = l.payload;

  const bytes backbone_before = saved_bytes(*net, false), head_before = saved_bytes(*net, true);
  bool refused = false;
  try {
    graft::detail::load_bytes(*net, "fuzz.graft", file, include_head);
  } catch (const graft::io_error&) {
    refused = true;
  }
  const bytes backbone_after = saved_bytes(*net, false), head_after = saved_bytes(*net, true);
  if (refused) {
    if (backbone_after != backbone_before || head_after != head_before) std::abort();
    return 0;
  }
  // Accepted: the model holds the file's payload (this harness runs on little-endian machines,
  // where the in-memory scalars are the file's bytes).
  if (payload_at == 0 || file.size() < payload_at + backbone_after.size() + 8) std::abort();
  if (std::memcmp(file.data() + payload_at, backbone_after.data(), backbone_after.size()) != 0)
    std::abort();
  if (include_head) {
    if (file.size() != payload_at + backbone_after.size() + head_after.size() + 8 ||
        std::memcmp(file.data() + payload_at + backbone_after.size(), head_after.data(),
                    head_after.size()) != 0)
      std::abort();
  } else if (head_after != head_before) {
    std::abort();
  }
  return 0;
}
