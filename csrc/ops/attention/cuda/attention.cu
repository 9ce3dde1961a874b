// CUDA scaled_dot_product_attention, forward and backward, flash-attention style.
//
// Tiles: kBQ = 16 query rows, kBK = 32 keys, 256 threads (8 warps). In the
// score phases warp w owns query rows 2w and 2w + 1 of the tile and lane j
// key j: a score is a dot product of a q row (shared, broadcast) with a k
// row (shared; row stride padded to odd so the 32 lanes hit 32 banks), row
// max and sum are warp shuffles. Every tile lives in dynamic shared memory
// sized from E and Ev (any E; raised above 48 KiB with cudaFuncSetAttribute,
// a ValueError when beyond the device's opt-in limit).
// - forward: block (query tile, batch). Key tiles stream through shared
//   memory; online softmax (running max m, sum l, output rows rescaled by
//   exp(m - m')); the output accumulator (kBQ x Ev) is shared, each element
//   owned by one lane. Causal: key tiles from q0 + kBQ on are never loaded
//   (top-left alignment: query i sees keys j <= i).
// - backward: delta_i = dO_i . O_i (one warp per row); dq: block (query tile,
//   batch) over key tiles, p = exp(s - lse) recomputed, ds = p (dO v^T - delta),
//   dq += ds k; dk/dv: block (key tile, batch) over query tiles (causal: from
//   the tile holding query k0), dv += p^T dO, dk += ds^T q, each accumulator
//   element owned by one thread. No atomics: the results are deterministic.
// Note [masked rows]: while a row has seen only masked scores (-inf) its max
// stays -inf; exponents are then taken against 0 so masked keys give
// exp(-inf) = 0, never exp(-inf + inf). A row ending with sum 0 is written
// as 0 with lse = +inf, and its p = exp(s - inf) = 0 gives zero gradients.
#include "ops/attention/cuda/attention_cuda.h"

#include <climits>
#include <cmath>

#include "core/error.h"
#include "cuda/device.h"
#include "cuda/launch.h"

namespace tfg::cuda {

namespace {

constexpr int kBQ = 16, kBK = 32, kThreads = 256, kWarps = kThreads / 32;
constexpr int kRowsPerWarp = kBQ / kWarps;
static_assert(kBK == 32, "lane j owns key j of the tile");
static_assert(kBQ % kWarps == 0, "every warp owns the same number of rows");
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ float dexp(float x) { return expf(x); }
__device__ __forceinline__ double dexp(double x) { return exp(x); }
__device__ __forceinline__ float dlog(float x) { return logf(x); }
__device__ __forceinline__ double dlog(double x) { return log(x); }

template <class T>
__device__ __forceinline__ T inf() { return T(INFINITY); }

template <class T>
__device__ __forceinline__ T warp_max(T x) {
  for (int off = 16; off > 0; off >>= 1) {
    const T y = __shfl_xor_sync(kFull, x, off);
    x = x < y ? y : x;  // a NaN x stays (it propagates through p anyway)
  }
  return x;
}

template <class T>
__device__ __forceinline__ T warp_sum(T x) {
  for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(kFull, x, off);
  return x;
}

// Padded shared row stride (odd: lane j reading row j hits bank j).
__host__ __device__ __forceinline__ int64_t padded(int64_t n) { return n | 1; }

// The matrices of output batch b.
template <class T>
struct Head {
  const T* q;
  const T* k;
  const T* v;
  const T* mask;
};

template <class T>
__device__ __forceinline__ Head<T> head_of(const AttnDeviceProblem<T>& p, int64_t b) {
  Head<T> h;
  h.q = p.q + p.qi[b] * p.L * p.E;
  h.k = p.k + p.ki[b] * p.S * p.E;
  h.v = p.v + p.vi[b] * p.S * p.Ev;
  h.mask = p.mask ? p.mask + p.mi[b] * p.mask_mat : nullptr;
  return h;
}

// Scaled, masked score of query i (row qrow of the shared q tile) and key j
// (row krow of the shared k tile); -inf when j is out of range or masked by
// causality, and for rows past L.
template <class T>
__device__ __forceinline__ T score(const AttnDeviceProblem<T>& p, const Head<T>& h, const T* qrow,
                                   const T* krow, int64_t i, int64_t j) {
  if (i >= p.L || j >= p.S || (p.causal && j > i)) return -inf<T>();
  T acc = 0;
  for (int64_t e = 0; e < p.E; ++e) acc += qrow[e] * krow[e];
  acc *= p.scale;
  if (h.mask) acc += h.mask[i * p.mask_rs + j];
  return acc;
}

// rows x cols of src (row stride cols, rows from r0, zero past `limit` rows)
// into dst with row stride dst_stride, by all threads of the block.
// Note [32-bit tile indices]: a tile has fewer than 2^31 elements (shared
// memory), and 32-bit division is a few instructions where 64-bit division is
// a called subroutine (whose register saves ptxas reports as spills).
template <class T>
__device__ __forceinline__ void load_tile(T* dst, int dst_stride, const T* src, int64_t r0, int rows, int cols,
                                          int64_t limit) {
  for (int idx = threadIdx.x; idx < rows * cols; idx += kThreads) {
    const int r = idx / cols, c = idx - r * cols;
    dst[r * dst_stride + c] = r0 + r < limit ? src[(r0 + r) * cols + c] : T(0);
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) attn_forward_kernel(AttnDeviceProblem<T> p, T* __restrict__ out,
                                                                T* __restrict__ lse) {
  TFG_DYNAMIC_SHARED(T, sm);
  const int64_t E = p.E, Ev = p.Ev, ks_ = padded(E), vs_ = padded(Ev);
  T* qs = sm;                // kBQ x E
  T* ks = qs + kBQ * E;      // kBK x ks_
  T* vs = ks + kBK * ks_;    // kBK x vs_
  T* ps = vs + kBK * vs_;    // kBQ x kBK
  T* os = ps + kBQ * kBK;    // kBQ x Ev
  const int64_t b = blockIdx.y, q0 = static_cast<int64_t>(blockIdx.x) * kBQ;
  const Head<T> h = head_of(p, b);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  load_tile(qs, static_cast<int>(E), h.q, q0, kBQ, static_cast<int>(E), p.L);
  for (int64_t idx = threadIdx.x; idx < kBQ * Ev; idx += kThreads) os[idx] = 0;
  T m[kRowsPerWarp], l[kRowsPerWarp];
  #pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) m[rr] = -inf<T>(), l[rr] = 0;
  const int64_t kend = p.causal ? (p.S < q0 + kBQ ? p.S : q0 + kBQ) : p.S;
  for (int64_t k0 = 0; k0 < kend; k0 += kBK) {
    __syncthreads();  // the previous tile's k / v are no longer read (q, o initialised)
    load_tile(ks, static_cast<int>(ks_), h.k, k0, kBK, static_cast<int>(E), p.S);
    load_tile(vs, static_cast<int>(vs_), h.v, k0, kBK, static_cast<int>(Ev), p.S);
    __syncthreads();
    #pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr;
      const int64_t i = q0 + r;
      const T s = score(p, h, qs + r * E, ks + lane * ks_, i, k0 + lane);
      const T mx = warp_max(s);
      const T m_new = m[rr] < mx ? mx : m[rr];
      const T base = m_new == -inf<T>() ? T(0) : m_new;  // Note [masked rows]
      const T pr = dexp(s - base), alpha = dexp(m[rr] - base);
      l[rr] = l[rr] * alpha + warp_sum(pr);
      m[rr] = m_new;
      ps[r * kBK + lane] = pr;
      __syncwarp();
      for (int64_t c = lane; c < Ev; c += 32) {
        T acc = os[r * Ev + c] * alpha;
        for (int j = 0; j < kBK; ++j) acc += ps[r * kBK + j] * vs[j * vs_ + c];
        os[r * Ev + c] = acc;
      }
    }
  }
  #pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int r = warp * kRowsPerWarp + rr;
    const int64_t i = q0 + r;
    if (i >= p.L) continue;
    const bool empty = l[rr] == T(0);
    T* o = out + (b * p.L + i) * Ev;
    for (int64_t c = lane; c < Ev; c += 32) o[c] = empty ? T(0) : os[r * Ev + c] / l[rr];
    if (lane == 0) lse[b * p.L + i] = empty ? inf<T>() : m[rr] + dlog(l[rr]);
  }
}

// delta[row] = dout[row] . o[row] over Ev, one warp per row.
template <class T>
__global__ void __launch_bounds__(kThreads) attn_delta_kernel(const T* __restrict__ dout, const T* __restrict__ o,
                                                              int64_t rows, int64_t Ev, T* __restrict__ delta) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  T acc = 0;
  if (row < rows)
    for (int64_t c = lane; c < Ev; c += 32) acc += dout[row * Ev + c] * o[row * Ev + c];
  acc = warp_sum(acc);  // every lane of every warp takes part, rows past the end with 0
  if (row < rows && lane == 0) delta[row] = acc;
}

template <class T>
__global__ void __launch_bounds__(kThreads, 1) attn_dq_kernel(AttnDeviceProblem<T> p, const T* __restrict__ dout,
                                                           const T* __restrict__ lse, const T* __restrict__ delta,
                                                           T* __restrict__ dq) {
  TFG_DYNAMIC_SHARED(T, sm);
  const int64_t E = p.E, Ev = p.Ev, ks_ = padded(E), vs_ = padded(Ev);
  T* qs = sm;                 // kBQ x E
  T* dos = qs + kBQ * E;      // kBQ x Ev
  T* ks = dos + kBQ * Ev;     // kBK x ks_
  T* vs = ks + kBK * ks_;     // kBK x vs_
  T* dss = vs + kBK * vs_;    // kBQ x kBK
  T* dqs = dss + kBQ * kBK;   // kBQ x E
  const int64_t b = blockIdx.y, q0 = static_cast<int64_t>(blockIdx.x) * kBQ;
  const Head<T> h = head_of(p, b);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  load_tile(qs, static_cast<int>(E), h.q, q0, kBQ, static_cast<int>(E), p.L);
  load_tile(dos, static_cast<int>(Ev), dout + b * p.L * Ev, q0, kBQ, static_cast<int>(Ev), p.L);
  for (int64_t idx = threadIdx.x; idx < kBQ * E; idx += kThreads) dqs[idx] = 0;
  T row_lse[kRowsPerWarp], row_delta[kRowsPerWarp];
  #pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int64_t i = q0 + warp * kRowsPerWarp + rr;
    row_lse[rr] = i < p.L ? lse[b * p.L + i] : inf<T>();
    row_delta[rr] = i < p.L ? delta[b * p.L + i] : T(0);
  }
  const int64_t kend = p.causal ? (p.S < q0 + kBQ ? p.S : q0 + kBQ) : p.S;
  for (int64_t k0 = 0; k0 < kend; k0 += kBK) {
    __syncthreads();
    load_tile(ks, static_cast<int>(ks_), h.k, k0, kBK, static_cast<int>(E), p.S);
    load_tile(vs, static_cast<int>(vs_), h.v, k0, kBK, static_cast<int>(Ev), p.S);
    __syncthreads();
    #pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr;
      const T s = score(p, h, qs + r * E, ks + lane * ks_, q0 + r, k0 + lane);
      const T pr = dexp(s - row_lse[rr]);  // 0 for masked keys and fully masked rows
      T dp = 0;
      for (int64_t c = 0; c < Ev; ++c) dp += dos[r * Ev + c] * vs[lane * vs_ + c];
      dss[r * kBK + lane] = pr * (dp - row_delta[rr]);
      __syncwarp();
      for (int64_t e = lane; e < E; e += 32) {
        T acc = dqs[r * E + e];
        for (int j = 0; j < kBK; ++j) acc += dss[r * kBK + j] * ks[j * ks_ + e];
        dqs[r * E + e] = acc;
      }
    }
  }
  #pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int r = warp * kRowsPerWarp + rr;
    const int64_t i = q0 + r;
    if (i >= p.L) continue;
    for (int64_t e = lane; e < E; e += 32) dq[(b * p.L + i) * E + e] = dqs[r * E + e] * p.scale;
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads, 1) attn_dkdv_kernel(AttnDeviceProblem<T> p, const T* __restrict__ dout,
                                                             const T* __restrict__ lse,
                                                             const T* __restrict__ delta, T* __restrict__ dk,
                                                             T* __restrict__ dv) {
  TFG_DYNAMIC_SHARED(T, sm);
  const int64_t E = p.E, Ev = p.Ev, ks_ = padded(E), vs_ = padded(Ev);
  T* ks = sm;                 // kBK x ks_
  T* vs = ks + kBK * ks_;     // kBK x vs_
  T* qs = vs + kBK * vs_;     // kBQ x E
  T* dos = qs + kBQ * E;      // kBQ x Ev
  T* ps = dos + kBQ * Ev;     // kBQ x kBK
  T* dss = ps + kBQ * kBK;    // kBQ x kBK
  T* dks = dss + kBQ * kBK;   // kBK x E
  T* dvs = dks + kBK * E;     // kBK x Ev
  const int e_ = static_cast<int>(E), ev = static_cast<int>(Ev);
  const int64_t b = blockIdx.y, k0 = static_cast<int64_t>(blockIdx.x) * kBK;
  const Head<T> h = head_of(p, b);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  load_tile(ks, static_cast<int>(ks_), h.k, k0, kBK, static_cast<int>(E), p.S);
  load_tile(vs, static_cast<int>(vs_), h.v, k0, kBK, static_cast<int>(Ev), p.S);
  // Each accumulator element is zeroed, summed and written by the same thread.
  for (int64_t idx = threadIdx.x; idx < kBK * E; idx += kThreads) dks[idx] = 0;
  for (int64_t idx = threadIdx.x; idx < kBK * Ev; idx += kThreads) dvs[idx] = 0;
  const int64_t qstart = p.causal ? k0 / kBQ * kBQ : 0;  // earlier queries see none of these keys
  for (int64_t q0 = qstart; q0 < p.L; q0 += kBQ) {
    __syncthreads();  // the previous query tile is no longer read (k, v loaded)
    load_tile(qs, static_cast<int>(E), h.q, q0, kBQ, static_cast<int>(E), p.L);
    load_tile(dos, static_cast<int>(Ev), dout + b * p.L * Ev, q0, kBQ, static_cast<int>(Ev), p.L);
    __syncthreads();
    #pragma unroll 1  // no per-row arrays here: one row at a time keeps live ranges short
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr;
      const int64_t i = q0 + r;
      const T s = score(p, h, qs + r * E, ks + lane * ks_, i, k0 + lane);
      const T pr = i < p.L ? dexp(s - lse[b * p.L + i]) : T(0);
      T dp = 0;
      for (int64_t c = 0; c < Ev; ++c) dp += dos[r * Ev + c] * vs[lane * vs_ + c];
      ps[r * kBK + lane] = pr;
      dss[r * kBK + lane] = i < p.L ? pr * (dp - delta[b * p.L + i]) : T(0);
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < kBK * ev; idx += kThreads) {  // Note [32-bit tile indices]
      const int j = idx / ev, c = idx - j * ev;
      T acc = dvs[idx];
      for (int r = 0; r < kBQ; ++r) acc += ps[r * kBK + j] * dos[r * Ev + c];
      dvs[idx] = acc;
    }
    for (int idx = threadIdx.x; idx < kBK * e_; idx += kThreads) {
      const int j = idx / e_, e = idx - j * e_;
      T acc = dks[idx];
      for (int r = 0; r < kBQ; ++r) acc += dss[r * kBK + j] * qs[r * E + e];
      dks[idx] = acc;
    }
  }
  for (int idx = threadIdx.x; idx < kBK * e_; idx += kThreads) {
    const int j = idx / e_, e = idx - j * e_;
    if (k0 + j < p.S) dk[(b * p.S + k0 + j) * E + e] = dks[idx] * p.scale;
  }
  for (int idx = threadIdx.x; idx < kBK * ev; idx += kThreads) {
    const int j = idx / ev, c = idx - j * ev;
    if (k0 + j < p.S) dv[(b * p.S + k0 + j) * Ev + c] = dvs[idx];
  }
}

// Allows `bytes` of dynamic shared memory for `kernel`, or throws naming the op.
template <class K>
void allow_shared(K kernel, size_t bytes, const char* what, int64_t E, int64_t Ev) {
  if (bytes <= 48 * 1024) return;
  int dev = 0, optin = 0;
  TFG_CUDA_CHECK(cudaGetDevice(&dev));
  TFG_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  TFG_CHECK_VALUE(bytes <= static_cast<size_t>(optin), "cuda scaled_dot_product_attention (", what, "): E = ", E,
                  " and Ev = ", Ev, " need ", bytes, " bytes of shared memory per block, more than the device's ",
                  optin);
  TFG_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

template <class T>
void check_problem(const AttnDeviceProblem<T>& p) {
  TFG_CHECK_VALUE(p.nbatch >= 0 && p.L >= 0 && p.S >= 0 && p.E >= 0 && p.Ev >= 0,
                  "cuda scaled_dot_product_attention: negative sizes");
  TFG_CHECK_VALUE(p.nbatch <= 65535, "cuda scaled_dot_product_attention: ", p.nbatch,
                  " batch-heads exceed one launch (65535)");
  TFG_CHECK_VALUE((p.L + kBQ - 1) / kBQ <= INT_MAX && (p.S + kBK - 1) / kBK <= INT_MAX,
                  "cuda scaled_dot_product_attention: L or S too large");
}

}  // namespace

template <class T>
void attention_forward(const AttnDeviceProblem<T>& p, T* out, T* lse, cudaStream_t stream) {
  check_problem(p);
  TFG_CHECK_VALUE(p.S > 0, "cuda scaled_dot_product_attention: S = 0 has no kernel (the output is 0)");
  if (p.nbatch == 0 || p.L == 0) return;
  const size_t bytes = sizeof(T) * static_cast<size_t>(kBQ * p.E + kBK * padded(p.E) + kBK * padded(p.Ev) +
                                                       kBQ * kBK + kBQ * p.Ev);
  allow_shared(attn_forward_kernel<T>, bytes, "forward", p.E, p.Ev);
  const dim3 grid(static_cast<unsigned>((p.L + kBQ - 1) / kBQ), static_cast<unsigned>(p.nbatch));
  launch(attn_forward_kernel<T>, grid, dim3(kThreads), bytes, stream, p, out, lse);
}

template <class T>
void attention_backward(const AttnDeviceProblem<T>& p, const T* dout, const T* o, const T* lse, T* delta, T* dq,
                        T* dk, T* dv, cudaStream_t stream) {
  check_problem(p);
  if (p.nbatch == 0 || p.L == 0 || p.S == 0) return;
  const int64_t rows = p.nbatch * p.L;
  launch(attn_delta_kernel<T>, dim3(static_cast<unsigned>((rows + kWarps - 1) / kWarps)), dim3(kThreads), 0, stream,
         dout, o, rows, p.Ev, delta);
  const size_t dq_bytes = sizeof(T) * static_cast<size_t>(2 * kBQ * p.E + kBQ * p.Ev + kBK * padded(p.E) +
                                                          kBK * padded(p.Ev) + kBQ * kBK);
  allow_shared(attn_dq_kernel<T>, dq_bytes, "backward dq", p.E, p.Ev);
  launch(attn_dq_kernel<T>, dim3(static_cast<unsigned>((p.L + kBQ - 1) / kBQ), static_cast<unsigned>(p.nbatch)),
         dim3(kThreads), dq_bytes, stream, p, dout, lse, delta, dq);
  const size_t kv_bytes = sizeof(T) * static_cast<size_t>(kBK * padded(p.E) + kBK * padded(p.Ev) + kBQ * p.E +
                                                          kBQ * p.Ev + 2 * kBQ * kBK + kBK * p.E + kBK * p.Ev);
  allow_shared(attn_dkdv_kernel<T>, kv_bytes, "backward dk/dv", p.E, p.Ev);
  launch(attn_dkdv_kernel<T>, dim3(static_cast<unsigned>((p.S + kBK - 1) / kBK), static_cast<unsigned>(p.nbatch)),
         dim3(kThreads), kv_bytes, stream, p, dout, lse, delta, dk, dv);
}

template void attention_forward<float>(const AttnDeviceProblem<float>&, float*, float*, cudaStream_t);
template void attention_forward<double>(const AttnDeviceProblem<double>&, double*, double*, cudaStream_t);
template void attention_backward<float>(const AttnDeviceProblem<float>&, const float*, const float*, const float*,
                                        float*, float*, float*, float*, cudaStream_t);
template void attention_backward<double>(const AttnDeviceProblem<double>&, const double*, const double*,
                                         const double*, double*, double*, double*, double*, cudaStream_t);

}  // namespace tfg::cuda
