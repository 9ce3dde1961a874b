// Non-maximum suppression and box IoU (torchvision.ops.nms / batched_nms /
// box_iou semantics), and the per-ISA kernel table they run on
// (cpu/nms_kernel.cpp). Boxes are (N, 4) rows x1, y1, x2, y2.
#pragma once
#include <cstdint>
#include <vector>

#include "core/array.h"
#include "dispatch/isa.h"

namespace tfg {

// int64 indices of the kept boxes by decreasing score (stable: equal scores keep
// input order; NaN scores first, as torch.sort(descending=True) puts them).
Array nms(const Array& boxes, const Array& scores, double iou_threshold);
// NMS within each category of `idxs` (int64 or int32, (N,)); the kept indices of
// all categories together, by decreasing score as nms.
Array batched_nms(const Array& boxes, const Array& scores, const Array& idxs, double iou_threshold);
// (N, M) IoU of every box of boxes1 with every box of boxes2.
Array box_iou(const Array& boxes1, const Array& boxes2);

// Pieces shared by nms.cpp and the CUDA test bindings (bind_cuda_nms.cpp).
namespace nms_detail {
// The checks of nms / batched_nms (boxes (N, 4), scores (N,) of its dtype,
// iou_threshold in [0, 1]) and of box_iou; `op` names the op in messages.
void check_nms_args(const char* op, const Array& boxes, const Array& scores, double iou_threshold);
void check_box_iou_args(const char* op, const Array& boxes1, const Array& boxes2);
// The T threshold t with (IoU in T) > t exactly when (double) IoU > iou_threshold
// (Note [threshold in float] in nms.cpp).
template <class T>
T kernel_threshold(double iou_threshold);
// Positions 0..n-1 in torch.sort(descending=True, stable=True) order (Note [score order]).
template <class T>
std::vector<int64_t> sort_by_score(const T* scores, int64_t n);
}  // namespace nms_detail

// Boxes as columns (structure of arrays); area = (x2 - x1) * (y2 - y1). The
// kernels read whole vectors, so every column is readable up to its length
// rounded up to a multiple of 64, plus 64 more elements (kNmsPad).
template <class T>
struct NmsColumns {
  const T* x1;
  const T* y1;
  const T* x2;
  const T* y2;
  const T* area;
};

constexpr int kNmsBlock = 64;  // boxes resolved together (Note [blocked greedy] in nms.cpp)
constexpr int kNmsPad = 64;

template <class T>
struct NmsKernels {
  // For every position p in [begin, end) of `cols` whose bit in `dead` (bit p % 64
  // of word p / 64) is clear, sets that bit when IoU(kept box k, box p) > thr for
  // some k < nk. The kept boxes are columns too: field f (x1, y1, x2, y2, area)
  // of kept box k at kept[f * kNmsBlock + k]. Only the words holding bits of
  // [begin, end) are written.
  void (*suppress)(const NmsColumns<T>& cols, int64_t begin, int64_t end, const T* kept, int nk,
                   T thr, uint64_t* dead);
  // out[i * m + j] = IoU(boxes1 row i, box j of cols2) for i < rows, j < m;
  // boxes1 is C-contiguous (rows, 4).
  void (*iou_rows)(const T* boxes1, int64_t rows, const NmsColumns<T>& cols2, int64_t m, T* out);
};

TFG_ISA_TABLE(NmsKernels<float>, nms_kernels_f32)
TFG_ISA_TABLE(NmsKernels<double>, nms_kernels_f64)

}  // namespace tfg
