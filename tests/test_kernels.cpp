// Every SIMD kernel against its scalar reference, over odd and even sizes, float and double, bit
// for bit: the references (kernels/reference.hpp) define the order of every sum and where a
// multiply-add is fused, so a kernel that equals them here computes the same bits on every
// instruction set (AVX-512, AVX2, NEON: one vector width or another changes nothing). The
// references are themselves checked against sums in double precision (within a tolerance), and
// graft's exp, log, tanh, sigmoid and cos(pi x) against libm (within a few ulp).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include <graft/kernels/conv.hpp>
#include <graft/kernels/elementwise.hpp>
#include <graft/kernels/gemm.hpp>
#include <graft/kernels/parallel.hpp>
#include <graft/kernels/pool.hpp>
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
// A kernel's result equals its reference's bit for bit; on a mismatch, how many elements differ
// and by how much at most (sums of `terms` terms).
template <class T>
void check_same(const std::vector<T>& a, const std::vector<T>& b, std::size_t terms) {
  REQUIRE(a.size() == b.size());
  std::size_t differ = 0;
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) {
      ++differ;
      worst = std::max(worst, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    }
  INFO(differ << " of " << a.size() << " elements differ, by up to " << worst << " (sums of "
              << terms << " terms)");
  CHECK(differ == 0);
}
// A result within a tolerance of the same sums in double precision (the references' accuracy).
template <class T>
void check_near(const std::vector<T>& a, const std::vector<double>& b, std::size_t terms) {
  REQUIRE(a.size() == b.size());
  const double tol = (sizeof(T) == 4 ? 1e-5 : 1e-13) * static_cast<double>(terms + 1);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::abs(static_cast<double>(a[i]) - b[i]) > tol) ++bad;
  CHECK(bad == 0);
}
template <class T> std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

constexpr std::size_t sizes[] = {1, 2, 3, 17, 63, 65, 257};

template <class T, std::size_t N> void gemm_cases() {
  for (std::size_t M : sizes)
    // K = 300: more than one cache block of B (block_depth) on every vector width
    for (std::size_t K :
         {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{65}, std::size_t{300}}) {
      CAPTURE(M);
      CAPTURE(K);
      CAPTURE(N);
      const auto A = random_vector<T>(M * K, 1), B = random_vector<T>(K * N, 2);
      for (bool acc : {false, true}) {
        auto C = random_vector<T>(M * N, 3), R = C;
        k::gemm_bcast<N>(M, K, A.data(), K, 1, B.data(), C.data(), acc);
        ref::gemm_bcast(M, K, N, A.data(), K, 1, B.data(), R.data(), acc);
        check_same(C, R, K);
        // the reference itself: the same sums in double precision, within a tolerance
        auto Rd = to_double(random_vector<T>(M * N, 3));
        const auto Ad = to_double(A), Bd = to_double(B);
        ref::gemm_bcast(M, K, N, Ad.data(), K, 1, Bd.data(), Rd.data(), acc);
        check_near(R, Rd, K);
      }
      // transposed A: C[K x N] = A^T[K x M] * Y[M x N]  (the weight gradient)
      const auto Y = random_vector<T>(M * N, 4);
      auto C = random_vector<T>(K * N, 5), R = C;
      k::gemm_bcast<N>(K, M, A.data(), 1, K, Y.data(), C.data(), false);
      ref::gemm_bcast(K, M, N, A.data(), 1, K, Y.data(), R.data(), false);
      check_same(C, R, M);
      auto s = random_vector<T>(N, 6), rs = s;
      k::column_sum<N>(M, Y.data(), s.data(), true);
      ref::column_sum(M, N, Y.data(), rs.data(), true);
      check_same(s, rs, M);
    }
}

template <class T, std::size_t K, std::size_t N> void dot_case() {
  for (std::size_t M : sizes) {
    CAPTURE(M);
    CAPTURE(K);
    CAPTURE(N);
    const auto Y = random_vector<T>(M * N, 7), W = random_vector<T>(K * N, 8);
    std::vector<T> D(M * K), R(M * K);
    k::gemm_nt_packed<K, N>(M, Y.data(), W.data(), D.data());
    ref::gemm_nt_packed(M, K, N, Y.data(), W.data(), R.data());
    check_same(D, R, N);
    k::gemm_nt_packed<K, N>(M, Y.data(), W.data(), D.data(), true);  // accumulate: D = 2 Y W^T
    ref::gemm_nt_packed(M, K, N, Y.data(), W.data(), R.data(), true);
    check_same(D, R, 2 * N);
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
    k::gemm_nt_dots<K, N>(M, Y.data(), W.data(), D.data());
    ref::gemm_nt_dots(M, K, N, Y.data(), W.data(), R.data());
    check_same(D, R, N);
    std::vector<double> Dd(M * K);  // the lane order's sums: accurate
    ref::gemm_nt_packed(M, K, N, to_double(Y).data(), to_double(W).data(), Dd.data());
    check_near(R, Dd, N);
    k::gemm_nt_dots<K, N>(M, Y.data(), W.data(), D.data(), true);
    ref::gemm_nt_dots(M, K, N, Y.data(), W.data(), R.data(), true);
    check_same(D, R, 2 * N);
    // rows do not depend on how many others there are (bitwise)
    std::vector<T> D1(K);
    k::gemm_nt_dots<K, N>(1, Y.data() + (M - 1) * N, W.data(), D1.data());
    k::gemm_nt_dots<K, N>(M, Y.data(), W.data(), D.data());
    CHECK(std::equal(D1.begin(), D1.end(), D.begin() + static_cast<std::ptrdiff_t>((M - 1) * K)));
    auto s = random_vector<T>(M, 11), rs = s;
    k::row_sum<N>(M, Y.data(), s.data(), true);
    ref::row_sum(M, N, Y.data(), rs.data(), true);
    check_same(s, rs, N);
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
  // columns past the 2-vector blocks: a 1-vector block and scalars, by the vector width
  dot_case<T, 24, 40>();
  dot_case<T, 120, 31>();
  dot_case<T, 784, 20>();
}
}  // namespace

TEST_CASE_TEMPLATE("gemm_bcast and column_sum match the reference", T, float, double) {
  gemm_cases<T, 1>();
  gemm_cases<T, 120>();  // one or two rows: the single-vector columns together
  gemm_cases<T, 3>();
  gemm_cases<T, 10>();  // a classifier's outputs: fewer columns than an AVX-512 vector of floats
  gemm_cases<T, 16>();
  gemm_cases<T, 17>();
  gemm_cases<T, 63>();
  gemm_cases<T, 65>();
  gemm_cases<T, 257>();
}

TEST_CASE_TEMPLATE("gemm_nt_packed matches the reference", T, float, double) { dot_cases<T>(); }

TEST_CASE_TEMPLATE("gemm_nt_dots and row_sum match the reference", T, float, double) {
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

// parallel::for_range (in a GRAFT_PARALLEL build with GRAFT_THREADS=2: ctest kernels_threads):
// every index exactly once, over many splits in a row (the pool's generations), with calls nested
// inside a part (run serially) and from two threads at once (one of them serially).
TEST_CASE("parallel::for_range covers every index once: repeated, nested and concurrent calls") {
  namespace par = graft::parallel;
  constexpr std::size_t n = 997;
  std::vector<std::atomic<int>> hits(n);
  auto split = [&](std::size_t min_items) {
    par::for_range(n, min_items, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
    });
  };
  int rounds = 0;
  for (; rounds < 2000; ++rounds) split(rounds % 7 + 1);
  std::atomic<int> inner{0};
  par::for_range(64, 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i)
      par::for_range(8, 1, [&](std::size_t ib, std::size_t ie) {
        inner.fetch_add(static_cast<int>(ie - ib), std::memory_order_relaxed);
      });
  });
  CHECK(inner.load() == 64 * 8);
  std::thread other([&] {
    for (int r = 0; r < 500; ++r) split(1);
  });
  for (int r = 0; r < 500; ++r) split(1);
  other.join();
  rounds += 1000;
  std::size_t wrong = 0;
  for (auto& h : hits) wrong += h.load() == rounds ? 0 : 1;
  CHECK(wrong == 0);
  MESSAGE("threads: " << par::threads() << (par::available() ? " (threaded build)" : ""));
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
  k::gemm_nt_packed<784, 256>(64, Y.data(), B.data(), d1.data());
  graft::parallel::set_threads(2);
  k::gemm_bcast<256>(64, 784, A.data(), 784, 1, B.data(), c2.data(), false);
  k::gemm_nt_packed<784, 256>(64, Y.data(), B.data(), d2.data());
  CHECK(c1 == c2);
  CHECK(d1 == d2);
  std::vector<float> r(64 * 256);
  ref::gemm_bcast(64, 784, 256, A.data(), 784, 1, B.data(), r.data(), false);
  check_same(c2, r, 784);
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
  // LeNet's two convolutions (direct forward + gemm_nt_dots weight gradient; transposed weight
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
      std::vector<float> ws(graft::detail::training_workspace_of<L>(B));
      l->forward(x.data(), y.data(), B, ws.data());
      l->template backward<true, (1U << L::params.size()) - 1U, graft::train_mode{}>(
          x.data(), y.data(), dy.data(), dx.data(), grads, B, ws.data());
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

// --- element-wise, convolution and pooling kernels (moved out of the layers), bitwise where the
// kernel does the reference's operations in the same order.
namespace {
template <class T> bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  // (empty vectors may hold null pointers, which memcmp must not receive even for 0 bytes)
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}
// Few distinct values (ties), some -0 and +0, and a few NaN.
template <class T> std::vector<T> awkward_vector(std::size_t n, std::uint64_t seed) {
  graft::splitmix64 rng(seed);
  std::vector<T> v(n);
  for (auto& x : v) {
    const auto c = rng.below(12);
    x = c == 0 ? std::numeric_limits<T>::quiet_NaN()
               : (c == 1 ? T(-0.0) : (c == 2 ? T(0) : static_cast<T>(rng.below(4)) - T(1)));
  }
  return v;
}
// Random values with some -0, +0 and NaN.
template <class T> std::vector<T> signed_vector(std::size_t n, std::uint64_t seed) {
  graft::splitmix64 rng(seed);
  std::vector<T> v(n);
  for (auto& x : v) {
    const auto c = rng.below(10);
    x = c == 0 ? std::numeric_limits<T>::quiet_NaN()
               : (c == 1 ? T(-0.0) : (c == 2 ? T(0) : static_cast<T>(rng.uniform(-1, 1))));
  }
  return v;
}
struct scalar_only_square {  // a map with no batch form: map runs it on scalars throughout
  template <std::floating_point T> T operator()(T x) const noexcept { return x * x; }
};
static_assert(k::maps_batches<k::relu, float>);
// double: vectors except on armv7 (no double NEON), where maps run on scalars
static_assert(k::maps_batches<k::relu_grad, double> == k::vectorised<double>);
static_assert(k::maps_batches<k::leaky_relu<1, 100>, float>);
static_assert(!k::maps_batches<scalar_only_square, float>);
}  // namespace

TEST_CASE_TEMPLATE("element-wise maps, copy and add match the reference bitwise (NaN, -0)", T,
                   float, double) {
  for (std::size_t n :
       {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{7}, std::size_t{17},
        std::size_t{63}, std::size_t{65}, std::size_t{257}, std::size_t{1001}})
    for (std::size_t offset : {std::size_t{0}, std::size_t{1}}) {  // unaligned starts too
      CAPTURE(n);
      CAPTURE(offset);
      const auto x = signed_vector<T>(n + offset, 41), dy = signed_vector<T>(n + offset, 42);
      const T* xs = x.data() + offset;
      const T* dys = dy.data() + offset;
      std::vector<T> y(n), r(n);
      k::map<k::relu>(n, xs, y.data());
      ref::relu(n, xs, r.data());
      CHECK(same_bits(y, r));
      k::map_grad<k::relu_grad>(n, xs, dys, y.data());  // x read as an output: NaN, -0 included
      ref::relu_grad(n, xs, dys, r.data());
      CHECK(same_bits(y, r));
      k::map<k::leaky_relu<1, 100>>(n, xs, y.data());
      ref::leaky_relu(n, static_cast<T>(0.01), xs, r.data());
      CHECK(same_bits(y, r));
      k::map_grad<k::leaky_relu_grad<1, 100>>(n, xs, dys, y.data());
      ref::leaky_relu_grad(n, static_cast<T>(0.01), xs, dys, r.data());
      CHECK(same_bits(y, r));
      k::map<k::leaky_relu<2, 10>>(n, xs, y.data());
      ref::leaky_relu(n, static_cast<T>(0.2), xs, r.data());
      CHECK(same_bits(y, r));
      k::map<scalar_only_square>(n, xs, y.data());
      for (std::size_t i = 0; i < n; ++i) r[i] = xs[i] * xs[i];
      CHECK(same_bits(y, r));
      // copy: exactly the source, nothing written past n
      std::vector<T> c(n + 3, T(7));
      k::copy(n, xs, c.data());
      std::vector<T> expected(xs, xs + n);
      expected.insert(expected.end(), 3, T(7));
      CHECK(same_bits(c, expected));
      // add
      std::vector<T> a(dys, dys + n), ra = a;
      k::add(n, xs, a.data());
      ref::add(n, xs, ra.data());
      CHECK(same_bits(a, ra));
    }
}

namespace {
// im2col (full and partial row ranges: only the image's entries written) and col2im, against the
// reference, bitwise.
template <class T, std::size_t C, std::size_t H, std::size_t W, std::size_t K, std::size_t S,
          std::size_t P, std::size_t LD>
void im2col_case() {
  constexpr std::size_t HO = (H + 2 * P - K) / S + 1, WO = (W + 2 * P - K) / S + 1;
  constexpr std::size_t CKK = C * K * K;
  static_assert(LD >= HO * WO);
  INFO("C H W K S P LD = " << C << " " << H << " " << W << " " << K << " " << S << " " << P << " "
                           << LD);
  const auto x = random_vector<T>(C * H * W, 51);
  std::vector<T> col(CKK * LD, T(0)), rcol(CKK * LD, T(0));
  k::im2col<C, H, W, K, S, P, LD>(x.data(), col.data(), 0, CKK);
  ref::im2col(C, H, W, K, S, P, LD, x.data(), rcol.data());
  CHECK(same_bits(col, rcol));
  // which entries come from the image: the reference's matrix of an image of ones
  const std::vector<T> ones(C * H * W, T(1));
  std::vector<T> inside(CKK * LD, T(0));
  ref::im2col(C, H, W, K, S, P, LD, ones.data(), inside.data());
  const T sentinel(7.5);
  for (std::size_t begin : {std::size_t{0}, CKK / 3})
    for (std::size_t end : {CKK / 3 + 1, CKK}) {
      CAPTURE(begin);
      CAPTURE(end);
      std::vector<T> part(CKK * LD, sentinel);
      k::im2col<C, H, W, K, S, P, LD>(x.data(), part.data(), begin, end);
      std::size_t bad = 0;
      for (std::size_t row = 0; row < CKK; ++row)
        for (std::size_t j = 0; j < LD; ++j) {
          const std::size_t i = row * LD + j;
          const bool written = row >= begin && row < end && inside[i] == T(1);
          bad += (written ? part[i] == rcol[i] : part[i] == sentinel) ? 0 : 1;
        }
      CHECK(bad == 0);
    }
  // col2im: the columns past HO * WO are ignored; dx is overwritten
  const auto dcol = random_vector<T>(CKK * LD, 52);
  std::vector<T> dx(C * H * W, sentinel), rdx(C * H * W, sentinel);
  k::col2im<C, H, W, K, S, P, LD>(dcol.data(), dx.data());
  ref::col2im(C, H, W, K, S, P, LD, dcol.data(), rdx.data());
  CHECK(same_bits(dx, rdx));
}
template <class T, std::size_t C, std::size_t H, std::size_t W, std::size_t K, std::size_t S,
          std::size_t P>
void im2col_cases() {
  constexpr std::size_t V = k::simd_width<T>;
  constexpr std::size_t HWO = ((H + 2 * P - K) / S + 1) * ((W + 2 * P - K) / S + 1);
  im2col_case<T, C, H, W, K, S, P, (HWO + V - 1) / V * V>();  // as conv2d pads its rows
  im2col_case<T, C, H, W, K, S, P, HWO + 3>();
}
}  // namespace

TEST_CASE_TEMPLATE("im2col and col2im match the reference bitwise", T, float, double) {
  im2col_cases<T, 1, 28, 28, 5, 1, 2>();  // LeNet's conv1
  im2col_cases<T, 6, 14, 14, 5, 1, 0>();  // and conv2
  im2col_cases<T, 3, 7, 9, 3, 2, 1>();
  im2col_cases<T, 2, 9, 6, 3, 1, 0>();
  im2col_cases<T, 2, 5, 11, 1, 3, 0>();
  im2col_cases<T, 3, 11, 9, 3, 2, 0>();
  im2col_cases<T, 2, 6, 5, 2, 3, 2>();
  im2col_cases<T, 1, 3, 3, 4, 1, 2>();  // the kernel larger than the image
  im2col_cases<T, 2, 13, 17, 5, 1, 2>();
}

namespace {
// The direct convolution: bitwise what im2col + gemm_bcast<HWOP, Epi> give (rows of HWOP, outputs
// started at the bias), and the reference (the same fmadd chain, padding terms included).
template <class T, std::size_t C, std::size_t H, std::size_t W, std::size_t F, std::size_t K,
          std::size_t P>
void direct_case(bool with_bias) {
  constexpr std::size_t HO = H + 2 * P - K + 1, WO = W + 2 * P - K + 1, HWO = HO * WO;
  constexpr std::size_t V = k::simd_width<T>, HWOP = (HWO + V - 1) / V * V, CKK = C * K * K;
  if constexpr (k::conv_direct_fits<T, WO>) {  // (on AVX-512 with AVX2 vectors for short rows)
    INFO("C H W F K P = " << C << " " << H << " " << W << " " << F << " " << K << " " << P
                          << ", bias " << with_bias);
    const auto x = random_vector<T>(C * H * W, 61), w = random_vector<T>(F * CKK, 62),
               b = random_vector<T>(F, 63), other = random_vector<T>(C * H * W, 64);
    const T* bias = with_bias ? b.data() : nullptr;
    std::vector<T> xp(C * (H + 2 * P) * (W + 2 * P), T(0));  // zero border, written once
    std::vector<T> y(F * HWO), y_relu(F * HWO), first(F * HWO);
    k::conv_direct<C, H, W, F, K, P>(other.data(), w.data(), bias, xp.data(), first.data());
    k::conv_direct<C, H, W, F, K, P>(x.data(), w.data(), bias, xp.data(), y.data());
    k::conv_direct<C, H, W, F, K, P, k::relu>(x.data(), w.data(), bias, xp.data(), y_relu.data());
    // im2col + gemm_bcast
    std::vector<T> col(CKK * HWOP, T(0)), out(F * HWOP), out_relu(F * HWOP);
    k::im2col<C, H, W, K, 1, P, HWOP>(x.data(), col.data(), 0, CKK);
    for (std::size_t f = 0; f < F; ++f)
      for (std::size_t i = 0; i < HWOP; ++i)
        out[f * HWOP + i] = out_relu[f * HWOP + i] = with_bias ? b[f] : T(0);
    k::gemm_bcast<HWOP>(F, CKK, w.data(), CKK, 1, col.data(), out.data(), true);
    k::gemm_bcast<HWOP, k::relu>(F, CKK, w.data(), CKK, 1, col.data(), out_relu.data(), true);
    std::vector<T> g(F * HWO), g_relu(F * HWO);
    for (std::size_t f = 0; f < F; ++f)
      for (std::size_t i = 0; i < HWO; ++i) {
        g[f * HWO + i] = out[f * HWOP + i];
        g_relu[f * HWO + i] = out_relu[f * HWOP + i];
      }
    CHECK(same_bits(y, g));
    CHECK(same_bits(y_relu, g_relu));
    std::vector<T> r(F * HWO);
    ref::conv2d(C, H, W, F, K, std::size_t{1}, P, x.data(), w.data(), bias, r.data());
    check_same(y, r, CKK);
  }
}
template <class T, std::size_t C, std::size_t H, std::size_t W, std::size_t F, std::size_t K,
          std::size_t P>
void direct_cases() {
  direct_case<T, C, H, W, F, K, P>(true);
  direct_case<T, C, H, W, F, K, P>(false);
}
}  // namespace

TEST_CASE_TEMPLATE(
    "conv_direct equals im2col + gemm_bcast and the reference bitwise (epilogue too)", T, float,
    double) {
  direct_cases<T, 1, 28, 28, 6, 5, 2>();  // LeNet's conv1 (rows of 28: AVX2 vectors on AVX-512)
  direct_cases<T, 1, 6, 37, 6, 5, 2>();   // rows of 37 on every instruction set
  direct_cases<T, 2, 5, 40, 7, 3, 0>();   // 6 + 1 filters
  direct_cases<T, 3, 4, 33, 13, 1, 0>();  // 6 + 6 + 1
  direct_cases<T, 2, 3, 35, 1, 3, 1>();   // one filter (gemm_bcast's one-row product)
  direct_cases<T, 2, 7, 50, 12, 3, 1>();
}

namespace {
template <class T, std::size_t H, std::size_t W, std::size_t K, std::size_t S> void pool_case() {
  constexpr std::size_t HO = (H - K) / S + 1, WO = (W - K) / S + 1;
  for (std::size_t planes : {std::size_t{1}, std::size_t{3}, std::size_t{5}}) {
    INFO("H W K S = " << H << " " << W << " " << K << " " << S << ", planes " << planes);
    const auto x = awkward_vector<T>(planes * H * W, 70 + planes);
    auto dy = random_vector<T>(planes * HO * WO, 80 + planes);
    for (std::size_t i = 0; i < dy.size(); i += 7) dy[i] = T(-0.0);  // lands as +0
    const T sentinel(7.5);
    std::vector<T> y(planes * HO * WO), r(y.size());
    std::vector<T> dx(planes * H * W, sentinel), rdx(dx.size(), sentinel);
    k::max_pool<H, W, K, S>(planes, x.data(), y.data());
    ref::max_pool(planes, H, W, K, S, x.data(), r.data());
    CHECK(same_bits(y, r));
    k::max_pool_backward<H, W, K, S>(planes, x.data(), dy.data(), dx.data());
    ref::max_pool_backward(planes, H, W, K, S, x.data(), dy.data(), rdx.data());
    CHECK(same_bits(dx, rdx));
    k::avg_pool<H, W, K, S>(planes, x.data(), y.data());
    ref::avg_pool(planes, H, W, K, S, x.data(), r.data());
    CHECK(same_bits(y, r));
    std::fill(dx.begin(), dx.end(), sentinel);
    k::avg_pool_backward<H, W, K, S>(planes, dy.data(), dx.data());
    ref::avg_pool_backward(planes, H, W, K, S, dy.data(), rdx.data());
    CHECK(same_bits(dx, rdx));
    const auto xr = random_vector<T>(planes * H * W, 100 + planes);
    std::vector<T> gy(planes), rgy(planes), gdx(planes * H * W, sentinel), rgdx(gdx.size());
    k::global_avg_pool<H * W>(planes, xr.data(), gy.data());
    ref::global_avg_pool(planes, H * W, xr.data(), rgy.data());
    CHECK(same_bits(gy, rgy));
    k::global_avg_pool_backward<H * W>(planes, gy.data(), gdx.data());
    ref::global_avg_pool_backward(planes, H * W, gy.data(), rgdx.data());
    CHECK(same_bits(gdx, rgdx));
  }
}
}  // namespace

TEST_CASE_TEMPLATE("pooling kernels match the reference bitwise (ties, NaN, -0)", T, float,
                   double) {
  // 2 x 2 windows, stride 2: whole vectors where AVX2 or AVX-512 is the instruction set (full-width
  // and half-width rows, odd sizes leaving a row or column uncovered), scalars elsewhere
  if constexpr (std::is_base_of_v<xsimd::avx2, xsimd::default_arch> ||
                std::is_base_of_v<xsimd::avx512f, xsimd::default_arch>) {
    CHECK((k::detail::max_pool2_rows<T, 28, 2, 2, xsimd::default_arch>));
    CHECK((k::detail::max_pool2_rows<T, 66, 2, 2, xsimd::default_arch>));
  }
  pool_case<T, 28, 28, 2, 2>();
  pool_case<T, 10, 10, 2, 2>();
  pool_case<T, 7, 9, 2, 2>();
  pool_case<T, 9, 35, 2, 2>();
  pool_case<T, 5, 5, 2, 2>();
  pool_case<T, 4, 40, 2, 2>();
  pool_case<T, 3, 66, 2, 2>();
  pool_case<T, 2, 3, 2, 2>();
  // other windows: not overlapping (S == K), overlapping, stride 1, the whole plane
  pool_case<T, 9, 7, 3, 3>();
  pool_case<T, 10, 11, 3, 3>();
  pool_case<T, 9, 11, 3, 2>();
  pool_case<T, 6, 7, 2, 1>();
  pool_case<T, 5, 8, 3, 1>();
  pool_case<T, 4, 4, 4, 4>();
  pool_case<T, 1, 1, 1, 1>();
}

TEST_CASE_TEMPLATE("all_finite finds a NaN or an infinity anywhere, at every length", T, float,
                   double) {
  std::vector<T> v(203, T(0.5));
  for (std::size_t n : {0, 1, 3, 7, 8, 15, 16, 17, 63, 64, 65, 130, 203}) {
    CAPTURE(n);
    CHECK(graft::kernels::all_finite(v.data(), n));
    for (std::size_t at = 0; at < n; at += (n > 40 ? 13 : 1))
      for (const T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                          -std::numeric_limits<T>::infinity()}) {
        CAPTURE(at);
        v[at] = bad;
        CHECK_FALSE(graft::kernels::all_finite(v.data(), n));
        CHECK(graft::kernels::all_finite(v.data() + at + 1, n - at - 1));  // the rest is finite
        v[at] = T(0.5);
      }
  }
  v[5] = std::numeric_limits<T>::max();  // large but finite: max - max is 0
  v[6] = std::numeric_limits<T>::denorm_min();
  CHECK(graft::kernels::all_finite(v.data(), v.size()));
}
