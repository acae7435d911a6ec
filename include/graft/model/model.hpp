// model<Backbone, Head, T>: parameters only (no activations, no optimizer state): what a model
// costs at inference is its parameters plus the buffers of whoever runs it. make_model allocates
// it on the heap so that a large model never sits on the stack; static storage works too.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "graft/layers/concept.hpp"
#include "graft/layers/stack.hpp"
#include "graft/model/heads.hpp"

GRAFT_BEGIN_NAMESPACE

namespace detail {
template <class Backbone, class Head, bool Ok = Backbone::valid> struct head_binding {
  using type = dense_layer<float, 1, 1, init::pytorch>;  // backbone already diagnosed
};
template <class Backbone, class Head> struct head_binding<Backbone, Head, true> {
  using got = typename Backbone::output_shape;
  static constexpr bool diagnose() {
    if constexpr (!Head::template accepts<got>)
      return sizeof(error::head_input_mismatch<layer_index<Backbone::layer_count>, Head,
                                               typename Head::expects, got>) == 0;
    else
      return true;
  }
  static constexpr bool ok = diagnose();
  using type = std::conditional_t<ok, got, shape<got::size>>;
};
}  // namespace detail

template <class Backbone, class H, class T = float> class model {
  static_assert(is_stack<Backbone>::value,
                "graft: model<Backbone, Head>: Backbone must be a stack<...>");
  static_assert(Head<H>,
                "graft: model<Backbone, Head>: Head must be a head such as classifier<10>");
  static_assert(std::is_floating_point_v<T>, "graft: the scalar type must be float or double");

 public:
  using backbone_type = Backbone;
  using head_type = H;
  using scalar = T;
  using input_shape = typename Backbone::input_shape;
  /// input<...> or input_tokens<L, V> (a token model: masked layers see each sample's length).
  using input_type = typename Backbone::input_type;
  using feature_shape = typename detail::head_binding<Backbone, H>::type;
  using backbone_layers = typename Backbone::template layers<T>;
  using head_layer = typename H::layer_spec::template bind<T, feature_shape>;
  using output_shape = typename head_layer::output_shape;
  using loss = typename H::loss;

  /// Layers in order: the backbone's, then the head's dense layer (index backbone_layer_count).
  static constexpr std::size_t backbone_layer_count = Backbone::layer_count;
  static constexpr std::size_t layer_count = backbone_layer_count + 1;
  static constexpr std::size_t head_index = backbone_layer_count;

  static constexpr std::size_t parameter_count =
      Backbone::template parameter_count_of<T> + head_layer::parameter_count;
  static constexpr std::size_t parameter_bytes = parameter_count * sizeof(T);

  template <std::size_t I> using layer_type = std::conditional_t<
      (I < backbone_layer_count),
      typename backbone_layers::template type<(I < backbone_layer_count ? I : 0)>, head_layer>;

  /// Every bound layer fulfils the layer contract (layers/concept.hpp); the first that does not
  /// stops the build with error::layer_lacks_member naming its index and the member it lacks.
  static constexpr bool layers_complete = []<std::size_t... I>(std::index_sequence<I...>) {
    return meta::all_v<detail::check_bound_layer<I, layer_type<I>>()...>;  // flat: no fold
  }
  (std::make_index_sequence<layer_count>{});
  static_assert(layers_complete || true);  // evaluates the check: one error, named above

  template <std::size_t I> auto& layer() noexcept {
    static_assert(I < layer_count, "graft: layer index out of range");
    if constexpr (I < backbone_layer_count)
      return backbone_.template get<I>();
    else
      return head_;
  }
  template <std::size_t I> const auto& layer() const noexcept {
    static_assert(I < layer_count, "graft: layer index out of range");
    if constexpr (I < backbone_layer_count)
      return backbone_.template get<I>();
    else
      return head_;
  }
  head_layer& head() noexcept { return head_; }
  const head_layer& head() const noexcept { return head_; }

  /// Calls f(layer_index_constant, layer) for every layer, backbone first.
  template <class F> void for_each_layer(F&& f) {
    meta::static_for<layer_count>([&](auto i) { f(i, layer<decltype(i)::value>()); });
  }
  template <class F> void for_each_layer(F&& f) const {
    meta::static_for<layer_count>([&](auto i) { f(i, layer<decltype(i)::value>()); });
  }

  /// Calls f(layer_index, param_index, role, T* data, size) for every parameter tensor.
  template <class F> void for_each_parameter(F&& f) {
    for_each_layer([&](auto i, auto& l) {
      using L = std::remove_cvref_t<decltype(l)>;
      for (std::size_t j = 0; j < L::params.size(); ++j)
        f(decltype(i)::value, j, L::params[j].kind, l.param(j), L::params[j].size);
    });
  }
  template <class F> void for_each_parameter(F&& f) const {
    for_each_layer([&](auto i, const auto& l) {
      using L = std::remove_cvref_t<decltype(l)>;
      for (std::size_t j = 0; j < L::params.size(); ++j)
        f(decltype(i)::value, j, L::params[j].kind, l.param(j), L::params[j].size);
    });
  }

  /// Calls f(layer_index, T* data, size) for every tensor a weight file holds: each layer's
  /// parameters, then its buffers (batch norm's running statistics: saved, never trained).
  template <class F> void for_each_saved(F&& f) { saved_impl(*this, f); }
  template <class F> void for_each_saved(F&& f) const { saved_impl(*this, f); }
  /// Scalars of the buffers (state that is saved but not trained).
  static constexpr std::size_t buffer_scalars = [] {
    std::size_t n = 0;
    meta::static_for<layer_count>([&](auto i) { n += detail::buffer_scalars_v<layer_type<i>>; });
    return n;
  }();

  /// The random stream of the head (layer i of the backbone draws from stream i): far from any
  /// backbone index, so that a head never shares a stream with a layer.
  static constexpr std::uint64_t head_stream = 0xEAD;

  /// Initialises every layer; layer i draws from its own stream of the seed, so the backbone's
  /// initial weights do not depend on the head, and a head's do not depend on the backbone.
  void initialize(seed s) {
    for_each_layer([&](auto i, auto& l) {
      auto rng = splitmix64::stream(
          s, decltype(i)::value == head_index ? head_stream : decltype(i)::value);
      l.init(rng);
    });
  }
  void initialize_head(seed s) {
    auto rng = splitmix64::stream(s, head_stream);
    head_.init(rng);
  }

  /// Architecture description: layer names and shapes, used for fingerprints and messages.
  static std::string backbone_description() {
    std::string s;
    if constexpr (is_token_input_v<input_type>)
      s = input_type::name();  // token ids mean something else than numbers: other weight files
    else
      s = "input<" + input_shape::str() + ">";
    meta::static_for<backbone_layer_count>([&](auto i) {
      using L = layer_type<decltype(i)::value>;
      // appended piece by piece: g++ 12 warns falsely (-Wrestrict, aarch64 -O3) on " " + string&&
      s += ' ';
      s += L::name();
      s += ':';
      s += L::output_shape::str();
    });
    return s;
  }
  /// What the parameters' meaning depends on besides the architecture: the layers' states that
  /// say so (an embedding's assigned vocabulary), "layer i: ..." joined by "; ", "" when none.
  /// Saved as a second line of the backbone description, so it is part of the weight file's
  /// fingerprint (io/weights.hpp).
  std::string state_description() const {
    std::string s;
    meta::static_for<backbone_layer_count>([&](auto i) {
      if constexpr (requires { layer<i>().state_description(); }) {
        const std::string d = layer<i>().state_description();
        if (d.empty()) return;
        if (!s.empty()) s += "; ";
        s += "layer " + std::to_string(i) + ": " + d;
      }
    });
    return s;
  }
  static std::string head_description() {
    return H::name() + ":" + feature_shape::str() + "->" + output_shape::str();
  }
  static std::string description() { return backbone_description() + " | " + head_description(); }

  backbone_layers& backbone() noexcept { return backbone_; }
  const backbone_layers& backbone() const noexcept { return backbone_; }

 private:
  template <class Self, class F> static void saved_impl(Self& self, F& f) {
    self.for_each_layer([&](auto i, auto& l) {
      using L = std::remove_cvref_t<decltype(l)>;
      for (std::size_t j = 0; j < L::params.size(); ++j)
        f(decltype(i)::value, l.param(j), L::params[j].size);
      if constexpr (detail::buffer_count_v < L >> 0)
        for (std::size_t j = 0; j < L::buffers.size(); ++j)
          f(decltype(i)::value, l.buffer(j), L::buffers[j]);
    });
  }

  backbone_layers backbone_;
  head_layer head_;
};

template <class M> struct is_model : std::false_type {};
template <class B, class H, class T> struct is_model<model<B, H, T>> : std::true_type {};
template <class M>
concept Model = is_model<std::remove_cvref_t<M>>::value;

/// Allocates a model (aligned, on the heap) and initialises it from the seed.
template <class M> std::unique_ptr<M> make_model(seed s = {}) {
  static_assert(is_model<M>::value, "graft: make_model<M>: M must be a graft::model<...>");
  auto m = std::make_unique<M>();
  m->initialize(s);
  return m;
}

/// A model with net's backbone weights and a freshly initialised NewHead (seeded). The old model
/// is consumed; nothing of the backbone is retyped or re-declared.
template <class NewHead, class B, class H, class T>
std::unique_ptr<model<B, NewHead, T>> attach(std::unique_ptr<model<B, H, T>> net, seed s = {}) {
  auto out = std::make_unique<model<B, NewHead, T>>();
  out->backbone() = net->backbone();
  out->initialize_head(s);
  return out;
}

GRAFT_END_NAMESPACE
