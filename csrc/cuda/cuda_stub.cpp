// The CUDA status of a build made without the CUDA backend.
#include "cuda/cuda_info.h"

namespace tfg::cuda {

const Status& status() {
  static const Status s{false, false, 0, "CUDA is not available: tensorforge was built without CUDA (TENSORFORGE_CUDA=OFF, or AUTO without nvcc)"};
  return s;
}

}  // namespace tfg::cuda
