// The emulated CUDA runtime (runtime.h): one device, "device memory" from
// malloc, streams and events that complete at once (work runs synchronously
// in the calling thread), and the per-thread last error of the real runtime.
//
// Note [exact-size device allocations]: cudaMalloc allocates exactly the bytes
// asked for (256-byte aligned, as CUDA guarantees), with no rounding up, so
// that under AddressSanitizer a kernel that reads or writes one element past a
// buffer is reported at that access. The allocations are recorded, so that
// cudaFree of a foreign pointer and a cudaMemcpy that runs past the end of an
// allocation fail with cudaErrorInvalidValue as they would on a GPU.
#include "cuda/emulation/runtime.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

struct CUstream_st {
  unsigned int flags;
};
struct CUevent_st {
  unsigned int flags;
  bool recorded;
  std::chrono::steady_clock::time_point time;
};

namespace {

constexpr size_t kGlobalMemory = size_t(80) << 30;
constexpr int kDefaultDynamicShared = 48 * 1024;
constexpr int kMaxDynamicSharedOptin = 232448;

struct State {
  std::mutex mu;
  std::map<uintptr_t, size_t> allocations;  // base address -> size
  size_t allocated = 0;
  std::set<const CUstream_st*> streams;
  std::set<const CUevent_st*> events;
  std::map<const void*, int> max_dynamic_shared;
};

State& state() {
  static State* s = new State;  // never destroyed: kernels may still free at exit
  return *s;
}

thread_local cudaError_t t_last_error = cudaSuccess;
thread_local int t_device = 0;

cudaError_t fail(cudaError_t err) {
  t_last_error = err;
  return err;
}

bool builtin_stream(cudaStream_t s) {
  return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread;
}

// Whether [p, p + count) lies inside one live allocation (caller holds mu).
bool inside_allocation(const State& st, const void* p, size_t count) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  auto it = st.allocations.upper_bound(addr);
  if (it == st.allocations.begin()) return false;
  --it;
  return addr >= it->first && addr - it->first <= it->second && count <= it->second - (addr - it->first);
}

bool is_device_pointer(const State& st, const void* p) { return inside_allocation(st, p, 0); }

cudaError_t check_copy(const void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return cudaErrorInvalidMemcpyDirection;
  if (count == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return cudaErrorInvalidValue;
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyDefault) {
    dst_device = is_device_pointer(st, dst);
    src_device = is_device_pointer(st, src);
  }
  if (dst_device && !inside_allocation(st, dst, count)) return cudaErrorInvalidValue;
  if (src_device && !inside_allocation(st, src, count)) return cudaErrorInvalidValue;
  return cudaSuccess;
}

}  // namespace

namespace tfg::simt {

bool stream_is_valid(cudaStream_t stream) {
  if (builtin_stream(stream)) return true;
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  return st.streams.count(stream) != 0;
}

int max_dynamic_shared_bytes(const void* func) {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  const auto it = st.max_dynamic_shared.find(func);
  return it == st.max_dynamic_shared.end() ? kDefaultDynamicShared : it->second;
}

size_t live_allocations() {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  return st.allocations.size();
}

}  // namespace tfg::simt

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return fail(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  t_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return fail(cudaErrorInvalidValue);
  *device = t_device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof(*prop));
  std::strncpy(prop->name, "tensorforge SIMT emulation (sm_90 limits, runs on the CPU)",
               sizeof(prop->name) - 1);
  prop->totalGlobalMem = kGlobalMemory;
  prop->sharedMemPerBlock = kDefaultDynamicShared;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->memPitch = 2147483647;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024; prop->maxThreadsDim[1] = 1024; prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647; prop->maxGridSize[1] = 65535; prop->maxGridSize[2] = 65535;
  prop->totalConstMem = 65536;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 132;
  prop->l2CacheSize = 50 * 1024 * 1024;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->concurrentKernels = 1;
  prop->asyncEngineCount = 3;
  prop->unifiedAddressing = 1;
  prop->memoryBusWidth = 5120;
  prop->sharedMemPerMultiprocessor = 233472;
  prop->regsPerMultiprocessor = 65536;
  prop->sharedMemPerBlockOptin = kMaxDynamicSharedOptin;
  prop->maxBlocksPerMultiProcessor = 32;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  cudaDeviceProp p;
  cudaGetDeviceProperties(&p, 0);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *value = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *value = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *value = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *value = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *value = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *value = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(p.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(p.sharedMemPerBlockOptin); break;
    default: return fail(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (version == nullptr) return fail(cudaErrorInvalidValue);
  *version = 13000;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version) { return cudaRuntimeGetVersion(version); }

cudaError_t cudaGetLastError() {
  const cudaError_t err = t_last_error;
  t_last_error = cudaSuccess;
  return err;
}

cudaError_t cudaPeekAtLastError() { return t_last_error; }

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unrecognized error code";
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define TFG_SIMT_NAME(e) case e: return #e;
    TFG_SIMT_NAME(cudaSuccess)
    TFG_SIMT_NAME(cudaErrorInvalidValue)
    TFG_SIMT_NAME(cudaErrorMemoryAllocation)
    TFG_SIMT_NAME(cudaErrorInitializationError)
    TFG_SIMT_NAME(cudaErrorInvalidConfiguration)
    TFG_SIMT_NAME(cudaErrorInvalidSymbol)
    TFG_SIMT_NAME(cudaErrorInvalidDevicePointer)
    TFG_SIMT_NAME(cudaErrorInvalidMemcpyDirection)
    TFG_SIMT_NAME(cudaErrorInsufficientDriver)
    TFG_SIMT_NAME(cudaErrorInvalidDeviceFunction)
    TFG_SIMT_NAME(cudaErrorNoDevice)
    TFG_SIMT_NAME(cudaErrorInvalidDevice)
    TFG_SIMT_NAME(cudaErrorNoKernelImageForDevice)
    TFG_SIMT_NAME(cudaErrorInvalidResourceHandle)
    TFG_SIMT_NAME(cudaErrorNotReady)
    TFG_SIMT_NAME(cudaErrorIllegalAddress)
    TFG_SIMT_NAME(cudaErrorLaunchOutOfResources)
    TFG_SIMT_NAME(cudaErrorLaunchFailure)
    TFG_SIMT_NAME(cudaErrorNotSupported)
    TFG_SIMT_NAME(cudaErrorUnknown)
#undef TFG_SIMT_NAME
  }
  return "unrecognized error code";
}

cudaError_t cudaMalloc(void** ptr, size_t size) {
  if (ptr == nullptr) return fail(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (size == 0) return cudaSuccess;
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  if (size > kGlobalMemory - st.allocated) return fail(cudaErrorMemoryAllocation);
  void* p = nullptr;
  if (posix_memalign(&p, 256, size) != 0) return fail(cudaErrorMemoryAllocation);
  st.allocations.emplace(reinterpret_cast<uintptr_t>(p), size);
  st.allocated += size;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  const auto it = st.allocations.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == st.allocations.end()) return fail(cudaErrorInvalidValue);
  st.allocated -= it->second;
  st.allocations.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  if (ptr == nullptr) return fail(cudaErrorInvalidValue);
  *ptr = std::malloc(size == 0 ? 1 : size);
  return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  if (free == nullptr || total == nullptr) return fail(cudaErrorInvalidValue);
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  *total = kGlobalMemory;
  *free = kGlobalMemory - st.allocated;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  const cudaError_t err = check_copy(dst, src, count, kind);
  if (err != cudaSuccess) return fail(err);
  if (count) std::memmove(dst, src, count);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (!tfg::simt::stream_is_valid(stream)) return fail(cudaErrorInvalidResourceHandle);
  return cudaMemcpy(dst, src, count, kind);
}

cudaError_t cudaMemset(void* ptr, int value, size_t count) {
  if (count == 0) return cudaSuccess;
  {
    State& st = state();
    std::lock_guard<std::mutex> lock(st.mu);
    if (ptr == nullptr || !inside_allocation(st, ptr, count)) return fail(cudaErrorInvalidValue);
  }
  std::memset(ptr, value, count);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream) {
  if (!tfg::simt::stream_is_valid(stream)) return fail(cudaErrorInvalidResourceHandle);
  return cudaMemset(ptr, value, count);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (stream == nullptr || flags > cudaStreamNonBlocking) return fail(cudaErrorInvalidValue);
  auto* s = new CUstream_st{flags};
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  st.streams.insert(s);
  *stream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (builtin_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  if (st.streams.erase(stream) == 0) return fail(cudaErrorInvalidResourceHandle);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  return tfg::simt::stream_is_valid(stream) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }

namespace {

bool event_is_valid(cudaEvent_t event) {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  return event != nullptr && st.events.count(event) != 0;
}

}  // namespace

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  if (!tfg::simt::stream_is_valid(stream) || !event_is_valid(event))
    return fail(cudaErrorInvalidResourceHandle);
  if (flags != 0) return fail(cudaErrorInvalidValue);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr || flags > (cudaEventBlockingSync | cudaEventDisableTiming | 0x04))
    return fail(cudaErrorInvalidValue);
  auto* e = new CUevent_st{flags, false, {}};
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  st.events.insert(e);
  *event = e;
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  if (event == nullptr || st.events.erase(event) == 0) return fail(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!event_is_valid(event) || !tfg::simt::stream_is_valid(stream))
    return fail(cudaErrorInvalidResourceHandle);
  event->recorded = true;
  event->time = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return event_is_valid(event) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return fail(cudaErrorInvalidValue);
  if (!event_is_valid(start) || !event_is_valid(end)) return fail(cudaErrorInvalidResourceHandle);
  if ((start->flags | end->flags) & cudaEventDisableTiming) return fail(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (func == nullptr) return fail(cudaErrorInvalidDeviceFunction);
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout)
    return value >= -1 && value <= 100 ? cudaSuccess : fail(cudaErrorInvalidValue);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > kMaxDynamicSharedOptin)
    return fail(cudaErrorInvalidValue);
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  st.max_dynamic_shared[func] = value;
  return cudaSuccess;
}
