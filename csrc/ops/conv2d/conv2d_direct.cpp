// conv2d forward, stride 1, without im2col: the driver of the per-ISA
// register-block kernel (direct_conv.h).
//
// Note [direct convolution]: work items are (image, group, slab of output
// rows). An item copies the input rows its outputs read, for all the group's
// channels, into a zero-padded slab (rows of wp = ow + (kw-1)*dw elements, the
// padding already in place), so that with stride 1 output pixel (y, x) reads
// slab position (y + a*dh) * wp + x + b*dw for tap (a, b): one flat grid, in
// which consecutive outputs read consecutive inputs across row ends. The
// kernel then runs over that flat grid a few vectors at a time for a block of
// R output channels: per tap, NV vector loads and R broadcast weights feed
// R*NV FMAs, all accumulators in registers for the whole sum over channels and
// taps, and the result is stored once. The wp - ow columns per row that the
// flat grid computes past the edge (kw - 1 for "same" padding, 2 of 58 for a
// 3x3 on 56 columns) are dropped at the store. Compared with implicit GEMM
// nothing is written but the slab (about as big as the input) and the output,
// and every output is stored exactly once.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/per_thread.h"
#include "ops/conv2d/conv2d.h"
#include "ops/conv2d/direct_conv.h"

namespace tfg {

namespace {

template <class T> const DirectConvKernels<T>& active_direct_kernels();
template <> const DirectConvKernels<float>& active_direct_kernels() { return active_direct_conv_kernels_f32(); }
template <> const DirectConvKernels<double>& active_direct_kernels() { return active_direct_conv_kernels_f64(); }

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// About this many bytes of slab per item (it is re-read once per channel block, from L2).
constexpr int64_t kSlabBytes = 192 << 10;
constexpr int64_t kItemsPerThread = 4;

}  // namespace

template <class T>
void conv2d_forward_direct(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  const DirectConvKernels<T>& kr = active_direct_kernels<T>();
  const int64_t m = g.oc_per_group(), cg = g.c_per_group(), taps = g.taps();
  const int64_t r = kr.r, blocks = ceil_div(m, r);
  const int64_t wp = g.ow + (g.kw - 1) * g.dw;   // padded row: every column a tap reads
  const int64_t halo = (g.kh - 1) * g.dh;        // extra input rows below a slab's outputs
  const int threads = conv_threads(2.0 * g.n * g.oc * g.pixels() * cg * taps);

  int64_t rows = std::max<int64_t>(1, kSlabBytes / int64_t(sizeof(T) * cg * wp) - halo);
  rows = std::min(rows, std::max<int64_t>(1, ceil_div(g.n * g.groups * g.oh, kItemsPerThread * threads)));
  rows = std::min(rows, g.oh);
  const int64_t slabs = ceil_div(g.oh, rows);
  const int64_t slack = kr.step + (g.kw - 1) * g.dw + 64;
  PerThread<T> slab_buf(threads, cg * (rows + halo) * wp + slack),
      partial_buf(threads, kr.partial_size(rows * wp));

  // Weights as blocks of r output channels, channel-fastest per (input channel, tap),
  // zero for the missing channels of a last, partial block; the bias likewise.
  std::vector<T> wpack(g.groups * blocks * cg * taps * r, T(0)), bpack(g.groups * blocks * r, T(0));
  for (int64_t grp = 0; grp < g.groups; ++grp)
    for (int64_t o = 0; o < m; ++o) {
      const int64_t blk = grp * blocks + o / r, lane = o % r;
      if (bias) bpack[blk * r + lane] = bias[grp * m + o];
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t t = 0; t < taps; ++t)
          wpack[((blk * cg + c) * taps + t) * r + lane] = w[((grp * m + o) * cg + c) * taps + t];
    }

  parallel_for_with_thread(g.n * g.groups * slabs, [&](int64_t item, int thread) {
    const int64_t n = item / (g.groups * slabs), grp = item / slabs % g.groups;
    const int64_t y0 = item % slabs * rows, rows_out = std::min(rows, g.oh - y0);
    const int64_t prow = rows_out + halo, plane = prow * wp;
    T* slab = slab_buf[thread];
    const T* xg = x + (n * g.c + grp * cg) * g.plane();
    const int64_t left = std::min(g.pw, wp), ncopy = std::max<int64_t>(0, std::min(g.w, wp - g.pw));
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t pr = 0; pr < prow; ++pr) {
        T* dst = slab + c * plane + pr * wp;
        const int64_t ir = y0 + pr - g.ph;
        if (ir < 0 || ir >= g.h) {
          std::fill_n(dst, wp, T(0));
          continue;
        }
        std::fill_n(dst, left, T(0));
        std::memcpy(dst + left, xg + c * g.plane() + ir * g.w, ncopy * sizeof(T));
        std::fill(dst + left + ncopy, dst + wp, T(0));
      }
    std::fill_n(slab + cg * plane, slack, T(0));
    T* og = out + (n * g.oc + grp * m) * g.pixels() + y0 * g.ow;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t blk = grp * blocks + b;
      kr.slab(slab, plane, cg, wp, g.kh, g.kw, g.dh, g.dw, wpack.data() + blk * cg * taps * r,
              bpack.data() + blk * r, static_cast<int>(std::min(r, m - b * r)), rows_out * wp, g.ow,
              og + b * r * g.pixels(), g.pixels(), partial_buf[thread]);
    }
  }, threads);
}

template void conv2d_forward_direct<float>(const ConvGeometry&, const float*, const float*, const float*, float*);
template void conv2d_forward_direct<double>(const ConvGeometry&, const double*, const double*, const double*, double*);

}  // namespace tfg
