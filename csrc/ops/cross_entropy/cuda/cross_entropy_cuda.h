// Fused cross-entropy with class-index targets on a CUDA device
// (cross_entropy.cu): the counterparts of the CPU kernels of ops/cross_entropy
// for C-contiguous operands in device memory, (N, C, inner) logits with
// (N, inner) int64 targets. float or double. The argument checks and the
// target validation are the CPU op's (prepare_cross_entropy): the launchers
// take targets already known to be ignore_index or in [0, C).
#pragma once
#include <cuda_runtime_api.h>  // cudaStream_t

#include "ops/cross_entropy/cross_entropy.h"
#include "ops/softmax/layout.h"

namespace tfg::cuda {

// Losses of every (n, inner) position into `loss` (device, outer * inner
// values: the output for reduction none, scratch otherwise); for mean / sum
// also their sum (added in double in a fixed order, divided by `denom` for
// mean) into *out (device, one value). p.weight is a device pointer or null.
template <class T>
void cross_entropy_forward(const T* x, const int64_t* t, const ReduceLayout& l,
                           const CrossEntropyParams<T>& p, Reduction reduction, double denom, T* loss,
                           T* out, cudaStream_t stream);

// gx = gradient of sum_r go[r * go_stride] / divisor * loss_r (go_stride 1 for
// reduction none, 0 otherwise; divisor the mean's denominator or 1).
template <class T>
void cross_entropy_backward(const T* x, const int64_t* t, const ReduceLayout& l,
                            const CrossEntropyParams<T>& p, const T* go, int64_t go_stride, T divisor,
                            T* gx, cudaStream_t stream);

#define TFG_CE_CUDA_EXTERN(T)                                                                          \
  extern template void cross_entropy_forward<T>(const T*, const int64_t*, const ReduceLayout&,        \
                                                const CrossEntropyParams<T>&, Reduction, double, T*, \
                                                T*, cudaStream_t);                                     \
  extern template void cross_entropy_backward<T>(const T*, const int64_t*, const ReduceLayout&,       \
                                                 const CrossEntropyParams<T>&, const T*, int64_t, T, \
                                                 T*, cudaStream_t);
TFG_CE_CUDA_EXTERN(float)
TFG_CE_CUDA_EXTERN(double)
#undef TFG_CE_CUDA_EXTERN

}  // namespace tfg::cuda
