// Per-ISA pooling kernels (max, avg, adaptive avg; forward and backward) on
// runs of contiguous planes, written on Vec<T> and compiled for every ISA
// level. See ../README.md for the algorithm choices.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "ops/pooling/pooling.h"
#include "simd/vec.h"

namespace tfg::TFG_ISA_NS {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The taps t in [t0, t1) of a window start + t * d (t < k) that fall inside [0, n).
struct Taps {
  int64_t t0, t1;
  bool empty() const { return t1 <= t0; }
};
Taps taps(int64_t start, int64_t k, int64_t d, int64_t n) {
  const int64_t t0 = start < 0 ? ceil_div(-start, d) : 0;
  const int64_t t1 = std::min(k, ceil_div(n - start, d));
  return {t0, std::max(t0, t1)};
}

// Note [vector columns]: the output columns [lo, hi) of a row whose windows lie
// wholly inside the input row, computed W at a time with no bounds checks; the
// columns on either side (the padded borders) take the scalar path, which clips
// each window. Stride-2 loads read pairs (load_deinterleave2), one element past
// the window's last column, hence `extra`. Each row's taps are clipped once per
// output row, so rows never need per-element checks either.
struct Columns {
  int64_t lo, hi;
};
Columns vector_columns(const PoolGeometry& g, int64_t extra) {
  const int64_t lo = std::min(ceil_div(g.pw, g.sw), g.ow);
  const int64_t last = (g.kw - 1) * g.dw - g.pw + extra;  // offset of the last read from ow * sw
  const int64_t hi = floor_div(g.iw - 1 - last, g.sw) + 1;
  return {lo, std::clamp(hi, lo, g.ow)};
}

// Column loads for W consecutive outputs: lane j reads p[j * stride]. S is the
// stride when it is 1 or 2, 0 for any other (gathered through a small buffer).
template <class T, int S>
Vec<T> load_columns(const T* p, int64_t stride) {
  using V = Vec<T>;
  if constexpr (S == 1) {
    return V::loadu(p);
  } else if constexpr (S == 2) {
    V even, odd;
    V::load_deinterleave2(p, even, odd);
    return even;
  } else {
    T buf[V::W];
    for (int j = 0; j < V::W; ++j) buf[j] = p[j * stride];
    return V::loadu(buf);
  }
}

constexpr int kStrideAny = 0;
template <int S> int64_t stride_extra() { return S == 2 ? 1 : 0; }

// ---------------------------------------------------------------------------
// max_pool2d

// Note [max and NaN]: PyTorch takes an element when `v > best || isnan(v)`,
// scanning the window row by row from best = -inf and the first in-bounds
// position: the first of equal maxima wins, the last NaN wins, and an all -inf
// window points at its first element. greater_or_nan + select is exactly that
// test, lane-wise. The vector path tracks the winning kernel position
// r * kw + c per lane as a T (exact: kh * kw <= kMaxVectorTaps) and turns it
// into a flat input index only when storing.
constexpr int64_t kMaxVectorTaps = int64_t(1) << 16;

template <class T, bool VALUES, bool INDICES>
void max_one(const PoolGeometry& g, const T* x, int64_t hstart, Taps rows, int64_t ow, T* out_row,
             int64_t* ind_row) {
  const int64_t wstart = ow * g.sw - g.pw;
  const Taps cols = taps(wstart, g.kw, g.dw, g.iw);
  T best = -std::numeric_limits<T>::infinity();
  int64_t arg = -1;
  if (!rows.empty() && !cols.empty()) {
    arg = (hstart + rows.t0 * g.dh) * g.iw + wstart + cols.t0 * g.dw;
    for (int64_t r = rows.t0; r < rows.t1; ++r) {
      const int64_t row = (hstart + r * g.dh) * g.iw;
      for (int64_t c = cols.t0; c < cols.t1; ++c) {
        const int64_t pos = row + wstart + c * g.dw;
        const T v = x[pos];
        if (v > best || std::isnan(v)) {
          best = v;
          arg = pos;
        }
      }
    }
  }
  if constexpr (VALUES) out_row[ow] = best;
  if constexpr (INDICES) ind_row[ow] = arg;
}

// W outputs from column ow0, all inside [cols.lo, cols.hi); rows non-empty.
template <class T, int S, bool VALUES, bool INDICES>
void max_vec(const PoolGeometry& g, const T* x, int64_t hstart, Taps rows, int64_t ow0,
             T* out_row, int64_t* ind_row, const int64_t* rel) {
  using V = Vec<T>;
  constexpr int W = V::W;
  V best = V::broadcast(-std::numeric_limits<T>::infinity());
  V arg = V::broadcast(T(rows.t0 * g.kw));
  auto take = [&](V v, int64_t k) {
    const auto m = greater_or_nan(v, best);
    best = select(m, v, best);
    if constexpr (INDICES) arg = select(m, V::broadcast(T(k)), arg);
  };
  for (int64_t r = rows.t0; r < rows.t1; ++r) {
    const T* p = x + (hstart + r * g.dh) * g.iw + ow0 * g.sw - g.pw;
    const int64_t k = r * g.kw;
    int64_t c = 0;
    if constexpr (S == 2) {
      if (g.dw == 1) {
        for (; c + 1 < g.kw; c += 2) {
          V even, odd;
          V::load_deinterleave2(p + c, even, odd);
          take(even, k + c);
          take(odd, k + c + 1);
        }
      }
    }
    for (; c < g.kw; ++c) take(load_columns<T, S>(p + c * g.dw, g.sw), k + c);
  }
  if constexpr (VALUES) best.storeu(out_row + ow0);
  if constexpr (INDICES) {
    T lanes[W];
    arg.storeu(lanes);
    const int64_t base = hstart * g.iw + ow0 * g.sw - g.pw;
    for (int j = 0; j < W; ++j)
      ind_row[ow0 + j] = base + j * g.sw + rel[static_cast<int64_t>(lanes[j])];
  }
}

template <class T, int S, bool VALUES, bool INDICES>
void max_plane(const PoolGeometry& g, Columns vc, const int64_t* rel, const T* x, T* out,
               int64_t* ind) {
  constexpr int W = Vec<T>::W;
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    const int64_t hstart = oh * g.sh - g.ph;
    const Taps rows = taps(hstart, g.kh, g.dh, g.ih);
    T* out_row = VALUES ? out + oh * g.ow : nullptr;
    int64_t* ind_row = INDICES ? ind + oh * g.ow : nullptr;
    auto scalar = [&](int64_t a, int64_t b) {
      for (int64_t ow = a; ow < b; ++ow)
        max_one<T, VALUES, INDICES>(g, x, hstart, rows, ow, out_row, ind_row);
    };
    if (rows.empty() || vc.hi - vc.lo < W) {
      scalar(0, g.ow);
      continue;
    }
    scalar(0, vc.lo);
    int64_t ow = vc.lo;
    for (; ow + W <= vc.hi; ow += W)
      max_vec<T, S, VALUES, INDICES>(g, x, hstart, rows, ow, out_row, ind_row, rel);
    if (ow < vc.hi)  // overlaps the previous vector; recomputing outputs is harmless
      max_vec<T, S, VALUES, INDICES>(g, x, hstart, rows, vc.hi - W, out_row, ind_row, rel);
    scalar(vc.hi, g.ow);
  }
}

template <class T, bool VALUES, bool INDICES>
struct MaxRunner {
  const PoolGeometry& g;
  std::vector<int64_t> rel;  // kernel position r * kw + c -> r * dh * iw + c * dw
  Columns vc;
  void (*plane)(const PoolGeometry&, Columns, const int64_t*, const T*, T*, int64_t*);

  template <int S>
  void pick() {
    vc = vector_columns(g, stride_extra<S>());
    plane = &max_plane<T, S, VALUES, INDICES>;
  }
  explicit MaxRunner(const PoolGeometry& geometry) : g(geometry) {
    if (g.sw == 1) pick<1>();
    else if (g.sw == 2) pick<2>();
    else pick<kStrideAny>();
    if (INDICES) {
      if (g.kh > kMaxVectorTaps / g.kw) {
        vc.hi = vc.lo;  // scalar only
      } else {
        rel.resize(g.kh * g.kw);
        for (int64_t r = 0; r < g.kh; ++r)
          for (int64_t c = 0; c < g.kw; ++c) rel[r * g.kw + c] = r * g.dh * g.iw + c * g.dw;
      }
    }
  }
  void operator()(const T* x, T* out, int64_t* ind) const { plane(g, vc, rel.data(), x, out, ind); }
};

template <class T>
void max_forward(const PoolGeometry& g, int64_t planes, const T* x, T* out, int64_t* ind) {
  const int64_t in = g.ih * g.iw, on = g.oh * g.ow;
  if (out && ind) {
    const MaxRunner<T, true, true> run(g);
    for (int64_t p = 0; p < planes; ++p) run(x + p * in, out + p * on, ind + p * on);
  } else if (out) {
    const MaxRunner<T, true, false> run(g);
    for (int64_t p = 0; p < planes; ++p) run(x + p * in, out + p * on, nullptr);
  } else if (ind) {
    const MaxRunner<T, false, true> run(g);
    for (int64_t p = 0; p < planes; ++p) run(x + p * in, nullptr, ind + p * on);
  }
}

template <class T>
bool max_backward(const PoolGeometry& g, int64_t planes, const T* grad_out, const T* x,
                  const int64_t* indices, T* grad_x) {
  const int64_t in = g.ih * g.iw, on = g.oh * g.ow;
  std::vector<int64_t> scratch;
  std::optional<MaxRunner<T, false, true>> argmax;
  if (!indices) {
    scratch.resize(on);
    argmax.emplace(g);
  }
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t* ind;
    if (indices) {
      ind = indices + p * on;
      for (int64_t o = 0; o < on; ++o)
        if (ind[o] < -1 || ind[o] >= in) return false;
    } else {
      (*argmax)(x + p * in, nullptr, scratch.data());
      ind = scratch.data();
    }
    T* gx = grad_x + p * in;
    const T* go = grad_out + p * on;
    std::memset(gx, 0, sizeof(T) * in);
    for (int64_t o = 0; o < on; ++o)
      if (ind[o] >= 0) gx[ind[o]] += go[o];
  }
  return true;
}

// ---------------------------------------------------------------------------
// avg_pool2d

// Note [avg divisor]: PyTorch clips the window to the padded input
// [-ph, ih + ph) x [-pw, iw + pw) for count_include_pad (so with ceil_mode a
// window hanging past the padding counts only up to it), to the input itself
// otherwise; divisor_override replaces both. Windows in the vector columns are
// whole along the width, so there the divisor depends on the row only.
struct AvgRow {
  int64_t h0, h1;  // input rows of the window
  int64_t pool_h;  // rows of the window inside the padded input
};
AvgRow avg_row(const PoolGeometry& g, int64_t oh) {
  const int64_t hstart = oh * g.sh - g.ph;
  const int64_t hend = std::min(hstart + g.kh, g.ih + g.ph);
  return {std::max<int64_t>(hstart, 0), std::min(hend, g.ih), hend - hstart};
}

template <class T>
T avg_divisor(const PoolGeometry& g, const AvgRow& r, int64_t w0, int64_t w1, int64_t pool_w) {
  if (g.divisor_override) return T(g.divisor_override);
  return T(g.count_include_pad ? r.pool_h * pool_w : (r.h1 - r.h0) * (w1 - w0));
}

// The columns of output ow: input columns [w0, w1), pool_w inside the padded input.
struct AvgCol {
  int64_t w0, w1, pool_w;
};
AvgCol avg_col(const PoolGeometry& g, int64_t ow) {
  const int64_t wstart = ow * g.sw - g.pw;
  const int64_t wend = std::min(wstart + g.kw, g.iw + g.pw);
  return {std::max<int64_t>(wstart, 0), std::min(wend, g.iw), wend - wstart};
}

template <class T, int S>
void avg_plane(const PoolGeometry& g, Columns vc, const T* x, T* out) {
  using V = Vec<T>;
  constexpr int W = V::W;
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    const AvgRow r = avg_row(g, oh);
    T* out_row = out + oh * g.ow;
    auto scalar = [&](int64_t a, int64_t b) {
      for (int64_t ow = a; ow < b; ++ow) {
        const AvgCol c = avg_col(g, ow);
        T sum = 0;
        for (int64_t h = r.h0; h < r.h1; ++h)
          for (int64_t w = c.w0; w < c.w1; ++w) sum += x[h * g.iw + w];
        const bool empty = r.h1 <= r.h0 || c.w1 <= c.w0;
        out_row[ow] = empty ? T(0) : sum / avg_divisor<T>(g, r, c.w0, c.w1, c.pool_w);
      }
    };
    if (r.h1 <= r.h0 || vc.hi - vc.lo < W) {
      scalar(0, g.ow);
      continue;
    }
    scalar(0, vc.lo);
    const V div = V::broadcast(avg_divisor<T>(g, r, 0, g.kw, g.kw));
    auto vec = [&](int64_t ow0) {
      V sum = V::zero();
      for (int64_t h = r.h0; h < r.h1; ++h) {
        const T* p = x + h * g.iw + ow0 * g.sw - g.pw;
        int64_t c = 0;
        if constexpr (S == 2) {
          for (; c + 1 < g.kw; c += 2) {
            V even, odd;
            V::load_deinterleave2(p + c, even, odd);
            sum = sum + even;
            sum = sum + odd;
          }
        }
        for (; c < g.kw; ++c) sum = sum + load_columns<T, S>(p + c, g.sw);
      }
      (sum / div).storeu(out_row + ow0);
    };
    int64_t ow = vc.lo;
    for (; ow + W <= vc.hi; ow += W) vec(ow);
    if (ow < vc.hi) vec(vc.hi - W);
    scalar(vc.hi, g.ow);
  }
}

template <class T, int S>
void avg_planes(const PoolGeometry& g, int64_t planes, const T* x, T* out) {
  const Columns vc = vector_columns(g, stride_extra<S>());
  for (int64_t p = 0; p < planes; ++p) avg_plane<T, S>(g, vc, x + p * g.ih * g.iw, out + p * g.oh * g.ow);
}

template <class T>
void avg_forward(const PoolGeometry& g, int64_t planes, const T* x, T* out) {
  if (g.sw == 1) avg_planes<T, 1>(g, planes, x, out);
  else if (g.sw == 2) avg_planes<T, 2>(g, planes, x, out);
  else avg_planes<T, kStrideAny>(g, planes, x, out);
}

// dst[j] += v[j] for j < n, W lanes at a time.
template <class T>
void add_row(T* __restrict dst, const T* __restrict v, int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::W;
  int64_t j = 0;
  for (; j + W <= n; j += W) (V::loadu(dst + j) + V::loadu(v + j)).storeu(dst + j);
  if (j < n) {
    const int rest = static_cast<int>(n - j);
    (V::loadu_partial(dst + j, rest) + V::loadu_partial(v + j, rest)).storeu_partial(dst + j, rest);
  }
}

// dst[2j] += a[j], dst[2j + 1] += b[j] for j < n (a, b, dst distinct).
template <class T>
void add_interleaved(T* dst, const T* a, const T* b, int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::W;
  for (int64_t j = 0; j < n; j += W) {
    const int m = static_cast<int>(std::min<int64_t>(W, n - j));
    V lo, hi;
    T* d = dst + 2 * j;
    if (m == W) {
      interleave2(V::loadu(a + j), b ? V::loadu(b + j) : V::zero(), lo, hi);
      (V::loadu(d) + lo).storeu(d);
      (V::loadu(d + W) + hi).storeu(d + W);
    } else {
      interleave2(V::loadu_partial(a + j, m), b ? V::loadu_partial(b + j, m) : V::zero(), lo, hi);
      const int n_lo = std::min(2 * m, W), n_hi = 2 * m - n_lo;
      if (n_lo == W) (V::loadu(d) + lo).storeu(d);
      else (V::loadu_partial(d, n_lo) + lo).storeu_partial(d, n_lo);
      if (n_hi > 0) (V::loadu_partial(d + W, n_hi) + hi).storeu_partial(d + W, n_hi);
    }
  }
}

// Note [avg backward]: per output row, the scaled gradients go[ow] / divisor
// are formed once (a row buffer), then added into each input row of the
// window: for every kernel column c, one pass adds the buffer's vector columns
// at stride sw (contiguous for stride 1; for stride 2 columns c and c + 1 are
// one interleaved pass). Border columns are added one window at a time.
template <class T, int S>
void avg_backward_plane(const PoolGeometry& g, Columns vc, const T* go, T* gx, T* scaled) {
  using V = Vec<T>;
  std::memset(gx, 0, sizeof(T) * g.ih * g.iw);
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    const AvgRow r = avg_row(g, oh);
    if (r.h1 <= r.h0) continue;
    const T* go_row = go + oh * g.ow;
    auto border_scale = [&](int64_t a, int64_t b) {
      for (int64_t ow = a; ow < b; ++ow) {
        const AvgCol c = avg_col(g, ow);
        scaled[ow] = go_row[ow] / avg_divisor<T>(g, r, c.w0, c.w1, c.pool_w);
      }
    };
    border_scale(0, vc.lo);
    border_scale(vc.hi, g.ow);
    {
      constexpr int W = V::W;
      const V div = V::broadcast(avg_divisor<T>(g, r, 0, g.kw, g.kw));
      int64_t ow = vc.lo;
      for (; ow + W <= vc.hi; ow += W) (V::loadu(go_row + ow) / div).storeu(scaled + ow);
      if (ow < vc.hi) {
        const int rest = static_cast<int>(vc.hi - ow);
        (V::loadu_partial(go_row + ow, rest, T(1)) / div).storeu_partial(scaled + ow, rest);
      }
    }
    for (int64_t h = r.h0; h < r.h1; ++h) {
      T* row = gx + h * g.iw;
      auto border_add = [&](int64_t a, int64_t b) {
        for (int64_t ow = a; ow < b; ++ow) {
          const AvgCol c = avg_col(g, ow);
          for (int64_t w = c.w0; w < c.w1; ++w) row[w] += scaled[ow];
        }
      };
      border_add(0, vc.lo);
      const int64_t n = vc.hi - vc.lo;
      const T* s = scaled + vc.lo;
      T* base = row + vc.lo * g.sw - g.pw;
      int64_t c = 0;
      if constexpr (S == 1) {
        for (; c < g.kw; ++c) add_row(base + c, s, n);
      } else if constexpr (S == 2) {
        for (; c < g.kw; c += 2) add_interleaved(base + c, s, c + 1 < g.kw ? s : nullptr, n);
      } else {
        for (int64_t ow = 0; ow < n; ++ow)
          for (c = 0; c < g.kw; ++c) base[ow * g.sw + c] += s[ow];
      }
      border_add(vc.hi, g.ow);
    }
  }
}

template <class T, int S>
void avg_backward_planes(const PoolGeometry& g, int64_t planes, const T* go, T* gx) {
  const Columns vc = vector_columns(g, stride_extra<S>());
  std::vector<T> scaled(g.ow);
  for (int64_t p = 0; p < planes; ++p)
    avg_backward_plane<T, S>(g, vc, go + p * g.oh * g.ow, gx + p * g.ih * g.iw, scaled.data());
}

template <class T>
void avg_backward(const PoolGeometry& g, int64_t planes, const T* go, T* gx) {
  if (g.sw == 1) avg_backward_planes<T, 1>(g, planes, go, gx);
  else if (g.sw == 2) avg_backward_planes<T, 2>(g, planes, go, gx);
  else avg_backward_planes<T, kStrideAny>(g, planes, go, gx);
}

// ---------------------------------------------------------------------------
// adaptive_avg_pool2d

// PyTorch's bins: output i covers [floor(i * n / out), ceil((i + 1) * n / out)).
int64_t bin_start(int64_t i, int64_t n, int64_t out) { return i * n / out; }
int64_t bin_end(int64_t i, int64_t n, int64_t out) { return ((i + 1) * n + out - 1) / out; }

// Note [adaptive bands]: an output row's bin is a band of whole input rows;
// their column sums (vector adds along the row) are formed once and each
// output of the row sums its bin's columns of them.
template <class T>
void adaptive_avg_forward(const PoolGeometry& g, int64_t planes, const T* x, T* out) {
  std::vector<T> colsum(g.iw);
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * g.ih * g.iw;
    T* op = out + p * g.oh * g.ow;
    for (int64_t i = 0; i < g.oh; ++i) {
      const int64_t h0 = bin_start(i, g.ih, g.oh), h1 = bin_end(i, g.ih, g.oh);
      std::memcpy(colsum.data(), xp + h0 * g.iw, sizeof(T) * g.iw);
      for (int64_t h = h0 + 1; h < h1; ++h) add_row(colsum.data(), xp + h * g.iw, g.iw);
      for (int64_t j = 0; j < g.ow; ++j) {
        const int64_t w0 = bin_start(j, g.iw, g.ow), w1 = bin_end(j, g.iw, g.ow);
        T sum = 0;
        for (int64_t w = w0; w < w1; ++w) sum += colsum[w];
        op[i * g.ow + j] = sum / T((h1 - h0) * (w1 - w0));
      }
    }
  }
}

template <class T>
void adaptive_avg_backward(const PoolGeometry& g, int64_t planes, const T* go, T* gx) {
  std::vector<T> band(g.iw);
  for (int64_t p = 0; p < planes; ++p) {
    const T* gp = go + p * g.oh * g.ow;
    T* xp = gx + p * g.ih * g.iw;
    std::memset(xp, 0, sizeof(T) * g.ih * g.iw);
    for (int64_t i = 0; i < g.oh; ++i) {
      const int64_t h0 = bin_start(i, g.ih, g.oh), h1 = bin_end(i, g.ih, g.oh);
      std::fill(band.begin(), band.end(), T(0));
      for (int64_t j = 0; j < g.ow; ++j) {
        const int64_t w0 = bin_start(j, g.iw, g.ow), w1 = bin_end(j, g.iw, g.ow);
        const T v = gp[i * g.ow + j] / T((h1 - h0) * (w1 - w0));
        for (int64_t w = w0; w < w1; ++w) band[w] += v;
      }
      for (int64_t h = h0; h < h1; ++h) add_row(xp + h * g.iw, band.data(), g.iw);
    }
  }
}

template <class T>
PoolKernels<T> make_kernels() {
  return PoolKernels<T>{&max_forward<T>,          &max_backward<T>,
                        &avg_forward<T>,          &avg_backward<T>,
                        &adaptive_avg_forward<T>, &adaptive_avg_backward<T>};
}

}  // namespace

extern const PoolKernels<float> pool_kernels_f32 = make_kernels<float>();
extern const PoolKernels<double> pool_kernels_f64 = make_kernels<double>();

}  // namespace tfg::TFG_ISA_NS
