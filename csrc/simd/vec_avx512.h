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
  friend Vec operator-(Vec a, Vec b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm512_div_ps(a.v, b.v)}; }
  friend Vec max(Vec a, Vec b) { return {_mm512_max_ps(a.v, b.v)}; }
  friend Vec min(Vec a, Vec b) { return {_mm512_min_ps(a.v, b.v)}; }
  friend Mask greater_or_nan(Vec a, Vec b) {
    return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ) | _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q);
  }
  friend Vec select(Mask m, Vec a, Vec b) { return {_mm512_mask_blend_ps(m, b.v, a.v)}; }
  float reduce_max() const { return _mm512_reduce_max_ps(v); }
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
  friend Vec operator-(Vec a, Vec b) { return {_mm512_sub_pd(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm512_div_pd(a.v, b.v)}; }
  friend Vec max(Vec a, Vec b) { return {_mm512_max_pd(a.v, b.v)}; }
  friend Vec min(Vec a, Vec b) { return {_mm512_min_pd(a.v, b.v)}; }
  friend Mask greater_or_nan(Vec a, Vec b) {
    return _mm512_cmp_pd_mask(a.v, b.v, _CMP_GT_OQ) | _mm512_cmp_pd_mask(a.v, a.v, _CMP_UNORD_Q);
  }
  friend Vec select(Mask m, Vec a, Vec b) { return {_mm512_mask_blend_pd(m, b.v, a.v)}; }
  double reduce_max() const { return _mm512_reduce_max_pd(v); }
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
