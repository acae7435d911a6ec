// From a data set to a trainer's or runner's rows: the check that a data set fits a model (sample
// shape, label range, target size) and the gathering of rows by index.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "graft/data/dataset.hpp"
#include "graft/layers/embedding.hpp"
#include "graft/model/model.hpp"

GRAFT_BEGIN_NAMESPACE
namespace detail {
inline std::string shape_string(const std::vector<std::size_t>& dims) {
  return dims_string(dims.data(), dims.size());
}
inline std::vector<std::size_t> squeeze_leading_ones(std::vector<std::size_t> d) {
  while (d.size() > 1 && d.front() == 1) d.erase(d.begin());
  return d;
}

/// Refuses a dataset that does not fit the model: sample shape, label range, target size.
/// A float as text for messages: an integer without decimals, else the shortest round trip.
inline std::string float_text(float v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15F)
    return std::to_string(static_cast<long long>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

template <class M> void check_dataset(const data::dataset& ds) {
  using In = typename M::input_shape;
  const std::vector<std::size_t> model_dims(In::dims.begin(), In::dims.end());
  if (squeeze_leading_ones(ds.sample_shape) != squeeze_leading_ones(model_dims))
    throw std::invalid_argument(
        "graft: dataset '" + ds.name + "' has samples of shape " + shape_string(ds.sample_shape) +
        " (" + std::to_string(ds.sample_size()) + " values), but the model's input is " +
        In::str() + " (" + std::to_string(In::size) + " values)");
  if constexpr (requires { typename M::input_type; }) {
    using I = typename M::input_type;
    if constexpr (is_token_input_v<I>) {
      // token ids: integers in [0, V), the pad id 0 only at the end of a sample
      constexpr std::size_t n = I::length;
      for (std::size_t i = 0; i < ds.size(); ++i) {
        std::size_t pad_at = n;
        for (std::size_t k = 0; k < n; ++k) {
          const float v = ds.features[i * n + k];
          auto where = [&] {
            return "graft: dataset '" + ds.name + "': sample " + std::to_string(i) + ", position " +
                   std::to_string(k) + ": ";
          };
          if (!(v >= 0.0F && v < static_cast<float>(I::vocabulary)) || v != std::floor(v))
            throw std::invalid_argument(where() + float_text(v) + " is not a token id of " +
                                        I::name() + " (0.." + std::to_string(I::vocabulary - 1) +
                                        ")");
          if (v == 0.0F && pad_at == n) pad_at = k;
          if (v != 0.0F && pad_at < n)
            throw std::invalid_argument(where() + "id " + float_text(v) +
                                        " after the padding that starts at position " +
                                        std::to_string(pad_at) + " (pad id 0 only at the end)");
        }
      }
    }
  }
  using H = typename M::head_type;
  if constexpr (H::is_classifier) {
    if (ds.labels.size() != ds.size())
      throw std::invalid_argument("graft: dataset '" + ds.name + "' has " +
                                  std::to_string(ds.labels.size()) + " labels for " +
                                  std::to_string(ds.size()) + " samples");
    for (std::size_t i = 0; i < ds.labels.size(); ++i)
      if (ds.labels[i] < 0 || static_cast<std::size_t>(ds.labels[i]) >= H::classes)
        throw std::invalid_argument(
            "graft: dataset '" + ds.name + "': sample " + std::to_string(i) + " has label " +
            std::to_string(ds.labels[i]) + ", but " + H::name() + " expects labels 0.." +
            std::to_string(H::classes - 1) + " (use only_classes(...).relabeled() to map classes)");
  } else {
    if (ds.target_size != M::loss::target_size || ds.targets.size() != ds.size() * ds.target_size)
      throw std::invalid_argument("graft: dataset '" + ds.name + "' has " +
                                  std::to_string(ds.target_size) + " targets per sample, but " +
                                  H::name() + " expects " + std::to_string(M::loss::target_size));
  }
}

/// Data tokenized with a vocabulary (ds.vocabulary, its fingerprint) fits a model only if the
/// model's embedding holds that vocabulary: std::invalid_argument naming both otherwise.
template <class M> void check_vocabulary(const M& net, const data::dataset& ds) {
  if (ds.vocabulary == 0) return;
  with_first_vocabulary_layer(net, [&](const auto& l) {
    using Ly = std::remove_cvref_t<decltype(l)>;
    const std::size_t n = vocabulary_size(l.symbols.data(), Ly::vocabulary);
    if (n == 0)
      throw std::invalid_argument(
          "graft: dataset '" + ds.name +
          "' was tokenized with a vocabulary, but the model's is unassigned: assign it before "
          "training (v.assign_to(net)), so that it is saved with the weights");
    const std::uint64_t fp = vocabulary_fnv1a(l.symbols.data(), n);
    if (fp != ds.vocabulary) {
      char buf[80];
      std::snprintf(buf, sizeof buf, "%016llx, the model's %016llx",
                    static_cast<unsigned long long>(ds.vocabulary),
                    static_cast<unsigned long long>(fp));
      throw std::invalid_argument("graft: dataset '" + ds.name +
                                  "' was tokenized with another vocabulary than the model's "
                                  "(fingerprints: the dataset's " +
                                  buf + "); tokenize with char_vocabulary::of(net)");
    }
  });
}

/// Copies the targets of rows idx[0..rows) into tgt.
template <class M, class Target> void gather_targets(const data::dataset& ds,
                                                     const std::size_t* idx, std::size_t rows,
                                                     Target* tgt) {
  for (std::size_t r = 0; r < rows; ++r) {
    if constexpr (M::head_type::is_classifier) {
      tgt[r] = ds.labels[idx[r]];
    } else {
      constexpr std::size_t k = M::loss::target_size;
      const float* t = ds.target(idx[r]);
      std::copy(t, t + k, tgt + r * k);
    }
  }
}

/// Copies rows idx[0..rows) of the dataset into the input buffer and their targets into tgt.
template <class M, class T, class Target> void gather(const data::dataset& ds,
                                                      const std::size_t* idx, std::size_t rows,
                                                      T* input, Target* tgt) {
  constexpr std::size_t n = M::input_shape::size;
  for (std::size_t r = 0; r < rows; ++r) {
    const float* s = ds.sample(idx[r]);
    std::copy(s, s + n, input + r * n);
  }
  gather_targets<M>(ds, idx, rows, tgt);
}

}  // namespace detail
GRAFT_END_NAMESPACE
