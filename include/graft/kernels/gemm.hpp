// Dense-layer products on raw pointers, SIMD through xsimd. Kernels know nothing of layers or
// xtensor; the column count N (and for gemm_nt_packed, K) is a compile-time constant, the row count
// is the runtime batch size (a last, partial batch is a smaller M, not padding).
//
//   gemm_bcast : C = epi(A * B)  with A read through strides, so that X*W (forward) and X^T*dY
//                                (weight gradient) share one register-blocked micro-kernel; an
//                                epilogue (a layer's activation) is applied in registers before
//                                the store; one row (batch-1 inference) streams B row by row;
//   gemm_nt_packed : D = Y * W^T  for a batch of rows and short rows of W (a dense layer's input
//                                gradient): blocks of W^T packed on the stack, never all of W^T;
//   gemm_nt_dots   : D = Y * W^T  for few rows of long vectors (a convolution's weight gradient):
//                                tiles of vector dot products;
//   column_sum : db = sum over rows of dY;
//   row_sum    : the sum of each row (conv bias gradient).
//
// Every result is the same bit for bit on every instruction set with FMA (SSE2/SSE4.2-only x86
// and targets without FMA: the same among themselves): a GEMM element is one chain of fmadd over
// the inner index in ascending order, whatever the blocking, the vector width or the thread split;
// a dot product accumulates in the 16 float (8 double) lanes of kernels::wide and sums them in
// graft's fixed order, then adds the elements past the last whole wide vector one by one.
#pragma once
#include <cstddef>
#include <type_traits>
#include <utility>

#include <xsimd/xsimd.hpp>

#include "graft/kernels/parallel.hpp"
#include "graft/kernels/reference.hpp"
#include "graft/kernels/simd.hpp"
#include "graft/numeric/math.hpp"

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE
namespace kernels {

/// The epilogue that leaves every value as it is. An epilogue is a stateless type whose call
/// operator takes a SIMD batch or a scalar and returns the same type (see kernels/elementwise.hpp).
struct identity {
  template <class V> constexpr V operator()(V v) const noexcept { return v; }
};

namespace detail {

// R rows of C, one panel of V vectors of columns, starting at column n. B's rows are LDB apart,
// C's rows LDC apart. With `finish`, Epi is applied to the sums before they are stored (a runtime
// flag, not a second instantiation: only the last block of P finishes).
template <std::size_t R, std::size_t V, std::size_t LDB, std::size_t LDC, class Epi, class Arch,
          class T>
inline void bcast_panel(std::size_t P, const T* A, std::size_t rs, std::size_t cs, const T* B, T* C,
                        std::size_t n, bool accumulate, bool finish) noexcept {
  using batch = xsimd::batch<T, Arch>;
  constexpr std::size_t W = batch::size;
  batch acc[R][V];
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t v = 0; v < V; ++v)
      acc[r][v] = accumulate ? batch::load_unaligned(C + r * LDC + n + v * W) : batch(T(0));
  for (std::size_t p = 0; p < P; ++p) {
    batch b[V];
    for (std::size_t v = 0; v < V; ++v) b[v] = batch::load_unaligned(B + p * LDB + n + v * W);
    for (std::size_t r = 0; r < R; ++r) {
      const batch a(A[r * rs + p * cs]);
      for (std::size_t v = 0; v < V; ++v) acc[r][v] = fmadd(a, b[v], acc[r][v]);
    }
  }
  if (finish)
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t v = 0; v < V; ++v) acc[r][v] = Epi{}(acc[r][v]);
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t v = 0; v < V; ++v) acc[r][v].store_unaligned(C + r * LDC + n + v * W);
}

// Rows of a register block for a strip of V vectors: accumulators take 3/4 of the vector registers
// (12 of AVX2's 16, 24 of AVX-512's and AArch64's 32), the rest hold B's vectors and A's broadcast.
// A strip of one or two vectors gets 6 rows (12 with 32 registers), of three or four half that.
template <std::size_t V, class Arch>
inline constexpr std::size_t block_rows = V <= 2 ? vector_registers<Arch> * 3 / 8
                                                 : (V <= 4 ? vector_registers<Arch> * 3 / 16 : 1);

// Every row of C in blocks of R rows (block_rows; a remainder gets its own instantiation) for the
// column strip [n, n + V*W).
template <std::size_t V, std::size_t LDB, std::size_t LDC, class Epi, class Arch, class T>
inline void bcast_strip(std::size_t I, std::size_t P, const T* A, std::size_t rs, std::size_t cs,
                        const T* B, T* C, std::size_t n, bool accumulate,
                        bool finish = true) noexcept {
  constexpr std::size_t R = block_rows<V, Arch>;
  std::size_t i = 0;
  for (; i + R <= I; i += R)
    bcast_panel<R, V, LDB, LDC, Epi, Arch>(P, A + i * rs, rs, cs, B, C + i * LDC, n, accumulate,
                                           finish);
  const std::size_t rest = I - i;
  A += i * rs;
  C += i * LDC;
  // the remainder (1 .. R-1 rows) by its own instantiation, chosen by a fold
  [&]<std::size_t... Q>(std::index_sequence<Q...>) {
    ((rest == Q + 1
          ? bcast_panel<Q + 1, V, LDB, LDC, Epi, Arch>(P, A, rs, cs, B, C, n, accumulate, finish)
          : void()),
     ...);
  }
  (std::make_index_sequence<R - 1>{});
}

// How many rows of B one cache block holds: 256, fewer if the strip of B being multiplied (kc rows
// of V vectors) would take more than 32 KiB, the L1 of the x86 cores we target. On AVX2 the strip
// of 2 vectors then takes 16 KiB, on AVX-512 32 KiB (on a Zen 4, AVX-512, bench_mlp's
// W5_gemm_256x784x256 read 103 GFLOP/s with 256 rows against 97 with 128, three interleaved
// runs of two builds that differed only in this constant).
template <std::size_t V, class Arch, class T> inline constexpr std::size_t block_depth = [] {
  constexpr std::size_t rows = 32768 / (V * xsimd::batch<T, Arch>::size * sizeof(T));
  return rows < 256 ? rows : std::size_t{256};
}();

// The last columns [N1, N) of C, fewer than a vector (all of them where N < W: a classifier's 10
// outputs on AVX-512): B's tail columns copied into a buffer one vector wide, padded with zeros,
// and multiplied by the vector kernel into a small block of rows, whose first N - N1 lanes are
// copied out. Each element gets the same fmadd chain over p as everywhere else (the padding lanes
// are discarded), at vector speed instead of one scalar chain at a time.
template <std::size_t N, class Epi, class Arch, class T>
inline void bcast_tail(std::size_t I, std::size_t P, const T* A, std::size_t rs, std::size_t cs,
                       const T* B, T* C, bool accumulate, bool finish) noexcept {
  constexpr std::size_t W = xsimd::batch<T, Arch>::size;
  constexpr std::size_t N1 = N / W * W, t = N - N1;
  constexpr std::size_t R = block_rows<1, Arch>;
  // Blocks of at most 64 rows of B: the buffers stay small on the stack (4 KiB of floats on
  // AVX-512, 1 KiB on NEON: a microcontroller's stack counts), and the chains are the same for
  // any block (each block continues them from C).
  constexpr std::size_t KC = block_depth<1, Arch, T> < 64 ? block_depth<1, Arch, T> : 64;
  alignas(buffer_alignment) T bt[KC * W];
  alignas(buffer_alignment) T ct[R * W];
  for (std::size_t p0 = 0; p0 < P; p0 += KC) {
    const std::size_t kc = P - p0 < KC ? P - p0 : KC;
    const bool acc = accumulate || p0 > 0, last = finish && p0 + kc == P;
    for (std::size_t p = 0; p < kc; ++p)
      for (std::size_t j = 0; j < W; ++j) bt[p * W + j] = j < t ? B[(p0 + p) * N + N1 + j] : T(0);
    for (std::size_t i = 0; i < I; i += R) {
      const std::size_t rows = I - i < R ? I - i : R;
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < W; ++j)
          ct[r * W + j] = acc && j < t ? C[(i + r) * N + N1 + j] : T(0);
      bcast_strip<1, W, W, Epi, Arch>(rows, kc, A + i * rs + p0 * cs, rs, cs, bt, ct, 0, acc, last);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < t; ++j) C[(i + r) * N + N1 + j] = ct[r * W + j];
    }
  }
}

// Columns of one block of P: strips [s0, s1) of V vectors; with tails, also the columns after
// the last full strip (single vectors, then the zero-padded tail of bcast_tail).
template <std::size_t V, std::size_t N, class Epi, class Arch, class T>
inline void bcast_block(std::size_t I, std::size_t P, const T* A, std::size_t rs, std::size_t cs,
                        const T* B, T* C, bool accumulate, bool finish, std::size_t s0,
                        std::size_t s1, bool tails) noexcept {
  constexpr std::size_t W = xsimd::batch<T, Arch>::size;
  // Column ranges known while compiling: [0, NV) in strips of V vectors, [NV, N1) one vector at a
  // time, then the tail [N1, N), fewer than a vector (bcast_tail).
  constexpr std::size_t NV = N / (V * W) * (V * W);
  constexpr std::size_t N1 = NV + (N - NV) / W * W;
  for (std::size_t s = s0; s < s1; ++s)
    bcast_strip<V, N, N, Epi, Arch>(I, P, A, rs, cs, B, C, s * V * W, accumulate, finish);
  if (!tails) return;
  // The single vectors: with one or two rows, all at once (one vector at a time would be a single
  // chain of dependent FMAs, waiting on their latency); with more rows, one vector at a time in
  // blocks of 6 rows. Every element of C gets the same FMAs in the same order either way.
  constexpr std::size_t VT = (N1 - NV) / W;
  if (VT > 1 && I <= 2)
    bcast_strip<(VT > 1 ? VT : 1), N, N, Epi, Arch>(I, P, A, rs, cs, B, C, NV, accumulate, finish);
  else
    for (std::size_t n = NV; n < N1; n += W)
      bcast_strip<1, N, N, Epi, Arch>(I, P, A, rs, cs, B, C, n, accumulate, finish);
  if constexpr (N > N1) bcast_tail<N, Epi, Arch>(I, P, A, rs, cs, B, C, accumulate, finish);
}

// Work (multiply-adds) below which a kernel stays on one thread.
inline constexpr std::size_t parallel_min_work = std::size_t{1} << 18;

// A hint that what p points to will be read once, soon (nothing where the compiler has no
// builtin for it).
inline void prefetch_nta(const void* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 0);
#else
  (void)p;
#endif
}

// How far ahead (in bytes) the one-row product prefetches B.
inline constexpr std::size_t gemv_prefetch_bytes = 4096;

// One row: c[n] (+)= sum_p a[p*cs] * B[p*N + n], then Epi. Reading B column strip by column strip
// (as the blocked kernel does) jumps N elements from row to row; here B is read in the order it is
// stored, R rows at a time (R consecutive rows are one contiguous stretch), with a non-temporal
// prefetch 4 KiB ahead, so the product runs at the speed of reading B. c stays in L1 and is loaded
// and stored once per R rows. Each c[n] gets the same FMAs in the same order as in the blocked
// kernel (p ascending), so a batch-1 result equals that row of a batched one, bit for bit.
template <std::size_t N, class Epi, class Arch, class T>
inline void gemv_rows(std::size_t P, const T* a, std::size_t cs, const T* B, T* c,
                      bool accumulate) noexcept {
  using batch = xsimd::batch<T, Arch>;
  constexpr std::size_t W = batch::size;
  constexpr std::size_t R = 4;
  constexpr std::size_t NV = N / W * W;
  // vectors per 64-byte cache line (one prefetch each)
  constexpr std::size_t VL = 64 / (W * sizeof(T)) > 0 ? 64 / (W * sizeof(T)) : 1;
  constexpr std::size_t ahead = gemv_prefetch_bytes / sizeof(T);
  if (!accumulate)
    for (std::size_t n = 0; n < N; ++n) c[n] = T(0);
  auto rows = [&]<std::size_t RR>(std::size_t p, bool prefetch) {
    batch ap[RR];
    for (std::size_t r = 0; r < RR; ++r) ap[r] = batch(a[(p + r) * cs]);
    const T* b = B + p * N;
    for (std::size_t v = 0; v < NV; v += W) {
      if (prefetch && v % (VL * W) == 0)
        for (std::size_t r = 0; r < RR; ++r) prefetch_nta(b + r * N + v + ahead);
      batch acc = batch::load_unaligned(c + v);
      for (std::size_t r = 0; r < RR; ++r)
        acc = fmadd(ap[r], batch::load_unaligned(b + r * N + v), acc);
      acc.store_unaligned(c + v);
    }
    for (std::size_t n = NV; n < N; ++n) {
      T s = c[n];
      for (std::size_t r = 0; r < RR; ++r) s = math::fmadd(a[(p + r) * cs], b[r * N + n], s);
      c[n] = s;
    }
  };
  // groups of R rows (prefetching while that stays inside B), then the last rows one by one
  const std::size_t prefetch_end = P * N > ahead ? (P * N - ahead) / N : 0;
  const std::size_t groups_end = P / R * R;
  for (std::size_t p = 0; p < groups_end; p += R)
    rows.template operator()<R>(p, p + R <= prefetch_end);
  for (std::size_t p = groups_end; p < P; ++p) rows.template operator()<1>(p, false);
  if constexpr (!std::is_same_v<Epi, identity>) {
    for (std::size_t n = 0; n < NV; n += W)
      Epi{}(batch::load_unaligned(c + n)).store_unaligned(c + n);
    for (std::size_t n = NV; n < N; ++n) c[n] = Epi{}(c[n]);
  }
}

}  // namespace detail

/// C[i][n] = epi(C0[i][n] + sum_p A[i*rs + p*cs] * B[p*N + n])  for i < I, n < N, where C0 is
/// C's values (accumulate) or 0.
///
/// Register blocking from the target (detail::block_rows): 6 rows x 2 vectors (12 accumulators)
/// with 16 vector registers (AVX2), 12 x 2 with 32 (AVX-512, AArch64). Cache blocking: P is cut
/// into blocks of 256 (detail::block_depth) so that the strip of B being multiplied (16 KiB on
/// AVX2, 32 KiB on AVX-512) stays in L1 while every row block passes over it; the epilogue runs
/// on the last block's sums, in registers. Columns past the last whole vector go through a
/// zero-padded one-vector copy of B's tail (detail::bcast_tail), not scalar chains. One row
/// (batch-1 inference, bound by reading B) streams B in storage order (detail::gemv_rows); two rows
/// take strips of 4 vectors. With threads (GRAFT_OPENMP), large products split their column strips
/// between threads.
template <std::size_t N, class Epi = identity, class Arch = xsimd::default_arch, class T>
void gemm_bcast(std::size_t I, std::size_t P, const T* A, std::size_t rs, std::size_t cs,
                const T* B, T* C, bool accumulate) noexcept {
  if constexpr (!vectorised<T, Arch>) {  // no vectors of T (double on armv7): the reference
    reference::gemm_bcast(I, P, N, A, rs, cs, B, C, accumulate);
    if constexpr (!std::is_same_v<Epi, identity>)
      for (std::size_t i = 0; i < I * N; ++i) C[i] = Epi{}(C[i]);
  } else {
    constexpr std::size_t W = xsimd::batch<T, Arch>::size;
    if (I == 1) {
      detail::gemv_rows<N, Epi, Arch>(P, A, cs, B, C, accumulate);
      return;
    }
    auto run = [&]<std::size_t V>(std::size_t kc_max) {
      constexpr std::size_t strips = N / (V * W);
      const std::size_t work = I * P * N;
      const std::size_t min_strips = work < detail::parallel_min_work ? strips + 1 : 1;
      parallel::for_range(strips, min_strips, [&](std::size_t s0, std::size_t s1) {
        for (std::size_t p0 = 0; p0 < P; p0 += kc_max) {
          const std::size_t kc = P - p0 < kc_max ? P - p0 : kc_max;
          detail::bcast_block<V, N, Epi, Arch>(I, kc, A + p0 * cs, rs, cs, B + p0 * N, C,
                                               accumulate || p0 > 0, p0 + kc == P, s0, s1,
                                               s1 == strips);
        }
      });
    };
    if (I == 2)
      run.template operator()<4>(P);
    else
      run.template operator()<2>(detail::block_depth<2, Arch, T>);
  }
}

namespace detail {
// Columns [k0, k0 + KB) of D = Y * W^T through packed chunks of W^T (NC rows at a time, in wt).
template <std::size_t KB, std::size_t K, std::size_t N, std::size_t NC, class Arch, class T>
inline void nt_packed_block(std::size_t M, const T* Y, const T* W, T* D, std::size_t k0, T* wt,
                            bool accumulate) noexcept {
  constexpr std::size_t V = xsimd::batch<T, Arch>::size;
  for (std::size_t n0 = 0; n0 < N; n0 += NC) {
    const std::size_t nc = N - n0 < NC ? N - n0 : NC;
    for (std::size_t kk = 0; kk < KB; ++kk)  // wt[n][kk] = W[k0 + kk][n0 + n]
      for (std::size_t n = 0; n < nc; ++n) wt[n * KB + kk] = W[(k0 + kk) * N + n0 + n];
    bcast_strip<KB / V, KB, K, identity, Arch>(M, nc, Y + n0, N, 1, wt, D + k0, 0,
                                               accumulate || n0 > 0);
  }
}
}  // namespace detail

/// D[m][k] (+)= sum_n Y[m*N + n] * W[k*N + n]  for m < M, k < K  (D = Y * W^T).
///
/// W^T is never materialised whole: for each block of 2 vectors of columns k, the matching rows of
/// W are transposed into a small buffer on the stack (at most 256 x 16 floats, 16 KiB), which
/// the forward product's register-blocked micro-kernel then multiplies; then one block of 1 vector
/// if that many columns remain, and the last columns (fewer than a vector) by scalars. Each D
/// element is one fmadd chain over n ascending, started at D (accumulate) or 0, in every path, so
/// that which columns take which path (it depends on the vector width) changes no bit. Threads
/// take ranges of the 2-vector blocks.
template <std::size_t K, std::size_t N, class Arch = xsimd::default_arch, class T>
void gemm_nt_packed(std::size_t M, const T* Y, const T* W, T* D, bool accumulate = false) noexcept {
  if constexpr (!vectorised<T, Arch>) {  // no vectors of T (double on armv7): the reference
    reference::gemm_nt_packed(M, K, N, Y, W, D, accumulate);
  } else {
    using batch = xsimd::batch<T, Arch>;
    constexpr std::size_t V = batch::size;
    constexpr std::size_t NC = N < 256 ? N : 256;  // rows of W^T per packed chunk
    constexpr std::size_t kblocks = K / (2 * V);
    const std::size_t min_blocks = M * K * N < detail::parallel_min_work ? kblocks + 1 : 1;
    parallel::for_range(kblocks, min_blocks, [&](std::size_t b0, std::size_t b1) {
      alignas(buffer_alignment) T wt[NC * 2 * V];
      for (std::size_t kb = b0; kb < b1; ++kb)
        detail::nt_packed_block<2 * V, K, N, NC, Arch>(M, Y, W, D, kb * 2 * V, wt, accumulate);
    });
    constexpr std::size_t K1 = kblocks * 2 * V;  // one more block of 1 vector, if it fits
    constexpr std::size_t KS = K - K1 >= V ? K1 + V : K1;
    if constexpr (KS > K1) {
      alignas(buffer_alignment) T wt[NC * V];
      detail::nt_packed_block<V, K, N, NC, Arch>(M, Y, W, D, K1, wt, accumulate);
    }
    for (std::size_t m = 0; m < M; ++m)
      for (std::size_t k = KS; k < K; ++k) {
        T s = accumulate ? D[m * K + k] : T(0);
        for (std::size_t n = 0; n < N; ++n) s = math::fmadd(Y[m * N + n], W[k * N + n], s);
        D[m * K + k] = s;
      }
  }
}

namespace detail {
// An MR x KR tile of D = Y * W^T by dot products: MR * KR wide accumulators run along n (Y's and
// W's rows are both contiguous there), then each is summed in wide's fixed order and the scalar
// tail added one element at a time.
template <std::size_t MR, std::size_t KR, std::size_t N, std::size_t LDD, class Arch, class T>
inline void nt_tile(const T* Y, const T* W, T* D, bool accumulate) noexcept {
  using vec = wide<T, Arch>;
  constexpr std::size_t L = vec::lanes;
  constexpr std::size_t NL = N / L * L;
  vec acc[MR][KR];
  for (std::size_t m = 0; m < MR; ++m)
    for (std::size_t k = 0; k < KR; ++k) acc[m][k] = vec::zero();
  for (std::size_t n = 0; n < NL; n += L) {
    vec w[KR];
    for (std::size_t k = 0; k < KR; ++k) w[k] = vec::load(W + k * N + n);
    for (std::size_t m = 0; m < MR; ++m) {
      const vec y = vec::load(Y + m * N + n);
      for (std::size_t k = 0; k < KR; ++k) acc[m][k].fma(y, w[k]);
    }
  }
  for (std::size_t m = 0; m < MR; ++m)
    for (std::size_t k = 0; k < KR; ++k) {
      T s = acc[m][k].sum();
      for (std::size_t n = NL; n < N; ++n) s = math::fmadd(Y[m * N + n], W[k * N + n], s);
      D[m * LDD + k] = accumulate ? D[m * LDD + k] + s : s;
    }
}
// Columns [k, k + KR) of D, every row: blocks of MR rows, then the remaining rows (fewer than MR)
// with smaller tiles.
template <std::size_t MR, std::size_t KR, std::size_t K, std::size_t N, class Arch, class T>
inline void nt_columns(std::size_t M, const T* Y, const T* W, T* D, bool accumulate) noexcept {
  std::size_t m = 0;
  for (; m + MR <= M; m += MR) nt_tile<MR, KR, N, K, Arch>(Y + m * N, W, D + m * K, accumulate);
  if constexpr (MR > 1)
    if (m < M) nt_columns<MR - 1, KR, K, N, Arch>(M - m, Y + m * N, W, D + m * K, accumulate);
}
template <std::size_t MR, std::size_t KR, std::size_t K, std::size_t N, class Arch, class T>
inline void nt_all(std::size_t M, const T* Y, const T* W, T* D, bool accumulate) noexcept {
  // Columns outermost: the KR rows of W being used stay in L1 while every row of Y (few, short)
  // passes over them, and W (the im2col matrix, larger than L1) is read once.
  constexpr std::size_t KB = K / KR * KR;
  for (std::size_t k = 0; k < KB; k += KR)
    nt_columns<MR, KR, K, N, Arch>(M, Y, W + k * N, D + k, accumulate);
  if constexpr (K > KB) nt_columns<MR, K - KB, K, N, Arch>(M, Y, W + KB * N, D + KB, accumulate);
}
}  // namespace detail

/// D[m][k] (+)= sum_n Y[m*N + n] * W[k*N + n]  for m < M, k < K  (D = Y * W^T), by dot products.
///
/// The same product as gemm_nt_packed, for the other shape: few rows M and long rows N (the weight
/// gradient of a convolution, dy[F x HW] * col[CKK x HW]^T), where gemm_nt_packed's packing of W^T
/// would cost as much as the product. Tiles of 6 x 2, 4 x 3 or 3 x 4 dot products (M a multiple of
/// 6, of 4, or neither) where a wide accumulator is one register (AVX-512), 3 x 2, 2 x 3 or 3 x 2
/// where it is two (AVX2), 3 x 1 or 1 x 3 where it is four (SSE, NEON): 12 vector registers of
/// accumulators. Each element of D is one dot product in wide's fixed order, whatever M, the tile
/// or the vector width. One thread.
template <std::size_t K, std::size_t N, class Arch = xsimd::default_arch, class T>
void gemm_nt_dots(std::size_t M, const T* Y, const T* W, T* D, bool accumulate = false) noexcept {
  if constexpr (!vectorised<T, Arch>) {  // no vectors of T (double on armv7): the reference
    reference::gemm_nt_dots(M, K, N, Y, W, D, accumulate);
  } else {
    constexpr std::size_t R = wide<T, Arch>::R;
    // tile shapes (rows x columns of D) for M a multiple of 6, of 4, and other M
    constexpr std::size_t M6 = R == 1 ? 6 : 3, K6 = R == 1 ? 2 : (R == 2 ? 2 : 1);
    constexpr std::size_t M4 = R == 1 ? 4 : (R == 2 ? 2 : 1), K4 = 3;
    constexpr std::size_t MX = 3, KX = R == 1 ? 4 : (R == 2 ? 2 : 1);
    if (M % 6 == 0)  // 6 x 2: LeNet's conv1 (F = 6), where it beat 3 x 4 (commit ebb86ec)
      detail::nt_all<M6, K6, K, N, Arch>(M, Y, W, D, accumulate);
    else if (M % 4 == 0)
      detail::nt_all<M4, K4, K, N, Arch>(M, Y, W, D, accumulate);
    else
      detail::nt_all<MX, KX, K, N, Arch>(M, Y, W, D, accumulate);
  }
}

/// out[m] (+)= sum_n Y[m*N + n]  (row sums: a convolution's bias gradient): two wide
/// accumulators taking alternate stretches of 16 floats (8 doubles), then one, added and summed in
/// wide's order, then the scalar tail; the same bits on every vector width.
template <std::size_t N, class Arch = xsimd::default_arch, class T>
void row_sum(std::size_t M, const T* Y, T* out, bool accumulate) noexcept {
  if constexpr (!vectorised<T, Arch>) {  // no vectors of T (double on armv7): the reference
    reference::row_sum(M, N, Y, out, accumulate);
  } else {
    using vec = wide<T, Arch>;
    constexpr std::size_t L = vec::lanes;
    constexpr std::size_t N2 = N / (2 * L) * (2 * L), NL = N / L * L;
    for (std::size_t m = 0; m < M; ++m) {
      const T* y = Y + m * N;
      vec a0 = vec::zero(), a1 = vec::zero();
      for (std::size_t n = 0; n < N2; n += 2 * L) {
        a0.add(vec::load(y + n));
        a1.add(vec::load(y + n + L));
      }
      if constexpr (NL > N2) a0.add(vec::load(y + N2));
      a0.add(a1);
      T s = a0.sum();
      for (std::size_t n = NL; n < N; ++n) s += y[n];
      out[m] = accumulate ? out[m] + s : s;
    }
  }
}

/// out[n] (+)= sum_m Y[m*N + n]  (bias gradient).
template <std::size_t N, class T>
void column_sum(std::size_t M, const T* Y, T* out, bool accumulate) noexcept {
  if (!accumulate)
    for (std::size_t n = 0; n < N; ++n) out[n] = T(0);
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = 0; n < N; ++n) out[n] += Y[m * N + n];
}

}  // namespace kernels
GRAFT_END_NAMESPACE
