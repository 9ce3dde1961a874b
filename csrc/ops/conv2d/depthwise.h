// Direct kernels for convolutions with one input channel per group
// (depthwise, groups == channels; also any single-channel input), per ISA:
// each works on one plane through a zero-padded copy of it in per-thread
// scratch (Note [padded planes] in cpu/conv2d_kernel.cpp).
#pragma once
#include <algorithm>
#include <cstdint>

#include "dispatch/isa.h"
#include "ops/conv2d/conv_geometry.h"

namespace tfg {

// Where a plane sits in its zero-padded copy: at (top, left) of a buffer of
// `rows` rows of `ld` elements. ld leaves a vector's worth of zeros after the
// last column every read can reach, so full-width loads never leave the buffer.
struct PadLayout {
  int64_t top, left, rows, ld;
  int64_t size() const { return rows * ld; }
};

inline constexpr int64_t kPadSlack = 64;

// The input plane as the forward and the weight gradient read it.
inline PadLayout input_pad_layout(const ConvGeometry& g) {
  const int64_t rows = std::max(g.h + g.ph, (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1);
  const int64_t cols = std::max(g.w + g.pw, (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1);
  return {g.ph, g.pw, rows, cols + kPadSlack};
}

// The output-gradient plane as that correlation reads it.
inline PadLayout grad_output_pad_layout(const ConvGeometry& g) {
  const int64_t top = (g.kh - 1) * g.dh - g.ph, left = (g.kw - 1) * g.dw - g.pw;
  const int64_t rows = std::max(top + g.oh, g.h + (g.kh - 1) * g.dh);
  const int64_t cols = std::max(left + g.ow, g.w + (g.kw - 1) * g.dw);
  return {top, left, rows, cols + kPadSlack};
}

// Scratch elements a plane kernel needs.
inline int64_t depthwise_scratch_size(const ConvGeometry& g) {
  const int64_t in = input_pad_layout(g).size();
  return input_grad_is_convolution(g) ? std::max(in, grad_output_pad_layout(g).size()) : in;
}

template <class T>
struct DepthwiseKernels {
  // out (oh x ow) = bias + sum over taps of w[tap] * the shifted input plane (h x w).
  void (*forward_plane)(const ConvGeometry& g, const T* in, const T* w, T bias, T* out, T* scratch);
  // grad_in (h x w) += the transpose of forward_plane applied to grad_out (oh x ow).
  void (*backward_input_plane)(const ConvGeometry& g, const T* grad_out, const T* w, T* grad_in,
                               T* scratch);
  // grad_w[tap] += <grad_out, the input plane shifted for that tap>, for every tap.
  void (*backward_weight_plane)(const ConvGeometry& g, const T* grad_out, const T* in, T* grad_w,
                                T* scratch);
  // Sum of n contiguous elements (the bias gradient).
  T (*sum)(const T* p, int64_t n);
};

TFG_ISA_TABLE(DepthwiseKernels<float>, depthwise_kernels_f32)
TFG_ISA_TABLE(DepthwiseKernels<double>, depthwise_kernels_f64)

}  // namespace tfg
