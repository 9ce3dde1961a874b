// Per-ISA fused cross-entropy kernels: per row (or per column of a block),
// max, log of the sum of exp(x - max), the target's term and, with label
// smoothing, the weighted sum over the classes; the backward writes
// scale * d loss / d x in the same sweep, using the gradient row itself as
// the store for exp(x - max). No other scratch. Built on the row and column
// helpers of the softmax kernels (ops/softmax/cpu/softmax_rows.h).
#include <algorithm>

#include "ops/cross_entropy/cross_entropy.h"
#include "ops/softmax/cpu/softmax_rows.h"

namespace tfg::TFG_ISA_NS {
namespace {

using namespace rows;

// sum_c w[c] * (m - x[c]) (w = 1 when weight is null): label smoothing's sum
// over the classes, without the ls * weight_sum part. Every term is >= 0 for
// w >= 0, so nothing cancels.
template <class T>
T smooth_sum(const T* x, const T* w, int64_t n, T m) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const V mv = V::broadcast(m);
  V s0 = V::zero(), s1 = s0;
  int64_t i = 0;
  if (w) {
    for (; i + 2 * W <= n; i += 2 * W) {
      s0 = fma(V::loadu(w + i), mv - V::loadu(x + i), s0);
      s1 = fma(V::loadu(w + i + W), mv - V::loadu(x + i + W), s1);
    }
    for (; i + W <= n; i += W) s0 = fma(V::loadu(w + i), mv - V::loadu(x + i), s0);
    if (i < n) {
      const int r = static_cast<int>(n - i);
      s1 = fma(V::loadu_partial(w + i, r), mv - V::loadu_partial(x + i, r, m), s1);
    }
  } else {
    for (; i + 2 * W <= n; i += 2 * W) {
      s0 = s0 + (mv - V::loadu(x + i));
      s1 = s1 + (mv - V::loadu(x + i + W));
    }
    for (; i + W <= n; i += W) s0 = s0 + (mv - V::loadu(x + i));
    if (i < n) s1 = s1 + (mv - V::loadu_partial(x + i, static_cast<int>(n - i), m));
  }
  return (s0 + s1).reduce_add();
}

// The loss of one row from its max m, ls = log(sum exp(x - m)), x[t] and, with
// smoothing, smooth = sum_c w[c] (m - x[c]):
//   -lp[t] = ls - (x[t] - m),  sum_c w[c] * -lp[c] = smooth + ls * weight_sum.
template <class T>
T combine_loss(const CrossEntropyParams<T>& p, int64_t c, int64_t t, T m, T ls, T xt, T smooth) {
  const T wt = p.weight ? p.weight[t] : T(1);
  const T nll = wt * (ls - (xt - m));
  if (p.smoothing == 0) return nll;
  return (1 - p.smoothing) * nll + p.smoothing / static_cast<T>(c) * (smooth + ls * p.weight_sum);
}

template <class T>
double forward_rows(const T* x, const int64_t* t, int64_t rows, int64_t c,
                    const CrossEntropyParams<T>& p, T* loss) {
  double total = 0;
  for (int64_t r = 0; r < rows; ++r, x += c) {
    T l = 0;
    if (t[r] != p.ignore_index) {
      const T m = row_max(x, c);
      const T ls = std::log(row_sum_exp<T>(x, c, m, nullptr));
      const T smooth = p.smoothing != 0 ? smooth_sum(x, p.weight, c, m) : T(0);
      l = combine_loss(p, c, t[r], m, ls, x[t[r]], smooth);
    }
    if (loss) loss[r] = l;
    total += static_cast<double>(l);
  }
  return total;
}

// Lanes of a column block as plain arrays (at most 4 vectors).
template <class T>
struct Lanes {
  static constexpr int kMax = 4 * Vec<T>::W;
  T v[kMax];
  template <class Block>
  void put(const Block&, const Vec<T> (&src)[Block::NV]) {
    for (int k = 0; k < Block::NV; ++k) src[k].storeu(v + k * Vec<T>::W);
  }
  template <class Block>
  void get(const Block&, Vec<T> (&dst)[Block::NV]) const {
    for (int k = 0; k < Block::NV; ++k) dst[k] = Vec<T>::loadu(v + k * Vec<T>::W);
  }
};

template <class Block>
int block_lanes(const Block& b) {
  int n = 0;
  for (int k = 0; k < Block::NV; ++k) n += b.lanes(k);
  return n;
}

template <class T>
double forward_cols(const T* x, const int64_t* t, int64_t c, int64_t inner, int64_t cols,
                    const CrossEntropyParams<T>& p, T* loss) {
  using V = Vec<T>;
  double total = 0;
  walk_columns<T>(cols, [&](int64_t j, auto b) {
    constexpr int NV = decltype(b)::NV;
    const T* xj = x + j;
    V m[NV], s[NV], acc[NV];
    col_max_sum_exp<decltype(b), T>(b, xj, c, inner, nullptr, m, s);
    for (int k = 0; k < NV; ++k) s[k] = lanewise_log(s[k]), acc[k] = V::zero();
    if (p.smoothing != 0)
      for (int64_t d = 0; d < c; ++d) {
        const V wv = V::broadcast(p.weight ? p.weight[d] : T(1));
        for (int k = 0; k < NV; ++k) acc[k] = fma(wv, m[k] - b.load(xj + d * inner, k), acc[k]);
      }
    Lanes<T> ml, lsl, accl;
    ml.put(b, m);
    lsl.put(b, s);
    accl.put(b, acc);
    const int lanes = block_lanes(b);
    for (int q = 0; q < lanes; ++q) {
      const int64_t tq = t[j + q];
      T l = 0;
      if (tq != p.ignore_index) l = combine_loss(p, c, tq, ml.v[q], lsl.v[q], xj[tq * inner + q], accl.v[q]);
      if (loss) loss[j + q] = l;
      total += static_cast<double>(l);
    }
  });
  return total;
}

// Gradient of scale * loss for one row (Note [cross-entropy gradient] in README.md):
//   gx[k] = a * exp(x[k] - m) - b * w[k],  then gx[t] -= scale * (1 - eps) * w[t]
// with a = scale * ((1 - eps) * w[t] + eps * weight_sum / C) / sum, b = scale * eps / C.
template <class T>
void backward_rows(const T* x, const int64_t* t, int64_t rows, int64_t c,
                   const CrossEntropyParams<T>& p, const T* go, int64_t go_stride, T divisor, T* gx) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const T eps = p.smoothing;
  for (int64_t r = 0; r < rows; ++r, x += c, gx += c) {
    const int64_t tr = t[r];
    if (tr == p.ignore_index) {
      std::fill(gx, gx + c, T(0));
      continue;
    }
    const T scale = go[r * go_stride] / divisor;
    const T wt = p.weight ? p.weight[tr] : T(1);
    const T m = row_max(x, c);
    const T sum = row_sum_exp(x, c, m, gx);
    const T a = scale * ((1 - eps) * wt + eps * p.weight_sum / static_cast<T>(c)) / sum;
    const T b = scale * eps / static_cast<T>(c);
    if (!p.weight || eps == 0) {
      row_affine(gx, gx, c, a, -b);
    } else {
      const V av = V::broadcast(a), bv = V::broadcast(b);
      int64_t i = 0;
      for (; i + W <= c; i += W) (V::loadu(gx + i) * av - bv * V::loadu(p.weight + i)).storeu(gx + i);
      if (i < c) {
        const int n = static_cast<int>(c - i);
        (V::loadu_partial(gx + i, n) * av - bv * V::loadu_partial(p.weight + i, n)).storeu_partial(gx + i, n);
      }
    }
    gx[tr] -= scale * (1 - eps) * wt;
  }
}

template <class T>
void backward_cols(const T* x, const int64_t* t, int64_t c, int64_t inner, int64_t cols,
                   const CrossEntropyParams<T>& p, const T* go, int64_t go_stride, T divisor, T* gx) {
  using V = Vec<T>;
  const T eps = p.smoothing;
  walk_columns<T>(cols, [&](int64_t j, auto b) {
    constexpr int NV = decltype(b)::NV;
    const T* xj = x + j;
    T* gj = gx + j;
    V m[NV], s[NV];
    col_max_sum_exp<decltype(b), T>(b, xj, c, inner, gj, m, s);
    Lanes<T> sl, al, bl, keepl;
    sl.put(b, s);
    const int lanes = block_lanes(b);
    for (int q = 0; q < Lanes<T>::kMax; ++q) al.v[q] = bl.v[q] = keepl.v[q] = 0;
    for (int q = 0; q < lanes; ++q) {
      const int64_t tq = t[j + q];
      if (tq == p.ignore_index) continue;
      const T scale = go[(j + q) * go_stride] / divisor;
      const T wt = p.weight ? p.weight[tq] : T(1);
      al.v[q] = scale * ((1 - eps) * wt + eps * p.weight_sum / static_cast<T>(c)) / sl.v[q];
      bl.v[q] = scale * eps / static_cast<T>(c);
      keepl.v[q] = 1;
    }
    V av[NV], bv[NV], keep[NV];
    al.get(b, av);
    bl.get(b, bv);
    keepl.get(b, keep);
    typename V::Mask mask[NV];
    for (int k = 0; k < NV; ++k) mask[k] = greater_or_nan(keep[k], V::zero());
    for (int64_t d = 0; d < c; ++d) {
      const V wv = V::broadcast(p.weight ? p.weight[d] : T(1));
      for (int k = 0; k < NV; ++k) {
        const V g = b.load(gj + d * inner, k) * av[k] - bv[k] * wv;
        b.store(select(mask[k], g, V::zero()), gj + d * inner, k);
      }
    }
    for (int q = 0; q < lanes; ++q) {
      const int64_t tq = t[j + q];
      if (tq == p.ignore_index) continue;
      const T scale = go[(j + q) * go_stride] / divisor;
      const T wt = p.weight ? p.weight[tq] : T(1);
      gj[tq * inner + q] -= scale * (1 - eps) * wt;
    }
  });
}

template <class T>
CrossEntropyKernels<T> make_kernels() {
  return {&forward_rows<T>, &forward_cols<T>, &backward_rows<T>, &backward_cols<T>};
}

}  // namespace

extern const CrossEntropyKernels<float> cross_entropy_kernels_f32 = make_kernels<float>();
extern const CrossEntropyKernels<double> cross_entropy_kernels_f64 = make_kernels<double>();

}  // namespace tfg::TFG_ISA_NS
