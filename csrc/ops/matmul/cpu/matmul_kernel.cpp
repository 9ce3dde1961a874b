// Per-ISA half of GEMM: packing routines and the MR x NR register-blocked
// micro-kernel, written once on Vec<T> and compiled for every ISA level
// (see Note [per-ISA object libraries] in CMakeLists.txt).
#include "ops/matmul/gemm.h"
#include "simd/vec.h"

namespace tfg::TFG_ISA_NS {
namespace {

// Blocking per ISA and dtype. MR rows of A are broadcast against NV vectors of
// B, so the tile keeps MR * NV accumulators in registers: 12 of 16 registers
// on AVX2 (6 x 2), 28 of 32 on AVX-512 (14 x 2). KC * NR of B stays in L1,
// MC * KC of A in L2, KC * NC of B in the shared cache.
struct Blocking {
  int mr, nv;
  int64_t mc, kc, nc;
};
#if defined(__AVX512F__)
constexpr Blocking kBlockF32{14, 2, 168, 256, 4096};
constexpr Blocking kBlockF64{14, 2, 112, 256, 2048};
#elif defined(__AVX2__)
constexpr Blocking kBlockF32{6, 2, 144, 256, 4096};
constexpr Blocking kBlockF64{6, 2, 96, 256, 2048};
#else
constexpr Blocking kBlockF32{4, 4, 128, 256, 2048};
constexpr Blocking kBlockF64{4, 4, 64, 256, 2048};
#endif

// Assumptions: a and b are packed panels (pack_a / pack_b); b is 64-byte
// aligned; kc >= 1; c holds a full MR x NR tile with row stride ldc.
template <class T, int MR, int NV>
void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict c,
                  int64_t ldc, const T* __restrict bias, bool accumulate) {
  using V = Vec<T>;
  constexpr int W = V::W, NR = NV * W;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = accumulate ? V::loadu(c + i * ldc + j * W) : V::zero();
  if (bias) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = acc[i][j] + V::loadu(bias + j * W);
  }
  for (int64_t p = 0; p < kc; ++p) {
    V bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = V::load(b + j * W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = V::broadcast(a[i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = fma(ai, bv[j], acc[i][j]);
    }
    a += MR;
    b += NR;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j].storeu(c + i * ldc + j * W);
}

template <class T, int MR>
void pack_a(int64_t rows, int64_t kc, const T* a, int64_t rs, int64_t cs, T* dst) {
  if (rows < MR)
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t i = rows; i < MR; ++i) dst[p * MR + i] = T(0);
  if (cs == 1) {  // rows of A contiguous: read each row once, scatter by MR
    for (int64_t i = 0; i < rows; ++i) {
      const T* src = a + i * rs;
      for (int64_t p = 0; p < kc; ++p) dst[p * MR + i] = src[p];
    }
  } else {
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t i = 0; i < rows; ++i) dst[p * MR + i] = a[i * rs + p * cs];
  }
}

template <class T, int NV>
void pack_b(int64_t kc, int64_t cols, const T* b, int64_t rs, int64_t cs, T* dst) {
  using V = Vec<T>;
  constexpr int NR = NV * V::W;
  if (cols == NR && cs == 1) {  // row slices contiguous: whole vectors
    for (int64_t p = 0; p < kc; ++p)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) V::loadu(b + p * rs + j * V::W).store(dst + p * NR + j * V::W);
    return;
  }
  if (cols < NR)
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t j = cols; j < NR; ++j) dst[p * NR + j] = T(0);
  if (rs == 1) {  // columns contiguous (a transposed B): read each column once
    for (int64_t j = 0; j < cols; ++j) {
      const T* src = b + j * cs;
      for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = src[p];
    }
  } else {
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t j = 0; j < cols; ++j) dst[p * NR + j] = b[p * rs + j * cs];
  }
}

template <class T, const Blocking& B>
GemmKernels<T> make_kernels() {
  constexpr int nr = B.nv * Vec<T>::W;
  static_assert(B.mr * nr <= 32 * 32 && nr <= 64, "edge tile buffers in gemm.cpp are too small");
  static_assert(B.mc % B.mr == 0 && B.nc % nr == 0, "blocks must hold whole micro-panels");
  return GemmKernels<T>{B.mr, nr, B.mc, B.kc, B.nc, &pack_a<T, B.mr>, &pack_b<T, B.nv>,
                        &micro_kernel<T, B.mr, B.nv>};
}

}  // namespace

extern const GemmKernels<float> gemm_kernels_f32 = make_kernels<float, kBlockF32>();
extern const GemmKernels<double> gemm_kernels_f64 = make_kernels<double, kBlockF64>();

}  // namespace tfg::TFG_ISA_NS
