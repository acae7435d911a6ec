// Compile stress: a backbone of GRAFT_STRESS_LAYERS layers (dense<16>, relu, dense<16>, ...) in a
// model with a classifier head, and what a user instantiates over it: make_model,
// trainer<M, 4, sgd>::step and runner<M, 1>::forward. stress.cmake compiles it with 300 and 1000
// layers under g++ and clang++ (-fsyntax-only: every template is instantiated) with a template
// and constexpr depth limit far below the layer count, so that anything nesting or recursing over
// the layers (a fold over the stack under clang, a recursive type computation, a recursive
// static_for) fails here instead of in a user's build.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include <graft/graft.hpp>

#ifndef GRAFT_STRESS_LAYERS
#define GRAFT_STRESS_LAYERS 300
#endif

namespace g = graft;

namespace stress {
/// stack<Input, Cycle[0], Cycle[1], ..., Cycle[(N-1) % C]>: N layers repeating Cycle, written out
/// by one flat expansion over an index sequence (no recursive alias).
template <class Input, class Seq, class... Cycle> struct repeat_impl;
template <class Input, std::size_t... I, class... Cycle>
struct repeat_impl<Input, std::index_sequence<I...>, Cycle...> {
  using cycle = g::meta::type_list<Cycle...>;
  using type = g::stack<Input, g::meta::list_element_t<I % sizeof...(Cycle), cycle>...>;
};
template <class Input, std::size_t N, class... Cycle> using repeated_stack =
    typename repeat_impl<Input, std::make_index_sequence<N>, Cycle...>::type;
}  // namespace stress

constexpr std::size_t layers = GRAFT_STRESS_LAYERS;
using backbone = stress::repeated_stack<g::input<16>, layers, g::dense<16>, g::relu>;
using net_t = g::model<backbone, g::classifier<3>>;

static_assert(backbone::layer_count == layers);
static_assert(net_t::layer_count == layers + 1);
static_assert(std::is_same_v<backbone::output_shape, g::shape<16>>);
static_assert(net_t::parameter_count == (layers + 1) / 2 * (16 * 16 + 16) + (16 * 3 + 3));

int main() {
  auto net = g::make_model<net_t>(g::seed{1});

  auto tr = std::make_unique<g::trainer<net_t, 4, g::sgd>>(*net, g::sgd{0.01f});
  for (std::size_t i = 0; i < 4 * 16; ++i) tr->input()[i] = 0.01f * static_cast<float>(i % 7);
  const std::int32_t labels[4] = {0, 1, 2, 0};
  const double loss = tr->step(labels, 4);

  auto run = std::make_unique<g::runner<net_t, 1>>();
  for (std::size_t i = 0; i < 16; ++i) run->input()[i] = 0.5f;
  const float* out = run->forward(*net, 1);
  return loss >= 0.0 && out[0] == out[0] ? 0 : 1;
}
