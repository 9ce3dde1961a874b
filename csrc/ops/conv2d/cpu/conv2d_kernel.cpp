// Per-ISA half of conv2d: the direct depthwise kernels (depthwise.h), written
// on Vec<T>.
//
// Note [padded planes]: each kernel first copies the plane it reads into a
// zero-padded buffer (PadLayout), so that every tap of every output element
// reads inside the buffer and the loops have no bounds tests at all. With
// stride 1 an output row is then computed a vector at a time, with its
// kH*kW partial sums in one register: loads of shifted input, FMAs, one
// store. (Accumulating tap after tap into the output row in memory instead
// is several times slower: each tap's store is reloaded by the next tap at
// an offset of one element, which defeats store-to-load forwarding.)
#include <cstring>
#include <vector>

#include "ops/conv2d/depthwise.h"
#include "simd/vec.h"

namespace tfg::TFG_ISA_NS {
namespace {

// Copies the plane into its place in buf. The rest of buf is zero and stays
// zero: scratch comes zeroed and every plane of a call has the same layout.
template <class T>
void pad_plane(const T* src, int64_t rows, int64_t cols, const PadLayout& p, T* buf) {
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(buf + (r + p.top) * p.ld + p.left, src + r * cols, cols * sizeof(T));
}

// One output row of a stride-1 correlation, a vector of outputs at a time with
// all KH x KW taps summed in a register (weights in registers too).
template <class T, int KH, int KW>
void correlate_row_fixed(const T* rows, int64_t ld, int64_t ow, int64_t dh, int64_t dw,
                         const Vec<T>* wv, Vec<T> bias, T* o, bool accumulate) {
  using V = Vec<T>;
  constexpr int W = V::W;
  V wr[KH * KW];
#pragma GCC unroll 16
  for (int t = 0; t < KH * KW; ++t) wr[t] = wv[t];
  for (int64_t x = 0; x < ow; x += W) {
    const int n = static_cast<int>(std::min<int64_t>(W, ow - x));
    V acc = accumulate ? V::loadu_partial(o + x, n) : bias;
#pragma GCC unroll 4
    for (int i = 0; i < KH; ++i) {
      const T* row = rows + i * dh * ld + x;
#pragma GCC unroll 4
      for (int j = 0; j < KW; ++j) acc = fma(wr[i * KW + j], V::loadu(row + j * dw), acc);
    }
    if (n == W) acc.storeu(o + x);
    else acc.storeu_partial(o + x, n);
  }
}

// out[y * ow + x] (+)= bias + sum over (i, j) of w[i * kw + j] * buf[(y*sh + i*dh) * ld + x*sw + j*dw].
// Assumptions: every such read (and, for stride 1, the rest of its vector) is
// inside buf (a PadLayout); w has kh * kw taps.
template <class T>
void correlate(const T* buf, int64_t ld, int64_t oh, int64_t ow, const ConvGeometry& g, const T* w,
               T bias, T* out, bool accumulate) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const int64_t taps = g.taps();
  if (g.sw != 1) {
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x) {
        T acc = accumulate ? out[y * ow + x] : bias;
        for (int64_t i = 0; i < g.kh; ++i) {
          const T* row = buf + (y * g.sh + i * g.dh) * ld + x * g.sw;
          for (int64_t j = 0; j < g.kw; ++j) acc += w[i * g.kw + j] * row[j * g.dw];
        }
        out[y * ow + x] = acc;
      }
    return;
  }
  std::vector<V> wv(taps);
  for (int64_t t = 0; t < taps; ++t) wv[t] = V::broadcast(w[t]);
  const V bv = V::broadcast(bias);
  for (int64_t y = 0; y < oh; ++y) {
    T* o = out + y * ow;
    const T* rows = buf + y * g.sh * ld;
    if (g.kh == 3 && g.kw == 3) {
      correlate_row_fixed<T, 3, 3>(rows, ld, ow, g.dh, g.dw, wv.data(), bv, o, accumulate);
      continue;
    }
    for (int64_t x = 0; x < ow; x += W) {
      const int n = static_cast<int>(std::min<int64_t>(W, ow - x));
      V acc = accumulate ? V::loadu_partial(o + x, n) : bv;
      for (int64_t i = 0; i < g.kh; ++i) {
        const T* row = rows + i * g.dh * ld + x;
        for (int64_t j = 0; j < g.kw; ++j) acc = fma(wv[i * g.kw + j], V::loadu(row + j * g.dw), acc);
      }
      if (n == W) acc.storeu(o + x);
      else acc.storeu_partial(o + x, n);
    }
  }
}

template <class T>
void forward_plane(const ConvGeometry& g, const T* in, const T* w, T bias, T* out, T* scratch) {
  const PadLayout p = input_pad_layout(g);
  pad_plane(in, g.h, g.w, p, scratch);
  correlate(scratch, p.ld, g.oh, g.ow, g, w, bias, out, false);
}

template <class T>
void backward_input_plane(const ConvGeometry& g, const T* grad_out, const T* w, T* grad_in,
                          T* scratch) {
  const int64_t taps = g.taps();
  if (input_grad_is_convolution(g)) {
    // grad_in[r, c] = sum over taps of w[kh-1-i, kw-1-j] * padded grad_out[r + i*dh, c + j*dw].
    const PadLayout p = grad_output_pad_layout(g);
    pad_plane(grad_out, g.oh, g.ow, p, scratch);
    std::vector<T> flipped(w, w + taps);
    std::reverse(flipped.begin(), flipped.end());
    correlate(scratch, p.ld, g.h, g.w, g, flipped.data(), T(0), grad_in, true);
    return;
  }
  // Strided (or over-padded): scatter into a padded input-shaped buffer, then add its interior.
  const PadLayout p = input_pad_layout(g);
  std::fill_n(scratch, p.size(), T(0));
  for (int64_t y = 0; y < g.oh; ++y)
    for (int64_t i = 0; i < g.kh; ++i) {
      T* row = scratch + (y * g.sh + i * g.dh) * p.ld;
      for (int64_t x = 0; x < g.ow; ++x) {
        const T gy = grad_out[y * g.ow + x];
        for (int64_t j = 0; j < g.kw; ++j) row[x * g.sw + j * g.dw] += w[i * g.kw + j] * gy;
      }
    }
  for (int64_t r = 0; r < g.h; ++r) {
    const T* src = scratch + (r + p.top) * p.ld + p.left;
    for (int64_t c = 0; c < g.w; ++c) grad_in[r * g.w + c] += src[c];
  }
}

// The stride-1 weight gradient with the KH x KW accumulators in registers.
template <class T, int KH, int KW>
void weight_grad_fixed(const T* buf, int64_t ld, const ConvGeometry& g, const T* grad_out, T* grad_w) {
  using V = Vec<T>;
  constexpr int W = V::W;
  V acc[KH * KW];
#pragma GCC unroll 16
  for (int t = 0; t < KH * KW; ++t) acc[t] = V::zero();
  for (int64_t y = 0; y < g.oh; ++y) {
    const T* rows = buf + y * ld;
    for (int64_t x = 0; x < g.ow; x += W) {
      const V gy = V::loadu_partial(grad_out + y * g.ow + x, static_cast<int>(std::min<int64_t>(W, g.ow - x)));
#pragma GCC unroll 4
      for (int i = 0; i < KH; ++i) {
        const T* row = rows + i * g.dh * ld + x;
#pragma GCC unroll 4
        for (int j = 0; j < KW; ++j) acc[i * KW + j] = fma(gy, V::loadu(row + j * g.dw), acc[i * KW + j]);
      }
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < KH * KW; ++t) grad_w[t] += acc[t].reduce_add();
}

template <class T>
void backward_weight_plane(const ConvGeometry& g, const T* grad_out, const T* in, T* grad_w,
                           T* scratch) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const PadLayout p = input_pad_layout(g);
  pad_plane(in, g.h, g.w, p, scratch);
  const int64_t taps = g.taps();
  if (g.sw != 1) {
    for (int64_t y = 0; y < g.oh; ++y)
      for (int64_t i = 0; i < g.kh; ++i) {
        const T* row = scratch + (y * g.sh + i * g.dh) * p.ld;
        for (int64_t j = 0; j < g.kw; ++j) {
          T acc = T(0);
          for (int64_t x = 0; x < g.ow; ++x) acc += grad_out[y * g.ow + x] * row[x * g.sw + j * g.dw];
          grad_w[i * g.kw + j] += acc;
        }
      }
    return;
  }
  if (g.kh == 3 && g.kw == 3) {
    weight_grad_fixed<T, 3, 3>(scratch, p.ld, g, grad_out, grad_w);
    return;
  }
  std::vector<V> acc(taps, V::zero());
  for (int64_t y = 0; y < g.oh; ++y) {
    const T* rows = scratch + y * g.sh * p.ld;
    for (int64_t x = 0; x < g.ow; x += W) {
      // Lanes past the row's end load 0 from grad_out and add nothing.
      const V gy = V::loadu_partial(grad_out + y * g.ow + x, static_cast<int>(std::min<int64_t>(W, g.ow - x)));
      for (int64_t i = 0; i < g.kh; ++i) {
        const T* row = rows + i * g.dh * p.ld + x;
        for (int64_t j = 0; j < g.kw; ++j)
          acc[i * g.kw + j] = fma(gy, V::loadu(row + j * g.dw), acc[i * g.kw + j]);
      }
    }
  }
  for (int64_t t = 0; t < taps; ++t) grad_w[t] += acc[t].reduce_add();
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
