// Per-ISA fused attention kernels: one query tile against the key tiles it
// sees, with an online softmax (forward) or with the probabilities recomputed
// from the saved log-sum-exp (backward). Compiled once per ISA level (Note
// [per-ISA object libraries] in CMakeLists.txt). README.md has the algorithm.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/attention/attention.h"
#include "simd/vec.h"

namespace tfg::TFG_ISA_NS {
namespace {

constexpr int64_t BQ = kAttnBlockQ, BK = kAttnBlockK;
// Register blocks of the tile GEMMs: kRows rows x kVecs vectors of accumulators.
#if defined(__AVX512F__)
constexpr int kRows = 6, kVecs = 4;  // 32 registers: 24 accumulators, 4 + 1 operands
#else
constexpr int kRows = 4, kVecs = 2;  // 16 registers: 8 accumulators
#endif

// Columns of a score tile actually computed: nk rounded up to whole register blocks.
template <class T>
int64_t padded_cols(int64_t nk) {
  constexpr int64_t C = kVecs * Vec<T>::W;
  static_assert(kAttnBlockK % C == 0, "key tile must hold whole register blocks");
  return (nk + C - 1) / C * C;
}

template <class T>
constexpr T kInf = std::numeric_limits<T>::infinity();

// c[i * BK + j] = sum_e a[i * lda + e] * bt[e * BK + j] for i < MR, j < ncp
// (whole register blocks): a register-blocked GEMM against a packed transposed tile.
template <class T, int MR>
void scores_block(int64_t K, const T* a, int64_t lda, const T* bt, int64_t ncp, T* c) {
  using V = Vec<T>;
  constexpr int W = V::W, NV = kVecs;
  for (int64_t j = 0; j < ncp; j += NV * W) {
    V acc[MR][NV];
    for (int r = 0; r < MR; ++r)
      for (int u = 0; u < NV; ++u) acc[r][u] = V::zero();
    const T* b = bt + j;
    for (int64_t e = 0; e < K; ++e, b += BK) {
      V bv[NV];
      for (int u = 0; u < NV; ++u) bv[u] = V::loadu(b + u * W);
      for (int r = 0; r < MR; ++r) {
        const V ar = V::broadcast(a[r * lda + e]);
        for (int u = 0; u < NV; ++u) acc[r][u] = fma(ar, bv[u], acc[r][u]);
      }
    }
    for (int r = 0; r < MR; ++r)
      for (int u = 0; u < NV; ++u) acc[r][u].storeu(c + r * BK + j + u * W);
  }
}

// Note [causal trimming]: on a key tile that crosses the diagonal, row i of
// the tile sees only its first lim + i keys (lim = q0 + 1 - k0); a block of
// MR rows then stops at lim + i + MR - 1 columns (scores) or terms (accum),
// which halves the diagonal tile. lim < 0: no trimming. Scores past a row's
// own limit are left unwritten; masked_scores sets them to -inf.
inline int64_t trimmed(int64_t lim, int64_t i, int mr, int64_t n) {
  return lim < 0 ? n : std::clamp<int64_t>(lim + i + mr - 1, 0, n);
}

template <class T>
void scores(int64_t rows, int64_t K, const T* a, int64_t lda, const T* bt, int64_t ncp, T* c,
            int64_t lim = -1) {
  auto cols = [&](int64_t i, int mr) { return padded_cols<T>(trimmed(lim, i, mr, ncp)); };
  int64_t i = 0;
  for (; i + kRows <= rows; i += kRows)
    scores_block<T, kRows>(K, a + i * lda, lda, bt, cols(i, kRows), c + i * BK);
  if constexpr (kRows > 4)
    for (; i + 4 <= rows; i += 4) scores_block<T, 4>(K, a + i * lda, lda, bt, cols(i, 4), c + i * BK);
  for (; i < rows; ++i) scores_block<T, 1>(K, a + i * lda, lda, bt, cols(i, 1), c + i * BK);
}

// c[r * ldc + n] += sum_{j < K} p[r * prs + j * pcs] * b[j * ldb + n] for r < MR,
// n < N: rows of c accumulate combinations of rows of b, weights from p read
// with any strides (so that p may be used transposed).
template <class T, int MR>
void accum_block(int64_t K, int64_t N, const T* p, int64_t prs, int64_t pcs, const T* b,
                 int64_t ldb, T* c, int64_t ldc) {
  using V = Vec<T>;
  constexpr int W = V::W, NV = kVecs;
  int64_t n = 0;
  for (; n + NV * W <= N; n += NV * W) {
    V acc[MR][NV];
    for (int r = 0; r < MR; ++r)
      for (int u = 0; u < NV; ++u) acc[r][u] = V::loadu(c + r * ldc + n + u * W);
    for (int64_t j = 0; j < K; ++j) {
      V bv[NV];
      for (int u = 0; u < NV; ++u) bv[u] = V::loadu(b + j * ldb + n + u * W);
      for (int r = 0; r < MR; ++r) {
        const V pr = V::broadcast(p[r * prs + j * pcs]);
        for (int u = 0; u < NV; ++u) acc[r][u] = fma(pr, bv[u], acc[r][u]);
      }
    }
    for (int r = 0; r < MR; ++r)
      for (int u = 0; u < NV; ++u) acc[r][u].storeu(c + r * ldc + n + u * W);
  }
  for (; n < N; n += W) {
    const int rem = N - n < W ? static_cast<int>(N - n) : W;
    V acc[MR];
    for (int r = 0; r < MR; ++r) acc[r] = V::loadu_partial(c + r * ldc + n, rem);
    for (int64_t j = 0; j < K; ++j) {
      const V b0 = V::loadu_partial(b + j * ldb + n, rem);
      for (int r = 0; r < MR; ++r) acc[r] = fma(V::broadcast(p[r * prs + j * pcs]), b0, acc[r]);
    }
    for (int r = 0; r < MR; ++r) acc[r].storeu_partial(c + r * ldc + n, rem);
  }
}

template <class T>
void accum(int64_t rows, int64_t K, int64_t N, const T* p, int64_t prs, int64_t pcs, const T* b,
           int64_t ldb, T* c, int64_t ldc, int64_t lim = -1) {
  int64_t i = 0;
  for (; i + kRows <= rows; i += kRows)
    accum_block<T, kRows>(trimmed(lim, i, kRows, K), N, p + i * prs, prs, pcs, b, ldb, c + i * ldc, ldc);
  if constexpr (kRows > 4)
    for (; i + 4 <= rows; i += 4)
      accum_block<T, 4>(trimmed(lim, i, 4, K), N, p + i * prs, prs, pcs, b, ldb, c + i * ldc, ldc);
  for (; i < rows; ++i) accum_block<T, 1>(trimmed(lim, i, 1, K), N, p + i * prs, prs, pcs, b, ldb, c + i * ldc, ldc);
}

// Calls f(j, lanes) for the vector chunks of [0, n) (the last one partial);
// a whole key tile (n == BK, the common case) with a compile-time count.
template <class T, class F>
void for_chunks(int64_t n, F&& f) {
  constexpr int W = Vec<T>::W;
  if (n == BK) {
    for (int64_t j = 0; j < BK; j += W) f(j, W);
    return;
  }
  for (int64_t j = 0; j < n; j += W) f(j, n - j < W ? static_cast<int>(n - j) : W);
}

template <class T>
Vec<T> load_n(const T* p, int n, T fill = T(0)) {
  return n == Vec<T>::W ? Vec<T>::loadu(p) : Vec<T>::loadu_partial(p, n, fill);
}
template <class T>
void store_n(Vec<T> v, T* p, int n) {
  if (n == Vec<T>::W) v.storeu(p);
  else v.storeu_partial(p, n);
}

// Keys a tile of query rows [q0, q0 + rows) sees at all: causal rows attend
// keys j <= i (Note [causal skipping] in README.md).
template <class T>
int64_t key_end(const AttnHead<T>& h, int64_t q0, int64_t rows) {
  return h.causal ? std::min(h.S, q0 + rows) : h.S;
}

// The row limit of Note [causal trimming] for the key tile at k0 (-1: none).
template <class T>
int64_t causal_limit(const AttnHead<T>& h, int64_t q0, int64_t k0, int64_t nk) {
  return h.causal && k0 + nk > q0 + 1 ? q0 + 1 - k0 : -1;
}

// sc[i * BK + j] (i < rows, j < nk) = the scaled, masked scores of query q0 + i
// against key k0 + j (the scale is folded into kt); -inf where the key is masked out.
template <class T>
void masked_scores(const AttnHead<T>& h, int64_t q0, int64_t rows, int64_t k0, int64_t nk, T* sc) {
  const int64_t ncp = padded_cols<T>(nk);
  const int64_t lim = causal_limit(h, q0, k0, nk);
  scores(rows, h.E, h.q + q0 * h.E, h.E, h.kt + k0 * h.E, ncp, sc, lim);
  if (h.mask) {
    for (int64_t i = 0; i < rows; ++i) {
      T* s = sc + i * BK;
      const T* m = h.mask + (q0 + i) * h.mask_rs + k0;
      for_chunks<T>(nk, [&](int64_t j, int n) { store_n(load_n(s + j, n) + load_n(m + j, n), s + j, n); });
    }
  }
  if (lim >= 0) {
    const T minus_inf = -kInf<T>;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = std::max<int64_t>(lim + i, 0); j < nk; ++j) sc[i * BK + j] = minus_inf;
  }
}

template <class T>
T row_max(const T* s, int64_t n) {
  using V = Vec<T>;
  V m = V::broadcast(-kInf<T>);
  for_chunks<T>(n, [&](int64_t j, int k) { m = max(load_n(s + j, k, -kInf<T>), m); });
  return m.reduce_max();
}

// s = exp(s - base) over n elements; returns their sum.
template <class T>
T row_exp(T* s, int64_t n, T base) {
  using V = Vec<T>;
  const V b = V::broadcast(base);
  V sum = V::zero();
  for_chunks<T>(n, [&](int64_t j, int k) {
    const V e = exp(load_n(s + j, k, -kInf<T>) - b);  // lanes past n: exp(-inf) = 0
    store_n(e, s + j, k);
    sum = sum + e;
  });
  return sum.reduce_add();
}

template <class T>
void scale_row(T* x, int64_t n, T a) {
  using V = Vec<T>;
  const V av = V::broadcast(a);
  for_chunks<T>(n, [&](int64_t j, int k) { store_n(load_n(x + j, k) * av, x + j, k); });
}

template <class T>
T row_dot(const T* x, const T* y, int64_t n) {
  using V = Vec<T>;
  V s = V::zero();
  for_chunks<T>(n, [&](int64_t j, int k) { s = fma(load_n(x + j, k), load_n(y + j, k), s); });
  return s.reduce_add();
}

template <class T>
void forward_tile(const AttnHead<T>& h, int64_t q0, int64_t rows, T* out, T* lse, T* scratch) {
  T* sc = scratch;
  T* o = sc + BQ * BK;
  T* m = o + BQ * h.Ev;
  T* l = m + BQ;
  for (int64_t i = 0; i < rows; ++i) {
    m[i] = -kInf<T>;
    l[i] = T(0);
  }
  std::fill(o, o + rows * h.Ev, T(0));
  const int64_t kend = key_end(h, q0, rows);
  for (int64_t k0 = 0; k0 < kend; k0 += BK) {
    const int64_t nk = std::min(BK, kend - k0);
    masked_scores(h, q0, rows, k0, nk, sc);
    for (int64_t i = 0; i < rows; ++i) {
      T* s = sc + i * BK;
      const T mt = row_max(s, nk);
      const T mn = mt > m[i] ? mt : m[i];
      // Note [fully masked rows]: while a row has seen only masked keys its
      // running max is -inf; exponents are then taken against 0 so that the
      // masked keys give exp(-inf) = 0 and not exp(-inf + inf) = NaN.
      const T base = mn == -kInf<T> ? T(0) : mn;
      const T sum = row_exp(s, nk, base);
      const T alpha = std::exp(m[i] - base);
      if (alpha != T(1)) scale_row(o + i * h.Ev, h.Ev, alpha);
      l[i] = l[i] * alpha + sum;
      m[i] = mn;
    }
    accum(rows, nk, h.Ev, sc, BK, int64_t(1), h.v + k0 * h.Ev, h.Ev, o, h.Ev, causal_limit(h, q0, k0, nk));
  }
  for (int64_t i = 0; i < rows; ++i) {
    T* dst = out + (q0 + i) * h.Ev;
    if (l[i] == T(0)) {  // every key masked: output 0 as PyTorch, lse +inf makes p = 0 in backward
      std::fill(dst, dst + h.Ev, T(0));
      lse[q0 + i] = kInf<T>;
      continue;
    }
    std::copy(o + i * h.Ev, o + (i + 1) * h.Ev, dst);
    scale_row(dst, h.Ev, T(1) / l[i]);
    lse[q0 + i] = m[i] + std::log(l[i]);
  }
}

template <class T>
void backward_tile(const AttnHead<T>& h, int64_t q0, int64_t rows, const T* dout, const T* o,
                   const T* lse, T* dq, T* dk, T* dv, T* scratch) {
  using V = Vec<T>;
  T* p = scratch;
  T* ds = p + BQ * BK;
  T* delta = ds + BQ * BK;
  const T* dout_t = dout + q0 * h.Ev;
  T* dq_t = dq + q0 * h.E;
  for (int64_t i = 0; i < rows; ++i) delta[i] = row_dot(dout_t + i * h.Ev, o + (q0 + i) * h.Ev, h.Ev);
  std::fill(dq_t, dq_t + rows * h.E, T(0));
  const int64_t kend = key_end(h, q0, rows);
  for (int64_t k0 = 0; k0 < kend; k0 += BK) {
    const int64_t nk = std::min(BK, kend - k0);
    const int64_t ncp = padded_cols<T>(nk);
    masked_scores(h, q0, rows, k0, nk, p);
    for (int64_t i = 0; i < rows; ++i) {
      T* s = p + i * BK;
      const V base = V::broadcast(lse[q0 + i]);
      for_chunks<T>(nk, [&](int64_t j, int n) { store_n(exp(load_n(s + j, n) - base), s + j, n); });
    }
    // dv[k0 + j] += sum_i p[i][j] dout[i]
    accum(nk, rows, h.Ev, p, int64_t(1), BK, dout_t, h.Ev, dv + k0 * h.Ev, h.Ev);
    // ds = p * (dout v^T - delta)
    scores(rows, h.Ev, dout_t, h.Ev, h.vt + k0 * h.Ev, ncp, ds);
    for (int64_t i = 0; i < rows; ++i) {
      T* d = ds + i * BK;
      const T* pi = p + i * BK;
      const V di = V::broadcast(delta[i]);
      for_chunks<T>(nk, [&](int64_t j, int n) {
        store_n(load_n(pi + j, n) * (load_n(d + j, n) - di), d + j, n);
      });
    }
    // dq[i] += sum_j ds[i][j] k[k0 + j];  dk[k0 + j] += sum_i ds[i][j] q[i]
    accum(rows, nk, h.E, ds, BK, int64_t(1), h.k + k0 * h.E, h.E, dq_t, h.E, causal_limit(h, q0, k0, nk));
    accum(nk, rows, h.E, ds, int64_t(1), BK, h.q + q0 * h.E, h.E, dk + k0 * h.E, h.E);
  }
}

}  // namespace

extern const AttentionKernels<float> attention_kernels_f32 = {&forward_tile<float>, &backward_tile<float>};
extern const AttentionKernels<double> attention_kernels_f64 = {&forward_tile<double>, &backward_tile<double>};

}  // namespace tfg::TFG_ISA_NS
