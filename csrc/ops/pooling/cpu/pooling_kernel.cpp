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

// The taps t in [t0, t1) of a window start + t * d (t < k) that fall inside [0, n).
struct Taps {
  int64_t t0, t1;
  bool empty() const { return t1 <= t0; }
};
inline Taps taps(int64_t start, int64_t k, int64_t d, int64_t n) {
  if (d == 1) {
    const int64_t t0 = std::max<int64_t>(-start, 0);
    return {t0, std::max(t0, std::min(k, n - start))};
  }
  const int64_t t0 = start < 0 ? ceil_div(-start, d) : 0;
  const int64_t t1 = std::min(k, ceil_div(n - start, d));
  return {t0, std::max(t0, t1)};
}

constexpr int kStrideAny = 0;  // S template argument: a stride other than 1 or 2

// Calls f(v, c) for each kernel column c, v holding that column's tap for W
// consecutive outputs: lane j reads p[j * sw + c * dw].
//
// Note [stride 2]: for stride 2, load_deinterleave2 splits 2W consecutive
// elements into the even and odd columns, so adjacent kernel columns (dilation
// 1) come in pairs from one split; an odd last column is the odd half of the
// split one element earlier. Only a lone column (kw = 1, or dilation > 1) reads
// one element past its tap (column_extra). Other strides gather lane by lane.
// KW > 0: the window is known at compile time to be KW columns wide, dilation 1.
template <class T, int S, int KW, class F>
void for_columns(const T* p, int64_t kw_, int64_t dw_, int64_t sw, F&& f) {
  using V = Vec<T>;
  const int64_t kw = KW > 0 ? KW : kw_, dw = KW > 0 ? 1 : dw_;
  if constexpr (S == 1) {
    for (int64_t c = 0; c < kw; ++c) f(V::loadu(p + c * dw), c);
  } else if constexpr (S == 2) {
    V even, odd;
    if (dw == 1 && kw > 1) {
      int64_t c = 0;
      for (; c + 1 < kw; c += 2) {
        V::load_deinterleave2(p + c, even, odd);
        f(even, c);
        f(odd, c + 1);
      }
      if (c < kw) {
        V::load_deinterleave2(p + c - 1, even, odd);
        f(odd, c);
      }
    } else {
      for (int64_t c = 0; c < kw; ++c) {
        V::load_deinterleave2(p + c * dw, even, odd);
        f(even, c);
      }
    }
  } else {
    T buf[V::W];
    for (int64_t c = 0; c < kw; ++c) {
      for (int j = 0; j < V::W; ++j) buf[j] = p[j * sw + c * dw];
      f(V::loadu(buf), c);
    }
  }
}

template <int S>
int64_t column_extra(const PoolGeometry& g) {
  return S == 2 && !(g.dw == 1 && g.kw > 1) ? 1 : 0;
}

// Note [padded rows]: the vector path computes W outputs of a row at a time
// with no bounds checks. When every window of the row lies inside the input
// row (no left padding, none reaching past the right end, at least W outputs)
// it reads the input rows in place, the last group of W overlapping the one
// before it. Otherwise each input row of the window is first copied into a
// buffer padded on both sides with a neutral value (-inf for max, 0 for sums)
// and long enough for whole vectors, and every group reads the buffer: no
// scalar border path, and no per-element checks. Rows are clipped per output
// row (Taps), so the buffer only pads columns. Buffered rows are kept in a ring
// of `span` slots (the rows one window covers), so rows that consecutive
// output rows share are copied once.
constexpr int64_t kMaxRowBuffer = int64_t(1) << 22;  // elements

// Rows are short: whole vectors, the last one overlapping, beat a memcpy call.
template <class T>
void copy_row(T* dst, const T* src, int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::W;
  if (n < W) {
    V::loadu_partial(src, static_cast<int>(n)).storeu_partial(dst, static_cast<int>(n));
    return;
  }
  for (int64_t j = 0; j < n - W; j += W) V::loadu(src + j).storeu(dst + j);
  V::loadu(src + n - W).storeu(dst + n - W);
}

template <class T>
struct RowSource {
  bool vector = true;  // false: an extreme geometry (say stride >> width) takes the scalar path
  bool direct = false;
  int64_t len = 0;    // a padded row: input column -pw at 0
  int64_t slots = 0;  // ring slots, a power of two (row ih in slot ih % slots); 0: slot = tap - first tap
  std::vector<T> buf;
  std::vector<const T*> ptr, held;  // held[slot]: the input row whose copy the slot holds

  RowSource(const PoolGeometry& g, int64_t extra, T pad) {
    constexpr int64_t W = Vec<T>::W;
    const int64_t taps_max = std::min(g.kh, g.ih);
    ptr.resize(taps_max);
    const int64_t last = (g.kw - 1) * g.dw + extra;  // last column read, from ow * sw - pw
    direct = g.pw == 0 && g.ow >= W && (g.ow - 1) * g.sw + last < g.iw;
    if (direct) return;
    const int64_t groups_end = (g.ow + W - 1) / W * W;
    len = std::max(g.pw + g.iw, (groups_end - 1) * g.sw + last + 1);
    if (len > 4 * (g.iw + 2 * g.pw) + 64 * W || len * taps_max > kMaxRowBuffer) {
      vector = false;
      return;
    }
    const int64_t span = std::min((g.kh - 1) * g.dh + 1, g.ih);
    int64_t ring = 1;
    while (ring < span) ring *= 2;
    slots = ring * len <= kMaxRowBuffer ? ring : 0;
    buf.assign(len * std::max(slots, taps_max), pad);
    held.assign(slots, nullptr);
  }
  // Pointers to input column 0 of the rows hstart + r * dh, r in taps t.
  inline const T* const* rows(const PoolGeometry& g, const T* x, int64_t hstart, Taps t) {
    for (int64_t r = t.t0; r < t.t1; ++r) {
      const int64_t ih = hstart + r * g.dh;
      const T* src = x + ih * g.iw;
      if (direct) {
        ptr[r - t.t0] = src;
        continue;
      }
      const int64_t slot = slots ? ih & (slots - 1) : r - t.t0;
      T* b = buf.data() + slot * len + g.pw;
      if (!slots || held[slot] != src) {
        copy_row(b, src, g.iw);
        if (slots) held[slot] = src;
      }
      ptr[r - t.t0] = b;
    }
    return ptr.data();
  }
  // Calls f(ow0, n) for the groups of W outputs (n of them stored) covering [0, ow).
  template <class F>
  void groups(int64_t ow, F&& f) const {
    constexpr int64_t W = Vec<T>::W;
    int64_t o = 0;
    for (; o + W <= ow; o += W) f(o, static_cast<int>(W));
    if (o < ow) {
      if (direct) f(ow - W, static_cast<int>(W));  // overlaps; recomputing outputs is harmless
      else f(o, static_cast<int>(ow - o));
    }
  }
};

template <class T>
void store_lanes(Vec<T> v, T* p, int n) {
  if (n == Vec<T>::W) v.storeu(p);
  else v.storeu_partial(p, n);
}

// ---------------------------------------------------------------------------
// max_pool2d

// Note [max and NaN]: PyTorch takes an element when `v > best || isnan(v)`,
// scanning the window row by row from best = -inf and the first in-bounds
// position: the first of equal maxima wins, the last NaN wins, and an all -inf
// window points at its first in-bounds element. greater_or_nan + select is
// exactly that test, lane-wise (padding holds -inf, which never wins).
//
// Note [index lanes]: the vector path keeps each lane's winning position as a
// T, relative to the window's row hstart and column ow * sw - pw (r * dh * iw +
// c * dw), starting at the first in-bounds tap; the flat index is formed in T
// and converted to int64 only when storing (store_int64). All these values are
// integers below kExactBound<T> (checked per geometry, else the scalar path), so T holds them exactly.
template <class T> constexpr int64_t kExactBound = int64_t(1) << (sizeof(T) == 4 ? 24 : 51);
constexpr int64_t kMaxVectorTaps = int64_t(1) << 16;

// The flat index of the first in-bounds element of a window, -1 if none.
int64_t first_in_bounds(const PoolGeometry& g, int64_t hstart, Taps rows, int64_t ow) {
  const int64_t wstart = ow * g.sw - g.pw;
  const Taps cols = taps(wstart, g.kw, g.dw, g.iw);
  if (rows.empty() || cols.empty()) return -1;
  return (hstart + rows.t0 * g.dh) * g.iw + wstart + cols.t0 * g.dw;
}

template <class T, bool VALUES, bool INDICES>
void max_one(const PoolGeometry& g, const T* x, int64_t hstart, Taps rows, int64_t ow, T* out_row,
             int64_t* ind_row) {
  const int64_t wstart = ow * g.sw - g.pw;
  const Taps cols = taps(wstart, g.kw, g.dw, g.iw);
  T best = -std::numeric_limits<T>::infinity();
  int64_t arg = first_in_bounds(g, hstart, rows, ow);
  for (int64_t r = rows.t0; r < rows.t1 && !cols.empty(); ++r) {
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
  if constexpr (VALUES) out_row[ow] = best;
  if constexpr (INDICES) ind_row[ow] = arg;
}

template <class T, bool VALUES, bool INDICES>
class MaxPool {
 public:
  explicit MaxPool(const PoolGeometry& g)
      : g_(g),
        src_(g, g.sw == 2 ? column_extra<2>(g) : 0, -std::numeric_limits<T>::infinity()) {
    if (INDICES && src_.vector) index_tables();
  }

  void plane(const T* x, T* out, int64_t* ind) {
    if (g_.sw == 1) plane_s<1>(x, out, ind);
    else if (g_.sw == 2) plane_s<2>(x, out, ind);
    else plane_s<kStrideAny>(x, out, ind);
  }

 private:
  void index_tables() {
    constexpr int64_t W = Vec<T>::W;
    const PoolGeometry& g = g_;
    const int64_t groups_end = (g.ow + W - 1) / W * W;
    if (g.kh > kMaxVectorTaps / g.kw ||
        (g.ih + 2 * g.ph + 1) * g.iw + g.kw * g.dw + groups_end * g.sw + g.pw >= kExactBound<T>) {
      src_.vector = false;
      return;
    }
    rel_.resize(g.kh * g.kw);
    for (int64_t r = 0; r < g.kh; ++r)
      for (int64_t c = 0; c < g.kw; ++c) rel_[r * g.kw + c] = T(r * g.dh * g.iw + c * g.dw);
    first_.assign(groups_end, T(0));
    colpos_.assign(groups_end, T(0));
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      const Taps cols = taps(ow * g.sw - g.pw, g.kw, g.dw, g.iw);
      if (cols.empty()) no_cols_.push_back(ow);
      first_[ow] = T(cols.t0 * g.dw);
      colpos_[ow] = T(ow * g.sw - g.pw);
    }
  }

  template <int S>
  void plane_s(const T* x, T* out, int64_t* ind) {
    if (g_.dw == 1 && g_.kw == 2) plane_sk<S, 2>(x, out, ind);
    else if (g_.dw == 1 && g_.kw == 3) plane_sk<S, 3>(x, out, ind);
    else plane_sk<S, 0>(x, out, ind);
  }

  template <int S, int KW>
  void plane_sk(const T* x, T* out, int64_t* ind) {
    const PoolGeometry& g = g_;
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      const int64_t hstart = oh * g.sh - g.ph;
      const Taps t = taps(hstart, g.kh, g.dh, g.ih);
      T* out_row = VALUES ? out + oh * g.ow : nullptr;
      int64_t* ind_row = INDICES ? ind + oh * g.ow : nullptr;
      if (t.empty() || !src_.vector) {
        for (int64_t ow = 0; ow < g.ow; ++ow)
          max_one<T, VALUES, INDICES>(g, x, hstart, t, ow, out_row, ind_row);
        continue;
      }
      const T* const* rows = src_.rows(g, x, hstart, t);
      src_.groups(g.ow, [&](int64_t ow0, int n) {
        group<S, KW>(rows, hstart, t, ow0, n, out_row, ind_row);
      });
      if constexpr (INDICES)
        for (int64_t ow : no_cols_) ind_row[ow] = -1;
    }
  }

  // Outputs [ow0, ow0 + n) of a row, n <= W.
  template <int S, int KW>
  void group(const T* const* rows, int64_t hstart, Taps t, int64_t ow0, int n, T* out_row,
             int64_t* ind_row) const {
    using V = Vec<T>;
    const PoolGeometry& g = g_;
    V best = V::broadcast(-std::numeric_limits<T>::infinity());
    V arg = V::zero();
    if constexpr (INDICES) arg = V::broadcast(T(t.t0 * g.dh * g.iw)) + V::loadu(first_.data() + ow0);
    for (int64_t r = t.t0; r < t.t1; ++r) {
      const T* rel = INDICES ? rel_.data() + r * g.kw : nullptr;
      for_columns<T, S, KW>(rows[r - t.t0] + ow0 * g.sw - g.pw, g.kw, g.dw, g.sw, [&](V v, int64_t c) {
        const auto m = greater_or_nan(v, best);
        best = select(m, v, best);
        if constexpr (INDICES) arg = select(m, V::broadcast(rel[c]), arg);
      });
    }
    if constexpr (VALUES) store_lanes(best, out_row + ow0, n);
    if constexpr (INDICES)
      (arg + V::broadcast(T(hstart * g.iw)) + V::loadu(colpos_.data() + ow0)).store_int64(ind_row + ow0, n);
  }

  const PoolGeometry& g_;
  RowSource<T> src_;
  // Note [index lanes] tables: rel_[r * kw + c] = r * dh * iw + c * dw; per output column
  // (to a multiple of W) the offset of its first in-bounds tap column and ow * sw - pw.
  std::vector<T> rel_, first_, colpos_;
  std::vector<int64_t> no_cols_;  // output columns whose windows hold no input column
};

template <class T>
void max_forward(const PoolGeometry& g, int64_t planes, const T* x, T* out, int64_t* ind) {
  const int64_t in = g.ih * g.iw, on = g.oh * g.ow;
  if (out && ind) {
    MaxPool<T, true, true> pool(g);
    for (int64_t p = 0; p < planes; ++p) pool.plane(x + p * in, out + p * on, ind + p * on);
  } else if (out) {
    MaxPool<T, true, false> pool(g);
    for (int64_t p = 0; p < planes; ++p) pool.plane(x + p * in, out + p * on, nullptr);
  } else if (ind) {
    MaxPool<T, false, true> pool(g);
    for (int64_t p = 0; p < planes; ++p) pool.plane(x + p * in, nullptr, ind + p * on);
  }
}

template <class T>
bool max_backward(const PoolGeometry& g, int64_t planes, const T* grad_out, const T* x,
                  const int64_t* indices, T* grad_x) {
  const int64_t in = g.ih * g.iw, on = g.oh * g.ow;
  std::vector<int64_t> scratch;
  std::optional<MaxPool<T, false, true>> argmax;
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
      argmax->plane(x + p * in, nullptr, scratch.data());
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

// dst[2j] += a[j], dst[2j + 1] += b[j] for j < n; a or b null adds zeros there.
template <class T>
void add_interleaved(T* dst, const T* a, const T* b, int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::W;
  for (int64_t j = 0; j < n; j += W) {
    const int m = static_cast<int>(std::min<int64_t>(W, n - j));
    const V va = !a ? V::zero() : m == W ? V::loadu(a + j) : V::loadu_partial(a + j, m);
    const V vb = !b ? V::zero() : m == W ? V::loadu(b + j) : V::loadu_partial(b + j, m);
    V lo, hi;
    interleave2(va, vb, lo, hi);
    T* d = dst + 2 * j;
    const int n_lo = std::min(2 * m, W), n_hi = 2 * m - n_lo;
    if (n_lo == W) (V::loadu(d) + lo).storeu(d);
    else (V::loadu_partial(d, n_lo) + lo).storeu_partial(d, n_lo);
    if (n_hi == W) (V::loadu(d + W) + hi).storeu(d + W);
    else if (n_hi > 0) (V::loadu_partial(d + W, n_hi) + hi).storeu_partial(d + W, n_hi);
  }
}

// Note [fresh rows]: the backwards add one contribution row into several
// input rows, output row after output row, and the input rows they reach only
// move down. So a row reached for the first time is stored rather than added
// to a zeroed plane, rows passed over are zeroed, and only rows that windows
// share are read back: non-overlapping windows write each element once.
template <class T>
class RowWriter {
 public:
  RowWriter(T* plane, int64_t width) : plane_(plane), width_(width) {}
  void add(int64_t h, const T* row) {
    T* dst = plane_ + h * width_;
    if (h < done_) {
      add_row(dst, row, width_);
      return;
    }
    if (h > done_) std::memset(plane_ + done_ * width_, 0, sizeof(T) * (h - done_) * width_);
    copy_row(dst, row, width_);
    done_ = h + 1;
  }
  void finish(int64_t height) {
    if (height > done_) std::memset(plane_ + done_ * width_, 0, sizeof(T) * (height - done_) * width_);
  }

 private:
  T* plane_;
  int64_t width_, done_ = 0;
};



// Note [avg divisor]: PyTorch clips the window to the padded input
// [-ph, ih + ph) x [-pw, iw + pw) for count_include_pad (so with ceil_mode a
// window hanging past the padding counts only up to it), to the input itself
// otherwise; divisor_override replaces both. Either count is a product of a
// row factor and a column factor (per output row, per output column); their
// product in T rounds the exact integer once, as PyTorch's conversion does.
struct AvgRow {
  int64_t hstart;
  Taps t;     // input rows hstart + t of the window
  int64_t f;  // row factor of the divisor
};
AvgRow avg_row(const PoolGeometry& g, int64_t oh) {
  const int64_t hstart = oh * g.sh - g.ph;
  const int64_t hend = std::min(hstart + g.kh, g.ih + g.ph);
  const Taps t = taps(hstart, g.kh, 1, g.ih);
  return {hstart, t, g.count_include_pad ? hend - hstart : t.t1 - t.t0};
}

template <class T>
class AvgPool {
 public:
  explicit AvgPool(const PoolGeometry& g)
      : g_(g), src_(g, g.sw == 2 ? column_extra<2>(g) : 0, T(0)) {
    constexpr int64_t W = Vec<T>::W;
    colf_.assign((g.ow + W - 1) / W * W, T(1));
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      const int64_t wstart = ow * g.sw - g.pw;
      const int64_t wend = std::min(wstart + g.kw, g.iw + g.pw);
      const Taps t = taps(wstart, g.kw, 1, g.iw);
      colf_[ow] = T(g.count_include_pad ? wend - wstart : t.t1 - t.t0);
      cols_.push_back(t);
    }
  }

  T divisor(const AvgRow& r, int64_t ow) const {
    return g_.divisor_override ? T(g_.divisor_override) : T(r.f) * colf_[ow];
  }
  Vec<T> divisors(const AvgRow& r, int64_t ow0) const {
    using V = Vec<T>;
    return g_.divisor_override ? V::broadcast(T(g_.divisor_override))
                               : V::broadcast(T(r.f)) * V::loadu(colf_.data() + ow0);
  }

  void forward(const T* x, T* out) {
    if (g_.sw == 1) forward_s<1>(x, out);
    else if (g_.sw == 2) forward_s<2>(x, out);
    else forward_s<kStrideAny>(x, out);
  }
  // Note [avg backward]: per output row the scaled gradients go / divisor
  // are spread over one padded row of contributions (for each kernel column a
  // pass adding them at stride sw: contiguous for stride 1, interleaved pairs
  // of columns for stride 2), which is then added into each input row of the window.
  void backward(const T* go, T* gx) {
    if (g_.sw == 1) backward_s<1>(go, gx);
    else if (g_.sw == 2) backward_s<2>(go, gx);
    else backward_s<kStrideAny>(go, gx);
  }

 private:
  T one(const T* x, const AvgRow& r, int64_t ow) const {
    const Taps c = cols_[ow];
    const int64_t wstart = ow * g_.sw - g_.pw;
    if (r.t.empty() || c.empty()) return T(0);
    T sum = 0;
    for (int64_t h = r.t.t0; h < r.t.t1; ++h)
      for (int64_t w = c.t0; w < c.t1; ++w) sum += x[(r.hstart + h) * g_.iw + wstart + w];
    return sum / divisor(r, ow);
  }

  template <int S>
  void forward_s(const T* x, T* out) {
    if (g_.kw == 2) forward_sk<S, 2>(x, out);
    else if (g_.kw == 3) forward_sk<S, 3>(x, out);
    else forward_sk<S, 0>(x, out);
  }

  template <int S, int KW>
  void forward_sk(const T* x, T* out) {
    using V = Vec<T>;
    const PoolGeometry& g = g_;
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      const AvgRow r = avg_row(g, oh);
      T* out_row = out + oh * g.ow;
      if (r.t.empty() || !src_.vector) {
        for (int64_t ow = 0; ow < g.ow; ++ow) out_row[ow] = one(x, r, ow);
        continue;
      }
      const T* const* rows = src_.rows(g, x, r.hstart, r.t);
      src_.groups(g.ow, [&](int64_t ow0, int n) {
        V sum = V::zero();
        for (int64_t h = r.t.t0; h < r.t.t1; ++h)
          for_columns<T, S, KW>(rows[h - r.t.t0] + ow0 * g.sw - g.pw, g.kw, 1, g.sw,
                            [&](V v, int64_t) { sum = sum + v; });
        store_lanes(sum / divisors(r, ow0), out_row + ow0, n);
      });
    }
  }

  template <int S>
  void backward_s(const T* go, T* gx) {
    using V = Vec<T>;
    constexpr int W = V::W;
    const PoolGeometry& g = g_;
    const int64_t len = std::max(src_.len, g.pw + g.iw);
    if (acc_.size() < static_cast<size_t>(len)) acc_.resize(len);
    if (scaled_.size() < colf_.size()) scaled_.resize(colf_.size());
    RowWriter<T> out(gx, g.iw);
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      const AvgRow r = avg_row(g, oh);
      if (r.t.empty()) continue;
      const T* go_row = go + oh * g.ow;
      T* contrib = acc_.data() + g.pw;  // input column 0
      if (!src_.vector) {
        std::memset(contrib, 0, sizeof(T) * g.iw);
        for (int64_t ow = 0; ow < g.ow; ++ow) {
          const T s = go_row[ow] / divisor(r, ow);
          const Taps c = cols_[ow];
          for (int64_t w = c.t0; w < c.t1; ++w) contrib[ow * g.sw - g.pw + w] += s;
        }
      } else {
        std::memset(acc_.data(), 0, sizeof(T) * len);
        int64_t ow = 0;
        for (; ow + W <= g.ow; ow += W) (V::loadu(go_row + ow) / divisors(r, ow)).storeu(scaled_.data() + ow);
        if (ow < g.ow) {
          const int rest = static_cast<int>(g.ow - ow);
          (V::loadu_partial(go_row + ow, rest, T(1)) / divisors(r, ow)).storeu_partial(scaled_.data() + ow, rest);
        }
        T* base = contrib - g.pw;
        const T* s = scaled_.data();
        if constexpr (S == 1) {
          for (int64_t c = 0; c < g.kw; ++c) add_row(base + c, s, g.ow);
        } else if constexpr (S == 2) {
          int64_t c = 0;
          for (; c + 1 < g.kw; c += 2) add_interleaved(base + c, s, s, g.ow);
          if (c < g.kw) {
            if (c > 0) add_interleaved(base + c - 1, static_cast<const T*>(nullptr), s, g.ow);
            else add_interleaved(base + c, s, static_cast<const T*>(nullptr), g.ow);
          }
        } else {
          for (int64_t o = 0; o < g.ow; ++o)
            for (int64_t c = 0; c < g.kw; ++c) base[o * g.sw + c] += s[o];
        }
      }
      for (int64_t h = r.t.t0; h < r.t.t1; ++h) out.add(r.hstart + h, contrib);
    }
    out.finish(g.ih);
  }

  const PoolGeometry& g_;
  RowSource<T> src_;
  std::vector<T> colf_;     // column factor of the divisor per output column (1 past the end)
  std::vector<Taps> cols_;  // input columns wstart + t of each output's window
  std::vector<T> acc_, scaled_;
};

template <class T>
void avg_forward(const PoolGeometry& g, int64_t planes, const T* x, T* out) {
  AvgPool<T> pool(g);
  for (int64_t p = 0; p < planes; ++p) pool.forward(x + p * g.ih * g.iw, out + p * g.oh * g.ow);
}

template <class T>
void avg_backward(const PoolGeometry& g, int64_t planes, const T* go, T* gx) {
  AvgPool<T> pool(g);
  for (int64_t p = 0; p < planes; ++p) pool.backward(go + p * g.oh * g.ow, gx + p * g.ih * g.iw);
}

// ---------------------------------------------------------------------------
// adaptive_avg_pool2d

// PyTorch's bins: output i covers [floor(i * n / out), ceil((i + 1) * n / out)).
int64_t bin_start(int64_t i, int64_t n, int64_t out) { return i * n / out; }
int64_t bin_end(int64_t i, int64_t n, int64_t out) { return ((i + 1) * n + out - 1) / out; }

// Sum of n contiguous elements, four vectors in flight.
template <class T>
T sum_contiguous(const T* p, int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::W;
  V a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
  int64_t j = 0;
  for (; j + 4 * W <= n; j += 4 * W) {
    a0 = a0 + V::loadu(p + j);
    a1 = a1 + V::loadu(p + j + W);
    a2 = a2 + V::loadu(p + j + 2 * W);
    a3 = a3 + V::loadu(p + j + 3 * W);
  }
  for (; j + W <= n; j += W) a0 = a0 + V::loadu(p + j);
  if (j < n) a1 = a1 + V::loadu_partial(p + j, static_cast<int>(n - j));
  return ((a0 + a1) + (a2 + a3)).reduce_add();
}

// Note [adaptive bands]: an output row's bin is a band of whole input rows;
// their column sums (vector adds along the row) are formed once and each
// output of the row sums its bin's columns of them. With one output column
// (global pooling) the band is contiguous and summed as one run.
template <class T>
void adaptive_avg_forward(const PoolGeometry& g, int64_t planes, const T* x, T* out) {
  std::vector<T> colsum(g.iw);
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * g.ih * g.iw;
    T* op = out + p * g.oh * g.ow;
    for (int64_t i = 0; i < g.oh; ++i) {
      const int64_t h0 = bin_start(i, g.ih, g.oh), h1 = bin_end(i, g.ih, g.oh);
      if (g.ow == 1) {
        op[i] = sum_contiguous(xp + h0 * g.iw, (h1 - h0) * g.iw) / T((h1 - h0) * g.iw);
        continue;
      }
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
    RowWriter<T> out(gx + p * g.ih * g.iw, g.iw);
    for (int64_t i = 0; i < g.oh; ++i) {
      const int64_t h0 = bin_start(i, g.ih, g.oh), h1 = bin_end(i, g.ih, g.oh);
      std::fill(band.begin(), band.end(), T(0));
      for (int64_t j = 0; j < g.ow; ++j) {
        const int64_t w0 = bin_start(j, g.iw, g.ow), w1 = bin_end(j, g.iw, g.ow);
        const T v = gp[i * g.ow + j] / T((h1 - h0) * (w1 - w0));
        for (int64_t w = w0; w < w1; ++w) band[w] += v;
      }
      for (int64_t h = h0; h < h1; ++h) out.add(h, band.data());
    }
    out.finish(g.ih);
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
