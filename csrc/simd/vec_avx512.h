// Vec<T> on AVX-512 (F/BW/DQ/VL): 16 floats or 8 doubles.
#pragma once
#include <immintrin.h>

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
};

}  // namespace tfg::TFG_ISA_NS
