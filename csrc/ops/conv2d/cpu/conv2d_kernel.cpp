// Per-ISA half of conv2d: the direct depthwise kernels (depthwise.h), written
// on Vec<T>. Each walks output rows and kernel taps; for a tap, the output
// columns whose input is inside the plane form one range (valid_columns), so
// the inner loops are plain strided axpys and dots without bounds tests.
#include "ops/conv2d/depthwise.h"
#include "simd/vec.h"

namespace tfg::TFG_ISA_NS {
namespace {

// y[t] += a * x[t * stride] for t < n.
template <class T>
void axpy(T* y, T a, const T* x, int64_t n, int64_t stride) {
  using V = Vec<T>;
  constexpr int W = V::W;
  if (stride != 1) {
    for (int64_t t = 0; t < n; ++t) y[t] += a * x[t * stride];
    return;
  }
  const V av = V::broadcast(a);
  int64_t t = 0;
  for (; t + W <= n; t += W) fma(av, V::loadu(x + t), V::loadu(y + t)).storeu(y + t);
  if (t < n) {
    const int r = static_cast<int>(n - t);
    fma(av, V::loadu_partial(x + t, r), V::loadu_partial(y + t, r)).storeu_partial(y + t, r);
  }
}

// y[t * stride] += a * x[t] for t < n (the transpose of axpy).
template <class T>
void axpy_scatter(T* y, int64_t stride, T a, const T* x, int64_t n) {
  if (stride == 1) {
    axpy(y, a, x, n, 1);
    return;
  }
  for (int64_t t = 0; t < n; ++t) y[t * stride] += a * x[t];
}

// acc += x[t] * y[t * stride] for t < n, lane-wise.
template <class T>
void dot_into(Vec<T>& acc, T& tail, const T* x, const T* y, int64_t n, int64_t stride) {
  using V = Vec<T>;
  constexpr int W = V::W;
  if (stride != 1) {
    for (int64_t t = 0; t < n; ++t) tail += x[t] * y[t * stride];
    return;
  }
  int64_t t = 0;
  for (; t + W <= n; t += W) acc = fma(V::loadu(x + t), V::loadu(y + t), acc);
  if (t < n) {
    const int r = static_cast<int>(n - t);
    acc = fma(V::loadu_partial(x + t, r), V::loadu_partial(y + t, r), acc);
  }
}

// Calls f(y, input row, tap, first output column, input column of it, count)
// for every output row y, kernel tap (i, j) whose input row is inside the
// plane, with the output columns of that tap that read inside it.
template <class F>
void for_each_tap_run(const ConvGeometry& g, F&& f) {
  for (int64_t y = 0; y < g.oh; ++y)
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t row = y * g.sh - g.ph + i * g.dh;
      if (row < 0 || row >= g.h) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t col0 = j * g.dw - g.pw;
        int64_t lo, hi;
        valid_columns(g, col0, &lo, &hi);
        if (hi > lo) f(y, row, i * g.kw + j, lo, lo * g.sw + col0, hi - lo);
      }
    }
}

template <class T>
void forward_plane(const ConvGeometry& g, const T* in, const T* w, T bias, T* out) {
  for (int64_t t = 0; t < g.oh * g.ow; ++t) out[t] = bias;
  for_each_tap_run(g, [&](int64_t y, int64_t row, int64_t tap, int64_t x, int64_t col, int64_t n) {
    axpy(out + y * g.ow + x, w[tap], in + row * g.w + col, n, g.sw);
  });
}

template <class T>
void backward_input_plane(const ConvGeometry& g, const T* grad_out, const T* w, T* grad_in) {
  for_each_tap_run(g, [&](int64_t y, int64_t row, int64_t tap, int64_t x, int64_t col, int64_t n) {
    axpy_scatter(grad_in + row * g.w + col, g.sw, w[tap], grad_out + y * g.ow + x, n);
  });
}

template <class T>
void backward_weight_plane(const ConvGeometry& g, const T* grad_out, const T* in, T* grad_w) {
  using V = Vec<T>;
  constexpr int64_t kMaxTaps = 64;
  if (g.taps() > kMaxTaps) {  // large kernels: one scalar accumulator per tap
    for_each_tap_run(g, [&](int64_t y, int64_t row, int64_t tap, int64_t x, int64_t col, int64_t n) {
      V acc = V::zero();
      T tail = T(0);
      dot_into(acc, tail, grad_out + y * g.ow + x, in + row * g.w + col, n, g.sw);
      grad_w[tap] += acc.reduce_add() + tail;
    });
    return;
  }
  V acc[kMaxTaps];
  T tail[kMaxTaps];
  for (int64_t t = 0; t < g.taps(); ++t) { acc[t] = V::zero(); tail[t] = T(0); }
  for_each_tap_run(g, [&](int64_t y, int64_t row, int64_t tap, int64_t x, int64_t col, int64_t n) {
    dot_into(acc[tap], tail[tap], grad_out + y * g.ow + x, in + row * g.w + col, n, g.sw);
  });
  for (int64_t t = 0; t < g.taps(); ++t) grad_w[t] += acc[t].reduce_add() + tail[t];
}

template <class T>
T sum(const T* p, int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::W;
  V a0 = V::zero(), a1 = V::zero();
  int64_t t = 0;
  for (; t + 2 * W <= n; t += 2 * W) {
    a0 = a0 + V::loadu(p + t);
    a1 = a1 + V::loadu(p + t + W);
  }
  for (; t + W <= n; t += W) a0 = a0 + V::loadu(p + t);
  if (t < n) a1 = a1 + V::loadu_partial(p + t, static_cast<int>(n - t));
  return (a0 + a1).reduce_add();
}

template <class T>
constexpr DepthwiseKernels<T> make_kernels() {
  return {&forward_plane<T>, &backward_input_plane<T>, &backward_weight_plane<T>, &sum<T>};
}

}  // namespace

extern const DepthwiseKernels<float> depthwise_kernels_f32 = make_kernels<float>();
extern const DepthwiseKernels<double> depthwise_kernels_f64 = make_kernels<double>();

}  // namespace tfg::TFG_ISA_NS
