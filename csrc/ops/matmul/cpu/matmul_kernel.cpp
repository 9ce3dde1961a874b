// Per-ISA half of GEMM: packing routines, the MR x NR register-blocked
// micro-kernels and the matrix-vector kernels, written once on Vec<T> and
// compiled for every ISA level (see Note [per-ISA object libraries] in
// CMakeLists.txt); AVX-512 adds an in-register transpose for packing row-major A.
#include <type_traits>
#include <utility>

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

// Computes ROWS <= MR rows of an MR x NR tile (ROWS < MR at the bottom edge of C,
// so no work is wasted on padding rows there).
// Assumptions: b is a packed panel (pack_b, ldb = NR) or any kc x NR block of
// rows ldb elements apart (Note [strided B]); kc >= 1; c holds
// ROWS x NR elements with row stride ldc. With PACKED_A, a is a packed panel
// (pack_a) and lda is unused; otherwise a is A itself, row i of the tile at
// a + i * lda, its K elements contiguous (Note [unpacked A]).
template <class T, int MR, int ROWS, int NV, bool PACKED_A>
void micro_kernel(int64_t kc, const T* __restrict a, int64_t lda, const T* __restrict b,
                  int64_t ldb, T* __restrict c, int64_t ldc, const T* __restrict bias, bool accumulate) {
  using V = Vec<T>;
  constexpr int W = V::W, NR = NV * W;
  // Note [C last]: C is prefetched now and read only after the K loop, so a
  // tile of C that is not in cache (large products) arrives during the loop
  // instead of stalling its start.
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i)
    for (int off = 0; off < NR * static_cast<int>(sizeof(T)); off += 64)
      __builtin_prefetch(reinterpret_cast<const char*>(c + i * ldc) + off, 1, 3);
  V acc[ROWS][NV];
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = bias ? V::loadu(bias + j * W) : V::zero();
  for (int64_t p = 0; p < kc; ++p) {
    V bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = V::loadu(b + j * W);
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      const V ai = V::broadcast(PACKED_A ? a[i] : a[i * lda]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = fma(ai, bv[j], acc[i][j]);
    }
    a += PACKED_A ? MR : 1;
    b += ldb;
  }
  if (accumulate) {
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = acc[i][j] + V::loadu(c + i * ldc + j * W);
  }
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j].storeu(c + i * ldc + j * W);
}

#if defined(__AVX512F__)
// Note [pack_a transpose]: packing row-major A is a transpose (each k step of
// a micro-panel takes one element from each of MR rows). Element by element
// that is one scalar store per element and about an eighth of a small GEMM's
// time; here MR rows x 16 columns are loaded as vectors, transposed in
// registers (4 shuffle stages) and stored MR lanes at a time.
template <int MR>
int64_t pack_a_rows_avx512(int64_t kc, const float* a, int64_t rs, float* dst) {
  static_assert(MR <= 16, "one register holds at most 16 rows");
  const __mmask16 lanes = static_cast<__mmask16>((1u << MR) - 1);
  int64_t p = 0;
  for (; p + 16 <= kc; p += 16) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = i < MR ? _mm512_loadu_ps(a + i * rs + p) : _mm512_setzero_ps();
    for (int i = 0; i < 16; i += 2) {  // pairs of rows interleaved within 128-bit lanes
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    __m512 u[4][4];  // u[g][j]: rows 4g..4g+3 of column 4L+j in 128-bit lane L
    for (int g = 0; g < 4; ++g) {
      const __m512d lo0 = _mm512_castps_pd(t[4 * g]), hi0 = _mm512_castps_pd(t[4 * g + 1]);
      const __m512d lo1 = _mm512_castps_pd(t[4 * g + 2]), hi1 = _mm512_castps_pd(t[4 * g + 3]);
      u[g][0] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo0, lo1));
      u[g][1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo0, lo1));
      u[g][2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi0, hi1));
      u[g][3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi0, hi1));
    }
    for (int j = 0; j < 4; ++j) {  // 4 x 4 transpose of 128-bit lanes
      const __m512 v0 = _mm512_shuffle_f32x4(u[0][j], u[1][j], 0x44);
      const __m512 v1 = _mm512_shuffle_f32x4(u[0][j], u[1][j], 0xEE);
      const __m512 v2 = _mm512_shuffle_f32x4(u[2][j], u[3][j], 0x44);
      const __m512 v3 = _mm512_shuffle_f32x4(u[2][j], u[3][j], 0xEE);
      _mm512_mask_storeu_ps(dst + (p + j) * MR, lanes, _mm512_shuffle_f32x4(v0, v2, 0x88));
      _mm512_mask_storeu_ps(dst + (p + 4 + j) * MR, lanes, _mm512_shuffle_f32x4(v0, v2, 0xDD));
      _mm512_mask_storeu_ps(dst + (p + 8 + j) * MR, lanes, _mm512_shuffle_f32x4(v1, v3, 0x88));
      _mm512_mask_storeu_ps(dst + (p + 12 + j) * MR, lanes, _mm512_shuffle_f32x4(v1, v3, 0xDD));
    }
  }
  return p;
}
#endif

template <class T, int MR>
void pack_a(int64_t rows, int64_t kc, const T* a, int64_t rs, int64_t cs, T* dst) {
  if (rows < MR)
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t i = rows; i < MR; ++i) dst[p * MR + i] = T(0);
  if (cs == 1) {  // rows of A contiguous: read each row once, scatter by MR
    int64_t done = 0;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float> && MR <= 16)
      if (rows == MR) done = pack_a_rows_avx512<MR>(kc, a, rs, dst);
#endif
    for (int64_t i = 0; i < rows; ++i) {
      const T* src = a + i * rs;
      for (int64_t p = done; p < kc; ++p) dst[p * MR + i] = src[p];
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

// Note [gemv_rows order]: B is streamed row after row (four rows per pass) so
// every memory stream is sequential; y, a chunk of at most a few KB, stays in L1.
template <class T>
void gemv_rows(int64_t k, int64_t n, const T* x, const T* b, int64_t ld, T* y, const T* bias,
               bool accumulate) {
  using V = Vec<T>;
  constexpr int W = V::W;
  for (int64_t j = 0; j < n; ++j) y[j] = (accumulate ? y[j] : T(0)) + (bias ? bias[j] : T(0));
  const int64_t nv = n / W * W;
  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    const T* b0 = b + p * ld;
    const T* b1 = b0 + ld;
    const T* b2 = b1 + ld;
    const T* b3 = b2 + ld;
    const V x0 = V::broadcast(x[p]), x1 = V::broadcast(x[p + 1]);
    const V x2 = V::broadcast(x[p + 2]), x3 = V::broadcast(x[p + 3]);
    for (int64_t j = 0; j < nv; j += W) {
      V acc = fma(x0, V::loadu(b0 + j), V::loadu(y + j));
      acc = fma(x1, V::loadu(b1 + j), acc);
      acc = fma(x2, V::loadu(b2 + j), acc);
      fma(x3, V::loadu(b3 + j), acc).storeu(y + j);
    }
    for (int64_t j = nv; j < n; ++j)
      y[j] += x[p] * b0[j] + x[p + 1] * b1[j] + x[p + 2] * b2[j] + x[p + 3] * b3[j];
  }
  for (; p < k; ++p) {
    const T* b0 = b + p * ld;
    const V x0 = V::broadcast(x[p]);
    for (int64_t j = 0; j < nv; j += W) fma(x0, V::loadu(b0 + j), V::loadu(y + j)).storeu(y + j);
    for (int64_t j = nv; j < n; ++j) y[j] += x[p] * b0[j];
  }
}

// Four dot products at a time: x is loaded once for four columns of B.
template <class T>
void gemv_cols(int64_t k, int64_t n, const T* x, const T* b, int64_t ld, T* y, const T* bias,
               bool accumulate) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const int64_t kv = k / W * W;
  auto finish = [&](int64_t j, T dot) {
    y[j] = (accumulate ? y[j] : T(0)) + (bias ? bias[j] : T(0)) + dot;
  };
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const T* c0 = b + j * ld;
    const T* c1 = c0 + ld;
    const T* c2 = c1 + ld;
    const T* c3 = c2 + ld;
    V a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
    for (int64_t p = 0; p < kv; p += W) {
      const V xv = V::loadu(x + p);
      a0 = fma(xv, V::loadu(c0 + p), a0);
      a1 = fma(xv, V::loadu(c1 + p), a1);
      a2 = fma(xv, V::loadu(c2 + p), a2);
      a3 = fma(xv, V::loadu(c3 + p), a3);
    }
    T d0 = a0.reduce_add(), d1 = a1.reduce_add(), d2 = a2.reduce_add(), d3 = a3.reduce_add();
    for (int64_t p = kv; p < k; ++p) {
      d0 += x[p] * c0[p]; d1 += x[p] * c1[p]; d2 += x[p] * c2[p]; d3 += x[p] * c3[p];
    }
    finish(j, d0); finish(j + 1, d1); finish(j + 2, d2); finish(j + 3, d3);
  }
  for (; j < n; ++j) {
    const T* c0 = b + j * ld;
    V a0 = V::zero();
    for (int64_t p = 0; p < kv; p += W) a0 = fma(V::loadu(x + p), V::loadu(c0 + p), a0);
    T d0 = a0.reduce_add();
    for (int64_t p = kv; p < k; ++p) d0 += x[p] * c0[p];
    finish(j, d0);
  }
}

template <class T, const Blocking& B, size_t... R>
GemmKernels<T> make_kernels(std::index_sequence<R...>) {
  constexpr int nr = B.nv * Vec<T>::W;
  static_assert(B.mr * nr <= 32 * 32 && nr <= 64, "edge tile buffers in gemm.cpp are too small");
  static_assert(B.mr <= GemmKernels<T>::kMaxMR, "micro-kernel table too small");
  static_assert(B.mc % B.mr == 0 && B.nc % nr == 0, "blocks must hold whole micro-panels");
  return GemmKernels<T>{B.mr, nr, B.mc, B.kc, B.nc, &pack_a<T, B.mr>, &pack_b<T, B.nv>,
                        {&micro_kernel<T, B.mr, static_cast<int>(R) + 1, B.nv, true>...},
                        {&micro_kernel<T, B.mr, static_cast<int>(R) + 1, B.nv, false>...},
                        &gemv_rows<T>, &gemv_cols<T>};
}

}  // namespace

extern const GemmKernels<float> gemm_kernels_f32 =
    make_kernels<float, kBlockF32>(std::make_index_sequence<kBlockF32.mr>());
extern const GemmKernels<double> gemm_kernels_f64 =
    make_kernels<double, kBlockF64>(std::make_index_sequence<kBlockF64.mr>());

}  // namespace tfg::TFG_ISA_NS
