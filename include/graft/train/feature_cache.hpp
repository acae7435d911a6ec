// The feature cache of a frozen prefix: when a freezing policy freezes the layers below
// trainer::lowest_trainable, their output for a sample never changes, so finetune runs them once
// per sample and every step starts at the lowest trainable layer from the cached rows.
#pragma once
#include <algorithm>
#include <cstddef>
#include <numeric>
#include <vector>

#include "graft/data/dataset.hpp"
#include "graft/train/batches.hpp"

GRAFT_BEGIN_NAMESPACE
namespace detail {

template <class Tr> class feature_cache_of {
 public:
  using T = typename Tr::T;
  using M = typename Tr::model_type;
  /// The layer whose input is cached: the lowest trainable layer (0: nothing is frozen below).
  static constexpr std::size_t lowest_trainable =
      Tr::lowest_trainable < M::layer_count ? Tr::lowest_trainable : 0;
  static constexpr std::size_t feature_size = Tr::plan::sizes[lowest_trainable];

  explicit feature_cache_of(bool enabled) : enabled_(lowest_trainable > 0 && enabled) {}
  bool enabled() const noexcept { return enabled_; }
  /// Where a step starts: lowest_trainable with the cache, 0 without.
  std::size_t start_layer() const noexcept { return enabled_ ? lowest_trainable : 0; }

  /// Runs the frozen prefix once over every sample of ds, in order, batch by batch.
  void fill(Tr& t, const data::dataset& ds, typename Tr::target_type* targets) {
    if (!enabled_) return;
    const std::size_t n = ds.size();
    data_.resize(n * feature_size);
    std::vector<std::size_t> idx(Tr::batch);
    for (std::size_t start = 0; start < n; start += Tr::batch) {
      const std::size_t rows = std::min(Tr::batch, n - start);
      std::iota(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(rows), start);
      gather<M>(ds, idx.data(), rows, t.input(), targets);
      t.forward(rows, 0, lowest_trainable);
      std::copy(t.activation(lowest_trainable),
                t.activation(lowest_trainable) + rows * feature_size,
                data_.begin() + static_cast<std::ptrdiff_t>(start * feature_size));
    }
  }
  /// Puts rows idx[0..rows) of the data set where the step starts (and their targets).
  void load(Tr& t, const data::dataset& ds, const std::size_t* idx, std::size_t rows,
            typename Tr::target_type* targets) const {
    if (!enabled_) {
      gather<M>(ds, idx, rows, t.input(), targets);
      return;
    }
    gather_targets<M>(ds, idx, rows, targets);
    if constexpr (Tr::plan::masked) {
      // a token model's masked layers read each sample's length from the ids in input()
      const std::size_t n = Tr::plan::sizes[0];
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t k = 0; k < n; ++k)
          t.input()[r * n + k] = static_cast<T>(ds.features[idx[r] * n + k]);
    }
    T* in = t.activation(lowest_trainable);
    for (std::size_t r = 0; r < rows; ++r)
      std::copy_n(data_.data() + idx[r] * feature_size, feature_size, in + r * feature_size);
  }

 private:
  bool enabled_;
  std::vector<T> data_;
};

}  // namespace detail
GRAFT_END_NAMESPACE
