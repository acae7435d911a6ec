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

#if defined(__SSE2__)
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
/// The sum of a row of K int8, 64 bytes at a time: vpsadbw of the bytes made unsigned (x + 128;
/// the masked-off bytes are 0, 128 once flipped), less 128 for every byte summed.
inline std::int32_t row_sum_avx512(const std::int8_t* s, std::size_t K) noexcept {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i t = _mm512_setzero_si512();
  std::size_t k = 0;
  for (; k < K; k += 64) {
    const auto m = K - k >= 64 ? ~__mmask64{0} : (__mmask64{1} << (K - k)) - 1U;
    t = _mm512_add_epi64(t,
                         _mm512_sad_epu8(_mm512_xor_si512(_mm512_maskz_loadu_epi8(m, s + k), flip),
                                         _mm512_setzero_si512()));
  }
  alignas(64) std::int64_t lanes[8];
  _mm512_store_si512(static_cast<void*>(lanes), t);
  std::int64_t sum = 0;
  for (std::int64_t l : lanes) sum += l;
  return static_cast<std::int32_t>(sum - 128 * static_cast<std::int64_t>(k));
}
/// NI rows of C over NR panels: every panel row of V is loaded (and made unsigned) once for the
/// NI rows of S; NI * NR accumulators in registers.
template <std::size_t NI, std::size_t NR>
inline void gemm_avx512vnni_tile(std::size_t K, const std::int8_t* s, std::size_t lds,
                                 const std::int8_t* v, std::size_t stride, std::int32_t* c,
                                 std::size_t ldc, const std::int32_t* sums) noexcept {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const std::size_t full = K / 4, Q = quads(K);
  __m512i acc[NI][NR];
#pragma GCC unroll 8
  for (std::size_t i = 0; i < NI; ++i)
#pragma GCC unroll 4
    for (std::size_t r = 0; r < NR; ++r) acc[i][r] = _mm512_setzero_si512();
  for (std::size_t q = 0; q < Q; ++q) {
    __m512i a[NR];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < NR; ++r)
      a[r] = _mm512_xor_si512(_mm512_loadu_si512(static_cast<const void*>(v + r * stride + q * 64)),
                              flip);
#pragma GCC unroll 8
    for (std::size_t i = 0; i < NI; ++i) {
      std::int32_t bq;
      if (q < full)
        std::memcpy(&bq, s + i * lds + 4 * q, 4);
      else
        bq = quad(s + i * lds, q, K);
      const __m512i bi = _mm512_set1_epi32(bq);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < NR; ++r) acc[i][r] = _mm512_dpbusd_epi32(acc[i][r], a[r], bi);
    }
  }
#pragma GCC unroll 8
  for (std::size_t i = 0; i < NI; ++i) {
    const __m512i correction = _mm512_set1_epi32(128 * sums[i]);
#pragma GCC unroll 4
    for (std::size_t r = 0; r < NR; ++r)
      _mm512_storeu_si512(static_cast<void*>(c + i * ldc + r * 16),
                          _mm512_sub_epi32(acc[i][r], correction));
  }
}
template <std::size_t NI> inline void gemm_avx512vnni_rows(std::size_t P, std::size_t K,
                                                           const std::int8_t* s, std::size_t lds,
                                                           const std::int8_t* V, std::int32_t* c,
                                                           std::size_t ldc) noexcept {
  constexpr std::size_t R = 4;  // NI x 4 accumulators: at most 24 registers
  const std::size_t stride = quads(K) * 64;
  std::int32_t sums[NI];
  for (std::size_t i = 0; i < NI; ++i) sums[i] = row_sum_avx512(s + i * lds, K);
  const std::size_t whole = P / R;
  for (std::size_t t = 0; t < whole; ++t)
    gemm_avx512vnni_tile<NI, R>(K, s, lds, V + t * R * stride, stride, c + t * R * 16, ldc, sums);
  for (std::size_t p = whole * R; p < P; ++p)
    gemm_avx512vnni_tile<NI, 1>(K, s, lds, V + p * stride, stride, c + p * 16, ldc, sums);
}
inline void gemm_avx512vnni(std::size_t I, std::size_t J, std::size_t K, const std::int8_t* S,
                            std::size_t lds, const std::int8_t* V, std::int32_t* C,
                            std::size_t ldc) noexcept {
  const std::size_t P = panels(J);
  const std::size_t i6 = I / 6 * 6, i4 = I - i6 >= 4 ? i6 + 4 : i6, i2 = i4 + (I - i4) / 2 * 2;
  for (std::size_t i = 0; i < i6; i += 6)
    gemm_avx512vnni_rows<6>(P, K, S + i * lds, lds, V, C + i * ldc, ldc);
  if (i4 > i6) gemm_avx512vnni_rows<4>(P, K, S + i6 * lds, lds, V, C + i6 * ldc, ldc);
  for (std::size_t i = i4; i < i2; i += 2)
    gemm_avx512vnni_rows<2>(P, K, S + i * lds, lds, V, C + i * ldc, ldc);
  for (std::size_t i = i2; i < I; ++i)
    gemm_avx512vnni_rows<1>(P, K, S + i * lds, lds, V, C + i * ldc, ldc);
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

#if defined(__AVX512F__)
namespace detail {
/// The low bytes of 16 int32 lanes (values in int8's range) to out[0..n), n <= 16: vpmovdb to a
/// register and a plain store (the masked store to memory is slow on Zen 4).
inline void store_bytes(std::int8_t* out, __m512i v, std::size_t n) noexcept {
  _mm512_mask_cvtepi32_storeu_epi8(out, static_cast<__mmask16>((1U << n) - 1U), v);
}
}  // namespace detail

#endif
/// out[i] = quantize_value(x[i], scale, zero_point) for i < n (requant.hpp), 16 at a time with
/// AVX-512: the same IEEE division and the same rounding, half away from zero (values are clamped
/// to +-1024 before the truncation instead of +-2^30: both saturate to int8 the same way).
inline void quantize_row(std::size_t n, const float* x, float scale, std::int32_t zero_point,
                         std::int8_t* out) noexcept {
  std::size_t i = 0;
#if defined(__AVX512F__)
  const __m512 s = _mm512_set1_ps(scale), half = _mm512_set1_ps(0.5f),
               mhalf = _mm512_set1_ps(-0.5f), big = _mm512_set1_ps(1024.0f),
               mbig = _mm512_set1_ps(-1024.0f);
  const __m512i zp = _mm512_set1_epi32(zero_point), lo = _mm512_set1_epi32(-128),
                hi = _mm512_set1_epi32(127), one = _mm512_set1_epi32(1);
  // the zero-masked forms with every lane: g++ 12 warns falsely in the unmasked ones (see z512)
  constexpr __mmask16 all = 0xFFFF;
  for (; i < n; i += 16) {
    const std::size_t m = n - i < 16 ? n - i : 16;
    const auto k = static_cast<__mmask16>((1U << m) - 1U);
    __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), s);
    const __mmask16 ordered = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
    v = _mm512_maskz_mov_ps(ordered, v);  // NaN: 0
    v = _mm512_maskz_min_ps(all, _mm512_maskz_max_ps(all, v, mbig), big);
    __m512i t = _mm512_maskz_cvttps_epi32(all, v);
    const __m512 frac = _mm512_sub_ps(v, _mm512_maskz_cvtepi32_ps(all, t));
    t = _mm512_mask_add_epi32(t, _mm512_cmp_ps_mask(frac, half, _CMP_GE_OQ), t, one);
    t = _mm512_mask_sub_epi32(t, _mm512_cmp_ps_mask(frac, mhalf, _CMP_LE_OQ), t, one);
    t = _mm512_maskz_min_epi32(all, _mm512_maskz_max_epi32(all, _mm512_add_epi32(t, zp), lo), hi);
    detail::store_bytes(out + i, t, m);
  }
#endif
  for (; i < n; ++i) out[i] = quantize_value(x[i], scale, zero_point);
}

/// One quad of a matrix in panels from four of its rows: rows[r][j] is V(4q + r, j) for
/// j < P * 16; panel p's 64 bytes of the quad go to dst + p * stride (stride: quads(K) * 64). The
/// same bytes on every path (a 4 x 16 byte transpose per panel).
inline void pack_quad(const std::int8_t* const* rows, std::size_t P, std::int8_t* dst,
                      std::size_t stride) noexcept {
  for (std::size_t p = 0; p < P; ++p) {
    const std::size_t j = p * 16;
    std::int8_t* out = dst + p * stride;
#if defined(__SSE2__)
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[0] + j));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[1] + j));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[2] + j));
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[3] + j));
    const __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
    const __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi16(ab0, cd0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), _mm_unpackhi_epi16(ab0, cd0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 32), _mm_unpacklo_epi16(ab1, cd1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 48), _mm_unpackhi_epi16(ab1, cd1));
#elif GRAFT_QUANT_NEON
    int8x16x4_t t;
    for (std::size_t r = 0; r < 4; ++r) t.val[r] = vld1q_s8(rows[r] + j);
    vst4q_s8(out, t);
#else
    for (std::size_t l = 0; l < 16; ++l)
      for (std::size_t r = 0; r < 4; ++r) out[l * 4 + r] = rows[r][j + l];
#endif
  }
}

/// out[x] = max(r0[2x], r0[2x + 1], r1[2x], r1[2x + 1]) for x < n: a 2 x 2 max pooling of two
/// rows of int32.
inline void max_pool2_i32(std::size_t n, const std::int32_t* r0, const std::int32_t* r1,
                          std::int32_t* out) noexcept {
  std::size_t x = 0;
  for (; x < n; ++x) {
    const std::int32_t a = r0[2 * x] > r0[2 * x + 1] ? r0[2 * x] : r0[2 * x + 1];
    const std::int32_t b = r1[2 * x] > r1[2 * x + 1] ? r1[2 * x] : r1[2 * x + 1];
    out[x] = a > b ? a : b;
  }
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
/// The output stage of one channel (step 0) on 16 sums: the shifts, the rounding mask and the
/// multiplier (in both halves of every 64-bit lane) are the same for all lanes, so this takes
/// fewer operations than the per-lane form below (the same results).
struct requant512 {
  __m512i b, m, mask, half, zp, lo, hi, one, nudge;
  __m128i left, right;
  explicit requant512(const output_stage& o) noexcept {
    const std::int32_t sh = o.shift[0];
    const auto mask_s = static_cast<std::int32_t>((std::int64_t{1} << (sh > 0 ? 0 : -sh)) - 1);
    left = _mm_cvtsi32_si128(sh > 0 ? sh : 0);
    right = _mm_cvtsi32_si128(sh > 0 ? 0 : -sh);
    b = _mm512_set1_epi32(o.bias[0]);
    m = _mm512_set1_epi32(o.multiplier[0]);
    mask = _mm512_set1_epi32(mask_s);
    half = _mm512_set1_epi32(mask_s >> 1);
    zp = _mm512_set1_epi32(o.zero_point);
    lo = _mm512_set1_epi32(o.lo);
    hi = _mm512_set1_epi32(o.hi);
    one = _mm512_set1_epi32(1);
    nudge = _mm512_set1_epi64(std::int64_t{1} << 30);
  }
  __m512i operator()(__m512i acc) const noexcept {
    __m512i x = _mm512_maskz_sll_epi32(0xFFFF, _mm512_add_epi32(acc, b), left);
    const __m512i pe = z512::srli_epi64(_mm512_add_epi64(z512::mul_epi32(x, m), nudge), 31);
    const __m512i po = z512::slli_epi64(
        z512::srli_epi64(_mm512_add_epi64(z512::mul_epi32(z512::srli_epi64(x, 32), m), nudge), 31),
        32);
    const __m512i h = _mm512_mask_blend_epi32(0xAAAA, pe, po);
    const __m512i rem = _mm512_and_si512(h, mask);
    const __m512i thr = _mm512_add_epi32(half, z512::srli_epi32(h, 31));
    __m512i y = _mm512_maskz_sra_epi32(0xFFFF, h, right);
    y = _mm512_mask_add_epi32(y, _mm512_cmpgt_epi32_mask(rem, thr), y, one);
    return z512::min_epi32(z512::max_epi32(_mm512_add_epi32(y, zp), lo), hi);
  }
};
/// The 2 x 2 max pooling of two rows of sums (2n each), then the output stage of one channel, in
/// registers.
inline void pool2_requantize_avx512(std::size_t n, const std::int32_t* r0, const std::int32_t* r1,
                                    const output_stage& o, std::int8_t* out) noexcept {
  const requant512 rq(o);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (std::size_t x = 0; x < n; x += 16) {
    const std::size_t m = n - x < 16 ? n - x : 16;
    const auto k0 = static_cast<__mmask16>(m >= 8 ? 0xFFFFU : (1U << (2 * m)) - 1U);
    const auto k1 = static_cast<__mmask16>(m > 8 ? (1U << (2 * (m - 8))) - 1U : 0U);
    const __m512i v0 = z512::max_epi32(_mm512_maskz_loadu_epi32(k0, r0 + 2 * x),
                                       _mm512_maskz_loadu_epi32(k0, r1 + 2 * x));
    const __m512i v1 = z512::max_epi32(_mm512_maskz_loadu_epi32(k1, r0 + 2 * x + 16),
                                       _mm512_maskz_loadu_epi32(k1, r1 + 2 * x + 16));
    const __m512i h = z512::max_epi32(_mm512_permutex2var_epi32(v0, even, v1),
                                      _mm512_permutex2var_epi32(v0, odd, v1));
    store_bytes(out + x, rq(h), m);
  }
}
inline void requantize_avx512(std::size_t n, const std::int32_t* acc, const output_stage& o,
                              std::size_t step, std::int8_t* out) noexcept {
  const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
  const __m512i nudge = _mm512_set1_epi64(std::int64_t{1} << 30);
  const __m512i zp = _mm512_set1_epi32(o.zero_point), lo = _mm512_set1_epi32(o.lo),
                hi = _mm512_set1_epi32(o.hi);
  if (step == 0) {
    const requant512 rq(o);
    for (std::size_t j = 0; j < n; j += 16) {
      const std::size_t left_n = n - j < 16 ? n - j : 16;
      const auto k = static_cast<__mmask16>((1U << left_n) - 1U);
      store_bytes(out + j, rq(_mm512_maskz_loadu_epi32(k, acc + j)), left_n);
    }
    return;
  }
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
    store_bytes(out + j, y, left_n);
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

/// out[x] = the output stage (one channel, step 0) of max(r0[2x], r0[2x + 1], r1[2x], r1[2x + 1])
/// for x < n: a convolution's 2 x 2 max pooling done on its sums (see qconv2d::forward_pooled).
template <isa A = best> void pool2_requantize_row(std::size_t n, const std::int32_t* r0,
                                                  const std::int32_t* r1, const output_stage& o,
                                                  std::int8_t* out) noexcept {
  static_assert(available<A>, "graft::quant: this instruction set is not enabled in this build");
#if defined(__AVX512BW__)
  if constexpr (A == isa::avx512bw || A == isa::avx512vnni) {
    detail::pool2_requantize_avx512(n, r0, r1, o, out);
    return;
  }
#endif
  for (std::size_t x = 0; x < n; x += 16) {
    const std::size_t m = n - x < 16 ? n - x : 16;
    std::int32_t t[16];
    max_pool2_i32(m, r0 + 2 * x, r1 + 2 * x, t);
    requantize_row<A>(m, t, o, 0, out + x);
  }
}

}  // namespace quant::kernels
GRAFT_END_NAMESPACE
