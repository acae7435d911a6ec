// Must not compile: a user-defined layer (index 1) without backward. The model checks every bound
// layer against the layer contract (layers/concept.hpp) and names the layer and the member.
#include <graft/graft.hpp>
namespace g = graft;

template <class T, class In> struct halve_layer : g::without_parameters<T> {
  using scalar = T;
  using input_shape = In;
  using output_shape = In;
  static std::string name() { return "halve"; }
  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    for (std::size_t i = 0; i < rows * In::size; ++i) y[i] = x[i] / 2;
  }
#ifdef GRAFT_COMPILE_FAIL_CONTROL
  template <bool InputGrad, unsigned> void backward(const T*, const T*, const T* dy, T* dx,
                                                    T* const*, std::size_t rows) const noexcept {
    if constexpr (InputGrad)
      for (std::size_t i = 0; i < rows * In::size; ++i) dx[i] = dy[i] / 2;
  }
#endif
};
struct halve {
  using expects = g::diagnostics::expects_any_shape;
  template <class In> static constexpr bool accepts = true;
  template <class T, class In> using bind = halve_layer<T, In>;
};

using net_t = g::model<g::stack<g::input<4>, g::dense<4>, halve>, g::classifier<2>>;
int main() { return static_cast<int>(net_t::parameter_count); }
