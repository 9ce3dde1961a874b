// Pooling entry points: argument checks with PyTorch's rules and messages that
// name the argument, output sizes, a contiguous copy of odd layouts, and the
// planes split over threads in runs handed to the active ISA's kernels.
#include "ops/pooling/pooling.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <type_traits>

#include "core/parallel.h"

namespace tfg {

namespace {

std::string list_str(const IntList& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

// Note [parameter bound]: PyTorch takes any int64, but window arithmetic such
// as dilation * (kernel_size - 1) must not overflow; no real window comes
// near this bound.
constexpr int64_t kMaxParam = (int64_t(1) << 31) - 1;

struct Pair {
  int64_t h, w;
};

Pair pair_arg(const char* op, const char* name, const IntList& v) {
  TFG_CHECK_VALUE(v.size() == 1 || v.size() == 2, op, ": '", name,
                  "' must be an int or a pair of ints, got ", list_str(v));
  const Pair p{v[0], v.size() == 2 ? v[1] : v[0]};
  TFG_CHECK_VALUE(p.h <= kMaxParam && p.w <= kMaxParam, op, ": '", name, "' must be at most ",
                  kMaxParam, ", got ", list_str(v));
  return p;
}

// x is (N, C, H, W) or (C, H, W). `empty_channels`: C may be 0 (adaptive pooling).
void check_pool_input(const char* op, const Array& x, bool empty_channels) {
  check_float_cpu(op, "x", x);
  TFG_CHECK_VALUE(x.ndim() == 3 || x.ndim() == 4, op,
                  ": 'x' must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape ",
                  shape_str(x.shape));
  const int64_t first = empty_channels ? x.ndim() - 2 : x.ndim() - 3;
  for (int64_t d = first; d < x.ndim(); ++d)
    TFG_CHECK_VALUE(x.shape[d] > 0, op, ": 'x' of shape ", shape_str(x.shape),
                    " is empty in dimension ", d, "; only the batch",
                    empty_channels ? " and channel dimensions" : " dimension", " may be 0");
}

void check_same_dtype(const char* op, const Array& grad_output, const Array& x) {
  check_float_cpu(op, "grad_output", grad_output);
  TFG_CHECK_TYPE(grad_output.dtype == x.dtype, op, ": 'grad_output' has dtype ",
                 dtype_name(grad_output.dtype), " but 'x' has dtype ", dtype_name(x.dtype),
                 "; both must be the same");
}

int64_t planes_of(const Array& x) { return x.ndim() == 4 ? x.shape[0] * x.shape[1] : x.shape[0]; }

Shape out_shape(const Array& x, int64_t oh, int64_t ow) {
  Shape s(x.shape.begin(), x.shape.end() - 2);
  s.push_back(oh);
  s.push_back(ow);
  return s;
}

// PyTorch's pooling_output_shape: floor or ceil division, and with ceil_mode
// the last window must start inside the input or its left padding.
int64_t pooled_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode) {
  const int64_t span = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t out = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// Checks the window options and works out the output size (PyTorch's
// pool2d_shape_check, with its messages' content).
PoolGeometry window_geometry(const char* op, const Array& x, const IntList& kernel_size,
                             const IntList& stride, const IntList& padding, const IntList& dilation,
                             bool ceil_mode) {
  const Pair k = pair_arg(op, "kernel_size", kernel_size);
  const Pair s = stride.empty() ? k : pair_arg(op, "stride", stride);
  const Pair p = pair_arg(op, "padding", padding);
  const Pair d = pair_arg(op, "dilation", dilation);
  TFG_CHECK_VALUE(k.h > 0 && k.w > 0, op, ": 'kernel_size' must be positive, got ", list_str(kernel_size));
  TFG_CHECK_VALUE(s.h > 0 && s.w > 0, op, ": 'stride' must be positive, got ", list_str(stride));
  TFG_CHECK_VALUE(d.h > 0 && d.w > 0, op, ": 'dilation' must be positive, got ", list_str(dilation));
  TFG_CHECK_VALUE(p.h >= 0 && p.w >= 0, op, ": 'padding' must be non-negative, got ", list_str(padding));
  TFG_CHECK_VALUE(p.h <= k.h / 2 && p.w <= k.w / 2, op,
                  ": 'padding' must be at most half of 'kernel_size', got padding ", list_str(padding),
                  " and kernel_size ", list_str(kernel_size));
  PoolGeometry g;
  g.ih = x.shape[x.ndim() - 2];
  g.iw = x.shape[x.ndim() - 1];
  g.kh = k.h; g.kw = k.w; g.sh = s.h; g.sw = s.w; g.ph = p.h; g.pw = p.w; g.dh = d.h; g.dw = d.w;
  g.oh = pooled_size(g.ih, k.h, p.h, s.h, d.h, ceil_mode);
  g.ow = pooled_size(g.iw, k.w, p.w, s.w, d.w, ceil_mode);
  TFG_CHECK_VALUE(g.oh >= 1 && g.ow >= 1, op, ": the output would be empty: x of shape ",
                  shape_str(x.shape), " with kernel_size ", list_str(kernel_size), ", stride ",
                  list_str(stride.empty() ? kernel_size : stride), ", padding ", list_str(padding),
                  ", dilation ", list_str(dilation), (ceil_mode ? ", ceil_mode" : ""),
                  " gives an output of ", g.oh, " x ", g.ow);
  return g;
}

void check_grad_output(const char* op, const Array& grad_output, const Array& x, const PoolGeometry& g) {
  check_same_dtype(op, grad_output, x);
  const Shape expected = out_shape(x, g.oh, g.ow);
  TFG_CHECK_VALUE(grad_output.shape == expected, op, ": 'grad_output' must have the output's shape ",
                  shape_str(expected), " (x of shape ", shape_str(x.shape), "), got ",
                  shape_str(grad_output.shape));
}


}  // namespace

PoolGeometry max_pool2d_geometry(const char* op, const Array& x, const IntList& kernel_size,
                                 const IntList& stride, const IntList& padding, const IntList& dilation,
                                 bool ceil_mode) {
  check_pool_input(op, x, false);
  return window_geometry(op, x, kernel_size, stride, padding, dilation, ceil_mode);
}

void check_pool_grad_output(const char* op, const Array& grad_output, const Array& x, const PoolGeometry& g) {
  check_grad_output(op, grad_output, x, g);
}

void check_max_pool_indices(const char* op, const Array& indices, const Array& grad_output) {
  TFG_CHECK_VALUE(indices.device.kind == Device::cpu, op, ": argument 'indices' is on ",
                  indices.device.str(), "; only cpu is supported by this build");
  TFG_CHECK_TYPE(indices.dtype == DType::int64, op, ": 'indices' must have dtype int64, got ",
                 dtype_name(indices.dtype));
  TFG_CHECK_VALUE(indices.shape == grad_output.shape, op, ": 'indices' must have the output's shape ",
                  shape_str(grad_output.shape), ", got ", shape_str(indices.shape));
}

void check_max_pool_index_range(const char* op, const Array& indices, const PoolGeometry& g) {
  const int64_t* ip = indices.ptr<int64_t>();
  const int64_t n = indices.numel(), in = g.ih * g.iw;
  int64_t i = 0;
  while (i < n && ip[i] >= -1 && ip[i] < in) ++i;
  if (i == n) return;
  throw ValueError(cat(op, ": 'indices' holds ", ip[i], " at flat position ", i,
                       "; entries must index the input plane of ", g.ih, " x ", g.iw,
                       " elements, in [0, ", in, ") (or -1 for an empty window)"));
}

int64_t pool_planes(const Array& x) { return planes_of(x); }
Shape pool_out_shape(const Array& x, int64_t oh, int64_t ow) { return out_shape(x, oh, ow); }

namespace {

// Note [plane runs]: work items are runs of whole planes, each of roughly
// kItemElements input + output elements (a few tens of microseconds), but
// never so long that the items number fewer than about four per thread.
constexpr int64_t kItemElements = int64_t(1) << 16;

template <class F>
void for_plane_runs(int64_t planes, int64_t plane_elements, F&& f) {
  if (planes == 0) return;
  int64_t run = std::max<int64_t>(1, kItemElements / std::max<int64_t>(plane_elements, 1));
  const int64_t spread = (planes + 4 * num_threads() - 1) / (4 * num_threads());
  run = std::max<int64_t>(1, std::min(run, spread));
  const int64_t items = (planes + run - 1) / run;
  parallel_for(items, [&](int64_t i) {
    const int64_t first = i * run;
    f(first, std::min(run, planes - first));
  });
}

template <class T>
const PoolKernels<T>& kernels() {
  if constexpr (std::is_same_v<T, float>) return active_pool_kernels_f32();
  else return active_pool_kernels_f64();
}

// Runs kernel(kernels, count, src_planes, dst_planes) over runs of x's planes:
// src (planes of src_plane elements) -> dst (planes of dst_plane elements).
template <class Kernel>
void over_plane_runs(const char* op, const Array& x, const PoolGeometry& g, const Array& src,
                     int64_t src_plane, Array& dst, int64_t dst_plane, Kernel&& kernel) {
  TFG_DISPATCH_FLOATING(x.dtype, op, [&] {
    const PoolKernels<scalar_t>& k = kernels<scalar_t>();
    const scalar_t* sp = src.ptr<scalar_t>();
    scalar_t* dp = dst.ptr<scalar_t>();
    for_plane_runs(planes_of(x), g.ih * g.iw + g.oh * g.ow, [&](int64_t first, int64_t count) {
      kernel(k, count, sp + first * src_plane, dp + first * dst_plane);
    });
  });
}

}  // namespace

std::pair<Array, Array> max_pool2d(const Array& x_in, const IntList& kernel_size, const IntList& stride,
                                   const IntList& padding, const IntList& dilation, bool ceil_mode,
                                   bool return_indices) {
  const char* op = "max_pool2d";
  const PoolGeometry g = max_pool2d_geometry(op, x_in, kernel_size, stride, padding, dilation, ceil_mode);
  const Array x = x_in.contiguous();
  Array out = Array::empty(out_shape(x, g.oh, g.ow), x.dtype);
  Array ind;
  if (return_indices) ind = Array::empty(out.shape, DType::int64);
  const int64_t in = g.ih * g.iw, on = g.oh * g.ow;
  TFG_DISPATCH_FLOATING(x.dtype, op, [&] {
    const PoolKernels<scalar_t>& k = kernels<scalar_t>();
    const scalar_t* xp = x.ptr<scalar_t>();
    scalar_t* outp = out.ptr<scalar_t>();
    int64_t* ip = return_indices ? ind.ptr<int64_t>() : nullptr;
    for_plane_runs(planes_of(x), in + on, [&](int64_t first, int64_t count) {
      k.max_forward(g, count, xp + first * in, outp + first * on, ip ? ip + first * on : nullptr);
    });
  });
  return {std::move(out), std::move(ind)};
}

Array max_pool2d_backward(const Array& grad_output_in, const Array& x_in, const IntList& kernel_size,
                          const IntList& stride, const IntList& padding, const IntList& dilation,
                          bool ceil_mode, const Array* indices_in) {
  const char* op = "max_pool2d_backward";
  const PoolGeometry g = max_pool2d_geometry(op, x_in, kernel_size, stride, padding, dilation, ceil_mode);
  check_grad_output(op, grad_output_in, x_in, g);
  Array indices;
  if (indices_in) {
    check_max_pool_indices(op, *indices_in, grad_output_in);
    indices = indices_in->contiguous();
  }
  // With indices, x only gives the shape: no copy of an odd layout.
  const Array x = indices_in ? x_in : x_in.contiguous(), grad_output = grad_output_in.contiguous();
  Array grad_x = Array::empty(x.shape, x.dtype);
  const int64_t in = g.ih * g.iw, on = g.oh * g.ow;
  std::atomic<bool> bad{false};
  TFG_DISPATCH_FLOATING(x.dtype, op, [&] {
    const PoolKernels<scalar_t>& k = kernels<scalar_t>();
    const scalar_t* xp = x.ptr<scalar_t>();
    const scalar_t* gp = grad_output.ptr<scalar_t>();
    scalar_t* gxp = grad_x.ptr<scalar_t>();
    const int64_t* ip = indices_in ? indices.ptr<int64_t>() : nullptr;
    for_plane_runs(planes_of(x), in + on, [&](int64_t first, int64_t count) {
      if (bad.load(std::memory_order_relaxed)) return;
      if (!k.max_backward(g, count, gp + first * on, xp + first * in, ip ? ip + first * on : nullptr,
                          gxp + first * in))
        bad.store(true);
    });
  });
  if (bad.load()) check_max_pool_index_range(op, indices, g);
  return grad_x;
}

PoolGeometry avg_pool2d_geometry(const char* op, const Array& x, const IntList& kernel_size,
                                 const IntList& stride, const IntList& padding, bool ceil_mode,
                                 bool count_include_pad, std::optional<int64_t> divisor_override) {
  check_pool_input(op, x, false);
  PoolGeometry g = window_geometry(op, x, kernel_size, stride, padding, {1}, ceil_mode);
  if (divisor_override) {
    TFG_CHECK_VALUE(*divisor_override != 0, op, ": 'divisor_override' must not be zero");
    g.divisor_override = *divisor_override;
  }
  g.count_include_pad = count_include_pad;
  return g;
}

Array avg_pool2d(const Array& x_in, const IntList& kernel_size, const IntList& stride,
                 const IntList& padding, bool ceil_mode, bool count_include_pad,
                 std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d";
  const PoolGeometry g = avg_pool2d_geometry(op, x_in, kernel_size, stride, padding, ceil_mode,
                                      count_include_pad, divisor_override);
  const Array x = x_in.contiguous();
  Array out = Array::empty(out_shape(x, g.oh, g.ow), x.dtype);
  over_plane_runs(op, x, g, x, g.ih * g.iw, out, g.oh * g.ow,
                  [&](const auto& k, int64_t count, const auto* src, auto* dst) {
                    k.avg_forward(g, count, src, dst);
                  });
  return out;
}

Array avg_pool2d_backward(const Array& grad_output_in, const Array& x, const IntList& kernel_size,
                          const IntList& stride, const IntList& padding, bool ceil_mode,
                          bool count_include_pad, std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d_backward";
  const PoolGeometry g = avg_pool2d_geometry(op, x, kernel_size, stride, padding, ceil_mode,
                                      count_include_pad, divisor_override);
  check_grad_output(op, grad_output_in, x, g);
  const Array grad_output = grad_output_in.contiguous();
  Array grad_x = Array::empty(x.shape, x.dtype);
  over_plane_runs(op, x, g, grad_output, g.oh * g.ow, grad_x, g.ih * g.iw,
                  [&](const auto& k, int64_t count, const auto* src, auto* dst) {
                    k.avg_backward(g, count, src, dst);
                  });
  return grad_x;
}

PoolGeometry adaptive_avg_pool2d_geometry(const char* op, const Array& x, const OutputSize& output_size) {
  check_pool_input(op, x, true);
  TFG_CHECK_VALUE(output_size.size() == 1 || output_size.size() == 2, op,
                  ": 'output_size' must be an int or a pair, got ", output_size.size(), " entries");
  PoolGeometry g;
  g.ih = x.shape[x.ndim() - 2];
  g.iw = x.shape[x.ndim() - 1];
  const std::optional<int64_t> oh = output_size[0], ow = output_size.back();
  g.oh = oh ? *oh : g.ih;
  g.ow = ow ? *ow : g.iw;
  TFG_CHECK_VALUE(g.oh >= 0 && g.ow >= 0, op, ": 'output_size' must be non-negative, got (",
                  oh ? std::to_string(*oh) : "None", ", ", ow ? std::to_string(*ow) : "None", ")");
  return g;
}

Array adaptive_avg_pool2d(const Array& x_in, const OutputSize& output_size) {
  const char* op = "adaptive_avg_pool2d";
  const PoolGeometry g = adaptive_avg_pool2d_geometry(op, x_in, output_size);
  const Array x = x_in.contiguous();
  Array out = Array::empty(out_shape(x, g.oh, g.ow), x.dtype);
  if (out.numel() == 0) return out;
  over_plane_runs(op, x, g, x, g.ih * g.iw, out, g.oh * g.ow,
                  [&](const auto& k, int64_t count, const auto* src, auto* dst) {
                    k.adaptive_avg_forward(g, count, src, dst);
                  });
  return out;
}

Array adaptive_avg_pool2d_backward(const Array& grad_output_in, const Array& x,
                                   const OutputSize& output_size) {
  const char* op = "adaptive_avg_pool2d_backward";
  const PoolGeometry g = adaptive_avg_pool2d_geometry(op, x, output_size);
  check_grad_output(op, grad_output_in, x, g);
  const Array grad_output = grad_output_in.contiguous();
  if (g.oh == 0 || g.ow == 0) return Array::zeros(x.shape, x.dtype);
  Array grad_x = Array::empty(x.shape, x.dtype);
  over_plane_runs(op, x, g, grad_output, g.oh * g.ow, grad_x, g.ih * g.iw,
                  [&](const auto& k, int64_t count, const auto* src, auto* dst) {
                    k.adaptive_avg_backward(g, count, src, dst);
                  });
  return grad_x;
}

}  // namespace tfg
