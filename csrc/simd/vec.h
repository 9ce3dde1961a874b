// The small vector API the CPU kernels are written in: Vec<T> with a
// compile-time width W and load/store/broadcast/arithmetic. Included only by
// per-ISA kernel sources (compiled with TFG_ISA_NS set); the header matching
// the compile flags of that translation unit is picked here.
//
// The API, identical on every ISA (T = float or double, W lanes):
//   zero, broadcast(x), load/loadu(p), store/storeu(p)   (load/store: W*sizeof(T)-aligned)
//   loadu_partial(p, n, fill = 0) / storeu_partial(p, n) first n < W lanes only
//                                                      (the rest of a load is `fill`;
//                                                      no memory beyond p + n is touched)
//   storeu_lanes(p, lo, hi): lanes lo <= l < hi only, lane l at p[l] (0 <= lo <= hi <= W;
//                            nothing else at p is touched)
//   a + b, a - b, a * b, a / b, fma(a, b, c) = a * b + c, max(a, b), min(a, b)
//                                                      (max/min: b when either is NaN)
//   Mask greater_or_nan(a, b): lanes where a > b or a is NaN; select(m, a, b) = m ? a : b
//   reduce_add(), reduce_max()
//   free function exp(a): e^a per lane within 1 ulp (simd/exp_constants.h); a below
//     about ln(smallest normal) gives 0 (no denormal is ever computed), above
//     ln(largest finite) +inf, NaN gives NaN (the scalar level calls std::exp, which
//     keeps denormal results)
//   load_deinterleave2(p, even, odd): reads p[0, 2W); even[j] = p[2j], odd[j] = p[2j + 1]
//   interleave2(a, b, lo, hi): (lo, hi) = a0 b0 a1 b1 ... (the inverse of the above)
//   store_int64(p, n): the first n <= W lanes, integers below 2^31 (float) or 2^51
//                      (double) in magnitude, stored as int64 at p (any alignment)
//   mask_bits(m): the lanes of a Mask as bits, lane l at bit l (W <= 16 bits used)
//
// Everything is declared in namespace tfg::TFG_ISA_NS so that the copies of
// these inline functions compiled with different flags never merge at link time.
#pragma once
#ifndef TFG_ISA_NS
#error "simd/vec.h is for per-ISA kernel sources (TFG_ISA_NS undefined)"
#endif

#include <cstdint>

#if defined(__AVX512F__)
#include "simd/vec_avx512.h"
#elif defined(__AVX2__) && defined(__FMA__)
#include "simd/vec_avx2.h"
#else
#include "simd/vec_scalar.h"
#endif
