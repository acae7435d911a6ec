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
//   erf, erfc,      W. J. Cody's rational approximations, evaluated in double (float rounds the
//   normal_cdf,     double result once), with graft's exp; normal_pdf the Gaussian density: within
//   normal_pdf      a few ulp of the exact value (tests/test_sequence.cpp checks against long
//                   double libm on a sweep).
//
// Light: <array>, <bit>, <cmath> (fabs, floor, fma, isnan), <cstdint>, <limits>, <type_traits>.
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
// erf and erfc after W. J. Cody, "Rational Chebyshev approximations for the error function",
// Math. Comp. 23 (1969) 631-638, in the arrangement of his SPECFUN routine CALERF (netlib,
// specfun/erf, 1990), whose coefficients are below: near-minimax rational functions good to at
// least 18 significant digits in exact arithmetic, so that double rounding dominates the error.
//   |x| <= 0.46875:      erf(x) = x R1(x^2)
//   0.46875 < |x| <= 4:  erfc(|x|) = e^(-x^2) R2(|x|)
//   4 < |x| < 26.543:    erfc(|x|) = e^(-x^2) / |x| (1/sqrt(pi) - x^-2 R3(x^-2))   (0 beyond)
// e^(-x^2) is e^(-s^2) e^(-(|x| - s)(|x| + s)) with s = |x| rounded down to a multiple of 1/16
// (s^2 is exact): x^2 itself, rounded, would cost up to x^2 ulp. Only +, -, *, /, floor and
// graft's exp, in a fixed order.
struct cody_erf_coefficients {
  static constexpr double a[5] = {3.16112374387056560e00, 1.13864154151050156e02,
                                  3.77485237685302021e02, 3.20937758913846947e03,
                                  1.85777706184603153e-1};
  static constexpr double b[4] = {2.36012909523441209e01, 2.44024637934444173e02,
                                  1.28261652607737228e03, 2.84423683343917062e03};
  static constexpr double c[9] = {
      5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8};
  static constexpr double d[8] = {1.57449261107098347e01, 1.17693950891312499e02,
                                  5.37181101862009858e02, 1.62138957456669019e03,
                                  3.29079923573345963e03, 4.36261909014324716e03,
                                  3.43936767414372164e03, 1.23033935480374942e03};
  static constexpr double p[6] = {3.05326634961232344e-1, 3.60344899949804439e-1,
                                  1.25781726111229246e-1, 1.60837851487422766e-2,
                                  6.58749161529837803e-4, 1.63153871373020978e-2};
  static constexpr double q[5] = {2.56852019228982242e00, 1.87295284992346047e00,
                                  5.27905102951428412e-1, 6.05183413124413191e-2,
                                  2.33520497626869185e-3};
};

/// erf(x) for |x| <= 0.46875: x R1(x^2).
inline double cody_erf_small(double x) noexcept {
  using k = cody_erf_coefficients;
  const double y = x < 0.0 ? -x : x;
  const double z = y > 1.11e-16 ? y * y : 0.0;  // below: erf(x) = x a3 / b3 to double precision
  double num = k::a[4] * z;
  double den = z;
  for (int i = 0; i < 3; ++i) {
    num = (num + k::a[i]) * z;
    den = (den + k::b[i]) * z;
  }
  return x * (num + k::a[3]) / (den + k::b[3]);
}
/// R with erfc(y) = e^(-y^2) R(y), for 0.46875 < y < 26.543.
inline double cody_erfc_factor(double y) noexcept {
  using k = cody_erf_coefficients;
  if (y <= 4.0) {
    double num = k::c[8] * y;
    double den = y;
    for (int i = 0; i < 7; ++i) {
      num = (num + k::c[i]) * y;
      den = (den + k::d[i]) * y;
    }
    return (num + k::c[7]) / (den + k::d[7]);
  }
  const double z = 1.0 / (y * y);
  double num = k::p[5] * z;
  double den = z;
  for (int i = 0; i < 4; ++i) {
    num = (num + k::p[i]) * z;
    den = (den + k::q[i]) * z;
  }
  const double r = z * (num + k::p[4]) / (den + k::q[4]);
  return (5.6418958354775628695e-1 - r) / y;  // 1/sqrt(pi)
}
/// e^(-v^2 scale) for 0 <= v < 40 and scale 1 or 1/2: v = s + (v - s) with s a multiple of 1/16,
/// so that s^2 scale is exact and (v - s)(v + s) scale small; v^2, rounded, would cost up to v^2
/// ulp of the result.
inline double exp_neg_square(double v, double scale) noexcept {
  const double s = std::floor(v * 16.0) / 16.0;
  return exp(-(s * s) * scale) * exp(-((v - s) * (v + s)) * scale);
}

/// erf(x) (Complement false) or erfc(x) (true), in double.
template <bool Complement> inline double cody_erf(double x) noexcept {
  if (std::isnan(x)) return x;
  const double y = x < 0.0 ? -x : x;
  if (y <= 0.46875) {
    const double r = cody_erf_small(x);
    return Complement ? 1.0 - r : r;
  }
  const double r = y < 26.543 ? cody_erfc_factor(y) * exp_neg_square(y, 1.0) : 0.0;  // erfc(y)
  if constexpr (Complement) {
    return x < 0.0 ? 2.0 - r : r;
  } else {
    const double e = (0.5 - r) + 0.5;
    return x < 0.0 ? -e : e;
  }
}

/// Phi(x) = erfc(-x / sqrt 2) / 2, with the Gaussian factor e^(-x^2/2) computed from x itself:
/// the rounding of x / sqrt 2 then moves only the rational factor, by about an ulp (through
/// erfc(x / sqrt 2) it would cost up to x^2 ulp).
inline double normal_cdf(double x) noexcept {
  if (std::isnan(x)) return x;
  const double z = x * 0.70710678118654752440;  // 1/sqrt(2)
  const double y = z < 0.0 ? -z : z;
  if (y <= 0.46875) return 0.5 + 0.5 * cody_erf_small(z);
  const double v = x < 0.0 ? -x : x;
  const double t = y < 26.543 ? 0.5 * cody_erfc_factor(y) * exp_neg_square(v, 0.5) : 0.0;
  return x < 0.0 ? t : 1.0 - t;  // t = Phi(-|x|)
}
}  // namespace detail

/// The error function 2/sqrt(pi) int_0^x e^(-t^2) dt (Cody's approximations above, in double;
/// float rounds the double value). erf(+-inf) = +-1, NaN stays NaN.
template <class T> inline T erf(T x) noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  return static_cast<T>(detail::cody_erf<false>(static_cast<double>(x)));
}

/// The complementary error function 1 - erf(x), accurate where it is small (x large): no
/// cancellation. erfc(+inf) = 0, erfc(-inf) = 2; 0 from x = 26.543 on (erfc is subnormal there).
template <class T> inline T erfc(T x) noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  return static_cast<T>(detail::cody_erf<true>(static_cast<double>(x)));
}

/// The standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2 by the same approximations, accurate in
/// relative terms for negative x too (see detail::normal_cdf); in double, float rounds once.
template <class T> inline T normal_cdf(T x) noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  return static_cast<T>(detail::normal_cdf(static_cast<double>(x)));
}

/// The standard normal density e^(-x^2/2) / sqrt(2 pi), the exponent split as in erfc (0 for
/// |x| >= 40, where it underflows; NaN stays NaN); in double, float rounds once.
template <class T> inline T normal_pdf(T x) noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  const double v = std::fabs(static_cast<double>(x));
  if (std::isnan(v)) return x;
  if (v >= 40.0) return T(0);
  return static_cast<T>(0.39894228040143267794 * detail::exp_neg_square(v, 0.5));  // 1/sqrt(2 pi)
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
