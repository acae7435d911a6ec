// Weight files: graft's own versioned binary format.
//
//   offset  field
//   0       magic "GRAFTWTS"
//   8       u32 format version (1)
//   12      u32 scalar size in bytes (4 float, 8 double)
//   16      u64 FNV-1a fingerprint of the backbone description
//   24      u64 FNV-1a fingerprint of the head description
//   32      u32 length B of the backbone description, then B bytes
//   ..      u32 length H of the head description, then H bytes
//   ..      u64 backbone scalar count, u64 head scalar count
//   ..      payload: layer by layer in model order (backbone, then head), each layer's parameter
//           tensors then its buffers (batch norm's running statistics), little-endian
//   end-8   u64 FNV-1a checksum of every byte before it
//
// A description lists each layer's name and output shape, so a file names the architecture it was
// saved from and a mismatch is reported in words. load() validates the whole file before it
// touches the model: a refused file leaves the model unchanged. save() writes a temporary file in
// the same directory and renames it over the target, so a crash never leaves a half-written file.
#pragma once
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "graft/model/model.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

GRAFT_BEGIN_NAMESPACE

class io_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
inline constexpr char weights_magic[8] = {'G', 'R', 'A', 'F', 'T', 'W', 'T', 'S'};
inline constexpr std::uint32_t weights_version = 1;

inline std::uint64_t fnv1a(const unsigned char* p, std::size_t n,
                           std::uint64_t h = 0xcbf29ce484222325ULL) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}
inline std::uint64_t fnv1a(std::string_view s) noexcept {
  return fnv1a(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

template <class U> void put_le(std::vector<unsigned char>& out, U v) {
  for (std::size_t i = 0; i < sizeof(U); ++i)
    out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
template <class U> U get_le(const unsigned char* p) noexcept {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) v |= static_cast<U>(static_cast<U>(p[i]) << (8 * i));
  return v;
}
template <class T> using scalar_bits =
    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

/// A parsed, fully validated weight file.
struct weight_file {
  std::uint32_t scalar_size = 0;
  std::uint64_t backbone_fp = 0, head_fp = 0;
  std::string backbone_desc, head_desc;
  std::uint64_t backbone_count = 0, head_count = 0;
  std::size_t payload_offset = 0;
  std::vector<unsigned char> bytes;
};

inline std::vector<unsigned char> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    throw io_error("graft: cannot open weight file '" + path + "': " + std::strerror(errno));
  std::vector<unsigned char> bytes;
  unsigned char buf[1 << 16];
  std::size_t got = 0;
  errno = 0;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + got);
  const int err = errno;
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  // a directory opens on POSIX and fails on the first read (EISDIR): say so
  if (failed)
    throw io_error("graft: error reading weight file '" + path +
                   "': " + (err != 0 ? std::strerror(err) : "read error"));
  return bytes;
}

inline weight_file parse_weights(const std::string& path, std::vector<unsigned char> bytes) {
  auto fail = [&](std::size_t offset, const std::string& expected, const std::string& found) {
    return io_error("graft: " + path + ": byte " + std::to_string(offset) + ": expected " +
                    expected + ", found " + found);
  };
  const std::size_t n = bytes.size();
  std::size_t at = 0;
  auto need = [&](std::size_t k, const char* what) {
    if (n - at < k)
      throw fail(at, std::string(what) + " (" + std::to_string(k) + " bytes)",
                 "end of file after " + std::to_string(n) + " bytes (truncated)");
  };
  weight_file w;
  need(8, "the magic \"GRAFTWTS\"");
  if (std::memcmp(bytes.data(), weights_magic, 8) != 0)
    throw fail(0, "the magic \"GRAFTWTS\"", "other bytes (not a graft weight file)");
  at = 8;
  need(8, "version and scalar size");
  const auto version = get_le<std::uint32_t>(bytes.data() + at);
  if (version != weights_version)
    throw fail(at, "format version " + std::to_string(weights_version),
               "version " + std::to_string(version));
  w.scalar_size = get_le<std::uint32_t>(bytes.data() + at + 4);
  if (w.scalar_size != 4 && w.scalar_size != 8)
    throw fail(at + 4, "scalar size 4 or 8", std::to_string(w.scalar_size));
  at += 8;
  need(16, "architecture fingerprints");
  w.backbone_fp = get_le<std::uint64_t>(bytes.data() + at);
  w.head_fp = get_le<std::uint64_t>(bytes.data() + at + 8);
  at += 16;
  for (std::string* d : {&w.backbone_desc, &w.head_desc}) {
    need(4, "a description length");
    const auto len = get_le<std::uint32_t>(bytes.data() + at);
    at += 4;
    need(len, "an architecture description");
    d->assign(reinterpret_cast<const char*>(bytes.data() + at), len);
    at += len;
  }
  need(16, "parameter counts");
  w.backbone_count = get_le<std::uint64_t>(bytes.data() + at);
  w.head_count = get_le<std::uint64_t>(bytes.data() + at + 8);
  at += 16;
  w.payload_offset = at;
  const std::uint64_t max_count = (UINT64_MAX - 8) / 8 / 2;
  if (w.backbone_count > max_count || w.head_count > max_count)
    throw fail(at - 16, "plausible parameter counts",
               std::to_string(w.backbone_count) + " and " + std::to_string(w.head_count));
  const std::uint64_t payload = (w.backbone_count + w.head_count) * w.scalar_size;
  if (static_cast<std::uint64_t>(n - at) < payload + 8)
    throw fail(n, std::to_string(at + payload + 8) + " bytes in all",
               std::to_string(n) + " bytes (the file is truncated)");
  if (static_cast<std::uint64_t>(n - at) > payload + 8)
    throw fail(static_cast<std::size_t>(at + payload + 8), "end of file",
               std::to_string(n - at - payload - 8) + " trailing bytes");
  const auto stored = get_le<std::uint64_t>(bytes.data() + n - 8);
  const auto actual = fnv1a(bytes.data(), n - 8);
  if (stored != actual)
    throw fail(n - 8, "checksum " + std::to_string(actual),
               std::to_string(stored) + " (the file is corrupted)");
  if (w.backbone_fp != fnv1a(w.backbone_desc) || w.head_fp != fnv1a(w.head_desc))
    throw fail(16, "fingerprints matching the stored descriptions",
               "a mismatch (corrupted header)");
  w.bytes = std::move(bytes);
  return w;
}

/// Writes bytes to path through a temporary file in the same directory, flushed to disk and
/// renamed over path: a crash (even SIGKILL) at any point leaves either the previous file or the
/// new one, never a mix.
inline void write_atomically(const std::string& path, const std::vector<unsigned char>& out) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw io_error("graft: cannot write '" + tmp + "': " + std::strerror(errno));
  bool ok = std::fwrite(out.data(), 1, out.size(), f) == out.size() && std::fflush(f) == 0;
#if defined(__unix__) || defined(__APPLE__)
  ok = ok && ::fsync(::fileno(f)) == 0;
#endif
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw io_error("graft: saving '" + path + "' failed: " + why +
                   " (the previous file, if any, is intact)");
  }
}

/// Visits the saved tensors (parameters, then buffers, layer by layer) of the backbone or head.
template <class M, class F> void for_each_param(M& net, bool head, F&& f) {
  net.for_each_saved([&](std::size_t layer, auto* data, std::size_t size) {
    if ((layer == M::head_index) == head) f(data, size);
  });
}

template <class M> void read_params(M& net, const weight_file& w, bool include_head) {
  using T = typename M::scalar;
  const unsigned char* p = w.bytes.data() + w.payload_offset;
  auto read = [&](T* data, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i, p += sizeof(T))
      data[i] = std::bit_cast<T>(get_le<scalar_bits<T>>(p));
  };
  for_each_param(net, false, read);
  if (include_head) for_each_param(net, true, read);
}

/// Scalars saved for the backbone: its parameters and its buffers (the head has no buffers).
template <class M> std::uint64_t backbone_scalars() {
  static_assert(buffer_count_v<typename M::head_layer> == 0);
  return M::parameter_count - M::head_layer::parameter_count + M::buffer_scalars;
}
}  // namespace detail

/// Writes net's parameters to path (atomically: temporary file, then rename).
template <class M> void save(const M& net, const std::string& path) {
  static_assert(is_model<M>::value, "graft: save(net, path): net must be a graft::model");
  using T = typename M::scalar;
  std::vector<unsigned char> out;
  out.reserve(64 + M::parameter_bytes + M::buffer_scalars * sizeof(T));
  out.insert(out.end(), detail::weights_magic, detail::weights_magic + 8);
  detail::put_le<std::uint32_t>(out, detail::weights_version);
  detail::put_le<std::uint32_t>(out, sizeof(T));
  // the backbone description, then the model's state (an embedding's vocabulary) on a second
  // line when there is one: both are in the fingerprint
  const std::string state = net.state_description();
  const std::string bd = M::backbone_description() + (state.empty() ? "" : "\n" + state);
  const std::string hd = M::head_description();
  detail::put_le<std::uint64_t>(out, detail::fnv1a(bd));
  detail::put_le<std::uint64_t>(out, detail::fnv1a(hd));
  for (const std::string* d : {&bd, &hd}) {
    detail::put_le<std::uint32_t>(out, static_cast<std::uint32_t>(d->size()));
    out.insert(out.end(), d->begin(), d->end());
  }
  detail::put_le<std::uint64_t>(out, detail::backbone_scalars<M>());
  detail::put_le<std::uint64_t>(out, M::head_layer::parameter_count);
  auto write = [&](const T* data, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i)
      detail::put_le(out, std::bit_cast<detail::scalar_bits<T>>(data[i]));
  };
  detail::for_each_param(net, false, write);
  detail::for_each_param(net, true, write);
  detail::put_le<std::uint64_t>(out, detail::fnv1a(out.data(), out.size()));

  detail::write_atomically(path, out);
}

namespace detail {
/// Validates a parsed file against model type M (scalar size, descriptions and scalar counts) and
/// only then reads it into net: a refused file leaves net unchanged. With include_head false only
/// the backbone is compared and read (the file's head may be any head).
template <class M>
void load_parsed(M& net, const std::string& path, const weight_file& w, bool include_head) {
  using T = typename M::scalar;
  if (w.scalar_size != sizeof(T))
    throw io_error("graft: " + path + ": saved with " + std::to_string(w.scalar_size) +
                   "-byte scalars, the model uses " + std::to_string(sizeof(T)) + "-byte scalars");
  const std::string bd = M::backbone_description(), hd = M::head_description();
  // the file's backbone description: the architecture, then the state on a second line
  const std::size_t nl = w.backbone_desc.find('\n');
  const std::string file_bd = w.backbone_desc.substr(0, nl);
  const std::string file_state = nl == std::string::npos ? "" : w.backbone_desc.substr(nl + 1);
  if (include_head && (file_bd != bd || w.head_desc != hd))
    throw io_error("graft: " + path + ": architecture differs.\n  file:  " + file_bd + " | " +
                   w.head_desc + "\n  model: " + bd + " | " + hd);
  if (!include_head && file_bd != bd)
    throw io_error("graft: " + path + ": backbone differs.\n  file:  " + file_bd +
                   "\n  model: " + bd);
  // A model whose state is assigned (a vocabulary) keeps it: the file must carry the same one.
  // An unassigned model adopts the file's (its buffers are read below).
  const std::string state = net.state_description();
  if (!state.empty() && file_state != state)
    throw io_error("graft: " + path + ": " +
                   (file_state.empty()
                        ? "the file's model has no vocabulary (" + state + " expected)"
                        : "vocabulary differs (file: " + file_state + "; model: " + state + ")") +
                   " (a model keeps the vocabulary it was pre-trained with: tokenize with "
                   "char_vocabulary::of(net))");
  // The descriptions name layers and shapes, not the number of scalars each saves: the counts are
  // compared on their own, so that the payload read below never leaves the file's bytes.
  const std::uint64_t need_b = backbone_scalars<M>(), need_h = M::head_layer::parameter_count;
  const std::size_t count_at = w.payload_offset - 16;
  if (include_head && (w.backbone_count != need_b || w.head_count != need_h))
    throw io_error("graft: " + path + ": byte " + std::to_string(count_at) + ": the file holds " +
                   std::to_string(w.backbone_count) + " backbone and " +
                   std::to_string(w.head_count) + " head scalars, the model needs " +
                   std::to_string(need_b) + " and " + std::to_string(need_h));
  if (!include_head && w.backbone_count != need_b)
    throw io_error("graft: " + path + ": byte " + std::to_string(count_at) + ": the file holds " +
                   std::to_string(w.backbone_count) +
                   " backbone scalars, the model's backbone needs " + std::to_string(need_b));
  read_params(net, w, include_head);
}

/// load() / load_backbone() on bytes already in memory (name is used in messages): the entry
/// point of the fuzz target.
template <class M> void load_bytes(M& net, const std::string& name,
                                   std::vector<unsigned char> bytes, bool include_head) {
  load_parsed(net, name, parse_weights(name, std::move(bytes)), include_head);
}
}  // namespace detail

/// Reads all parameters from path into net. Refuses (io_error) a file of another architecture,
/// scalar type or scalar count, a truncated or corrupted file; net is unchanged then.
template <class M> void load(M& net, const std::string& path) {
  static_assert(is_model<M>::value, "graft: load(net, path): net must be a graft::model");
  detail::load_bytes(net, path, detail::read_file(path), true);
}

/// Reads only the backbone from path (saved with any head); the head of net is left as it is.
/// Refuses a file whose backbone differs; net is unchanged then.
template <class M> void load_backbone(M& net, const std::string& path) {
  static_assert(is_model<M>::value, "graft: load_backbone(net, path): net must be a graft::model");
  detail::load_bytes(net, path, detail::read_file(path), false);
}

GRAFT_END_NAMESPACE
