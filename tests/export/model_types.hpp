// The model types of the export round trip (tests/export/), from graft/inference.hpp alone so
// that freestanding programs (tests/freestanding/footprint.cpp) use them too.
#pragma once
#include <graft/inference.hpp>

namespace export_models {
namespace g = graft;
/// Every parametric layer kind: convolutions (direct and im2col, strided, without bias), batch
/// norm (running statistics as buffers), a residual block with an inferred projection, dense.
using cnn_t = g::model<
    g::stack<g::input<3, 12, 12>, g::conv2d<4, 3, g::pad<1>>, g::batch_norm, g::relu,
             g::residual<g::conv2d<8, 3, g::pad<1>, g::stride<2>, g::no_bias>, g::batch_norm,
                         g::relu, g::conv2d<8, 3, g::pad<1>, g::no_bias>, g::batch_norm>,
             g::relu, g::max_pool<2>, g::flatten, g::dense<16>, g::relu>,
    g::classifier<3>>;
/// An MLP with an activation that does not fuse (tanh) and one that does (relu).
using mlp_t = g::model<
    g::stack<g::input<3, 12, 12>, g::flatten, g::dense<32>, g::tanh, g::dense<16>, g::relu>,
    g::classifier<3>>;

}  // namespace export_models
