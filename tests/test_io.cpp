// Weight files: bitwise round trip, refusal of other architectures / truncated / corrupted files
// with the model left unchanged, atomic save, load_backbone.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include <graft/graft.hpp>

#include "support/compare.hpp"
#include "support/temp_dir.hpp"

namespace g = graft;
namespace fs = std::filesystem;

namespace {
using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;
using mlp_net = g::model<mlp, g::classifier<10>>;

using graft_test::temp_dir;

std::vector<char> slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}
void spit(const std::string& p, const std::vector<char>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(b.data(), static_cast<std::streamsize>(b.size()));
}
template <class M> bool same(const M& a, const M& b) { return graft_test::bitwise_equal(a, b); }
}  // namespace

TEST_CASE("save then load gives a bitwise-equal model") {
  temp_dir dir;
  auto a = g::make_model<mlp_net>(g::seed{1});
  a->layer<1>().weight[3] = -0.0f;
  a->layer<1>().weight[4] = 1e-42f;  // a subnormal survives
  g::save(*a, dir.file("a.graft"));
  auto b = g::make_model<mlp_net>(g::seed{2});
  CHECK_FALSE(same(*a, *b));
  g::load(*b, dir.file("a.graft"));
  CHECK(same(*a, *b));
  CHECK(std::signbit(b->layer<1>().weight[3]));
  CHECK_FALSE(fs::exists(dir.file("a.graft.tmp")));
  // double models too
  using dnet = g::model<mlp, g::classifier<10>, double>;
  auto d1 = g::make_model<dnet>(g::seed{1}), d2 = g::make_model<dnet>(g::seed{3});
  g::save(*d1, dir.file("d.graft"));
  g::load(*d2, dir.file("d.graft"));
  CHECK(same(*d1, *d2));
  CHECK_THROWS_WITH_AS(g::load(*a, dir.file("d.graft")), doctest::Contains("8-byte scalars"),
                       g::io_error);
}

TEST_CASE("a file of another architecture is refused and the model is unchanged") {
  temp_dir dir;
  using other = g::model<
      g::stack<g::input<1, 28, 28>, g::flatten, g::dense<200>, g::relu, g::dense<128>, g::relu>,
      g::classifier<10>>;
  auto o = g::make_model<other>(g::seed{1});
  g::save(*o, dir.file("other.graft"));
  auto a = g::make_model<mlp_net>(g::seed{1});
  const auto copy = std::make_unique<mlp_net>(*a);
  CHECK_THROWS_WITH_AS(
      g::load(*a, dir.file("other.graft")),
      doctest::Contains(
          "architecture differs.\n  file:  input<1x28x28> flatten:784 dense<200>:200"),
      g::io_error);
  CHECK(same(*a, *copy));
  // another head: load refuses, load_backbone takes the backbone only
  using five = g::model<mlp, g::classifier<5>>;
  auto f = g::make_model<five>(g::seed{9});
  g::save(*f, dir.file("five.graft"));
  CHECK_THROWS_WITH_AS(g::load(*a, dir.file("five.graft")),
                       doctest::Contains("classifier<5>:128->5"), g::io_error);
  CHECK(same(*a, *copy));
  g::load_backbone(*a, dir.file("five.graft"));
  auto a_as_five = g::attach<g::classifier<5>>(std::make_unique<mlp_net>(*a));
  CHECK(graft_test::bitwise_equal(*a_as_five, *f, false));
  CHECK(a->head().weight == copy->head().weight);
  CHECK_THROWS_WITH_AS(g::load_backbone(*a, dir.file("other.graft")),
                       doctest::Contains("backbone differs"), g::io_error);
}

TEST_CASE("truncated, corrupted, padded and foreign files are refused; the model is unchanged") {
  temp_dir dir;
  auto a = g::make_model<mlp_net>(g::seed{1});
  g::save(*a, dir.file("a.graft"));
  const auto good = slurp(dir.file("a.graft"));
  auto b = g::make_model<mlp_net>(g::seed{2});
  const auto copy = std::make_unique<mlp_net>(*b);
  const std::string p = dir.file("bad.graft");

  auto refused = [&](const std::vector<char>& bytes, const std::string& text) {
    spit(p, bytes);
    CHECK_THROWS_WITH_AS(g::load(*b, p), doctest::Contains(text.c_str()), g::io_error);
    CHECK(same(*b, *copy));
  };
  refused(std::vector<char>(good.begin(), good.begin() + 1000), "the file is truncated");
  refused(std::vector<char>(good.begin(), good.begin() + 5),
          "end of file after 5 bytes (truncated)");
  refused({}, "end of file after 0 bytes");
  auto flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  refused(flipped, "the file is corrupted");
  auto padded = good;
  padded.push_back(0);
  refused(padded, "1 trailing bytes");
  auto foreign = good;
  foreign[0] = 'X';
  refused(foreign, "byte 0: expected the magic \"GRAFTWTS\"");
  auto version = good;
  version[8] = 9;
  refused(version, "byte 8: expected format version 1, found version 9");
  CHECK_THROWS_WITH_AS(g::load(*b, dir.file("missing.graft")),
                       doctest::Contains("cannot open weight file"), g::io_error);
}

TEST_CASE("a failed save leaves the previous file intact") {
  temp_dir dir;
  auto a = g::make_model<mlp_net>(g::seed{1});
  g::save(*a, dir.file("a.graft"));
  const auto before = slurp(dir.file("a.graft"));
  // the temporary file cannot be created: a directory is in its way
  fs::create_directory(dir.file("a.graft.tmp"));
  auto b = g::make_model<mlp_net>(g::seed{2});
  CHECK_THROWS_AS(g::save(*b, dir.file("a.graft")), g::io_error);
  CHECK(slurp(dir.file("a.graft")) == before);
  CHECK_THROWS_WITH_AS(g::save(*b, dir.file("no/such/dir/x.graft")),
                       doctest::Contains("cannot write"), g::io_error);
}

namespace {
/// Rewrites a saved file's two scalar counts (keeping the descriptions and fingerprints), resizes
/// its payload to match the new counts and recomputes the checksum: a file that passes every
/// check of the format itself, so that only the comparison with the model can refuse it.
std::vector<char> with_counts(const std::vector<char>& good, std::uint64_t backbone,
                              std::uint64_t head, std::size_t scalar = 4) {
  auto u32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i)
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(good[at + i])) << (8 * i);
    return v;
  };
  std::size_t at = 32;
  at += 4 + u32(at);
  at += 4 + u32(at);
  std::vector<char> out(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(at));
  for (std::uint64_t v : {backbone, head})
    for (std::size_t i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  const auto payload = static_cast<std::size_t>((backbone + head) * scalar);
  for (std::size_t i = 0; i < payload; ++i)
    out.push_back(at + 16 + i < good.size() - 8 ? good[at + 16 + i] : char{0x11});
  const auto sum = g::detail::fnv1a(reinterpret_cast<const unsigned char*>(out.data()), out.size());
  for (std::size_t i = 0; i < 8; ++i) out.push_back(static_cast<char>(sum >> (8 * i)));
  return out;
}
}  // namespace

TEST_CASE("regression: scalar counts that differ from the model's are refused (no overread)") {
  // A file with the model's descriptions, counts of 0 and an empty payload used to pass every
  // check and make load() read 235,146 floats past the end of the buffer.
  temp_dir dir;
  auto a = g::make_model<mlp_net>(g::seed{1});
  g::save(*a, dir.file("a.graft"));
  const auto good = slurp(dir.file("a.graft"));
  constexpr std::uint64_t backbone = mlp::parameter_count, head = 1290;
  CHECK(with_counts(good, backbone, head) == good);  // the crafting itself is faithful
  auto b = g::make_model<mlp_net>(g::seed{2});
  const auto copy = std::make_unique<mlp_net>(*b);
  const std::string p = dir.file("counts.graft");
  auto refused = [&](std::uint64_t bc, std::uint64_t hc, const std::string& text,
                     bool backbone_only) {
    spit(p, with_counts(good, bc, hc));
    if (backbone_only)
      CHECK_THROWS_WITH_AS(g::load_backbone(*b, p), doctest::Contains(text.c_str()), g::io_error);
    else
      CHECK_THROWS_WITH_AS(g::load(*b, p), doctest::Contains(text.c_str()), g::io_error);
    CHECK(same(*b, *copy));
  };
  refused(0, 0, "the file holds 0 backbone and 0 head scalars, the model needs 233856 and 1290",
          false);
  refused(0, 0, "the file holds 0 backbone scalars, the model's backbone needs 233856", true);
  refused(backbone + 7, head, "holds 233863 backbone and 1290 head scalars", false);
  refused(backbone, head + 1, "holds 233856 backbone and 1291 head scalars", false);
  refused(backbone - 1, head + 1, "233855 backbone", true);
  // the head count is not the backbone's business: a file with another head loads its backbone
  spit(p, with_counts(good, backbone, 0));
  g::load_backbone(*b, p);
  CHECK(graft_test::bitwise_equal(*b, *a, false));
}

TEST_CASE("regression: a directory given as a weight file is refused with the reason") {
  temp_dir dir;
  auto a = g::make_model<mlp_net>(g::seed{1});
  CHECK_THROWS_WITH_AS(g::load(*a, dir.path.string()), doctest::Contains("Is a directory"),
                       g::io_error);
}
