// Must not compile: dense<10> at layer index 2 gets a 6x4x4 image (no flatten before it).
#include <graft/layers/activations.hpp>
#include <graft/layers/dense.hpp>
#include <graft/layers/stack.hpp>
namespace g = graft;
#ifdef GRAFT_COMPILE_FAIL_CONTROL
using bad = g::stack<g::input<6, 4, 4>, g::relu, g::flatten, g::dense<10>>;
#else
using bad = g::stack<g::input<6, 4, 4>, g::relu, g::tanh, g::dense<10>>;
#endif
int main() { return static_cast<int>(bad::parameter_count); }
