// safetensors: graft's PyTorch names and layouts, bitwise round trips (float and double), every
// dtype converted exactly, the pairing rules (by name, model order, the explicit map), backbone
// import, and the refusal of every malformed file with a message naming the file and the byte or
// the tensor, the model left unchanged.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <graft/graft.hpp>
#include <graft/io/safetensors.hpp>

#include "support/backbones.hpp"
#include "support/compare.hpp"
#include "support/temp_dir.hpp"

namespace g = graft;
using graft_test::temp_dir;

namespace {
using tiny = g::stack<g::input<2, 3, 3>, g::conv2d<2, 2, g::no_bias>, g::batch_norm, g::relu,
                      g::flatten, g::dense<3>, g::relu>;
using tiny_net = g::model<tiny, g::classifier<2>>;  // layers 0..6: head is 6
using lenet_net = g::model<backbones::lenet, g::classifier<10>>;
using resnet_net = g::model<backbones::resnet, g::classifier<10>>;

template <class M> std::vector<typename M::scalar> values_of(const M& net) {
  std::vector<typename M::scalar> v;
  net.for_each_saved(
      [&](std::size_t, const auto* d, std::size_t n) { v.insert(v.end(), d, d + n); });
  return v;
}
template <class M> bool same_bits(const std::vector<M>& a, const std::vector<M>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(M)) == 0;
}

void put_u64(std::vector<unsigned char>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
/// A safetensors file written by hand: header text as given (padded to 8), then data.
std::vector<unsigned char> file_of(std::string header, const std::vector<unsigned char>& data,
                                   bool pad = true) {
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  std::vector<unsigned char> out;
  put_u64(out, header.size());
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}
void write(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
std::vector<unsigned char> read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}
std::vector<unsigned char> f32_bytes(const std::vector<float>& v) {
  std::vector<unsigned char> out;
  for (float x : v) {
    const auto b = std::bit_cast<std::uint32_t>(x);
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<unsigned char>(b >> (8 * i)));
  }
  return out;
}
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  std::size_t begin, std::size_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

/// Imports bytes written to a file and returns the error message ("" when it was accepted),
/// checking that a refused import left the model unchanged.
template <class M> std::string refusal(const std::vector<unsigned char>& bytes,
                                       const g::safetensors_options& opt = {},
                                       bool backbone = false) {
  temp_dir dir;
  const std::string path = dir.file("bad.safetensors");
  write(path, bytes);
  auto net = g::make_model<M>(g::seed{7});
  const auto before = values_of(*net);
  try {
    if (backbone)
      g::import_backbone_safetensors(*net, path, opt);
    else
      g::import_safetensors(*net, path, opt);
  } catch (const g::io_error& e) {
    CHECK(same_bits(before, values_of(*net)));
    const std::string msg = e.what();
    CHECK(msg.find(path) != std::string::npos);  // every message names the file
    return msg;
  }
  return "";
}
bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("graft names its tensors as the equivalent PyTorch nn.Sequential's state_dict") {
  const auto names = g::safetensors_names<tiny_net>();
  const std::vector<std::string> want = {"0.weight",       "1.weight",      "1.bias",
                                         "1.running_mean", "1.running_var", "4.weight",
                                         "4.bias",         "6.weight",      "6.bias"};
  CHECK(names == want);
  const auto r = g::safetensors_names<resnet_net>();
  // the strided block (layer 6) has a projection with batch norm: body 0..4, shortcut 0..1
  CHECK(std::find(r.begin(), r.end(), "6.body.4.running_var") != r.end());
  CHECK(std::find(r.begin(), r.end(), "6.shortcut.0.weight") != r.end());
  CHECK(std::find(r.begin(), r.end(), "6.shortcut.1.running_mean") != r.end());
  CHECK(std::find(r.begin(), r.end(), "4.shortcut.0.weight") == r.end());  // identity shortcut
  CHECK(r.back() == "11.bias");
  CHECK(g::safetensors_names<resnet_net>(false).back() == "8.shortcut.1.running_var");
}

TEST_CASE("export then import is bitwise, float and double, with batch norm and residuals") {
  temp_dir dir;
  auto check = [&](auto tag) {
    using M = decltype(tag);
    auto a = g::make_model<M>(g::seed{1});
    auto b = g::make_model<M>(g::seed{2});
    REQUIRE(!same_bits(values_of(*a), values_of(*b)));
    g::export_safetensors(*a, dir.file("a.safetensors"));
    const auto rep = g::import_safetensors(*b, dir.file("a.safetensors"));
    CHECK(rep.matched_by == g::safetensors_report::rule::by_name);
    CHECK(rep.unused.empty());
    CHECK(same_bits(values_of(*a), values_of(*b)));
  };
  check(tiny_net{});
  check(g::model<tiny, g::classifier<2>, double>{});
  check(lenet_net{});
  check(resnet_net{});
}

TEST_CASE("the exported file follows the format: padded header, PyTorch shapes, [out, in] dense") {
  temp_dir dir;
  auto net = g::make_model<tiny_net>(g::seed{3});
  g::export_safetensors(*net, dir.file("t.safetensors"), "model.");
  const auto bytes = read(dir.file("t.safetensors"));
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= std::uint64_t{bytes[static_cast<std::size_t>(i)]} << (8 * i);
  CHECK(n % 8 == 0);
  const auto f = g::read_safetensors(dir.file("t.safetensors"));
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.metadata.at("graft_description") == tiny_net::description());
  const auto* w = f.find("model.4.weight");
  REQUIRE(w != nullptr);
  CHECK(w->shape == std::vector<std::size_t>{3, 8});  // [out, in]
  const auto wv = f.values("model.4.weight");
  const auto& dense = net->layer<4>();
  for (std::size_t o = 0; o < 3; ++o)
    for (std::size_t i = 0; i < 8; ++i) CHECK(wv[o * 8 + i] == dense.weight(i, o));
  CHECK(f.find("model.0.weight")->shape == std::vector<std::size_t>{2, 2, 2, 2});  // OIHW
  const auto* nbt = f.find("model.1.num_batches_tracked");
  REQUIRE(nbt != nullptr);
  CHECK(nbt->dtype_name == "I64");
  CHECK(nbt->shape.empty());
  for (const auto& t : f.tensors) CHECK(t.begin % g::detail::st_size(t.dtype) == 0);  // aligned
  // and read back with the prefix
  auto other = g::make_model<tiny_net>(g::seed{4});
  g::import_safetensors(*other, dir.file("t.safetensors"), {.prefix = "model."});
  CHECK(same_bits(values_of(*net), values_of(*other)));
}

TEST_CASE("F16, BF16, F32 and F64 are converted exactly") {
  using one = g::model<g::stack<g::input<4>, g::dense<1>>, g::regressor<1>, double>;
  // F16: 1, -2, 65504 (largest), 2^-24 (smallest subnormal); bias BF16 -3.140625
  const std::vector<unsigned char> data = {0x00, 0x3c, 0x00, 0xc0, 0xff,
                                           0x7b, 0x01, 0x00, 0x49, 0xc0};
  // dense<1> weight [1, 4], bias [1]; head dense<1> weight [1, 1] (F64 2.5), bias [1] (F32 0.5)
  std::vector<unsigned char> d = data;
  const auto f64 = std::bit_cast<std::uint64_t>(2.5);
  d.resize(16, 0);  // pad to 16 for the F64's alignment (gaps are not allowed: a U8 fills them)
  for (int i = 0; i < 8; ++i) d.push_back(static_cast<unsigned char>(f64 >> (8 * i)));
  const auto half = f32_bytes({0.5f});
  d.insert(d.end(), half.begin(), half.end());
  const std::string h =
      "{" + entry("0.weight", "F16", "[1,4]", 0, 8) + "," + entry("0.bias", "BF16", "[1]", 8, 10) +
      "," + entry("pad", "U8", "[6]", 10, 16) + "," + entry("1.weight", "F64", "[1,1]", 16, 24) +
      "," + entry("1.bias", "F32", "[1]", 24, 28) + "}";
  temp_dir dir;
  write(dir.file("d.safetensors"), file_of(h, d));
  auto net = g::make_model<one>(g::seed{1});
  const auto rep = g::import_safetensors(*net, dir.file("d.safetensors"), {.allow_unused = true});
  CHECK(rep.unused == std::vector<std::string>{"pad"});
  const auto& l = net->layer<0>();
  CHECK(l.weight[0] == 1.0);
  CHECK(l.weight[1] == -2.0);
  CHECK(l.weight[2] == 65504.0);
  CHECK(l.weight[3] == std::ldexp(1.0, -24));
  CHECK(l.bias[0] == -3.140625);
  CHECK(net->layer<1>().weight[0] == 2.5);
  CHECK(net->layer<1>().bias[0] == 0.5);
  // without allow_unused the extra tensor is refused, naming it
  const std::string msg = refusal<one>(file_of(h, d));
  CHECK(has(msg, "'pad'"));
  CHECK(has(msg, "used"));
}

TEST_CASE("model order pairs a named-module file; the map overrides; shapes are checked") {
  temp_dir dir;
  auto src = g::make_model<lenet_net>(g::seed{5});
  const auto names = g::safetensors_names<lenet_net>();
  // rename graft's tensors as a PyTorch LeNet class would: conv1 conv2 fc1 fc2 fc3
  const std::vector<std::string> torch = {
      "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight",
      "fc1.bias",     "fc2.weight", "fc2.bias",     "fc3.weight", "fc3.bias"};
  REQUIRE(names.size() == torch.size());
  g::export_safetensors(*src, dir.file("canon.safetensors"));
  const auto f = g::read_safetensors(dir.file("canon.safetensors"));
  // rewrite the header with the torch names (same data, same offsets)
  std::string h = "{";
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto* t = f.find(names[i]);
    std::string shape = "[";
    for (std::size_t k = 0; k < t->shape.size(); ++k)
      shape += (k ? "," : "") + std::to_string(t->shape[k]);
    h += (i ? "," : "") + entry(torch[i], "F32", shape + "]", t->begin, t->end);
  }
  h += "}";
  const std::vector<unsigned char> data(f.bytes.begin() + static_cast<std::ptrdiff_t>(f.data_start),
                                        f.bytes.end());
  write(dir.file("named.safetensors"), file_of(h, data));
  auto dst = g::make_model<lenet_net>(g::seed{6});
  const auto rep = g::import_safetensors(*dst, dir.file("named.safetensors"));
  CHECK(rep.matched_by == g::safetensors_report::rule::model_order);
  CHECK(rep.pairs.front() == std::pair<std::string, std::string>{"0.weight", "conv1.weight"});
  CHECK(same_bits(values_of(*src), values_of(*dst)));

  // a file whose order does not follow the model (bn before conv) is refused on the shapes
  const std::string bn_first =
      "{" + entry("bn1.weight", "F32", "[2]", 0, 8) + "," + entry("bn1.bias", "F32", "[2]", 8, 16) +
      "," + entry("bn1.running_mean", "F32", "[2]", 16, 24) + "," +
      entry("bn1.running_var", "F32", "[2]", 24, 32) + "," +
      entry("conv1.weight", "F32", "[2,2,2,2]", 32, 96) + "," +
      entry("fc.weight", "F32", "[3,8]", 96, 192) + "," + entry("fc.bias", "F32", "[3]", 192, 204) +
      "," + entry("head.weight", "F32", "[2,3]", 204, 228) + "," +
      entry("head.bias", "F32", "[2]", 228, 236) + "}";
  const auto bytes = file_of(bn_first, f32_bytes(std::vector<float>(59, 0.25f)));
  const std::string msg = refusal<tiny_net>(bytes);
  CHECK(has(msg, "'bn1.weight'"));
  CHECK(has(msg, "expected shape [2, 2, 2, 2]"));
  CHECK(has(msg, "safetensors_options::names"));
  // ... and accepted with the map
  g::safetensors_options opt;
  opt.names = {{"0.weight", "conv1.weight"},
               {"1.weight", "bn1.weight"},
               {"1.bias", "bn1.bias"},
               {"1.running_mean", "bn1.running_mean"},
               {"1.running_var", "bn1.running_var"}};
  CHECK(refusal<tiny_net>(bytes, opt).empty());
  // a map naming what the model does not have, or the file does not hold
  CHECK(has(refusal<tiny_net>(bytes, {.names = {{"9.weight", "fc.weight"}}}),
            "'9.weight', which is not a tensor of the model"));
  CHECK(has(refusal<tiny_net>(bytes, {.names = {{"0.weight", "conv9.weight"}}}),
            "tensor 'conv9.weight' (named in the map for '0.weight'): not in the file"));
}

TEST_CASE("import_backbone_safetensors leaves the head and reports the file's head unused") {
  temp_dir dir;
  auto src = g::make_model<g::model<tiny, g::classifier<5>>>(g::seed{8});
  g::export_safetensors(*src, dir.file("s.safetensors"));
  auto dst = g::make_model<tiny_net>(g::seed{9});
  const auto head_before =
      std::vector<float>(dst->layer<6>().weight.data(), dst->layer<6>().weight.data() + 6);
  const auto rep = g::import_backbone_safetensors(*dst, dir.file("s.safetensors"));
  CHECK(rep.unused == std::vector<std::string>{"6.weight", "6.bias"});
  CHECK(std::equal(head_before.begin(), head_before.end(), dst->layer<6>().weight.data()));
  CHECK(dst->layer<4>().weight[5] == src->layer<4>().weight[5]);
  CHECK(dst->layer<1>().running_var[1] == src->layer<1>().running_var[1]);
  // the whole-model import refuses the 5-way head for a 2-way model
  const std::string msg = refusal<tiny_net>(read(dir.file("s.safetensors")));
  CHECK(has(msg, "tensor '6.weight'"));
  CHECK(has(msg, "expected shape [2, 3], found [5, 3]"));
}

TEST_CASE("malformed files are refused, naming the file and the byte or the tensor") {
  // a valid file of tiny_net to break
  temp_dir dir;
  auto net = g::make_model<tiny_net>(g::seed{1});
  g::export_safetensors(*net, dir.file("ok.safetensors"));
  const auto ok = read(dir.file("ok.safetensors"));
  CHECK(refusal<tiny_net>(ok).empty());

  const auto w = f32_bytes({1, 2, 3});
  struct bad_case {
    const char* what;
    std::vector<unsigned char> bytes;
    const char* expect;
  };
  const bad_case cases[] = {
      {"short", {1, 2, 3}, "byte 0: expected an 8-byte header length"},
      {"empty header", file_of("", {}, false), "byte 8: expected a JSON object"},
      {"length past the file",
       [&] {
         auto b = ok;
         b[1] = 0x7f;
         return b;
       }(),
       "(not a safetensors file, or truncated)"},
      {"bad json", file_of("{\"a\":[1,2,}", {}), "expected valid JSON in the header"},
      {"number overflow",  // found by fuzz_safetensors: nlohmann's out_of_range escaped
       file_of("{\"x\":{\"dtype\":\"F32\",\"shape\":[1e999],\"data_offsets\":[0,4]}}",
               f32_bytes({1})),
       "expected valid JSON in the header, found an unreadable value"},
      {"not an object", file_of("[1]     ", {}), "byte 8: expected a JSON object"},
      {"duplicate",
       file_of("{" + entry("x", "F32", "[1]", 0, 4) + "," + entry("x", "F32", "[1]", 4, 8) + "}",
               f32_bytes({1, 2})),
       "tensor 'x': expected one entry per name"},
      {"dtype", file_of("{" + entry("x", "F17", "[3]", 0, 12) + "}", w),
       "tensor 'x': expected a dtype among"},
      {"missing field", file_of("{\"x\":{\"dtype\":\"F32\",\"shape\":[3]}}", w),
       "tensor 'x': expected the fields"},
      {"negative extent", file_of("{" + entry("x", "F32", "[-3]", 0, 12) + "}", w),
       "non-negative integer extents"},
      {"offsets past data", file_of("{" + entry("x", "F32", "[3]", 0, 16) + "}", w),
       "<= 12 (the data part's size)"},
      {"size mismatch", file_of("{" + entry("x", "F32", "[2]", 0, 12) + "}", w),
       "expected 8 bytes (2 x F32 of shape [2])"},
      {"overlap",
       file_of("{" + entry("x", "F32", "[2]", 0, 8) + "," + entry("y", "F32", "[2]", 4, 12) + "}",
               w),
       "tensor 'y': expected bytes of its own, found bytes [4, 12) overlapping tensor 'x'"},
      {"gap",
       file_of("{" + entry("x", "F32", "[1]", 0, 4) + "," + entry("y", "F32", "[1]", 8, 12) + "}",
               w),
       "tensor 'y': expected its bytes to start at 4"},
      {"trailing", file_of("{" + entry("x", "F32", "[2]", 0, 8) + "}", w),
       "4 bytes no tensor refers to"},
      {"bad metadata", file_of("{\"__metadata__\":{\"a\":1}}", {}),
       "tensor '__metadata__': expected string values"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const std::string msg = refusal<tiny_net>(c.bytes);
    CAPTURE(msg);
    CHECK(has(msg, c.expect));
  }
}

TEST_CASE("wrong dtypes, shapes, missing tensors and non-finite values are refused by name") {
  temp_dir dir;
  auto net = g::make_model<tiny_net>(g::seed{1});
  g::export_safetensors(*net, dir.file("ok.safetensors"));
  const auto f = g::read_safetensors(dir.file("ok.safetensors"));
  // rebuild the file with one tensor changed
  auto rebuilt = [&](const std::string& name, const std::string& dtype, const std::string& shape,
                     std::vector<unsigned char> replacement, bool drop = false) {
    std::string h = "{";
    std::vector<unsigned char> data;
    for (const auto& t : f.tensors) {
      std::vector<unsigned char> bytes(
          f.bytes.begin() + static_cast<std::ptrdiff_t>(f.data_start + t.begin),
          f.bytes.begin() + static_cast<std::ptrdiff_t>(f.data_start + t.end));
      std::string dt = t.dtype_name, sh = g::detail::shape_str(t.shape);
      sh.erase(std::remove(sh.begin(), sh.end(), ' '), sh.end());
      if (t.name == name) {
        if (drop) continue;
        dt = dtype;
        sh = shape;
        bytes = replacement;
      }
      h += (h.size() > 1 ? "," : "") +
           entry(t.name, dt, sh, data.size(), data.size() + bytes.size());
      data.insert(data.end(), bytes.begin(), bytes.end());
    }
    return file_of(h + "}", data);
  };
  std::vector<unsigned char> i32(3 * 8 * 4, 0);
  CHECK(has(refusal<tiny_net>(rebuilt("4.weight", "I32", "[3,8]", i32)),
            "tensor '4.weight' (for graft's '4.weight'): expected a float dtype (F16, BF16, F32 or "
            "F64), found I32"));
  CHECK(
      has(refusal<tiny_net>(rebuilt("4.weight", "F32", "[8,3]", std::vector<unsigned char>(96, 0))),
          "tensor '4.weight' (for graft's '4.weight'): expected shape [3, 8], found [8, 3]"));
  auto nan = f32_bytes(std::vector<float>(24, 0.5f));
  const auto qnan = f32_bytes({std::numeric_limits<float>::quiet_NaN()});
  std::copy(qnan.begin(), qnan.end(), nan.begin() + 4 * 17);
  CHECK(has(refusal<tiny_net>(rebuilt("4.weight", "F32", "[3,8]", nan)),
            "element 17: expected a finite number, found nan"));
  std::vector<unsigned char> big(3 * 8 * 8, 0);
  const auto huge = std::bit_cast<std::uint64_t>(1e300);
  for (int i = 0; i < 8; ++i)
    big[static_cast<std::size_t>(i)] = static_cast<unsigned char>(huge >> (8 * i));
  CHECK(has(refusal<tiny_net>(rebuilt("4.weight", "F64", "[3,8]", big)), "does not fit in float"));
  // a missing tensor: by-name pairing fails, model order runs out of tensors
  CHECK(has(refusal<tiny_net>(rebuilt("6.bias", "", "", {}, true)),
            "the model's tensor '6.bias' ([2]) and those after it find no tensor in the file"));
  // a missing running_var: model order pairs 4.weight's slot wrongly and says so by shape
  const std::string msg = refusal<tiny_net>(rebuilt("1.running_var", "", "", {}, true));
  CAPTURE(msg);
  CHECK(has(msg, "paired in model order"));
}

TEST_CASE("conv1d: PyTorch's [F, C, K] weight goes to graft's [K * C, F], and back") {
  // Before this mapping, conv1d was an unknown layer: a [F, C, K] tensor of the right element
  // count was copied flat, in the wrong layout, without an error.
  using seq = g::model<
      g::stack<g::input<5, 3>, g::conv1d<4, 2, g::pad<1>>, g::relu, g::global_max_pool_time>,
      g::classifier<2>>;
  constexpr std::size_t F = 4, C = 3, K = 2;
  std::vector<double> w(F * C * K), b(F);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<double>(i) * 0.25 - 2.0;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = 0.5 * static_cast<double>(i);
  auto net = g::make_model<seq>(g::seed{1});
  std::vector<g::st_array> arrays = {{"0.weight", {F, C, K}, w, g::st_dtype::F32},
                                     {"0.bias", {F}, b, g::st_dtype::F32}};
  for (const auto& a : g::detail::torch_arrays(*net, ""))
    if (a.name.rfind("3.", 0) == 0) arrays.push_back(a);  // the head as it is
  temp_dir dir;
  g::save_safetensors(dir.file("c.safetensors"), arrays);
  g::import_safetensors(*net, dir.file("c.safetensors"));
  const auto& l = net->layer<0>();
  for (std::size_t f = 0; f < F; ++f)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t k = 0; k < K; ++k)
        CHECK(static_cast<double>(l.weight(k * C + c, f)) == w[(f * C + c) * K + k]);
  g::export_safetensors(*net, dir.file("back.safetensors"));
  CHECK(g::read_safetensors(dir.file("back.safetensors")).values("0.weight") == w);
  // a flat tensor of the same count is refused now
  arrays[0].shape = {F * C * K};
  g::save_safetensors(dir.file("flat.safetensors"), arrays);
  CHECK_THROWS_WITH_AS(g::import_safetensors(*net, dir.file("flat.safetensors")),
                       doctest::Contains("expected shape [4, 3, 2], found [24]"), g::io_error);
}
