// LSTM (one layer, one direction, PyTorch's gate order i, f, g, o): one cell
// step and a whole sequence, forward and backward, and the per-ISA table of
// the fused element-wise passes they run on (cpu/lstm_kernel.cpp). The gate
// projections themselves are GEMMs (ops/matmul/gemm.h).
#pragma once
#include <cstdint>

#include "core/array.h"
#include "dispatch/isa.h"

namespace tfg {

// Bias arguments may be null (no bias). x (N, I) or (I,) with hx, cx (N, H) or (H,).
struct LstmCellResult {
  Array h, c;
};
LstmCellResult lstm_cell(const Array& x, const Array& hx, const Array& cx, const Array& w_ih,
                         const Array& w_hh, const Array* b_ih, const Array* b_hh);

// x (T, N, I), hx and cx (N, H): y (T, N, H) and the final h, c (N, H).
struct LstmResult {
  Array y, h, c;
};
LstmResult lstm(const Array& x, const Array& hx, const Array& cx, const Array& w_ih,
                const Array& w_hh, const Array* b_ih, const Array* b_hh);

// One gradient per differentiable input; the bias gradients are only set
// (has_b_ih / has_b_hh) when that bias was given.
struct LstmGrads {
  Array grad_x, grad_hx, grad_cx, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh;
  bool has_b_ih = false, has_b_hh = false;
};
// grad_h, grad_c: null means zero.
LstmGrads lstm_cell_backward(const Array* grad_h, const Array* grad_c, const Array& x,
                             const Array& hx, const Array& cx, const Array& w_ih,
                             const Array& w_hh, const Array* b_ih, const Array* b_hh);
// grad_y (T, N, H); grad_h, grad_c (N, H) for the final state; each may be null (zero).
LstmGrads lstm_backward(const Array* grad_y, const Array* grad_h, const Array* grad_c,
                        const Array& x, const Array& hx, const Array& cx, const Array& w_ih,
                        const Array& w_hh, const Array* b_ih, const Array* b_hh);

// The cell's checks, shared with the CUDA test bindings (bind_cuda_lstm.cpp):
// every operand's dtype and shape (messages name `op` and the argument).
namespace lstm_detail {
struct CellDims {
  int64_t N = 0, I = 0, H = 0;
  Shape state;  // (N, H), or (H,) for a 1-D x
};
CellDims check_cell_args(const char* op, const Array& x, const Array& hx, const Array& cx, const Array& w_ih,
                         const Array& w_hh, const Array* b_ih, const Array* b_hh);
// The same plus grad_h / grad_c (each may be null) of the state's shape.
CellDims check_cell_backward_args(const char* op, const Array* grad_h, const Array* grad_c, const Array& x,
                                  const Array& hx, const Array& cx, const Array& w_ih, const Array& w_hh,
                                  const Array* b_ih, const Array* b_hh);
}  // namespace lstm_detail

// The fused element-wise passes over `rows` rows of `cols` hidden units
// (of H). Rows are contiguous: gates rows of 4H ([i | f | g | o] blocks of H,
// the pointer at unit 0 of the i block), the others rows of H.
template <class T>
struct LstmKernels {
  // gates: pre-activations in; their activations out when keep_gates.
  // c = f * c_prev + i * g, h = o * tanh(c). c may alias c_prev.
  void (*forward)(int64_t rows, int64_t cols, int64_t H, T* gates, const T* c_prev, T* c, T* h,
                  bool keep_gates);
  // gates: the forward's activations in, gradients of the pre-activations out.
  // The incoming gradient of h is gy + dh (gy may be null); dc holds the
  // gradient of c in and that of c_prev out.
  void (*backward)(int64_t rows, int64_t cols, int64_t H, T* gates, const T* c, const T* c_prev,
                   const T* gy, const T* dh, T* dc);
};

TFG_ISA_TABLE(LstmKernels<float>, lstm_kernels_f32)
TFG_ISA_TABLE(LstmKernels<double>, lstm_kernels_f64)

}  // namespace tfg
