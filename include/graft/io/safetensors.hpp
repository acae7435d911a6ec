// safetensors: PyTorch's weights in and out (https://github.com/huggingface/safetensors, format
// of 2023: an 8-byte little-endian header length N, N bytes of JSON, then the tensors' bytes).
//
//   graft::import_safetensors(*net, "lenet.safetensors");            // all layers, head included
//   graft::import_backbone_safetensors(*net, "resnet.safetensors",   // the head stays as it is
//                                      {.names = {{"0.weight", "conv1.weight"}, ...}});
//   graft::export_safetensors(*net, "mine.safetensors");             // torch loads it
//
// Names. graft calls each saved tensor by the name it has in the state_dict of the equivalent
// PyTorch nn.Sequential, one module per graft layer (parameter-free layers count: relu, flatten,
// pooling), the head last:
//   dense<N>, the head       "{i}.weight" [N, K] (graft stores [K, N]: transposed here), "{i}.bias"
//   conv2d<F, K, ...>        "{i}.weight" [F, C, K, K] (OIHW, graft's layout too), "{i}.bias"
//   conv1d<F, K, ...>        "{i}.weight" [F, C, K] (nn.Conv1d; graft stores [K * C, F] for its
//                            position-major sequences: converted here), "{i}.bias"
//   batch_norm               "{i}.weight", "{i}.bias", "{i}.running_mean", "{i}.running_var" [C]
//   embedding<V, D>          "{i}.weight" [V, D] (nn.Embedding; graft's layout too)
//   positional_embedding     "{i}.weight" [L, D] (e.g. an nn.Embedding(L, D) of positions)
//   layer_norm               "{i}.weight", "{i}.bias" [D] (nn.LayerNorm(D))
//   multi_head_attention<H>  "{i}.in_proj_weight" [3D, D], "{i}.in_proj_bias" [3D],
//                            "{i}.out_proj.weight" [D, D], "{i}.out_proj.bias" [D]
//                            (nn.MultiheadAttention; graft stores both weights transposed)
//   residual<...>            "{i}.body.{k}.<name>" for the block's layer k,
//   "{i}.shortcut.{k}.<name>"
//                            for the projection's layer k (a module computing body(x) +
//                            shortcut(x))
//   another layer            "{i}.weight", "{i}.bias", "{i}.param{j}", "{i}.buffer{j}", matched by
//                            element count (any shape), without layout conversion
// `num_batches_tracked` is ignored on import and written as 0 on export (so that torch's strict
// load_state_dict accepts the file).
//
// Which file tensor feeds which graft tensor:
//   1. options.names: an explicit map, graft name -> file name (the rest is matched by 2 or 3);
//   2. by name, when the file holds every remaining graft name (with options.prefix in front);
//   3. else in model order: the remaining file tensors, sorted into module order (names split at
//      '.', numbers compared as numbers, and within a module weight, bias, running_mean,
//      running_var), are taken one by one by the remaining graft tensors in model order.
// Every pair's shape is checked, so a wrong pairing is refused with both names and both shapes.
// Names of models built from named modules (conv1, bn1, ...) sort into another order than their
// forward pass: give the map then (tools/torch_interop.py writes one for a torchvision-like
// ResNet).
//
// Every file is validated before the model is touched: header length within the file, valid JSON
// without duplicate names, known dtypes, shapes and offsets consistent with the dtype, tensors
// covering the data exactly (no overlap, no gap, nothing after), F16 / BF16 / F32 / F64 values
// converted to the model's scalar and finite, every graft tensor found with the right shape, and
// (import_safetensors) every file tensor used. A refusal is an io_error naming the file and the
// byte or the tensor; the model is left unchanged.
//
// Needs nlohmann/json (Debian: nlohmann-json3-dev); not included by graft.hpp.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "graft/io/weights.hpp"
#include "graft/layers/attention.hpp"
#include "graft/layers/batch_norm.hpp"
#include "graft/layers/conv1d.hpp"
#include "graft/layers/conv2d.hpp"
#include "graft/layers/dense.hpp"
#include "graft/layers/embedding.hpp"
#include "graft/layers/layer_norm.hpp"
#include "graft/layers/residual.hpp"

GRAFT_BEGIN_NAMESPACE

/// A safetensors dtype.
enum class st_dtype {
  BOOL,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  I64,
  U64,
  F64
};

/// One tensor of a safetensors file: where its bytes are, and what they are.
struct st_tensor {
  std::string name;
  st_dtype dtype = st_dtype::F32;
  std::string dtype_name;
  std::vector<std::size_t> shape;  ///< empty for a scalar
  std::size_t begin = 0, end = 0;  ///< byte range within the data part
  std::size_t elements() const noexcept {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
  }
};

/// A validated safetensors file in memory.
class safetensors_file {
 public:
  std::string path;                             ///< as given (used in messages)
  std::vector<st_tensor> tensors;               ///< in the order of their bytes
  std::map<std::string, std::string> metadata;  ///< "__metadata__", if any

  const st_tensor* find(const std::string& name) const noexcept {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  /// The tensor's values converted to double (exact for every float dtype, and for integers up to
  /// 2^53). io_error naming the file and the tensor when there is none of that name.
  std::vector<double> values(const std::string& name) const;
  /// Value i of tensor t as double.
  double value(const st_tensor& t, std::size_t i) const noexcept;

  std::vector<unsigned char> bytes;  ///< the whole file
  std::size_t data_start = 0;        ///< offset of the data part in bytes
};

namespace detail {
struct st_dtype_info {
  const char* name;
  st_dtype dtype;
  std::size_t size;
};
inline constexpr st_dtype_info st_dtypes[] = {
    {"BOOL", st_dtype::BOOL, 1},       {"U8", st_dtype::U8, 1},
    {"I8", st_dtype::I8, 1},           {"F8_E5M2", st_dtype::F8_E5M2, 1},
    {"F8_E4M3", st_dtype::F8_E4M3, 1}, {"I16", st_dtype::I16, 2},
    {"U16", st_dtype::U16, 2},         {"F16", st_dtype::F16, 2},
    {"BF16", st_dtype::BF16, 2},       {"I32", st_dtype::I32, 4},
    {"U32", st_dtype::U32, 4},         {"F32", st_dtype::F32, 4},
    {"I64", st_dtype::I64, 8},         {"U64", st_dtype::U64, 8},
    {"F64", st_dtype::F64, 8}};
inline std::size_t st_size(st_dtype d) noexcept {
  for (const auto& i : st_dtypes)
    if (i.dtype == d) return i.size;
  return 0;
}
inline bool st_is_float(st_dtype d) noexcept {
  return d == st_dtype::F16 || d == st_dtype::BF16 || d == st_dtype::F32 || d == st_dtype::F64;
}

/// IEEE binary16 to double, exactly (subnormals, infinities and NaN included).
inline double half_to_double(std::uint16_t h) noexcept {
  const int e = (h >> 10) & 0x1f;
  const int m = h & 0x3ff;
  const double sign = (h & 0x8000) != 0 ? -1.0 : 1.0;
  if (e == 0) return sign * std::ldexp(static_cast<double>(m), -24);
  if (e == 31)
    return m == 0 ? sign * std::numeric_limits<double>::infinity()
                  : std::numeric_limits<double>::quiet_NaN();
  return sign * std::ldexp(static_cast<double>(m | 0x400), e - 25);
}
inline double bf16_to_double(std::uint16_t b) noexcept {
  return static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16));
}

inline double st_value(st_dtype d, const unsigned char* p) noexcept {
  switch (d) {
    case st_dtype::BOOL:
    case st_dtype::U8:
      return p[0];
    case st_dtype::I8:
      return static_cast<std::int8_t>(p[0]);
    case st_dtype::I16:
      return static_cast<std::int16_t>(get_le<std::uint16_t>(p));
    case st_dtype::U16:
      return get_le<std::uint16_t>(p);
    case st_dtype::F16:
      return half_to_double(get_le<std::uint16_t>(p));
    case st_dtype::BF16:
      return bf16_to_double(get_le<std::uint16_t>(p));
    case st_dtype::I32:
      return static_cast<std::int32_t>(get_le<std::uint32_t>(p));
    case st_dtype::U32:
      return get_le<std::uint32_t>(p);
    case st_dtype::F32:
      return static_cast<double>(std::bit_cast<float>(get_le<std::uint32_t>(p)));
    case st_dtype::I64:
      return static_cast<double>(static_cast<std::int64_t>(get_le<std::uint64_t>(p)));
    case st_dtype::U64:
      return static_cast<double>(get_le<std::uint64_t>(p));
    case st_dtype::F64:
      return std::bit_cast<double>(get_le<std::uint64_t>(p));
    default:
      return std::numeric_limits<double>::quiet_NaN();  // 8-bit floats: not converted
  }
}

inline std::string shape_str(const std::vector<std::size_t>& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

/// Parses and validates a safetensors file held in bytes; name is used in messages. The entry
/// point of the fuzz target.
inline safetensors_file parse_safetensors(const std::string& name,
                                          std::vector<unsigned char> bytes) {
  using json = nlohmann::json;
  auto at = [&](std::size_t offset, const std::string& expected, const std::string& found) {
    return io_error("graft: " + name + ": byte " + std::to_string(offset) + ": expected " +
                    expected + ", found " + found);
  };
  auto bad = [&](const std::string& tensor, const std::string& expected, const std::string& found) {
    return io_error("graft: " + name + ": tensor '" + tensor + "': expected " + expected +
                    ", found " + found);
  };
  const std::size_t n = bytes.size();
  if (n < 8)
    throw at(0, "an 8-byte header length",
             std::to_string(n) + " bytes in all (not a safetensors file)");
  const auto header = get_le<std::uint64_t>(bytes.data());
  constexpr std::uint64_t max_header = 100'000'000;  // the reference implementation's limit
  if (header > n - 8 || header > max_header)
    throw at(0,
             "a header length of at most " +
                 std::to_string(std::min<std::uint64_t>(n - 8, max_header)) +
                 " bytes (the file has " + std::to_string(n) + ")",
             std::to_string(header) + " (not a safetensors file, or truncated)");
  if (header < 2 || bytes[8] != '{')
    throw at(8, "a JSON object ('{')",
             header < 2 ? "a header of " + std::to_string(header) + " bytes" : "another byte");
  const char* text = reinterpret_cast<const char*>(bytes.data() + 8);
  std::vector<std::string> keys;
  std::string duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (duplicate.empty() && std::find(keys.begin(), keys.end(), k) != keys.end()) duplicate = k;
      keys.push_back(k);
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text, text + header, cb);
  } catch (const json::parse_error& e) {
    throw at(8 + (e.byte > 0 ? e.byte - 1 : 0), "valid JSON in the header",
             std::string("a syntax error (") + e.what() + ")");
  } catch (const json::exception& e) {  // e.g. a number out of range
    throw at(8, "valid JSON in the header", std::string("an unreadable value (") + e.what() + ")");
  }
  if (!duplicate.empty())
    throw bad(duplicate, "one entry per name", "the name twice in the header");
  if (!j.is_object()) throw at(8, "a JSON object", "another JSON value");

  safetensors_file f;
  f.path = name;
  const std::size_t data = n - 8 - static_cast<std::size_t>(header);
  f.data_start = 8 + static_cast<std::size_t>(header);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) throw bad(key, "an object of strings", "another JSON value");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw bad(key, "string values", "a non-string value for '" + m.key() + "'");
        f.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object())
      throw bad(key, "an object {dtype, shape, data_offsets}", "another JSON value");
    st_tensor t;
    t.name = key;
    const auto dt = v.find("dtype"), sh = v.find("shape"), off = v.find("data_offsets");
    if (dt == v.end() || sh == v.end() || off == v.end())
      throw bad(key, "the fields dtype, shape and data_offsets", "a field missing");
    if (v.size() != 3)
      throw bad(key, "only dtype, shape and data_offsets", std::to_string(v.size()) + " fields");
    if (!dt->is_string()) throw bad(key, "a dtype string", "another JSON value");
    t.dtype_name = dt->get<std::string>();
    std::size_t item = 0;
    for (const auto& d : st_dtypes)
      if (t.dtype_name == d.name) {
        t.dtype = d.dtype;
        item = d.size;
      }
    if (item == 0)
      throw bad(
          key,
          "a dtype among BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64, F8_*",
          "\"" + t.dtype_name + "\"");
    if (!sh->is_array()) throw bad(key, "a shape array", "another JSON value");
    std::uint64_t count = 1;
    for (const json& d : *sh) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<std::int64_t>() >= 0))
        throw bad(key, "non-negative integer extents in the shape",
                  d.is_number() ? "a negative or fractional extent" : "a non-number");
      const auto e = d.get<std::uint64_t>();
      if (e != 0 && count > (std::uint64_t{1} << 48) / e)
        throw bad(key, "fewer than 2^48 elements", "the shape's product overflowing");
      count *= e;
      t.shape.push_back(static_cast<std::size_t>(e));
    }
    if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      throw bad(key, "data_offsets [begin, end] of two non-negative integers", "something else");
    const auto b = (*off)[0].get<std::uint64_t>(), e = (*off)[1].get<std::uint64_t>();
    if (b > e || e > data)
      throw bad(key, "0 <= begin <= end <= " + std::to_string(data) + " (the data part's size)",
                "[" + std::to_string(b) + ", " + std::to_string(e) + "]");
    if (e - b != count * item)
      throw bad(key,
                std::to_string(count * item) + " bytes (" + std::to_string(count) + " x " +
                    t.dtype_name + " of shape " + shape_str(t.shape) + ")",
                std::to_string(e - b) + " bytes in data_offsets");
    t.begin = static_cast<std::size_t>(b);
    t.end = static_cast<std::size_t>(e);
    f.tensors.push_back(std::move(t));
  }
  std::sort(f.tensors.begin(), f.tensors.end(), [](const st_tensor& a, const st_tensor& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::size_t covered = 0;
  const st_tensor* prev = nullptr;
  for (const auto& t : f.tensors) {
    if (t.begin < covered)
      throw bad(t.name, "bytes of its own",
                "bytes [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                    ") overlapping tensor '" + prev->name + "'");
    if (t.begin > covered)
      throw bad(
          t.name,
          "its bytes to start at " + std::to_string(covered) +
              (prev ? " (where '" + prev->name + "' ends)" : std::string(" (the data's start)")),
          "a gap: it starts at " + std::to_string(t.begin));
    covered = t.end;
    prev = &t;
  }
  if (covered != data)
    throw at(f.data_start + covered,
             "the end of the file (the tensors cover " + std::to_string(covered) + " data bytes)",
             std::to_string(data - covered) + " bytes no tensor refers to");
  f.bytes = std::move(bytes);
  return f;
}
}  // namespace detail

inline double safetensors_file::value(const st_tensor& t, std::size_t i) const noexcept {
  return detail::st_value(t.dtype,
                          bytes.data() + data_start + t.begin + i * detail::st_size(t.dtype));
}
inline std::vector<double> safetensors_file::values(const std::string& name) const {
  const st_tensor* t = find(name);
  if (t == nullptr) throw io_error("graft: " + path + ": no tensor named '" + name + "'");
  std::vector<double> v(t->elements());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = value(*t, i);
  return v;
}

/// Reads and validates a safetensors file (any dtypes, any names); io_error naming the file and
/// the byte or tensor when it is malformed.
inline safetensors_file read_safetensors(const std::string& path) {
  return detail::parse_safetensors(path, detail::read_file(path));
}

/// How import_safetensors pairs the file's tensors with the model's.
struct safetensors_options {
  /// graft name -> file name, for the tensors the default does not pair (see the top of this file).
  std::map<std::string, std::string> names{};
  /// Put in front of every graft name when matching by name, and only file tensors whose names
  /// start with it take part (e.g. "backbone." for a file of a model with submodules).
  std::string prefix{};
  /// import_safetensors: accept file tensors that no graft tensor takes (import_backbone always
  /// does).
  bool allow_unused = false;
};

/// What an import did: which file tensor fed which graft tensor, and what it left.
struct safetensors_report {
  enum class rule { by_name, model_order };
  rule matched_by = rule::by_name;  ///< for the tensors not given in options.names
  std::vector<std::pair<std::string, std::string>> pairs;  ///< graft name, file name (model order)
  std::vector<std::string> unused;  ///< file tensors taken by none, in module order
};

namespace detail {
/// A graft tensor as PyTorch sees it.
struct torch_tensor {
  std::string name;                ///< canonical name, without the prefix
  std::vector<std::size_t> shape;  ///< PyTorch's shape
  std::size_t layer = 0;           ///< model layer
  std::size_t saved = 0;           ///< index among the layer's saved tensors (params, then buffers)
  std::size_t rows = 0,
              cols =
                  0;  ///< > 0: graft stores the transpose ([cols, rows]) of PyTorch's [rows, cols]
  /// > 0: a conv1d weight, PyTorch's [F, C, K] stored by graft as [K * C, F]
  std::size_t conv_f = 0, conv_c = 0, conv_k = 0;
  bool any_shape = false;   ///< a layer graft does not know: any shape with the same count
  bool batch_norm = false;  ///< "{module}.num_batches_tracked" goes with it on export
  std::size_t size = 0;     ///< elements
};

/// Where PyTorch's element e of t is in graft's storage.
inline std::size_t graft_index(const torch_tensor& t, std::size_t e) noexcept {
  if (t.rows > 0) return (e % t.cols) * t.rows + e / t.cols;  // [rows, cols] -> [cols, rows]
  if (t.conv_k > 0) {                                         // [F, C, K] -> [K * C, F]
    const std::size_t k = e % t.conv_k, c = e / t.conv_k % t.conv_c, f = e / (t.conv_k * t.conv_c);
    return (k * t.conv_c + c) * t.conv_f + f;
  }
  return e;
}

template <class L> struct torch_kind { static constexpr int value = 0; };
template <class T, std::size_t K, std::size_t N, class I>
struct torch_kind<dense_layer<T, K, N, I>> {
  static constexpr int value = 1;
};
template <class T, std::size_t C, std::size_t H, std::size_t W, std::size_t F, std::size_t K,
          std::size_t S, std::size_t P, bool B, class I>
struct torch_kind<conv2d_layer<T, C, H, W, F, K, S, P, B, I>> {
  static constexpr int value = 2;
  static constexpr std::size_t c = C, f = F, k = K;
};
template <class T, class In> struct torch_kind<batch_norm_layer<T, In>> {
  static constexpr int value = 3;
};
template <class T, class In, class B, class S> struct torch_kind<residual_layer<T, In, B, S>> {
  static constexpr int value = 4;
  static constexpr std::size_t block = bound_list<T, In, B>::layers::size;
  static constexpr std::size_t inner = block + bound_list<T, In, S>::layers::size;
};
// kind 5: PyTorch's tensors in graft's layout, of the shapes given (weight or bias).
template <class T, std::size_t L, std::size_t V, std::size_t D, class I>
struct torch_kind<embedding_layer<T, L, V, D, I>> {
  static constexpr int value = 5;
  static std::vector<std::size_t> shape(bool) { return {V, D}; }
};
template <class T, std::size_t L, std::size_t D, class I>
struct torch_kind<positional_embedding_layer<T, L, D, I>> {
  static constexpr int value = 5;
  static std::vector<std::size_t> shape(bool) { return {L, D}; }
};
template <class T, class In> struct torch_kind<layer_norm_layer<T, In>> {
  static constexpr int value = 5;
  static std::vector<std::size_t> shape(bool) { return {layer_norm_layer<T, In>::D}; }
};

template <class T, std::size_t L, std::size_t C, std::size_t F, std::size_t K, std::size_t S,
          std::size_t P, bool B, class I>
struct torch_kind<conv1d_layer<T, L, C, F, K, S, P, B, I>> {
  static constexpr int value = 6;
  static constexpr std::size_t c = C, f = F, k = K;
};

// kind 7: nn.MultiheadAttention's in_proj and out_proj, both weights transposed as dense's.
template <class T, std::size_t L, std::size_t D, std::size_t H, bool C, std::size_t R,
          std::size_t A>
struct torch_kind<multi_head_attention_layer<T, L, D, H, C, R, A>> {
  static_assert(R == 0,
                "graft: safetensors of an attention layer with LoRA adapters (lora_qv): "
                "merge_adapters(net) first (PyTorch has no layout for graft's fused-qkv adapters)");
  static constexpr int value = 7;
  static constexpr std::size_t d = D;
};

/// Appends layer L's tensors (module order: for a residual, inner layer by inner layer) named
/// under prefix; saved_base / buffer_base: where L's parameters and buffers start among its
/// model layer's saved tensors (each model layer saves its parameters, then its buffers).
template <class L> void describe_layer(const std::string& prefix, std::size_t layer,
                                       std::size_t saved_base, std::size_t buffer_base,
                                       std::vector<torch_tensor>& out) {
  constexpr int kind = torch_kind<L>::value;
  if constexpr (kind == 4) {  // residual: its inner layers, block then shortcut
    using R = torch_kind<L>;
    std::size_t p = saved_base, b = buffer_base;
    meta::static_for<R::inner>([&](auto k) {
      using I = typename L::template inner_type<k>;
      const std::string sub =
          k < R::block ? "body." + std::to_string(k) : "shortcut." + std::to_string(k - R::block);
      describe_layer<I>(prefix + sub + ".", layer, p, b, out);
      p += I::params.size();
      b += buffer_count_v<I>;
    });
  } else {
    constexpr std::size_t np = L::params.size();
    for (std::size_t j = 0; j < np; ++j) {
      torch_tensor t;
      t.layer = layer;
      t.saved = saved_base + j;
      t.size = L::params[j].size;
      const bool w = L::params[j].kind == role::weight;
      if constexpr (kind == 1) {
        constexpr std::size_t in = L::input_shape::size, o = L::output_shape::size;
        t.shape = w ? std::vector<std::size_t>{o, in} : std::vector<std::size_t>{o};
        if (w) {
          t.rows = o;
          t.cols = in;
        }
        t.name = prefix + (w ? "weight" : "bias");
      } else if constexpr (kind == 2) {
        using K = torch_kind<L>;
        t.shape =
            w ? std::vector<std::size_t>{K::f, K::c, K::k, K::k} : std::vector<std::size_t>{K::f};
        t.name = prefix + (w ? "weight" : "bias");
      } else if constexpr (kind == 3) {
        t.shape = {L::C};
        t.name = prefix + (w ? "weight" : "bias");
        t.batch_norm = w;
      } else if constexpr (kind == 6) {  // nn.Conv1d(C, F, K): weight [F, C, K]
        using K = torch_kind<L>;
        t.shape = w ? std::vector<std::size_t>{K::f, K::c, K::k} : std::vector<std::size_t>{K::f};
        if (w) {
          t.conv_f = K::f;
          t.conv_c = K::c;
          t.conv_k = K::k;
        }
        t.name = prefix + (w ? "weight" : "bias");
      } else if constexpr (kind == 7) {  // w_qkv [D, 3D], b_qkv, w_o [D, D], b_o
        constexpr std::size_t D = torch_kind<L>::d;
        const std::size_t rows = j < 2 ? 3 * D : D;  // in_proj [3D, D], out_proj [D, D]
        t.shape = w ? std::vector<std::size_t>{rows, D} : std::vector<std::size_t>{rows};
        if (w) {
          t.rows = rows;
          t.cols = D;
        }
        static const char* const names[4] = {"in_proj_weight", "in_proj_bias", "out_proj.weight",
                                             "out_proj.bias"};
        t.name = prefix + names[j];
      } else if constexpr (kind == 5) {
        t.shape = torch_kind<L>::shape(w);
        t.name = prefix + (w ? "weight" : "bias");
      } else {
        t.shape = {t.size};
        t.any_shape = true;
        const bool first_w = w && j == 0;
        const bool bias = !w && j == 1 && L::params[0].kind == role::weight;
        t.name = prefix + (first_w ? std::string("weight")
                           : bias  ? std::string("bias")
                                   : "param" + std::to_string(j));
      }
      out.push_back(std::move(t));
    }
    // An embedding's vocabulary buffer has no PyTorch counterpart (nn.Embedding holds only its
    // weight): neither imported nor exported, so an import leaves the model's vocabulary as it is.
    if constexpr (buffer_count_v < L >> 0 && kind != 5)
      for (std::size_t j = 0; j < L::buffers.size(); ++j) {
        torch_tensor t;
        t.layer = layer;
        t.saved = buffer_base + j;
        t.size = L::buffers[j];
        if constexpr (kind == 3) {
          t.shape = {L::C};
          t.name = prefix + (j == 0 ? "running_mean" : "running_var");
        } else {
          t.shape = {t.size};
          t.any_shape = true;
          t.name = prefix + "buffer" + std::to_string(j);
        }
        out.push_back(std::move(t));
      }
  }
}

/// Model M's tensors as PyTorch names them, in model order (module order within a residual).
template <class M> std::vector<torch_tensor> torch_tensors(bool include_head) {
  std::vector<torch_tensor> out;
  meta::static_for<M::layer_count>([&](auto i) {
    using L = typename M::template layer_type<i>;
    if (i == M::head_index && !include_head) return;
    describe_layer<L>(std::to_string(i) + ".", i, 0, L::params.size(), out);
  });
  return out;
}

/// Pointers to each layer's saved tensors, in for_each_saved order.
template <class M, class P> std::vector<std::vector<P>> saved_pointers(M& net) {
  std::vector<std::vector<P>> ptrs(M::layer_count);
  net.for_each_saved(
      [&](std::size_t layer, auto* data, std::size_t) { ptrs[layer].push_back(data); });
  return ptrs;
}

/// Module order of PyTorch names: the module path compared component by component (numbers as
/// numbers), then weight, bias, running_mean, running_var (in_proj_weight and in_proj_bias, of
/// nn.MultiheadAttention, rank as weight and bias), then other names.
inline bool module_order_less(const std::string& a, const std::string& b) {
  auto split = [](const std::string& s) {
    std::vector<std::string> parts;
    std::size_t from = 0;
    for (std::size_t dot; (dot = s.find('.', from)) != std::string::npos; from = dot + 1)
      parts.push_back(s.substr(from, dot - from));
    parts.push_back(s.substr(from));
    return parts;
  };
  auto numeric = [](const std::string& s) {
    return !s.empty() && s.size() < 19 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  auto rank = [](const std::string& leaf) {
    static const char* const order[] = {"weight", "bias", "running_mean", "running_var"};
    for (int r = 0; r < 4; ++r)
      if (leaf == order[r]) return r;
    return leaf == "in_proj_weight" ? 0 : leaf == "in_proj_bias" ? 1 : 4;
  };
  const auto pa = split(a), pb = split(b);
  const std::size_t ma = pa.size() - 1, mb = pb.size() - 1;  // module path lengths
  for (std::size_t i = 0; i < std::min(ma, mb); ++i) {
    if (pa[i] == pb[i]) continue;
    if (numeric(pa[i]) && numeric(pb[i])) return std::stoull(pa[i]) < std::stoull(pb[i]);
    return pa[i] < pb[i];
  }
  if (ma != mb) return ma < mb;  // a module's own tensors before its submodules'
  const int ra = rank(pa.back()), rb = rank(pb.back());
  return ra != rb ? ra < rb : pa.back() < pb.back();
}

inline bool ignored_on_import(const std::string& name) {
  const std::string leaf = "num_batches_tracked";
  return name == leaf || (name.size() > leaf.size() &&
                          name.compare(name.size() - leaf.size(), leaf.size(), leaf) == 0 &&
                          name[name.size() - leaf.size() - 1] == '.');
}

/// Pairs, converts and checks everything, then writes into net: a refusal leaves net unchanged.
template <class M> safetensors_report import_parsed(M& net, const safetensors_file& f,
                                                    const safetensors_options& opt,
                                                    bool include_head) {
  using T = typename M::scalar;
  const std::string& file = f.path;
  auto fail = [&](const std::string& msg) { return io_error("graft: " + file + ": " + msg); };
  const std::vector<torch_tensor> mine = torch_tensors<M>(include_head);

  // the file's candidates: within the prefix, num_batches_tracked left out
  std::vector<const st_tensor*> theirs;
  for (const auto& t : f.tensors)
    if (t.name.compare(0, opt.prefix.size(), opt.prefix) == 0 && !ignored_on_import(t.name))
      theirs.push_back(&t);
  std::vector<bool> taken(theirs.size(), false);
  auto index_of = [&](const std::string& name) -> std::size_t {
    for (std::size_t k = 0; k < theirs.size(); ++k)
      if (theirs[k]->name == name) return k;
    return theirs.size();
  };

  std::vector<std::size_t> pick(mine.size(), theirs.size());  // mine[i] takes theirs[pick[i]]
  for (const auto& [g, n] : opt.names) {
    if (ignored_on_import(g)) continue;  // maps made from a state_dict's keys may list them
    std::size_t i = 0;
    while (i < mine.size() && mine[i].name != g) ++i;
    if (i == mine.size()) {
      std::string all;
      for (const auto& t : mine) all.append(all.empty() ? "" : ", ").append(t.name);
      std::string msg = "the name map gives '" + g + "', which is not a tensor of the model";
      msg.append(include_head ? "" : "'s backbone").append(" (its tensors: ").append(all) += ")";
      throw fail(msg);
    }
    const std::size_t k = index_of(n);
    if (k == theirs.size()) {
      std::string msg = "tensor '" + n;
      msg.append("' (named in the map for '").append(g).append("'): not in the file");
      if (!opt.prefix.empty()) msg.append(" under the prefix '").append(opt.prefix) += "'";
      throw fail(msg);
    }
    if (taken[k]) throw fail("tensor '" + n + "': named twice in the map");
    taken[k] = true;
    pick[i] = k;
  }
  safetensors_report report;
  bool all_by_name = true;
  for (std::size_t i = 0; i < mine.size(); ++i)
    if (pick[i] == theirs.size()) {
      const std::size_t k = index_of(opt.prefix + mine[i].name);
      all_by_name = all_by_name && k < theirs.size() && !taken[k];
    }
  report.matched_by =
      all_by_name ? safetensors_report::rule::by_name : safetensors_report::rule::model_order;
  if (all_by_name) {
    for (std::size_t i = 0; i < mine.size(); ++i)
      if (pick[i] == theirs.size()) {
        pick[i] = index_of(opt.prefix + mine[i].name);
        taken[pick[i]] = true;
      }
  } else {
    std::vector<std::size_t> order;
    for (std::size_t k = 0; k < theirs.size(); ++k)
      if (!taken[k]) order.push_back(k);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return module_order_less(theirs[a]->name, theirs[b]->name);
    });
    std::size_t next = 0;
    for (std::size_t i = 0; i < mine.size(); ++i)
      if (pick[i] == theirs.size() && next < order.size()) {
        pick[i] = order[next++];
        taken[pick[i]] = true;
      }
  }

  // shapes and dtypes of every pair, then the values, converted and checked
  std::vector<std::vector<T>> staged(mine.size());
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if (pick[i] == theirs.size())
      throw fail("the model's tensor '" + mine[i].name + "' (" + shape_str(mine[i].shape) +
                 ") and those after it find no tensor in the file, taken in model order (the "
                 "file has " +
                 std::to_string(theirs.size()) + " tensors" +
                 (opt.prefix.empty() ? "" : " under '" + opt.prefix + "'") +
                 "; give the missing names in safetensors_options::names)");
    const torch_tensor& g = mine[i];
    const st_tensor& t = *theirs[pick[i]];
    const std::string pair = "tensor '" + t.name + "' (for graft's '" + g.name + "'" +
                             (report.matched_by == safetensors_report::rule::model_order &&
                                      opt.names.find(g.name) == opt.names.end()
                                  ? ", paired in model order"
                                  : "") +
                             ")";
    if (!st_is_float(t.dtype))  // 8-bit floats are not converted either
      throw fail(pair + ": expected a float dtype (F16, BF16, F32 or F64), found " + t.dtype_name);
    const bool shape_ok = g.any_shape ? t.elements() == g.size : t.shape == g.shape;
    if (!shape_ok)
      throw fail(pair + ": expected shape " + shape_str(g.shape) +
                 (g.any_shape ? " (or any shape of " + std::to_string(g.size) + " elements)" : "") +
                 ", found " + shape_str(t.shape) +
                 (opt.names.empty() && !all_by_name
                      ? " (the file's names do not sort into the model's order: give "
                        "safetensors_options::names)"
                      : ""));
    std::vector<T>& v = staged[i];
    v.resize(g.size);
    for (std::size_t e = 0; e < g.size; ++e) {
      const double x = f.value(t, e);
      if (!std::isfinite(x))
        throw fail(pair + ": element " + std::to_string(e) + ": expected a finite number, found " +
                   std::to_string(x));
      if constexpr (sizeof(T) == sizeof(float))
        if (std::fabs(x) > static_cast<double>(std::numeric_limits<float>::max()))
          throw fail(pair + ": element " + std::to_string(e) + ": " + std::to_string(x) +
                     " does not fit in float");
      const std::size_t at = graft_index(g, e);
      v[at] = static_cast<T>(x);
    }
  }
  for (std::size_t k = 0; k < theirs.size(); ++k)
    if (!taken[k]) report.unused.push_back(theirs[k]->name);
  std::sort(report.unused.begin(), report.unused.end(), module_order_less);
  if (include_head && !opt.allow_unused && !report.unused.empty()) {
    std::string list;
    for (const auto& u : report.unused) list += (list.empty() ? "'" : ", '") + u + "'";
    throw fail("tensor " + list + ": expected every tensor of the file to be used, found " +
               std::to_string(report.unused.size()) +
               " no layer takes (safetensors_options::allow_unused accepts that)");
  }
  // everything checked: write
  const auto ptrs = saved_pointers<M, T*>(net);
  for (std::size_t i = 0; i < mine.size(); ++i) {
    std::copy(staged[i].begin(), staged[i].end(), ptrs[mine[i].layer][mine[i].saved]);
    report.pairs.emplace_back(mine[i].name, theirs[pick[i]]->name);
  }
  return report;
}
}  // namespace detail

/// The names graft gives model M's tensors (model order), as import and export use them.
template <class M> std::vector<std::string> safetensors_names(bool include_head = true) {
  std::vector<std::string> r;
  for (const auto& t : detail::torch_tensors<M>(include_head)) r.push_back(t.name);
  return r;
}

/// Reads every parameter and buffer of net (head included) from a safetensors file. io_error
/// naming the file and the byte or tensor for a malformed file, a missing tensor, a shape or dtype
/// mismatch, a non-finite value, or a file tensor no layer takes; net is unchanged then.
template <class M> safetensors_report import_safetensors(M& net, const std::string& path,
                                                         const safetensors_options& options = {}) {
  static_assert(is_model<M>::value,
                "graft: import_safetensors(net, ...): net must be a graft::model");
  return detail::import_parsed(net, read_safetensors(path), options, true);
}

/// The backbone only (like load_backbone): the head stays as it is, and the file's tensors no
/// backbone tensor takes (its head, typically) are listed in the report's unused.
template <class M>
safetensors_report import_backbone_safetensors(M& net, const std::string& path,
                                               const safetensors_options& options = {}) {
  static_assert(is_model<M>::value,
                "graft: import_backbone_safetensors(net, ...): net must be a graft::model");
  return detail::import_parsed(net, read_safetensors(path), options, false);
}

/// A tensor to write with save_safetensors: values in C order, stored as F32 or F64 (or I64).
struct st_array {
  std::string name;
  std::vector<std::size_t> shape;  ///< empty for a scalar
  std::vector<double> values;
  st_dtype dtype = st_dtype::F32;  ///< F32, F64 or I64
};

namespace detail {
/// The file's bytes: 8-byte tensors first, so that every tensor starts at a multiple of its size.
inline std::vector<unsigned char> safetensors_bytes(
    const std::vector<st_array>& tensors, const std::map<std::string, std::string>& meta) {
  using json = nlohmann::ordered_json;
  json header = json::object();
  if (!meta.empty()) header["__metadata__"] = meta;
  std::vector<unsigned char> data;
  for (const bool wide : {true, false})
    for (const auto& t : tensors) {
      if (t.dtype != st_dtype::F32 && t.dtype != st_dtype::F64 && t.dtype != st_dtype::I64)
        throw io_error("graft: save_safetensors: tensor '" + t.name +
                       "': expected dtype F32, F64 or I64");
      if ((st_size(t.dtype) == 8) != wide) continue;
      std::size_t n = 1;
      for (std::size_t d : t.shape) n *= d;
      if (n != t.values.size())
        throw io_error("graft: save_safetensors: tensor '" + t.name + "': expected " +
                       std::to_string(n) + " values for shape " + shape_str(t.shape) + ", found " +
                       std::to_string(t.values.size()));
      if (header.contains(t.name))
        throw io_error("graft: save_safetensors: tensor '" + t.name +
                       "': expected one tensor per name, found two");
      const std::size_t begin = data.size();
      for (double v : t.values) {
        if (t.dtype == st_dtype::F32)
          put_le(data, std::bit_cast<std::uint32_t>(static_cast<float>(v)));
        else if (t.dtype == st_dtype::F64)
          put_le(data, std::bit_cast<std::uint64_t>(v));
        else
          put_le(data, static_cast<std::uint64_t>(static_cast<std::int64_t>(v)));
      }
      const char* dtype = t.dtype == st_dtype::F32   ? "F32"
                          : t.dtype == st_dtype::F64 ? "F64"
                                                     : "I64";
      header[t.name] = {
          {"dtype", dtype}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
    }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<unsigned char> out;
  out.reserve(8 + text.size() + data.size());
  put_le<std::uint64_t>(out, text.size());
  out.insert(out.end(), text.begin(), text.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

/// net's tensors as PyTorch names and lays them out (dense transposed to [out, in]), with
/// num_batches_tracked = 0 for each batch norm.
template <class M> std::vector<st_array> torch_arrays(const M& net, const std::string& prefix) {
  using T = typename M::scalar;
  const std::vector<torch_tensor> mine = torch_tensors<M>(true);
  const auto ptrs = saved_pointers<const M, const T*>(net);
  std::vector<st_array> out;
  for (const auto& t : mine) {
    if (t.batch_norm)
      out.push_back({prefix + t.name.substr(0, t.name.size() - 6) + "num_batches_tracked",
                     {},
                     {0.0},
                     st_dtype::I64});
    st_array a{prefix + t.name, t.shape, std::vector<double>(t.size),
               sizeof(T) == 4 ? st_dtype::F32 : st_dtype::F64};
    const T* p = ptrs[t.layer][t.saved];
    for (std::size_t e = 0; e < t.size; ++e)
      a.values[e] = static_cast<double>(p[graft_index(t, e)]);
    out.push_back(std::move(a));
  }
  return out;
}
template <class M>
std::vector<unsigned char> safetensors_bytes(const M& net, const std::string& prefix) {
  return safetensors_bytes(torch_arrays(net, prefix),
                           {{"format", "pt"}, {"graft_description", M::description()}});
}
}  // namespace detail

/// Writes tensors (inputs, expected outputs, a dataset...) as a safetensors file, atomically.
inline void save_safetensors(const std::string& path, const std::vector<st_array>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  detail::write_atomically(path, detail::safetensors_bytes(tensors, metadata));
}

/// A name map from a JSON file {"graft name": "file name", ...} (tools/torch_interop.py writes
/// them), for safetensors_options::names.
inline std::map<std::string, std::string> read_name_map(const std::string& path) {
  const std::vector<unsigned char> bytes = detail::read_file(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::parse_error& e) {
    throw io_error("graft: " + path + ": byte " + std::to_string(e.byte > 0 ? e.byte - 1 : 0) +
                   ": expected valid JSON, found a syntax error (" + e.what() + ")");
  }
  if (!j.is_object())
    throw io_error("graft: " + path + ": expected a JSON object of names, found another value");
  std::map<std::string, std::string> m;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string())
      throw io_error("graft: " + path + ": '" + it.key() +
                     "': expected a file tensor's name (a string), found another value");
    m[it.key()] = it.value().get<std::string>();
  }
  return m;
}

/// Writes net's parameters and buffers (head included) as safetensors, named as the state_dict of
/// the equivalent PyTorch nn.Sequential (see the top of this file; prefix in front of every name),
/// in the model's scalar (F32 or F64), with "num_batches_tracked" = 0 for each batch norm.
/// Atomic, like save(): a crash leaves the previous file intact.
template <class M>
void export_safetensors(const M& net, const std::string& path, const std::string& prefix = "") {
  static_assert(is_model<M>::value,
                "graft: export_safetensors(net, ...): net must be a graft::model");
  detail::write_atomically(path, detail::safetensors_bytes(net, prefix));
}

GRAFT_END_NAMESPACE
