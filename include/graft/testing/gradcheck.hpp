// graft/testing/gradcheck.hpp: gradient checks by central differences in double precision, for
// graft's own tests and for users who write a layer (README "Writing a layer"). No test framework:
// each check returns a grad_report (how many entries were compared, how many failed, the first
// failure in words); assert on it with whatever framework you use:
//
//   using my_layer = my_affine<4>::bind<double, graft::shape<6>>;   // bind the spec to double
//   const auto rep = graft::testing::check_layer<my_layer>();
//   assert(rep.checked > 0 && rep.failures == 0);                   // rep.first_failure says where
//
// check_layer compares a bound layer's input and parameter gradients with central differences of
// sum(g * forward(x)) for a random g; check_trainer compares the gradients a trainer computed with
// central differences of the model's mean loss. Tolerance: |analytic - numeric| <= 1e-5 + 1e-3
// |numeric| with h = 1e-6. A layer whose input is discrete (token ids: embedding) or that needs
// particular inputs takes a layer_input: how to fill x, and whether x is differentiable.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "graft/layers/layer.hpp"
#include "graft/random/random.hpp"

GRAFT_BEGIN_NAMESPACE
namespace testing {

/// |analytic - numeric| <= 1e-5 + 1e-3 |numeric|  (the project's tolerance).
inline bool close(double analytic, double numeric) {
  return std::abs(analytic - numeric) <= 1e-5 + 1e-3 * std::abs(numeric);
}

struct grad_report {
  std::size_t checked = 0;
  std::size_t failures = 0;
  std::string first_failure;
  void record(bool ok, const std::string& what, double a, double n) {
    ++checked;
    if (!ok && failures++ == 0)
      first_failure = what + ": analytic " + std::to_string(a) + " numeric " + std::to_string(n);
  }
};

/// Values in [-1, -0.1] U [0.1, 1]: far enough from relu's kink for h = 1e-6.
inline void fill_away_from_zero(double* p, std::size_t n, splitmix64& rng) {
  for (std::size_t i = 0; i < n; ++i) {
    const double v = rng.uniform(0.1, 1.0);
    p[i] = rng.uniform01() < 0.5 ? -v : v;
  }
}

/// The input check_layer gives a layer.
struct layer_input {
  /// Fills x (rows x input size values) from rng; empty: fill_away_from_zero.
  std::function<void(double* x, std::size_t n, splitmix64& rng)> fill{};
  /// false for a discrete input (token ids): x is not perturbed, and the analytic input gradient
  /// must be exactly zero (recorded as one check per entry, "not differentiable").
  bool differentiable = true;
  /// The valid length of each of the Rows samples for a masked layer (sequence_use::masked);
  /// empty: every position is valid.
  std::vector<std::size_t> lengths{};
};

/// Checks a bound layer L (scalar double): the loss is sum(g * forward(x)) for a random g; the
/// analytic input gradient and every parameter gradient are compared with central differences.
/// A layer with a workspace (batch norm, residual) runs its training forward in Mode (batch
/// statistics by default, or frozen running statistics); other layers run their evaluation
/// forward. `in` says how x is filled and whether it is differentiable (see layer_input).
template <class L, std::size_t Rows = 3, train_mode Mode = train_mode{}>
grad_report check_layer(std::uint64_t seed = 1, const layer_input& in = {}) {
  using In = typename L::input_shape;
  using Out = typename L::output_shape;
  splitmix64 rng(seed);
  auto layer = std::make_unique<L>();
  layer->init(rng);
  std::vector<double> x(Rows * In::size), y(Rows * Out::size), g(Rows * Out::size),
      dx(Rows * In::size);
  if (in.fill)
    in.fill(x.data(), x.size(), rng);
  else
    fill_away_from_zero(x.data(), x.size(), rng);
  for (auto& v : g) v = rng.uniform(-1.0, 1.0);
  std::vector<std::vector<double>> grads;
  std::vector<double*> gp;
  for (const auto& p : L::params) grads.emplace_back(p.size);
  for (auto& v : grads) gp.push_back(v.data());
  gp.resize(detail::max_params_per_layer, nullptr);
  std::vector<double> ws(detail::training_workspace_of<L>(Rows) + 1);
  if (!in.lengths.empty() && in.lengths.size() != Rows)
    throw std::invalid_argument("check_layer: layer_input::lengths needs one length per row");
  const sequence_mask mask{in.lengths.empty() ? nullptr : in.lengths.data()};
  auto run = [&](double* out) {
    if constexpr (detail::uses_workspace<L>)
      detail::forward_training<Mode>(*layer, x.data(), out, Rows, ws.data(), mask);
    else
      layer->forward(x.data(), out, Rows);
  };
  if (!in.differentiable)  // so that a dx left unwritten fails "must be exactly zero"
    for (auto& v : dx) v = std::numeric_limits<double>::quiet_NaN();
  run(y.data());
  constexpr unsigned all = (1U << L::params.size()) - 1U;
  detail::backward_of<true, all, Mode>(*layer, x.data(), y.data(), g.data(), dx.data(), gp.data(),
                                       Rows, ws.data(), mask);

  auto objective = [&] {
    std::vector<double> yy(Rows * Out::size);
    run(yy.data());
    double s = 0;
    for (std::size_t i = 0; i < yy.size(); ++i) s += g[i] * yy[i];
    return s;
  };
  const double h = 1e-6;
  grad_report rep;
  auto probe = [&](double& v, double analytic, const std::string& what) {
    const double old = v;
    v = old + h;
    const double fp = objective();
    v = old - h;
    const double fm = objective();
    v = old;
    const double numeric = (fp - fm) / (2 * h);
    rep.record(close(analytic, numeric), what, analytic, numeric);
  };
  for (std::size_t i = 0; i < x.size(); ++i)
    if (in.differentiable)
      probe(x[i], dx[i], L::name() + " input[" + std::to_string(i) + "]");
    else
      rep.record(dx[i] == 0.0, L::name() + " input[" + std::to_string(i) + "] (not differentiable)",
                 dx[i], 0.0);
  for (std::size_t j = 0; j < L::params.size(); ++j)
    for (std::size_t i = 0; i < L::params[j].size; ++i)
      probe(layer->param(j)[i], grads[j][i],
            L::name() + " param " + std::to_string(j) + "[" + std::to_string(i) + "]");
  return rep;
}

/// Compares the gradients a trainer computed in its last compute_gradients (on `rows` rows of its
/// input and `targets`) with central differences of the mean loss, parameter by parameter.
/// Frozen tensors have no gradient buffer and are skipped. per_tensor > 0 checks that many
/// entries of each tensor, evenly spaced, first and last included (for full-size models).
template <class Net, class Trainer, class Target>
grad_report check_trainer(Net& net, Trainer& t, const Target* targets, std::size_t rows,
                          std::size_t per_tensor = 0) {
  const double h = 1e-6;
  grad_report rep;
  net.for_each_parameter([&](std::size_t layer, std::size_t j, role, double* p, std::size_t n) {
    const double* grad = t.gradient(layer, j);
    if (grad == nullptr) return;
    const std::size_t count =
        per_tensor == 0 || per_tensor >= n ? n : (per_tensor < 2 ? 2 : per_tensor);
    for (std::size_t c = 0; c < count; ++c) {
      const std::size_t i = count == n ? c : c * (n - 1) / (count - 1);
      const double old = p[i];
      p[i] = old + h;
      t.forward(rows);
      const double fp = t.loss_of_forward(targets, rows);
      p[i] = old - h;
      t.forward(rows);
      const double fm = t.loss_of_forward(targets, rows);
      p[i] = old;
      const double numeric = (fp - fm) / (2 * h);
      rep.record(close(grad[i], numeric),
                 "layer " + std::to_string(layer) + " param " + std::to_string(j) + "[" +
                     std::to_string(i) + "]",
                 grad[i], numeric);
    }
  });
  return rep;
}

}  // namespace testing
GRAFT_END_NAMESPACE
