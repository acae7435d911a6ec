// Convolution kernels on raw pointers, SIMD through xsimd: C x H x W images (row-major), K x K
// windows, stride S, zero padding P, cross-correlation (as in PyTorch). Kernels know nothing of
// layers or xtensor; sizes are compile-time constants, the caller owns every buffer, one thread.
// The weights are [F][C * K * K] (index (c * K + ky) * K + kx), the outputs HO x WO per filter.
//
//   im2col      : rows [begin, end) of an image's C*K*K x HO*WO matrix (rows LD >= HO*WO apart),
//                 writing only the image's values (the zeros are the caller's, written once);
//   col2im      : the image gradient from that matrix's gradient (each element the sum of its
//                 entries);
//   conv_direct : y = epi(b + w * x) for stride 1, straight from a zero-bordered copy of the image:
//                 the multiply-adds of gemm_bcast on the im2col matrix, in the same order, so the
//                 same values bit for bit, without writing and reading that matrix.
#pragma once
#include <cstddef>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "graft/kernels/elementwise.hpp"
#include "graft/kernels/gemm.hpp"
#include "graft/kernels/simd.hpp"

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE
namespace kernels {

namespace detail {
// Output sizes, and for each kernel column kx the output columns ox whose input column
// ox * S + kx (padded coordinates) is inside the image: [col_lo(kx), col_hi(kx)).
template <std::size_t H, std::size_t W, std::size_t K, std::size_t S, std::size_t P>
struct conv_geometry {
  static_assert(K > 0 && S > 0 && H + 2 * P >= K && W + 2 * P >= K,
                "graft: a convolution needs a positive kernel and stride, and an image at least "
                "as large as the kernel");
  static constexpr std::size_t HO = (H + 2 * P - K) / S + 1;
  static constexpr std::size_t WO = (W + 2 * P - K) / S + 1;
  static constexpr std::size_t col_lo(std::size_t kx) noexcept {
    return kx >= P ? 0 : (P - kx + S - 1) / S;
  }
  static constexpr std::size_t col_hi(std::size_t kx) noexcept {
    const std::size_t n = W + P > kx ? (W + P - kx + S - 1) / S : 0;
    return n < WO ? n : WO;
  }
};
}  // namespace detail

/// Rows [row_begin, row_end) of the im2col matrix of one image x (C x H x W):
/// col[(c * K + ky) * K + kx][oy * WO + ox] = x[c][oy * S + ky - P][ox * S + kx - P], rows LD
/// apart. Only the entries inside the image are written: the padding's zeros and the columns
/// [HO * WO, LD) are at the same places for every image, so the caller zeroes them once.
template <std::size_t C, std::size_t H, std::size_t W, std::size_t K, std::size_t S, std::size_t P,
          std::size_t LD, class Arch = xsimd::default_arch, class T>
void im2col(const T* x, T* col, std::size_t row_begin, std::size_t row_end) noexcept {
  using g = detail::conv_geometry<H, W, K, S, P>;
  static_assert(LD >= g::HO * g::WO, "graft: im2col: rows of LD >= HO * WO");
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t ky = 0; ky < K; ++ky)
      for (std::size_t kx = 0; kx < K; ++kx) {
        const std::size_t index = (c * K + ky) * K + kx;
        if (index < row_begin || index >= row_end) continue;
        T* row = col + index * LD;
        const std::size_t lo = g::col_lo(kx), hi = g::col_hi(kx);
        for (std::size_t oy = 0; oy < g::HO; ++oy) {
          const std::size_t iy = oy * S + ky;  // padded coordinates
          if (iy < P || iy >= H + P) continue;
          const T* in = x + (c * H + iy - P) * W;  // in[ox * S + kx - P] for ox in [lo, hi)
          T* out = row + oy * g::WO;
          if constexpr (S == 1)
            copy<Arch>(hi - lo, in + (lo + kx - P), out + lo);
          else
            for (std::size_t ox = lo; ox < hi; ++ox) out[ox] = in[ox * S + kx - P];
        }
      }
}

/// The gradient of an image from that of its im2col matrix (rows LD apart):
/// dx[c][iy][ix] = the sum of the matrix entries that im2col copies from x[c][iy][ix], added in
/// the order of the rows (c, ky, kx), then of the columns, to zero. dx is overwritten.
template <std::size_t C, std::size_t H, std::size_t W, std::size_t K, std::size_t S, std::size_t P,
          std::size_t LD, class Arch = xsimd::default_arch, class T>
void col2im(const T* col, T* dx) noexcept {
  using g = detail::conv_geometry<H, W, K, S, P>;
  static_assert(LD >= g::HO * g::WO, "graft: col2im: rows of LD >= HO * WO");
  std::memset(dx, 0, C * H * W * sizeof(T));
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t ky = 0; ky < K; ++ky)
      for (std::size_t kx = 0; kx < K; ++kx) {
        const T* row = col + ((c * K + ky) * K + kx) * LD;
        const std::size_t lo = g::col_lo(kx), hi = g::col_hi(kx);
        for (std::size_t oy = 0; oy < g::HO; ++oy) {
          const std::size_t iy = oy * S + ky;
          if (iy < P || iy >= H + P) continue;
          T* out = dx + (c * H + iy - P) * W;  // out[ox * S + kx - P] for ox in [lo, hi)
          const T* in = row + oy * g::WO;
          if constexpr (S == 1)
            add<Arch>(hi - lo, in + lo, out + (lo + kx - P));
          else
            for (std::size_t ox = lo; ox < hi; ++ox) out[ox * S + kx - P] += in[ox];
        }
      }
}

namespace detail {
// Filters [f0, f0 + FR) at outputs [ox, ox + 2V) of output row oy: 2 * FR vector accumulators,
// started at the bias, then one FMA per (c, ky, kx) with the weight broadcast.
template <std::size_t C, std::size_t K, std::size_t HP, std::size_t WP, std::size_t HO,
          std::size_t WO, std::size_t FR, class Epi, class Arch, class T>
inline void direct_block(const T* xp, const T* w, const T* b, std::size_t f0, std::size_t oy,
                         std::size_t ox, T* y) noexcept {
  using batch = xsimd::batch<T, Arch>;
  constexpr std::size_t V = batch::size, CKK = C * K * K, HWO = HO * WO;
  batch acc[FR][2];
  for (std::size_t f = 0; f < FR; ++f)
    acc[f][0] = acc[f][1] = batch(b != nullptr ? b[f0 + f] : T(0));
  const T* wf = w + f0 * CKK;
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t ky = 0; ky < K; ++ky) {
      const T* row = xp + (c * HP + oy + ky) * WP + ox;
      for (std::size_t kx = 0; kx < K; ++kx) {
        const std::size_t p = (c * K + ky) * K + kx;
        const batch b0 = batch::load_unaligned(row + kx), b1 = batch::load_unaligned(row + kx + V);
        for (std::size_t f = 0; f < FR; ++f) {
          const batch a(wf[f * CKK + p]);
          acc[f][0] = fmadd(a, b0, acc[f][0]);
          acc[f][1] = fmadd(a, b1, acc[f][1]);
        }
      }
    }
  for (std::size_t f = 0; f < FR; ++f) {
    Epi{}(acc[f][0]).store_unaligned(y + (f0 + f) * HWO + oy * WO + ox);
    Epi{}(acc[f][1]).store_unaligned(y + (f0 + f) * HWO + oy * WO + ox + V);
  }
}
}  // namespace detail

namespace detail {
// The vectors conv_direct uses for output rows of WO: Arch's, or on AVX-512 with rows shorter than
// two of its vectors (LeNet's 28 < 2 x 16 floats) AVX2's, which every AVX-512 CPU has (the same
// sums either way: one fmadd chain per output).
template <class T, std::size_t WO, class Arch> using direct_arch =
    std::conditional_t<(WO < 2 * simd_width<T, Arch>), avx2_in_avx512<Arch>, Arch>;
}  // namespace detail

/// Whether conv_direct takes rows of WO outputs: at least two of its vectors of T.
template <class T, std::size_t WO, class Arch = xsimd::default_arch>
inline constexpr bool conv_direct_fits = [] {
  constexpr std::size_t V = simd_width<T, detail::direct_arch<T, WO, Arch>>;
  return V > 1 && WO >= 2 * V;
}();

/// y[f][oy][ox] = Epi(b[f] + sum over (c, ky, kx) of w[f][(c * K + ky) * K + kx] *
/// x[c][oy + ky - P][ox + kx - P]) (stride 1; zero outside the image; no bias when b is null),
/// for the F filters of one image, by FMAs in that order: the sums of gemm_bcast<HWOP, Epi> on
/// the im2col matrix (with the outputs started at the bias), bit for bit.
///
/// xp is a C x (H + 2P) x (W + 2P) workspace whose border the caller has zeroed (it stays zero:
/// only the inside is written, with a copy of x). A vector of outputs is a sum of vectors loaded
/// straight from its rows, each times a broadcast weight; blocks of up to 6 filters x 2 vectors of
/// one output row (12 accumulators). A row not a multiple of 2 vectors ends with a block
/// overlapping the previous one (the overlapped outputs are computed twice, identically); rows need
/// at least 2 (conv_direct_fits). The vectors are Arch's, or AVX2's on AVX-512 for short rows.
template <std::size_t C, std::size_t H, std::size_t W, std::size_t F, std::size_t K, std::size_t P,
          class Epi = identity, class NativeArch = xsimd::default_arch, class T>
void conv_direct(const T* x, const T* w, const T* b, T* xp, T* y) noexcept {
  using g = detail::conv_geometry<H, W, K, 1, P>;
  using Arch = detail::direct_arch<T, g::WO, NativeArch>;
  constexpr std::size_t HP = H + 2 * P, WP = W + 2 * P, V2 = 2 * xsimd::batch<T, Arch>::size;
  static_assert(g::WO >= V2, "graft: conv_direct needs output rows of at least two vectors");
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t iy = 0; iy < H; ++iy)
      copy<Arch>(W, x + (c * H + iy) * W, xp + (c * HP + iy + P) * WP + P);
  constexpr std::size_t F6 = F / 6 * 6;
  for (std::size_t oy = 0; oy < g::HO; ++oy)
    for (std::size_t ox = 0;; ox += V2) {
      const std::size_t o = ox + V2 <= g::WO ? ox : g::WO - V2;
      for (std::size_t f0 = 0; f0 < F6; f0 += 6)
        detail::direct_block<C, K, HP, WP, g::HO, g::WO, 6, Epi, Arch>(xp, w, b, f0, oy, o, y);
      if constexpr (F > F6)
        detail::direct_block<C, K, HP, WP, g::HO, g::WO, F - F6, Epi, Arch>(xp, w, b, F6, oy, o, y);
      if (o + V2 >= g::WO) break;
    }
}

}  // namespace kernels
GRAFT_END_NAMESPACE
