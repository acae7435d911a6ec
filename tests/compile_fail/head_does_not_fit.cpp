// Must not compile: the backbone ends in a 6x4x4 image, and classifier<10> needs a flat vector.
#include <graft/layers/activations.hpp>
#include <graft/model/model.hpp>
namespace g = graft;
using backbone = g::stack<g::input<6, 4, 4>, g::relu, g::tanh, g::sigmoid>;
using net = g::model<backbone, g::classifier<10>>;
int main() { return static_cast<int>(net::parameter_count); }
