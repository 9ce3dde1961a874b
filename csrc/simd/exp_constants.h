// Constants of the vectorised exp (vec_avx2.h, vec_avx512.h): the split of
// ln 2, the range limits and the polynomial for e^r on |r| <= ln(2)/2.
//
// Note [exp polynomial]: x = n ln2 + r with n = round(x / ln2), so
// e^x = 2^n e^r. e^r is evaluated as 1 + r (1 + r Q(r)) by Horner, where
// Q approximates (e^r - 1 - r) / r^2 on [-ln2/2, ln2/2]; Q is the Chebyshev
// fit (near-minimax) of degree 4 for float (relative error of the series
// below 8e-9, 0.07 ulp) and of degree 9 for double (1.3e-17, 0.06 ulp), so the
// result is within about 1 ulp, dominated by rounding in the evaluation.
// ln 2 = hi + lo (Cody-Waite): r = (x - n hi) - n lo, each step one FMA, keeps
// r accurate to a few ulp of r even where x - n ln2 cancels heavily.
#pragma once

namespace tfg::simd_exp {

// Note [exp range]: below kMin the result is 0 (kMin is a hair above
// ln(smallest normal), so every kept result is a normal number); kMax is a
// hair above ln(largest finite), so clamping x to it turns +inf and every
// overflowing x into +inf through the arithmetic itself. The kernels never
// compute a denormal: on Intel cores each instruction producing one takes a
// microcode assist (measured here: exp over inputs near -88 was 25x slower).
constexpr float kMinF = -87.3365f, kMaxF = 88.7229f;
constexpr double kMinD = -708.3964, kMaxD = 709.79;

constexpr float kLog2eF = 1.44269504088896341f;
constexpr float kLn2HiF = 0x1.62e430p-1f, kLn2LoF = -0x1.05c610p-29f;
constexpr double kLog2eD = 1.4426950408889634074;
constexpr double kLn2HiD = 0x1.62e42fefa39efp-1, kLn2LoD = 0x1.abc9e3b39803fp-56;

// Q's coefficients, highest degree first.
constexpr float kQF[5] = {0x1.6d10fcp-10f, 0x1.120b62p-7f, 0x1.55551ap-5f, 0x1.5554dep-3f, 0x1p-1f};
constexpr double kQD[10] = {0x1.af389ecfc4b9cp-26, 0x1.28917c89a43a7p-22, 0x1.71de0db2f6b19p-19,
                            0x1.a019b9149a41cp-16, 0x1.a01a01a7c2efep-13, 0x1.6c16c17889ef1p-10,
                            0x1.11111111109b5p-7,  0x1.5555555553d68p-5,  0x1.5555555555556p-3,
                            0x1.0000000000001p-1};

}  // namespace tfg::simd_exp
