// Every SIMD kernel against its scalar reference, over odd and even sizes, float and double.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <graft/kernels/gemm.hpp>
#include <graft/kernels/parallel.hpp>
#include <graft/kernels/reference.hpp>
#include <graft/layers/activations.hpp>
#include <graft/layers/conv2d.hpp>
#include <graft/layers/pooling.hpp>
#include <graft/random/random.hpp>

namespace k = graft::kernels;
namespace ref = graft::kernels::reference;

namespace {
template <class T> std::vector<T> random_vector(std::size_t n, std::uint64_t seed) {
  graft::splitmix64 rng(seed);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(rng.uniform(-1.0, 1.0));
  return v;
}
// Accumulation order differs between kernel and reference: compare with a tolerance scaled by the
// length of the sums.
template <class T>
void check_near(const std::vector<T>& a, const std::vector<T>& b, std::size_t terms) {
  REQUIRE(a.size() == b.size());
  const double tol = (sizeof(T) == 4 ? 1e-5 : 1e-13) * static_cast<double>(terms + 1);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])) > tol) ++bad;
  CHECK(bad == 0);
}

constexpr std::size_t sizes[] = {1, 2, 3, 17, 63, 65, 257};

template <class T, std::size_t N> void gemm_cases() {
  for (std::size_t M : sizes)
    for (std::size_t K : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{65}}) {
      CAPTURE(M);
      CAPTURE(K);
      CAPTURE(N);
      const auto A = random_vector<T>(M * K, 1), B = random_vector<T>(K * N, 2);
      for (bool acc : {false, true}) {
        auto C = random_vector<T>(M * N, 3), R = C;
        k::gemm_bcast<N>(M, K, A.data(), K, 1, B.data(), C.data(), acc);
        ref::gemm_bcast(M, K, N, A.data(), K, 1, B.data(), R.data(), acc);
        check_near(C, R, K);
      }
      // transposed A: C[K x N] = A^T[K x M] * Y[M x N]  (the weight gradient)
      const auto Y = random_vector<T>(M * N, 4);
      auto C = random_vector<T>(K * N, 5), R = C;
      k::gemm_bcast<N>(K, M, A.data(), 1, K, Y.data(), C.data(), false);
      ref::gemm_bcast(K, M, N, A.data(), 1, K, Y.data(), R.data(), false);
      check_near(C, R, M);
      auto s = random_vector<T>(N, 6), rs = s;
      k::column_sum<N>(M, Y.data(), s.data(), true);
      ref::column_sum(M, N, Y.data(), rs.data(), true);
      check_near(s, rs, M);
    }
}

template <class T, std::size_t K, std::size_t N> void dot_case() {
  for (std::size_t M : sizes) {
    CAPTURE(M);
    CAPTURE(K);
    CAPTURE(N);
    const auto Y = random_vector<T>(M * N, 7), W = random_vector<T>(K * N, 8);
    std::vector<T> D(M * K), R(M * K);
    k::gemm_dot<K, N>(M, Y.data(), W.data(), D.data());
    ref::gemm_dot(M, K, N, Y.data(), W.data(), R.data());
    check_near(D, R, N);
    k::gemm_dot<K, N>(M, Y.data(), W.data(), D.data(), true);  // accumulate: D = 2 Y W^T
    ref::gemm_dot(M, K, N, Y.data(), W.data(), R.data(), true);
    check_near(D, R, 2 * N);
  }
}
template <class T, std::size_t K, std::size_t N> void nt_case() {
  for (std::size_t M : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{5},
                        std::size_t{6}, std::size_t{16}, std::size_t{17}}) {
    CAPTURE(M);
    CAPTURE(K);
    CAPTURE(N);
    const auto Y = random_vector<T>(M * N, 9), W = random_vector<T>(K * N, 10);
    std::vector<T> D(M * K), R(M * K);
    k::gemm_nt<K, N>(M, Y.data(), W.data(), D.data());
    ref::gemm_dot(M, K, N, Y.data(), W.data(), R.data());
    check_near(D, R, N);
    k::gemm_nt<K, N>(M, Y.data(), W.data(), D.data(), true);
    ref::gemm_dot(M, K, N, Y.data(), W.data(), R.data(), true);
    check_near(D, R, 2 * N);
    // rows do not depend on how many others there are (bitwise)
    std::vector<T> D1(K);
    k::gemm_nt<K, N>(1, Y.data() + (M - 1) * N, W.data(), D1.data());
    k::gemm_nt<K, N>(M, Y.data(), W.data(), D.data());
    CHECK(std::equal(D1.begin(), D1.end(), D.begin() + static_cast<std::ptrdiff_t>((M - 1) * K)));
    auto s = random_vector<T>(M, 11), rs = s;
    k::row_sum<N>(M, Y.data(), s.data(), true);
    ref::row_sum(M, N, Y.data(), rs.data(), true);
    check_near(s, rs, N);
  }
}
template <class T> void dot_cases() {
  dot_case<T, 1, 1>();
  dot_case<T, 3, 17>();
  dot_case<T, 17, 3>();
  dot_case<T, 63, 65>();
  dot_case<T, 65, 63>();
  dot_case<T, 257, 10>();
  dot_case<T, 10, 257>();
  dot_case<T, 64, 64>();
}
}  // namespace

TEST_CASE_TEMPLATE("gemm_bcast and column_sum match the reference", T, float, double) {
  gemm_cases<T, 1>();
  gemm_cases<T, 120>();  // one or two rows: the single-vector columns together
  gemm_cases<T, 3>();
  gemm_cases<T, 16>();
  gemm_cases<T, 17>();
  gemm_cases<T, 63>();
  gemm_cases<T, 65>();
  gemm_cases<T, 257>();
}

TEST_CASE_TEMPLATE("gemm_dot matches the reference", T, float, double) { dot_cases<T>(); }

TEST_CASE_TEMPLATE("gemm_nt and row_sum match the reference", T, float, double) {
  nt_case<T, 1, 1>();
  nt_case<T, 3, 17>();
  nt_case<T, 25, 784>();
  nt_case<T, 150, 100>();
  nt_case<T, 7, 33>();
  nt_case<T, 5, 67>();
}

TEST_CASE_TEMPLATE("gemm_bcast: an epilogue is applied once, to the finished sums", T, float,
                   double) {
  // relu of the whole sum: applying it to a partial sum (one block of P = 256), or twice, or
  // not at all would give other values. Compared bitwise with the product followed by relu.
  using relu = k::relu;
  std::size_t negative = 0;  // values the epilogue changed, over all cases
  auto check = [&](auto n_tag) {
    constexpr std::size_t N = decltype(n_tag)::value;
    for (std::size_t M : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}})
      for (std::size_t K : {std::size_t{5}, std::size_t{300}, std::size_t{600}}) {
        CAPTURE(M);
        CAPTURE(K);
        CAPTURE(N);
        const auto A = random_vector<T>(M * K, 31), B = random_vector<T>(K * N, 32);
        for (bool acc : {false, true}) {
          auto C = random_vector<T>(M * N, 33), R = C;
          k::gemm_bcast<N, relu>(M, K, A.data(), K, 1, B.data(), C.data(), acc);
          k::gemm_bcast<N>(M, K, A.data(), K, 1, B.data(), R.data(), acc);
          for (auto& r : R) {
            negative += r < T(0) ? 1 : 0;
            r = relu{}(r);
          }
          CHECK(C == R);
        }
      }
  };
  check(std::integral_constant<std::size_t, 1>{});
  check(std::integral_constant<std::size_t, 17>{});
  check(std::integral_constant<std::size_t, 65>{});
  check(std::integral_constant<std::size_t, 256>{});
  CHECK(negative > 1000);  // the epilogue had work to do
}

TEST_CASE("the kernel comparison detects a wrong result") {
  // Guard against a comparison that cannot fail: perturb one element and expect a difference.
  const auto A = random_vector<float>(5 * 7, 1), B = random_vector<float>(7 * 9, 2);
  std::vector<float> C(5 * 9), R(5 * 9);
  k::gemm_bcast<9>(5, 7, A.data(), 7, 1, B.data(), C.data(), false);
  ref::gemm_bcast(5, 7, 9, A.data(), 7, 1, B.data(), R.data(), false);
  R[17] += 1e-3f;
  std::size_t differing = 0;
  for (std::size_t i = 0; i < C.size(); ++i) differing += std::abs(C[i] - R[i]) > 1e-4f ? 1 : 0;
  CHECK(differing == 1);
}

TEST_CASE("threads: the same results, bitwise, on one thread and on several") {
  CHECK(graft::parallel::threads() >= 1);
  if (graft::parallel::available()) {
    CHECK(graft::parallel::threads() == 2);  // GRAFT_THREADS=2 in this test's environment
  }
  const auto A = random_vector<float>(64 * 784, 1), B = random_vector<float>(784 * 256, 2);
  const auto Y = random_vector<float>(64 * 256, 3);
  std::vector<float> c1(64 * 256), c2(64 * 256), d1(64 * 784), d2(64 * 784);
  graft::parallel::set_threads(1);
  k::gemm_bcast<256>(64, 784, A.data(), 784, 1, B.data(), c1.data(), false);
  k::gemm_dot<784, 256>(64, Y.data(), B.data(), d1.data());
  graft::parallel::set_threads(2);
  k::gemm_bcast<256>(64, 784, A.data(), 784, 1, B.data(), c2.data(), false);
  k::gemm_dot<784, 256>(64, Y.data(), B.data(), d2.data());
  CHECK(c1 == c2);
  CHECK(d1 == d2);
  std::vector<float> r(64 * 256);
  ref::gemm_bcast(64, 784, 256, A.data(), 784, 1, B.data(), r.data(), false);
  check_near(c2, r, 784);
}

TEST_CASE_TEMPLATE("gemm_bcast: a row's result does not depend on how many rows there are", T,
                   float, double) {
  auto check = [](auto n_tag) {
    constexpr std::size_t N = decltype(n_tag)::value, K = 300, M = 17;
    const auto A = random_vector<T>(M * K, 12), B = random_vector<T>(K * N, 13);
    std::vector<T> all(M * N);
    k::gemm_bcast<N>(M, K, A.data(), K, 1, B.data(), all.data(), false);
    for (std::size_t rows : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{6}}) {
      std::vector<T> some(rows * N);
      k::gemm_bcast<N>(rows, K, A.data() + K, K, 1, B.data(), some.data(), false);  // from row 1
      CHECK(std::equal(some.begin(), some.end(), all.begin() + N));
    }
  };
  check(std::integral_constant<std::size_t, 120>{});
  check(std::integral_constant<std::size_t, 17>{});
  check(std::integral_constant<std::size_t, 104>{});
}

TEST_CASE("threads: convolution forward and backward, bitwise the same on one thread and two") {
  // LeNet's two convolutions (direct forward + gemm_nt weight gradient; transposed weight
  // gradient) and a ResNet 3x3 convolution with padded rows (14 x 14 = 196 columns)
  auto check = [](auto tag) {
    using L = typename decltype(tag)::type;
    constexpr std::size_t B = 9, in = L::input_shape::size, out = L::output_shape::size;
    graft::splitmix64 rng(5);
    auto l = std::make_unique<L>();
    l->init(rng);
    const auto x = random_vector<float>(B * in, 21), dy = random_vector<float>(B * out, 22);
    auto run = [&](int threads) {
      graft::parallel::set_threads(threads);
      std::vector<float> y(B * out), dx(B * in), dw(L::params[0].size),
          db(L::params.size() > 1 ? L::params[1].size : 1);
      float* grads[2] = {dw.data(), db.data()};
      l->forward(x.data(), y.data(), B);
      l->template backward<true, (1U << L::params.size()) - 1U>(x.data(), y.data(), dy.data(),
                                                                dx.data(), grads, B);
      graft::parallel::set_threads(1);
      y.insert(y.end(), dx.begin(), dx.end());
      y.insert(y.end(), dw.begin(), dw.end());
      y.insert(y.end(), db.begin(), db.end());
      return y;
    };
    CHECK(run(1) == run(2));
  };
  check(std::type_identity<
        graft::conv2d<6, 5, graft::pad<2>>::bind<float, graft::shape<1, 28, 28>>>{});
  check(std::type_identity<graft::conv2d<16, 5>::bind<float, graft::shape<6, 14, 14>>>{});
  check(std::type_identity<graft::conv2d<16, 3, graft::pad<1>,
                                         graft::no_bias>::bind<float, graft::shape<16, 14, 14>>>{});
  check(std::type_identity<graft::conv2d<32, 3, graft::pad<1>, graft::stride<2>,
                                         graft::no_bias>::bind<float, graft::shape<16, 14, 14>>>{});
}

TEST_CASE("threads: relu and max_pool split rows, bitwise the same on one thread and two") {
  auto check = [](auto tag) {
    using L = typename decltype(tag)::type;
    // enough rows for two threads (each gets at least 32 Ki elements)
    constexpr std::size_t B = 64, in = L::input_shape::size, out = L::output_shape::size;
    const L l{};
    const auto x = random_vector<float>(B * in, 23), dy = random_vector<float>(B * out, 24);
    auto run = [&](int threads) {
      graft::parallel::set_threads(threads);
      std::vector<float> y(B * out), dx(B * in);
      l.forward(x.data(), y.data(), B);
      l.template backward<true, 0U>(x.data(), y.data(), dy.data(), dx.data(), nullptr, B);
      graft::parallel::set_threads(1);
      y.insert(y.end(), dx.begin(), dx.end());
      return y;
    };
    CHECK(run(1) == run(2));
  };
  check(std::type_identity<graft::relu::bind<float, graft::shape<6, 28, 28>>>{});
  check(std::type_identity<graft::max_pool<2>::bind<float, graft::shape<6, 28, 28>>>{});
  check(std::type_identity<graft::max_pool<2>::bind<float, graft::shape<16, 10, 10>>>{});
}
