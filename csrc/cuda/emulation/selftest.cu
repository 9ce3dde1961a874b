// Test-only kernels for the SIMT emulation's own tests (selftest.h). Each is
// written as ordinary CUDA; some carry a planted bug (a missing or divergent
// __syncthreads, a shuffle over a partial warp) that the emulation must catch.
#include "cuda/emulation/selftest.h"

#include <cmath>
#include <functional>
#include <map>

#include "core/error.h"
#include "cuda/cuda_check.h"
#include "cuda/device.h"
#include "cuda/launch.h"

namespace tfg::simt::selftest {

namespace {

template <class T>
struct DeviceVector {
  T* p = nullptr;
  size_t n = 0;
  explicit DeviceVector(size_t count, const std::vector<double>* init = nullptr) : n(count) {
    TFG_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
    std::vector<T> host(n, T(0));
    if (init)
      for (size_t i = 0; i < n && i < init->size(); ++i) host[i] = static_cast<T>((*init)[i]);
    TFG_CUDA_CHECK(cudaMemcpy(p, host.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  DeviceVector(const DeviceVector&) = delete;
  DeviceVector& operator=(const DeviceVector&) = delete;
  ~DeviceVector() { cudaFree(p); }
  std::vector<double> get() const {
    std::vector<T> host(n);
    TFG_CUDA_CHECK(cudaMemcpy(host.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return std::vector<double>(host.begin(), host.end());
  }
};

size_t threads_of(dim3 grid, dim3 block) {
  return size_t(grid.x) * grid.y * grid.z * block.x * block.y * block.z;
}

// --- Block reductions in shared memory (blockDim.x a power of 2, <= 1024). ---

__global__ void block_sum(const float* in, float* out) {
  __shared__ float s[1024];
  const unsigned t = threadIdx.x;
  s[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

// Planted bug: no __syncthreads() between the loads and the first step of the
// reduction. The emulation runs each thread until it blocks, in thread order,
// so thread t < blockDim.x/2 always adds s[t + stride] before thread
// t + stride has stored it (still 0 from the first phase): the block sums the
// first half of its elements only, on every run.
__global__ void block_sum_missing_sync(const float* in, float* out) {
  __shared__ float s[1024];
  const unsigned t = threadIdx.x;
  s[t] = 0.0f;
  __syncthreads();
  s[t] = in[blockIdx.x * blockDim.x + t];
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

// --- Planted barrier and warp misuse (each must be reported, not hang). ---

__global__ void divergent_exit(float* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
    out[threadIdx.x] = 1.0f;
  }
}

__global__ void divergent_sites(float* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
    out[threadIdx.x] = 1.0f;
  } else {
    __syncthreads();
    out[threadIdx.x] = 2.0f;
  }
}

__global__ void partial_warp_shuffle(float* out) {
  float v = static_cast<float>(threadIdx.x);
  if (threadIdx.x % 32 < 16) v = __shfl_sync(0xffffffffu, v, 0);
  out[threadIdx.x] = v;
}

__global__ void shuffle_missing_lanes(float* out) {
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, static_cast<float>(threadIdx.x), 1);
}

__global__ void shuffle_mask_excludes_caller(float* out) {
  out[threadIdx.x] = __shfl_sync(0x1u, static_cast<float>(threadIdx.x), 0);
}

// --- Warp shuffles and votes (blockDim.x a multiple of 32). ---

constexpr int kWarpOpsColumns = 16;

__global__ void warp_ops(const float* in, double* out) {
  const unsigned t = threadIdx.x, lane = t % 32;
  const float v = in[t];
  const unsigned full = 0xffffffffu;
  double* o = out + t * kWarpOpsColumns;
  o[0] = __shfl_sync(full, v, static_cast<int>((lane * 7 + 3) % 32));
  o[1] = __shfl_sync(full, v, 3, 8);
  o[2] = __shfl_up_sync(full, v, 3);
  o[3] = __shfl_up_sync(full, v, 5, 16);
  o[4] = __shfl_down_sync(full, v, 4);
  o[5] = __shfl_down_sync(full, v, 2, 8);
  o[6] = __shfl_xor_sync(full, v, 5);
  o[7] = __shfl_xor_sync(full, v, 12, 8);
  o[8] = __ballot_sync(full, v > 0.0f);
  o[9] = __any_sync(full, v > 2.0f);
  o[10] = __all_sync(full, v > -3.0f);
  float sum = v;
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(full, sum, offset);
  o[11] = sum;
  // Two half-warps, each a collective of its own.
  const unsigned half = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  o[12] = __shfl_xor_sync(half, v, 1);
  o[13] = __ballot_sync(half, v > 0.0f);
  __syncwarp();
  o[14] = __shfl_down_sync(full, static_cast<double>(v) * 1e10 + 0.25, 1);
  const int ilane = static_cast<int>(lane);
  o[15] = __shfl_sync(full, ilane * ilane - 100, 31 - ilane);
}

__global__ void barrier_predicates(const float* in, double* out) {
  const float v = in[blockIdx.x * blockDim.x + threadIdx.x];
  const int count = __syncthreads_count(v > 0.0f);
  const int all = __syncthreads_and(v > -3.0f);
  const int any = __syncthreads_or(v > 2.0f);
  if (threadIdx.x == 0) {
    out[blockIdx.x * 3 + 0] = count;
    out[blockIdx.x * 3 + 1] = all;
    out[blockIdx.x * 3 + 2] = any;
  }
}

// --- Atomics across blocks (which the emulation runs on several OS threads). ---

constexpr int kAtomicsOutputs = 10;

__global__ void atomics(float* f, double* d, int* i, unsigned* u, unsigned long long* ull) {
  const unsigned gid = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(&f[0], 1.0f);
  atomicAdd(&d[0], 0.5 * gid);
  atomicAdd(&i[0], static_cast<int>(gid));
  atomicMax(&i[1], static_cast<int>(gid));
  atomicMin(&i[2], -static_cast<int>(gid));
  int old = 0;
  for (;;) {  // an increment made of compare-and-swap
    const int seen = atomicCAS(&i[3], old, old + 1);
    if (seen == old) break;
    old = seen;
  }
  atomicInc(&u[0], 9u);
  atomicOr(&u[1], 1u << (gid % 32));
  atomicSub(&u[2], 1u);
  atomicAdd(&ull[0], 1ull << 33);
}

// The last block to finish adds up the partial sums of all blocks.
__global__ void last_block_sum(const float* in, float* partial, unsigned* done, float* out) {
  __shared__ float s[1024];
  __shared__ bool last;
  const unsigned t = threadIdx.x;
  s[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  if (t == 0) {
    partial[blockIdx.x] = s[0];
    __threadfence();
    last = atomicInc(done, gridDim.x) == gridDim.x - 1;
  }
  __syncthreads();
  if (last && t == 0) {
    float total = 0.0f;
    for (unsigned b = 0; b < gridDim.x; ++b) total += partial[b];
    out[0] = total;
  }
}

// --- Dynamic shared memory: reverse each block's elements. ---

__global__ void dynamic_reverse(const float* in, float* out) {
  TFG_DYNAMIC_SHARED(float, buf);
  const unsigned t = threadIdx.x, base = blockIdx.x * blockDim.x;
  out[2 * (base + t) + 1] = buf[t];  // before any write: the poison (NaN)
  buf[t] = in[base + t];
  __syncthreads();
  out[2 * (base + t)] = buf[blockDim.x - 1 - t];
}

// Planted bug for tools/asan_emulation.sh only: the last thread reads one
// element past the input (AddressSanitizer must report it; never run it in
// an ordinary build).
__global__ void planted_overrun(const float* in, float* out) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  out[i] = in[i + 1];
}

// --- Index arithmetic on 3-D grids and blocks. ---

__global__ void index_map(double* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  double* o = out + (size_t(block) * blockDim.x * blockDim.y * blockDim.z + thread) * 12;
  o[0] = threadIdx.x; o[1] = threadIdx.y; o[2] = threadIdx.z;
  o[3] = blockIdx.x; o[4] = blockIdx.y; o[5] = blockIdx.z;
  o[6] = blockDim.x; o[7] = blockDim.y; o[8] = blockDim.z;
  o[9] = gridDim.x; o[10] = gridDim.y; o[11] = gridDim.z;
}

using Test = std::function<std::vector<double>(const std::vector<double>&, dim3, dim3, size_t)>;

template <void (*Kernel)(const float*, float*)>
std::vector<double> per_block(const std::vector<double>& in, dim3 grid, dim3 block, size_t smem) {
  DeviceVector<float> x(threads_of(grid, block), &in), out(size_t(grid.x) * grid.y * grid.z);
  cuda::launch(Kernel, grid, block, smem, nullptr, x.p, out.p);
  return out.get();
}

template <void (*Kernel)(float*)>
std::vector<double> per_thread(const std::vector<double>&, dim3 grid, dim3 block, size_t smem) {
  DeviceVector<float> out(threads_of(grid, block));
  cuda::launch(Kernel, grid, block, smem, nullptr, out.p);
  return out.get();
}

const std::map<std::string, Test>& tests() {
  static const std::map<std::string, Test> t = {
      {"block_sum", per_block<block_sum>},
      {"block_sum_missing_sync", per_block<block_sum_missing_sync>},
      {"divergent_exit", per_thread<divergent_exit>},
      {"divergent_sites", per_thread<divergent_sites>},
      {"partial_warp_shuffle", per_thread<partial_warp_shuffle>},
      {"shuffle_missing_lanes", per_thread<shuffle_missing_lanes>},
      {"shuffle_mask_excludes_caller", per_thread<shuffle_mask_excludes_caller>},
      {"warp_ops",
       [](const std::vector<double>& in, dim3 grid, dim3 block, size_t smem) {
         DeviceVector<float> x(threads_of(grid, block), &in);
         DeviceVector<double> out(threads_of(grid, block) * kWarpOpsColumns);
         cuda::launch(warp_ops, grid, block, smem, nullptr, x.p, out.p);
         return out.get();
       }},
      {"barrier_predicates",
       [](const std::vector<double>& in, dim3 grid, dim3 block, size_t smem) {
         DeviceVector<float> x(threads_of(grid, block), &in);
         DeviceVector<double> out(size_t(grid.x) * 3);
         cuda::launch(barrier_predicates, grid, block, smem, nullptr, x.p, out.p);
         return out.get();
       }},
      {"atomics",
       [](const std::vector<double>&, dim3 grid, dim3 block, size_t smem) {
         const std::vector<double> init_i{0, -1, 1, 0}, init_u{0, 0, 0};
         DeviceVector<float> f(1);
         DeviceVector<double> d(1);
         DeviceVector<int> i(4, &init_i);
         DeviceVector<unsigned> u(3, &init_u);
         DeviceVector<unsigned long long> ull(1);
         cuda::launch(atomics, grid, block, smem, nullptr, f.p, d.p, i.p, u.p, ull.p);
         std::vector<double> out;
         for (const auto& part : {f.get(), d.get(), i.get(), u.get(), ull.get()})
           out.insert(out.end(), part.begin(), part.end());
         return out;
       }},
      {"last_block_sum",
       [](const std::vector<double>& in, dim3 grid, dim3 block, size_t smem) {
         DeviceVector<float> x(threads_of(grid, block), &in), partial(grid.x), out(1);
         DeviceVector<unsigned> done(1);
         cuda::launch(last_block_sum, grid, block, smem, nullptr, x.p, partial.p, done.p, out.p);
         return out.get();
       }},
      {"dynamic_reverse",
       [](const std::vector<double>& in, dim3 grid, dim3 block, size_t smem) {
         DeviceVector<float> x(threads_of(grid, block), &in), out(2 * threads_of(grid, block));
         cuda::launch(dynamic_reverse, grid, block, smem, nullptr, x.p, out.p);
         return out.get();
       }},
      {"dynamic_reverse_optin",
       [](const std::vector<double>& in, dim3 grid, dim3 block, size_t smem) {
         TFG_CUDA_CHECK(cudaFuncSetAttribute(dynamic_reverse, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(smem)));
         DeviceVector<float> x(threads_of(grid, block), &in), out(2 * threads_of(grid, block));
         cuda::launch(dynamic_reverse, grid, block, smem, nullptr, x.p, out.p);
         TFG_CUDA_CHECK(cudaFuncSetAttribute(dynamic_reverse, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             48 * 1024));
         return out.get();
       }},
      {"planted_overrun",
       [](const std::vector<double>& in, dim3 grid, dim3 block, size_t smem) {
         DeviceVector<float> x(threads_of(grid, block), &in), out(threads_of(grid, block));
         cuda::launch(planted_overrun, grid, block, smem, nullptr, x.p, out.p);
         return out.get();
       }},
      {"index_map",
       [](const std::vector<double>&, dim3 grid, dim3 block, size_t smem) {
         DeviceVector<double> out(threads_of(grid, block) * 12);
         cuda::launch(index_map, grid, block, smem, nullptr, out.p);
         return out.get();
       }},
  };
  return t;
}

}  // namespace

std::vector<double> run(const std::string& name, const std::vector<double>& input, dim3 grid, dim3 block,
                        size_t smem_bytes) {
  const auto it = tests().find(name);
  TFG_CHECK_VALUE(it != tests().end(), "_simt_selftest: no test kernel named '", name, "'");
  return it->second(input, grid, block, smem_bytes);
}

std::vector<std::string> names() {
  std::vector<std::string> out;
  for (const auto& kv : tests()) out.push_back(kv.first);
  return out;
}

}  // namespace tfg::simt::selftest
