// 2-D pooling (F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d and their
// backwards) on NCHW or CHW input: the entry points (pooling.cpp: argument
// checks, PyTorch's shape rules, splitting the planes over threads) and the
// per-ISA kernel table (cpu/pooling_kernel.cpp), whose kernels each process a
// run of whole, contiguous H x W planes.
#pragma once
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "core/array.h"
#include "dispatch/isa.h"

namespace tfg {

// kernel_size / stride / padding / dilation as PyTorch takes them: one value
// for both dimensions or (H, W); an empty stride means stride = kernel_size.
using IntList = std::vector<int64_t>;

// Returns (out, indices); indices is an empty Array unless return_indices.
std::pair<Array, Array> max_pool2d(const Array& x, const IntList& kernel_size, const IntList& stride,
                                   const IntList& padding, const IntList& dilation, bool ceil_mode,
                                   bool return_indices);
// grad_x; uses `indices` (from max_pool2d) when not null, else recomputes the argmax.
Array max_pool2d_backward(const Array& grad_output, const Array& x, const IntList& kernel_size,
                          const IntList& stride, const IntList& padding, const IntList& dilation,
                          bool ceil_mode, const Array* indices);

Array avg_pool2d(const Array& x, const IntList& kernel_size, const IntList& stride,
                 const IntList& padding, bool ceil_mode, bool count_include_pad,
                 std::optional<int64_t> divisor_override);
Array avg_pool2d_backward(const Array& grad_output, const Array& x, const IntList& kernel_size,
                          const IntList& stride, const IntList& padding, bool ceil_mode,
                          bool count_include_pad, std::optional<int64_t> divisor_override);

// output_size: one or two entries; nullopt keeps that input dimension.
using OutputSize = std::vector<std::optional<int64_t>>;
Array adaptive_avg_pool2d(const Array& x, const OutputSize& output_size);
Array adaptive_avg_pool2d_backward(const Array& grad_output, const Array& x,
                                   const OutputSize& output_size);

// The geometry of one plane, validated: input ih x iw, output oh x ow,
// window kh x kw at stride (sh, sw), padding (ph, pw), dilation (dh, dw).
// For avg pooling: divisor_override (0: none) and count_include_pad; adaptive
// pooling uses only the four sizes.
struct PoolGeometry {
  int64_t ih, iw, oh, ow;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  int64_t divisor_override = 0;
  bool count_include_pad = true;
};

// The argument checks of the entries above, with PyTorch's shape rules (also
// used by the CUDA test binding): each checks x and the options and returns
// the validated geometry; TypeError / ValueError naming `op`.
PoolGeometry max_pool2d_geometry(const char* op, const Array& x, const IntList& kernel_size,
                                 const IntList& stride, const IntList& padding, const IntList& dilation,
                                 bool ceil_mode);
PoolGeometry avg_pool2d_geometry(const char* op, const Array& x, const IntList& kernel_size,
                                 const IntList& stride, const IntList& padding, bool ceil_mode,
                                 bool count_include_pad, std::optional<int64_t> divisor_override);
PoolGeometry adaptive_avg_pool2d_geometry(const char* op, const Array& x, const OutputSize& output_size);
// grad_output: x's dtype, the output's shape.
void check_pool_grad_output(const char* op, const Array& grad_output, const Array& x, const PoolGeometry& g);
// indices of max_pool2d_backward: on the CPU, int64, grad_output's shape.
void check_max_pool_indices(const char* op, const Array& indices, const Array& grad_output);
// Throws ValueError naming the first entry of the C-contiguous `indices`
// outside [-1, ih * iw); returns when there is none.
void check_max_pool_index_range(const char* op, const Array& indices, const PoolGeometry& g);
// N * C (or C) planes of x, and the output shape for an oh x ow output.
int64_t pool_planes(const Array& x);
Shape pool_out_shape(const Array& x, int64_t oh, int64_t ow);

// Per-ISA kernels. Each processes `planes` consecutive planes: input planes of
// ih * iw elements at x, output planes of oh * ow at out (and indices), all
// C-contiguous. Indices are flat within the input plane (h * iw + w), -1 for a
// window that holds no input element (possible only with dilation).
template <class T>
struct PoolKernels {
  // out and/or indices may be null (not wanted).
  void (*max_forward)(const PoolGeometry& g, int64_t planes, const T* x, T* out, int64_t* indices);
  // grad_x = scatter of grad_output at the argmax; indices null: recomputed from x.
  // Returns false, writing nothing more, at an index outside [-1, ih * iw).
  bool (*max_backward)(const PoolGeometry& g, int64_t planes, const T* grad_out, const T* x,
                       const int64_t* indices, T* grad_x);
  void (*avg_forward)(const PoolGeometry& g, int64_t planes, const T* x, T* out);
  void (*avg_backward)(const PoolGeometry& g, int64_t planes, const T* grad_out, T* grad_x);
  void (*adaptive_avg_forward)(const PoolGeometry& g, int64_t planes, const T* x, T* out);
  void (*adaptive_avg_backward)(const PoolGeometry& g, int64_t planes, const T* grad_out, T* grad_x);
};

TFG_ISA_TABLE(PoolKernels<float>, pool_kernels_f32)
TFG_ISA_TABLE(PoolKernels<double>, pool_kernels_f64)

}  // namespace tfg
