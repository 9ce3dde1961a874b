// Direct kernels for convolutions with one input channel per group
// (depthwise, groups == channels; also any single-channel input), per ISA:
// each works on one plane, vectorised along the output row.
#pragma once
#include <cstdint>

#include "dispatch/isa.h"
#include "ops/conv2d/conv_geometry.h"

namespace tfg {

template <class T>
struct DepthwiseKernels {
  // out (oh x ow) = bias + sum over taps of w[tap] * the shifted input plane (h x w).
  void (*forward_plane)(const ConvGeometry& g, const T* in, const T* w, T bias, T* out);
  // grad_in (h x w) += the transpose of forward_plane applied to grad_out (oh x ow).
  void (*backward_input_plane)(const ConvGeometry& g, const T* grad_out, const T* w, T* grad_in);
  // grad_w[tap] += <grad_out, the input plane shifted for that tap>, for every tap.
  void (*backward_weight_plane)(const ConvGeometry& g, const T* grad_out, const T* in, T* grad_w);
  // Sum of n contiguous elements (the bias gradient).
  T (*sum)(const T* p, int64_t n);
};

TFG_ISA_TABLE(DepthwiseKernels<float>, depthwise_kernels_f32)
TFG_ISA_TABLE(DepthwiseKernels<double>, depthwise_kernels_f64)

}  // namespace tfg
