// Hand-written CUDA softmax / log_softmax, forward and backward, float and
// double, along any dimension of a C-contiguous (outer, n, inner) tensor.
//
// Three kernel shapes share one body (forward_body / backward_body), written
// against a "team" (reduce_team.cuh, shared with cross_entropy.cu) that owns
// one reduction: the elements of the row it reads (start, step) and an
// all-reduce of a per-thread partial (max or sum):
//   - WarpRow   (inner == 1, n <= 1024): one warp per row, 4 rows per block,
//                reduction by xor shuffles (every lane ends with the result);
//   - BlockRow  (inner == 1, n > 1024): one block of 512 threads per row,
//                shuffles within warps, then the 16 warp results through
//                shared memory;
//   - ColTeam   (inner > 1): a block of 32 x BY threads takes 32 adjacent
//                columns (consecutive threadIdx.x: coalesced), the BY
//                threads of a column split n and combine through shared
//                memory.
// Passes (as the CPU kernels): max; sum of exp(x - max); the output
// (exp(x - max) * (1 / sum), or (x - max) - log(sum)). Two reduction passes
// rather than the online max/sum: the second read of the row comes from
// L1/L2, and the online update needs care with -inf (exp(-inf - -inf) is NaN).
// Every reduction has a fixed order for a given shape: results are
// deterministic (no atomics).
//
// Note [softmax NaN]: fmax drops NaN, so a row holding NaN may get a finite
// max; exp(NaN - m) is NaN, so its sum and every output is NaN anyway, as on
// the CPU and in PyTorch. A row of -inf or holding +inf gives x - m = NaN.
#include "ops/softmax/cuda/softmax_cuda.h"

#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "cuda/launch.h"
#include "ops/softmax/cuda/reduce_team.cuh"

namespace tfg::cuda {

namespace {

using namespace reduce;

constexpr int64_t kMaxGrid = 65535 * 64;  // grid-stride loops beyond this many blocks

// Softmax of one row or column of n elements x[i * stride] -> y[i * stride].
// `active` is false for the padding threads of a partial column block: they
// load nothing and store nothing but take part in the reductions.
template <class T, class Team>
__device__ void forward_body(const Team& team, const T* x, T* y, int64_t n, int64_t stride,
                             bool active, bool log) {
  T m = neg_inf<T>();
  if (active)
    for (int64_t i = team.start; i < n; i += team.step) m = dmax(m, x[i * stride]);
  m = team.allreduce(m, MaxOp{});
  T s = T(0);
  if (active)
    for (int64_t i = team.start; i < n; i += team.step) s += dexp(x[i * stride] - m);
  s = team.allreduce(s, SumOp{});
  if (!active) return;
  if (log) {
    const T c = dlog(s);
    for (int64_t i = team.start; i < n; i += team.step) y[i * stride] = (x[i * stride] - m) - c;
  } else {
    const T inv = T(1) / s;
    for (int64_t i = team.start; i < n; i += team.step) y[i * stride] = dexp(x[i * stride] - m) * inv;
  }
}

// softmax: gx = p * (g - sum(g * p)); log_softmax: gx = g - p * sum(g), with p
// the probabilities: y (exp(y) when log) or, without y, exp(x - m) / s
// recomputed from x first (two more reductions).
template <class T, class Team>
__device__ void backward_body(const Team& team, const T* g, const T* y, const T* x, T* gx, int64_t n,
                              int64_t stride, bool active, bool log) {
  T m = T(0), inv = T(1);
  if (!y) {
    T mm = neg_inf<T>();
    if (active)
      for (int64_t i = team.start; i < n; i += team.step) mm = dmax(mm, x[i * stride]);
    m = team.allreduce(mm, MaxOp{});
    T s = T(0);
    if (active)
      for (int64_t i = team.start; i < n; i += team.step) s += dexp(x[i * stride] - m);
    inv = T(1) / team.allreduce(s, SumOp{});
  }
  auto prob = [&](int64_t i) -> T {
    if (!y) return dexp(x[i * stride] - m) * inv;
    return log ? dexp(y[i * stride]) : y[i * stride];
  };
  T d = T(0);
  if (active) {
    if (log)
      for (int64_t i = team.start; i < n; i += team.step) d += g[i * stride];
    else
      for (int64_t i = team.start; i < n; i += team.step) d += g[i * stride] * prob(i);
  }
  d = team.allreduce(d, SumOp{});
  if (!active) return;
  for (int64_t i = team.start; i < n; i += team.step) {
    const T gi = g[i * stride], p = prob(i);
    gx[i * stride] = log ? gi - p * d : p * (gi - d);
  }
}

template <class T>
struct Args {
  const T* x;  // forward input, or backward's x (may be null when y is given)
  const T* g;  // backward only
  const T* y;  // backward: forward output or null
  T* out;
  int64_t outer, n, inner;
  bool log;
};

template <class T, bool kBackward>
__global__ void __launch_bounds__(32 * kWarpRowsPerBlock) warp_rows_kernel(const Args<T> a) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarpRowsPerBlock + threadIdx.x / 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarpRowsPerBlock;
  const WarpRow team;
  // A whole warp skips a row past the end together: no shuffle is left waiting.
  for (int64_t row = first; row < a.outer; row += step) {
    const int64_t off = row * a.n;
    if (kBackward)
      backward_body(team, a.g + off, a.y ? a.y + off : nullptr, a.x ? a.x + off : nullptr, a.out + off,
                    a.n, 1, true, a.log);
    else
      forward_body(team, a.x + off, a.out + off, a.n, 1, true, a.log);
  }
}

template <class T, bool kBackward>
__global__ void __launch_bounds__(kBlockRowThreads) block_rows_kernel(const Args<T> a) {
  __shared__ T scratch[kBlockRowWarps];
  const BlockRow<T> team(scratch);
  for (int64_t row = blockIdx.x; row < a.outer; row += gridDim.x) {
    const int64_t off = row * a.n;
    if (kBackward)
      backward_body(team, a.g + off, a.y ? a.y + off : nullptr, a.x ? a.x + off : nullptr, a.out + off,
                    a.n, 1, true, a.log);
    else
      forward_body(team, a.x + off, a.out + off, a.n, 1, true, a.log);
  }
}

// Columns j in [0, outer * inner): slice j / inner, column j % inner.
template <class T, bool kBackward>
__global__ void __launch_bounds__(kColX * kColMaxY) cols_kernel(const Args<T> a) {
  __shared__ T scratch[kColMaxY * kColX];
  const ColTeam<T> team(scratch);
  const int64_t cols = a.outer * a.inner;
  const int64_t blocks = (cols + kColX - 1) / kColX;
  for (int64_t b = blockIdx.x; b < blocks; b += gridDim.x) {
    const int64_t j = b * kColX + threadIdx.x;
    const bool active = j < cols;
    const int64_t off = active ? (j / a.inner) * a.n * a.inner + j % a.inner : 0;
    if (kBackward)
      backward_body(team, a.g + off, a.y ? a.y + off : nullptr, a.x ? a.x + off : nullptr, a.out + off,
                    a.n, a.inner, active, a.log);
    else
      forward_body(team, a.x + off, a.out + off, a.n, a.inner, active, a.log);
  }
}

unsigned grid_for(int64_t blocks) {
  return static_cast<unsigned>(blocks < kMaxGrid ? blocks : kMaxGrid);
}

template <class T, bool kBackward>
void run(const Args<T>& a, cudaStream_t stream) {
  if (a.inner == 1 && a.n <= kWarpRowMaxN) {
    launch(warp_rows_kernel<T, kBackward>, dim3(grid_for((a.outer + kWarpRowsPerBlock - 1) / kWarpRowsPerBlock)),
           dim3(32 * kWarpRowsPerBlock), 0, stream, a);
  } else if (a.inner == 1) {
    launch(block_rows_kernel<T, kBackward>, dim3(grid_for(a.outer)), dim3(kBlockRowThreads), 0, stream, a);
  } else {
    launch(cols_kernel<T, kBackward>, dim3(grid_for((a.outer * a.inner + kColX - 1) / kColX)),
           dim3(kColX, col_team_y(a.n)), 0, stream, a);
  }
}

void check_layout(const char* op, const ReduceLayout& l) {
  TFG_CHECK_VALUE(l.outer >= 0 && l.n >= 0 && l.inner >= 0, op, ": negative size (outer=", l.outer,
                  ", n=", l.n, ", inner=", l.inner, ")");
}

}  // namespace

template <class T>
void softmax_forward(const T* x, T* y, const ReduceLayout& l, bool log, cudaStream_t stream) {
  check_layout("cuda::softmax_forward", l);
  if (l.outer == 0 || l.n == 0 || l.inner == 0) return;
  TFG_CHECK_VALUE(x != nullptr && y != nullptr, "cuda::softmax_forward: x or y is null");
  Args<T> a{};
  a.x = x; a.out = y; a.outer = l.outer; a.n = l.n; a.inner = l.inner; a.log = log;
  run<T, false>(a, stream);
}

template <class T>
void softmax_backward(const T* g, const T* y, const T* x, T* gx, const ReduceLayout& l, bool log,
                      cudaStream_t stream) {
  check_layout("cuda::softmax_backward", l);
  if (l.outer == 0 || l.n == 0 || l.inner == 0) return;
  TFG_CHECK_VALUE(g != nullptr && gx != nullptr && (y != nullptr || x != nullptr),
                  "cuda::softmax_backward: grad_output, grad_x, or both output and x are null");
  Args<T> a{};
  a.g = g; a.y = y; a.x = x; a.out = gx; a.outer = l.outer; a.n = l.n; a.inner = l.inner; a.log = log;
  run<T, true>(a, stream);
}

template void softmax_forward<float>(const float*, float*, const ReduceLayout&, bool, cudaStream_t);
template void softmax_forward<double>(const double*, double*, const ReduceLayout&, bool, cudaStream_t);
template void softmax_backward<float>(const float*, const float*, const float*, float*,
                                      const ReduceLayout&, bool, cudaStream_t);
template void softmax_backward<double>(const double*, const double*, const double*, double*,
                                       const ReduceLayout&, bool, cudaStream_t);

}  // namespace tfg::cuda
