// The small model the weight-file fuzz target loads into (tests/fuzz/fuzz_weights.cpp) and
// make_seeds.cpp saves as seeds: a dense layer, an activation, batch norm (saved buffers) and a
// classifier head; and models the seeds of other files come from (another head, for
// load_backbone(); another backbone; double scalars).
#pragma once
#include <cstddef>
#include <vector>

#include "graft/io/weights.hpp"
#include "graft/layers/activations.hpp"
#include "graft/layers/batch_norm.hpp"
#include "graft/layers/dense.hpp"
#include "graft/layers/stack.hpp"
#include "graft/model/heads.hpp"
#include "graft/model/model.hpp"

namespace graft_fuzz {
using backbone = graft::stack<graft::input<1, 4, 4>, graft::flatten, graft::dense<8>, graft::relu,
                              graft::batch_norm>;
using net_t = graft::model<backbone, graft::classifier<3>>;
using other_head_t = graft::model<backbone, graft::classifier<5>>;
using double_net_t = graft::model<backbone, graft::classifier<3>, double>;
using other_backbone_t =
    graft::model<graft::stack<graft::input<1, 4, 4>, graft::flatten, graft::dense<6>, graft::relu>,
                 graft::classifier<3>>;

/// The saved tensors of net (parameters and buffers, layer by layer, as a weight file orders
/// them), as raw bytes; head: only the head's, otherwise only the backbone's.
inline std::vector<unsigned char> saved_bytes(const net_t& net, bool head) {
  std::vector<unsigned char> out;
  net.for_each_saved([&](std::size_t layer, const auto* data, std::size_t size) {
    if ((layer == net_t::head_index) != head) return;
    const auto* p = reinterpret_cast<const unsigned char*>(data);
    out.insert(out.end(), p, p + size * sizeof(*data));
  });
  return out;
}
}  // namespace graft_fuzz
