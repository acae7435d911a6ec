// The models of the export round trip (tests/export/): built and trained the same way by the
// generator (gen_weights.cpp, which exports them as headers) and by the test (test_export.cpp,
// which compares the exported constants with them).
#pragma once
#include <memory>

#include <graft/graft.hpp>

#include "model_types.hpp"
#include "support/blobs.hpp"

namespace export_models {
namespace g = graft;
/// The model, initialised from seed 3 and trained one epoch on blobs (batch statistics move).
template <class M> std::unique_ptr<M> trained() {
  auto net = g::make_model<M>(g::seed{3});
  const auto ds = graft_test::blobs(96, {3, 12, 12}, 5);
  g::pretrain(*net, ds, g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::epochs{1}, g::batch<16>,
              g::seed{1}, g::quiet);
  return net;
}
}  // namespace export_models
