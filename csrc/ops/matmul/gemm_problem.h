// GemmProblem: one C (=|+=) A * B (+ bias) with arbitrary element strides, the
// description every GEMM backend (CPU gemm.h, CUDA cuda/matmul_cuda.h) takes.
#pragma once
#include <cstdint>

namespace tfg {

template <class T>
struct GemmProblem {
  int64_t m = 0, n = 0, k = 0;
  const T* a = nullptr; int64_t rs_a = 0, cs_a = 0;   // A is m x k
  const T* b = nullptr; int64_t rs_b = 0, cs_b = 0;   // B is k x n
  T* c = nullptr;       int64_t rs_c = 0, cs_c = 0;   // C is m x n
  const T* bias = nullptr;   // optional, length n (unit stride), added to every row of C
  bool accumulate = false;   // C += A*B (+bias) instead of C = A*B (+bias)
};

}  // namespace tfg
