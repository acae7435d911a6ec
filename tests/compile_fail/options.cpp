// Must not compile (one mistake per GRAFT_CF_CASE): arguments of pretrain / finetune / lp_ft /
// evaluate that are not options of the call, or options given twice. With
// GRAFT_COMPILE_FAIL_CONTROL the same calls with the mistakes fixed compile (tests/CMakeLists.txt
// builds both).
#include <graft/graft.hpp>
namespace g = graft;
using net_t = g::model<g::stack<g::input<4>, g::dense<4>, g::relu>, g::classifier<2>>;

void calls(net_t& net, const g::data::dataset& ds) {
#if defined(GRAFT_COMPILE_FAIL_CONTROL)
  g::pretrain(net, ds, g::sgd{}, g::epochs{1}, g::batch<64>);
  g::lp_ft(net, ds, g::sgd{}, g::sgd{}, g::probe_steps{150}, g::full_steps{150}, g::seed{7});
  (void)g::evaluate(net, ds, g::batch<32>);
#elif GRAFT_CF_CASE == 1  // a bare 64 and a second optimizer were silently dropped
  g::pretrain(net, ds, g::sgd{}, g::epochs{1}, 64);
#elif GRAFT_CF_CASE == 2
  g::pretrain(net, ds, g::sgd{}, g::epochs{1}, g::adam{});
#elif GRAFT_CF_CASE == 3  // "last wins" trained 14 steps
  g::lp_ft(net, ds, g::sgd{}, g::sgd{}, g::probe_steps{150}, g::full_steps{150}, g::steps{7});
#elif GRAFT_CF_CASE == 4
  g::finetune<g::freeze::backbone>(net, ds, g::sgd{}, g::steps{10}, g::steps{20});
#elif GRAFT_CF_CASE == 5
  g::pretrain(net, ds, g::sgd{}, g::epochs{1}, g::schedule::cosine{}, g::schedule::constant{});
#elif GRAFT_CF_CASE == 6
  (void)g::evaluate(net, ds, g::seed{1});
#endif
}
int main() {}
