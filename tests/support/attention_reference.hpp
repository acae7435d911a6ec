// A naive multi-head self-attention in long double (tests/test_attention.cpp): explicit loops, a
// softmax with expl, and the masks of docs/design/sequence_models.md section 2.2: only the first n
// positions are read, query i attends to keys j < n (and j <= i when causal), output rows >= n
// are 0. Weights in graft's layout: w_qkv [D, 3D] (columns Q, K, V; head h takes columns
// h dh .. (h + 1) dh of each), b_qkv [3D], w_o [D, D], b_o [D].
#pragma once
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace graft_test {

/// y [L, D] of one sample x [L, D] with n valid positions.
template <class T> void reference_attention(const T* x, std::size_t L, std::size_t D, std::size_t H,
                                            const T* w_qkv, const T* b_qkv, const T* w_o,
                                            const T* b_o, std::size_t n, bool causal,
                                            long double* y) {
  using ld = long double;
  const std::size_t dh = D / H, D3 = 3 * D;
  if (n > L) n = L;
  std::vector<ld> qkv(L * D3, 0.0L), o(L * D, 0.0L), p(L);
  for (std::size_t l = 0; l < n; ++l)
    for (std::size_t k = 0; k < D3; ++k) {
      ld s = static_cast<ld>(b_qkv[k]);
      for (std::size_t d = 0; d < D; ++d)
        s += static_cast<ld>(x[l * D + d]) * static_cast<ld>(w_qkv[d * D3 + k]);
      qkv[l * D3 + k] = s;
    }
  const ld scale = 1.0L / std::sqrt(static_cast<ld>(dh));
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t keys = causal && i + 1 < n ? i + 1 : n;
      ld mx = -std::numeric_limits<ld>::infinity();
      for (std::size_t j = 0; j < keys; ++j) {
        ld s = 0;
        for (std::size_t c = 0; c < dh; ++c)
          s += qkv[i * D3 + h * dh + c] * qkv[j * D3 + D + h * dh + c];
        p[j] = s * scale;
        if (p[j] > mx || std::isnan(p[j])) mx = std::isnan(mx) ? mx : p[j];
      }
      ld sum = 0;
      for (std::size_t j = 0; j < keys; ++j) {
        p[j] = std::exp(p[j] - mx);
        sum += p[j];
      }
      for (std::size_t c = 0; c < dh; ++c) {
        ld s = 0;
        for (std::size_t j = 0; j < keys; ++j) s += p[j] / sum * qkv[j * D3 + 2 * D + h * dh + c];
        o[i * D + h * dh + c] = s;
      }
    }
  for (std::size_t l = 0; l < L; ++l)
    for (std::size_t k = 0; k < D; ++k) {
      if (l >= n) {
        y[l * D + k] = 0.0L;
        continue;
      }
      ld s = static_cast<ld>(b_o[k]);
      for (std::size_t d = 0; d < D; ++d) s += o[l * D + d] * static_cast<ld>(w_o[d * D + k]);
      y[l * D + k] = s;
    }
}

}  // namespace graft_test
