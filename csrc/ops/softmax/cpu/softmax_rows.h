// Vectorised building blocks for reductions along one dimension, shared by the
// softmax and cross-entropy kernels (included only by per-ISA kernel sources).
//
// Rows: n contiguous elements. Columns: a block of adjacent columns of an
// (n, inner) row-major slice, held in NV vectors (ColBlock), the last of
// which may be partial; walk_columns() cuts `cols` columns into such blocks.
//
// Note [max and NaN]: the running max is not guaranteed to be NaN for a row
// holding a NaN (Vec max returns its second operand when either is NaN), and
// it need not be: exp(NaN - m) is NaN, so the row's sum, and with it every
// output of the row, is NaN either way, as in PyTorch. A row of -inf has
// m = -inf and x - m = NaN, which gives NaN as PyTorch does too.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "simd/vec.h"

namespace tfg::TFG_ISA_NS {
namespace rows {

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

template <class T>
T row_max(const T* x, int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::W;
  V m0 = V::broadcast(kNegInf<T>), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    m0 = max(m0, V::loadu(x + i));
    m1 = max(m1, V::loadu(x + i + W));
    m2 = max(m2, V::loadu(x + i + 2 * W));
    m3 = max(m3, V::loadu(x + i + 3 * W));
  }
  for (; i + W <= n; i += W) m0 = max(m0, V::loadu(x + i));
  if (i < n) m1 = max(m1, V::loadu_partial(x + i, static_cast<int>(n - i), kNegInf<T>));
  return max(max(m0, m1), max(m2, m3)).reduce_max();
}

// sum of exp(x - m); the terms are stored to e when it is not null (e may be x).
template <class T>
T row_sum_exp(const T* x, int64_t n, T m, T* e) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const V mv = V::broadcast(m);
  V s0 = V::zero(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    const V e0 = exp(V::loadu(x + i) - mv), e1 = exp(V::loadu(x + i + W) - mv);
    const V e2 = exp(V::loadu(x + i + 2 * W) - mv), e3 = exp(V::loadu(x + i + 3 * W) - mv);
    if (e) {
      e0.storeu(e + i); e1.storeu(e + i + W); e2.storeu(e + i + 2 * W); e3.storeu(e + i + 3 * W);
    }
    s0 = s0 + e0; s1 = s1 + e1; s2 = s2 + e2; s3 = s3 + e3;
  }
  for (; i + W <= n; i += W) {
    const V e0 = exp(V::loadu(x + i) - mv);
    if (e) e0.storeu(e + i);
    s0 = s0 + e0;
  }
  if (i < n) {
    const int r = static_cast<int>(n - i);
    const V e0 = exp(V::loadu_partial(x + i, r, kNegInf<T>) - mv);  // exp(-inf) = 0 past the end
    if (e) e0.storeu_partial(e + i, r);
    s1 = s1 + e0;
  }
  return ((s0 + s1) + (s2 + s3)).reduce_add();
}

// y[i] = a * x[i] + b (y may be x).
template <class T>
void row_affine(const T* x, T* y, int64_t n, T a, T b) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const V av = V::broadcast(a), bv = V::broadcast(b);
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    fma(V::loadu(x + i), av, bv).storeu(y + i);
    fma(V::loadu(x + i + W), av, bv).storeu(y + i + W);
  }
  for (; i + W <= n; i += W) fma(V::loadu(x + i), av, bv).storeu(y + i);
  if (i < n) fma(V::loadu_partial(x + i, static_cast<int>(n - i)), av, bv).storeu_partial(y + i, static_cast<int>(n - i));
}

// y[i] = (x[i] - m) - c: log_softmax's last step, x - m first so that it is exact near the max.
template <class T>
void row_sub2(const T* x, T* y, int64_t n, T m, T c) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const V mv = V::broadcast(m), cv = V::broadcast(c);
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    ((V::loadu(x + i) - mv) - cv).storeu(y + i);
    ((V::loadu(x + i + W) - mv) - cv).storeu(y + i + W);
  }
  for (; i + W <= n; i += W) ((V::loadu(x + i) - mv) - cv).storeu(y + i);
  if (i < n) ((V::loadu_partial(x + i, static_cast<int>(n - i)) - mv) - cv).storeu_partial(y + i, static_cast<int>(n - i));
}

// sum of a[i] * b[i], or of a[i] when b is null.
template <class T>
T row_dot(const T* a, const T* b, int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::W;
  V s0 = V::zero(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  if (b) {
    for (; i + 4 * W <= n; i += 4 * W) {
      s0 = fma(V::loadu(a + i), V::loadu(b + i), s0);
      s1 = fma(V::loadu(a + i + W), V::loadu(b + i + W), s1);
      s2 = fma(V::loadu(a + i + 2 * W), V::loadu(b + i + 2 * W), s2);
      s3 = fma(V::loadu(a + i + 3 * W), V::loadu(b + i + 3 * W), s3);
    }
    for (; i + W <= n; i += W) s0 = fma(V::loadu(a + i), V::loadu(b + i), s0);
    if (i < n) {
      const int r = static_cast<int>(n - i);
      s1 = fma(V::loadu_partial(a + i, r), V::loadu_partial(b + i, r), s1);
    }
  } else {
    for (; i + 4 * W <= n; i += 4 * W) {
      s0 = s0 + V::loadu(a + i);
      s1 = s1 + V::loadu(a + i + W);
      s2 = s2 + V::loadu(a + i + 2 * W);
      s3 = s3 + V::loadu(a + i + 3 * W);
    }
    for (; i + W <= n; i += W) s0 = s0 + V::loadu(a + i);
    if (i < n) s1 = s1 + V::loadu_partial(a + i, static_cast<int>(n - i));
  }
  return ((s0 + s1) + (s2 + s3)).reduce_add();
}

// log of each lane (once per column block; the C library's log is plenty).
template <class T>
Vec<T> lanewise_log(Vec<T> v) {
  constexpr int W = Vec<T>::W;
  T t[W];
  v.storeu(t);
  for (int i = 0; i < W; ++i) t[i] = std::log(t[i]);
  return Vec<T>::loadu(t);
}

// NV adjacent vectors of columns; with PARTIAL the last holds only `last` lanes.
// Loads past the block's end give `fill`; stores never touch them.
template <class T, int NV_, bool PARTIAL>
struct ColBlock {
  using V = Vec<T>;
  static constexpr int NV = NV_, W = V::W;
  int last;
  V load(const T* p, int k, T fill = 0) const {
    if (PARTIAL && k == NV - 1) return V::loadu_partial(p + k * W, last, fill);
    return V::loadu(p + k * W);
  }
  void store(V v, T* p, int k) const {
    if (PARTIAL && k == NV - 1) v.storeu_partial(p + k * W, last);
    else v.storeu(p + k * W);
  }
  int lanes(int k) const { return PARTIAL && k == NV - 1 ? last : W; }
};

// Calls fn(j, block) for blocks covering columns [0, cols): four vectors at a
// time, then one, then one partial vector.
template <class T, class Fn>
void walk_columns(int64_t cols, Fn&& fn) {
  constexpr int W = Vec<T>::W;
  int64_t j = 0;
  for (; j + 4 * W <= cols; j += 4 * W) fn(j, ColBlock<T, 4, false>{W});
  for (; j + W <= cols; j += W) fn(j, ColBlock<T, 1, false>{W});
  if (j < cols) fn(j, ColBlock<T, 1, true>{static_cast<int>(cols - j)});
}

// Per-column max and sum of exp(x - max) of a block over n rows of stride
// `inner` (x points at the block's first column); the exps are stored to e
// when it is not null.
template <class Block, class T>
void col_max_sum_exp(const Block& b, const T* x, int64_t n, int64_t inner, T* e,
                     Vec<T> (&m)[Block::NV], Vec<T> (&s)[Block::NV]) {
  using V = Vec<T>;
  constexpr int NV = Block::NV;
  for (int k = 0; k < NV; ++k) m[k] = V::broadcast(kNegInf<T>), s[k] = V::zero();
  for (int64_t d = 0; d < n; ++d)
    for (int k = 0; k < NV; ++k) m[k] = max(m[k], b.load(x + d * inner, k));
  for (int64_t d = 0; d < n; ++d)
    for (int k = 0; k < NV; ++k) {
      const V ek = exp(b.load(x + d * inner, k) - m[k]);
      if (e) b.store(ek, e + d * inner, k);
      s[k] = s[k] + ek;
    }
}

}  // namespace rows
}  // namespace tfg::TFG_ISA_NS
