// Must not compile: the block maps 8 features to 5, and no 1x1 strided projection can bring a
// flat 8-vector to 5 features, so block(x) + x has no meaning.
#include <graft/layers/activations.hpp>
#include <graft/layers/dense.hpp>
#include <graft/layers/residual.hpp>
#include <graft/model/model.hpp>
namespace g = graft;
using backbone = g::stack<g::input<8>, g::dense<8>, g::residual<g::dense<5>, g::relu>>;
using net = g::model<backbone, g::classifier<3>>;
int main() { return static_cast<int>(net::parameter_count); }
