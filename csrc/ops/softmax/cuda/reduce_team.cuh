// Reductions along one dimension on a CUDA device, shared by the softmax
// (softmax.cu) and cross-entropy (ops/cross_entropy/cuda/cross_entropy.cu)
// kernels: a "team" of threads owns one row or column, reads the elements
// start, start + step, ... of it, and all-reduces a per-thread partial (max
// or sum) so that every thread of the team holds the result:
//   - WarpRow: a warp per row, xor shuffles;
//   - BlockRow: a block of kBlockRowThreads per row, shuffles then the warp
//     results through shared memory;
//   - ColTeam: a block of kColX columns x blockDim.y threads along n, through
//     shared memory.
// Every reduction has a fixed order for a given launch shape: deterministic.
// Every thread of a block must call allreduce the same number of times (the
// BlockRow and ColTeam versions hold barriers); threads with nothing to read
// pass the identity. Include from .cu files only.
#pragma once
#include <cmath>
#include <cstdint>

namespace tfg::cuda::reduce {

inline constexpr unsigned kFullMask = 0xffffffffu;
inline constexpr int kWarpRowsPerBlock = 4;   // WarpRow: 128 threads
inline constexpr int kBlockRowThreads = 512;  // BlockRow
inline constexpr int kBlockRowWarps = kBlockRowThreads / 32;
inline constexpr int64_t kWarpRowMaxN = 1024;
inline constexpr int kColX = 32;              // ColTeam: columns per block
inline constexpr int kColMaxY = 8;            // ColTeam: threads along n per column

__device__ inline float dexp(float v) { return expf(v); }
__device__ inline double dexp(double v) { return exp(v); }
__device__ inline float dlog(float v) { return logf(v); }
__device__ inline double dlog(double v) { return log(v); }
__device__ inline float dmax(float a, float b) { return fmaxf(a, b); }
__device__ inline double dmax(double a, double b) { return fmax(a, b); }

template <class T>
__device__ inline T neg_inf() { return -INFINITY; }

struct MaxOp {
  template <class T> __device__ T operator()(T a, T b) const { return dmax(a, b); }
};
struct SumOp {
  template <class T> __device__ T operator()(T a, T b) const { return a + b; }
};

// Xor butterfly over a full warp: every lane gets the same result, combined in
// the same order.
template <class T, class Op>
__device__ inline T warp_allreduce(T v, Op op) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = op(v, __shfl_xor_sync(kFullMask, v, off));
  return v;
}

// One warp per row.
struct WarpRow {
  int64_t start, step;
  __device__ WarpRow() : start(threadIdx.x % 32), step(32) {}
  template <class T, class Op>
  __device__ T allreduce(T v, Op op) const { return warp_allreduce(v, op); }
};

// One block (kBlockRowThreads) per row. `scratch` is kBlockRowWarps values.
template <class T>
struct BlockRow {
  int64_t start, step;
  T* scratch;
  __device__ explicit BlockRow(T* s) : start(threadIdx.x), step(kBlockRowThreads), scratch(s) {}
  template <class Op>
  __device__ T allreduce(T v, Op op) const {
    v = warp_allreduce(v, op);
    if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    T r = scratch[0];
#pragma unroll
    for (int w = 1; w < kBlockRowWarps; ++w) r = op(r, scratch[w]);
    __syncthreads();  // before the next reduction overwrites scratch
    return r;
  }
};

// Column threadIdx.x of a block's 32 columns, threadIdx.y of blockDim.y along
// n. `scratch` is kColMaxY x kColX values.
template <class T>
struct ColTeam {
  int64_t start, step;
  T* scratch;
  __device__ explicit ColTeam(T* s) : start(threadIdx.y), step(blockDim.y), scratch(s) {}
  template <class Op>
  __device__ T allreduce(T v, Op op) const {
    scratch[threadIdx.y * kColX + threadIdx.x] = v;
    __syncthreads();
    T r = scratch[threadIdx.x];
    for (unsigned y = 1; y < blockDim.y; ++y) r = op(r, scratch[y * kColX + threadIdx.x]);
    __syncthreads();
    return r;
  }
};

// Host side: blockDim.y of a ColTeam for columns of n elements (up to
// kColMaxY, a power of two no larger than n).
inline unsigned col_team_y(int64_t n) {
  unsigned by = 1;
  while (by < static_cast<unsigned>(kColMaxY) && by * 2 <= n) by *= 2;
  return by;
}

}  // namespace tfg::cuda::reduce
