// conv2d and its backward on a CUDA device (conv2d.cu): the counterparts of
// the CPU algorithms in ops/conv2d/conv2d.h for C-contiguous NCHW operands in
// device memory, float or double, described by a validated ConvGeometry
// (tfg::conv2d_geometry: "same"/"valid" already resolved). Every call
// enqueues its kernels on `stream` and returns; launch failures throw
// std::runtime_error with the CUDA runtime's message, errors while a kernel
// runs surface at the next synchronizing call. Outputs are fully written
// (zeros for empty sums) and must not overlap the inputs.
#pragma once
#include <cuda_runtime_api.h>  // cudaStream_t

#include <cstdint>

#include "ops/conv2d/conv_geometry.h"

namespace tfg::cuda {

// out (N, OC, OH, OW) = conv(x (N, C, H, W), w (OC, C/groups, kH, kW)) + bias
// (OC,) or nothing when bias is null.
template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out,
                    cudaStream_t stream);

// grad_x (N, C, H, W) from grad_out (N, OC, OH, OW) and w.
template <class T>
void conv2d_backward_input(const ConvGeometry& g, const T* grad_out, const T* w, T* grad_x,
                           cudaStream_t stream);

// Elements of T of device workspace that conv2d_backward_weight needs for
// this geometry (0: none; pass null then).
template <class T>
int64_t conv2d_backward_weight_workspace(const ConvGeometry& g);

// grad_w (OC, C/groups, kH, kW) from grad_out and x; deterministic (partial
// sums per split of the batch x pixels, added in split order).
template <class T>
void conv2d_backward_weight(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_w,
                            T* workspace, cudaStream_t stream);

// grad_b (OC,) = grad_out summed over images and pixels; deterministic.
template <class T>
void conv2d_backward_bias(const ConvGeometry& g, const T* grad_out, T* grad_b, cudaStream_t stream);

#define TFG_CONV2D_CUDA_EXTERN(T)                                                                  \
  extern template void conv2d_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*,   \
                                         cudaStream_t);                                            \
  extern template void conv2d_backward_input<T>(const ConvGeometry&, const T*, const T*, T*,      \
                                                cudaStream_t);                                     \
  extern template int64_t conv2d_backward_weight_workspace<T>(const ConvGeometry&);               \
  extern template void conv2d_backward_weight<T>(const ConvGeometry&, const T*, const T*, T*, T*, \
                                                 cudaStream_t);                                    \
  extern template void conv2d_backward_bias<T>(const ConvGeometry&, const T*, T*, cudaStream_t);
TFG_CONV2D_CUDA_EXTERN(float)
TFG_CONV2D_CUDA_EXTERN(double)
#undef TFG_CONV2D_CUDA_EXTERN

}  // namespace tfg::cuda
