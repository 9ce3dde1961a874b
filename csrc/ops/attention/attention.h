// scaled_dot_product_attention forward and backward (F.scaled_dot_product_attention
// semantics) and the per-ISA fused flash-attention kernels they run on
// (cpu/attention_kernel.cpp). README.md describes the algorithm.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "core/array.h"
#include "dispatch/isa.h"

namespace tfg {

struct AttentionOptions {
  const Array* attn_mask = nullptr;  // bool (True attends) or the dtype of q (added)
  bool is_causal = false;            // top-left aligned: query i attends keys j <= i
  std::optional<double> scale;       // default 1 / sqrt(E)
  bool enable_gqa = false;
};

// q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev); the leading
// dims broadcast. With lse, also the row log-sum-exp of the scaled, masked
// scores (..., L) (+inf for rows whose keys are all masked), for the backward.
Array scaled_dot_product_attention(const Array& q, const Array& k, const Array& v,
                                   const AttentionOptions& opt, Array* lse = nullptr);
struct AttentionGrads { Array grad_q, grad_k, grad_v; };
// output / lse: the forward's results, both or neither (null: recomputed).
AttentionGrads scaled_dot_product_attention_backward(const Array& grad_out, const Array& q,
                                                     const Array& k, const Array& v,
                                                     const AttentionOptions& opt,
                                                     const Array* output = nullptr,
                                                     const Array* lse = nullptr);

// Pieces shared by attention.cpp and the CUDA test bindings (bind_cuda_attention.cpp).
namespace attn_detail {
// The problem after the checks (attn_detail::analyse): inputs C-contiguous, the output batch shape,
// and for every flat output batch index the matrix index into q, k, v, mask.
struct Problem {
  Array q, k, v, mask;  // mask: additive, of q's dtype, last dim S; empty when none
  Shape batch;
  int64_t nbatch = 1, L = 0, S = 0, E = 0, Ev = 0;
  double scale = 1;
  bool causal = false;
  bool has_mask = false;
  int64_t mask_rs = 0, mask_mat = 0;  // mask row stride and elements per (L or 1, S) matrix
  std::vector<int64_t> qi, ki, vi, mi;
};

// The checks of the forward (`op` names the op in messages) and the problem
// they describe: inputs made C-contiguous, the mask made additive, GQA and
// broadcasting resolved into the per-output-batch matrix indices qi/ki/vi/mi.
Problem analyse(const char* op, const Array& q, const Array& k, const Array& v, const AttentionOptions& opt);
// The backward's checks of grad_out and of the optional output / lse.
void check_backward_args(const char* op, const Problem& p, const Array& q, const Array& grad_out,
                         const Array* output, const Array* lse);
// The batch shape followed by (L, last).
Shape out_shape(const Problem& p, int64_t last);
}  // namespace attn_detail

// Query and key tile sizes of the kernels (BK is a multiple of every 2 * W).
constexpr int64_t kAttnBlockQ = 64;
constexpr int64_t kAttnBlockK = 64;

// One (batch, head) of the problem as the kernels see it: q (L, E), k (S, E),
// v (S, Ev) row-major and contiguous; mask (L, S) additive with unit column
// stride and row stride mask_rs (0 when it is the same for every query), or
// null. kt / vt: k times scale and v packed by attn_pack_transposed (vt only
// for backward).
template <class T>
struct AttnHead {
  const T* q; const T* k; const T* v;
  const T* kt; const T* vt;
  const T* mask; int64_t mask_rs;
  int64_t L, S, E, Ev;
  bool causal;
};

template <class T>
struct AttentionKernels {
  // Query rows [q0, q0 + rows) (rows <= kAttnBlockQ): out (L, Ev) rows and
  // lse (L) entries of those rows: the log-sum-exp of the scaled, masked scores (+inf for a row whose
  // keys are all masked; its output is 0). scratch: attn_scratch_elems().
  void (*forward_tile)(const AttnHead<T>& h, int64_t q0, int64_t rows, T* out, T* lse, T* scratch);
  // The same rows' gradients: dq (L, E) rows overwritten (without the scale),
  // dk (S, E) / dv (S, Ev) accumulated (+=, dk without the scale). o (L, Ev) /
  // lse (L): the forward's output and log-sum-exp, dout (L, Ev) the output's gradient.
  void (*backward_tile)(const AttnHead<T>& h, int64_t q0, int64_t rows, const T* dout,
                        const T* o, const T* lse, T* dq, T* dk, T* dv, T* scratch);
};

// Packs a row-major (S, E) matrix tile by tile, times mul: tile t holds rows
// [t * kAttnBlockK, ...) transposed, as E rows of kAttnBlockK (zero-padded).
// Keys are packed with the softmax scale folded in, so that scores need no
// scaling pass.
inline int64_t attn_packed_elems(int64_t S, int64_t E) {
  return (S + kAttnBlockK - 1) / kAttnBlockK * kAttnBlockK * E;
}
template <class T>
void attn_pack_transposed(const T* src, int64_t S, int64_t E, T mul, T* dst) {
  constexpr int64_t G = 8;  // rows read together: 8 sequential streams, 8 adjacent outputs
  for (int64_t t0 = 0; t0 < S; t0 += kAttnBlockK, dst += kAttnBlockK * E) {
    const int64_t n = S - t0 < kAttnBlockK ? S - t0 : kAttnBlockK;
    for (int64_t j0 = 0; j0 < kAttnBlockK; j0 += G) {
      const T* rows = src + (t0 + j0) * E;
      if (j0 + G <= n) {
        for (int64_t e = 0; e < E; ++e)
          for (int64_t r = 0; r < G; ++r) dst[e * kAttnBlockK + j0 + r] = rows[r * E + e] * mul;
        continue;
      }
      for (int64_t e = 0; e < E; ++e)
        for (int64_t r = 0; r < G; ++r) dst[e * kAttnBlockK + j0 + r] = j0 + r < n ? rows[r * E + e] * mul : T(0);
    }
  }
}

inline int64_t attn_scratch_elems(int64_t Ev) {
  return 2 * kAttnBlockQ * kAttnBlockK + kAttnBlockQ * Ev + 4 * kAttnBlockQ + 64;
}

TFG_ISA_TABLE(AttentionKernels<float>, attention_kernels_f32)
TFG_ISA_TABLE(AttentionKernels<double>, attention_kernels_f64)

}  // namespace tfg
