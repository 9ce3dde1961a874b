// 2-D pooling on a CUDA device (pooling.cu): the counterparts of the CPU
// kernels of ops/pooling (PoolKernels) for C-contiguous planes in device
// memory, with the geometry the CPU op's checks produce (PoolGeometry).
// float or double. Enqueue on `stream` and return; nothing for 0 planes.
#pragma once
#include <cuda_runtime_api.h>  // cudaStream_t

#include <cstdint>

#include "ops/pooling/pooling.h"

namespace tfg::cuda {

// out and/or indices may be null (not wanted). Indices: flat in the input
// plane, -1 for a window with no input element; the CPU op's tie / NaN rules.
template <class T>
void max_pool2d_forward(const PoolGeometry& g, int64_t planes, const T* x, T* out, int64_t* indices,
                        cudaStream_t stream);
// grad_x from grad_out and indices (validated: in [-1, ih * iw)).
template <class T>
void max_pool2d_backward(const PoolGeometry& g, int64_t planes, const T* grad_out, const int64_t* indices,
                         T* grad_x, cudaStream_t stream);
template <class T>
void avg_pool2d_forward(const PoolGeometry& g, int64_t planes, const T* x, T* out, cudaStream_t stream);
template <class T>
void avg_pool2d_backward(const PoolGeometry& g, int64_t planes, const T* grad_out, T* grad_x,
                         cudaStream_t stream);
template <class T>
void adaptive_avg_pool2d_forward(const PoolGeometry& g, int64_t planes, const T* x, T* out,
                                 cudaStream_t stream);
template <class T>
void adaptive_avg_pool2d_backward(const PoolGeometry& g, int64_t planes, const T* grad_out, T* grad_x,
                                  cudaStream_t stream);

#define TFG_POOL_CUDA_EXTERN(T)                                                                        \
  extern template void max_pool2d_forward<T>(const PoolGeometry&, int64_t, const T*, T*, int64_t*,   \
                                             cudaStream_t);                                          \
  extern template void max_pool2d_backward<T>(const PoolGeometry&, int64_t, const T*, const int64_t*, \
                                              T*, cudaStream_t);                                     \
  extern template void avg_pool2d_forward<T>(const PoolGeometry&, int64_t, const T*, T*, cudaStream_t); \
  extern template void avg_pool2d_backward<T>(const PoolGeometry&, int64_t, const T*, T*, cudaStream_t); \
  extern template void adaptive_avg_pool2d_forward<T>(const PoolGeometry&, int64_t, const T*, T*,     \
                                                      cudaStream_t);                                 \
  extern template void adaptive_avg_pool2d_backward<T>(const PoolGeometry&, int64_t, const T*, T*,    \
                                                       cudaStream_t);
TFG_POOL_CUDA_EXTERN(float)
TFG_POOL_CUDA_EXTERN(double)
#undef TFG_POOL_CUDA_EXTERN

}  // namespace tfg::cuda
