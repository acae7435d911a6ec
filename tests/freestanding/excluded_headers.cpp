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
