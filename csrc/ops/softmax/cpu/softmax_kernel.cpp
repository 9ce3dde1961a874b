// Per-ISA softmax / log_softmax kernels, forward and backward, on rows
// (reduction along contiguous elements) and on column blocks (reduction along
// a strided dimension, vectorised across the contiguous one). Compiled once
// per ISA level (Note [per-ISA object libraries] in CMakeLists.txt).
#include "ops/softmax/cpu/softmax_rows.h"
#include "ops/softmax/softmax.h"

namespace tfg::TFG_ISA_NS {
namespace {

using namespace rows;

// Three passes over a row that stays in L1: max, exp(x - max) stored to y with
// its sum, then the scaling (softmax) or y = x - max - log(sum) (log_softmax).
template <class T>
void forward_row(const T* x, T* y, int64_t n, bool log) {
  const T m = row_max(x, n);
  if (!log) {
    const T s = row_sum_exp(x, n, m, y);
    row_affine(y, y, n, T(1) / s, T(0));
  } else {
    const T s = row_sum_exp<T>(x, n, m, nullptr);
    row_sub2(x, y, n, m, static_cast<T>(std::log(s)));
  }
}

template <class T>
void forward_rows(const T* x, T* y, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r) forward_row(x + r * n, y + r * n, n, log);
}

// softmax:     gx = p * (g - sum(g * p))
// log_softmax: gx = g - p * sum(g), p = exp(y) when P_IS_LOG
template <class T, bool LOG, bool P_IS_LOG>
void backward_pass(const T* g, const T* p, T* gx, int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const V c = V::broadcast(row_dot(g, LOG ? nullptr : p, n));
  auto step = [&](V gv, V pv) {
    if constexpr (!LOG) return pv * (gv - c);
    if constexpr (P_IS_LOG) pv = exp(pv);
    return gv - pv * c;
  };
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const V r0 = step(V::loadu(g + i), V::loadu(p + i));
    const V r1 = step(V::loadu(g + i + W), V::loadu(p + i + W));
    r0.storeu(gx + i);
    r1.storeu(gx + i + W);
  }
  for (; i + W <= n; i += W) step(V::loadu(g + i), V::loadu(p + i)).storeu(gx + i);
  if (i < n) {
    const int r = static_cast<int>(n - i);
    step(V::loadu_partial(g + i, r), V::loadu_partial(p + i, r)).storeu_partial(gx + i, r);
  }
}

// p comes from y, or is first recomputed into gx (y null; gx then serves as p,
// read and overwritten element by element).
template <class T>
void backward_rows(const T* g, const T* y, const T* x, T* gx, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r, g += n, x += n, gx += n) {
    const T* p = y ? y + r * n : gx;
    if (!y) forward_row(x, gx, n, false);
    if (!log) backward_pass<T, false, false>(g, p, gx, n);
    else if (y) backward_pass<T, true, true>(g, p, gx, n);
    else backward_pass<T, true, false>(g, p, gx, n);
  }
}

// The column-block versions of the same passes.
template <class T, class Block>
void forward_block(const Block& b, const T* x, T* y, int64_t n, int64_t inner, bool log) {
  using V = Vec<T>;
  constexpr int NV = Block::NV;
  V m[NV], s[NV];
  col_max_sum_exp(b, x, n, inner, log ? nullptr : y, m, s);
  if (!log) {
    for (int k = 0; k < NV; ++k) s[k] = V::broadcast(T(1)) / s[k];
    for (int64_t d = 0; d < n; ++d)
      for (int k = 0; k < NV; ++k) b.store(b.load(y + d * inner, k) * s[k], y + d * inner, k);
  } else {
    for (int k = 0; k < NV; ++k) s[k] = lanewise_log(s[k]);
    for (int64_t d = 0; d < n; ++d)
      for (int k = 0; k < NV; ++k) b.store((b.load(x + d * inner, k) - m[k]) - s[k], y + d * inner, k);
  }
}

template <class T>
void forward_cols(const T* x, T* y, int64_t n, int64_t inner, int64_t cols, bool log) {
  walk_columns<T>(cols, [&](int64_t j, auto b) { forward_block(b, x + j, y + j, n, inner, log); });
}

template <class T, class Block>
void backward_block(const Block& b, const T* g, const T* y, const T* x, T* gx, int64_t n,
                    int64_t inner, bool log) {
  using V = Vec<T>;
  constexpr int NV = Block::NV;
  const T* p = y;
  bool p_is_log = log;
  if (!y) {
    forward_block(b, x, gx, n, inner, false);
    p = gx;
    p_is_log = false;
  }
  V c[NV];
  for (int k = 0; k < NV; ++k) c[k] = V::zero();
  for (int64_t d = 0; d < n; ++d)
    for (int k = 0; k < NV; ++k) {
      const V gv = b.load(g + d * inner, k);
      c[k] = log ? c[k] + gv : fma(gv, b.load(p + d * inner, k), c[k]);
    }
  for (int64_t d = 0; d < n; ++d)
    for (int k = 0; k < NV; ++k) {
      const V gv = b.load(g + d * inner, k);
      V pv = b.load(p + d * inner, k);
      V r;
      if (!log) {
        r = pv * (gv - c[k]);
      } else {
        if (p_is_log) pv = exp(pv);
        r = gv - pv * c[k];
      }
      b.store(r, gx + d * inner, k);
    }
}

template <class T>
void backward_cols(const T* g, const T* y, const T* x, T* gx, int64_t n, int64_t inner,
                   int64_t cols, bool log) {
  walk_columns<T>(cols, [&](int64_t j, auto b) {
    backward_block(b, g + j, y ? y + j : nullptr, x + j, gx + j, n, inner, log);
  });
}

template <class T>
SoftmaxKernels<T> make_kernels() {
  return {&forward_rows<T>, &forward_cols<T>, &backward_rows<T>, &backward_cols<T>};
}

}  // namespace

extern const SoftmaxKernels<float> softmax_kernels_f32 = make_kernels<float>();
extern const SoftmaxKernels<double> softmax_kernels_f64 = make_kernels<double>();

}  // namespace tfg::TFG_ISA_NS
