// Compile-fail case: binding exported weights to another model type stops the build with the
// signature's static_assert (tests/CMakeLists.txt: compile_fail_export_wrong_model).
#include "cnn_weights.hpp"
#include "mlp_weights.hpp"
#include "models.hpp"

#if defined(GRAFT_COMPILE_FAIL_CONTROL)
constexpr auto net = mlp_weights::bind<export_models::mlp_t>();
#else
constexpr auto net = mlp_weights::bind<export_models::cnn_t>();
#endif
int main() { return net.params_of(0) != nullptr ? 0 : 1; }
