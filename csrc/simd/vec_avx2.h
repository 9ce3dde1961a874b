// Vec<T> on AVX2 + FMA: 8 floats or 4 doubles.
#pragma once
#include <immintrin.h>

#include "simd/exp_constants.h"

namespace tfg::TFG_ISA_NS {

template <class T> struct Vec;

template <>
struct Vec<float> {
  static constexpr int W = 8;
  __m256 v;
  static Vec zero() { return {_mm256_setzero_ps()}; }
  static Vec broadcast(float x) { return {_mm256_set1_ps(x)}; }
  static Vec load(const float* p) { return {_mm256_load_ps(p)}; }
  static Vec loadu(const float* p) { return {_mm256_loadu_ps(p)}; }
  void store(float* p) const { _mm256_store_ps(p, v); }
  void storeu(float* p) const { _mm256_storeu_ps(p, v); }
  friend Vec operator+(Vec a, Vec b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm256_mul_ps(a.v, b.v)}; }
  friend Vec fma(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  using Mask = __m256;  // all-ones lanes where true
  static __m256i lanes_below(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static Vec loadu_partial(const float* p, int n, float fill = 0) {
    const __m256i m = lanes_below(n);
    return {_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m))};
  }
  void storeu_partial(float* p, int n) const { _mm256_maskstore_ps(p, lanes_below(n), v); }
  void storeu_lanes(float* p, int lo, int hi) const {
    _mm256_maskstore_ps(p, _mm256_andnot_si256(lanes_below(lo), lanes_below(hi)), v);
  }
  friend Vec operator-(Vec a, Vec b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm256_div_ps(a.v, b.v)}; }
  friend Vec max(Vec a, Vec b) { return {_mm256_max_ps(a.v, b.v)}; }
  friend Vec min(Vec a, Vec b) { return {_mm256_min_ps(a.v, b.v)}; }
  friend Mask greater_or_nan(Vec a, Vec b) {
    return _mm256_or_ps(_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ), _mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q));
  }
  friend Vec select(Mask m, Vec a, Vec b) { return {_mm256_blendv_ps(b.v, a.v, m)}; }
  float reduce_add() const {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  float reduce_max() const {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
  }
  static void load_deinterleave2(const float* p, Vec& even, Vec& odd) {
    const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    // Within 128-bit halves, then the middle 64-bit quarters swapped into order.
    const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    even.v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    odd.v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  friend void interleave2(Vec a, Vec b, Vec& lo, Vec& hi) {
    const __m256 l = _mm256_unpacklo_ps(a.v, b.v), h = _mm256_unpackhi_ps(a.v, b.v);
    lo.v = _mm256_permute2f128_ps(l, h, 0x20);
    hi.v = _mm256_permute2f128_ps(l, h, 0x31);
  }
  void store_int64(int64_t* p, int n) const {
    const __m256i i32 = _mm256_cvttps_epi32(v);
    const __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(i32));
    const __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(i32, 1));
    if (n >= 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), lo);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + 4), hi);
      return;
    }
    const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
    _mm256_maskstore_epi64(reinterpret_cast<long long*>(p), _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), lane), lo);
    _mm256_maskstore_epi64(reinterpret_cast<long long*>(p + 4), _mm256_cmpgt_epi64(_mm256_set1_epi64x(n - 4), lane), hi);
  }
  static unsigned mask_bits(Mask m) { return static_cast<unsigned>(_mm256_movemask_ps(m)); }
};

template <>
struct Vec<double> {
  static constexpr int W = 4;
  __m256d v;
  static Vec zero() { return {_mm256_setzero_pd()}; }
  static Vec broadcast(double x) { return {_mm256_set1_pd(x)}; }
  static Vec load(const double* p) { return {_mm256_load_pd(p)}; }
  static Vec loadu(const double* p) { return {_mm256_loadu_pd(p)}; }
  void store(double* p) const { _mm256_store_pd(p, v); }
  void storeu(double* p) const { _mm256_storeu_pd(p, v); }
  friend Vec operator+(Vec a, Vec b) { return {_mm256_add_pd(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm256_mul_pd(a.v, b.v)}; }
  friend Vec fma(Vec a, Vec b, Vec c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }
  using Mask = __m256d;  // all-ones lanes where true
  static __m256i lanes_below(int n) { return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)); }
  static Vec loadu_partial(const double* p, int n, double fill = 0) {
    const __m256i m = lanes_below(n);
    return {_mm256_blendv_pd(_mm256_set1_pd(fill), _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m))};
  }
  void storeu_partial(double* p, int n) const { _mm256_maskstore_pd(p, lanes_below(n), v); }
  void storeu_lanes(double* p, int lo, int hi) const {
    _mm256_maskstore_pd(p, _mm256_andnot_si256(lanes_below(lo), lanes_below(hi)), v);
  }
  friend Vec operator-(Vec a, Vec b) { return {_mm256_sub_pd(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm256_div_pd(a.v, b.v)}; }
  friend Vec max(Vec a, Vec b) { return {_mm256_max_pd(a.v, b.v)}; }
  friend Vec min(Vec a, Vec b) { return {_mm256_min_pd(a.v, b.v)}; }
  friend Mask greater_or_nan(Vec a, Vec b) {
    return _mm256_or_pd(_mm256_cmp_pd(a.v, b.v, _CMP_GT_OQ), _mm256_cmp_pd(a.v, a.v, _CMP_UNORD_Q));
  }
  friend Vec select(Mask m, Vec a, Vec b) { return {_mm256_blendv_pd(b.v, a.v, m)}; }
  double reduce_add() const {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
  double reduce_max() const {
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static void load_deinterleave2(const double* p, Vec& even, Vec& odd) {
    const __m256d a = _mm256_loadu_pd(p), b = _mm256_loadu_pd(p + 4);
    even.v = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0));
    odd.v = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0));
  }
  friend void interleave2(Vec a, Vec b, Vec& lo, Vec& hi) {
    const __m256d l = _mm256_unpacklo_pd(a.v, b.v), h = _mm256_unpackhi_pd(a.v, b.v);
    lo.v = _mm256_permute2f128_pd(l, h, 0x20);
    hi.v = _mm256_permute2f128_pd(l, h, 0x31);
  }
  void store_int64(int64_t* p, int n) const {
    // Integers below 2^51 in magnitude: adding 1.5 * 2^52 puts them in the low mantissa bits.
    const __m256d magic = _mm256_set1_pd(6755399441055744.0);
    const __m256i i64 = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(v, magic)), _mm256_castpd_si256(magic));
    if (n >= 4) _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), i64);
    else _mm256_maskstore_epi64(reinterpret_cast<long long*>(p), lanes_below(n), i64);
  }
  static unsigned mask_bits(Mask m) { return static_cast<unsigned>(_mm256_movemask_pd(m)); }
};

// e^x per lane (Note [exp polynomial] in exp_constants.h). n = round(x / ln2)
// comes out of the magic-number addition t = x log2e + 1.5 * 2^23 (2^52 for
// double), whose low mantissa bits then hold n. 2^n is applied as two factors
// 2^floor(n/2) * 2^ceil(n/2), so that n from -126 to 128 (-1022 to 1024)
// needs no special case: each factor is a normal number. x is clamped to
// [kMin, kMax] first (Note [exp range]; max/min keep NaN as their second
// operand) and lanes below kMin, -inf among them, are zeroed at the end.
inline Vec<float> exp(Vec<float> x) {
  using namespace simd_exp;
  const __m256 shift = _mm256_set1_ps(0x1.8p23f);
  const __m256 xc = _mm256_min_ps(_mm256_set1_ps(kMaxF), _mm256_max_ps(_mm256_set1_ps(kMinF), x.v));
  const __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(kLog2eF), shift);
  const __m256 n = _mm256_sub_ps(t, shift);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2HiF), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2LoF), r);
  __m256 p = _mm256_set1_ps(kQF[0]);
  for (int i = 1; i < 5; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kQF[i]));
  const __m256 one = _mm256_set1_ps(1.0f);
  p = _mm256_fmadd_ps(_mm256_fmadd_ps(p, r, one), r, one);
  const __m256i u = _mm256_castps_si256(t), half = _mm256_srli_epi32(u, 1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(u, half), bias), 23));
  const __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  return {_mm256_andnot_ps(_mm256_cmp_ps(x.v, _mm256_set1_ps(kMinF), _CMP_LT_OQ), y)};
}

inline Vec<double> exp(Vec<double> x) {
  using namespace simd_exp;
  const __m256d shift = _mm256_set1_pd(0x1.8p52);
  const __m256d xc = _mm256_min_pd(_mm256_set1_pd(kMaxD), _mm256_max_pd(_mm256_set1_pd(kMinD), x.v));
  const __m256d t = _mm256_fmadd_pd(xc, _mm256_set1_pd(kLog2eD), shift);
  const __m256d n = _mm256_sub_pd(t, shift);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(kLn2HiD), xc);
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(kLn2LoD), r);
  __m256d p = _mm256_set1_pd(kQD[0]);
  for (int i = 1; i < 10; ++i) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(kQD[i]));
  const __m256d one = _mm256_set1_pd(1.0);
  p = _mm256_fmadd_pd(_mm256_fmadd_pd(p, r, one), r, one);
  const __m256i u = _mm256_castpd_si256(t), half = _mm256_srli_epi64(u, 1);
  const __m256i bias = _mm256_set1_epi64x(1023);
  const __m256d s1 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(half, bias), 52));
  const __m256d s2 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_sub_epi64(u, half), bias), 52));
  const __m256d y = _mm256_mul_pd(_mm256_mul_pd(p, s1), s2);
  return {_mm256_andnot_pd(_mm256_cmp_pd(x.v, _mm256_set1_pd(kMinD), _CMP_LT_OQ), y)};
}

}  // namespace tfg::TFG_ISA_NS
