// NMS and box IoU on a CUDA device (nms.cu): the suppression bitmask of
// torchvision's GPU scheme and the (N, M) IoU matrix. The score sort and the
// greedy scan over the mask stay on the host (bind_cuda_nms.cpp).
#pragma once
#include <cuda_runtime_api.h>  // cudaStream_t

#include <cstdint>

namespace tfg::cuda {

constexpr int kNmsTile = 64;  // boxes per tile, bits per mask word

// boxes: device (n, 4) C-contiguous rows x1, y1, x2, y2, already sorted by
// score (position order = greedy order). mask: device n * words uint64, words
// = ceil(n / 64). For positions i < j, bit j % 64 of mask[i * words + j / 64]
// is set when IoU(box i, box j) > thr (thr from nms_detail::kernel_threshold).
// Words of tiles before i's own tile are not written (the scan never reads
// them). n == 0 launches nothing.
template <class T>
void nms_mask(const T* boxes, int64_t n, T thr, uint64_t* mask, cudaStream_t stream);

// out (n, m) C-contiguous = IoU(boxes1 row i, boxes2 row j), both C-contiguous (., 4).
template <class T>
void box_iou(const T* boxes1, int64_t n, const T* boxes2, int64_t m, T* out, cudaStream_t stream);

extern template void nms_mask<float>(const float*, int64_t, float, uint64_t*, cudaStream_t);
extern template void nms_mask<double>(const double*, int64_t, double, uint64_t*, cudaStream_t);
extern template void box_iou<float>(const float*, int64_t, const float*, int64_t, float*, cudaStream_t);
extern template void box_iou<double>(const double*, int64_t, const double*, int64_t, double*, cudaStream_t);

}  // namespace tfg::cuda
