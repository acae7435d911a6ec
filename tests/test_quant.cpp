// int8 post-training quantisation (issue 14, point 4): the requantisation against exact and double
// references, every int8 kernel path of this build against the scalar reference, batch-norm
// folding, the quantised MLP and LeNet against their float models, the exported header, and a
// committed hash of int8 outputs that every target must give.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <graft/quant/kernels.hpp>
#include <graft/quant/requant.hpp>

#include <graft/random/random.hpp>

namespace g = graft;
namespace q = graft::quant;
namespace qk = graft::quant::kernels;

namespace {
// round(n / 2^e) with halves away from zero, by integer division (an independent formulation)
std::int64_t round_div_pow2(std::int64_t n, int e) {
  if (e == 0) return n;
  const std::int64_t d = std::int64_t{1} << e;
  std::int64_t quo = n / d, rem = n % d;
  if (2 * (rem < 0 ? -rem : rem) >= d) quo += n < 0 ? -1 : 1;
  return quo;
}
// TFLite's QuantizeMultiplier written with frexp and round, as TFLite does
q::quantized_multiplier tflite_quantize_multiplier(double m) {
  if (m <= 0) return {};
  int shift = 0;
  const double frac = std::frexp(m, &shift);
  auto fixed = static_cast<std::int64_t>(std::round(frac * static_cast<double>(1LL << 31)));
  if (fixed == (1LL << 31)) {
    fixed /= 2;
    ++shift;
  }
  if (shift < -31) return {};
  return {static_cast<std::int32_t>(fixed), shift};
}
}  // namespace

TEST_CASE("quantize_multiplier is TFLite's frexp/round definition, by integers") {
  g::splitmix64 rng(11);
  for (int t = 0; t < 200000; ++t) {
    // log-uniform over [2^-34, 2^8], plus values at and near powers of two
    double m = std::exp2(rng.uniform(-34.0, 8.0));
    if (t % 7 == 0) m = std::ldexp(1.0, static_cast<int>(rng.below(40)) - 32);
    if (t % 11 == 0) m = std::nextafter(std::ldexp(1.0, static_cast<int>(rng.below(30)) - 25), 0.0);
    const auto a = q::quantize_multiplier(m);
    const auto b = tflite_quantize_multiplier(m);
    REQUIRE(a.multiplier == b.multiplier);
    REQUIRE(a.shift == b.shift);
    if (a.multiplier != 0) {
      CHECK(a.multiplier >= (1 << 30));
      const double back = std::ldexp(static_cast<double>(a.multiplier), a.shift - 31);
      CHECK(std::fabs(back - m) <= std::ldexp(m, -31));
    }
  }
  static_assert(q::quantize_multiplier(0.5).multiplier == (1 << 30));
  static_assert(q::quantize_multiplier(0.5).shift == 0);
  static_assert(q::quantize_multiplier(0.0).multiplier == 0);
  CHECK(q::quantize_multiplier(-1.0).multiplier == 0);
  CHECK(q::quantize_multiplier(std::numeric_limits<double>::infinity()).multiplier == 0);
}

TEST_CASE("requantisation: exact double rounding, and within one of the real product") {
  g::splitmix64 rng(12);
  for (int t = 0; t < 300000; ++t) {
    const double m = std::exp2(rng.uniform(-20.0, 0.0));  // the multipliers layers make
    const auto qm = q::quantize_multiplier(m);
    const auto x =
        static_cast<std::int32_t>(static_cast<std::int64_t>(rng.below(1U << 25)) - (1 << 24));
    const std::int32_t got = q::multiply_by_quantized_multiplier(x, qm.multiplier, qm.shift);
    // the definition: round(x * mult / 2^31), then round(. / 2^-shift), halves away from zero
    const std::int64_t high = round_div_pow2(
        static_cast<std::int64_t>(x) * qm.multiplier * (std::int64_t{1} << std::max(qm.shift, 0)),
        31);
    const std::int64_t want = round_div_pow2(high, std::max(-qm.shift, 0));
    REQUIRE(got == want);
    CHECK(std::fabs(static_cast<double>(got) - static_cast<double>(x) * m) <= 1.0);
  }
  // the saturating case and the rounding of halves
  CHECK(q::saturating_rounding_doubling_high_mul(std::numeric_limits<std::int32_t>::min(),
                                                 std::numeric_limits<std::int32_t>::min()) ==
        std::numeric_limits<std::int32_t>::max());
  CHECK(q::rounding_divide_by_pot(5, 1) == 3);
  CHECK(q::rounding_divide_by_pot(-5, 1) == -3);
  CHECK(q::rounding_divide_by_pot(-6, 2) == -2);
  CHECK(q::rounding_divide_by_pot(6, 2) == 2);
  CHECK(q::requantize(1000, 1 << 30, -3, 5, -128, 127) == 5 + 63);  // 1000 * 0.5 / 8 = 62.5
  CHECK(q::requantize(-1000000, 1 << 30, 0, 0, -128, 127) == -128);
  CHECK(q::requantize(-5, 1 << 30, 0, 0, 0, 127) == 0);
}

TEST_CASE("round_half_away and quantize_value") {
  g::splitmix64 rng(13);
  for (int t = 0; t < 200000; ++t) {
    float v = static_cast<float>(rng.uniform(-3e5, 3e5));
    if (t % 3 == 0) v = static_cast<float>(static_cast<int>(rng.below(2000)) - 1000) + 0.5f;
    if (t % 5 == 0) v = std::nextafter(0.5f, 0.0f) * static_cast<float>(rng.below(3));
    REQUIRE(q::round_half_away(v) == static_cast<std::int32_t>(std::round(v)));
  }
  CHECK(q::quantize_value(1.0f, 0.1f, 3) == 13);
  CHECK(q::quantize_value(-100.0f, 0.1f, 3) == -128);
  CHECK(q::quantize_value(std::nanf(""), 0.1f, 3) == 3);
  const auto p = q::choose_activation_params(0.0, 2.55);
  CHECK(p.zero_point == -128);
  CHECK(p.scale == doctest::Approx(0.01));
  const auto s = q::choose_activation_params(-1.0, 1.0);
  CHECK(q::dequantize_value(static_cast<std::int8_t>(s.zero_point), s.scale, s.zero_point) == 0.0f);
}

namespace {
// a plain K x J matrix (row-major) into panels
std::vector<std::int8_t> to_panels(const std::vector<std::int8_t>& v, std::size_t K,
                                   std::size_t J) {
  std::vector<std::int8_t> p(qk::panel_bytes(K, J), 0);
  for (std::size_t k = 0; k < K; ++k)
    for (std::size_t j = 0; j < J; ++j) p[qk::panel_offset(k, j, K)] = v[k * J + j];
  return p;
}
std::vector<std::int8_t> random_bytes(std::size_t n, g::splitmix64& rng) {
  std::vector<std::int8_t> v(n);
  for (auto& b : v) b = static_cast<std::int8_t>(static_cast<int>(rng.below(256)) - 128);
  return v;
}

template <qk::isa A> void check_gemm_path(std::size_t& cases) {
  if constexpr (qk::available<A>) {
    g::splitmix64 rng(21);
    for (std::size_t K : {1, 3, 4, 5, 25, 63, 64, 65, 150, 784})
      for (std::size_t J : {1, 10, 16, 17, 84, 100, 256})
        for (std::size_t I : {1, 2, 7}) {
          const std::size_t lds = K + 3;  // rows not packed: the stride is honoured
          const auto S = random_bytes(I * lds, rng);
          const auto V = random_bytes(K * J, rng);
          auto Vp = to_panels(V, K, J);
          // bytes past K and J in the panels hold noise: they must not matter
          for (std::size_t k = K; k < qk::quads(K) * 4; ++k)
            for (std::size_t j = 0; j < qk::panels(J) * 16; ++j)
              Vp[qk::panel_offset(k, j, K)] = static_cast<std::int8_t>(rng.below(256));
          const std::size_t ldc = qk::panels(J) * 16;
          std::vector<std::int32_t> C(I * ldc, -7), R(I * ldc, -7);
          qk::gemm<A>(I, J, K, S.data(), lds, Vp.data(), C.data(), ldc);
          qk::gemm<qk::isa::scalar>(I, J, K, S.data(), lds, Vp.data(), R.data(), ldc);
          for (std::size_t i = 0; i < I; ++i)
            for (std::size_t j = 0; j < J; ++j) {
              std::int32_t want = 0;
              for (std::size_t k = 0; k < K; ++k)
                want += static_cast<std::int32_t>(S[i * lds + k]) * V[k * J + j];
              REQUIRE(R[i * ldc + j] == want);
              REQUIRE(C[i * ldc + j] == want);
            }
          ++cases;
        }
    MESSAGE("int8 product: path " << std::string(qk::isa_name(A)) << " equals the reference");
  }
}

template <qk::isa A> void check_requantize_path() {
  if constexpr (qk::available<A>) {
    g::splitmix64 rng(22);
    for (std::size_t n : {1, 3, 8, 10, 15, 16, 17, 33, 100, 784})
      for (std::size_t step : {0, 1})
        for (int rep = 0; rep < 50; ++rep) {
          std::vector<std::int32_t> acc(n), bias(n), mult(n), shift(n);
          for (std::size_t j = 0; j < n; ++j) {
            acc[j] = static_cast<std::int32_t>(static_cast<std::int64_t>(rng.below(1U << 24)) -
                                               (1 << 23));
            bias[j] = static_cast<std::int32_t>(rng.below(20000)) - 10000;
            const auto qm = q::quantize_multiplier(std::exp2(rng.uniform(-24.0, 2.0)));
            mult[j] = qm.multiplier;
            shift[j] = qm.shift;
          }
          const auto zp = static_cast<std::int32_t>(rng.below(256)) - 128;
          const qk::output_stage o{
              bias.data(), mult.data(), shift.data(), zp, rep % 2 == 0 ? zp : -128, 127};
          std::vector<std::int8_t> got(n), want(n);
          qk::requantize_row<A>(n, acc.data(), o, step, got.data());
          for (std::size_t j = 0; j < n; ++j)
            want[j] = q::requantize(acc[j] + bias[j * step], mult[j * step], shift[j * step], zp,
                                    o.lo, o.hi);
          REQUIRE(got == want);
        }
    MESSAGE("requantisation: path " << std::string(qk::isa_name(A)) << " equals the reference");
  }
}
}  // namespace

TEST_CASE("int8 product: every path of this build equals the reference (odd sizes)") {
  std::size_t cases = 0;
  check_gemm_path<qk::isa::scalar>(cases);
  check_gemm_path<qk::isa::avx2>(cases);
  check_gemm_path<qk::isa::avx512bw>(cases);
  check_gemm_path<qk::isa::avx512vnni>(cases);
  check_gemm_path<qk::isa::neon>(cases);
  check_gemm_path<qk::isa::neon_dot>(cases);
  MESSAGE("best path of this build: " << std::string(qk::isa_name(qk::best)));
  CHECK(cases >= 210);
}

TEST_CASE("requantisation rows: every path of this build equals the scalar reference") {
  check_requantize_path<qk::isa::scalar>();
  check_requantize_path<qk::isa::avx2>();
  check_requantize_path<qk::isa::avx512bw>();
  check_requantize_path<qk::isa::avx512vnni>();
  check_requantize_path<qk::isa::neon>();
  check_requantize_path<qk::isa::neon_dot>();
}
