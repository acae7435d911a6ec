// evaluate(net, data, batch<N>): loss, accuracy and confusion matrix of a model on a data set,
// through a runner (inference mode: dropout off, batch norm on its running statistics).
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <memory>
#include <numeric>
#include <ostream>
#include <stdexcept>
#include <vector>

#include "graft/model/runner.hpp"
#include "graft/train/batches.hpp"
#include "graft/train/options.hpp"

GRAFT_BEGIN_NAMESPACE

/// Loss, accuracy and confusion matrix of a model on a dataset.
///
/// A sample whose outputs are not all finite (NaN inputs, or a model that overflowed) is flagged,
/// not scored: it counts in `nonfinite`, never as correct and never in the confusion matrix, and
/// `loss` is NaN when there is any. Check `finite()` before trusting the figures.
struct evaluation {
  std::size_t samples = 0;
  double loss = 0;      ///< mean loss (NaN when some output is not finite)
  double accuracy = 0;  ///< classifiers: fraction correct of all samples (NaN for regressors)
  std::size_t classes = 0;
  std::vector<std::size_t> confusion;  ///< classes x classes, row = true class, column = predicted
  std::size_t nonfinite = 0;           ///< samples whose outputs are NaN or infinite
  std::size_t first_nonfinite = 0;     ///< index of the first of them (when nonfinite > 0)
  bool finite() const noexcept { return nonfinite == 0; }
  std::size_t confusion_at(std::size_t truth, std::size_t predicted) const {
    return confusion[truth * classes + predicted];
  }
  friend std::ostream& operator<<(std::ostream& os, const evaluation& e) {
    os << "samples " << e.samples << "  loss " << e.loss;
    if (e.classes > 0) os << "  accuracy " << 100.0 * e.accuracy << "%";
    if (e.nonfinite > 0)
      os << "  NOT FINITE: " << e.nonfinite << " sample(s) with NaN/inf outputs, the first is "
         << e.first_nonfinite;
    return os;
  }
};

/// Options: batch<N> (rows per forward pass, 256 by default).
template <class M, class... Options>
evaluation evaluate(const M& net, const data::dataset& ds, Options...) {
  static_assert(is_model<M>::value, "graft: evaluate(net, ...): net must be a graft::model");
  detail::require_options<detail::evaluate_option, Options...>();
  constexpr std::size_t B = (detail::is_batch<std::decay_t<Options>>::value || ...)
                                ? detail::batch_of<Options...>()
                                : std::size_t{256};
  detail::check_dataset<M>(ds);
  detail::check_vocabulary(net, ds);
  if (ds.size() == 0)
    throw std::invalid_argument("graft: evaluate: dataset '" + ds.name +
                                "' is empty (no loss or accuracy to report)");
  using T = typename M::scalar;
  using loss = typename M::loss;
  constexpr std::size_t out = M::output_shape::size;
  auto r = std::make_unique<runner<M, B>>();
  std::vector<typename loss::target_type> targets(B * loss::target_size);
  std::vector<std::size_t> idx(B);
  evaluation ev;
  ev.samples = ds.size();
  if constexpr (M::head_type::is_classifier) {
    ev.classes = M::head_type::classes;
    ev.confusion.assign(ev.classes * ev.classes, 0);
  }
  double total = 0;
  std::size_t correct = 0;
  for (std::size_t start = 0; start < ds.size(); start += B) {
    const std::size_t rows = std::min(B, ds.size() - start);
    std::iota(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(rows), start);
    detail::gather<M>(ds, idx.data(), rows, r->input(), targets.data());
    const T* z = r->forward(net, rows);
    total += loss::evaluate(z, targets.data(), rows, static_cast<T*>(nullptr), 0.0);
    std::array<bool, B> row_ok{};
    for (std::size_t k = 0; k < rows; ++k) {
      bool ok = true;
      for (std::size_t j = 0; j < out; ++j) ok = ok && std::isfinite(z[k * out + j]);
      row_ok[k] = ok;
      if (!ok && ev.nonfinite++ == 0) ev.first_nonfinite = start + k;
    }
    if constexpr (M::head_type::is_classifier)
      for (std::size_t k = 0; k < rows; ++k) {
        if (!row_ok[k]) continue;
        const T* zr = z + k * out;
        const auto pred = static_cast<std::size_t>(std::max_element(zr, zr + out) - zr);
        const auto truth = static_cast<std::size_t>(targets[k]);
        correct += pred == truth ? 1 : 0;
        ++ev.confusion[truth * ev.classes + pred];
      }
  }
  ev.loss = ev.nonfinite > 0 ? std::nan("") : total / static_cast<double>(ds.size());
  ev.accuracy = M::head_type::is_classifier
                    ? static_cast<double>(correct) / static_cast<double>(ds.size())
                    : std::nan("");
  return ev;
}

GRAFT_END_NAMESPACE
