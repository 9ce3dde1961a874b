// softmax / log_softmax on a CUDA device (softmax.cu): the counterparts of the
// CPU kernels of ops/softmax for C-contiguous operands in device memory, seen
// as (outer, n, inner) with the reduction along n (ReduceLayout). float or
// double. The argument checks are the CPU op's (softmax.h); these launchers
// only take device pointers.
#pragma once
#include <cuda_runtime_api.h>  // cudaStream_t

#include "ops/softmax/layout.h"

namespace tfg::cuda {

// y = softmax(x) (log: log_softmax) along n. Enqueues on `stream` and returns;
// an empty layout launches nothing. y must not overlap x.
template <class T>
void softmax_forward(const T* x, T* y, const ReduceLayout& l, bool log, cudaStream_t stream);

// gx = grad of softmax (log: log_softmax). y is the forward's output
// (probabilities, or log-probabilities when log) or null, in which case the
// probabilities are recomputed from x (then non-null).
template <class T>
void softmax_backward(const T* g, const T* y, const T* x, T* gx, const ReduceLayout& l, bool log,
                      cudaStream_t stream);

extern template void softmax_forward<float>(const float*, float*, const ReduceLayout&, bool, cudaStream_t);
extern template void softmax_forward<double>(const double*, double*, const ReduceLayout&, bool, cudaStream_t);
extern template void softmax_backward<float>(const float*, const float*, const float*, float*,
                                             const ReduceLayout&, bool, cudaStream_t);
extern template void softmax_backward<double>(const double*, const double*, const double*, double*,
                                              const ReduceLayout&, bool, cudaStream_t);

}  // namespace tfg::cuda
