// Transformer encoder layers as groups of residual blocks (docs/design/sequence_models.md §3):
//
//   post_norm_encoder<D, H, FF, Drop>   BERT, nn.TransformerEncoderLayer(norm_first=false):
//       x = LN(x + Drop(MHA(x)));  x = LN(x + Drop(W2 Drop(gelu(W1 x))))
//   pre_norm_encoder<D, H, FF, Drop>    nn.TransformerEncoderLayer(norm_first=true):
//       x = x + Drop(MHA(LN(x)));  x = x + Drop(W2 Drop(gelu(W1 LN(x))))
//       (a stack of them ends with one more layer_norm, written by the user)
//
// Each is a group<...> (layers/stack.hpp): spliced into the stack as two residual blocks and, for
// post-norm, two layer norms, so each piece is a model layer of its own (policies see them, the
// feature cache can stop between them). D (the model width) is explicit because a spec cannot see
// its input width; a wrong D is reported by residual's residual_shapes_cannot_be_added. Drop is a
// percentage; 0 leaves the dropout layers out (no random state: the block then also trains on a
// device). Attention options (causal) follow: post_norm_encoder<64, 4, 128, 10, causal>. The
// feed-forward layers are per_position<dense<FF>> and per_position<dense<D>> (nn.Linear). LoRA
// on the feed-forward layers: the _lora variants take the rank R.
#pragma once
#include <cstddef>
#include <type_traits>

#include "graft/layers/activations.hpp"
#include "graft/layers/attention.hpp"
#include "graft/layers/dense.hpp"
#include "graft/layers/dropout.hpp"
#include "graft/layers/layer_norm.hpp"
#include "graft/layers/lora.hpp"
#include "graft/layers/per_position.hpp"
#include "graft/layers/residual.hpp"
#include "graft/layers/stack.hpp"

GRAFT_BEGIN_NAMESPACE

/// dropout<P> (percent), or nothing for P = 0.
template <std::size_t P> using maybe_dropout = std::conditional_t<P == 0, group<>, dropout<P>>;

/// The position-wise feed-forward network of an encoder layer: W2 Drop(gelu(W1 x)).
template <std::size_t D, std::size_t FF, std::size_t Drop, class Dense1 = dense<FF>,
          class Dense2 = dense<D>>
using encoder_ffn = group<per_position<Dense1>, gelu, maybe_dropout<Drop>, per_position<Dense2>>;

/// BERT's encoder layer (post-norm); see the file comment.
template <std::size_t D, std::size_t H, std::size_t FF, std::size_t Drop = 10,
          class... AttentionOptions>
using post_norm_encoder =
    group<residual<multi_head_attention<H, AttentionOptions...>, maybe_dropout<Drop>>, layer_norm,
          residual<encoder_ffn<D, FF, Drop>, maybe_dropout<Drop>>, layer_norm>;

/// The pre-norm encoder layer; see the file comment.
template <std::size_t D, std::size_t H, std::size_t FF, std::size_t Drop = 10,
          class... AttentionOptions>
using pre_norm_encoder =
    group<residual<layer_norm, multi_head_attention<H, AttentionOptions...>, maybe_dropout<Drop>>,
          residual<layer_norm, encoder_ffn<D, FF, Drop>, maybe_dropout<Drop>>>;

/// post_norm_encoder with rank-R LoRA adapters on both feed-forward layers.
template <std::size_t D, std::size_t H, std::size_t FF, std::size_t R, std::size_t Drop = 10,
          class... AttentionOptions>
using post_norm_encoder_lora = group<
    residual<multi_head_attention<H, AttentionOptions...>, maybe_dropout<Drop>>, layer_norm,
    residual<encoder_ffn<D, FF, Drop, lora<dense<FF>, R>, lora<dense<D>, R>>, maybe_dropout<Drop>>,
    layer_norm>;

GRAFT_END_NAMESPACE
