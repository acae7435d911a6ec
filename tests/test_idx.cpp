// IDX reader: round trips of every type code (raw and gzip), every malformed case with its file,
// offset, expected and found values, and from_idx validation.
#include <doctest/doctest.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef GRAFT_HAVE_ZLIB
#include <zlib.h>
#endif

#include "graft/data/data.hpp"
#include "support/temp_dir.hpp"

#ifdef GRAFT_HAVE_ZLIB
// The largest single request to the global operator new since the last reset: the gzip bomb tests
// check that reading does not allocate what a hostile stream would inflate to. Replacing the
// global allocation functions is allowed in a program; this test binary is its own program.
namespace {
std::atomic<std::size_t> largest_allocation{0};
void note_allocation(std::size_t n) {
  std::size_t seen = largest_allocation.load(std::memory_order_relaxed);
  while (n > seen && !largest_allocation.compare_exchange_weak(seen, n)) {
  }
}
}  // namespace
void* operator new(std::size_t n) {
  note_allocation(n);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
// Not inlined: GCC would otherwise see free() applied to what operator new returned and warn.
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

namespace fs = std::filesystem;
namespace gd = graft::data;
using bytes = std::vector<unsigned char>;

/// A fresh directory under the system temporary directory, removed with its files at scope end.
using graft_test::temp_dir;

void put_be(bytes& out, std::uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

/// An IDX file: header for type and dims, then payload as given.
bytes idx_file(std::uint8_t type, const std::vector<std::uint32_t>& dims, const bytes& payload) {
  bytes b = {0, 0, type, static_cast<unsigned char>(dims.size())};
  for (std::uint32_t d : dims) put_be(b, d, 4);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

void write_raw(const std::string& path, const bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  REQUIRE(f.good());
}

#ifdef GRAFT_HAVE_ZLIB
bytes read_raw(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_gz(const std::string& path, const bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!b.empty()) REQUIRE(gzwrite(f, b.data(), static_cast<unsigned>(b.size())) == int(b.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

/// One gzip member holding head followed by zeros zero bytes, compressed in memory in 1 MiB steps
/// (a gzip bomb: the zeros are never held uncompressed all at once).
bytes gzip_then_zeros(const bytes& head, std::size_t zeros) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) ==
          Z_OK);
  bytes out;
  const bytes chunk(1 << 20, 0);
  unsigned char buf[1 << 16];
  auto pump = [&](const unsigned char* in, std::size_t n, int flush) {
    z.next_in = const_cast<unsigned char*>(in);
    z.avail_in = static_cast<uInt>(n);
    do {
      z.next_out = buf;
      z.avail_out = sizeof buf;
      REQUIRE(deflate(&z, flush) != Z_STREAM_ERROR);
      out.insert(out.end(), buf, buf + (sizeof buf - z.avail_out));
    } while (z.avail_out == 0);
  };
  pump(head.data(), head.size(), Z_NO_FLUSH);
  for (std::size_t left = zeros; left > 0;) {
    const std::size_t k = left < chunk.size() ? left : chunk.size();
    pump(chunk.data(), k, Z_NO_FLUSH);
    left -= k;
  }
  pump(nullptr, 0, Z_FINISH);
  REQUIRE(deflateEnd(&z) == Z_OK);
  return out;
}
#endif

/// what() of the data_error read_idx(path) throws, or "<no data_error>".
std::string read_error(const std::string& path, std::uint64_t* offset = nullptr) {
  try {
    (void)gd::read_idx(path);
  } catch (const graft::data_error& e) {
    CHECK(e.file() == path);
    if (offset != nullptr) *offset = e.offset();
    return e.what();
  }
  return "<no data_error>";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

struct bad_case {
  const char* name;
  bytes file;
  std::uint64_t offset;
  std::vector<std::string> parts;  // substrings of what() besides the file name and offset
};

std::vector<bad_case> bad_cases() {
  const bytes p12(12, 7);
  return {
      {"empty", {}, 0, {"expected a 4-byte IDX header", "found 0 bytes"}},
      {"short", {0, 0, 8}, 0, {"expected a 4-byte IDX header", "found 3 bytes"}},
      {"magic0", {1, 0, 8, 1, 0, 0, 0, 1, 5}, 0, {"expected 0x00", "found 0x01"}},
      {"magic1", {0, 0xAB, 8, 1, 0, 0, 0, 1, 5}, 1, {"expected 0x00", "found 0xAB"}},
      {"type07", idx_file(0x07, {1}, {5}), 2, {"expected an IDX type code", "found 0x07"}},
      {"type0A", idx_file(0x0A, {1}, {5}), 2, {"expected an IDX type code", "found 0x0A"}},
      {"rank0", {0, 0, 8, 0}, 3, {"expected a positive number of dimensions, found 0"}},
      {"zero_dim",
       idx_file(0x08, {3, 0}, {}),
       8,
       {"expected a positive dimension (dimension 1 of 2), found 0"}},
      {"dims_truncated",
       {0, 0, 8, 3, 0, 0, 0, 2, 0},
       4,
       {"expected 12 bytes of dimensions (3 big-endian uint32), found 5 bytes"}},
      {"overflow",
       idx_file(0x0E, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {}),
       4,
       {"expected dimensions whose payload size fits in 64 bits",
        "found 4294967295x4294967295x4294967295 of float64"}},
      {"overflow_exact",
       idx_file(0x0E, {0x80000000, 0x40000000}, {}),
       4,
       {"found 2147483648x1073741824 of float64"}},
      {"no_overflow_2_63",
       idx_file(0x0E, {0x80000000, 0x20000000}, {}),
       12,
       {"expected 9223372036854775808 payload bytes", "found 0"}},
      {"no_overflow_ubyte",
       idx_file(0x08, {0xFFFFFFFF, 0xFFFFFFFF}, {1, 2}),
       12,
       {"expected 18446744065119617025 payload bytes", "found 2"}},
      {"payload_truncated",
       idx_file(0x0C, {3}, bytes(11, 1)),
       8,
       {"expected 12 payload bytes (3 int32), found 11"}},
      {"payload_truncated_2d",
       idx_file(0x0B, {2, 3}, bytes(5, 1)),
       12,
       {"expected 12 payload bytes (2x3 int16), found 5"}},
      {"trailing",
       [&] {
         auto b = idx_file(0x0C, {3}, p12);
         b.push_back(9);
         return b;
       }(),
       20,
       {"expected the end of the data after 12 payload bytes", "found 1 trailing byte"}},
      {"trailing3",
       [&] {
         auto b = idx_file(0x08, {12}, p12);
         b.resize(b.size() + 3);
         return b;
       }(),
       20,
       {"found 3 trailing bytes"}},
  };
}

template <class T> bytes be_payload(const std::vector<T>& values) {
  bytes b;
  for (T v : values) {
    if constexpr (sizeof(T) == 1)
      b.push_back(static_cast<unsigned char>(v));
    else if constexpr (sizeof(T) == 2)
      put_be(b, static_cast<std::uint16_t>(v), 2);
    else if constexpr (sizeof(T) == 4)
      put_be(b, std::bit_cast<std::uint32_t>(v), 4);
    else
      put_be(b, std::bit_cast<std::uint64_t>(v), 8);
  }
  return b;
}

struct good_case {
  const char* name;
  std::uint8_t type;
  bytes payload;
  std::vector<double> values;  // the 6 elements of a 2x3 array
};

std::vector<good_case> good_cases() {
  return {
      {"ubyte",
       0x08,
       be_payload<std::uint8_t>({0, 1, 127, 128, 200, 255}),
       {0, 1, 127, 128, 200, 255}},
      {"sbyte",
       0x09,
       be_payload<std::int8_t>({-128, -1, 0, 1, 100, 127}),
       {-128, -1, 0, 1, 100, 127}},
      {"int16",
       0x0B,
       be_payload<std::int16_t>({-32768, -1, 0, 258, 1000, 32767}),
       {-32768, -1, 0, 258, 1000, 32767}},
      {"int32",
       0x0C,
       be_payload<std::int32_t>({std::numeric_limits<std::int32_t>::min(), -1, 0, 0x01020304,
                                 -70000, std::numeric_limits<std::int32_t>::max()}),
       {-2147483648.0, -1, 0, 16909060, -70000, 2147483647.0}},
      {"float32",
       0x0D,
       be_payload<float>({-1.5f, 0.0f, 3.25f, 0.125f, -1e6f, 65504.0f}),
       {-1.5, 0.0, 3.25, 0.125, -1e6, 65504.0}},
      {"float64",
       0x0E,
       be_payload<double>({-1.5, 0.0, 0.1, 1e300, -2.5e-300, 42.0}),
       {-1.5, 0.0, 0.1, 1e300, -2.5e-300, 42.0}},
  };
}

void check_round_trip(const gd::idx_array& a, const good_case& c, const std::string& path,
                      bool decompressed) {
  CHECK(a.path == path);
  CHECK(a.type == c.type);
  CHECK(a.dims == std::vector<std::size_t>{2, 3});
  CHECK(a.count() == 6);
  CHECK(a.rank() == 2);
  CHECK(a.header_size() == 12);
  CHECK(a.decompressed == decompressed);
  CHECK(a.payload == c.payload);
  for (std::size_t i = 0; i < 6; ++i) CHECK(a.at(i) == c.values[i]);
  CHECK_THROWS_AS((void)a.at(6), std::out_of_range);
  std::vector<float> f(6);
  gd::convert_to_float(a, f.data());
  for (std::size_t i = 0; i < 6; ++i) CHECK(f[i] == static_cast<float>(c.values[i]));
}

}  // namespace

TEST_CASE("idx: round trip of every type code, raw and gzip") {
  temp_dir dir;
  for (const good_case& c : good_cases()) {
    CAPTURE(c.name);
    const bytes file = idx_file(c.type, {2, 3}, c.payload);
    const std::string raw = dir.file(std::string(c.name) + ".idx");
    write_raw(raw, file);
    check_round_trip(gd::read_idx(raw), c, raw, false);
    check_round_trip(gd::parse_idx("buffer", file.data(), file.size()), c, "buffer", false);
#ifdef GRAFT_HAVE_ZLIB
    const std::string gz = dir.file(std::string(c.name) + ".idx.gz");
    write_gz(gz, file);
    check_round_trip(gd::read_idx(gz), c, gz, true);
#endif
  }
}

TEST_CASE("idx: a rank-3 ubyte file like MNIST images, and a large gzip payload") {
  temp_dir dir;
  bytes payload(5 * 28 * 28);
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<unsigned char>((i * 2654435761u) >> 13);
  const bytes file = idx_file(0x08, {5, 28, 28}, payload);
  const std::string raw = dir.file("images-idx3-ubyte");
  write_raw(raw, file);
  const gd::idx_array a = gd::read_idx(raw);
  CHECK(a.dims == std::vector<std::size_t>{5, 28, 28});
  CHECK(a.payload == payload);
#ifdef GRAFT_HAVE_ZLIB
  // Bigger than zlib's buffers and the initial guess, so reading takes several chunks.
  bytes big(3 << 20);
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<unsigned char>(((i * 2654435761u) >> 20) & 0x0F);
  const bytes big_file = idx_file(0x08, {3, 1024, 1024}, big);
  const std::string gz = dir.file("big.gz");
  write_gz(gz, big_file);
  const gd::idx_array b = gd::read_idx(gz);
  CHECK(b.dims == std::vector<std::size_t>{3, 1024, 1024});
  CHECK(b.payload == big);

  // Two concatenated gzip members: the size hint (the last member's ISIZE) is too small, so the
  // buffer has to grow.
  const auto half = static_cast<std::ptrdiff_t>(big_file.size() / 3);
  const std::string part1 = dir.file("part1.gz"), part2 = dir.file("part2.gz");
  write_gz(part1, bytes(big_file.begin(), big_file.begin() + 2 * half));
  write_gz(part2, bytes(big_file.begin() + 2 * half, big_file.end()));
  bytes both = read_raw(part1);
  const bytes second = read_raw(part2);
  both.insert(both.end(), second.begin(), second.end());
  const std::string multi = dir.file("multi.gz");
  write_raw(multi, both);
  const gd::idx_array c = gd::read_idx(multi);
  CHECK(c.decompressed);
  CHECK(c.payload == big);
#endif
}

TEST_CASE("idx: every malformed file throws data_error with file, offset, expected and found") {
  temp_dir dir;
  for (const bad_case& c : bad_cases()) {
    CAPTURE(c.name);
    const std::string raw = dir.file(c.name);
    write_raw(raw, c.file);
    std::uint64_t offset = 0;
    const std::string msg = read_error(raw, &offset);
    CAPTURE(msg);
    CHECK(offset == c.offset);
    CHECK(contains(msg, "graft: " + raw + ": byte " + std::to_string(c.offset) + ": expected "));
    CHECK(!contains(msg, "decompressed"));
    CHECK(!contains(msg, "\n"));
    for (const std::string& part : c.parts) CHECK(contains(msg, part));

    // The same validation on a buffer.
    try {
      (void)gd::parse_idx("buf", c.file.data(), c.file.size(), true);
      FAIL("parse_idx accepted ", c.name);
    } catch (const graft::data_error& e) {
      const std::string m = e.what();
      CAPTURE(m);
      CHECK(e.file() == "buf");
      CHECK(e.offset() == c.offset);
      CHECK(contains(m, "graft: buf: byte " + std::to_string(c.offset) +
                            " of the decompressed stream: expected "));
      for (const std::string& part : c.parts) CHECK(contains(m, part));
    }

#ifdef GRAFT_HAVE_ZLIB
    const std::string gz = dir.file(std::string(c.name) + ".gz");
    write_gz(gz, c.file);
    const std::string gz_msg = read_error(gz, &offset);
    CAPTURE(gz_msg);
    CHECK(offset == c.offset);
    CHECK(contains(gz_msg, "graft: " + gz + ": byte " + std::to_string(c.offset) +
                               " of the decompressed stream: expected "));
    for (const std::string& part : c.parts) CHECK(contains(gz_msg, part));
#endif
  }
}

TEST_CASE("idx: missing or unreadable files") {
  temp_dir dir;
  const std::string missing = dir.file("no-such-file");
  std::uint64_t offset = 0;
  const std::string msg = read_error(missing, &offset);
  CHECK(offset == graft::data_error::no_offset);
  CHECK(msg == "graft: " + missing + ": expected a readable file, found " +
                   std::string(std::strerror(ENOENT)));

  const std::string sub = dir.file("subdir");
  fs::create_directory(sub);
  CHECK(read_error(sub) == "graft: " + sub + ": expected a readable file, found a directory");
}

TEST_CASE("idx: gzip files") {
  temp_dir dir;
#ifdef GRAFT_HAVE_ZLIB
  bytes payload(4096);
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<unsigned char>((i * 2654435761u) >> 7);
  const bytes file = idx_file(0x08, {4096}, payload);
  const std::string good = dir.file("good.gz");
  write_gz(good, file);
  const bytes gz = read_raw(good);
  REQUIRE(gz.size() > 100);

  SUBCASE("a .gz name does not matter: gzip is recognised by content") {
    const std::string named = dir.file("plain-name");
    write_raw(named, gz);
    CHECK(gd::read_idx(named).payload == payload);
  }
  SUBCASE("bad CRC") {
    bytes bad = gz;
    bad[bad.size() - 6] ^= 0x55;  // inside the CRC-32 of the trailer
    const std::string path = dir.file("bad-crc.gz");
    write_raw(path, bad);
    const std::string msg = read_error(path);
    CAPTURE(msg);
    CHECK(contains(msg, "graft: " + path + ": byte "));
    CHECK(contains(msg, " of the decompressed stream: expected a valid gzip stream, found "));
  }
  SUBCASE("corrupt deflate data") {
    bytes bad = gz;
    for (std::size_t i = 20; i < 40; ++i) bad[i] = static_cast<unsigned char>(0xFF - bad[i]);
    const std::string path = dir.file("corrupt.gz");
    write_raw(path, bad);
    const std::string msg = read_error(path);
    CAPTURE(msg);
    CHECK(contains(msg, "graft: " + path + ": byte "));
    CHECK(contains(msg, " of the decompressed stream: expected a "));
    CHECK(contains(msg, "gzip stream, found "));
  }
  SUBCASE("truncated gzip stream") {
    bytes bad(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2));
    const std::string path = dir.file("truncated.gz");
    write_raw(path, bad);
    const std::string msg = read_error(path);
    CAPTURE(msg);
    CHECK(contains(msg, "graft: " + path + ": byte "));
    CHECK(contains(msg, " of the decompressed stream: expected a complete gzip stream, found "));
  }
  SUBCASE("gzip inside gzip") {
    const std::string path = dir.file("double.gz");
    write_gz(path, gz);
    const std::string msg = read_error(path);
    CHECK(contains(msg, "byte 0 of the decompressed stream: expected 0x00"));
    CHECK(contains(msg, "found 0x1F 0x8B"));
  }
#else
  const std::string path = dir.file("images.gz");
  write_raw(path, idx_file(0x08, {1}, {1}));
  const std::string msg = read_error(path);
  CHECK(contains(msg, "graft: " + path + ": expected a raw IDX file"));
  CHECK(contains(msg, "graft was built without zlib"));
  const std::string renamed = dir.file("images-idx3-ubyte");
  write_raw(renamed, {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3});
  CHECK(contains(read_error(renamed), "found 0x1F 0x8B (the gzip magic: graft was built without"));
#endif
}

#ifdef GRAFT_HAVE_ZLIB
TEST_CASE("idx: bytes after the last gzip member are refused, with their compressed offset") {
  temp_dir dir;
  const bytes file = idx_file(0x08, {2, 3}, {1, 2, 3, 4, 5, 6});
  const std::string member_path = dir.file("member.gz");
  write_gz(member_path, file);
  const bytes member = read_raw(member_path);
  const bytes empty_member = [&] {
    const std::string p = dir.file("empty.gz");
    write_gz(p, {});
    return read_raw(p);
  }();

  struct garbage_case {
    const char* name;
    bytes tail;
  };
  for (const garbage_case& c :
       {garbage_case{"text", {'J', 'U', 'N', 'K', '\n'}},
        garbage_case{"zeros (tar padding)", bytes(512, 0)}, garbage_case{"one byte", {0x1f}},
        garbage_case{"half a magic", {0x1f, 0x00, 0x8b}}}) {
    const std::string name = c.name;
    CAPTURE(name);
    bytes bad = member;
    bad.insert(bad.end(), c.tail.begin(), c.tail.end());
    const std::string path = dir.file("garbage.gz");
    write_raw(path, bad);
    std::uint64_t offset = 0;
    const std::string msg = read_error(path, &offset);
    CAPTURE(msg);
    CHECK(offset == member.size());
    CHECK(contains(msg, "graft: " + path + ": byte " + std::to_string(member.size()) + ": "));
    CHECK(!contains(msg, "decompressed"));  // an offset into the compressed file
    CHECK(contains(msg, "gzip member"));
    CHECK(contains(msg, "found " + std::to_string(c.tail.size()) + " trailing byte"));
  }

  // After several members, the offset is past all of them.
  bytes two = member;
  two.insert(two.end(), empty_member.begin(), empty_member.end());
  const std::size_t end_of_members = two.size();
  two.push_back(0);
  const std::string path = dir.file("two-then-garbage.gz");
  write_raw(path, two);
  std::uint64_t offset = 0;
  const std::string msg = read_error(path, &offset);
  CAPTURE(msg);
  CHECK(offset == end_of_members);
  CHECK(contains(msg, "found 1 trailing byte"));

  // Concatenated members (each starting 0x1F 0x8B) are valid gzip: still read, empty ones too.
  const auto half = static_cast<std::ptrdiff_t>(file.size() / 2);
  const std::string p1 = dir.file("p1.gz"), p2 = dir.file("p2.gz");
  write_gz(p1, bytes(file.begin(), file.begin() + half));
  write_gz(p2, bytes(file.begin() + half, file.end()));
  bytes multi = empty_member;
  for (const bytes& part : {read_raw(p1), empty_member, read_raw(p2), empty_member})
    multi.insert(multi.end(), part.begin(), part.end());
  const std::string good = dir.file("multi.gz");
  write_raw(good, multi);
  const gd::idx_array a = gd::read_idx(good);
  CHECK(a.decompressed);
  CHECK(a.payload == bytes{1, 2, 3, 4, 5, 6});
}

TEST_CASE("idx: a gzip bomb stops at the size its header declares, without allocating more") {
  temp_dir dir;
  constexpr std::size_t zeros = std::size_t{200} << 20;  // 200 MiB inflated, ~200 KB compressed
  constexpr std::size_t allocation_bound = std::size_t{8} << 20;

  // Each bomb: the IDX header declares rows x 1000... ubytes, then 200 MiB of zeros follow. The
  // read stops at the declared size (the offset), names it, and never allocates 8 MiB at once.
  auto bomb = [&](const std::string& name, std::vector<std::uint32_t> dims, std::uint64_t payload,
                  const std::string& declared) {
    const std::string path = dir.file(name);
    write_raw(path, gzip_then_zeros(idx_file(0x08, dims, {}), zeros));
    largest_allocation = 0;
    std::uint64_t offset = 0;
    const std::string msg = read_error(path, &offset);
    const std::size_t largest = largest_allocation.load();
    CAPTURE(msg);
    CAPTURE(largest);
    CHECK(offset == 12 + payload);
    CHECK(contains(msg, declared + " declared by the header"));
    CHECK(contains(msg, "more data follows"));
    CHECK(largest < allocation_bound);
    return msg;
  };
  SUBCASE("1x1 ubyte declared, 200 MiB follow") {
    const std::string msg = bomb("bomb.gz", {1, 1}, 1, "1 payload byte (1x1 ubyte)");
    CHECK(contains(msg, "bomb.gz: byte 13 of the decompressed stream: expected "));
  }
  SUBCASE("1000x1000 ubyte declared, 200 MiB follow") {
    bomb("bomb2.gz", {1000, 1000}, 1000000, "1000000 payload bytes (1000x1000 ubyte)");
  }
}

TEST_CASE("idx: a huge declared payload is not reserved before the data arrives") {
  // A guard, not a regression: 64 GiB declared, 100 bytes present.
  temp_dir dir;
  const std::string path = dir.file("huge.gz");
  write_gz(path, idx_file(0x08, {0xFFFFFFFF, 16}, bytes(100, 1)));
  largest_allocation = 0;
  std::uint64_t offset = 0;
  const std::string msg = read_error(path, &offset);
  CAPTURE(msg);
  CHECK(offset == 12);
  CHECK(contains(msg, "expected 68719476720 payload bytes (4294967295x16 ubyte), found 100"));
  CHECK(largest_allocation.load() < (std::size_t{1} << 20));
}
#endif

TEST_CASE("from_idx: images and labels") {
  temp_dir dir;
  const std::string images_path = dir.file("images");
  const std::string labels_path = dir.file("labels");
  const bytes pixels = {0, 51, 255, 102, 1, 2, 3, 4, 5, 6, 7, 8};
  write_raw(images_path, idx_file(0x08, {3, 2, 2}, pixels));

  SUBCASE("well formed") {
    write_raw(labels_path, idx_file(0x08, {3}, {4, 0, 2}));
    const gd::dataset d =
        gd::from_idx(gd::read_idx(images_path), gd::read_idx(labels_path), "tiny/train");
    CHECK(d.name == "tiny/train");
    CHECK(d.size() == 3);
    CHECK(d.sample_shape == std::vector<std::size_t>{2, 2});
    CHECK(d.sample_size() == 4);
    CHECK(d.labels == std::vector<std::int32_t>{4, 0, 2});
    CHECK(d.class_ids == std::vector<std::int32_t>{0, 1, 2, 3, 4});
    CHECK(d.num_classes() == 5);
    REQUIRE(d.features.size() == 12);
    CHECK(d.sample(0)[0] == 0.0f);
    CHECK(d.sample(0)[1] == 0.2f);
    CHECK(d.sample(0)[2] == 1.0f);
    CHECK(d.sample(0)[3] == 0.4f);
    for (std::size_t i = 0; i < 12; ++i) CHECK(d.features[i] == float(pixels[i]) / 255.0f);
  }
  SUBCASE("float32 images are taken as they are, int16 labels") {
    const std::string fimages = dir.file("fimages");
    write_raw(fimages, idx_file(0x0D, {2, 3}, be_payload<float>({-1, 0.5f, 2, 3, 4, 1e9f})));
    write_raw(labels_path, idx_file(0x0B, {2}, be_payload<std::int16_t>({300, 7})));
    const gd::dataset d = gd::from_idx(gd::read_idx(fimages), gd::read_idx(labels_path), "f");
    CHECK(d.sample_shape == std::vector<std::size_t>{3});
    CHECK(d.features == std::vector<float>{-1, 0.5f, 2, 3, 4, 1e9f});
    CHECK(d.labels == std::vector<std::int32_t>{300, 7});
    CHECK(d.num_classes() == 301);
  }
  SUBCASE("count mismatch names both files and both counts") {
    write_raw(labels_path, idx_file(0x08, {4}, {0, 1, 2, 3}));
    try {
      (void)gd::from_idx(gd::read_idx(images_path), gd::read_idx(labels_path), "x");
      FAIL("no data_error");
    } catch (const graft::data_error& e) {
      const std::string m = e.what();
      CAPTURE(m);
      CHECK(contains(m, images_path));
      CHECK(contains(m, labels_path));
      CHECK(contains(m, "expected as many images as the 4 labels in " + labels_path));
      CHECK(contains(m, "found 3 images"));
    }
  }
  SUBCASE("negative label: label file, byte offset and value") {
    write_raw(labels_path, idx_file(0x0C, {3}, be_payload<std::int32_t>({1, 0, -3})));
    try {
      (void)gd::from_idx(gd::read_idx(images_path), gd::read_idx(labels_path), "x");
      FAIL("no data_error");
    } catch (const graft::data_error& e) {
      const std::string m = e.what();
      CAPTURE(m);
      CHECK(e.file() == labels_path);
      CHECK(e.offset() == 8 + 2 * 4);
      CHECK(contains(m, "graft: " + labels_path + ": byte 16: expected a non-negative label"));
      CHECK(contains(m, "found -3"));
    }
  }
  SUBCASE("negative sbyte label") {
    write_raw(labels_path, idx_file(0x09, {3}, {0, 0x80, 1}));
    try {
      (void)gd::from_idx(gd::read_idx(images_path), gd::read_idx(labels_path), "x");
      FAIL("no data_error");
    } catch (const graft::data_error& e) {
      CHECK(e.offset() == 9);
      CHECK(contains(e.what(), "found -128"));
    }
  }
  SUBCASE("non-integer and too large labels") {
    write_raw(labels_path, idx_file(0x0D, {3}, be_payload<float>({1, 2.5f, 0})));
    std::string m;
    try {
      (void)gd::from_idx(gd::read_idx(images_path), gd::read_idx(labels_path), "x");
    } catch (const graft::data_error& e) {
      m = e.what();
    }
    CHECK(contains(m, "byte 12: expected an integer label, found 2.5"));
    write_raw(labels_path, idx_file(0x0C, {3}, be_payload<std::int32_t>({1, 2, 1 << 20})));
    m.clear();
    try {
      (void)gd::from_idx(gd::read_idx(images_path), gd::read_idx(labels_path), "x");
    } catch (const graft::data_error& e) {
      m = e.what();
    }
    CHECK(contains(m, "byte 16: expected a label of at most 65535, found 1048576"));
  }
  SUBCASE("wrong ranks and types") {
    write_raw(labels_path, idx_file(0x08, {3}, {0, 1, 2}));
    const gd::idx_array labels = gd::read_idx(labels_path);
    // rank-1 "images"
    CHECK_THROWS_WITH_AS(gd::from_idx(labels, labels, "x"),
                         doctest::Contains("expected images of rank >= 2"), graft::data_error);
    // rank-2 labels
    CHECK_THROWS_WITH_AS(gd::from_idx(gd::read_idx(images_path), gd::read_idx(images_path), "x"),
                         doctest::Contains("expected labels of rank 1, found rank 3 (dims 3x2x2)"),
                         graft::data_error);
    // int32 images
    const std::string iimages = dir.file("iimages");
    write_raw(iimages, idx_file(0x0C, {3, 1}, be_payload<std::int32_t>({1, 2, 3})));
    CHECK_THROWS_WITH_AS(gd::from_idx(gd::read_idx(iimages), labels, "x"),
                         doctest::Contains("byte 2: expected an image type 0x08 ubyte, 0x0D "
                                           "float32 or 0x0E float64, found 0x0C int32"),
                         graft::data_error);
  }
}

TEST_CASE("data_error: message format") {
  const graft::data_error a("f.idx", 12, "x", "y");
  CHECK(std::string(a.what()) == "graft: f.idx: byte 12: expected x, found y");
  CHECK(a.file() == "f.idx");
  CHECK(a.offset() == 12);
  CHECK(a.expected() == "x");
  CHECK(a.found() == "y");
  const graft::data_error b("f.gz", 3, "x", "y", true);
  CHECK(std::string(b.what()) ==
        "graft: f.gz: byte 3 of the decompressed stream: expected x, found y");
  const graft::data_error c("f", graft::data_error::no_offset, "x", "y");
  CHECK(std::string(c.what()) == "graft: f: expected x, found y");
  CHECK(!c.has_offset());
  const std::runtime_error& base = c;
  CHECK(std::string(base.what()) == "graft: f: expected x, found y");
}
