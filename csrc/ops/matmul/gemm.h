// GEMM, the BLIS way: C (=|+=) A * B (+ bias), every operand with arbitrary
// element strides. The blocked loops and macro-kernel (gemm.cpp) are portable;
// packing and the MR x NR micro-kernel come per ISA from a GemmKernels table
// (cpu/matmul_kernel.cpp). Other ops (conv2d, lstm) call gemm() directly.
#pragma once
#include <cstdint>

#include "dispatch/isa.h"
#include "ops/matmul/gemm_problem.h"

namespace tfg {

// Per-ISA building blocks. Blocking sizes are data of the table, not constants
// of the loops: MR x NR register tile, KC x NR micro-panel of B (L1),
// MC x KC block of A (L2), KC x NC panel of B (L3).
template <class T>
struct GemmKernels {
  int mr, nr;
  int64_t mc, kc, nc;
  // Packs rows (<= mr) x kc of A into a micro-panel: dst[p * mr + i], zero-padded to mr rows.
  void (*pack_a)(int64_t rows, int64_t kc, const T* a, int64_t rs, int64_t cs, T* dst);
  // Packs kc x cols (<= nr) of B into a micro-panel: dst[p * nr + j], zero-padded to nr columns.
  void (*pack_b)(int64_t kc, int64_t cols, const T* b, int64_t rs, int64_t cs, T* dst);
  // micro[r - 1] computes the first r rows (1 <= r <= mr) of an mr x nr tile:
  // C = (accumulate ? C : 0) + (bias ? bias : 0) + A_panel * B, C with row
  // stride ldc and unit column stride; bias has nr entries or is null; lda unused.
  // B is kc rows of nr contiguous elements, ldb apart: a packed panel (ldb = nr)
  // or, Note [strided B], a block of a row-major matrix read in place.
  // micro_unpacked_a[r - 1] is the same with A read in place: row i at a + i * lda,
  // unit stride along K.
  using MicroKernel = void (*)(int64_t kc, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
                               int64_t ldc, const T* bias, bool accumulate);
  static constexpr int kMaxMR = 16;
  MicroKernel micro[kMaxMR];
  MicroKernel micro_unpacked_a[kMaxMR];
  // Matrix-vector products for one-row A (x, y and bias unit stride, bias may be null):
  // y[j] = (accumulate ? y[j] : 0) + bias[j] + sum_p x[p] * B[p, j], with B's rows
  // contiguous (B[p, j] = b[p * ld + j]) for gemv_rows, its columns (b[j * ld + p]) for gemv_cols.
  void (*gemv_rows)(int64_t k, int64_t n, const T* x, const T* b, int64_t ld, T* y, const T* bias, bool accumulate);
  void (*gemv_cols)(int64_t k, int64_t n, const T* x, const T* b, int64_t ld, T* y, const T* bias, bool accumulate);
};

TFG_ISA_TABLE(GemmKernels<float>, gemm_kernels_f32)
TFG_ISA_TABLE(GemmKernels<double>, gemm_kernels_f64)

template <class T> const GemmKernels<T>& active_gemm_kernels();
template <class T> const GemmKernels<T>& gemm_kernels_for(Isa isa);

// One GEMM, parallel over blocks of C (threads = 0: the library's thread count).
template <class T>
void gemm(const GemmProblem<T>& p, int threads = 0);

// `batch` GEMMs of the same shape and strides whose operands start at
// p.a + a_offsets[i], p.b + b_offsets[i], p.c + c_offsets[i] (element offsets).
template <class T>
void gemm_batched(const GemmProblem<T>& p, int64_t batch, const int64_t* a_offsets,
                  const int64_t* b_offsets, const int64_t* c_offsets, int threads = 0);

}  // namespace tfg
