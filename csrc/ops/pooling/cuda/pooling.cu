// Hand-written CUDA 2-D pooling, forward and backward, float and double:
// max (with PyTorch's flat per-plane indices), avg (count_include_pad,
// divisor_override, ceil_mode through the geometry) and adaptive avg, with
// the rules of the CPU kernels (README.md).
//
// One thread per output element (forwards) or per input element (backwards),
// consecutive threads along the width (coalesced), 256 threads per block, a
// grid-stride loop beyond kMaxGrid blocks. Forwards read their window
// straight from global memory: neighbouring windows overlap, so the re-reads
// hit L1/L2, and a shared-memory tile would only pay for large windows.
//
// Note [pooling gather]: the backwards have no atomics and no zero-fill pass:
// each input element gathers the contributions of the outputs whose windows
// cover it, in increasing output order (row-major, the order of the CPU's
// scatter), so every grad_x element is written once and deterministically.
// For a tap offset ky of a window, the output row covering input row h is
// oy = (h + ph - ky * dh) / sh when that divides exactly and 0 <= oy < oh;
// scanning ky downwards gives increasing oy (likewise for columns).
// Max backward adds grad_out[o] where indices[o] names this element; avg
// adds grad_out[o] / divisor(o); adaptive adds grad_out[o] / bin area over
// the bins [floor(h OH / H), ceil((h + 1) OH / H) - 1] that hold row h.
#include "ops/pooling/cuda/pooling_cuda.h"

#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "cuda/launch.h"

namespace tfg::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxGrid = 65535 * 64;

__device__ inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
__device__ inline bool is_nan(float v) { return isnan(v); }
__device__ inline bool is_nan(double v) { return isnan(v); }

template <class T>
__global__ void __launch_bounds__(kThreads)
max_forward_kernel(const PoolGeometry g, int64_t total, const T* x, T* out, int64_t* indices) {
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; o < total;
       o += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t ox = o % g.ow, oy = o / g.ow % g.oh, plane = o / (g.ow * g.oh);
    const T* xp = x + plane * g.ih * g.iw;
    const int64_t h0 = oy * g.sh - g.ph, w0 = ox * g.sw - g.pw;
    T best = -INFINITY;
    int64_t arg = -1;  // the first in-bounds tap, then the winner
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const int64_t h = h0 + ky * g.dh;
      if (h < 0 || h >= g.ih) continue;
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        const int64_t w = w0 + kx * g.dw;
        if (w < 0 || w >= g.iw) continue;
        const T v = xp[h * g.iw + w];
        if (arg < 0) arg = h * g.iw + w;  // the first in-bounds tap (an all -inf window)
        if (v > best || is_nan(v)) {      // ties keep the first, the last NaN wins
          best = v;
          arg = h * g.iw + w;
        }
      }
    }
    if (out) out[o] = best;
    if (indices) indices[o] = arg;
  }
}

// Calls f(o) for the outputs o of this plane whose windows along one axis
// cover input position `pos`, in increasing order (Note [pooling gather]).
template <class F>
__device__ inline void covering(int64_t pos, int64_t pad, int64_t k, int64_t s, int64_t d, int64_t n_out,
                                F&& f) {
  for (int64_t kk = k - 1; kk >= 0; --kk) {
    const int64_t num = pos + pad - kk * d;
    if (num < 0 || num % s != 0) continue;
    const int64_t o = num / s;
    if (o < n_out) f(o);
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
max_backward_kernel(const PoolGeometry g, int64_t total, const T* grad_out, const int64_t* indices,
                    T* grad_x) {
  // One element per thread, no grid-stride loop: with the loop ptxas keeps
  // the window constants live across the 64-bit division calls of the next
  // element and spills on sm_80.
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i < total) {
    const int64_t w = i % g.iw, h = i / g.iw % g.ih, plane = i / (g.iw * g.ih);
    const int64_t flat = h * g.iw + w, obase = plane * g.oh * g.ow;
    T acc = T(0);
    // Note [32-bit window arithmetic]: covering() spelled out in int, which
    // the launcher checked is wide enough: with int64 the divisions become
    // calls and ptxas spills here.
    const int hh = static_cast<int>(h), ww = static_cast<int>(w);
    const int kh = static_cast<int>(g.kh), kw = static_cast<int>(g.kw), sh = static_cast<int>(g.sh),
              sw = static_cast<int>(g.sw), dh = static_cast<int>(g.dh), dw = static_cast<int>(g.dw);
    const int oh = static_cast<int>(g.oh), ow = static_cast<int>(g.ow);
    for (int ky = kh - 1; ky >= 0; --ky) {
      const int ny = hh + static_cast<int>(g.ph) - ky * dh;
      if (ny < 0 || ny % sh != 0 || ny / sh >= oh) continue;
      const int64_t orow = obase + static_cast<int64_t>(ny / sh) * ow;
      for (int kx = kw - 1; kx >= 0; --kx) {
        const int nx = ww + static_cast<int>(g.pw) - kx * dw;
        if (nx < 0 || nx % sw != 0 || nx / sw >= ow) continue;
        const int64_t o = orow + nx / sw;
        if (indices[o] == flat) acc += grad_out[o];
      }
    }
    grad_x[i] = acc;
  }
}

// The divisor of avg output (oy, ox): PyTorch's rule (README.md).
__device__ inline int64_t avg_divisor(const PoolGeometry& g, int64_t oy, int64_t ox) {
  if (g.divisor_override) return g.divisor_override;
  int64_t h0 = oy * g.sh - g.ph, w0 = ox * g.sw - g.pw;
  int64_t h1 = imin(h0 + g.kh, g.ih + g.ph), w1 = imin(w0 + g.kw, g.iw + g.pw);
  if (g.count_include_pad) return (h1 - h0) * (w1 - w0);
  h0 = imax(h0, 0); w0 = imax(w0, 0);
  h1 = imin(h1, g.ih); w1 = imin(w1, g.iw);
  return (h1 - h0) * (w1 - w0);
}

template <class T>
__global__ void __launch_bounds__(kThreads)
avg_forward_kernel(const PoolGeometry g, int64_t total, const T* x, T* out) {
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; o < total;
       o += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t ox = o % g.ow, oy = o / g.ow % g.oh, plane = o / (g.ow * g.oh);
    const T* xp = x + plane * g.ih * g.iw;
    const int64_t h0 = oy * g.sh - g.ph, w0 = ox * g.sw - g.pw;
    const int64_t hb = imax(h0, 0), he = imin(h0 + g.kh, g.ih);
    const int64_t wb = imax(w0, 0), we = imin(w0 + g.kw, g.iw);
    T sum = T(0);
    for (int64_t h = hb; h < he; ++h)
      for (int64_t w = wb; w < we; ++w) sum += xp[h * g.iw + w];
    out[o] = sum / static_cast<T>(avg_divisor(g, oy, ox));
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
avg_backward_kernel(const PoolGeometry g, int64_t total, const T* grad_out, T* grad_x) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t w = i % g.iw, h = i / g.iw % g.ih, plane = i / (g.iw * g.ih);
    const int64_t obase = plane * g.oh * g.ow;
    T acc = T(0);
    covering(h, g.ph, g.kh, g.sh, int64_t(1), g.oh, [&](int64_t oy) {
      covering(w, g.pw, g.kw, g.sw, int64_t(1), g.ow, [&](int64_t ox) {
        acc += grad_out[obase + oy * g.ow + ox] / static_cast<T>(avg_divisor(g, oy, ox));
      });
    });
    grad_x[i] = acc;
  }
}

// Adaptive bins: output i of n_out over n_in covers [floor(i n_in / n_out), ceil((i + 1) n_in / n_out)).
__device__ inline int64_t bin_start(int64_t i, int64_t n_in, int64_t n_out) { return i * n_in / n_out; }
__device__ inline int64_t bin_end(int64_t i, int64_t n_in, int64_t n_out) {
  return ((i + 1) * n_in + n_out - 1) / n_out;
}

template <class T>
__global__ void __launch_bounds__(kThreads)
adaptive_forward_kernel(const PoolGeometry g, int64_t total, const T* x, T* out) {
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; o < total;
       o += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t ox = o % g.ow, oy = o / g.ow % g.oh, plane = o / (g.ow * g.oh);
    const T* xp = x + plane * g.ih * g.iw;
    const int64_t hb = bin_start(oy, g.ih, g.oh), he = bin_end(oy, g.ih, g.oh);
    const int64_t wb = bin_start(ox, g.iw, g.ow), we = bin_end(ox, g.iw, g.ow);
    T sum = T(0);
    for (int64_t h = hb; h < he; ++h)
      for (int64_t w = wb; w < we; ++w) sum += xp[h * g.iw + w];
    out[o] = sum / static_cast<T>((he - hb) * (we - wb));
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
adaptive_backward_kernel(const PoolGeometry g, int64_t total, const T* grad_out, T* grad_x) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t w = i % g.iw, h = i / g.iw % g.ih, plane = i / (g.iw * g.ih);
    const T* gp = grad_out + plane * g.oh * g.ow;
    // Bins holding row h: [floor(h OH / H), ceil((h + 1) OH / H) - 1].
    const int64_t y0 = h * g.oh / g.ih, y1 = ((h + 1) * g.oh + g.ih - 1) / g.ih;
    const int64_t x0 = w * g.ow / g.iw, x1 = ((w + 1) * g.ow + g.iw - 1) / g.iw;
    T acc = T(0);
    for (int64_t oy = y0; oy < y1 && oy < g.oh; ++oy) {
      const int64_t rows = bin_end(oy, g.ih, g.oh) - bin_start(oy, g.ih, g.oh);
      for (int64_t ox = x0; ox < x1 && ox < g.ow; ++ox) {
        const int64_t cols = bin_end(ox, g.iw, g.ow) - bin_start(ox, g.iw, g.ow);
        acc += gp[oy * g.ow + ox] / static_cast<T>(rows * cols);
      }
    }
    grad_x[i] = acc;
  }
}

unsigned grid_for(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxGrid ? blocks : kMaxGrid);
}

void check_planes(const char* op, const PoolGeometry& g, int64_t planes) {
  TFG_CHECK_VALUE(planes >= 0 && g.ih >= 0 && g.iw >= 0 && g.oh >= 0 && g.ow >= 0, op,
                  ": negative size (planes=", planes, ", input ", g.ih, " x ", g.iw, ", output ", g.oh,
                  " x ", g.ow, ")");
}

}  // namespace

template <class T>
void max_pool2d_forward(const PoolGeometry& g, int64_t planes, const T* x, T* out, int64_t* indices,
                        cudaStream_t stream) {
  check_planes("cuda::max_pool2d_forward", g, planes);
  const int64_t total = planes * g.oh * g.ow;
  if (total == 0 || (!out && !indices)) return;
  launch(max_forward_kernel<T>, dim3(grid_for(total)), dim3(kThreads), 0, stream, g, total, x, out, indices);
}

template <class T>
void max_pool2d_backward(const PoolGeometry& g, int64_t planes, const T* grad_out, const int64_t* indices,
                         T* grad_x, cudaStream_t stream) {
  check_planes("cuda::max_pool2d_backward", g, planes);
  const int64_t total = planes * g.ih * g.iw;
  if (total == 0) return;
  // Note [32-bit window arithmetic]: every window coordinate below 2^31.
  constexpr int64_t kIntMax = 0x7fffffff;
  TFG_CHECK_VALUE(g.ih + 2 * g.ph < kIntMax && g.iw + 2 * g.pw < kIntMax && g.kh * g.dh < kIntMax &&
                      g.kw * g.dw < kIntMax && g.oh * g.sh < kIntMax && g.ow * g.sw < kIntMax,
                  "cuda::max_pool2d_backward: the input plane ", g.ih, " x ", g.iw,
                  " with this window is too large for the kernel's 32-bit window arithmetic");
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  TFG_CHECK_VALUE(blocks <= kIntMax, "cuda::max_pool2d_backward: ", total,
                  " input elements are too many for one launch");
  launch(max_backward_kernel<T>, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0, stream, g, total, grad_out,
         indices, grad_x);
}

template <class T>
void avg_pool2d_forward(const PoolGeometry& g, int64_t planes, const T* x, T* out, cudaStream_t stream) {
  check_planes("cuda::avg_pool2d_forward", g, planes);
  const int64_t total = planes * g.oh * g.ow;
  if (total == 0) return;
  launch(avg_forward_kernel<T>, dim3(grid_for(total)), dim3(kThreads), 0, stream, g, total, x, out);
}

template <class T>
void avg_pool2d_backward(const PoolGeometry& g, int64_t planes, const T* grad_out, T* grad_x,
                         cudaStream_t stream) {
  check_planes("cuda::avg_pool2d_backward", g, planes);
  const int64_t total = planes * g.ih * g.iw;
  if (total == 0) return;
  launch(avg_backward_kernel<T>, dim3(grid_for(total)), dim3(kThreads), 0, stream, g, total, grad_out, grad_x);
}

template <class T>
void adaptive_avg_pool2d_forward(const PoolGeometry& g, int64_t planes, const T* x, T* out,
                                 cudaStream_t stream) {
  check_planes("cuda::adaptive_avg_pool2d_forward", g, planes);
  const int64_t total = planes * g.oh * g.ow;
  if (total == 0) return;
  launch(adaptive_forward_kernel<T>, dim3(grid_for(total)), dim3(kThreads), 0, stream, g, total, x, out);
}

template <class T>
void adaptive_avg_pool2d_backward(const PoolGeometry& g, int64_t planes, const T* grad_out, T* grad_x,
                                  cudaStream_t stream) {
  check_planes("cuda::adaptive_avg_pool2d_backward", g, planes);
  const int64_t total = planes * g.ih * g.iw;
  if (total == 0) return;
  // An empty output (oh or ow 0) gives grad_x = 0: the gather finds no bins.
  launch(adaptive_backward_kernel<T>, dim3(grid_for(total)), dim3(kThreads), 0, stream, g, total, grad_out,
         grad_x);
}

#define TFG_POOL_CUDA_INSTANTIATE(T)                                                                   \
  template void max_pool2d_forward<T>(const PoolGeometry&, int64_t, const T*, T*, int64_t*, cudaStream_t); \
  template void max_pool2d_backward<T>(const PoolGeometry&, int64_t, const T*, const int64_t*, T*,     \
                                       cudaStream_t);                                                \
  template void avg_pool2d_forward<T>(const PoolGeometry&, int64_t, const T*, T*, cudaStream_t);      \
  template void avg_pool2d_backward<T>(const PoolGeometry&, int64_t, const T*, T*, cudaStream_t);     \
  template void adaptive_avg_pool2d_forward<T>(const PoolGeometry&, int64_t, const T*, T*, cudaStream_t); \
  template void adaptive_avg_pool2d_backward<T>(const PoolGeometry&, int64_t, const T*, T*, cudaStream_t);
TFG_POOL_CUDA_INSTANTIATE(float)
TFG_POOL_CUDA_INSTANTIATE(double)

}  // namespace tfg::cuda
