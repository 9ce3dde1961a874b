// nms, batched_nms and box_iou entries: argument checks, the stable score
// sort, the boxes gathered into padded columns, and the blocked greedy
// suppression (Note [blocked greedy]) driving the active ISA's kernels.
#include "ops/nms/nms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/parallel.h"

namespace tfg {

namespace {

template <class T>
const NmsKernels<T>& kernels() {
  if constexpr (std::is_same_v<T, float>) return active_nms_kernels_f32();
  else return active_nms_kernels_f64();
}

}  // namespace

// Shared with the CUDA test bindings (nms.h, namespace nms_detail).
namespace nms_detail {

static void check_boxes(const char* op, const char* arg, const Array& boxes) {
  check_float_cpu(op, arg, boxes);
  TFG_CHECK_VALUE(boxes.ndim() == 2 && boxes.shape[1] == 4, op, ": '", arg,
                  "' must have shape (N, 4) (rows x1, y1, x2, y2), got ", shape_str(boxes.shape));
}

void check_nms_args(const char* op, const Array& boxes, const Array& scores, double iou_threshold) {
  check_boxes(op, "boxes", boxes);
  check_float_cpu(op, "scores", scores);
  TFG_CHECK_TYPE(scores.dtype == boxes.dtype, op, ": 'scores' has dtype ", dtype_name(scores.dtype),
                 " but 'boxes' has dtype ", dtype_name(boxes.dtype), "; both must be the same");
  TFG_CHECK_VALUE(scores.ndim() == 1 && scores.shape[0] == boxes.shape[0], op,
                  ": 'scores' must have shape (N,) with N = ", boxes.shape[0],
                  " boxes, got ", shape_str(scores.shape));
  TFG_CHECK_VALUE(iou_threshold >= 0.0 && iou_threshold <= 1.0, op,
                  ": 'iou_threshold' must lie in [0, 1], got ", iou_threshold);
}

// Note [threshold in float]: torchvision compares the float IoU with the double
// threshold (`ovr > iou_threshold` promotes ovr). For a float ovr that is
// ovr > t where t is the largest float <= the threshold: equal when the
// threshold is a float, and otherwise no float lies between t and it.
template <class T>
T kernel_threshold(double thr) {
  if constexpr (std::is_same_v<T, double>) {
    return thr;
  } else {
    float t = static_cast<float>(thr);
    if (static_cast<double>(t) > thr) t = std::nextafter(t, -1.0f);
    return t;
  }
}

// Note [score order]: torch.sort(stable=True, descending=True), which
// torchvision's nms uses: decreasing score, equal scores (-0 and +0 included)
// in input order, NaN before everything. The scores become unsigned keys whose
// ascending order is that order (NaN -> 0, the rest descending through the
// usual sign-flip of the IEEE bits), sorted with their index by an LSD radix
// sort, stable by construction.
template <class T>
static auto score_key(T s) {
  using K = std::conditional_t<std::is_same_v<T, float>, uint32_t, uint64_t>;
  constexpr K sign = K{1} << (8 * sizeof(K) - 1);
  if (std::isnan(s)) return K{0};
  if (s == 0) s = 0;  // -0 sorts with +0
  K u;
  std::memcpy(&u, &s, sizeof(u));
  const K ascending = (u & sign) ? ~u : (u | sign);
  return static_cast<K>(~ascending);
}

template <class T>
std::vector<int64_t> sort_by_score(const T* scores, int64_t n) {
  using K = decltype(score_key(T{}));
  std::vector<K> keys(n), keys2(n);
  std::vector<int64_t> order(n), order2(n);
  for (int64_t i = 0; i < n; ++i) {
    keys[i] = score_key(scores[i]);
    order[i] = i;
  }
  if (n < 256) {
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
    return order;
  }
  for (int shift = 0; shift < static_cast<int>(8 * sizeof(K)); shift += 8) {
    int64_t count[257] = {};
    for (int64_t i = 0; i < n; ++i) ++count[((keys[i] >> shift) & 255) + 1];
    if (count[((keys[0] >> shift) & 255) + 1] == n) continue;  // one digit value: nothing moves
    for (int d = 0; d < 256; ++d) count[d + 1] += count[d];
    for (int64_t i = 0; i < n; ++i) {
      const int64_t to = count[(keys[i] >> shift) & 255]++;
      keys2[to] = keys[i];
      order2[to] = order[i];
    }
    keys.swap(keys2);
    order.swap(order2);
  }
  return order;
}

void check_box_iou_args(const char* op, const Array& boxes1, const Array& boxes2) {
  check_boxes(op, "boxes1", boxes1);
  check_boxes(op, "boxes2", boxes2);
  TFG_CHECK_TYPE(boxes1.dtype == boxes2.dtype, op, ": 'boxes1' has dtype ", dtype_name(boxes1.dtype),
                 " but 'boxes2' has dtype ", dtype_name(boxes2.dtype), "; both must be the same");
}

template float kernel_threshold<float>(double);
template double kernel_threshold<double>(double);
template std::vector<int64_t> sort_by_score<float>(const float*, int64_t);
template std::vector<int64_t> sort_by_score<double>(const double*, int64_t);

}  // namespace nms_detail

namespace {

using nms_detail::kernel_threshold;
using nms_detail::sort_by_score;

// Boxes as padded columns, in the order given by `order` (positions into boxes).
template <class T>
struct Columns {
  std::vector<T> x1, y1, x2, y2, area;
  std::vector<int64_t> index;  // the box each position came from
  int64_t n = 0;

  Columns(const T* boxes, const int64_t* order, int64_t count) : n(count) {
    const size_t cap = static_cast<size_t>((count + 63) / 64 * 64 + kNmsPad);
    for (auto* v : {&x1, &y1, &x2, &y2, &area}) v->assign(cap, T(0));
    index.resize(count);
    for (int64_t p = 0; p < count; ++p) index[p] = order ? order[p] : p;
    for (int64_t p = 0; p < count; ++p) {
      const T* b = boxes + 4 * (order ? order[p] : p);
      x1[p] = b[0];
      y1[p] = b[1];
      x2[p] = b[2];
      y2[p] = b[3];
      area[p] = (b[2] - b[0]) * (b[3] - b[1]);
    }
  }
  NmsColumns<T> view() const { return {x1.data(), y1.data(), x2.data(), y2.data(), area.data()}; }
};

inline bool bit(const std::vector<uint64_t>& bits, int64_t p) { return (bits[p >> 6] >> (p & 63)) & 1; }

// Note [blocked greedy]: torchvision's greedy loop (each kept box, in score
// order, suppresses the later boxes whose IoU with it is above the threshold)
// over boxes sorted by score, done in blocks. The next kNmsBlock boxes still
// alive are first resolved among themselves (they have already been checked
// against every box kept before them), then the boxes of the block that were
// kept sweep all later positions together: one pass over the columns per block
// instead of one per kept box, each vector of candidates loaded once and
// tested against up to 64 broadcast boxes, stopping as soon as all its lanes
// are suppressed. That sweep is the bulk of the work and runs in parallel over
// ranges of positions (each range owns whole 64-bit words of the dead mask).
// When fewer than half of the positions after the block are still alive they
// are compacted to the front, so clustered boxes (most suppressed early) leave
// little to sweep, while spread boxes (few suppressed) cost the N^2 / 2 IoUs
// every exact greedy NMS needs, in SIMD and on every thread.
// Returns the kept positions' `index` entries in position order. `threaded`:
// the sweeps may use the thread team.
template <class T>
void greedy_nms(Columns<T>& c, T thr, const NmsKernels<T>& k, bool threaded, std::vector<int64_t>& keep) {
  int64_t n = c.n;
  std::vector<uint64_t> dead((n + 63) / 64 + 1, 0);
  alignas(64) T block[5 * kNmsBlock + kNmsPad] = {};
  alignas(64) T kept[5 * kNmsBlock] = {};
  T* const bcol[5] = {block, block + kNmsBlock, block + 2 * kNmsBlock, block + 3 * kNmsBlock,
                      block + 4 * kNmsBlock};
  int64_t p = 0;
  while (p < n) {
    // The next block: up to kNmsBlock alive positions from p.
    int64_t pos[kNmsBlock];
    int nb = 0;
    for (; p < n && nb < kNmsBlock; ++p)
      if (!bit(dead, p)) pos[nb++] = p;
    if (nb == 0) break;
    const std::vector<T>* fields[5] = {&c.x1, &c.y1, &c.x2, &c.y2, &c.area};
    for (int f = 0; f < 5; ++f)
      for (int i = 0; i < nb; ++i) bcol[f][i] = (*fields[f])[pos[i]];
    // Resolve the block in order (the padding after row 4 keeps loads in bounds).
    const NmsColumns<T> bview{bcol[0], bcol[1], bcol[2], bcol[3], bcol[4]};
    uint64_t bdead[2] = {0, 0};
    int nk = 0;
    for (int i = 0; i < nb; ++i) {
      if ((bdead[0] >> i) & 1) continue;
      keep.push_back(c.index[pos[i]]);
      for (int f = 0; f < 5; ++f) kept[f * kNmsBlock + nk] = bcol[f][i];
      k.suppress(bview, i + 1, nb, kept + nk, 1, thr, bdead);
      ++nk;
    }
    // The kept boxes of the block sweep [p, n).
    const int64_t rest = n - p;
    if (rest <= 0) break;
    const NmsColumns<T> view = c.view();
    const int64_t per_item = std::max<int64_t>(512, ((int64_t{1} << 17) / nk + 63) / 64 * 64);
    const int64_t first_end = std::min(n, (p / 64 + 1) * 64 + per_item - 64);
    const int64_t items = threaded && rest > per_item ? 1 + (n - first_end + per_item - 1) / per_item : 1;
    if (items == 1) {
      k.suppress(view, p, n, kept, nk, thr, dead.data());
    } else {
      parallel_for(items, [&](int64_t it) {
        const int64_t b = it == 0 ? p : first_end + (it - 1) * per_item;
        const int64_t e = it == 0 ? first_end : std::min(n, b + per_item);
        k.suppress(view, b, e, kept, nk, thr, dead.data());
      });
    }
    // Compact [p, n) when fewer than half of it is alive.
    if (rest >= 1024) {
      int64_t alive = 0;
      for (int64_t w = p >> 6; w <= (n - 1) >> 6; ++w) {
        uint64_t live = ~dead[w];
        if (w == p >> 6) live &= ~uint64_t{0} << (p & 63);
        if (w == (n - 1) >> 6 && (n & 63)) live &= ~(~uint64_t{0} << (n & 63));
        alive += __builtin_popcountll(live);
      }
      if (2 * alive < rest) {
        int64_t to = p;
        for (int64_t q = p; q < n; ++q) {
          if (bit(dead, q)) continue;
          c.x1[to] = c.x1[q];
          c.y1[to] = c.y1[q];
          c.x2[to] = c.x2[q];
          c.y2[to] = c.y2[q];
          c.area[to] = c.area[q];
          c.index[to] = c.index[q];
          ++to;
        }
        for (int64_t q = p; q < n; ++q) dead[q >> 6] &= ~(uint64_t{1} << (q & 63));
        n = to;
      }
    }
  }
}

Array index_array(const std::vector<int64_t>& v) {
  Array out = Array::empty({static_cast<int64_t>(v.size())}, DType::int64);
  if (!v.empty()) std::memcpy(out.data, v.data(), v.size() * sizeof(int64_t));
  return out;
}

}  // namespace

using nms_detail::check_nms_args;

Array nms(const Array& boxes_in, const Array& scores_in, double iou_threshold) {
  const char* op = "nms";
  check_nms_args(op, boxes_in, scores_in, iou_threshold);
  const int64_t n = boxes_in.shape[0];
  if (n == 0) return Array::empty({0}, DType::int64);
  const Array boxes = boxes_in.contiguous(), scores = scores_in.contiguous();
  std::vector<int64_t> keep;
  TFG_DISPATCH_FLOATING(boxes.dtype, op, [&] {
    const std::vector<int64_t> order = sort_by_score(scores.ptr<scalar_t>(), n);
    Columns<scalar_t> c(boxes.ptr<scalar_t>(), order.data(), n);
    greedy_nms(c, kernel_threshold<scalar_t>(iou_threshold), kernels<scalar_t>(), true, keep);
  });
  return index_array(keep);
}

Array batched_nms(const Array& boxes_in, const Array& scores_in, const Array& idxs_in,
                  double iou_threshold) {
  const char* op = "batched_nms";
  check_nms_args(op, boxes_in, scores_in, iou_threshold);
  TFG_CHECK_VALUE(idxs_in.device == boxes_in.device, op, ": 'idxs' is on ", idxs_in.device.str(),
                  " but 'boxes' is on ", boxes_in.device.str());
  TFG_CHECK_TYPE(idxs_in.dtype == DType::int64 || idxs_in.dtype == DType::int32, op,
                 ": 'idxs' must be int64 or int32 category indices, got ", dtype_name(idxs_in.dtype));
  const int64_t n = boxes_in.shape[0];
  TFG_CHECK_VALUE(idxs_in.ndim() == 1 && idxs_in.shape[0] == n, op,
                  ": 'idxs' must have shape (N,) with N = ", n, " boxes, got ", shape_str(idxs_in.shape));
  if (n == 0) return Array::empty({0}, DType::int64);
  const Array boxes = boxes_in.contiguous(), scores = scores_in.contiguous(), idxs = idxs_in.contiguous();
  std::vector<int64_t> category(n);
  for (int64_t i = 0; i < n; ++i)
    category[i] = idxs.dtype == DType::int64 ? idxs.ptr<int64_t>()[i] : idxs.ptr<int32_t>()[i];
  std::vector<int64_t> keep;
  TFG_DISPATCH_FLOATING(boxes.dtype, op, [&] {
    using T = scalar_t;
    const std::vector<int64_t> order = sort_by_score(scores.ptr<T>(), n);
    // Group by category, keeping score order inside each group.
    std::vector<int64_t> grouped(order);
    std::stable_sort(grouped.begin(), grouped.end(),
                     [&](int64_t a, int64_t b) { return category[a] < category[b]; });
    std::vector<int64_t> starts;
    for (int64_t i = 0; i < n; ++i)
      if (i == 0 || category[grouped[i]] != category[grouped[i - 1]]) starts.push_back(i);
    starts.push_back(n);
    const int64_t groups = static_cast<int64_t>(starts.size()) - 1;
    const T thr = kernel_threshold<T>(iou_threshold);
    const NmsKernels<T>& k = kernels<T>();
    std::vector<char> kept(n, 0);
    auto run_group = [&](int64_t g, bool threaded) {
      Columns<T> c(boxes.ptr<T>(), grouped.data() + starts[g], starts[g + 1] - starts[g]);
      std::vector<int64_t> group_keep;
      greedy_nms(c, thr, k, threaded, group_keep);
      for (int64_t i : group_keep) kept[i] = 1;
    };
    // Large groups one after the other, each sweeping on the whole team; the
    // small ones spread over the team, one group per item.
    constexpr int64_t kLargeGroup = 4096;
    std::vector<int64_t> small;
    for (int64_t g = 0; g < groups; ++g) {
      if (starts[g + 1] - starts[g] >= kLargeGroup) run_group(g, true);
      else small.push_back(g);
    }
    parallel_for(static_cast<int64_t>(small.size()), [&](int64_t i) { run_group(small[i], false); });
    for (int64_t i : order)
      if (kept[i]) keep.push_back(i);
  });
  return index_array(keep);
}

Array box_iou(const Array& boxes1_in, const Array& boxes2_in) {
  const char* op = "box_iou";
  nms_detail::check_box_iou_args(op, boxes1_in, boxes2_in);
  const int64_t n = boxes1_in.shape[0], m = boxes2_in.shape[0];
  Array out = Array::empty({n, m}, boxes1_in.dtype);
  if (n == 0 || m == 0) return out;
  const Array b1 = boxes1_in.contiguous(), b2 = boxes2_in.contiguous();
  TFG_DISPATCH_FLOATING(b1.dtype, op, [&] {
    using T = scalar_t;
    const Columns<T> c(b2.ptr<T>(), nullptr, m);
    const NmsKernels<T>& k = kernels<T>();
    const int64_t rows_per_item = std::max<int64_t>(1, (int64_t{1} << 15) / m);
    const int64_t items = (n + rows_per_item - 1) / rows_per_item;
    const NmsColumns<T> view = c.view();
    parallel_for(items, [&](int64_t it) {
      const int64_t r0 = it * rows_per_item, r1 = std::min(n, r0 + rows_per_item);
      k.iou_rows(b1.ptr<T>() + 4 * r0, r1 - r0, view, m, out.ptr<T>() + r0 * m);
    });
  });
  return out;
}

}  // namespace tfg
