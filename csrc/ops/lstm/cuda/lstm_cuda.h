// One LSTM cell step on a CUDA device (lstm.cu), forward and backward: the
// gate GEMMs by the CUDA GEMM (ops/matmul/cuda/matmul_cuda.h), the gate
// nonlinearities and cell update (and their derivatives) as fused element-wise
// kernels. PyTorch's gate order i, f, g, o.
#pragma once
#include <cuda_runtime_api.h>  // cudaStream_t

#include <cstdint>

namespace tfg::cuda {

// Device pointers, C-contiguous: x (N, I), hx / cx (N, H), w_ih (4H, I),
// w_hh (4H, H), b_ih / b_hh (4H) or null.
template <class T>
struct LstmCellDevice {
  int64_t N = 0, I = 0, H = 0;
  const T* x = nullptr;
  const T* hx = nullptr;
  const T* cx = nullptr;
  const T* w_ih = nullptr;
  const T* w_hh = nullptr;
  const T* b_ih = nullptr;
  const T* b_hh = nullptr;
};

// h, c (N, H) of the step; gates: N * 4H workspace, left holding the
// activations [i | f | g | o] of every row.
template <class T>
void lstm_cell_forward(const LstmCellDevice<T>& p, T* gates, T* h, T* c, cudaStream_t stream);

// Gradients of one step for the incoming grad_h / grad_c ((N, H), null for
// zero): dx (N, I), dhx / dcx (N, H), dw_ih (4H, I), dw_hh (4H, H), db (4H, the
// gradient of either bias; null: not computed). Workspaces: gates N * 4H,
// c N * H (the forward is recomputed into them).
template <class T>
void lstm_cell_backward(const LstmCellDevice<T>& p, const T* grad_h, const T* grad_c, T* gates, T* c, T* dx,
                        T* dhx, T* dcx, T* dw_ih, T* dw_hh, T* db, cudaStream_t stream);

extern template void lstm_cell_forward<float>(const LstmCellDevice<float>&, float*, float*, float*, cudaStream_t);
extern template void lstm_cell_forward<double>(const LstmCellDevice<double>&, double*, double*, double*,
                                               cudaStream_t);
extern template void lstm_cell_backward<float>(const LstmCellDevice<float>&, const float*, const float*, float*,
                                               float*, float*, float*, float*, float*, float*, float*,
                                               cudaStream_t);
extern template void lstm_cell_backward<double>(const LstmCellDevice<double>&, const double*, const double*,
                                                double*, double*, double*, double*, double*, double*, double*,
                                                double*, cudaStream_t);

}  // namespace tfg::cuda
