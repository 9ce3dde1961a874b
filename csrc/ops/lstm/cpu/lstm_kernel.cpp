// Per-ISA fused LSTM element-wise passes: the gate nonlinearities with the
// cell update (forward) and their derivatives (backward), one pass over each
// row of gates. Compiled once per ISA level (Note [per-ISA object libraries]
// in CMakeLists.txt).
#include "ops/lstm/lstm.h"
#include "simd/vec.h"

namespace tfg::TFG_ISA_NS {
namespace {

// Note [tanh]: tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|) loses
// accuracy to cancellation in 1 - e as |x| -> 0, so below |x| = 0.3 the odd
// Taylor series x + x^3 P(x^2) is used instead (its terms shrink by about
// 0.04 per degree there; coefficients 2^2n (2^2n - 1) B_2n / (2n)!, through
// x^13 for float and x^25 for double, the first term left out below a
// fraction of an ulp). Above 0.3, e <= exp(-0.6) keeps 1 - e >= 0.45, so the
// quotient stays within a few ulp. Large |x| gives e = 0 and exactly +-1; NaN
// propagates through exp.
constexpr double kTanhSeries[] = {
    -0.33333333333333331,   0.13333333333333333,    -0.053968253968253971,
    0.021869488536155203,   -0.0088632355299021973, 0.0035921280365724811,
    -0.0014558343870513183, 0.00059002744094558595, -0.00023912911424355248,
    9.6915379569294509e-05, -3.9278323883316833e-05, 1.5918905069328964e-05};
template <class T> constexpr int kTanhTerms = sizeof(T) == 4 ? 6 : 12;

template <class T>
Vec<T> tanh_v(Vec<T> x) {
  using V = Vec<T>;
  const V zero = V::zero(), one = V::broadcast(T(1));
  const V ax = max(x, zero - x);
  const V x2 = x * x;
  V p = V::broadcast(T(kTanhSeries[kTanhTerms<T> - 1]));
  for (int i = kTanhTerms<T> - 2; i >= 0; --i) p = fma(p, x2, V::broadcast(T(kTanhSeries[i])));
  const V small = fma(p * x2, x, x);
  const V e = exp(V::broadcast(T(-2)) * ax);
  const V big = (one - e) / (one + e);
  const V signed_big = select(greater_or_nan(zero, x), zero - big, big);
  return select(greater_or_nan(V::broadcast(T(0.3)), ax), small, signed_big);
}

// 1 / (1 + exp(-x)): 0 and 1 at the extremes (exp gives +inf / 0), NaN stays NaN.
template <class T>
Vec<T> sigmoid_v(Vec<T> x) {
  using V = Vec<T>;
  const V one = V::broadcast(T(1));
  return one / (one + exp(V::zero() - x));
}

// Loads and stores of `n` lanes: full vectors, or the partial tail of a row.
template <class T>
struct Lanes {
  int n;
  Vec<T> load(const T* p) const {
    return n == Vec<T>::W ? Vec<T>::loadu(p) : Vec<T>::loadu_partial(p, n);
  }
  void store(Vec<T> v, T* p) const {
    if (n == Vec<T>::W) v.storeu(p);
    else v.storeu_partial(p, n);
  }
};

template <class T, class F>
void for_lanes(int64_t n, F&& f) {
  constexpr int W = Vec<T>::W;
  int64_t j = 0;
  for (; j + W <= n; j += W) f(j, Lanes<T>{W});
  if (j < n) f(j, Lanes<T>{static_cast<int>(n - j)});
}

template <class T>
void forward(int64_t rows, int64_t cols, int64_t H, T* gates, const T* c_prev, T* c, T* h,
             bool keep_gates) {
  using V = Vec<T>;
  for (int64_t r = 0; r < rows; ++r) {
    T* gi = gates + r * 4 * H;
    T* gf = gi + H;
    T* gg = gf + H;
    T* go = gg + H;
    const T* cp = c_prev + r * H;
    T* cr = c + r * H;
    T* hr = h + r * H;
    for_lanes<T>(cols, [&](int64_t j, Lanes<T> l) {
      const V i = sigmoid_v(l.load(gi + j)), f = sigmoid_v(l.load(gf + j));
      const V g = tanh_v(l.load(gg + j)), o = sigmoid_v(l.load(go + j));
      const V cn = fma(f, l.load(cp + j), i * g);
      l.store(cn, cr + j);
      l.store(o * tanh_v(cn), hr + j);
      if (keep_gates) {
        l.store(i, gi + j);
        l.store(f, gf + j);
        l.store(g, gg + j);
        l.store(o, go + j);
      }
    });
  }
}

// With tc = tanh(c) and the incoming dh, dc:
//   dc' = dc + dh o (1 - tc^2)       (the full gradient of c)
//   d(pre_i) = dc' g i (1 - i)        d(pre_f) = dc' c_prev f (1 - f)
//   d(pre_g) = dc' i (1 - g^2)        d(pre_o) = dh tc o (1 - o)
//   d(c_prev) = dc' f
template <class T>
void backward(int64_t rows, int64_t cols, int64_t H, T* gates, const T* c, const T* c_prev,
              const T* gy, const T* dh, T* dc) {
  using V = Vec<T>;
  const V one = V::broadcast(T(1));
  for (int64_t r = 0; r < rows; ++r) {
    T* gi = gates + r * 4 * H;
    T* gf = gi + H;
    T* gg = gf + H;
    T* go = gg + H;
    const T* cr = c + r * H;
    const T* cp = c_prev + r * H;
    const T* gyr = gy ? gy + r * H : nullptr;
    const T* dhr = dh + r * H;
    T* dcr = dc + r * H;
    for_lanes<T>(cols, [&](int64_t j, Lanes<T> l) {
      const V i = l.load(gi + j), f = l.load(gf + j), g = l.load(gg + j), o = l.load(go + j);
      V dhv = l.load(dhr + j);
      if (gyr) dhv = dhv + l.load(gyr + j);
      const V tc = tanh_v(l.load(cr + j));
      const V dcv = fma(dhv * o, one - tc * tc, l.load(dcr + j));
      l.store(dcv * g * (i * (one - i)), gi + j);
      l.store(dcv * l.load(cp + j) * (f * (one - f)), gf + j);
      l.store(dcv * i * (one - g * g), gg + j);
      l.store(dhv * tc * (o * (one - o)), go + j);
      l.store(dcv * f, dcr + j);
    });
  }
}

template <class T>
LstmKernels<T> make_kernels() {
  return {&forward<T>, &backward<T>};
}

}  // namespace

extern const LstmKernels<float> lstm_kernels_f32 = make_kernels<float>();
extern const LstmKernels<double> lstm_kernels_f64 = make_kernels<double>();

}  // namespace tfg::TFG_ISA_NS
