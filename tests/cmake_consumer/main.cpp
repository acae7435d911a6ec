#include <graft/graft.hpp>
namespace g = graft;
using mlp = g::stack<g::input<4>, g::dense<8>, g::relu>;
using net_t = g::model<mlp, g::classifier<3>>;
static_assert(net_t::parameter_count == 4 * 8 + 8 + 8 * 3 + 3);
int main() {
  auto net = g::make_model<net_t>(g::seed{1});
  g::runner<net_t, 1> r;
  for (int i = 0; i < 4; ++i) r.input()[i] = 0.5f;
  const float* z = r.forward(*net, 1);
  return z[0] == z[0] ? 0 : 1;
}
