// Calibration (hosted): runs a float model over a user's samples, in batches, and records the
// range of every activation (the input, then each layer's output). quantize() takes the ranges of
// the tensors the int8 model keeps: the input, and the output of each dense / conv2d group (after
// its folded batch norm and fused relu).
//
//   auto cal = quant::calibrate(net, images, 1000);                          // min / max
//   auto cal = quant::calibrate(net, images, 1000, {.percentile = 99.99});   // clip the tails
//
// With a percentile p < 100, a second pass fills a histogram (bins over [min, max]) per tensor and
// the range becomes [the (100 - p)% quantile, the p% quantile], rounded outward to bin edges. The
// input and the logits keep their min / max (clipping them buys nothing and shifts the argmax).
#pragma once
#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

#include "graft/layers/layer.hpp"
#include "graft/model/model.hpp"

GRAFT_BEGIN_NAMESPACE
namespace quant {

struct calibration_options {
  double percentile = 100.0;  ///< 100: min / max; e.g. 99.99: clip each tail of 0.01%
  std::size_t bins = 2048;    ///< histogram bins per tensor (percentile only)
};

struct tensor_range {
  double min = 0, max = 0;
};

/// Ranges of the activations of a float model: ranges[0] the input, ranges[i + 1] layer i's output.
struct calibration {
  std::vector<tensor_range> ranges;
  std::size_t samples = 0;
};

namespace detail {
/// Runs net's layers one by one over count samples in batches of B rows; calls
/// f(activation index, values, n) for the input and every layer's output of each batch.
template <std::size_t B, class M, class F>
void for_each_activation(const M& net, const float* x, std::size_t count, F&& f) {
  using T = typename M::scalar;
  constexpr std::size_t L = M::layer_count;
  std::size_t widest = M::input_shape::size, ws = 0;
  meta::static_for<L>([&](auto i) {
    using Li = typename M::template layer_type<decltype(i)::value>;
    widest = std::max(widest, Li::output_shape::size);
    ws = std::max(ws, graft::detail::inference_workspace_of<Li>(B));
  });
  std::vector<T> a(B * widest), b(B * widest), w(std::max<std::size_t>(ws, 1));
  for (std::size_t start = 0; start < count; start += B) {
    const std::size_t rows = std::min(B, count - start);
    std::copy(x + start * M::input_shape::size, x + (start + rows) * M::input_shape::size,
              a.begin());
    f(std::size_t{0}, a.data(), rows * M::input_shape::size);
    T* cur = a.data();
    T* next = b.data();
    meta::static_for<L>([&](auto i) {
      using Li = typename M::template layer_type<decltype(i)::value>;
      graft::detail::forward_eval(net.template layer<decltype(i)::value>(), cur, next, rows,
                                  w.data());
      std::swap(cur, next);
      f(decltype(i)::value + 1, static_cast<const T*>(cur), rows * Li::output_shape::size);
    });
  }
}
}  // namespace detail

/// The activation ranges of net over count samples at x (count x input size floats, row-major).
template <class M, std::size_t Batch = 64> calibration calibrate(const M& net, const float* x,
                                                                 std::size_t count,
                                                                 calibration_options opt = {}) {
  static_assert(std::is_same_v<typename M::scalar, float>,
                "graft::quant: calibrate takes a float model");
  constexpr std::size_t L = M::layer_count;
  calibration cal;
  cal.samples = count;
  cal.ranges.assign(
      L + 1, {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()});
  detail::for_each_activation<Batch>(net, x, count,
                                     [&](std::size_t k, const float* v, std::size_t n) {
                                       auto& r = cal.ranges[k];
                                       for (std::size_t i = 0; i < n; ++i) {
                                         r.min = std::min(r.min, static_cast<double>(v[i]));
                                         r.max = std::max(r.max, static_cast<double>(v[i]));
                                       }
                                     });
  for (auto& r : cal.ranges)
    if (!(r.min <= r.max)) r = {0, 0};  // no samples
  if (opt.percentile < 100.0 && count > 0) {
    const std::size_t nb = std::max<std::size_t>(opt.bins, 2);
    std::vector<std::vector<std::size_t>> hist(L + 1, std::vector<std::size_t>(nb, 0));
    detail::for_each_activation<Batch>(
        net, x, count, [&](std::size_t k, const float* v, std::size_t n) {
          const auto& r = cal.ranges[k];
          const double width = (r.max - r.min) / static_cast<double>(nb);
          if (!(width > 0)) return;
          for (std::size_t i = 0; i < n; ++i) {
            auto b = static_cast<std::size_t>((static_cast<double>(v[i]) - r.min) / width);
            hist[k][std::min(b, nb - 1)]++;
          }
        });
    for (std::size_t k = 1; k < L; ++k) {  // not the input (0) nor the logits (L)
      auto& r = cal.ranges[k];
      const double width = (r.max - r.min) / static_cast<double>(nb);
      if (!(width > 0)) continue;
      std::size_t total = 0;
      for (std::size_t c : hist[k]) total += c;
      const auto tail =
          static_cast<std::size_t>(static_cast<double>(total) * (100.0 - opt.percentile) / 100.0);
      std::size_t below = 0, lo = 0, hi = nb - 1;
      while (lo < nb - 1 && below + hist[k][lo] <= tail) below += hist[k][lo++];
      std::size_t above = 0;
      while (hi > lo && above + hist[k][hi] <= tail) above += hist[k][hi--];
      const double new_min = r.min + static_cast<double>(lo) * width;
      const double new_max = r.min + static_cast<double>(hi + 1) * width;
      r = {std::max(r.min, new_min), std::min(r.max, new_max)};
    }
  }
  return cal;
}

}  // namespace quant
GRAFT_END_NAMESPACE
