// softmax and log_softmax along one dimension, forward and backward
// (F.softmax / F.log_softmax semantics), and the per-ISA kernel table they
// run on (cpu/softmax_kernel.cpp).
#pragma once
#include <cstdint>

#include "core/array.h"
#include "dispatch/isa.h"

namespace tfg {

// dim may be negative (counted from the end); a 0-d x is treated as one element.
Array softmax(const Array& x, int64_t dim);
Array log_softmax(const Array& x, int64_t dim);
// grad_x of softmax (log = false) or log_softmax (log = true). `output` is the
// forward's result when the caller has it (null: recomputed from x).
Array softmax_backward(const Array& grad_output, const Array& x, int64_t dim, const Array* output);
Array log_softmax_backward(const Array& grad_output, const Array& x, int64_t dim, const Array* output);

// The argument checks of the entries above (also used by the CUDA test
// binding): float dtypes on the CPU, grad_output / output like x, dim in
// range. Return dim wrapped to [0, max(ndim, 1)).
int64_t check_softmax_args(const char* op, const Array& x, int64_t dim);
int64_t check_softmax_backward_args(const char* op, const Array& grad_output, const Array& x,
                                    int64_t dim, const Array* output);

// The kernels see a C-contiguous tensor as (outer, n, inner) with the softmax
// along n. Rows: inner == 1, `rows` rows of n contiguous elements. Columns:
// inner > 1, one (n, inner) slice, columns [0, cols) of it starting at the
// pointers given (row stride inner), each column reduced on its own.
// Backward: y is the forward's result (probabilities, or log-probabilities
// when log) or null, in which case the probabilities are recomputed from x
// into gx first.
template <class T>
struct SoftmaxKernels {
  void (*forward_rows)(const T* x, T* y, int64_t rows, int64_t n, bool log);
  void (*forward_cols)(const T* x, T* y, int64_t n, int64_t inner, int64_t cols, bool log);
  void (*backward_rows)(const T* g, const T* y, const T* x, T* gx, int64_t rows, int64_t n, bool log);
  void (*backward_cols)(const T* g, const T* y, const T* x, T* gx, int64_t n, int64_t inner,
                        int64_t cols, bool log);
};

TFG_ISA_TABLE(SoftmaxKernels<float>, softmax_kernels_f32)
TFG_ISA_TABLE(SoftmaxKernels<double>, softmax_kernels_f64)

}  // namespace tfg
