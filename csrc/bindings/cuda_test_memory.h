// Device memory for the CUDA test bindings (bind_cuda_<op>.cpp; compiled only
// with the CUDA backend or the SIMT emulation): an owning device buffer, a
// stream of its own, and copies to and from the device of C-contiguous host
// Arrays or plain element ranges. Errors throw (TFG_CUDA_CHECK).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>

#include "core/array.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_info.h"

namespace tfg::bindings::cuda_test {

// Raises "CUDA is not available: <reason>" where no device can be used.
inline void require_cuda() {
  const cuda::Status& status = cuda::status();
  if (!status.available) throw std::runtime_error(status.reason);
}

struct DeviceBuffer {
  void* p = nullptr;
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) {
    if (bytes) TFG_CUDA_CHECK(cudaMalloc(&p, bytes));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { if (p) cudaFree(p); }
  template <class T> T* get() const { return static_cast<T*>(p); }
};

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { TFG_CUDA_CHECK(cudaStreamCreate(&s)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { cudaStreamDestroy(s); }
};

// Allocates `bytes` (nothing for 0: p stays null).
inline void allocate(DeviceBuffer& buf, size_t bytes) {
  if (bytes) TFG_CUDA_CHECK(cudaMalloc(&buf.p, bytes));
}

// Copies a C-contiguous copy of `a` (elements of `elem` bytes) to a new device buffer.
inline void upload(const Array& a, size_t elem, DeviceBuffer& buf, cudaStream_t stream) {
  const Array c = a.contiguous();
  const size_t bytes = static_cast<size_t>(c.numel()) * elem;
  allocate(buf, bytes);
  if (bytes) TFG_CUDA_CHECK(cudaMemcpyAsync(buf.p, c.data, bytes, cudaMemcpyHostToDevice, stream));
  // The copy reads host memory that `c` may own: wait before it goes away.
  TFG_CUDA_CHECK(cudaStreamSynchronize(stream));
}

// Copies device memory into the C-contiguous host Array `out` and waits.
inline void download(const DeviceBuffer& buf, size_t elem, Array& out, cudaStream_t stream) {
  const size_t bytes = static_cast<size_t>(out.numel()) * elem;
  if (bytes) TFG_CUDA_CHECK(cudaMemcpyAsync(out.data, buf.p, bytes, cudaMemcpyDeviceToHost, stream));
  TFG_CUDA_CHECK(cudaStreamSynchronize(stream));
}

// `count` elements from host to a fresh device buffer (nullptr when count == 0);
// the copy is asynchronous on `stream`, so `host` must outlive it.
template <class T>
T* upload(const T* host, size_t count, DeviceBuffer& buf, cudaStream_t stream) {
  if (count == 0) return nullptr;
  allocate(buf, count * sizeof(T));
  TFG_CUDA_CHECK(cudaMemcpyAsync(buf.p, host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
  return buf.get<T>();
}

// `count` elements from device to host, asynchronous on `stream`.
template <class T>
void download(T* host, const T* dev, size_t count, cudaStream_t stream) {
  if (count) TFG_CUDA_CHECK(cudaMemcpyAsync(host, dev, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
}

}  // namespace tfg::bindings::cuda_test
