// Writes the seed corpora of the fuzz targets (tools/fuzz.sh --seeds runs it):
//   <dir>/idx_raw/    small valid raw IDX files
//   <dir>/idx_gzip/   the same gzip-compressed (one member, and two concatenated members)
//   <dir>/weights/    a selector byte, then a weight file (graft::save) of harness_model.hpp
//   <dir>/npy/        small valid .npy files of every dtype graft reads (format 1.0 and 2.0)
//   <dir>/csv/        an options byte and a position byte (see fuzz_csv.cpp), then a CSV file
//   <dir>/safetensors/ a selector byte (see fuzz_safetensors.cpp), then a safetensors file of
//                     harness_model.hpp's model (graft's names, renamed, other dtypes, other head)
//   <dir>/text/       a selector byte (see fuzz_text.cpp), then lines of UTF-8 or Latin-1 text
// Usage: make_seeds <dir>   (tests/fuzz/corpus in the repository)
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "graft/data/npy.hpp"
#include "graft/io/safetensors.hpp"
#include "harness_model.hpp"

namespace {
namespace fs = std::filesystem;
using bytes = std::vector<unsigned char>;

bytes idx_file(std::uint8_t type, const std::vector<std::uint32_t>& dims, const bytes& payload) {
  bytes b = {0, 0, type, static_cast<unsigned char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int i = 3; i >= 0; --i) b.push_back(static_cast<unsigned char>(d >> (8 * i)));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

/// One gzip member (no file name, time 0: the same bytes on every run).
bytes gzip(const bytes& in) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  bytes out(deflateBound(&z, static_cast<uLong>(in.size())) + 32);
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate failed");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

void write(const fs::path& path, const bytes& b) {
  fs::create_directories(path.parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) throw std::runtime_error("cannot write " + path.string());
  std::printf("%s (%zu bytes)\n", path.string().c_str(), b.size());
}

bytes read(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

/// selector byte, then the weight file graft::save writes for a model of type M.
template <class M> bytes weight_seed(unsigned char selector, std::uint64_t seed) {
  const fs::path tmp = fs::temp_directory_path() / "graft_make_seeds.graft";
  auto net = graft::make_model<M>(graft::seed{seed});
  graft::save(*net, tmp.string());
  bytes b = {selector};
  const bytes file = read(tmp);
  fs::remove(tmp);
  b.insert(b.end(), file.begin(), file.end());
  return b;
}

/// A .npy file as write_npy writes it (np.save's header), of any dtype graft reads: the preamble,
/// then data as given (little-endian); major 2 rewrites the preamble as format 2.0.
bytes npy(graft::data::npy_dtype type, const std::vector<std::size_t>& shape, const bytes& data,
          int major = 1) {
  const std::string pre = graft::data::detail::npy_preamble(type, shape);
  bytes b(pre.begin(), pre.end());
  if (major == 2) {  // a 4-byte header length: two more bytes, header_len two less
    const std::size_t len = (b[8] | (b[9] << 8)) - 2;
    b[6] = 2;
    b.erase(b.begin() + 8, b.begin() + 10);
    b.insert(b.begin() + 8,
             {static_cast<unsigned char>(len & 0xff), static_cast<unsigned char>(len >> 8), 0, 0});
    b.erase(b.end() - 3, b.end() - 1);  // two padding spaces fewer, the newline kept
  }
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

/// The bytes of values (little-endian: the seeds are made on little-endian machines).
template <class T> bytes le(std::initializer_list<T> values) {
  bytes b;
  for (T v : values) {
    const auto* p = reinterpret_cast<const unsigned char*>(&v);
    b.insert(b.end(), p, p + sizeof v);
  }
  return b;
}

/// An options byte, a position byte, then the CSV text.
bytes csv(unsigned char options, const std::string& text) {
  bytes b = {options, 5};
  b.insert(b.end(), text.begin(), text.end());
  return b;
}

/// A selector byte, then the text (fuzz_text.cpp).
bytes text(unsigned char selector, const std::string& s) {
  bytes b = {selector};
  b.insert(b.end(), s.begin(), s.end());
  return b;
}

/// A weight seed whose scalar counts are moved by one from the backbone to the head (the same
/// total, so only the count check refuses it), with its checksum made valid again.
bytes shift_counts(bytes seed) {
  const unsigned char* f = seed.data() + 1;  // after the selector
  std::size_t at = 32;
  for (int i = 0; i < 2; ++i) at += 4 + graft::detail::get_le<std::uint32_t>(f + at);
  auto add = [&](std::size_t pos, std::uint64_t delta) {
    const std::uint64_t v = graft::detail::get_le<std::uint64_t>(f + pos) + delta;
    for (std::size_t i = 0; i < 8; ++i)
      seed[1 + pos + i] = static_cast<unsigned char>(v >> (8 * i));
  };
  add(at, 1);
  add(at + 8, ~std::uint64_t{0});  // - 1
  const std::size_t n = seed.size() - 1;
  const std::uint64_t sum = graft::detail::fnv1a(seed.data() + 1, n - 8);
  for (std::size_t i = 0; i < 8; ++i)
    seed[1 + n - 8 + i] = static_cast<unsigned char>(sum >> (8 * i));
  return seed;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <dir>\n");
    return 2;
  }
  const fs::path dir = argv[1];
  const bytes ubyte = idx_file(0x08, {2, 3}, {0, 1, 127, 128, 200, 255});
  const bytes int16 = idx_file(0x0B, {3}, {0x80, 0x00, 0xFF, 0xFF, 0x01, 0x02});
  const bytes float64 = idx_file(0x0E, {1, 2},
                                 {0x3F, 0xF8, 0, 0, 0, 0, 0, 0,  // 1.5
                                  0xC0, 0x45, 0, 0, 0, 0, 0, 0});
  const bytes labels = idx_file(0x08, {10}, {5, 0, 4, 1, 9, 2, 1, 3, 1, 4});
  write(dir / "idx_raw" / "ubyte_2x3.idx", ubyte);
  write(dir / "idx_raw" / "int16_3.idx", int16);
  write(dir / "idx_raw" / "float64_1x2.idx", float64);
  write(dir / "idx_raw" / "labels_10.idx", labels);

  write(dir / "idx_gzip" / "ubyte_2x3.idx.gz", gzip(ubyte));
  write(dir / "idx_gzip" / "float64_1x2.idx.gz", gzip(float64));
  bytes two = gzip(bytes(labels.begin(), labels.begin() + 7));
  const bytes rest = gzip(bytes(labels.begin() + 7, labels.end()));
  two.insert(two.end(), rest.begin(), rest.end());
  write(dir / "idx_gzip" / "labels_10_two_members.idx.gz", two);

  using graft::data::npy_dtype;
  write(dir / "npy" / "float32_2x3.npy",
        npy(npy_dtype::float32, {2, 3}, le<float>({0, 1.5f, -2, 3, 4e9f, 5})));
  write(dir / "npy" / "float64_2x2.npy",
        npy(npy_dtype::float64, {2, 2}, le<double>({0.5, -1, 1e300, 2})));
  write(dir / "npy" / "uint8_6.npy", npy(npy_dtype::uint8, {6}, {0, 1, 127, 128, 200, 255}));
  write(dir / "npy" / "int32_labels_4.npy",
        npy(npy_dtype::int32, {4}, le<std::int32_t>({2, 0, 1, 2})));
  write(dir / "npy" / "int64_3x1.npy",
        npy(npy_dtype::int64, {3, 1}, le<std::int64_t>({-1, 0, 1LL << 40})));
  write(dir / "npy" / "float32_v2_3.npy", npy(npy_dtype::float32, {3}, le<float>({1, 2, 3}), 2));
  write(dir / "npy" / "float64_scalar.npy", npy(npy_dtype::float64, {}, le<double>({2.5})));
  write(dir / "npy" / "float32_empty_0x3.npy", npy(npy_dtype::float32, {0, 3}, {}));

  // options byte: 1 header, 2-4 delimiter, 8 regression, 16-48 column, 64 classes 3, 128 by name
  write(dir / "csv" / "header.csv", csv(0x01, "a,b,label\n1.5,2,0\n3,-4e2,1\n"));
  write(dir / "csv" / "quoted_crlf.csv",
        csv(0x01, "\"x, cm\",\"y\ny \"\"q\"\"\",l\r\n\"1\",2,0\r\n3, 4 ,1\r\n"));
  write(dir / "csv" / "semicolon.csv", csv(0x03, "a;b;l\n1.5;2;0\n-1;+2;1\n"));
  write(dir / "csv" / "tab.csv", csv(0x05, "a\tb\tl\n1\t2\t1\n\n3\t4\t0"));
  write(dir / "csv" / "no_header.csv", csv(0x00, "1,2,0\n3,4,1\n"));
  write(dir / "csv" / "regression.csv", csv(0x09, "x,y\n1,2\n3,4.25\n"));
  write(dir / "csv" / "regression_by_name.csv", csv(0x89, "x,y,z\n1,2,3\n4,5,6\n"));
  write(dir / "csv" / "label_by_name.csv", csv(0x81, "l,a,b\n1,2,3\n0,5,6\n"));
  write(dir / "csv" / "classes3_first.csv", csv(0x51, "l,a,b\n2,2,3\n"));
  write(dir / "csv" / "bom_cr.csv", csv(0x01,
                                        "\xEF\xBB\xBF"
                                        "a,l\r1,0\r2,1\r"));
  write(dir / "csv" / "bad_quote.csv", csv(0x01, "a,l\n1,\"0\n"));
  // found by fuzz_csv: two byte order marks cut after the first (position byte 0xc0: cut at 3)
  write(dir / "csv" / "found_two_boms_in_pieces.csv",
        bytes{0x01, 0xc0, 0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF});

  // text: ASCII words; UTF-8 å ä ö (vocabulary from every word, output in chunks of 2); Latin-1
  // (invalid UTF-8); 1-4 byte forms; each refused UTF-8 form; a word longer than L = 3; an empty
  // line
  write(dir / "text" / "ascii_words.txt", text(0x0F, "hus\nabc\nword\n"));
  write(dir / "text" / "nordic_utf8.txt", text(0x3F, "\xC3\xA5sa\n\xC3\xA4rlig\n\xC3\xB6ga\nhus"));
  write(dir / "text" / "nordic_latin1.txt", text(0x4F, "\xC5sa\n\xE4rlig\n\xF6ga"));
  write(dir / "text" / "four_forms.txt",
        text(0xE7, "a\n\xC3\xA5\n\xE2\x82\xAC\n\xF0\x9F\x98\x80z\n\xF4\x8F\xBF\xBF"));
  write(dir / "text" / "bad_forms.txt",
        text(0x07, "\xC0\x80\n\xED\xA0\x80\n\xF4\x90\x80\x80\n\x80\n\xE2\x82"));
  write(dir / "text" / "c1_byte.txt", text(0x0F, "ok\nbad\x85word"));
  write(dir / "text" / "too_long.txt", text(0x02, "ab\nabcdefgh\n"));
  write(dir / "text" / "empty_line.txt", text(0x1F, "ab\n\ncd"));

  using namespace graft_fuzz;
  write(dir / "weights" / "load.bin", weight_seed<net_t>(0, 1));
  write(dir / "weights" / "load_backbone.bin", weight_seed<net_t>(1, 2));
  write(dir / "weights" / "load_backbone_other_head.bin", weight_seed<other_head_t>(1, 3));
  write(dir / "weights" / "load_other_backbone.bin", weight_seed<other_backbone_t>(0, 4));
  write(dir / "weights" / "load_as_is.bin", weight_seed<net_t>(2, 5));
  write(dir / "weights" / "load_double.bin", weight_seed<double_net_t>(0, 6));
  write(dir / "weights" / "load_counts_shifted.bin", shift_counts(weight_seed<net_t>(0, 7)));
  write(dir / "weights" / "load_backbone_counts_shifted.bin",
        shift_counts(weight_seed<net_t>(1, 8)));

  // safetensors: graft's export; its backbone into the 3-way model; renamed for the map (bit 2);
  // an extra tensor (allow_unused, bit 1); F16 and BF16 values
  auto st_seed = [](unsigned selector, std::vector<graft::st_array> arrays) {
    bytes b{static_cast<unsigned char>(selector)};
    const bytes file = graft::detail::safetensors_bytes(arrays, {{"format", "pt"}});
    b.insert(b.end(), file.begin(), file.end());
    return b;
  };
  const auto net = graft::make_model<net_t>(graft::seed{11});
  const auto arrays = graft::detail::torch_arrays(*net, "");
  write(dir / "safetensors" / "export.bin", st_seed(0, arrays));
  write(dir / "safetensors" / "backbone_other_head.bin",
        st_seed(
            1, graft::detail::torch_arrays(*graft::make_model<other_head_t>(graft::seed{12}), "")));
  auto renamed = arrays;
  for (auto& a : renamed)
    if (a.name == "1.weight") a.name = "w";
  write(dir / "safetensors" / "map.bin", st_seed(4, renamed));
  auto extra = arrays;
  extra.push_back({"extra", {2}, {1.0, 2.0}, graft::st_dtype::F32});
  write(dir / "safetensors" / "unused.bin", st_seed(2, extra));
  write(dir / "safetensors" / "double.bin",
        st_seed(
            0, graft::detail::torch_arrays(*graft::make_model<double_net_t>(graft::seed{13}), "")));
  // one F16 and one BF16 tensor, written by hand into the export's header and data
  {
    std::string header =
        "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]}}";
    header.append((8 - header.size() % 8) % 8, ' ');
    bytes b{2};
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<unsigned char>(header.size() >> (8 * i)));
    b.insert(b.end(), header.begin(), header.end());
    for (unsigned char c : {0x00, 0x3c, 0x01, 0x80, 0x80, 0x3f, 0xc0, 0xff}) b.push_back(c);
    write(dir / "safetensors" / "f16_bf16.bin", b);
  }
  return 0;
}
