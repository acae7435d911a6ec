// graft's own elementary functions, so that a trained model does not depend on the platform's libm
// (whose exp, log, tanh and cos differ between glibc versions, between glibc's FMA and non-FMA
// variants on x86-64, and between architectures) nor on the compiler's contraction of a*b+c.
//
//   fmadd(a, b, c)  a*b + c, fused (one rounding) on every target with an FMA instruction
//                   (x86-64-v3 and later, aarch64, armv7 with VFPv4), else multiplied then added;
//                   GRAFT_HAS_FMA says which;
//   exp, expm1, log, tanh, sigmoid, cospi (cos(pi x)) and powi (x^n for an integer n), for float
//                   and double: only +, -, *, /, fmadd, floor and exponent bit manipulation, each
//                   an IEEE operation with one correctly rounded result, in a fixed order. Every
//                   target with FMA therefore computes the same bits; the error is within 2 ulp of
//                   the exact value (tests/test_kernels.cpp checks against libm on a sweep).
//
// Light: <array>, <bit>, <cmath> (floor, fma, isnan), <cstdint>, <limits>, <type_traits>.
#pragma once
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "graft/config.hpp"

#if defined(__FMA__) || defined(__aarch64__) || defined(_M_ARM64) || defined(__ARM_FEATURE_FMA)
#define GRAFT_HAS_FMA 1
#else
#define GRAFT_HAS_FMA 0
#endif

GRAFT_BEGIN_NAMESPACE
namespace math {

/// a*b + c: fused where the target has an FMA instruction (GRAFT_HAS_FMA), else a*b rounded, then
/// + c rounded. The kernels' vector fmadd (kernels/simd.hpp) follows the same rule, so scalar
/// tails and vector bodies agree bit for bit on every target.
template <class T> inline T fmadd(T a, T b, T c) noexcept {
  if constexpr (GRAFT_HAS_FMA && std::is_floating_point_v<T>)
    return std::fma(a, b, c);
  else
    return a * b + c;
}

namespace detail {
template <class T> struct float_traits;
template <> struct float_traits<float> {
  using bits = std::uint32_t;
  static constexpr int mantissa = 23, bias = 127;
  // exp: above overflows, below is 0 (under the smallest subnormal's half)
  static constexpr float exp_hi = 88.72283935546875f, exp_lo = -103.97208404541015625f;
  // ln 2 = ln2_hi + ln2_lo with ln2_hi short (9 significant bits: k * ln2_hi is exact)
  static constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  static constexpr float tanh_one = 9.1f;  // tanh(x) rounds to 1 for x above
};
template <> struct float_traits<double> {
  using bits = std::uint64_t;
  static constexpr int mantissa = 52, bias = 1023;
  static constexpr double exp_hi = 709.782712893384, exp_lo = -745.1332191019412;
  static constexpr double ln2_hi = 6.93147180369123816490e-01;  // 0x3fe62e42fee00000
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr double tanh_one = 19.1;
};

// 2^k for a k whose 2^k is a normal number.
template <class T> inline T pow2(int k) noexcept {
  using ft = float_traits<T>;
  using U = typename ft::bits;
  return std::bit_cast<T>(static_cast<U>(static_cast<U>(k + ft::bias) << ft::mantissa));
}

// p0 + x*(p1 + x*(p2 + ...)): Horner by fmadd, coefficients from the highest degree down.
template <class T, std::size_t N> inline T horner(T x, const std::array<T, N>& c) noexcept {
  T p = c[0];
  for (std::size_t i = 1; i < N; ++i) p = fmadd(p, x, c[i]);
  return p;
}

// Taylor coefficients +-1/k! for k = Hi, Hi - Step, ..., Lo (highest first), with the sign
// (-1)^(k / Step) when Alternate. k! is exact in T for the k used here (double up to 22!, float up
// to 13!), so each coefficient is T(1) / T(k!) rounded once: the same constant on every platform.
template <class T, int Hi, int Lo, int Step = 1, bool Alternate = false>
constexpr std::array<T, (Hi - Lo) / Step + 1> taylor() noexcept {
  std::array<T, (Hi - Lo) / Step + 1> c{};
  for (int k = Hi, i = 0; k >= Lo; k -= Step, ++i) {
    T f = T(1);
    for (int j = 2; j <= k; ++j) f *= static_cast<T>(j);
    const bool negative = Alternate && (k / Step) % 2 == 1;
    c[static_cast<std::size_t>(i)] = negative ? -(T(1) / f) : T(1) / f;
  }
  return c;
}
}  // namespace detail

/// e^x. Range reduction x = k ln2 + r, |r| <= ln2/2 (Cody-Waite, ln2 in two parts), e^r by its
/// Taylor polynomial (degree 7 in float, 13 in double), then the scale 2^k in two exact halves so
/// that subnormal results round once.
template <class T> inline T exp(T x) noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  using ft = detail::float_traits<T>;
  if (std::isnan(x)) return x;
  if (x > ft::exp_hi) return std::numeric_limits<T>::infinity();
  if (x < ft::exp_lo) return T(0);
  const T k = std::floor(x * T(1.4426950408889634) + T(0.5));
  T r = fmadd(-k, ft::ln2_hi, x);
  r = fmadd(-k, ft::ln2_lo, r);
  T p;
  if constexpr (std::is_same_v<T, float>) {
    static constexpr auto c = detail::taylor<float, 7, 0>();
    p = detail::horner(r, c);
  } else {
    static constexpr auto c = detail::taylor<double, 13, 0>();
    p = detail::horner(r, c);
  }
  const int ki = static_cast<int>(k);
  const int k1 = ki / 2;
  return p * detail::pow2<T>(k1) * detail::pow2<T>(ki - k1);
}

/// e^x - 1, accurate near 0: for |x| < 1/2, x + x * (x * q(x)) with q the Taylor series of
/// (e^x - 1 - x) / x^2; elsewhere exp(x) - 1.
template <class T> inline T expm1(T x) noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  if (!(x > T(-0.5) && x < T(0.5))) return std::isnan(x) ? x : exp(x) - T(1);
  T q;
  if constexpr (std::is_same_v<T, float>) {
    static constexpr auto c = detail::taylor<float, 10, 2>();  // 1/(j+2)!
    q = detail::horner(x, c);
  } else {
    static constexpr auto c = detail::taylor<double, 17, 2>();  // 1/(j+2)!
    q = detail::horner(x, c);
  }
  return fmadd(x, x * q, x);
}

/// Natural logarithm: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s) with
/// s = (m - 1) / (m + 1) by its odd series (11 terms in double, 5 in float), plus e ln 2 in two
/// parts. log(0) = -inf, log(x < 0) = NaN.
template <class T> inline T log(T x) noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  using ft = detail::float_traits<T>;
  using U = typename ft::bits;
  if (std::isnan(x) || x < T(0)) return std::numeric_limits<T>::quiet_NaN();
  if (x == T(0)) return -std::numeric_limits<T>::infinity();
  if (x == std::numeric_limits<T>::infinity()) return x;
  int e = 0;
  if (x < std::numeric_limits<T>::min()) {  // subnormal: scale into the normal range first
    x *= detail::pow2<T>(ft::mantissa + 2);
    e = -(ft::mantissa + 2);
  }
  const U b = std::bit_cast<U>(x);
  e += static_cast<int>(b >> ft::mantissa) - ft::bias;
  T m = std::bit_cast<T>(static_cast<U>((b & ((U(1) << ft::mantissa) - 1)) |
                                        (static_cast<U>(ft::bias) << ft::mantissa)));  // [1, 2)
  if (m > T(1.4142135623730951)) {
    m *= T(0.5);
    ++e;
  }
  const T f = m - T(1);  // exact
  const T s = f / (T(2) + f);
  const T z = s * s;
  T r;
  if constexpr (std::is_same_v<T, float>) {
    static constexpr std::array<float, 5> c = {2.0f / 11, 2.0f / 9, 2.0f / 7, 2.0f / 5, 2.0f / 3};
    r = detail::horner(z, c);
  } else {
    static constexpr std::array<double, 11> c = {2.0 / 23, 2.0 / 21, 2.0 / 19, 2.0 / 17,
                                                 2.0 / 15, 2.0 / 13, 2.0 / 11, 2.0 / 9,
                                                 2.0 / 7,  2.0 / 5,  2.0 / 3};
    r = detail::horner(z, c);
  }
  // log m = 2s + s z r(z), with f - (f - 2s) regrouped as f - s f (2s = f - s f exactly in reals)
  const T logm = fmadd(s, z * r, fmadd(-s, f, f));
  const T ef = static_cast<T>(e);
  return fmadd(ef, ft::ln2_hi, fmadd(ef, ft::ln2_lo, logm));
}

/// Hyperbolic tangent: sign(x) t with t = e / (e + 2), e = expm1(2|x|); 1 beyond where tanh
/// rounds to 1.
template <class T> inline T tanh(T x) noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  if (std::isnan(x)) return x;
  const T a = x < T(0) ? -x : x;
  T t = T(1);
  if (a < detail::float_traits<T>::tanh_one) {
    const T e = expm1(a + a);
    t = e / (e + T(2));
  }
  return x < T(0) ? -t : (x == T(0) ? x : t);  // keeps -0
}

/// The logistic function 1 / (1 + e^-x), never exponentiating a large positive number.
template <class T> inline T sigmoid(T x) noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);  // NaN stays NaN
  return e / (T(1) + e);
}

namespace detail {
// cos(pi y) and sin(pi y) for |y| <= 1/4, by Taylor polynomials in t = pi y.
template <class T> inline T cospi_core(T y) noexcept {
  const T t = y * T(3.14159265358979323846);
  const T t2 = t * t;
  if constexpr (std::is_same_v<T, float>) {
    static constexpr auto c = detail::taylor<float, 10, 0, 2, true>();
    return horner(t2, c);
  } else {
    static constexpr auto c = detail::taylor<double, 18, 0, 2, true>();
    return horner(t2, c);
  }
}
template <class T> inline T sinpi_core(T y) noexcept {
  const T t = y * T(3.14159265358979323846);
  const T t2 = t * t;
  if constexpr (std::is_same_v<T, float>) {
    static constexpr auto c = detail::taylor<float, 9, 3, 2, true>();
    return fmadd(t * t2, horner(t2, c), t);
  } else {
    static constexpr auto c = detail::taylor<double, 19, 3, 2, true>();
    return fmadd(t * t2, horner(t2, c), t);
  }
}
}  // namespace detail

/// cos(pi x) for any finite x (NaN for infinities and NaN): x reduced exactly to [0, 1/4] by
/// cos's periodicity and symmetries, then a polynomial of cos or sin.
template <class T> inline T cospi(T x) noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  if (!std::isfinite(x)) return std::numeric_limits<T>::quiet_NaN();
  T y = x < T(0) ? -x : x;
  y -= T(2) * std::floor(y * T(0.5));  // [0, 2), exact
  if (y > T(1)) y = T(2) - y;          // cos(pi (2 - y)) = cos(pi y)
  T sign = T(1);
  if (y > T(0.5)) {  // cos(pi y) = -cos(pi (1 - y))
    y = T(1) - y;
    sign = T(-1);
  }
  const T c = y <= T(0.25) ? detail::cospi_core(y) : detail::sinpi_core(T(0.5) - y);
  return sign * c;
}

/// x^n for an integer n >= 0 by repeated squaring (deterministic, unlike std::pow, whose result
/// is each libm's own).
template <class T> inline T powi(T x, std::uint64_t n) noexcept {
  T result = T(1);
  while (n != 0) {
    if ((n & 1U) != 0) result *= x;
    n >>= 1U;
    if (n != 0) x *= x;
  }
  return result;
}

}  // namespace math
GRAFT_END_NAMESPACE
