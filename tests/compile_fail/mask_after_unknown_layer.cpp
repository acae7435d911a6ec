// Must not compile: in a token model the time pool (index 2, masked: it reads each sample's
// length) comes after a user layer (index 1) that declares no sequence use, so the lengths of the
// token ids cannot reach the pool. The runner's plan names both layers. The control declares the
// user layer position-wise and compiles.
#include <graft/graft.hpp>
namespace g = graft;

template <class T, class In> struct shift_layer : g::without_parameters<T> {
  using scalar = T;
  using input_shape = In;
  using output_shape = In;
#ifdef GRAFT_COMPILE_FAIL_CONTROL
  static constexpr g::sequence_use sequence = g::sequence_use::positionwise;
#endif
  static std::string name() { return "shift"; }
  void forward(const T* x, T* y, std::size_t rows) const noexcept {
    for (std::size_t i = 0; i < rows * In::size; ++i) y[i] = x[i] + 1;
  }
  template <bool InputGrad, unsigned> void backward(const T*, const T*, const T* dy, T* dx,
                                                    T* const*, std::size_t rows) const noexcept {
    if constexpr (InputGrad)
      for (std::size_t i = 0; i < rows * In::size; ++i) dx[i] = dy[i];
  }
};
struct shift {
  using expects = g::diagnostics::expects_any_shape;
  template <class In> static constexpr bool accepts = true;
  template <class T, class In> using bind = shift_layer<T, In>;
};

using net_t =
    g::model<g::stack<g::input_tokens<6, 9>, g::embedding<9, 4>, shift, g::global_max_pool_time>,
             g::classifier<2>>;
int main() {
  static g::runner<net_t, 1> r;
  return static_cast<int>(r.ram_bytes);
}
