// Small RAII helpers for the CUDA test bindings (bind_cuda_<op>.cpp): a device
// buffer, a stream of its own, and contiguous host <-> device copies. Compiled
// only with the CUDA backend or the SIMT emulation.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>

#include "cuda/cuda_check.h"

namespace tfg::bindings::cuda_test {

struct DeviceBuffer {
  void* p = nullptr;
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) {
    if (bytes) TFG_CUDA_CHECK(cudaMalloc(&p, bytes));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { if (p) cudaFree(p); }
  template <class T>
  T* as() const { return static_cast<T*>(p); }
};

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { TFG_CUDA_CHECK(cudaStreamCreate(&s)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { cudaStreamDestroy(s); }
};

// `count` elements from host to a fresh device buffer (nullptr when count == 0).
template <class T>
T* upload(const T* host, size_t count, DeviceBuffer& buf, cudaStream_t stream) {
  if (count == 0) return nullptr;
  TFG_CUDA_CHECK(cudaMalloc(&buf.p, count * sizeof(T)));
  TFG_CUDA_CHECK(cudaMemcpyAsync(buf.p, host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
  return static_cast<T*>(buf.p);
}

template <class T>
void download(T* host, const T* dev, size_t count, cudaStream_t stream) {
  if (count) TFG_CUDA_CHECK(cudaMemcpyAsync(host, dev, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
}

}  // namespace tfg::bindings::cuda_test
