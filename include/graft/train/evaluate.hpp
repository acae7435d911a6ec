// evaluate(net, data, batch<N>): loss, accuracy and confusion matrix of a model on a data set,
// through a runner (inference mode: dropout off, batch norm on its running statistics).
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <numeric>
#include <ostream>
#include <stdexcept>
#include <vector>

#include "graft/model/runner.hpp"
#include "graft/train/batches.hpp"
#include "graft/train/collective.hpp"
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

namespace detail {
/// The sums of an evaluation over the ranks of comm: each rank holds its batches' figures (loss
/// totals in batch order, counts); the loss sum continues from rank to rank in rank order, so it is
/// bitwise the one process's left-to-right sum; the last rank sends the totals to every rank.
inline void reduce_evaluation(collective& comm, evaluation& ev, const std::vector<double>& totals,
                              std::size_t& correct, double& total) {
  constexpr auto none = static_cast<std::uint64_t>(-1);
  // this rank's counts: correct, nonfinite, first_nonfinite (none), then the confusion matrix
  std::vector<std::uint64_t> mine(3 + ev.confusion.size());
  mine[0] = correct;
  mine[1] = ev.nonfinite;
  mine[2] = ev.nonfinite > 0 ? ev.first_nonfinite : none;
  std::copy(ev.confusion.begin(), ev.confusion.end(), mine.begin() + 3);
  std::vector<std::uint64_t> counts(mine.size(), 0);  // the running value, with total
  counts[2] = none;
  total = 0;
  combine_in_rank_order(
      comm,
      [&](std::size_t from) {
        comm.receive(from, &total, sizeof total);
        comm.receive(from, counts.data(), counts.size() * sizeof(std::uint64_t));
      },
      [&] {
        for (const double t : totals) total += t;  // batch order, continuing the earlier ranks'
        for (std::size_t i = 0; i < counts.size(); ++i)
          if (i != 2) counts[i] += mine[i];
        if (counts[2] == none) counts[2] = mine[2];  // earlier ranks hold the earlier samples
      },
      [&](std::size_t to) {
        comm.send(to, &total, sizeof total);
        comm.send(to, counts.data(), counts.size() * sizeof(std::uint64_t));
      });
  correct = static_cast<std::size_t>(counts[0]);
  ev.nonfinite = static_cast<std::size_t>(counts[1]);
  ev.first_nonfinite = counts[2] == none ? 0 : static_cast<std::size_t>(counts[2]);
  std::copy(counts.begin() + 3, counts.end(), ev.confusion.begin());
}
}  // namespace detail

/// Options: batch<N> (rows per forward pass, 256 by default); distributed{&comm}: every rank of
/// comm calls evaluate on the same data set, evaluates its block of the batches, and every rank
/// returns the whole data set's evaluation, bitwise the one of a single process.
template <class M, class... Options>
evaluation evaluate(const M& net, const data::dataset& ds, Options... options) {
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
  collective* comm = nullptr;
  if constexpr (detail::has_option<distributed, Options...>)
    comm = detail::option_or(distributed{}, options...).comm;
  const std::size_t n_batches = (ds.size() + B - 1) / B;
  std::size_t first_batch = 0, end_batch = n_batches;  // this rank's batches
  if (comm != nullptr && comm->size() > 1) {
    first_batch = comm->rank() * n_batches / comm->size();
    end_batch = (comm->rank() + 1) * n_batches / comm->size();
  }
  double total = 0;
  std::vector<double> totals;  // per batch, distributed only
  std::size_t correct = 0;
  for (std::size_t b = first_batch; b < end_batch; ++b) {
    const std::size_t start = b * B;
    const std::size_t rows = std::min(B, ds.size() - start);
    std::iota(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(rows), start);
    detail::gather<M>(ds, idx.data(), rows, r->input(), targets.data());
    const T* z = r->forward(net, rows);
    const double t = loss::evaluate(z, targets.data(), rows, static_cast<T*>(nullptr), 0.0);
    if (comm != nullptr && comm->size() > 1)
      totals.push_back(t);
    else
      total += t;
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
  if (comm != nullptr && comm->size() > 1)
    detail::reduce_evaluation(*comm, ev, totals, correct, total);
  ev.loss = ev.nonfinite > 0 ? std::nan("") : total / static_cast<double>(ds.size());
  ev.accuracy = M::head_type::is_classifier
                    ? static_cast<double>(correct) / static_cast<double>(ds.size())
                    : std::nan("");
  return ev;
}

GRAFT_END_NAMESPACE
