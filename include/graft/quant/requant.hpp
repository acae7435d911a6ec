// int8 requantisation as TensorFlow Lite (reference kernels) and CMSIS-NN (its default, "double
// rounding" arm_nn_requantize) define it, in integers only, so that a quantised model gives the
// same int8 outputs on every target:
//
//   real multiplier M > 0  ->  (multiplier, shift) with M ~= multiplier * 2^(shift - 31),
//                              multiplier in [2^30, 2^31)           (quantize_multiplier)
//   acc (int32)            ->  RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(
//                                  acc * 2^max(shift, 0), multiplier), max(-shift, 0))
//                                                                   (multiply_by_quantized_multiplier)
//   then + the output zero point, clamped to [act_min, act_max]     (requantize)
//
// quantize_multiplier takes the double apart by its bits (std::bit_cast) instead of calling frexp
// and round: the same integers on every target and usable while compiling. Freestanding: no libm,
// no exceptions, no heap.
#pragma once
#include <bit>
#include <cstdint>
#include <limits>

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE
namespace quant {

/// A real multiplier as a Q0.31 significand and a power of two: M ~= multiplier * 2^(shift - 31).
struct quantized_multiplier {
  std::int32_t multiplier = 0;  ///< 0, or in [2^30, 2^31)
  std::int32_t shift = 0;       ///< > 0: left shift of the accumulator, < 0: right shift
};

/// TFLite's QuantizeMultiplier: frexp(M) = q * 2^shift with q in [0.5, 1), multiplier =
/// round(q * 2^31) (half away from zero), 2^31 folded back to 2^30 with shift + 1, and
/// multipliers below 2^-31 (shift < -31) flushed to zero. Zero, negative and non-finite M give
/// {0, 0}; so do multipliers of 2^31 and above (shift > 30), which no int32 shift can represent.
/// Integer-exact: a normal double is m53 * 2^(e - 1075), so q * 2^31 = m53 / 2^22 and the rounding
/// is (m53 + 2^21) >> 22 (M > 0: half away from zero is half up).
constexpr quantized_multiplier quantize_multiplier(double m) noexcept {
  if (!(m > 0) || m > std::numeric_limits<double>::max()) return {};
  const auto bits = std::bit_cast<std::uint64_t>(m);
  auto e = static_cast<std::int32_t>((bits >> 52) & 0x7ff);
  std::uint64_t m53 = bits & ((std::uint64_t{1} << 52) - 1);
  if (e == 0) {  // subnormal: far below 2^-31, flushed as TFLite does
    return {};
  }
  m53 |= std::uint64_t{1} << 52;
  std::int32_t shift = e - 1022;  // frexp's exponent
  std::uint64_t q = (m53 + (std::uint64_t{1} << 21)) >> 22;
  if (q == (std::uint64_t{1} << 31)) {
    q >>= 1;
    ++shift;
  }
  if (shift < -31) return {};
  if (shift > 30) return {};
  return {static_cast<std::int32_t>(q), shift};
}

/// gemmlowp's SaturatingRoundingDoublingHighMul: round(a * b / 2^31), halves away from zero,
/// saturating the one overflow (a = b = INT32_MIN). Equal to floor((a * b + 2^30) / 2^31), the
/// form the vector kernels use (and NEON's vqrdmulh computes).
constexpr std::int32_t saturating_rounding_doubling_high_mul(std::int32_t a,
                                                             std::int32_t b) noexcept {
  if (a == b && a == std::numeric_limits<std::int32_t>::min())
    return std::numeric_limits<std::int32_t>::max();
  const std::int64_t ab = static_cast<std::int64_t>(a) * static_cast<std::int64_t>(b);
  const std::int64_t nudge = ab >= 0 ? (std::int64_t{1} << 30) : (1 - (std::int64_t{1} << 30));
  return static_cast<std::int32_t>((ab + nudge) / (std::int64_t{1} << 31));
}

/// gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded to nearest, halves away from zero.
/// requires: 0 <= exponent <= 31.
constexpr std::int32_t rounding_divide_by_pot(std::int32_t x, std::int32_t exponent) noexcept {
  const std::int32_t mask = static_cast<std::int32_t>((std::int64_t{1} << exponent) - 1);
  const std::int32_t remainder = x & mask;
  const std::int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/// TFLite's MultiplyByQuantizedMultiplier (the double-rounding form, CMSIS-NN's default). The left
/// shift wraps modulo 2^32 (TFLite's int32 product would overflow there; the vector kernels wrap).
constexpr std::int32_t multiply_by_quantized_multiplier(std::int32_t x, std::int32_t multiplier,
                                                        std::int32_t shift) noexcept {
  const std::int32_t left = shift > 0 ? shift : 0;
  const std::int32_t right = shift > 0 ? 0 : -shift;
  const auto shifted = static_cast<std::int32_t>(static_cast<std::uint32_t>(x) << left);
  return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right);
}

/// An int32 accumulator to an int8 output: multiply, add the zero point, clamp to [lo, hi].
constexpr std::int8_t requantize(std::int32_t acc, std::int32_t multiplier, std::int32_t shift,
                                 std::int32_t zero_point, std::int32_t lo,
                                 std::int32_t hi) noexcept {
  std::int32_t v = multiply_by_quantized_multiplier(acc, multiplier, shift);
  // acc's scaled value plus the zero point cannot overflow: |v| <= 2^31 / 2 after a right shift
  // of at least one, and the multipliers graft makes are below 1 except for tiny ranges.
  v = static_cast<std::int32_t>(static_cast<std::uint32_t>(v) +
                                static_cast<std::uint32_t>(zero_point));
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return static_cast<std::int8_t>(v);
}

/// Rounds to the nearest integer, halves away from zero (std::round), exactly and without libm;
/// NaN gives 0, and values beyond +-2^30 are clamped there (they saturate to int8 anyway).
constexpr std::int32_t round_half_away(float v) noexcept {
  if (!(v == v)) return 0;
  constexpr float limit = 1073741824.0f;  // 2^30
  if (v >= limit) return 1 << 30;
  if (v <= -limit) return -(1 << 30);
  const auto t = static_cast<std::int32_t>(v);   // toward zero
  const float frac = v - static_cast<float>(t);  // exact: |v| < 2^30, t has v's leading bits
  if (frac >= 0.5f) return t + 1;
  if (frac <= -0.5f) return t - 1;
  return t;
}

/// Affine quantisation of one real value (TFLite's AffineQuantize): round(x / scale) + zero_point,
/// clamped to int8. The division is IEEE single precision (correctly rounded on every target).
constexpr std::int8_t quantize_value(float x, float scale, std::int32_t zero_point) noexcept {
  std::int32_t q = round_half_away(x / scale) + zero_point;
  q = q < -128 ? -128 : q;
  q = q > 127 ? 127 : q;
  return static_cast<std::int8_t>(q);
}

/// The real value of an int8 (scale * (q - zero_point)).
constexpr float dequantize_value(std::int8_t q, float scale, std::int32_t zero_point) noexcept {
  return scale * static_cast<float>(static_cast<std::int32_t>(q) - zero_point);
}

/// Scale and zero point of an asymmetric int8 tensor (TFLite's ChooseQuantizationParams for
/// [-128, 127]): the range is widened to hold 0 (so that 0 and zero padding are exact), scale =
/// (max - min) / 255, zero point = round(-128 - min / scale) clamped to int8. An empty range gives
/// scale 1 and zero point 0.
struct activation_params {
  float scale = 1.0f;
  std::int32_t zero_point = 0;
};
constexpr activation_params choose_activation_params(double lo, double hi) noexcept {
  lo = lo < 0 ? lo : 0;
  hi = hi > 0 ? hi : 0;
  if (!(hi - lo > 0)) return {};
  const double scale = (hi - lo) / 255.0;
  const auto s = static_cast<float>(scale);
  const double zp_real = -128.0 - lo / static_cast<double>(s);
  std::int32_t zp = round_half_away(static_cast<float>(zp_real));
  zp = zp < -128 ? -128 : zp;
  zp = zp > 127 ? 127 : zp;
  return {s, zp};
}

}  // namespace quant
GRAFT_END_NAMESPACE
