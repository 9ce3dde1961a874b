// Per-ISA half of conv2d, written on Vec<T>: the direct depthwise kernels
// (depthwise.h) and the direct stride-1 convolution's register block (direct_conv.h).
//
// Note [padded planes]: each kernel first copies the plane it reads into a
// zero-padded buffer (PadLayout), so that every tap of every output element
// reads inside the buffer and the loops have no bounds tests at all. With
// stride 1 an output row is then computed a vector at a time, with its
// kH*kW partial sums in one register: loads of shifted input, FMAs, one
// store. (Accumulating tap after tap into the output row in memory instead
// is several times slower: each tap's store is reloaded by the next tap at
// an offset of one element, which defeats store-to-load forwarding.)
#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/conv2d/depthwise.h"
#include "ops/conv2d/direct_conv.h"
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

// See DirectConvKernels::slab. Register block: R channels x NV vectors.
//
// Note [channel chunks]: for one block of outputs the sum runs over all
// input channels, and their slab rows (kh rows x a few cache lines each, per
// channel) plus the block's weights outgrow L1 when there are many channels
// (64 channels of a 3x3: about 66 KB). So the channels are taken in chunks
// sized to stay in L1; the block's partial sums go to `partial` (r x count,
// in L1/L2) between chunks, a load and a store per R*NV accumulators per
// chunk, against chunk x taps x R*NV FMAs.
// KH, KW > 0 fix the kernel size at compile time (fully unrolled taps); 0: kh, kw.
template <class T, int R, int NV, int KH, int KW>
void direct_slab_sized(const T* in, int64_t in_plane, int64_t cin, int64_t wp, int64_t kh_, int64_t kw_,
                       int64_t dh, int64_t dw, const T* w, const T* bias, int channels, int64_t count,
                       int64_t ow, T* out, int64_t out_plane, T* partial) {
  using V = Vec<T>;
  const int64_t kh = KH > 0 ? KH : kh_, kw = KW > 0 ? KW : kw_;
  constexpr int W = V::W;
  constexpr int64_t kL1Budget = 24 << 10;
  const int64_t per_channel = (kh * (NV * W + (kw - 1) * dw) + kh * kw * R) * int64_t(sizeof(T));
  const int64_t chunk = std::max<int64_t>(1, kL1Budget / per_channel);
  const int64_t ld = (count + NV * W - 1) / (NV * W) * (NV * W);  // partial's row stride
  for (int64_t c0 = 0; c0 < cin; c0 += chunk) {
    const int64_t c1 = std::min(cin, c0 + chunk);
    const bool first = c0 == 0, last = c1 == cin;
    for (int64_t f = 0; f < count; f += NV * W) {
      V acc[R][NV];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const V b = V::broadcast(bias[r]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = first ? b : V::loadu(partial + r * ld + f + v * W);
      }
      const T* wt = w + c0 * kh * kw * R;
      for (int64_t c = c0; c < c1; ++c) {
        const T* base = in + c * in_plane + f;
#pragma GCC unroll 8
        for (int64_t a = 0; a < kh; ++a) {
          const T* row = base + a * dh * wp;
#pragma GCC unroll 8
          for (int64_t b = 0; b < kw; ++b, wt += R) {
            V xv[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) xv[v] = V::loadu(row + b * dw + v * W);
#pragma GCC unroll 16
            for (int r = 0; r < R; ++r) {
              const V wr = V::broadcast(wt[r]);
#pragma GCC unroll 4
              for (int v = 0; v < NV; ++v) acc[r][v] = fma(wr, xv[v], acc[r][v]);
            }
          }
        }
      }
      if (!last) {
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[r][v].storeu(partial + r * ld + f + v * W);
        continue;
      }
      // Each vector covers flat positions [f0, f0 + W): split it into row
      // segments and store each segment's columns < ow.
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        const int64_t f0 = f + v * W;
        const int lanes = static_cast<int>(std::min<int64_t>(W, count - f0));
        for (int l = 0; l < lanes;) {
          const int64_t y = (f0 + l) / wp, x = f0 + l - y * wp;
          const int seg_end = static_cast<int>(std::min<int64_t>(lanes, l + (wp - x)));
          const int valid_end = static_cast<int>(std::min<int64_t>(seg_end, l + std::max<int64_t>(0, ow - x)));
          if (valid_end > l) {
            T* dst = out + y * ow + x - l;  // lane l lands on column x
#pragma GCC unroll 16
            for (int r = 0; r < R; ++r)
              if (r < channels) acc[r][v].storeu_lanes(dst + r * out_plane, l, valid_end);
          }
          l = seg_end;
        }
      }
    }
  }
}

template <class T, int R, int NV>
void direct_slab(const T* in, int64_t in_plane, int64_t cin, int64_t wp, int64_t kh, int64_t kw,
                 int64_t dh, int64_t dw, const T* w, const T* bias, int channels, int64_t count,
                 int64_t ow, T* out, int64_t out_plane, T* partial) {
  const auto run = kh == 3 && kw == 3 ? &direct_slab_sized<T, R, NV, 3, 3> : &direct_slab_sized<T, R, NV, 0, 0>;
  run(in, in_plane, cin, wp, kh, kw, dh, dw, w, bias, channels, count, ow, out, out_plane, partial);
}

// Register blocks: R x NV accumulators leave room for NV inputs and a broadcast
// (32 vector registers on AVX-512, 16 on AVX2).
#if defined(__AVX512F__)
constexpr int kDirectR = 8, kDirectNV = 3;
#elif defined(__AVX2__)
constexpr int kDirectR = 4, kDirectNV = 3;
#else
constexpr int kDirectR = 4, kDirectNV = 4;
#endif

template <class T>
constexpr DirectConvKernels<T> make_direct_kernels() {
  return {kDirectR, kDirectNV * Vec<T>::W, &direct_slab<T, kDirectR, kDirectNV>};
}

template <class T>
constexpr DepthwiseKernels<T> make_kernels() {
  return {&forward_plane<T>, &backward_input_plane<T>, &backward_weight_plane<T>, &sum<T>};
}

}  // namespace

extern const DepthwiseKernels<float> depthwise_kernels_f32 = make_kernels<float>();
extern const DepthwiseKernels<double> depthwise_kernels_f64 = make_kernels<double>();
extern const DirectConvKernels<float> direct_conv_kernels_f32 = make_direct_kernels<float>();
extern const DirectConvKernels<double> direct_conv_kernels_f64 = make_direct_kernels<double>();

}  // namespace tfg::TFG_ISA_NS
