// The image backbones the examples and benchmarks share, for 1 x 28 x 28 inputs.
#pragma once
#include <graft/graft.hpp>

namespace backbones {
namespace g = graft;

/// LeNet-5-like: 60,856 parameters.
using lenet = g::stack<g::input<1, 28, 28>, g::conv2d<6, 5, g::pad<2>>, g::relu, g::max_pool<2>,
                       g::conv2d<16, 5>, g::relu, g::max_pool<2>, g::flatten, g::dense<120>,
                       g::relu, g::dense<84>, g::relu>;
static_assert(lenet::parameter_count == 60'856);

/// A ResNet basic block: two 3x3 convolutions with batch norm; the first may stride, and then a
/// 1x1 projection (with batch norm) is inferred for the shortcut. ReLU follows it in the stack.
template <std::size_t F, std::size_t Stride = 1> using basic_block =
    g::residual<g::conv2d<F, 3, g::pad<1>, g::stride<Stride>, g::no_bias>, g::batch_norm, g::relu,
                g::conv2d<F, 3, g::pad<1>, g::no_bias>, g::batch_norm>;

/// A small ResNet for 28 x 28: a 3x3 stem with max-pooling to 14 x 14, then three stages of one
/// basic block each (16 channels at 14 x 14, 32 at 7 x 7, 64 at 4 x 4) and global average pooling.
using resnet = g::stack<g::input<1, 28, 28>, g::conv2d<16, 3, g::pad<1>, g::no_bias>, g::batch_norm,
                        g::relu, g::max_pool<2>, basic_block<16>, g::relu, basic_block<32, 2>,
                        g::relu, basic_block<64, 2>, g::relu, g::global_avg_pool>;
static_assert(std::is_same_v<resnet::output_shape, g::shape<64>>);
}  // namespace backbones
