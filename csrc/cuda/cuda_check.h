// Error checking for CUDA runtime calls. TFG_CUDA_CHECK(call) throws
// std::runtime_error carrying the runtime's own words for the error, its name
// and code, the call and where it was made; error_text() formats an error the
// same way for messages that do not throw (cuda_status.cpp).
// Host code only; plain C++ (needs the toolkit's headers, not nvcc).
#pragma once
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace tfg::cuda {

// "<description> (<cudaErrorName>, code <n>)"
inline std::string error_text(cudaError_t err) {
  return std::string(cudaGetErrorString(err)) + " (" + cudaGetErrorName(err) + ", code " +
         std::to_string(static_cast<int>(err)) + ")";
}

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  throw std::runtime_error("CUDA error: " + error_text(err) + " in " + call + " at " + file + ":" +
                           std::to_string(line));
}

}  // namespace tfg::cuda

#define TFG_CUDA_CHECK(call)                                                       \
  do {                                                                             \
    const cudaError_t tfg_cuda_err_ = (call);                                      \
    if (tfg_cuda_err_ != cudaSuccess)                                              \
      ::tfg::cuda::throw_cuda_error(tfg_cuda_err_, #call, __FILE__, __LINE__);     \
  } while (0)
