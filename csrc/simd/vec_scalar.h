// Vec<T> for the portable baseline: one element wide. Kernels written on Vec
// then become plain scalar loops the compiler may still auto-vectorise.
#pragma once
#include <cmath>

namespace tfg::TFG_ISA_NS {

template <class T>
struct Vec {
  static constexpr int W = 1;
  T v;
  static Vec zero() { return {T(0)}; }
  static Vec broadcast(T x) { return {x}; }
  static Vec load(const T* p) { return {*p}; }
  static Vec loadu(const T* p) { return {*p}; }
  void store(T* p) const { *p = v; }
  void storeu(T* p) const { *p = v; }
  friend Vec operator+(Vec a, Vec b) { return {a.v + b.v}; }
  friend Vec operator*(Vec a, Vec b) { return {a.v * b.v}; }
  // a * b + c (contracted to one rounding when the compiler may)
  friend Vec fma(Vec a, Vec b, Vec c) { return {a.v * b.v + c.v}; }
  T reduce_add() const { return v; }
  using Mask = bool;
  static Vec loadu_partial(const T* p, int n, T fill = 0) { return {n > 0 ? *p : fill}; }
  void storeu_partial(T* p, int n) const { if (n > 0) *p = v; }
  void storeu_lanes(T* p, int lo, int hi) const { if (lo <= 0 && hi > 0) *p = v; }
  friend Vec operator-(Vec a, Vec b) { return {a.v - b.v}; }
  friend Vec operator/(Vec a, Vec b) { return {a.v / b.v}; }
  // max/min follow the x86 instructions: the second operand when either is NaN.
  friend Vec max(Vec a, Vec b) { return {a.v > b.v ? a.v : b.v}; }
  friend Vec min(Vec a, Vec b) { return {a.v < b.v ? a.v : b.v}; }
  friend Mask greater_or_nan(Vec a, Vec b) { return a.v > b.v || std::isnan(a.v); }
  friend Vec select(Mask m, Vec a, Vec b) { return m ? a : b; }
  T reduce_max() const { return v; }
  static void load_deinterleave2(const T* p, Vec& even, Vec& odd) { even.v = p[0]; odd.v = p[1]; }
  friend void interleave2(Vec a, Vec b, Vec& lo, Vec& hi) { lo = a; hi = b; }
  void store_int64(int64_t* p, int n) const { if (n > 0) *p = static_cast<int64_t>(v); }
  static unsigned mask_bits(Mask m) { return m ? 1u : 0u; }
};

// e^x; the portable level uses the C library's (denormal results are kept there).
template <class T>
inline Vec<T> exp(Vec<T> x) { return {std::exp(x.v)}; }

}  // namespace tfg::TFG_ISA_NS
