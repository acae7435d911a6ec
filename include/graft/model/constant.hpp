// constant_model<M>: a model whose parameters and buffers are constant arrays read in place:
// weights compiled into the program (graft::export_header writes them as constexpr arrays, which a
// microcontroller keeps in flash), never copied into RAM. A runner runs it as it runs M itself,
// bitwise the same (every parametric layer's forward is its forward_from on its own tensors).
//
//   #include "mlp_weights.hpp"                          // written by graft::export_header
//   constexpr auto net = mlp_weights::bind<net_t>();    // checked against net_t while compiling
//   graft::runner<net_t, 1> r;                          // RAM: activations + scratch, exactly
//   const float* logits = r.forward(net, 1);
//
// The check: an exported header carries the architecture's signature (the scalar size, the layer
// count, each layer's input and output size, each saved tensor's layer, size and kind); bind
// static_asserts that it is the model type's own. (It cannot tell apart two layers of the same
// shapes and parameters, relu from tanh: the header also carries M::description() and its
// fingerprint, which matches() compares at run time.) Light header: no heap, no exceptions.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

#include "graft/layers/layer.hpp"
#include "graft/meta/pack.hpp"

GRAFT_BEGIN_NAMESPACE

namespace detail {
/// What a weight file, an exported header and a constant_model agree on: per saved tensor (each
/// layer's parameters, then its buffers), its layer, its size and its kind (0 weight, 1 bias,
/// 2 buffer); per layer, its input and output sizes.
template <class M> struct saved_layout {
  static constexpr std::size_t L = M::layer_count;
  static constexpr auto counts = [] {
    std::array<std::array<std::size_t, 2>, L> c{};
    meta::static_for<L>([&](auto i) {
      using Layer = typename M::template layer_type<i>;
      c[i] = {Layer::params.size(), buffer_count_v<Layer>};
    });
    return c;
  }();
  static constexpr std::size_t param_tensors = [] {
    std::size_t n = 0;
    for (const auto& c : counts) n += c[0];
    return n;
  }();
  static constexpr std::size_t buffer_tensors = [] {
    std::size_t n = 0;
    for (const auto& c : counts) n += c[1];
    return n;
  }();
  static constexpr std::size_t tensors = param_tensors + buffer_tensors;
  struct tensor_info {
    std::size_t layer, size, kind;
  };
  static constexpr auto info = [] {
    std::array<tensor_info, tensors> t{};
    std::size_t at = 0;
    meta::static_for<L>([&](auto i) {
      using Layer = typename M::template layer_type<i>;
      for (std::size_t j = 0; j < Layer::params.size(); ++j)
        t[at++] = {i, Layer::params[j].size, Layer::params[j].kind == role::weight ? 0U : 1U};
      if constexpr (buffer_count_v < Layer >> 0)
        for (std::size_t j = 0; j < Layer::buffers.size(); ++j) t[at++] = {i, Layer::buffers[j], 2};
    });
    return t;
  }();
  static constexpr auto layer_sizes = [] {
    std::array<std::array<std::size_t, 2>, L> s{};
    meta::static_for<L>([&](auto i) {
      using Layer = typename M::template layer_type<i>;
      s[i] = {Layer::input_shape::size, Layer::output_shape::size};
    });
    return s;
  }();
};
}  // namespace detail

/// Whether an exported header's signature S (graft::export_header) is that of model type M.
template <class M, class S> constexpr bool signature_matches() noexcept {
  using lay = detail::saved_layout<M>;
  if (S::scalar_bytes != sizeof(typename M::scalar) || S::layer_count != M::layer_count ||
      S::tensor_count != lay::tensors)
    return false;
  for (std::size_t i = 0; i < M::layer_count; ++i)
    if (S::layer_sizes[i][0] != lay::layer_sizes[i][0] ||
        S::layer_sizes[i][1] != lay::layer_sizes[i][1])
      return false;
  for (std::size_t t = 0; t < lay::tensors; ++t)
    if (S::tensor_info[t][0] != lay::info[t].layer || S::tensor_info[t][1] != lay::info[t].size ||
        S::tensor_info[t][2] != lay::info[t].kind)
      return false;
  return true;
}

template <class M> class constant_model {
  using lay = detail::saved_layout<M>;

 public:
  using model_type = M;
  using scalar = typename M::scalar;
  static constexpr std::size_t layer_count = M::layer_count;
  /// Read-only bytes of the arrays it reads (parameters and buffers: flash on a microcontroller).
  static constexpr std::size_t constant_bytes =
      (M::parameter_count + M::buffer_scalars) * sizeof(scalar);

  /// tensors: one pointer per saved tensor, in M::for_each_saved order (each layer's parameters,
  /// then its buffers), each to that tensor's values. S: the exported header's signature, checked
  /// against M while compiling.
  template <class S> static constexpr constant_model bind(const scalar* const* tensors) noexcept {
    static_assert(signature_matches<M, S>(),
                  "graft: these exported weights belong to another model type (the signature in "
                  "the header differs from this model's layers, shapes or tensors)");
    constant_model m;
    std::size_t t = 0, pi = 0, bi = 0;
    for (std::size_t i = 0; i < layer_count; ++i) {
      for (std::size_t j = 0; j < lay::counts[i][0]; ++j) m.params_[pi++] = tensors[t++];
      for (std::size_t j = 0; j < lay::counts[i][1]; ++j) m.buffers_[bi++] = tensors[t++];
    }
    return m;
  }

  /// A constant_model over tables of pointers the caller fills: params (each layer's param(j)
  /// in layer order) and buffers (likewise). The device trainer (train/device.hpp) points the
  /// trainable tensors into RAM and the frozen ones into the constant data.
  static constexpr constant_model of(
      const std::array<const scalar*, lay::param_tensors>& params,
      const std::array<const scalar*, lay::buffer_tensors>& buffers) noexcept {
    constant_model m;
    m.params_ = params;
    m.buffers_ = buffers;
    return m;
  }
  /// Tensors of each kind, over all layers (the sizes of of()'s tables).
  static constexpr std::size_t param_tensors = lay::param_tensors;
  static constexpr std::size_t buffer_tensors = lay::buffer_tensors;
  /// Offset of layer i's first parameter (buffer) in those tables.
  static constexpr std::size_t param_offset(std::size_t i) noexcept { return offsets.params[i]; }
  static constexpr std::size_t buffer_offset(std::size_t i) noexcept { return offsets.buffers[i]; }

  /// Layer i's parameters (p[j] = param(j)'s values) and buffers.
  constexpr const scalar* const* params_of(std::size_t i) const noexcept {
    return params_.data() + offsets.params[i];
  }
  constexpr const scalar* const* buffers_of(std::size_t i) const noexcept {
    return buffers_.data() + offsets.buffers[i];
  }

 private:
  struct offsets_t {
    std::array<std::size_t, layer_count + 1> params{}, buffers{};
  };
  static constexpr offsets_t offsets = [] {
    offsets_t o{};
    for (std::size_t i = 0; i < layer_count; ++i) {
      o.params[i + 1] = o.params[i] + lay::counts[i][0];
      o.buffers[i + 1] = o.buffers[i] + lay::counts[i][1];
    }
    return o;
  }();
  constexpr constant_model() = default;
  std::array<const scalar*, lay::param_tensors> params_{};
  std::array<const scalar*, lay::buffer_tensors> buffers_{};
};

template <class C> struct is_constant_model : std::false_type {};
template <class M> struct is_constant_model<constant_model<M>> : std::true_type {};

GRAFT_END_NAMESPACE
