// Per-ISA half of NMS and box_iou: the IoU of one vector of boxes against
// broadcast boxes, in torchvision's formula and operation order, compiled for
// every ISA level.
#include "ops/nms/nms.h"
#include "simd/vec.h"

namespace tfg::TFG_ISA_NS {
namespace {

// Note [IoU as torchvision]: torchvision's CPU nms computes, per pair,
//   xx1 = std::max(ix1, x1[j]), xx2 = std::min(ix2, x2[j]) (same for y),
//   w = std::max(0, xx2 - xx1), h likewise, inter = w * h,
//   ovr = inter / (iarea + areas[j] - inter), suppressed when ovr > threshold.
// Vec's max(a, b) / min(a, b) return b when the lanes compare equal or either
// is NaN, which is what std::max(b, a) / std::min(b, a) return, so max(x1[j], ix1)
// is bit for bit std::max(ix1, x1[j]) (NaN included: a NaN w or h becomes 0).
// inter feeds the division too, so no compiler may fuse it into an FMA with the
// subtraction and the rounding is torchvision's. `ovr > thr` must be false for a
// NaN ovr (0 / 0 for two empty boxes, NaN coordinates): max(ovr, 0) maps NaN
// to 0, and thr >= 0, so greater_or_nan(max(ovr, 0), thr) is exactly ovr > thr.
template <class T>
struct Box {
  Vec<T> x1, y1, x2, y2, area;
};

template <class T>
inline Vec<T> iou(const Box<T>& a, const Box<T>& b) {
  const Vec<T> zero = Vec<T>::zero();
  const Vec<T> w = max(min(b.x2, a.x2) - max(b.x1, a.x1), zero);
  const Vec<T> h = max(min(b.y2, a.y2) - max(b.y1, a.y1), zero);
  const Vec<T> inter = w * h;
  return inter / ((a.area + b.area) - inter);
}

template <class T>
inline Box<T> broadcast_box(const T* kept, int k) {
  return {Vec<T>::broadcast(kept[k]), Vec<T>::broadcast(kept[kNmsBlock + k]),
          Vec<T>::broadcast(kept[2 * kNmsBlock + k]), Vec<T>::broadcast(kept[3 * kNmsBlock + k]),
          Vec<T>::broadcast(kept[4 * kNmsBlock + k])};
}

template <class T>
void suppress(const NmsColumns<T>& c, int64_t begin, int64_t end, const T* kept, int nk, T thr,
              uint64_t* dead) {
  constexpr int W = Vec<T>::W;
  static_assert(64 % W == 0, "a vector's bits must lie in one word");
  if (begin >= end || nk <= 0) return;
  const Vec<T> zero = Vec<T>::zero(), vthr = Vec<T>::broadcast(thr);
  const uint64_t all = W == 64 ? ~uint64_t{0} : (uint64_t{1} << W) - 1;
  for (int64_t q = begin - begin % W; q < end; q += W) {
    uint64_t lanes = all;
    if (q < begin) lanes &= all << (begin - q);
    if (q + W > end) lanes &= all >> (q + W - end);
    uint64_t& word = dead[q >> 6];
    const int shift = static_cast<int>(q & 63);
    const uint64_t alive = lanes & ~(word >> shift);
    if (!alive) continue;
    const Box<T> b{Vec<T>::loadu(c.x1 + q), Vec<T>::loadu(c.y1 + q), Vec<T>::loadu(c.x2 + q),
                   Vec<T>::loadu(c.y2 + q), Vec<T>::loadu(c.area + q)};
    uint64_t hit = 0;
    for (int k = 0; k < nk; ++k) {
      const Vec<T> o = iou(broadcast_box(kept, k), b);
      hit |= Vec<T>::mask_bits(greater_or_nan(max(o, zero), vthr));
      if ((hit & alive) == alive) break;
    }
    word |= (hit & alive) << shift;
  }
}

template <class T>
void iou_rows(const T* boxes1, int64_t rows, const NmsColumns<T>& c, int64_t m, T* out) {
  constexpr int W = Vec<T>::W;
  for (int64_t i = 0; i < rows; ++i) {
    const T* r = boxes1 + 4 * i;
    const Box<T> a{Vec<T>::broadcast(r[0]), Vec<T>::broadcast(r[1]), Vec<T>::broadcast(r[2]),
                   Vec<T>::broadcast(r[3]), Vec<T>::broadcast((r[2] - r[0]) * (r[3] - r[1]))};
    T* o = out + i * m;
    int64_t j = 0;
    for (; j + W <= m; j += W) {
      const Box<T> b{Vec<T>::loadu(c.x1 + j), Vec<T>::loadu(c.y1 + j), Vec<T>::loadu(c.x2 + j),
                     Vec<T>::loadu(c.y2 + j), Vec<T>::loadu(c.area + j)};
      iou(a, b).storeu(o + j);
    }
    if (j < m) {
      // The columns are padded (kNmsPad), so whole-vector loads past m are safe.
      const Box<T> b{Vec<T>::loadu(c.x1 + j), Vec<T>::loadu(c.y1 + j), Vec<T>::loadu(c.x2 + j),
                     Vec<T>::loadu(c.y2 + j), Vec<T>::loadu(c.area + j)};
      iou(a, b).storeu_partial(o + j, static_cast<int>(m - j));
    }
  }
}

}  // namespace

extern const NmsKernels<float> nms_kernels_f32 = {&suppress<float>, &iou_rows<float>};
extern const NmsKernels<double> nms_kernels_f64 = {&suppress<double>, &iou_rows<double>};

}  // namespace tfg::TFG_ISA_NS
