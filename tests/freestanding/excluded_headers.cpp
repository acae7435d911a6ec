// The inference headers are freestanding (issue 14): compiled with -fno-exceptions -fno-rtti and
// without threads (tests/CMakeLists.txt: freestanding_headers), graft/inference.hpp,
// graft/model/constant.hpp, graft/quant/runtime.hpp (int8) and graft/train/device.hpp
// (fine-tuning on the device) include none of the headers a small target lacks or pays for: no
// iostream (its static initialiser links the whole of iostreams), fstream, filesystem, threads,
// mutexes, OpenMP or zlib. The control (GRAFT_FREESTANDING_CONTROL) includes <iostream> first and
// must fail to build: the check sees what it claims to.
#if defined(GRAFT_FREESTANDING_CONTROL)
#include <iostream>
#endif
#include <graft/inference.hpp>
#include <graft/model/constant.hpp>
#include <graft/quant/runtime.hpp>
#include <graft/train/device.hpp>

#if defined(_GLIBCXX_IOSTREAM) || defined(_LIBCPP_IOSTREAM)
#error "graft/inference.hpp includes <iostream>"
#endif
#if defined(_GLIBCXX_FSTREAM) || defined(_LIBCPP_FSTREAM)
#error "graft/inference.hpp includes <fstream>"
#endif
#if defined(_GLIBCXX_FILESYSTEM) || defined(_LIBCPP_FILESYSTEM)
#error "graft/inference.hpp includes <filesystem>"
#endif
#if defined(_GLIBCXX_THREAD) || defined(_GLIBCXX_MUTEX) || defined(_GLIBCXX_CONDITION_VARIABLE) || \
    defined(_LIBCPP_THREAD) || defined(_LIBCPP_MUTEX)
#error "graft/inference.hpp includes threads (<thread>, <mutex> or <condition_variable>)"
#endif
#if defined(_OMP_H) || defined(__OMP_H)
#error "graft/inference.hpp includes <omp.h>"
#endif
#if defined(ZLIB_H)
#error "graft/inference.hpp includes <zlib.h>"
#endif
#if defined(__cpp_exceptions) || defined(__GXX_RTTI)
#error "this check must be compiled with -fno-exceptions -fno-rtti"
#endif

int freestanding_marker = 0;

// Token models in the freestanding profile (issue 16, item 6): a language-ID char-CNN and a tiny
// transformer run from constant weights (a runner, no heap) and the char-CNN's head fine-tunes on
// the device, all compiled here with -fno-exceptions -fno-rtti and without threads.
namespace freestanding_text {
namespace g = graft;
using langid_t = g::model<
    g::stack<g::input_tokens<16, 128>, g::embedding<128, 32>, g::conv1d<64, 3, g::pad<1>>, g::relu,
             g::conv1d<64, 3, g::pad<1>>, g::relu, g::global_max_pool_time, g::dense<64>, g::relu>,
    g::classifier<5>>;
static_assert(langid_t::parameter_count == 26'816 + 325);
using encoder_t =
    g::model<g::stack<g::input_tokens<16, 128>, g::embedding<128, 32>, g::positional_embedding,
                      g::layer_norm, g::pre_norm_encoder<32, 2, 64, 0>, g::layer_norm,
                      g::global_mean_pool_time>,
             g::classifier<5>>;

template <class M> const float* classify(const g::constant_model<M>& net, const float* ids) {
  static g::runner<M, 1> r;  // static storage: RAM known while compiling (runner::ram_bytes)
  for (std::size_t i = 0; i < 16; ++i) r.input()[i] = ids[i];
  return r.forward(net, 1);
}
const float* classify_langid(const g::constant_model<langid_t>& net, const float* ids) {
  return classify(net, ids);
}
const float* classify_encoder(const g::constant_model<encoder_t>& net, const float* ids) {
  return classify(net, ids);
}
g::device_status finetune_langid_head(
    g::device_trainer<langid_t, 4, g::sgd, g::freeze::backbone>& t) {
  return t.step(4);
}
}  // namespace freestanding_text
