// Direct (im2col-free) kernel for stride-1 convolutions, per ISA: a register
// block of R output channels x NV vectors of output pixels, accumulated over
// all input channels and taps from a zero-padded slab of input rows
// (Note [direct convolution] in conv2d_direct.cpp).
#pragma once
#include <cstdint>

#include "dispatch/isa.h"

namespace tfg {

template <class T>
struct DirectConvKernels {
  int r;          // output channels per block
  int64_t step;   // output pixels per register block (NV vectors)
  // For output channels [0, channels <= r) of one block and flat positions
  // f < count of a slab (row stride wp): out[c][f] = bias[c] + sum over input
  // channels i and taps (a, b) of w[(i * kh*kw + a*kw + b) * r + c] *
  // in[i * in_plane + f + a*dh*wp + b*dw]. Position f is row f / wp, column
  // f % wp; only columns < ow are stored, at out + c * out_plane + row * ow + column.
  // `partial` is scratch for partial_size(count) elements.
  // Assumptions: bias has r entries; reads up to step + (kw-1)*dw elements
  // past the last plane stay inside `in`.
  void (*slab)(const T* in, int64_t in_plane, int64_t cin, int64_t wp, int64_t kh, int64_t kw,
               int64_t dh, int64_t dw, const T* w, const T* bias, int channels, int64_t count,
               int64_t ow, T* out, int64_t out_plane, T* partial);
  int64_t partial_size(int64_t count) const { return r * ((count + step - 1) / step * step); }
};

TFG_ISA_TABLE(DirectConvKernels<float>, direct_conv_kernels_f32)
TFG_ISA_TABLE(DirectConvKernels<double>, direct_conv_kernels_f64)

}  // namespace tfg
