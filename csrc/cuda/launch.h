// Kernel launches: tfg::cuda::launch(kernel, grid, block, smem_bytes, stream, args...)
// instead of kernel<<<...>>>(args...) at the call site. A function template
// (not a macro) so that template kernel names with commas need no care, and
// one place for the host emulation build of design.md section 4 to replace.
// Launch errors (bad configuration, no driver or device, no kernel image for
// this GPU) throw std::runtime_error at once; errors while the kernel runs
// surface at the next synchronizing call. Include only from .cu files.
#pragma once
#if !defined(__CUDACC__)
#error "cuda/launch.h launches with <<<>>> and needs nvcc (include it from .cu files only)"
#endif
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "cuda/cuda_check.h"

namespace tfg::cuda {

template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem_bytes,
            cudaStream_t stream, Args&&... args) {
  kernel<<<grid, block, smem_bytes, stream>>>(std::forward<Args>(args)...);
  TFG_CUDA_CHECK(cudaGetLastError());
}

}  // namespace tfg::cuda
