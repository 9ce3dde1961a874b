// ConvGeometry: the sizes of one 2-D convolution (per group), and the walk
// over its implicit im2col matrix that both im2col (forward, weight gradient)
// and col2im (input gradient) are written on.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace tfg {

struct ConvGeometry {
  int64_t n = 0;                 // batch
  int64_t c = 0, h = 0, w = 0;   // input channels (all groups), height, width
  int64_t oc = 0, oh = 0, ow = 0;
  int64_t kh = 0, kw = 0;
  int64_t sh = 1, sw = 1;        // stride
  int64_t ph = 0, pw = 0;        // padding before the first row / column (the one after
                                 // may differ for "same" with even kernels; it only shows in oh/ow)
  int64_t dh = 1, dw = 1;        // dilation
  int64_t groups = 1;

  int64_t c_per_group() const { return c / groups; }
  int64_t oc_per_group() const { return oc / groups; }
  int64_t taps() const { return kh * kw; }
  // Rows of the im2col matrix of one group: (channel, kernel row, kernel column).
  int64_t k_per_group() const { return c_per_group() * kh * kw; }
  int64_t pixels() const { return oh * ow; }       // its columns: output pixels
  int64_t plane() const { return h * w; }
};

// Stride 1 with padding no wider than the kernel's reach: the input gradient
// is then itself a stride-1 convolution, of the output gradient (padded by the
// kernel's reach minus the padding) with the kernel flipped in both directions
// and its in/out channels swapped. transposed_geometry() describes it.
inline bool input_grad_is_convolution(const ConvGeometry& g) {
  return g.sh == 1 && g.sw == 1 && (g.kh - 1) * g.dh >= g.ph && (g.kw - 1) * g.dw >= g.pw;
}

inline ConvGeometry transposed_geometry(const ConvGeometry& g) {
  ConvGeometry t = g;
  t.c = g.oc; t.h = g.oh; t.w = g.ow;
  t.oc = g.c; t.oh = g.h; t.ow = g.w;
  t.ph = (g.kh - 1) * g.dh - g.ph;
  t.pw = (g.kw - 1) * g.dw - g.pw;
  return t;
}

// The output columns x whose input column x*sw + col0 (col0 = j*dw - pw for
// kernel column j) lies inside the input: [lo, hi), possibly empty (lo == hi).
inline void valid_columns(const ConvGeometry& g, int64_t col0, int64_t* lo, int64_t* hi) {
  *lo = col0 >= 0 ? 0 : std::min(g.ow, (-col0 + g.sw - 1) / g.sw);
  *hi = std::max(*lo, g.w - 1 - col0 < 0 ? int64_t(0) : std::min(g.ow, (g.w - 1 - col0) / g.sw + 1));
}

// Note [im2col runs]: row k = (ci, i, j) of a group's im2col matrix holds, at
// column q = (y, x) (an output pixel), the input x[ci, y*sh - ph + i*dh,
// x*sw - pw + j*dw], or 0 where that falls in the padding. Along a stretch of
// columns inside one output row the source is a strided run of one input row,
// bounded by zeros where the kernel column reaches into the left/right padding.
// for_each_run() visits rows [k0, k1) over columns [q0, q1) as such runs:
//   zero(row, col, len)                     columns col..col+len-1 are padding
//   run(row, col, src, len)                 column col+t reads input element src + t*sw
// with row relative to k0, col relative to q0, src an offset from the group's
// first input channel. No per-element tests: bounds are worked out per run.
//
// Note [merged rows]: with unit strides and ow == w (stride 1, "same"-style
// padding), a run of consecutive output rows reads consecutive input
// elements, wrapping from the end of one input row to the start of the next.
// For a visitor that copies (Visitor::kMergeRows), such stretches become one
// run, and the columns that wrapped (those that should read padding) are
// zeroed after it: one long copy and a few single-element fixes instead of a
// run per output row. The run is trimmed so it never reads outside the plane.
template <class Visitor>
void for_each_run(const ConvGeometry& g, int64_t k0, int64_t k1, int64_t q0, int64_t q1,
                  Visitor&& visit) {
  const int64_t taps = g.taps();
  const bool merge = std::decay_t<Visitor>::kMergeRows && g.sh == 1 && g.sw == 1 && g.ow == g.w;
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t ci = k / taps, i = k % taps / g.kw, j = k % g.kw;
    const int64_t row0 = i * g.dh - g.ph, col0 = j * g.dw - g.pw;
    int64_t x_lo, x_hi;
    valid_columns(g, col0, &x_lo, &x_hi);
    const int64_t channel = ci * g.plane();
    if (merge) {
      // Columns of output rows whose input row is inside the plane: [a, b).
      const int64_t y_lo = std::min(g.oh, std::max<int64_t>(0, -row0));
      const int64_t y_hi = std::max(y_lo, std::min(g.oh, g.h - row0));
      const int64_t a = std::clamp(y_lo * g.ow, q0, q1), b = std::clamp(y_hi * g.ow, a, q1);
      if (a > q0) visit.zero(k - k0, 0, a - q0);
      if (b < q1) visit.zero(k - k0, b - q0, q1 - b);
      if (a == b) continue;
      // Trim to the first and last columns that read inside their row.
      const int64_t first = a + std::max<int64_t>(0, x_lo - a % g.ow);
      const int64_t last = b - std::max<int64_t>(0, (b - 1) % g.ow - (x_hi - 1));
      if (last > first) visit.run(k - k0, first - q0, channel + first + row0 * g.w + col0, last - first);
      for (int64_t y = a / g.ow; y * g.ow < b; ++y) {  // the columns that should read padding
        const int64_t row_start = y * g.ow;
        const int64_t lo_end = std::clamp(row_start + x_lo, a, b), hi_start = std::clamp(row_start + x_hi, a, b);
        const int64_t row_begin = std::max(row_start, a), row_end = std::min(row_start + g.ow, b);
        if (lo_end > row_begin) visit.zero(k - k0, row_begin - q0, lo_end - row_begin);
        if (row_end > hi_start) visit.zero(k - k0, hi_start - q0, row_end - hi_start);
      }
      continue;
    }
    for (int64_t q = q0; q < q1;) {
      const int64_t y = q / g.ow, x = q - y * g.ow;
      const int64_t end = std::min(q1, (y + 1) * g.ow), x_end = x + (end - q);
      const int64_t col = q - q0, row_in = y * g.sh + row0;
      if (row_in < 0 || row_in >= g.h) {
        visit.zero(k - k0, col, end - q);
      } else {
        const int64_t a = std::clamp(x_lo, x, x_end), b = std::clamp(x_hi, a, x_end);
        if (a > x) visit.zero(k - k0, col, a - x);
        if (b > a) visit.run(k - k0, col + (a - x), channel + row_in * g.w + a * g.sw + col0, b - a);
        if (x_end > b) visit.zero(k - k0, col + (b - x), x_end - b);
      }
      q = end;
    }
  }
}

}  // namespace tfg
