// libFuzzer target: parse_npy() on the input bytes, as a .npy file; an accepted array then goes
// through from_npy() as features and as labels and through from_npy_regression() as targets.
// Refusals are graft::data_error; any other exception, a crash or a sanitizer report is a finding.
// An accepted file must be self-consistent (header plus data is the whole input, every element
// readable), and an accepted dataset too (sizes, labels within class_ids, finite floats).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "graft/data/npy.hpp"

namespace {
namespace gd = graft::data;

void check(const gd::dataset& d, std::size_t n) {
  if (d.size() != n || d.features.size() != n * d.sample_size()) std::abort();
  for (float v : d.features)
    if (!std::isfinite(v)) std::abort();
  if (d.has_labels()) {
    if (d.labels.size() != n) std::abort();
    for (std::int32_t l : d.labels)
      if (l < 0 || static_cast<std::size_t>(l) >= d.class_ids.size()) std::abort();
  }
  if (d.has_targets()) {
    if (d.target_size == 0 || d.targets.size() != n * d.target_size) std::abort();
    for (float v : d.targets)
      if (!std::isfinite(v)) std::abort();
  }
}

/// An array of n values of dtype t (zero bytes), named path.
gd::npy_array made(const char* path, gd::npy_dtype t, std::vector<std::size_t> shape) {
  gd::npy_array a;
  a.path = path;
  a.dtype = t;
  a.shape = std::move(shape);
  a.data.assign(a.count() * a.element_size(), 0);
  return a;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  gd::npy_array a;
  try {
    a = gd::parse_npy("fuzz.npy", data, size);
  } catch (const graft::data_error&) {
    return 0;
  }
  const std::size_t n = a.count();
  if (a.data_offset + a.data.size() != size || n * a.element_size() != a.data.size()) std::abort();
  if (n != 0) {
    (void)a.at(0);
    (void)a.at(n - 1);
  }
  if (a.to_float(255.0f).size() != n) std::abort();
  if (a.rank() == 0 || a.shape[0] == 0 || a.shape[0] > 4096) return 0;
  const std::size_t samples = a.shape[0];
  const gd::npy_array labels = made("labels.npy", gd::npy_dtype::int32, {samples});
  const gd::npy_array features = made("features.npy", gd::npy_dtype::float32, {samples, 2});
  for (std::size_t classes : {std::size_t{0}, std::size_t{3}}) {
    try {
      check(gd::from_npy(a, labels, classes), samples);  // a as features
    } catch (const graft::data_error&) {
    }
    try {
      check(gd::from_npy(features, a, classes), samples);  // a as labels
    } catch (const graft::data_error&) {
    }
  }
  try {
    check(gd::from_npy_regression(features, a), samples);  // a as targets
  } catch (const graft::data_error&) {
  }
  return 0;
}
