// CUDA LSTM cell step, forward and backward (PyTorch's gate order i, f, g, o).
//
// Forward: gates = x w_ih^T + b_ih, then gates += hx w_hh^T + b_hh, both by
// the CUDA GEMM (the weights read transposed through their strides, the biases
// as its per-column bias), then one element-wise kernel, a thread per (row,
// unit): i, f, o = sigmoid, g = tanh of the four pre-activations, c = f c_prev +
// i g, h = o tanh(c), the activations written back over the pre-activations
// for the backward.
// Backward: the forward recomputed (gates, c), then one element-wise kernel
// turning the incoming dh, dc into the pre-activation gradients dgates (in
// place) and dc_prev; then GEMMs dx = dgates w_ih, dhx = dgates w_hh,
// dw_ih = dgates^T x, dw_hh = dgates^T hx, and the bias gradient as column
// sums of dgates (a thread per column, rows in order: deterministic).
#include "ops/lstm/cuda/lstm_cuda.h"

#include <climits>

#include "core/error.h"
#include "cuda/launch.h"
#include "ops/matmul/cuda/matmul_cuda.h"

namespace tfg::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float dexp(float x) { return expf(x); }
__device__ __forceinline__ double dexp(double x) { return exp(x); }
__device__ __forceinline__ float dtanh(float x) { return tanhf(x); }
__device__ __forceinline__ double dtanh(double x) { return tanh(x); }

// 1 / (1 + exp(-x)): exactly 0 / 1 at the ends, NaN propagates.
template <class T>
__device__ __forceinline__ T sigmoid(T x) { return T(1) / (T(1) + dexp(-x)); }

template <class T>
__global__ void __launch_bounds__(kThreads) lstm_forward_kernel(int64_t N, int64_t H, T* __restrict__ gates,
                                                                const T* __restrict__ c_prev, T* __restrict__ c,
                                                                T* __restrict__ h) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= N * H) return;
  const int64_t n = idx / H, j = idx - n * H;
  T* g = gates + n * 4 * H + j;
  const T ig = sigmoid(g[0]), fg = sigmoid(g[H]), gg = dtanh(g[2 * H]), og = sigmoid(g[3 * H]);
  const T cn = fg * c_prev[idx] + ig * gg;
  g[0] = ig; g[H] = fg; g[2 * H] = gg; g[3 * H] = og;
  c[idx] = cn;
  if (h) h[idx] = og * dtanh(cn);
}

// gates: activations in, pre-activation gradients out. dh / dc (nullable: 0)
// the incoming gradients of h and c; dc_prev the gradient of c_prev.
template <class T>
__global__ void __launch_bounds__(kThreads) lstm_backward_kernel(int64_t N, int64_t H, T* __restrict__ gates,
                                                                 const T* __restrict__ c,
                                                                 const T* __restrict__ c_prev,
                                                                 const T* __restrict__ dh,
                                                                 const T* __restrict__ dc,
                                                                 T* __restrict__ dc_prev) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= N * H) return;
  const int64_t n = idx / H, j = idx - n * H;
  T* g = gates + n * 4 * H + j;
  const T ig = g[0], fg = g[H], gg = g[2 * H], og = g[3 * H];
  const T tc = dtanh(c[idx]);
  const T gh = dh ? dh[idx] : T(0);
  const T gc = (dc ? dc[idx] : T(0)) + gh * og * (T(1) - tc * tc);
  g[0] = gc * gg * ig * (T(1) - ig);
  g[H] = gc * c_prev[idx] * fg * (T(1) - fg);
  g[2 * H] = gc * ig * (T(1) - gg * gg);
  g[3 * H] = gh * tc * og * (T(1) - og);
  dc_prev[idx] = gc * fg;
}

// out[j] = sum over rows of a[row * cols + j], rows in order.
template <class T>
__global__ void __launch_bounds__(kThreads) column_sum_kernel(const T* __restrict__ a, int64_t rows, int64_t cols,
                                                              T* __restrict__ out) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (j >= cols) return;
  T acc = 0;
  for (int64_t r = 0; r < rows; ++r) acc += a[r * cols + j];
  out[j] = acc;
}

dim3 blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  TFG_CHECK_VALUE(b <= INT_MAX, "cuda lstm_cell: ", n, " elements exceed one launch");
  return dim3(static_cast<unsigned>(b));
}

// C (m x n, row-major ldc) (+)= A B (+ bias).
template <class T>
void gemm_rm(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a, const T* b, int64_t rs_b,
             int64_t cs_b, T* c, const T* bias, bool accumulate, cudaStream_t stream) {
  GemmProblem<T> g;
  g.m = m; g.n = n; g.k = k;
  g.a = a; g.rs_a = rs_a; g.cs_a = cs_a;
  g.b = b; g.rs_b = rs_b; g.cs_b = cs_b;
  g.c = c; g.rs_c = n; g.cs_c = 1;
  g.bias = bias;
  g.accumulate = accumulate;
  gemm(g, stream);
}

template <class T>
void gates_of(const LstmCellDevice<T>& p, T* gates, cudaStream_t stream) {
  const int64_t G = 4 * p.H;
  gemm_rm(p.N, G, p.I, p.x, p.I, int64_t{1}, p.w_ih, int64_t{1}, p.I, gates, p.b_ih, false, stream);
  gemm_rm(p.N, G, p.H, p.hx, p.H, int64_t{1}, p.w_hh, int64_t{1}, p.H, gates, p.b_hh, true, stream);
}

template <class T>
void check_dims(const LstmCellDevice<T>& p) {
  TFG_CHECK_VALUE(p.N >= 0 && p.I >= 0 && p.H >= 0, "cuda lstm_cell: negative sizes N = ", p.N, ", I = ", p.I,
                  ", H = ", p.H);
}

}  // namespace

template <class T>
void lstm_cell_forward(const LstmCellDevice<T>& p, T* gates, T* h, T* c, cudaStream_t stream) {
  check_dims(p);
  if (p.N * p.H == 0) return;
  gates_of(p, gates, stream);
  launch(lstm_forward_kernel<T>, blocks_for(p.N * p.H), dim3(kThreads), 0, stream, p.N, p.H, gates, p.cx, c, h);
}

template <class T>
void lstm_cell_backward(const LstmCellDevice<T>& p, const T* grad_h, const T* grad_c, T* gates, T* c, T* dx,
                        T* dhx, T* dcx, T* dw_ih, T* dw_hh, T* db, cudaStream_t stream) {
  check_dims(p);
  const int64_t G = 4 * p.H;
  if (p.N * p.H > 0) {
    gates_of(p, gates, stream);
    launch(lstm_forward_kernel<T>, blocks_for(p.N * p.H), dim3(kThreads), 0, stream, p.N, p.H, gates, p.cx, c,
           static_cast<T*>(nullptr));
    launch(lstm_backward_kernel<T>, blocks_for(p.N * p.H), dim3(kThreads), 0, stream, p.N, p.H, gates,
           static_cast<const T*>(c), p.cx, grad_h, grad_c, dcx);
  }
  // With N * H == 0 the GEMMs below have a zero m, n or k: nothing, or zeros.
  gemm_rm(p.N, p.I, G, static_cast<const T*>(gates), G, int64_t{1}, p.w_ih, p.I, int64_t{1}, dx,
          static_cast<const T*>(nullptr), false, stream);
  gemm_rm(p.N, p.H, G, static_cast<const T*>(gates), G, int64_t{1}, p.w_hh, p.H, int64_t{1}, dhx,
          static_cast<const T*>(nullptr), false, stream);
  gemm_rm(G, p.I, p.N, static_cast<const T*>(gates), int64_t{1}, G, p.x, p.I, int64_t{1}, dw_ih,
          static_cast<const T*>(nullptr), false, stream);
  gemm_rm(G, p.H, p.N, static_cast<const T*>(gates), int64_t{1}, G, p.hx, p.H, int64_t{1}, dw_hh,
          static_cast<const T*>(nullptr), false, stream);
  if (db && G > 0)
    launch(column_sum_kernel<T>, blocks_for(G), dim3(kThreads), 0, stream, static_cast<const T*>(gates), p.N, G, db);
}

template void lstm_cell_forward<float>(const LstmCellDevice<float>&, float*, float*, float*, cudaStream_t);
template void lstm_cell_forward<double>(const LstmCellDevice<double>&, double*, double*, double*, cudaStream_t);
template void lstm_cell_backward<float>(const LstmCellDevice<float>&, const float*, const float*, float*, float*,
                                        float*, float*, float*, float*, float*, float*, cudaStream_t);
template void lstm_cell_backward<double>(const LstmCellDevice<double>&, const double*, const double*, double*,
                                         double*, double*, double*, double*, double*, double*, double*,
                                         cudaStream_t);

}  // namespace tfg::cuda
