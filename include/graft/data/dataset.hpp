// graft::data::dataset: float samples in one row-major buffer with class labels and/or regression
// targets, and value-returning transforms (only_classes, relabeled, few_shot, shuffled, take,
// subset) that leave the original unchanged. Light header (no xtensor).
#pragma once
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "graft/config.hpp"
#include "graft/data/error.hpp"
#include "graft/data/idx.hpp"
#include "graft/random/random.hpp"

GRAFT_BEGIN_NAMESPACE
namespace data {

/// The Fisher-Yates permutation of 0..n-1 used by dataset::shuffled and dataset::few_shot:
/// splitmix64 rng(s.value); for i from n-1 down to 1: j = rng.next() % (i+1), swap(p[i], p[j]).
inline std::vector<std::size_t> permutation(std::size_t n, seed s) {
  std::vector<std::size_t> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = i;
  splitmix64 rng(s.value);
  fisher_yates(p.begin(), n, rng);
  return p;
}

/// Samples of sample_shape floats, one after another in features. Classification data has one
/// label per sample (labels are class ids; class_ids lists the ids they refer to, ascending);
/// regression data has target_size floats per sample in targets.
class dataset {
 public:
  std::string name;
  std::vector<std::size_t> sample_shape;  ///< e.g. {28, 28}; empty means scalar samples
  std::vector<float> features;            ///< size() * sample_size() floats
  std::vector<std::int32_t> labels;       ///< one per sample, or empty (regression)
  std::vector<float> targets;             ///< size() * target_size floats, or empty
  std::size_t target_size = 0;
  std::vector<std::int32_t> class_ids;  ///< the class ids labels refer to, ascending
  /// Token data: the fingerprint of the vocabulary the ids come from (text::tokenize); 0: none.
  std::uint64_t vocabulary = 0;

  /// Floats per sample: the product of sample_shape (1 when it is empty).
  std::size_t sample_size() const noexcept {
    std::size_t n = 1;
    for (std::size_t d : sample_shape) n *= d;
    return n;
  }
  std::size_t size() const noexcept {
    const std::size_t ss = sample_size();
    return ss == 0 ? 0 : features.size() / ss;
  }
  bool empty() const noexcept { return size() == 0; }
  bool has_labels() const noexcept { return !labels.empty(); }
  bool has_targets() const noexcept { return !targets.empty(); }

  /// The sample_size() floats of sample i.
  const float* sample(std::size_t i) const {
    check_index(i, "sample");
    return features.data() + i * sample_size();
  }
  std::int32_t label(std::size_t i) const {
    check_index(i, "label");
    if (i >= labels.size()) throw std::out_of_range(where("label") + "the dataset has no labels");
    return labels[i];
  }
  /// The target_size floats of the target of sample i.
  const float* target(std::size_t i) const {
    check_index(i, "target");
    if (target_size == 0 || targets.size() / target_size <= i)
      throw std::out_of_range(where("target") + "the dataset has no targets");
    return targets.data() + i * target_size;
  }
  /// class_ids.size(), or the largest label + 1 when class_ids is empty.
  std::size_t num_classes() const noexcept {
    if (!class_ids.empty()) return class_ids.size();
    std::int32_t top = -1;
    for (std::int32_t l : labels) top = std::max(top, l);
    return top < 0 ? 0 : static_cast<std::size_t>(top) + 1;
  }

  /// The samples whose label is one of ids, in their original order; class_ids becomes the
  /// sorted ids (a requested id with no sample simply keeps nothing). std::invalid_argument for a
  /// negative or duplicate id, or a dataset without labels.
  dataset only_classes(std::initializer_list<int> ids) const {
    return only_classes(std::vector<int>(ids));
  }
  dataset only_classes(const std::vector<int>& ids) const {
    require_labels("only_classes");
    std::vector<std::int32_t> keep_ids;
    keep_ids.reserve(ids.size());
    for (int id : ids) {
      if (id < 0)
        throw std::invalid_argument(where("only_classes") + "class id " + std::to_string(id) +
                                    " is negative");
      keep_ids.push_back(static_cast<std::int32_t>(id));
    }
    std::sort(keep_ids.begin(), keep_ids.end());
    const auto dup = std::adjacent_find(keep_ids.begin(), keep_ids.end());
    if (dup != keep_ids.end())
      throw std::invalid_argument(where("only_classes") + "class id " + std::to_string(*dup) +
                                  " is requested twice");
    std::vector<std::size_t> kept;
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (std::binary_search(keep_ids.begin(), keep_ids.end(), labels[i])) kept.push_back(i);
    dataset out = gather(kept);
    out.class_ids = std::move(keep_ids);
    return out;
  }

  /// Each label replaced by its rank in class_ids (so classes {5..9} become 0..4); class_ids
  /// becomes 0..k-1. Without class_ids, the ranks are among the distinct labels present.
  dataset relabeled() const {
    require_labels("relabeled");
    std::vector<std::int32_t> ids = class_ids.empty() ? labels : class_ids;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    dataset out = *this;
    for (std::size_t i = 0; i < out.labels.size(); ++i) {
      const auto it = std::lower_bound(ids.begin(), ids.end(), labels[i]);
      if (it == ids.end() || *it != labels[i])
        throw std::invalid_argument(where("relabeled") + "label " + std::to_string(labels[i]) +
                                    " of sample " + std::to_string(i) + " is not in class_ids");
      out.labels[i] = static_cast<std::int32_t>(it - ids.begin());
    }
    out.class_ids.resize(ids.size());
    for (std::size_t c = 0; c < ids.size(); ++c) out.class_ids[c] = static_cast<std::int32_t>(c);
    return out;
  }

  /// At most k samples of each class: walks permutation(size(), s) and keeps each index whose
  /// class has fewer than k kept so far; the result is in the order the samples were kept.
  dataset few_shot(std::size_t k, seed s) const {
    require_labels("few_shot");
    const std::vector<std::size_t> p = permutation(size(), s);
    std::unordered_map<std::int32_t, std::size_t> taken;
    std::vector<std::size_t> kept;
    for (std::size_t i : p) {
      std::size_t& c = taken[labels[i]];
      if (c < k) {
        ++c;
        kept.push_back(i);
      }
    }
    return gather(kept);
  }

  /// All samples in the order of permutation(size(), s).
  dataset shuffled(seed s) const { return gather(permutation(size(), s)); }

  /// The first min(n, size()) samples.
  dataset take(std::size_t n) const {
    std::vector<std::size_t> idx(std::min(n, size()));
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    return gather(idx);
  }

  /// The samples at indices, in that order (repeats allowed). std::out_of_range past the end.
  dataset subset(const std::vector<std::size_t>& indices) const {
    const std::size_t n = size();
    for (std::size_t i : indices)
      if (i >= n)
        throw std::out_of_range(where("subset") + "index " + std::to_string(i) + " out of range (" +
                                std::to_string(n) + " samples)");
    return gather(indices);
  }

 private:
  std::string where(const char* what) const { return "graft: " + name + ": " + what + ": "; }

  void check_index(std::size_t i, const char* what) const {
    if (i >= size())
      throw std::out_of_range(where(what) + "index " + std::to_string(i) + " out of range (" +
                              std::to_string(size()) + " samples)");
  }
  void require_labels(const char* what) const {
    if (labels.size() != size())
      throw std::invalid_argument(where(what) + "needs one label per sample (" +
                                  std::to_string(labels.size()) + " labels, " +
                                  std::to_string(size()) + " samples)");
  }

  /// A copy with the samples at idx (unchecked), same name, shape, class_ids and vocabulary.
  dataset gather(const std::vector<std::size_t>& idx) const {
    dataset out;
    out.name = name;
    out.sample_shape = sample_shape;
    out.target_size = target_size;
    out.class_ids = class_ids;
    out.vocabulary = vocabulary;
    const std::size_t ss = sample_size();
    out.features.resize(idx.size() * ss);
    for (std::size_t r = 0; r < idx.size(); ++r)
      std::copy_n(features.data() + idx[r] * ss, ss, out.features.data() + r * ss);
    if (!labels.empty()) {
      out.labels.resize(idx.size());
      for (std::size_t r = 0; r < idx.size(); ++r) out.labels[r] = labels[idx[r]];
    }
    if (!targets.empty() && target_size != 0) {
      out.targets.resize(idx.size() * target_size);
      for (std::size_t r = 0; r < idx.size(); ++r)
        std::copy_n(targets.data() + idx[r] * target_size, target_size,
                    out.targets.data() + r * target_size);
    }
    return out;
  }
};

/// A train/test pair.
struct split {
  dataset train;
  dataset test;
};

namespace detail {

inline std::size_t checked_sample_size(const std::string& where,
                                       const std::vector<std::size_t>& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) {
    if (d == 0)
      throw std::invalid_argument(where + "sample_shape " + dims_string(shape) +
                                  " has a zero dimension");
    if (n > std::numeric_limits<std::size_t>::max() / d)
      throw std::invalid_argument(where + "sample_shape " + dims_string(shape) + " overflows");
    n *= d;
  }
  return n;
}

inline std::size_t checked_count(const std::string& where, const std::vector<std::size_t>& shape,
                                 std::size_t num_features) {
  const std::size_t ss = checked_sample_size(where, shape);
  if (num_features % ss != 0)
    throw std::invalid_argument(
        where + std::to_string(num_features) + " features is not a whole number of samples of " +
        std::to_string(ss) + " floats (sample_shape " + dims_string(shape) + ")");
  return num_features / ss;
}

/// A label value for messages: integral values without a fraction, others in shortest form.
inline std::string number_string(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15)
    return std::to_string(static_cast<long long>(v));
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return {buf, r.ptr};
}

}  // namespace detail

/// A classification dataset; labels must be in [0, classes); class_ids becomes 0..classes-1.
/// std::invalid_argument when the sizes do not match.
inline dataset make_classification(std::string name, std::vector<std::size_t> sample_shape,
                                   std::vector<float> features, std::vector<std::int32_t> labels,
                                   std::size_t classes) {
  const std::string where = "graft: make_classification(" + name + "): ";
  const std::size_t n = detail::checked_count(where, sample_shape, features.size());
  if (classes == 0 || classes > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw std::invalid_argument(where + "classes is " + std::to_string(classes) +
                                ", expected 1 to 2^31-1");
  if (labels.size() != n)
    throw std::invalid_argument(where + std::to_string(n) + " samples of features but " +
                                std::to_string(labels.size()) + " labels");
  for (std::size_t i = 0; i < n; ++i)
    if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= classes)
      throw std::invalid_argument(where + "label " + std::to_string(labels[i]) + " of sample " +
                                  std::to_string(i) + " is outside [0, " + std::to_string(classes) +
                                  ")");
  dataset d;
  d.name = std::move(name);
  d.sample_shape = std::move(sample_shape);
  d.features = std::move(features);
  d.labels = std::move(labels);
  d.class_ids.resize(classes);
  for (std::size_t c = 0; c < classes; ++c) d.class_ids[c] = static_cast<std::int32_t>(c);
  return d;
}

/// A regression dataset with target_size floats of target per sample.
/// std::invalid_argument when the sizes do not match.
inline dataset make_regression(std::string name, std::vector<std::size_t> sample_shape,
                               std::vector<float> features, std::vector<float> targets,
                               std::size_t target_size) {
  const std::string where = "graft: make_regression(" + name + "): ";
  const std::size_t n = detail::checked_count(where, sample_shape, features.size());
  if (target_size == 0) throw std::invalid_argument(where + "target_size is 0");
  if (targets.size() % target_size != 0 || targets.size() / target_size != n)
    throw std::invalid_argument(where + std::to_string(n) + " samples of features but " +
                                std::to_string(targets.size()) + " target floats (expected " +
                                std::to_string(n) + " x target_size " +
                                std::to_string(target_size) + ")");
  dataset d;
  d.name = std::move(name);
  d.sample_shape = std::move(sample_shape);
  d.features = std::move(features);
  d.targets = std::move(targets);
  d.target_size = target_size;
  return d;
}

/// Largest label from_idx accepts (class_ids is 0..max label).
inline constexpr std::int32_t max_idx_label = 65535;

/// A classification dataset from an IDX image file (rank >= 2: count x sample dims; ubyte pixels
/// are divided by 255, float32/float64 taken as they are) and an IDX label file (rank 1, integer
/// labels in [0, max_idx_label]). class_ids is 0..max label. data_error on any mismatch.
inline dataset from_idx(const idx_array& images, const idx_array& labels, std::string name) {
  if (images.rank() < 2)
    throw data_error(images.path, data_error::no_offset,
                     "images of rank >= 2 (count x sample dims)",
                     "rank " + std::to_string(images.rank()) + " (dims " +
                         detail::dims_string(images.dims) + ")");
  if (images.type != idx_type::ubyte && images.type != idx_type::float32 &&
      images.type != idx_type::float64)
    throw data_error(images.path, 2, "an image type 0x08 ubyte, 0x0D float32 or 0x0E float64",
                     detail::hex_byte(images.type) + " " + idx_type_name(images.type),
                     images.decompressed);
  if (labels.rank() != 1)
    throw data_error(labels.path, 3, "labels of rank 1",
                     "rank " + std::to_string(labels.rank()) + " (dims " +
                         detail::dims_string(labels.dims) + ")",
                     labels.decompressed);
  if (images.dims[0] != labels.dims[0])
    throw data_error(
        images.path, data_error::no_offset,
        "as many images as the " + std::to_string(labels.dims[0]) + " labels in " + labels.path,
        std::to_string(images.dims[0]) + " images");
  const std::size_t n = labels.dims[0];
  if (labels.element_size() == 0 || labels.payload.size() != n * labels.element_size())
    throw data_error(labels.path, data_error::no_offset, "a payload matching the dims",
                     std::to_string(labels.payload.size()) + " bytes");
  if (images.payload.size() / images.element_size() != images.count() ||
      images.payload.size() % images.element_size() != 0)
    throw data_error(images.path, data_error::no_offset, "a payload matching the dims",
                     std::to_string(images.payload.size()) + " bytes");

  dataset d;
  d.name = std::move(name);
  d.labels.resize(n);
  std::vector<double> raw(n);
  detail::convert_payload(labels.type, labels.payload.data(), n, raw.data(),
                          [](auto x) { return static_cast<double>(x); });
  std::int32_t top = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = raw[i];
    const char* expected = nullptr;
    if (!(v >= 0))
      expected = "a non-negative label";
    else if (v != std::floor(v))
      expected = "an integer label";
    else if (v > max_idx_label)
      expected = "a label of at most 65535";
    if (expected != nullptr)
      throw data_error(labels.path, labels.header_size() + i * labels.element_size(), expected,
                       detail::number_string(v) + " (label " + std::to_string(i) + ")",
                       labels.decompressed);
    d.labels[i] = static_cast<std::int32_t>(v);
    top = std::max(top, d.labels[i]);
  }
  d.class_ids.resize(static_cast<std::size_t>(top) + 1);
  for (std::size_t c = 0; c < d.class_ids.size(); ++c)
    d.class_ids[c] = static_cast<std::int32_t>(c);

  d.sample_shape.assign(images.dims.begin() + 1, images.dims.end());
  d.features.resize(images.count());
  convert_to_float(images, d.features.data(), images.type == idx_type::ubyte ? 255.0f : 1.0f);
  return d;
}

}  // namespace data
GRAFT_END_NAMESPACE
