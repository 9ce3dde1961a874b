// cross_entropy with class-index targets (F.cross_entropy semantics: class
// weights, ignore_index, label smoothing, reductions) and its backward, fused:
// log-softmax and the negative log-likelihood per row without materialising
// the probabilities. Also the per-ISA kernel table (cpu/cross_entropy_kernel.cpp).
#pragma once
#include <cstdint>
#include <string>

#include "core/array.h"
#include "dispatch/isa.h"
#include "ops/softmax/layout.h"

namespace tfg {

enum class Reduction { none, mean, sum };
// "none" / "mean" / "sum"; ValueError naming `op` otherwise.
Reduction parse_reduction(const char* op, const std::string& name);

// input (C,) with target (), or (N, C, d1, ...) with target (N, d1, ...);
// target int64 or int32; weight (C,) or null.
Array cross_entropy(const Array& input, const Array& target, const Array* weight,
                    int64_t ignore_index, Reduction reduction, double label_smoothing);
// grad_output: () for mean / sum, the target's shape for none.
Array cross_entropy_backward(const Array& grad_output, const Array& input, const Array& target,
                             const Array* weight, int64_t ignore_index, Reduction reduction,
                             double label_smoothing);

// The argument checks and target validation of the entries above (also used
// by the CUDA test binding): the validated, C-contiguous operands and what
// the kernels need besides. Throws TypeError / ValueError naming `op`.
struct CrossEntropyPrepared {
  Array x, t, w;             // input, int64 targets, weight (null data when absent)
  ReduceLayout l;            // (N, C, inner), or (1, C, 1) for an unbatched input
  double denom = 0;          // the mean's denominator: sum of w[t] over kept targets
  double weight_sum = 0;     // sum of all w (C without weights)
};
CrossEntropyPrepared prepare_cross_entropy(const char* op, const Array& input, const Array& target,
                                           const Array* weight, int64_t ignore_index,
                                           double label_smoothing);
// grad_output: on the CPU, input's dtype, () or (for 'none') the target's shape.
void check_cross_entropy_grad_output(const char* op, const Array& grad_output, const Array& input,
                                     const Array& target, Reduction reduction);

// What the kernels need besides the data. For a row with target t != ignore_index
// and log-probabilities lp = log_softmax(x):
//   loss = (1 - eps) * w[t] * -lp[t] + (eps / C) * sum_c w[c] * -lp[c]
// (w = 1 without weights; eps = label_smoothing); an ignored row has loss 0
// and gradient 0. weight_sum = sum_c w[c] (C without weights).
template <class T>
struct CrossEntropyParams {
  const T* weight = nullptr;
  int64_t ignore_index = -100;
  T smoothing = 0;
  T weight_sum = 0;
};

// Rows: `rows` rows of C contiguous logits with targets t (validated). Columns:
// one (C, inner) slice, columns [0, cols) from the pointers given (targets
// and losses per column, logits at row stride inner). forward_* write each
// loss to `loss` when it is not null and return the sum of the losses, added
// in double in row (column) order. backward_* write the gradient of
// sum_r scale_r * loss_r with scale_r = go[r * go_stride] / divisor.
template <class T>
struct CrossEntropyKernels {
  double (*forward_rows)(const T* x, const int64_t* t, int64_t rows, int64_t c,
                         const CrossEntropyParams<T>& p, T* loss);
  double (*forward_cols)(const T* x, const int64_t* t, int64_t c, int64_t inner, int64_t cols,
                         const CrossEntropyParams<T>& p, T* loss);
  void (*backward_rows)(const T* x, const int64_t* t, int64_t rows, int64_t c,
                        const CrossEntropyParams<T>& p, const T* go, int64_t go_stride, T divisor,
                        T* gx);
  void (*backward_cols)(const T* x, const int64_t* t, int64_t c, int64_t inner, int64_t cols,
                        const CrossEntropyParams<T>& p, const T* go, int64_t go_stride, T divisor,
                        T* gx);
};

TFG_ISA_TABLE(CrossEntropyKernels<float>, cross_entropy_kernels_f32)
TFG_ISA_TABLE(CrossEntropyKernels<double>, cross_entropy_kernels_f64)

}  // namespace tfg
