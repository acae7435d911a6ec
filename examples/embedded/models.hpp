// The model types of examples/embedded/ and tools/sizes.sh, from graft/inference.hpp alone (so
// that the freestanding programs use them as they are): the README's MLP and LeNet, each with a
// 10-way classifier, and LeNet with a 5-way head (the on-device fine-tuning of finetune.cpp).
#pragma once
#include <graft/inference.hpp>

namespace embedded {
namespace g = graft;
/// The README's MLP 784-256-128 + classifier<10> (examples/pretrain_mlp.cpp): 235,146 parameters.
using mlp_t = g::model<
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>,
    g::classifier<10>>;
/// LeNet-5-like (examples/support/backbones.hpp's lenet) + classifier<10>.
using lenet_t = g::model<g::stack<g::input<1, 28, 28>, g::conv2d<6, 5, g::pad<2>>, g::relu,
                                  g::max_pool<2>, g::conv2d<16, 5>, g::relu, g::max_pool<2>,
                                  g::flatten, g::dense<120>, g::relu, g::dense<84>, g::relu>,
                         g::classifier<10>>;
/// The same LeNet with a new classifier<5>: the model finetune_export attaches after pre-training
/// and finetune.cpp fine-tunes on the device (its backbone is examples/support/backbones.hpp's
/// lenet).
using lenet5_t = g::model<lenet_t::backbone_type, g::classifier<5>>;
static_assert(mlp_t::parameter_count == 235'146);
static_assert(lenet_t::parameter_count == 60'856 + 850);
static_assert(lenet5_t::parameter_count == 60'856 + 425);
}  // namespace embedded
