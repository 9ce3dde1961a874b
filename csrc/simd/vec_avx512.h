// Vec<T> on AVX-512 (F/BW/DQ/VL): 16 floats or 8 doubles.
#pragma once
#include <immintrin.h>

#include "simd/exp_constants.h"

namespace tfg::TFG_ISA_NS {

template <class T> struct Vec;

template <>
struct Vec<float> {
  static constexpr int W = 16;
  __m512 v;
  static Vec zero() { return {_mm512_setzero_ps()}; }
  static Vec broadcast(float x) { return {_mm512_set1_ps(x)}; }
  static Vec load(const float* p) { return {_mm512_load_ps(p)}; }
  static Vec loadu(const float* p) { return {_mm512_loadu_ps(p)}; }
  void store(float* p) const { _mm512_store_ps(p, v); }
  void storeu(float* p) const { _mm512_storeu_ps(p, v); }
  friend Vec operator+(Vec a, Vec b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend Vec fma(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  float reduce_add() const { return _mm512_reduce_add_ps(v); }
  using Mask = __mmask16;
  static Vec loadu_partial(const float* p, int n, float fill = 0) {
    return {_mm512_mask_loadu_ps(_mm512_set1_ps(fill), static_cast<Mask>((1u << n) - 1), p)};
  }
  void storeu_partial(float* p, int n) const { _mm512_mask_storeu_ps(p, static_cast<Mask>((1u << n) - 1), v); }
  void storeu_lanes(float* p, int lo, int hi) const {
    _mm512_mask_storeu_ps(p, static_cast<Mask>(((1u << hi) - 1) & ~((1u << lo) - 1)), v);
  }
  friend Vec operator-(Vec a, Vec b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm512_div_ps(a.v, b.v)}; }
  friend Vec max(Vec a, Vec b) { return {_mm512_max_ps(a.v, b.v)}; }
  friend Vec min(Vec a, Vec b) { return {_mm512_min_ps(a.v, b.v)}; }
  friend Mask greater_or_nan(Vec a, Vec b) {
    return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ) | _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q);
  }
  friend Vec select(Mask m, Vec a, Vec b) { return {_mm512_mask_blend_ps(m, b.v, a.v)}; }
  float reduce_max() const { return _mm512_reduce_max_ps(v); }
  static void load_deinterleave2(const float* p, Vec& even, Vec& odd) {
    const __m512 a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    even.v = _mm512_permutex2var_ps(a, ie, b);
    odd.v = _mm512_permutex2var_ps(a, _mm512_add_epi32(ie, _mm512_set1_epi32(1)), b);
  }
  friend void interleave2(Vec a, Vec b, Vec& lo, Vec& hi) {
    const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    lo.v = _mm512_permutex2var_ps(a.v, il, b.v);
    hi.v = _mm512_permutex2var_ps(a.v, _mm512_add_epi32(il, _mm512_set1_epi32(8)), b.v);
  }
  void store_int64(int64_t* p, int n) const {
    const __m512i lo = _mm512_cvttps_epi64(_mm512_castps512_ps256(v));
    const __m512i hi = _mm512_cvttps_epi64(_mm512_extractf32x8_ps(v, 1));
    if (n >= 16) {
      _mm512_storeu_si512(p, lo);
      _mm512_storeu_si512(p + 8, hi);
      return;
    }
    const unsigned m = (1u << n) - 1;
    _mm512_mask_storeu_epi64(p, static_cast<__mmask8>(m), lo);
    _mm512_mask_storeu_epi64(p + 8, static_cast<__mmask8>(m >> 8), hi);
  }
  static unsigned mask_bits(Mask m) { return m; }
};

template <>
struct Vec<double> {
  static constexpr int W = 8;
  __m512d v;
  static Vec zero() { return {_mm512_setzero_pd()}; }
  static Vec broadcast(double x) { return {_mm512_set1_pd(x)}; }
  static Vec load(const double* p) { return {_mm512_load_pd(p)}; }
  static Vec loadu(const double* p) { return {_mm512_loadu_pd(p)}; }
  void store(double* p) const { _mm512_store_pd(p, v); }
  void storeu(double* p) const { _mm512_storeu_pd(p, v); }
  friend Vec operator+(Vec a, Vec b) { return {_mm512_add_pd(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm512_mul_pd(a.v, b.v)}; }
  friend Vec fma(Vec a, Vec b, Vec c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
  double reduce_add() const { return _mm512_reduce_add_pd(v); }
  using Mask = __mmask8;
  static Vec loadu_partial(const double* p, int n, double fill = 0) {
    return {_mm512_mask_loadu_pd(_mm512_set1_pd(fill), static_cast<Mask>((1u << n) - 1), p)};
  }
  void storeu_partial(double* p, int n) const { _mm512_mask_storeu_pd(p, static_cast<Mask>((1u << n) - 1), v); }
  void storeu_lanes(double* p, int lo, int hi) const {
    _mm512_mask_storeu_pd(p, static_cast<Mask>(((1u << hi) - 1) & ~((1u << lo) - 1)), v);
  }
  friend Vec operator-(Vec a, Vec b) { return {_mm512_sub_pd(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm512_div_pd(a.v, b.v)}; }
  friend Vec max(Vec a, Vec b) { return {_mm512_max_pd(a.v, b.v)}; }
  friend Vec min(Vec a, Vec b) { return {_mm512_min_pd(a.v, b.v)}; }
  friend Mask greater_or_nan(Vec a, Vec b) {
    return _mm512_cmp_pd_mask(a.v, b.v, _CMP_GT_OQ) | _mm512_cmp_pd_mask(a.v, a.v, _CMP_UNORD_Q);
  }
  friend Vec select(Mask m, Vec a, Vec b) { return {_mm512_mask_blend_pd(m, b.v, a.v)}; }
  double reduce_max() const { return _mm512_reduce_max_pd(v); }
  static void load_deinterleave2(const double* p, Vec& even, Vec& odd) {
    const __m512d a = _mm512_loadu_pd(p), b = _mm512_loadu_pd(p + 8);
    const __m512i ie = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    even.v = _mm512_permutex2var_pd(a, ie, b);
    odd.v = _mm512_permutex2var_pd(a, _mm512_add_epi64(ie, _mm512_set1_epi64(1)), b);
  }
  friend void interleave2(Vec a, Vec b, Vec& lo, Vec& hi) {
    const __m512i il = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
    lo.v = _mm512_permutex2var_pd(a.v, il, b.v);
    hi.v = _mm512_permutex2var_pd(a.v, _mm512_add_epi64(il, _mm512_set1_epi64(4)), b.v);
  }
  void store_int64(int64_t* p, int n) const {
    const __m512i i64 = _mm512_cvttpd_epi64(v);
    if (n >= 8) _mm512_storeu_si512(p, i64);
    else _mm512_mask_storeu_epi64(p, static_cast<__mmask8>((1u << n) - 1), i64);
  }
  static unsigned mask_bits(Mask m) { return m; }
};

// e^x per lane (Note [exp polynomial] in exp_constants.h): n = round(x / ln2)
// by roundscale, 2^n applied by scalef (exact for any n, no exponent-field
// arithmetic). x is clamped to kMax (Note [exp range]; min keeps NaN as its
// second operand) and lanes below kMin, -inf among them, are left out of the
// zero-masked scalef, so they give 0 and never a denormal.
inline Vec<float> exp(Vec<float> x) {
  using namespace simd_exp;
  const __m512 xc = _mm512_min_ps(_mm512_set1_ps(kMaxF), x.v);
  const __mmask16 keep = _mm512_cmp_ps_mask(x.v, _mm512_set1_ps(kMinF), _CMP_NLT_UQ);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(kLog2eF)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2HiF), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2LoF), r);
  __m512 p = _mm512_set1_ps(kQF[0]);
  for (int i = 1; i < 5; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kQF[i]));
  const __m512 one = _mm512_set1_ps(1.0f);
  p = _mm512_fmadd_ps(_mm512_fmadd_ps(p, r, one), r, one);
  return {_mm512_maskz_scalef_ps(keep, p, n)};
}

inline Vec<double> exp(Vec<double> x) {
  using namespace simd_exp;
  const __m512d xc = _mm512_min_pd(_mm512_set1_pd(kMaxD), x.v);
  const __mmask8 keep = _mm512_cmp_pd_mask(x.v, _mm512_set1_pd(kMinD), _CMP_NLT_UQ);
  const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(xc, _mm512_set1_pd(kLog2eD)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(kLn2HiD), xc);
  r = _mm512_fnmadd_pd(n, _mm512_set1_pd(kLn2LoD), r);
  __m512d p = _mm512_set1_pd(kQD[0]);
  for (int i = 1; i < 10; ++i) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(kQD[i]));
  const __m512d one = _mm512_set1_pd(1.0);
  p = _mm512_fmadd_pd(_mm512_fmadd_pd(p, r, one), r, one);
  return {_mm512_maskz_scalef_pd(keep, p, n)};
}

}  // namespace tfg::TFG_ISA_NS
