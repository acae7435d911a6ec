// The two SIMD primitives that make graft's results independent of the vector width:
//
//   fmadd(a, b, c) : a*b + c on batches, fused on every target with an FMA instruction (the rule
//                    of math::fmadd for scalars), whatever xsimd does for the architecture (xsimd
//                    8.1's fma on AVX-512 is a multiply then an add: another rounding);
//   wide<T, Arch>  : a logical vector of 64 bytes (16 floats, 8 doubles) held in as many hardware
//                    vectors as it takes (one on AVX-512, two on AVX2, four on SSE and NEON). A
//                    reduction accumulates into wide lanes, element n into lane n % lanes, and
//                    ends with sum(): lanes added pairwise by halves (lane i and i + lanes/2, then
//                    i + lanes/4, ...), an order fixed by graft. The same sum therefore comes out,
//                    bit for bit, whichever vector width the target has.
#pragma once
#include <cstddef>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "graft/numeric/math.hpp"

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE
namespace kernels {

/// Whether Arch has vectors of T: float and double, except double on armv7, whose NEON has none
/// (xsimd 8.1: batch<double, neon>::size is 0). Where not, every kernel runs its scalar reference
/// (kernels/reference.hpp), which gives the same bits as the vector code.
template <class T, class Arch = xsimd::default_arch> inline constexpr bool vectorised = [] {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
    return xsimd::batch<T, Arch>::size > 0;
  else
    return false;
}();

/// The vector registers Arch has: 32 on AVX-512 and AArch64's NEON, 16 on SSE, AVX, AVX2 and
/// armv7's NEON. Register blocks of the kernels are derived from it (and the vector width).
template <class Arch> inline constexpr std::size_t vector_registers = [] {
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>)
    return std::size_t{32};
#if XSIMD_WITH_NEON64
  else if constexpr (std::is_base_of_v<xsimd::neon64, Arch>)
    return std::size_t{32};
#endif
  else
    return std::size_t{16};
}();

/// AVX2 (with FMA) in place of AVX-512, which every AVX-512 CPU also has; Arch itself elsewhere.
/// For kernels whose rows are too short for AVX-512's vectors or whose lane permutations are
/// written for AVX2 (the direct convolution of short rows, 2x2 max pooling).
#if XSIMD_WITH_AVX512F && XSIMD_WITH_FMA3_AVX2
template <class Arch> using avx2_in_avx512 =
    std::conditional_t<std::is_base_of_v<xsimd::avx512f, Arch>, xsimd::fma3<xsimd::avx2>, Arch>;
#elif XSIMD_WITH_AVX512F  // AVX-512 without FMA flags (-mavx512f -mno-fma): AVX2's vectors
template <class Arch> using avx2_in_avx512 =
    std::conditional_t<std::is_base_of_v<xsimd::avx512f, Arch>, xsimd::avx2, Arch>;
#else
template <class Arch> using avx2_in_avx512 = Arch;
#endif

/// a*b + c lane by lane, rounded once where the target has FMA (GRAFT_HAS_FMA), else twice; bitwise
/// math::fmadd on each lane.
template <class T, class Arch>
inline xsimd::batch<T, Arch> fmadd(const xsimd::batch<T, Arch>& a, const xsimd::batch<T, Arch>& b,
                                   const xsimd::batch<T, Arch>& c) noexcept {
#if GRAFT_HAS_FMA
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    if constexpr (std::is_same_v<T, float>)
      return _mm512_fmadd_ps(a, b, c);
    else
      return _mm512_fmadd_pd(a, b, c);
  } else
#endif
    // fma3<sse4_2>, fma3<avx>, fma3<avx2>, neon (VFPv4) and neon64: xsimd's fma is the fused
    // instruction
    return xsimd::fma(a, b, c);
#else
  return a * b + c;
#endif
}

/// A logical vector of 64 bytes of T: R hardware vectors, lane l of the logical vector being lane
/// l % W of vector l / W (W the hardware width).
template <class T, class Arch = xsimd::default_arch> struct wide {
  using batch = xsimd::batch<T, Arch>;
  static constexpr std::size_t lanes = 64 / sizeof(T);
  static constexpr std::size_t W = batch::size;
  static constexpr std::size_t R = lanes / W;
  static_assert(lanes % W == 0, "graft: wide<T>: a hardware vector wider than 64 bytes");
  batch v[R];

  static wide zero() noexcept {
    wide w;
    for (std::size_t r = 0; r < R; ++r) w.v[r] = batch(T(0));
    return w;
  }
  static wide load(const T* p) noexcept {
    wide w;
    for (std::size_t r = 0; r < R; ++r) w.v[r] = batch::load_unaligned(p + r * W);
    return w;
  }
  /// this += x * y, lane by lane (fmadd).
  void fma(const wide& x, const wide& y) noexcept {
    for (std::size_t r = 0; r < R; ++r) v[r] = fmadd(x.v[r], y.v[r], v[r]);
  }
  /// this += x, lane by lane.
  void add(const wide& x) noexcept {
    for (std::size_t r = 0; r < R; ++r) v[r] += x.v[r];
  }
  /// The sum of the lanes, halves added pairwise: (l[i] + l[i + lanes/2]), then the same on the
  /// first half, down to one lane.
  T sum() const noexcept {
    alignas(64) T l[lanes];
    for (std::size_t r = 0; r < R; ++r) v[r].store_aligned(l + r * W);
    for (std::size_t w = lanes / 2; w > 0; w /= 2)
      for (std::size_t i = 0; i < w; ++i) l[i] += l[i + w];
    return l[0];
  }
};

}  // namespace kernels
GRAFT_END_NAMESPACE
