// Kernel launches: tfg::cuda::launch(kernel, grid, block, smem_bytes, stream, args...)
// instead of kernel<<<...>>>(args...) at the call site. A function template
// (not a macro) so that template kernel names with commas need no care, and
// one place for the host emulation build of design.md section 4 to replace:
// there (TFG_CUDA_EMULATION) the grid runs on the CPU before launch returns,
// and the grid argument also records the call site for error messages.
// Launch errors (bad configuration, no driver or device, no kernel image for
// this GPU) throw std::runtime_error at once; errors while the kernel runs
// surface at the next synchronizing call (under emulation: at once, as
// std::runtime_error naming the kernel, block and threads). Include only from
// .cu files.
#pragma once
#if !defined(__CUDACC__) && !defined(TFG_CUDA_EMULATION)
#error "cuda/launch.h launches with <<<>>> and needs nvcc (include it from .cu files only)"
#endif
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "cuda/cuda_check.h"

namespace tfg::cuda {

#if defined(TFG_CUDA_EMULATION)
using LaunchGrid = ::tfg::simt::GridDim;
#else
using LaunchGrid = dim3;
#endif

template <class... Params, class... Args>
void launch(void (*kernel)(Params...), const LaunchGrid& grid, dim3 block, size_t smem_bytes,
            cudaStream_t stream, Args&&... args) {
#if defined(TFG_CUDA_EMULATION)
  ::tfg::simt::launch(kernel, grid, block, smem_bytes, stream, std::forward<Args>(args)...);
#else
  kernel<<<grid, block, smem_bytes, stream>>>(std::forward<Args>(args)...);
#endif
  TFG_CUDA_CHECK(cudaGetLastError());
}

}  // namespace tfg::cuda
