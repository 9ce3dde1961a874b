// conv2d and its backward (NCHW, PyTorch's F.conv2d): argument checks, the
// output geometry, and the choice of algorithm per shape (see README.md here).
#pragma once
#include <array>

#include "core/array.h"
#include "ops/conv2d/conv_geometry.h"

namespace tfg {

struct Conv2dOptions {
  enum class Padding { explicit_, same, valid };
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};   // used when padding_mode is explicit_
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
  Padding padding_mode = Padding::explicit_;
};

// Validates input, weight, bias and options (the checks of conv2d, naming op
// in messages); returns the geometry with the batch dimension (1 for an
// unbatched (C, H, W) input) and "same"/"valid" padding resolved. Shared with
// the CUDA test bindings.
ConvGeometry conv2d_geometry(const char* op, const Array& x, const Array& weight, const Array* bias,
                             const Conv2dOptions& options);
// The same for conv2d_backward, plus grad_output's dtype and shape.
ConvGeometry conv2d_backward_geometry(const Array& grad_output, const Array& x, const Array& weight,
                                      const Array* bias, const Conv2dOptions& options);
// (N, OC, OH, OW), or (OC, OH, OW) when unbatched.
Shape conv2d_output_shape(const ConvGeometry& g, bool batched);

Array conv2d(const Array& x, const Array& weight, const Array* bias, const Conv2dOptions& options);

// The gradients asked for by output_mask (input, weight, bias); the others are
// left empty (null data). grad_bias needs a bias: it is only its shape that is used.
struct Conv2dGrads {
  Array input, weight, bias;
};
Conv2dGrads conv2d_backward(const Array& grad_output, const Array& x, const Array& weight,
                            const Array* bias, const Conv2dOptions& options,
                            std::array<bool, 3> output_mask);

// Threads for a convolution of this many flops (1 for small ones).
int conv_threads(double flops);

// The algorithms, on C-contiguous operands of validated shapes (conv2d_gemm.cpp,
// conv2d.cpp for the depthwise driver). Outputs are fully written.
template <class T>
void conv2d_forward_direct(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out);
template <class T>
void conv2d_forward_gemm(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out);
template <class T>
void conv2d_backward_input_gemm(const ConvGeometry& g, const T* grad_out, const T* w, T* grad_x);
template <class T>
void conv2d_backward_weight_gemm(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_w);

}  // namespace tfg
