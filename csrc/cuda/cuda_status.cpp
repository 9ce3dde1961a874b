// The CUDA status of a build with the CUDA backend (cuda_stub.cpp is the one
// without). Asks the runtime for the device count once, on first use; the
// runtime is linked statically, so on a machine without a driver the call
// returns cudaErrorInsufficientDriver (no libcuda to load) and the module
// reports "not available" with that reason instead of failing to import.
// Plain C++ against the runtime API: no nvcc needed for this file. In the
// emulated build (TFG_CUDA_EMULATION) the runtime is the emulation's, which
// always has one device.
#include <cuda_runtime_api.h>

#include "cuda/cuda_check.h"
#include "cuda/cuda_info.h"

namespace tfg::cuda {

namespace {

Status query() {
  Status s;
  s.built = true;
#if defined(TFG_CUDA_EMULATION)
  s.emulated = true;
#endif
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  // Clear the thread's last-error slot, so that a later cudaGetLastError()
  // (after a kernel launch) does not report this query's failure.
  (void)cudaGetLastError();
  if (err != cudaSuccess) {
    s.reason = "CUDA is not available: " + error_text(err);
  } else if (count <= 0) {
    s.reason = "CUDA is not available: no CUDA device found";
  } else {
    s.available = true;
    s.device_count = count;
  }
  return s;
}

}  // namespace

const Status& status() {
  static const Status s = query();  // initialized once, thread-safe (C++11 magic static)
  return s;
}

}  // namespace tfg::cuda
