// graft's elementary functions (numeric/math.hpp) and fused multiply-add (kernels/simd.hpp):
// accuracy against libm on sweeps, special values, and the FMA rule (fused exactly where the
// target has the instruction, on scalars and on every lane of a vector alike).
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <vector>

#include <graft/kernels/simd.hpp>
#include <graft/numeric/math.hpp>

namespace math = graft::math;

namespace {
// |got - exact| in units of the last place of exact rounded to T (at least T's smallest subnormal).
template <class T> double ulp_error(T got, long double exact) {
  const T r = static_cast<T>(exact);
  T ulp = std::nextafter(std::abs(r), std::numeric_limits<T>::infinity()) - std::abs(r);
  if (!(ulp > 0)) ulp = std::numeric_limits<T>::denorm_min();
  return static_cast<double>(std::abs(static_cast<long double>(got) - exact) / ulp);
}
// The largest error of f against g over n + 1 points evenly spread on [lo, hi].
template <class T, class F, class G> double worst_ulp(F f, G g, double lo, double hi, int n) {
  double worst = 0;
  for (int i = 0; i <= n; ++i) {
    const auto x = static_cast<T>(lo + (hi - lo) * i / n);
    const double e = ulp_error<T>(f(x), g(static_cast<long double>(x)));
    if (e > worst) worst = e;
  }
  return worst;
}
// Reference values: libm in long double (on armv7, long double is double: libm's double).
long double ref_exp(long double x) { return std::exp(x); }
long double ref_expm1(long double x) { return std::expm1(x); }
long double ref_log(long double x) { return std::log(x); }
long double ref_tanh(long double x) { return std::tanh(x); }
long double ref_sigmoid(long double x) { return 1.0L / (1.0L + std::exp(-x)); }
}  // namespace

TEST_CASE_TEMPLATE("exp, expm1, log, tanh and sigmoid are within 3 ulp of libm", T, float, double) {
  constexpr bool f = sizeof(T) == 4;
  // double results against a long double reference; where long double is double (armv7) the
  // reference's own error (under 1 ulp) adds to graft's
  const double tol = f || sizeof(long double) > sizeof(double) ? 3.0 : 4.0;
  constexpr int n = 200000;
  auto exp_ = [](T x) { return math::exp(x); };
  auto expm1_ = [](T x) { return math::expm1(x); };
  auto log_ = [](T x) { return math::log(x); };
  auto tanh_ = [](T x) { return math::tanh(x); };
  auto sigmoid_ = [](T x) { return math::sigmoid(x); };
  CHECK(worst_ulp<T>(exp_, ref_exp, f ? -103.0 : -744.0, f ? 88.7 : 709.7, n) <= tol);
  CHECK(worst_ulp<T>(exp_, ref_exp, -1.0, 1.0, n) <= tol);
  CHECK(worst_ulp<T>(expm1_, ref_expm1, -3.0, 3.0, n) <= tol);
  CHECK(worst_ulp<T>(expm1_, ref_expm1, -1e-4, 1e-4, n) <= tol);
  CHECK(worst_ulp<T>(log_, ref_log, 0.25, 4.0, n) <= tol);
  CHECK(worst_ulp<T>(log_, ref_log, 1e-30, 1e30, n) <= tol);
  CHECK(worst_ulp<T>(tanh_, ref_tanh, -25.0, 25.0, n) <= tol);
  CHECK(worst_ulp<T>(tanh_, ref_tanh, -1e-3, 1e-3, n) <= tol);
  CHECK(worst_ulp<T>(sigmoid_, ref_sigmoid, f ? -87.0 : -700.0, f ? 87.0 : 700.0, n) <= tol);
  // subnormal arguments and results
  const T tiny = std::numeric_limits<T>::denorm_min() * T(3);
  CHECK(ulp_error<T>(math::log(tiny), std::log(static_cast<long double>(tiny))) <= tol);
  const T deep = f ? T(-100) : T(-740);
  CHECK(ulp_error<T>(math::exp(deep), std::exp(static_cast<long double>(deep))) <= 1.0);
}

TEST_CASE_TEMPLATE("cos(pi x) is within 2 ulp of 1 of libm's over several periods", T, float,
                   double) {
  const long double pi = 3.141592653589793238462643383279502884L;
  const long double unit = sizeof(T) == 4 ? 0x1p-24L : 0x1p-53L;
  double worst = 0;
  for (int i = 0; i <= 400000; ++i) {
    const auto x = static_cast<T>(-4.0 + 8.0 * i / 400000);
    // the reference's argument: x reduced exactly to [-1, 1] first, so that rounding pi * x costs
    // the reference little even where long double is double (armv7)
    const long double r =
        static_cast<long double>(x) - 2.0L * std::round(static_cast<long double>(x) / 2);
    const long double exact = std::cos(pi * r);
    worst = std::max(worst, static_cast<double>(std::abs(math::cospi(x) - exact) / unit));
  }
  // within 2 units of 2^-53 (double) against a long double reference; where long double is
  // double, the reference's own rounding of pi * r (up to 1.6 units) adds to that
  CHECK(worst <= (sizeof(long double) > sizeof(double) || sizeof(T) == 4 ? 2.0 : 4.0));
  CHECK(math::cospi(T(0)) == T(1));
  CHECK(math::cospi(T(1)) == T(-1));
  CHECK(math::cospi(T(0.5)) == T(0));
  CHECK(math::cospi(T(2)) == T(1));
  CHECK(math::cospi(T(-1)) == T(-1));
}

TEST_CASE_TEMPLATE("special values: NaN, infinities, zeros, overflow", T, float, double) {
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  CHECK(std::isnan(math::exp(nan)));
  CHECK(math::exp(inf) == inf);
  CHECK(math::exp(-inf) == T(0));
  CHECK(math::exp(T(1000)) == inf);
  CHECK(math::exp(T(-1000)) == T(0));
  CHECK(math::exp(T(0)) == T(1));
  CHECK(math::expm1(T(0)) == T(0));
  CHECK(std::isnan(math::expm1(nan)));
  CHECK(math::expm1(-inf) == T(-1));
  CHECK(math::log(T(1)) == T(0));
  CHECK(math::log(T(0)) == -inf);
  CHECK(math::log(inf) == inf);
  CHECK(std::isnan(math::log(T(-1))));
  CHECK(std::isnan(math::log(nan)));
  CHECK(math::tanh(inf) == T(1));
  CHECK(math::tanh(-inf) == T(-1));
  CHECK(math::tanh(T(40)) == T(1));
  CHECK(std::isnan(math::tanh(nan)));
  CHECK(std::signbit(math::tanh(T(-0.0))));
  CHECK(math::sigmoid(inf) == T(1));
  CHECK(math::sigmoid(-inf) == T(0));
  CHECK(math::sigmoid(T(0)) == T(0.5));
  CHECK(std::isnan(math::sigmoid(nan)));
  CHECK(std::isnan(math::cospi(inf)));
  CHECK(math::powi(T(0.5), 10) == T(1) / T(1024));
  CHECK(math::powi(T(3), 0) == T(1));
  CHECK(math::powi(T(0.999), 1000) ==
        doctest::Approx(static_cast<double>(std::pow(T(0.999), T(1000)))).epsilon(1e-5));
}

TEST_CASE_TEMPLATE("fmadd: fused where the target has FMA, on scalars and every vector lane", T,
                   float, double) {
  // (1 + e)(1 - e) - 1 = -e^2 exactly; rounding the product first gives 0
  const T e = sizeof(T) == 4 ? T(0x1p-13) : T(0x1p-27);
  const T fused = math::fmadd(T(1) + e, T(1) - e, T(-1));
  if (GRAFT_HAS_FMA)
    CHECK(fused == -e * e);
  else
    CHECK(fused == T(0));
  if constexpr (graft::kernels::vectorised<T>) {  // (no double vectors on armv7)
    using batch = xsimd::batch<T>;
    std::vector<T> a(batch::size), b(batch::size), c(batch::size), out(batch::size);
    for (std::size_t i = 0; i < batch::size; ++i) {
      a[i] = T(1) + e * static_cast<T>(i + 1);
      b[i] = T(1) - e * static_cast<T>(i + 1);
      c[i] = T(-1);
    }
    graft::kernels::fmadd(batch::load_unaligned(a.data()), batch::load_unaligned(b.data()),
                          batch::load_unaligned(c.data()))
        .store_unaligned(out.data());
    for (std::size_t i = 0; i < batch::size; ++i) {
      CAPTURE(i);
      const T scalar = math::fmadd(a[i], b[i], c[i]);
      CHECK(std::memcmp(&out[i], &scalar, sizeof(T)) == 0);
    }
  }
}

TEST_CASE("wide<T>: a sum in graft's lane order, whatever the vector width") {
  // 16 lanes summed by halves (lane i + lane i + 8 first); values whose sum depends on the order:
  // 1e8 and -1e8 cancel in the first step, so the 14 ones count (sequentially, 7 are lost)
  std::vector<float> v(16, 1.0f);
  v[0] = 1e8f;
  v[8] = -1e8f;
  float l[16];
  std::memcpy(l, v.data(), sizeof l);
  for (std::size_t w = 8; w > 0; w /= 2)
    for (std::size_t i = 0; i < w; ++i) l[i] += l[i + w];
  const float got = graft::kernels::wide<float>::load(v.data()).sum();
  CHECK(std::memcmp(&got, &l[0], sizeof got) == 0);
  float sequential = 0;
  for (float x : v) sequential += x;
  CHECK(l[0] == 14.0f);
  CHECK(sequential == 7.0f);  // the order matters for these values: the check above means something
}
