// CUDA NMS suppression mask and box IoU (torchvision's GPU scheme).
//
// nms_mask: the boxes, sorted by score on the host, are cut into tiles of 64;
// block (x = column tile, y = row tile) of 64 threads handles one pair of
// tiles with column tile >= row tile: the column tile's boxes (and areas) go to
// shared memory, and thread t tests its row box against them, setting bit c of
// one 64-bit word when IoU > threshold (in the diagonal tile only columns after
// the row). Blocks below the diagonal return at once. The greedy scan over the
// words runs on the host (bind_cuda_nms.cpp).
// box_iou: a 32 x 8 thread block per 32 x 8 tile of the output, its boxes
// staged in shared memory, writes coalesced along rows.
// Note [IoU operations]: bit for bit the CPU kernel's formula (cpu/nms_kernel.cpp):
// the kept/row box is `a`, std::min/std::max operand order kept for NaN and
// signed zeros, and the products written with __fmul_rn/__dmul_rn, which nvcc
// never contracts into an FMA with the following add/subtract (a contraction
// would change the rounding and so which boxes are suppressed).
#include "ops/nms/cuda/nms_cuda.h"

#include <climits>

#include "core/error.h"
#include "cuda/launch.h"

namespace tfg::cuda {

namespace {

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

// std::max(a, b) and std::min(a, b), NaN behaviour included.
template <class T>
__device__ __forceinline__ T smax(T a, T b) { return (a < b) ? b : a; }
template <class T>
__device__ __forceinline__ T smin(T a, T b) { return (b < a) ? b : a; }

template <class T>
__device__ __forceinline__ T box_area(T x1, T y1, T x2, T y2) { return mul_rn(x2 - x1, y2 - y1); }

// IoU of box a (the kept / row box) with box b; Note [IoU operations].
template <class T>
__device__ __forceinline__ T iou(T ax1, T ay1, T ax2, T ay2, T aarea, T bx1, T by1, T bx2, T by2, T barea) {
  const T w = smax(T(0), smin(ax2, bx2) - smax(ax1, bx1));
  const T h = smax(T(0), smin(ay2, by2) - smax(ay1, by1));
  const T inter = mul_rn(w, h);
  return inter / ((aarea + barea) - inter);
}

template <class T>
__global__ void __launch_bounds__(kNmsTile) nms_mask_kernel(const T* __restrict__ boxes, int64_t n,
                                                            T thr, int64_t words,
                                                            uint64_t* __restrict__ mask) {
  const int64_t row_tile = blockIdx.y, col_tile = blockIdx.x;
  if (col_tile < row_tile) return;  // whole block: no barrier is skipped by part of it
  __shared__ T s[5][kNmsTile];       // x1, y1, x2, y2, area of the column tile
  const int t = threadIdx.x;
  const int64_t col0 = col_tile * kNmsTile;
  const int cols = static_cast<int>(n - col0 < kNmsTile ? n - col0 : kNmsTile);
  if (t < cols) {
    const T* b = boxes + 4 * (col0 + t);
    const T x1 = b[0], y1 = b[1], x2 = b[2], y2 = b[3];
    s[0][t] = x1; s[1][t] = y1; s[2][t] = x2; s[3][t] = y2;
    s[4][t] = box_area(x1, y1, x2, y2);
  }
  __syncthreads();
  const int64_t row = row_tile * kNmsTile + t;
  if (row >= n) return;
  const T* a = boxes + 4 * row;
  const T ax1 = a[0], ay1 = a[1], ax2 = a[2], ay2 = a[3];
  const T aarea = box_area(ax1, ay1, ax2, ay2);
  uint64_t bits = 0;
  for (int c = row_tile == col_tile ? t + 1 : 0; c < cols; ++c) {
    const T o = iou(ax1, ay1, ax2, ay2, aarea, s[0][c], s[1][c], s[2][c], s[3][c], s[4][c]);
    if (o > thr) bits |= uint64_t{1} << c;
  }
  mask[row * words + col_tile] = bits;
}

constexpr int kIouBx = 32, kIouBy = 8;

template <class T>
__global__ void __launch_bounds__(kIouBx * kIouBy) box_iou_kernel(const T* __restrict__ b1, int64_t n,
                                                                  const T* __restrict__ b2, int64_t m,
                                                                  T* __restrict__ out) {
  __shared__ T s1[5][kIouBy];
  __shared__ T s2[5][kIouBx];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kIouBy, j0 = static_cast<int64_t>(blockIdx.x) * kIouBx;
  // Warp 0 stages the 32 column boxes, warp 1 the 8 row boxes.
  if (ty == 0 && j0 + tx < m) {
    const T* b = b2 + 4 * (j0 + tx);
    s2[0][tx] = b[0]; s2[1][tx] = b[1]; s2[2][tx] = b[2]; s2[3][tx] = b[3];
    s2[4][tx] = box_area(b[0], b[1], b[2], b[3]);
  } else if (ty == 1 && tx < kIouBy && i0 + tx < n) {
    const T* b = b1 + 4 * (i0 + tx);
    s1[0][tx] = b[0]; s1[1][tx] = b[1]; s1[2][tx] = b[2]; s1[3][tx] = b[3];
    s1[4][tx] = box_area(b[0], b[1], b[2], b[3]);
  }
  __syncthreads();
  const int64_t i = i0 + ty, j = j0 + tx;
  if (i < n && j < m)
    out[i * m + j] = iou(s1[0][ty], s1[1][ty], s1[2][ty], s1[3][ty], s1[4][ty],
                         s2[0][tx], s2[1][tx], s2[2][tx], s2[3][tx], s2[4][tx]);
}

}  // namespace

template <class T>
void nms_mask(const T* boxes, int64_t n, T thr, uint64_t* mask, cudaStream_t stream) {
  TFG_CHECK_VALUE(n >= 0, "cuda nms: negative box count ", n);
  if (n == 0) return;
  const int64_t words = (n + kNmsTile - 1) / kNmsTile;
  TFG_CHECK_VALUE(words <= 65535, "cuda nms: ", n, " boxes exceed the mask grid (at most ",
                  int64_t{65535} * kNmsTile, ")");
  launch(nms_mask_kernel<T>, dim3(static_cast<unsigned>(words), static_cast<unsigned>(words)), dim3(kNmsTile), 0,
         stream, boxes, n, thr, words, mask);
}

template <class T>
void box_iou(const T* boxes1, int64_t n, const T* boxes2, int64_t m, T* out, cudaStream_t stream) {
  TFG_CHECK_VALUE(n >= 0 && m >= 0, "cuda box_iou: negative box counts ", n, ", ", m);
  if (n == 0 || m == 0) return;
  const int64_t gx = (m + kIouBx - 1) / kIouBx, gy = (n + kIouBy - 1) / kIouBy;
  TFG_CHECK_VALUE(gx <= INT_MAX && gy <= 65535, "cuda box_iou: (", n, ", ", m, ") is too large for one launch");
  launch(box_iou_kernel<T>, dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), dim3(kIouBx, kIouBy), 0,
         stream, boxes1, n, boxes2, m, out);
}

template void nms_mask<float>(const float*, int64_t, float, uint64_t*, cudaStream_t);
template void nms_mask<double>(const double*, int64_t, double, uint64_t*, cudaStream_t);
template void box_iou<float>(const float*, int64_t, const float*, int64_t, float*, cudaStream_t);
template void box_iou<double>(const double*, int64_t, const double*, int64_t, double*, cudaStream_t);

}  // namespace tfg::cuda
