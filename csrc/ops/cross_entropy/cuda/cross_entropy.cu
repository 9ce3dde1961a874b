// Hand-written CUDA cross-entropy with class-index targets, fused with the
// log-softmax, forward and backward, float and double; the algebra of the CPU
// kernels (README.md, Note [cross-entropy gradient]).
//
// One team per (n, inner) position reduces along the C classes, with the
// teams of the softmax kernels (ops/softmax/cuda/reduce_team.cuh): a warp per
// row for C <= 1024, a block of 512 per longer row, 32-column blocks for
// (N, C, d1, ...) inputs. Forward per position: max m; ls = log(sum exp(x -
// m)); with smoothing, smooth = sum_c w[c] (m - x[c]); the loss
//   (1 - eps) w[t] (ls - (x[t] - m)) + eps / C (smooth + ls sum(w)),
// 0 for an ignored target, written to `loss`. The probabilities are never
// stored. The reductions run for every position of a team, ignored or not
// (a column block mixes both), so every thread reaches every barrier.
//
// mean / sum: a second kernel, one block of 512 threads, adds the losses in
// double (each thread a strided run, then a fixed tree in shared memory) and
// writes sum or sum / denom: deterministic, no atomics. It reads N * inner
// losses once with one block: for large batches a two-level reduction would
// use more of the GPU, but the loss vector is C times smaller than the
// logits, so it stays a small part of the op.
//
// Backward per position, with scale = go / divisor and p = softmax(x):
//   gx[k] = a exp(x[k] - m) - b w[k] - [k == t] scale (1 - eps) w[t],
//   a = scale ((1 - eps) w[t] + eps sum(w) / C) / sum exp(x - m), b = scale eps / C;
// zeros for an ignored target. Each element is written once by the thread
// that owns it.
#include "ops/cross_entropy/cuda/cross_entropy_cuda.h"

#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "cuda/launch.h"
#include "ops/softmax/cuda/reduce_team.cuh"

namespace tfg::cuda {

namespace {

using namespace reduce;

constexpr int64_t kMaxGrid = 65535 * 64;  // grid-stride loops beyond this many blocks
constexpr int kSumThreads = 512;

template <class T>
struct Args {
  const T* x;
  const int64_t* t;
  CrossEntropyParams<T> p;  // p.weight: device pointer or null
  int64_t outer, n, inner;  // n = C
  T* loss;                  // forward
  const T* go;              // backward
  int64_t go_stride;
  T divisor;
  T* gx;
};

// The loss of one position: x[i * stride], i < n, target tt (valid when
// `active`); every thread of the team returns it.
template <class T, class Team>
__device__ T forward_body(const Team& team, const Args<T>& a, const T* x, int64_t stride, int64_t tt,
                          bool active) {
  const int64_t n = a.n;
  const T* w = a.p.weight;
  T m = neg_inf<T>();
  if (active)
    for (int64_t i = team.start; i < n; i += team.step) m = dmax(m, x[i * stride]);
  m = team.allreduce(m, MaxOp{});
  T s = T(0);
  if (active)
    for (int64_t i = team.start; i < n; i += team.step) s += dexp(x[i * stride] - m);
  const T ls = dlog(team.allreduce(s, SumOp{}));
  const T eps = a.p.smoothing;
  T smooth = T(0);
  if (eps != T(0)) {  // the same for every thread: every one reaches the barrier
    if (active)
      for (int64_t i = team.start; i < n; i += team.step) smooth += (w ? w[i] : T(1)) * (m - x[i * stride]);
    smooth = team.allreduce(smooth, SumOp{});
  }
  if (!active || tt == a.p.ignore_index) return T(0);
  const T wt = w ? w[tt] : T(1);
  const T nll = wt * (ls - (x[tt * stride] - m));
  if (eps == T(0)) return nll;
  return (1 - eps) * nll + eps / static_cast<T>(n) * (smooth + ls * a.p.weight_sum);
}

template <class T, class Team>
__device__ void backward_body(const Team& team, const Args<T>& a, const T* x, T* gx, int64_t stride,
                              int64_t tt, T go, bool active) {
  const int64_t n = a.n;
  const T* w = a.p.weight;
  T m = neg_inf<T>();
  if (active)
    for (int64_t i = team.start; i < n; i += team.step) m = dmax(m, x[i * stride]);
  m = team.allreduce(m, MaxOp{});
  T s = T(0);
  if (active)
    for (int64_t i = team.start; i < n; i += team.step) s += dexp(x[i * stride] - m);
  s = team.allreduce(s, SumOp{});
  if (!active) return;
  if (tt == a.p.ignore_index) {
    for (int64_t i = team.start; i < n; i += team.step) gx[i * stride] = T(0);
    return;
  }
  const T eps = a.p.smoothing;
  const T scale = go / a.divisor;
  const T wt = w ? w[tt] : T(1);
  const T ca = scale * ((1 - eps) * wt + eps * a.p.weight_sum / static_cast<T>(n)) / s;
  const T cb = scale * eps / static_cast<T>(n);
  for (int64_t i = team.start; i < n; i += team.step) {
    T v = ca * dexp(x[i * stride] - m) - cb * (w ? w[i] : T(1));
    if (i == tt) v -= scale * (1 - eps) * wt;
    gx[i * stride] = v;
  }
}

template <class T, bool kBackward>
__global__ void __launch_bounds__(32 * kWarpRowsPerBlock) warp_rows_kernel(const Args<T> a) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarpRowsPerBlock + threadIdx.x / 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarpRowsPerBlock;
  const WarpRow team;
  for (int64_t row = first; row < a.outer; row += step) {  // whole warps skip rows past the end
    const T* x = a.x + row * a.n;
    if (kBackward) {
      backward_body(team, a, x, a.gx + row * a.n, 1, a.t[row], a.go[row * a.go_stride], true);
    } else {
      const T l = forward_body(team, a, x, 1, a.t[row], true);
      if (team.start == 0) a.loss[row] = l;
    }
  }
}

template <class T, bool kBackward>
__global__ void __launch_bounds__(kBlockRowThreads) block_rows_kernel(const Args<T> a) {
  __shared__ T scratch[kBlockRowWarps];
  const BlockRow<T> team(scratch);
  for (int64_t row = blockIdx.x; row < a.outer; row += gridDim.x) {
    const T* x = a.x + row * a.n;
    if (kBackward) {
      backward_body(team, a, x, a.gx + row * a.n, 1, a.t[row], a.go[row * a.go_stride], true);
    } else {
      const T l = forward_body(team, a, x, 1, a.t[row], true);
      if (team.start == 0) a.loss[row] = l;
    }
  }
}

// Positions j in [0, outer * inner): sample j / inner, position j % inner.
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
    const int64_t tt = active ? a.t[j] : 0;
    if (kBackward) {
      backward_body(team, a, a.x + off, a.gx + off, a.inner, tt, active ? a.go[j * a.go_stride] : T(0),
                    active);
    } else {
      const T l = forward_body(team, a, a.x + off, a.inner, tt, active);
      if (active && threadIdx.y == 0) a.loss[j] = l;
    }
  }
}

// out[0] = sum(loss[0:count]) (/ denom when mean), added in double.
template <class T>
__global__ void __launch_bounds__(kSumThreads) sum_kernel(const T* loss, int64_t count, double denom,
                                                          bool mean, T* out) {
  __shared__ double part[kSumThreads];
  double s = 0;
  for (int64_t i = threadIdx.x; i < count; i += kSumThreads) s += static_cast<double>(loss[i]);
  part[threadIdx.x] = s;
  for (int half = kSumThreads / 2; half > 0; half >>= 1) {
    __syncthreads();
    if (static_cast<int>(threadIdx.x) < half) part[threadIdx.x] += part[threadIdx.x + half];
  }
  if (threadIdx.x == 0) out[0] = static_cast<T>(mean ? part[0] / denom : part[0]);  // 0 / 0: NaN
}

unsigned grid_for(int64_t blocks) { return static_cast<unsigned>(blocks < kMaxGrid ? blocks : kMaxGrid); }

template <class T, bool kBackward>
void run(const Args<T>& a, cudaStream_t stream) {
  if (a.inner == 1 && a.n <= kWarpRowMaxN)
    launch(warp_rows_kernel<T, kBackward>, dim3(grid_for((a.outer + kWarpRowsPerBlock - 1) / kWarpRowsPerBlock)),
           dim3(32 * kWarpRowsPerBlock), 0, stream, a);
  else if (a.inner == 1)
    launch(block_rows_kernel<T, kBackward>, dim3(grid_for(a.outer)), dim3(kBlockRowThreads), 0, stream, a);
  else
    launch(cols_kernel<T, kBackward>, dim3(grid_for((a.outer * a.inner + kColX - 1) / kColX)),
           dim3(kColX, col_team_y(a.n)), 0, stream, a);
}

void check_layout(const char* op, const ReduceLayout& l) {
  TFG_CHECK_VALUE(l.outer >= 0 && l.n >= 0 && l.inner >= 0, op, ": negative size (N=", l.outer,
                  ", C=", l.n, ", inner=", l.inner, ")");
}

}  // namespace

template <class T>
void cross_entropy_forward(const T* x, const int64_t* t, const ReduceLayout& l,
                           const CrossEntropyParams<T>& p, Reduction reduction, double denom, T* loss,
                           T* out, cudaStream_t stream) {
  check_layout("cuda::cross_entropy_forward", l);
  const int64_t count = l.outer * l.inner;
  if (count > 0) {
    // C == 0 with targets left: only ignore_index can be valid there, whose loss is 0.
    TFG_CHECK_VALUE(loss != nullptr && t != nullptr && (l.n == 0 || x != nullptr),
                    "cuda::cross_entropy_forward: input, target or loss is null");
    Args<T> a{};
    a.x = x; a.t = t; a.p = p; a.outer = l.outer; a.n = l.n; a.inner = l.inner; a.loss = loss;
    run<T, false>(a, stream);
  }
  if (reduction == Reduction::none) return;
  TFG_CHECK_VALUE(out != nullptr, "cuda::cross_entropy_forward: out is null for a reduced loss");
  launch(sum_kernel<T>, dim3(1), dim3(kSumThreads), 0, stream, static_cast<const T*>(loss), count, denom,
         reduction == Reduction::mean, out);
}

template <class T>
void cross_entropy_backward(const T* x, const int64_t* t, const ReduceLayout& l,
                            const CrossEntropyParams<T>& p, const T* go, int64_t go_stride, T divisor,
                            T* gx, cudaStream_t stream) {
  check_layout("cuda::cross_entropy_backward", l);
  if (l.outer == 0 || l.n == 0 || l.inner == 0) return;
  TFG_CHECK_VALUE(x != nullptr && t != nullptr && go != nullptr && gx != nullptr,
                  "cuda::cross_entropy_backward: input, target, grad_output or grad_input is null");
  Args<T> a{};
  a.x = x; a.t = t; a.p = p; a.outer = l.outer; a.n = l.n; a.inner = l.inner;
  a.go = go; a.go_stride = go_stride; a.divisor = divisor; a.gx = gx;
  run<T, true>(a, stream);
}

#define TFG_CE_CUDA_INSTANTIATE(T)                                                                 \
  template void cross_entropy_forward<T>(const T*, const int64_t*, const ReduceLayout&,           \
                                         const CrossEntropyParams<T>&, Reduction, double, T*, T*, \
                                         cudaStream_t);                                            \
  template void cross_entropy_backward<T>(const T*, const int64_t*, const ReduceLayout&,          \
                                          const CrossEntropyParams<T>&, const T*, int64_t, T, T*, \
                                          cudaStream_t);
TFG_CE_CUDA_INSTANTIATE(float)
TFG_CE_CUDA_INSTANTIATE(double)

}  // namespace tfg::cuda
