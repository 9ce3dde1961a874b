// scaled_dot_product_attention on a CUDA device (attention.cu): flash-attention
// forward (output and row log-sum-exp) and backward (dq per query tile, dk/dv
// per key tile, no atomics). The problem comes resolved by
// attn_detail::analyse: contiguous q/k/v, an additive mask, and per output
// batch b the matrix indices qi[b], ki[b], vi[b], mi[b] (GQA and broadcasting).
#pragma once
#include <cuda_runtime_api.h>  // cudaStream_t

#include <cstdint>

namespace tfg::cuda {

// Every pointer is a device pointer. q (.., L, E), k (.., S, E), v (.., S, Ev)
// C-contiguous; mask additive (.., L or 1, S) with row stride mask_rs (0 or S)
// and mask_mat elements per matrix, or null; qi/ki/vi (and mi with a mask)
// nbatch entries each.
template <class T>
struct AttnDeviceProblem {
  const T* q = nullptr;
  const T* k = nullptr;
  const T* v = nullptr;
  const T* mask = nullptr;
  const int64_t* qi = nullptr;
  const int64_t* ki = nullptr;
  const int64_t* vi = nullptr;
  const int64_t* mi = nullptr;
  int64_t nbatch = 0, L = 0, S = 0, E = 0, Ev = 0, mask_rs = 0, mask_mat = 0;
  T scale = 1;
  bool causal = false;
};

// out (nbatch, L, Ev), lse (nbatch, L): lse = +inf and out = 0 for rows whose
// keys are all masked. Needs S > 0 (S = 0 is the caller's: zeros, lse +inf).
// Throws tfg::ValueError when E / Ev need more shared memory than a block has.
template <class T>
void attention_forward(const AttnDeviceProblem<T>& p, T* out, T* lse, cudaStream_t stream);

// Gradients per output batch, scale applied: dq (nbatch, L, E), dk (nbatch,
// S, E), dv (nbatch, S, Ev), all overwritten; the caller sums dk/dv (and dq
// when q was broadcast) into the inputs' shapes. o / lse: the forward's
// results; dout (nbatch, L, Ev); delta: nbatch * L scratch (rowwise dout . o).
template <class T>
void attention_backward(const AttnDeviceProblem<T>& p, const T* dout, const T* o, const T* lse, T* delta,
                        T* dq, T* dk, T* dv, cudaStream_t stream);

extern template void attention_forward<float>(const AttnDeviceProblem<float>&, float*, float*, cudaStream_t);
extern template void attention_forward<double>(const AttnDeviceProblem<double>&, double*, double*, cudaStream_t);
extern template void attention_backward<float>(const AttnDeviceProblem<float>&, const float*, const float*,
                                               const float*, float*, float*, float*, float*, cudaStream_t);
extern template void attention_backward<double>(const AttnDeviceProblem<double>&, const double*, const double*,
                                                const double*, double*, double*, double*, double*, cudaStream_t);

}  // namespace tfg::cuda
