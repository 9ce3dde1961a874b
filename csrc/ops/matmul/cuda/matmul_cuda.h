// GEMM on a CUDA device (matmul.cu): the counterpart of tfg::gemm() in
// ops/matmul/gemm.h for operands in device memory, taking the same
// GemmProblem<T>: C (=|+=) A * B (+ bias), any element strides (negative
// too), float or double. Not yet reachable from Python (no device tensor).
#pragma once
#include <cuda_runtime_api.h>  // cudaStream_t

#include "ops/matmul/gemm_problem.h"

namespace tfg::cuda {

// Enqueues the GEMM on `stream` and returns; every pointer in `p` (a, b, c,
// bias) is a device pointer, and C must not overlap A, B or bias. Throws
// tfg::ValueError for negative sizes or missing operands and
// std::runtime_error with the CUDA runtime's message when the launch fails;
// errors while the kernel runs surface at the next synchronizing call.
// m == 0 or n == 0 launches nothing; k == 0 gives C = (accumulate ? C : 0) + bias.
template <class T>
void gemm(const GemmProblem<T>& p, cudaStream_t stream);

extern template void gemm<float>(const GemmProblem<float>& p, cudaStream_t stream);
extern template void gemm<double>(const GemmProblem<double>& p, cudaStream_t stream);

}  // namespace tfg::cuda
