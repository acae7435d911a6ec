// int8 kernels of the quantised runtime: one product with int32 sums and the requantisation of its
// rows, each as a scalar reference and a path per instruction set, chosen by the compiler's target
// macros. Integer sums are exact and the requantisation is integer arithmetic, so every path gives
// the reference's bits (tests/test_quant.cpp checks each one this build has).
//
// The product: C[i][j] = sum_{k < K} S[i][k] * V(k, j)      (int8 x int8, int32 sums)
//   S: I rows of K int8 (row stride lds), read four bytes ("a quad") at a time and broadcast;
//   V: a K x J int8 matrix in panels of 16 columns: panel p, quad q (k = 4q..4q+3) of column j is
//      the four bytes at p * quads(K) * 64 + q * 64 + (j % 16) * 4 (see panel_offset). A panel row
//      is 64 bytes: one AVX-512 vector, two AVX2 ones, four NEON ones.
//   C: I rows of panels(J) * 16 int32 (row stride ldc); the columns past J are computed too.
// A dense layer is S = its input rows, V = its weights (J = outputs); a convolution is S = its
// filters (rows of C*K*K weights), V = the image's patches in panels (J = output pixels).
//
// Paths (isa):
//   avx512vnni  vpdpbusd: unsigned x signed bytes, four products summed into each int32 lane
//               without saturation. V is made unsigned (x ^ 0x80 = x + 128) and 128 * sum_k S[i][k]
//               is subtracted at the end (the usual offset trick, here on the S side: one sum per
//               row, nothing stored with the weights).
//   avx512bw    bytes sign-extended to 16 bits (vpmovsxbw), then vpmaddwd: no vpmaddubsw, whose
//               16-bit pair sums of u8 * s8 saturate.
//   avx2        the same with 256-bit vectors.
//   neon_dot    sdot (vdotq_s32, armv8.2 dotprod): signed x signed, four products per lane.
//   neon        vmull_s8 (products in 16 bits: |-128 * -128| fits) and vpadalq_s16 (pairwise
//               accumulate into 32 bits): aarch64 without dotprod and armv7.
//   scalar      the reference; also the x86-64 baseline and -v2 path.
// Freestanding: no exceptions, no heap, no thread_local, no libm.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "graft/config.hpp"
#include "graft/quant/requant.hpp"

#if defined(__AVX2__) || defined(__AVX512BW__)
#include <immintrin.h>
#endif
#if defined(__ARM_NEON) || defined(__ARM_NEON__)
#include <arm_neon.h>
#define GRAFT_QUANT_NEON 1
#endif

GRAFT_BEGIN_NAMESPACE
namespace quant::kernels {

enum class isa { scalar, avx2, avx512bw, avx512vnni, neon, neon_dot };

constexpr const char* isa_name(isa i) noexcept {
  switch (i) {
    case isa::avx2:
      return "avx2";
    case isa::avx512bw:
      return "avx512bw";
    case isa::avx512vnni:
      return "avx512vnni";
    case isa::neon:
      return "neon";
    case isa::neon_dot:
      return "neon_dot";
    default:
      return "scalar";
  }
}

/// The paths this build can run (the target macros of the compiler).
template <isa I> inline constexpr bool available = [] {
  switch (I) {
    case isa::scalar:
      return true;
#if defined(__AVX2__)
    case isa::avx2:
      return true;
#endif
#if defined(__AVX512BW__)
    case isa::avx512bw:
      return true;
#endif
#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
    case isa::avx512vnni:
      return true;
#endif
#if GRAFT_QUANT_NEON
    case isa::neon:
      return true;
#endif
#if GRAFT_QUANT_NEON && defined(__ARM_FEATURE_DOTPROD)
    case isa::neon_dot:
      return true;
#endif
    default:
      return false;
  }
}();

/// The fastest path of this build.
inline constexpr isa best = available<isa::avx512vnni> ? isa::avx512vnni
                            : available<isa::avx512bw> ? isa::avx512bw
                            : available<isa::avx2>     ? isa::avx2
                            : available<isa::neon_dot> ? isa::neon_dot
                            : available<isa::neon>     ? isa::neon
                                                       : isa::scalar;

inline constexpr std::size_t panel_width = 16;  ///< columns of V per panel
constexpr std::size_t quads(std::size_t k) noexcept { return (k + 3) / 4; }
constexpr std::size_t panels(std::size_t j) noexcept { return (j + panel_width - 1) / panel_width; }
/// Bytes of a K x J matrix in panels (K rounded up to quads, J to panels).
constexpr std::size_t panel_bytes(std::size_t k, std::size_t j) noexcept {
  return panels(j) * quads(k) * 4 * panel_width;
}
/// Where V(k, j) of a K x J matrix in panels is.
constexpr std::size_t panel_offset(std::size_t k, std::size_t j, std::size_t K) noexcept {
  return (j / panel_width) * quads(K) * 4 * panel_width + (k / 4) * 4 * panel_width +
         (j % panel_width) * 4 + k % 4;
}

namespace detail {
/// Quad q of a row of K bytes, the bytes past K read as zeros.
inline std::int32_t quad(const std::int8_t* s, std::size_t q, std::size_t K) noexcept {
  std::int32_t v = 0;
  const std::size_t k = 4 * q;
  std::memcpy(&v, s + k, K - k >= 4 ? 4 : K - k);
  return v;
}
inline std::int32_t row_sum(const std::int8_t* s, std::size_t K) noexcept {
  std::int32_t t = 0;
  for (std::size_t k = 0; k < K; ++k) t += s[k];
  return t;
}
/// The four int8 of a quad as four int16 in 64 bits (for vpmaddwd against 16-bit lanes).
inline std::int64_t widen_quad(std::int32_t q) noexcept {
  std::uint64_t w = 0;
  for (int b = 0; b < 4; ++b) {
    const auto byte = static_cast<std::int8_t>(static_cast<std::uint32_t>(q) >> (8 * b));
    w |= static_cast<std::uint64_t>(static_cast<std::uint16_t>(static_cast<std::int16_t>(byte)))
         << (16 * b);
  }
  return static_cast<std::int64_t>(w);
}

inline void gemm_scalar(std::size_t I, std::size_t J, std::size_t K, const std::int8_t* S,
                        std::size_t lds, const std::int8_t* V, std::int32_t* C,
                        std::size_t ldc) noexcept {
  const std::size_t cols = panels(J) * panel_width;
  for (std::size_t i = 0; i < I; ++i)
    for (std::size_t j = 0; j < cols; ++j) {
      std::int32_t acc = 0;
      for (std::size_t k = 0; k < K; ++k)
        acc += static_cast<std::int32_t>(S[i * lds + k]) *
               static_cast<std::int32_t>(V[panel_offset(k, j, K)]);
      C[i * ldc + j] = acc;
    }
}

#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
inline void gemm_avx512vnni(std::size_t I, std::size_t J, std::size_t K, const std::int8_t* S,
                            std::size_t lds, const std::int8_t* V, std::int32_t* C,
                            std::size_t ldc) noexcept {
  constexpr std::size_t R = 4;  // panels at once: independent accumulators
  const std::size_t P = panels(J), Q = quads(K), stride = Q * 64;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (std::size_t i = 0; i < I; ++i) {
    const std::int8_t* s = S + i * lds;
    const __m512i correction = _mm512_set1_epi32(128 * row_sum(s, K));
    for (std::size_t p0 = 0; p0 < P; p0 += R) {
      const std::size_t nr = P - p0 < R ? P - p0 : R;
      const std::int8_t* v = V + p0 * stride;
      __m512i acc[R];
      for (std::size_t r = 0; r < R; ++r) acc[r] = _mm512_setzero_si512();
      for (std::size_t q = 0; q < Q; ++q) {
        const __m512i b = _mm512_set1_epi32(quad(s, q, K));
        for (std::size_t r = 0; r < R; ++r)
          if (r < nr) {
            const __m512i a = _mm512_xor_si512(
                _mm512_loadu_si512(static_cast<const void*>(v + r * stride + q * 64)), flip);
            acc[r] = _mm512_dpbusd_epi32(acc[r], a, b);
          }
      }
      for (std::size_t r = 0; r < nr; ++r)
        _mm512_storeu_si512(static_cast<void*>(C + i * ldc + (p0 + r) * 16),
                            _mm512_sub_epi32(acc[r], correction));
    }
  }
}
#endif

#if defined(__AVX512BW__)
inline void gemm_avx512bw(std::size_t I, std::size_t J, std::size_t K, const std::int8_t* S,
                          std::size_t lds, const std::int8_t* V, std::int32_t* C,
                          std::size_t ldc) noexcept {
  constexpr std::size_t R = 4;
  const std::size_t P = panels(J), Q = quads(K), stride = Q * 64;
  // lanes 0..7 of a panel are in lo (two partial sums each), 8..15 in hi
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (std::size_t i = 0; i < I; ++i) {
    const std::int8_t* s = S + i * lds;
    for (std::size_t p0 = 0; p0 < P; p0 += R) {
      const std::size_t nr = P - p0 < R ? P - p0 : R;
      const std::int8_t* v = V + p0 * stride;
      __m512i lo[R], hi[R];
      for (std::size_t r = 0; r < R; ++r) lo[r] = hi[r] = _mm512_setzero_si512();
      for (std::size_t q = 0; q < Q; ++q) {
        const __m512i b = _mm512_set1_epi64(widen_quad(quad(s, q, K)));
        for (std::size_t r = 0; r < R; ++r)
          if (r < nr) {
            const std::int8_t* row = v + r * stride + q * 64;
            const __m512i a0 =
                _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row)));
            const __m512i a1 = _mm512_cvtepi8_epi16(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32)));
            lo[r] = _mm512_add_epi32(lo[r], _mm512_madd_epi16(a0, b));
            hi[r] = _mm512_add_epi32(hi[r], _mm512_madd_epi16(a1, b));
          }
      }
      for (std::size_t r = 0; r < nr; ++r) {
        const __m512i sum = _mm512_add_epi32(_mm512_permutex2var_epi32(lo[r], even, hi[r]),
                                             _mm512_permutex2var_epi32(lo[r], odd, hi[r]));
        _mm512_storeu_si512(static_cast<void*>(C + i * ldc + (p0 + r) * 16), sum);
      }
    }
  }
}
#endif

#if defined(__AVX2__)
inline void gemm_avx2(std::size_t I, std::size_t J, std::size_t K, const std::int8_t* S,
                      std::size_t lds, const std::int8_t* V, std::int32_t* C,
                      std::size_t ldc) noexcept {
  constexpr std::size_t R = 2;
  const std::size_t P = panels(J), Q = quads(K), stride = Q * 64;
  for (std::size_t i = 0; i < I; ++i) {
    const std::int8_t* s = S + i * lds;
    for (std::size_t p0 = 0; p0 < P; p0 += R) {
      const std::size_t nr = P - p0 < R ? P - p0 : R;
      const std::int8_t* v = V + p0 * stride;
      __m256i acc[R][4];  // acc[r][c]: lanes 4c..4c+3 of panel r, two partial sums each
      for (std::size_t r = 0; r < R; ++r)
        for (std::size_t c = 0; c < 4; ++c) acc[r][c] = _mm256_setzero_si256();
      for (std::size_t q = 0; q < Q; ++q) {
        const __m256i b = _mm256_set1_epi64x(widen_quad(quad(s, q, K)));
        for (std::size_t r = 0; r < R; ++r)
          if (r < nr)
            for (std::size_t c = 0; c < 4; ++c) {
              const __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128(
                  reinterpret_cast<const __m128i*>(v + r * stride + q * 64 + c * 16)));
              acc[r][c] = _mm256_add_epi32(acc[r][c], _mm256_madd_epi16(a, b));
            }
      }
      for (std::size_t r = 0; r < nr; ++r) {
        // hadd(a0, a1) = [l0 l1 l4 l5 | l2 l3 l6 l7]: 64-bit elements 0, 2, 1, 3 put them in order
        const __m256i s01 = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][0], acc[r][1]), 0xD8);
        const __m256i s23 = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][2], acc[r][3]), 0xD8);
        std::int32_t* out = C + i * ldc + (p0 + r) * 16;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), s01);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), s23);
      }
    }
  }
}
#endif

#if GRAFT_QUANT_NEON && defined(__ARM_FEATURE_DOTPROD)
inline void gemm_neon_dot(std::size_t I, std::size_t J, std::size_t K, const std::int8_t* S,
                          std::size_t lds, const std::int8_t* V, std::int32_t* C,
                          std::size_t ldc) noexcept {
  constexpr std::size_t R = 2;
  const std::size_t P = panels(J), Q = quads(K), stride = Q * 64;
  for (std::size_t i = 0; i < I; ++i) {
    const std::int8_t* s = S + i * lds;
    for (std::size_t p0 = 0; p0 < P; p0 += R) {
      const std::size_t nr = P - p0 < R ? P - p0 : R;
      const std::int8_t* v = V + p0 * stride;
      int32x4_t acc[R][4];
      for (std::size_t r = 0; r < R; ++r)
        for (std::size_t c = 0; c < 4; ++c) acc[r][c] = vdupq_n_s32(0);
      for (std::size_t q = 0; q < Q; ++q) {
        const int8x16_t b = vreinterpretq_s8_s32(vdupq_n_s32(quad(s, q, K)));
        for (std::size_t r = 0; r < R; ++r)
          if (r < nr)
            for (std::size_t c = 0; c < 4; ++c)
              acc[r][c] = vdotq_s32(acc[r][c], vld1q_s8(v + r * stride + q * 64 + c * 16), b);
      }
      for (std::size_t r = 0; r < nr; ++r)
        for (std::size_t c = 0; c < 4; ++c)
          vst1q_s32(C + i * ldc + (p0 + r) * 16 + c * 4, acc[r][c]);
    }
  }
}
#endif

#if GRAFT_QUANT_NEON
inline void gemm_neon(std::size_t I, std::size_t J, std::size_t K, const std::int8_t* S,
                      std::size_t lds, const std::int8_t* V, std::int32_t* C,
                      std::size_t ldc) noexcept {
  const std::size_t P = panels(J), Q = quads(K), stride = Q * 64;
  for (std::size_t i = 0; i < I; ++i) {
    const std::int8_t* s = S + i * lds;
    for (std::size_t p = 0; p < P; ++p) {
      const std::int8_t* v = V + p * stride;
      // lo[c]: lanes 4c, 4c+1 of the panel; hi[c]: 4c+2, 4c+3; two partial sums per lane each
      int32x4_t lo[4], hi[4];
      for (std::size_t c = 0; c < 4; ++c) lo[c] = hi[c] = vdupq_n_s32(0);
      for (std::size_t q = 0; q < Q; ++q) {
        const int8x8_t b = vreinterpret_s8_s32(vdup_n_s32(quad(s, q, K)));
        for (std::size_t c = 0; c < 4; ++c) {
          const int8x16_t a = vld1q_s8(v + q * 64 + c * 16);
          lo[c] = vpadalq_s16(lo[c], vmull_s8(vget_low_s8(a), b));
          hi[c] = vpadalq_s16(hi[c], vmull_s8(vget_high_s8(a), b));
        }
      }
      for (std::size_t c = 0; c < 4; ++c) {
#if defined(__aarch64__)
        const int32x4_t sum = vpaddq_s32(lo[c], hi[c]);
#else
        const int32x4_t sum = vcombine_s32(vpadd_s32(vget_low_s32(lo[c]), vget_high_s32(lo[c])),
                                           vpadd_s32(vget_low_s32(hi[c]), vget_high_s32(hi[c])));
#endif
        vst1q_s32(C + i * ldc + p * 16 + c * 4, sum);
      }
    }
  }
}
#endif
}  // namespace detail

/// C[i][j] = sum_k S[i][k] * V(k, j) for i < I and j < panels(J) * 16 (see the top of the file).
template <isa A = best> void gemm(std::size_t I, std::size_t J, std::size_t K, const std::int8_t* S,
                                  std::size_t lds, const std::int8_t* V, std::int32_t* C,
                                  std::size_t ldc) noexcept {
  static_assert(available<A>, "graft::quant: this instruction set is not enabled in this build");
  if constexpr (A == isa::scalar) detail::gemm_scalar(I, J, K, S, lds, V, C, ldc);
#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
  else if constexpr (A == isa::avx512vnni)
    detail::gemm_avx512vnni(I, J, K, S, lds, V, C, ldc);
#endif
#if defined(__AVX512BW__)
  else if constexpr (A == isa::avx512bw)
    detail::gemm_avx512bw(I, J, K, S, lds, V, C, ldc);
#endif
#if defined(__AVX2__)
  else if constexpr (A == isa::avx2)
    detail::gemm_avx2(I, J, K, S, lds, V, C, ldc);
#endif
#if GRAFT_QUANT_NEON && defined(__ARM_FEATURE_DOTPROD)
  else if constexpr (A == isa::neon_dot)
    detail::gemm_neon_dot(I, J, K, S, lds, V, C, ldc);
#endif
#if GRAFT_QUANT_NEON
  else if constexpr (A == isa::neon)
    detail::gemm_neon(I, J, K, S, lds, V, C, ldc);
#endif
}

/// Output stage of n sums: out[j] = requantize(acc[j] + bias[j * step], mult[j * step],
/// shift[j * step], zero_point, lo, hi); step 1: per output channel (a dense layer's columns),
/// step 0: one channel for the whole row (a convolution's filter).
struct output_stage {
  const std::int32_t* bias;
  const std::int32_t* multiplier;
  const std::int32_t* shift;
  std::int32_t zero_point, lo, hi;
};

namespace detail {
inline void requantize_scalar(std::size_t n, const std::int32_t* acc, const output_stage& o,
                              std::size_t step, std::int8_t* out) noexcept {
  for (std::size_t j = 0; j < n; ++j)
    out[j] = requantize(acc[j] + o.bias[j * step], o.multiplier[j * step], o.shift[j * step],
                        o.zero_point, o.lo, o.hi);
}

#if defined(__AVX512BW__)
// g++ 12 warns (-Wmaybe-uninitialized, falsely) in the unmasked forms of these AVX-512 intrinsics
// (their pass-through operand is _mm512_undefined_epi32()); the zero-masked forms with every lane
// selected are the same instructions.
namespace z512 {
inline __m512i sllv_epi32(__m512i a, __m512i b) noexcept {
  return _mm512_maskz_sllv_epi32(0xFFFF, a, b);
}
inline __m512i srav_epi32(__m512i a, __m512i b) noexcept {
  return _mm512_maskz_srav_epi32(0xFFFF, a, b);
}
inline __m512i max_epi32(__m512i a, __m512i b) noexcept {
  return _mm512_maskz_max_epi32(0xFFFF, a, b);
}
inline __m512i min_epi32(__m512i a, __m512i b) noexcept {
  return _mm512_maskz_min_epi32(0xFFFF, a, b);
}
inline __m512i mul_epi32(__m512i a, __m512i b) noexcept {
  return _mm512_maskz_mul_epi32(0xFF, a, b);
}
inline __m512i srli_epi64(__m512i a, unsigned n) noexcept {
  return _mm512_maskz_srli_epi64(0xFF, a, n);
}
inline __m512i slli_epi64(__m512i a, unsigned n) noexcept {
  return _mm512_maskz_slli_epi64(0xFF, a, n);
}
inline __m512i srli_epi32(__m512i a, unsigned n) noexcept {
  return _mm512_maskz_srli_epi32(0xFFFF, a, n);
}
inline __m512i srai_epi32(__m512i a, unsigned n) noexcept {
  return _mm512_maskz_srai_epi32(0xFFFF, a, n);
}
}  // namespace z512
inline void requantize_avx512(std::size_t n, const std::int32_t* acc, const output_stage& o,
                              std::size_t step, std::int8_t* out) noexcept {
  const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
  const __m512i nudge = _mm512_set1_epi64(std::int64_t{1} << 30);
  const __m512i zp = _mm512_set1_epi32(o.zero_point), lo = _mm512_set1_epi32(o.lo),
                hi = _mm512_set1_epi32(o.hi);
  for (std::size_t j = 0; j < n; j += 16) {
    const std::size_t left_n = n - j < 16 ? n - j : 16;
    const auto k = static_cast<__mmask16>((1U << left_n) - 1U);
    __m512i b, m, s;
    if (step == 0) {
      b = _mm512_set1_epi32(o.bias[0]);
      m = _mm512_set1_epi32(o.multiplier[0]);
      s = _mm512_set1_epi32(o.shift[0]);
    } else {
      b = _mm512_maskz_loadu_epi32(k, o.bias + j);
      m = _mm512_maskz_loadu_epi32(k, o.multiplier + j);
      s = _mm512_maskz_loadu_epi32(k, o.shift + j);
    }
    __m512i x = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, acc + j), b);
    x = z512::sllv_epi32(x, z512::max_epi32(s, zero));
    const __m512i right = z512::max_epi32(_mm512_sub_epi32(zero, s), zero);
    // floor((x * m + 2^30) / 2^31): 64-bit products of the even lanes, then of the odd ones
    const __m512i pe = z512::srli_epi64(_mm512_add_epi64(z512::mul_epi32(x, m), nudge), 31);
    const __m512i po = z512::slli_epi64(
        z512::srli_epi64(
            _mm512_add_epi64(z512::mul_epi32(z512::srli_epi64(x, 32), z512::srli_epi64(m, 32)),
                             nudge),
            31),
        32);
    const __m512i h = _mm512_mask_blend_epi32(0xAAAA, pe, po);
    // rounding division by 2^right, halves away from zero
    const __m512i mask = _mm512_sub_epi32(z512::sllv_epi32(one, right), one);
    const __m512i rem = _mm512_and_si512(h, mask);
    const __m512i thr = _mm512_add_epi32(z512::srai_epi32(mask, 1), z512::srli_epi32(h, 31));
    __m512i y = z512::srav_epi32(h, right);
    y = _mm512_mask_add_epi32(y, _mm512_cmpgt_epi32_mask(rem, thr), y, one);
    y = z512::min_epi32(z512::max_epi32(_mm512_add_epi32(y, zp), lo), hi);
    _mm512_mask_cvtepi32_storeu_epi8(out + j, k, y);
  }
}
#endif

#if defined(__AVX2__)
inline void requantize_avx2(std::size_t n, const std::int32_t* acc, const output_stage& o,
                            std::size_t step, std::int8_t* out) noexcept {
  const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
  const __m256i nudge = _mm256_set1_epi64x(std::int64_t{1} << 30);
  const __m256i zp = _mm256_set1_epi32(o.zero_point), lo = _mm256_set1_epi32(o.lo),
                hi = _mm256_set1_epi32(o.hi);
  std::size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256i b, m, s;
    if (step == 0) {
      b = _mm256_set1_epi32(o.bias[0]);
      m = _mm256_set1_epi32(o.multiplier[0]);
      s = _mm256_set1_epi32(o.shift[0]);
    } else {
      b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o.bias + j));
      m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o.multiplier + j));
      s = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o.shift + j));
    }
    __m256i x = _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + j)), b);
    x = _mm256_sllv_epi32(x, _mm256_max_epi32(s, zero));
    const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, s), zero);
    // the low 32 bits of a 64-bit shift right by 31 are the same logical or arithmetic
    const __m256i pe = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, m), nudge), 31);
    const __m256i po = _mm256_slli_epi64(
        _mm256_srli_epi64(
            _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)),
                             nudge),
            31),
        32);
    const __m256i h = _mm256_blend_epi32(pe, po, 0xAA);
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    const __m256i rem = _mm256_and_si256(h, mask);
    const __m256i thr = _mm256_add_epi32(_mm256_srai_epi32(mask, 1), _mm256_srli_epi32(h, 31));
    __m256i y = _mm256_srav_epi32(h, right);
    y = _mm256_sub_epi32(y, _mm256_cmpgt_epi32(rem, thr));  // true is -1
    y = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(y, zp), lo), hi);
    alignas(32) std::int32_t t[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), y);
    for (std::size_t l = 0; l < 8; ++l) out[j + l] = static_cast<std::int8_t>(t[l]);
  }
  output_stage rest = o;
  if (step != 0) {
    rest.bias += j;
    rest.multiplier += j;
    rest.shift += j;
  }
  requantize_scalar(n - j, acc + j, rest, step, out + j);
}
#endif

#if GRAFT_QUANT_NEON
inline void requantize_neon(std::size_t n, const std::int32_t* acc, const output_stage& o,
                            std::size_t step, std::int8_t* out) noexcept {
  const int32x4_t zero = vdupq_n_s32(0), one = vdupq_n_s32(1);
  const int32x4_t zp = vdupq_n_s32(o.zero_point), lo = vdupq_n_s32(o.lo), hi = vdupq_n_s32(o.hi);
  std::size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    int32x4_t b, m, s;
    if (step == 0) {
      b = vdupq_n_s32(o.bias[0]);
      m = vdupq_n_s32(o.multiplier[0]);
      s = vdupq_n_s32(o.shift[0]);
    } else {
      b = vld1q_s32(o.bias + j);
      m = vld1q_s32(o.multiplier + j);
      s = vld1q_s32(o.shift + j);
    }
    int32x4_t x = vaddq_s32(vld1q_s32(acc + j), b);
    x = vshlq_s32(x, vmaxq_s32(s, zero));  // wraps, as the reference's left shift
    const int32x4_t right = vmaxq_s32(vnegq_s32(s), zero);
    const int32x4_t h = vqrdmulhq_s32(x, m);  // SaturatingRoundingDoublingHighMul
    const int32x4_t mask = vsubq_s32(vshlq_s32(one, right), one);
    const int32x4_t rem = vandq_s32(h, mask);
    const int32x4_t thr = vaddq_s32(
        vshrq_n_s32(mask, 1), vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(h), 31)));
    int32x4_t y = vshlq_s32(h, vnegq_s32(right));  // arithmetic shift right
    y = vsubq_s32(y, vreinterpretq_s32_u32(vcgtq_s32(rem, thr)));
    y = vminq_s32(vmaxq_s32(vaddq_s32(y, zp), lo), hi);
    const int16x4_t y16 = vmovn_s32(y);
    const int8x8_t y8 = vmovn_s16(vcombine_s16(y16, y16));
    std::int8_t t[8];
    vst1_s8(t, y8);
    std::memcpy(out + j, t, 4);
  }
  output_stage rest = o;
  if (step != 0) {
    rest.bias += j;
    rest.multiplier += j;
    rest.shift += j;
  }
  requantize_scalar(n - j, acc + j, rest, step, out + j);
}
#endif
}  // namespace detail

/// The output stage on a row of n sums (see output_stage), by the vector path of A's family.
template <isa A = best> void requantize_row(std::size_t n, const std::int32_t* acc,
                                            const output_stage& o, std::size_t step,
                                            std::int8_t* out) noexcept {
  static_assert(available<A>, "graft::quant: this instruction set is not enabled in this build");
#if defined(__AVX512BW__)
  if constexpr (A == isa::avx512bw || A == isa::avx512vnni) {
    detail::requantize_avx512(n, acc, o, step, out);
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (A == isa::avx2) {
    detail::requantize_avx2(n, acc, o, step, out);
    return;
  }
#endif
#if GRAFT_QUANT_NEON
  if constexpr (A == isa::neon || A == isa::neon_dot) {
    detail::requantize_neon(n, acc, o, step, out);
    return;
  }
#endif
  detail::requantize_scalar(n, acc, o, step, out);
}

}  // namespace quant::kernels
GRAFT_END_NAMESPACE
