// conv2d / conv2d_backward entry points: argument checks, output geometry
// (PyTorch's rules, "same" and "valid" padding), and the routing per shape
// between GEMM (1x1), the direct depthwise kernels and implicit GEMM.
#include "ops/conv2d/conv2d.h"

#include <algorithm>

#include "core/parallel.h"
#include "core/per_thread.h"
#include "ops/conv2d/depthwise.h"
#include "ops/matmul/gemm.h"

namespace tfg {

namespace {

constexpr const char* kFwd = "conv2d";
constexpr const char* kBwd = "conv2d_backward";

void check_same_dtype(const char* op, const char* arg, const Array& a, const Array& x) {
  TFG_CHECK_TYPE(a.dtype == x.dtype, op, ": argument '", arg, "' has dtype ", dtype_name(a.dtype),
                 " but 'input' has dtype ", dtype_name(x.dtype), "; both must be the same");
}

}  // namespace

ConvGeometry conv2d_geometry(const char* op, const Array& x, const Array& weight, const Array* bias,
                           const Conv2dOptions& o) {
  check_float_cpu(op, "input", x);
  check_float_cpu(op, "weight", weight);
  check_same_dtype(op, "weight", weight, x);
  TFG_CHECK_VALUE(x.ndim() == 3 || x.ndim() == 4, op,
                  ": 'input' must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape ", shape_str(x.shape));
  TFG_CHECK_VALUE(weight.ndim() == 4, op,
                  ": 'weight' must be 4-D (out_channels, in_channels / groups, kH, kW), got shape ",
                  shape_str(weight.shape));
  for (int d = 0; d < 2; ++d) {
    TFG_CHECK_VALUE(o.stride[d] > 0, op, ": 'stride' must be positive, got (", o.stride[0], ", ",
                    o.stride[1], ")");
    TFG_CHECK_VALUE(o.dilation[d] > 0, op, ": 'dilation' must be positive, got (", o.dilation[0],
                    ", ", o.dilation[1], ")");
    TFG_CHECK_VALUE(o.padding_mode != Conv2dOptions::Padding::explicit_ || o.padding[d] >= 0, op,
                    ": 'padding' must be non-negative, got (", o.padding[0], ", ", o.padding[1], ")");
  }
  TFG_CHECK_VALUE(o.groups > 0, op, ": 'groups' must be positive, got ", o.groups);
  const bool batched = x.ndim() == 4;
  ConvGeometry g;
  g.n = batched ? x.shape[0] : 1;
  g.c = x.shape[batched ? 1 : 0];
  g.h = x.shape[batched ? 2 : 1];
  g.w = x.shape[batched ? 3 : 2];
  g.oc = weight.shape[0];
  g.kh = weight.shape[2];
  g.kw = weight.shape[3];
  g.groups = o.groups;
  TFG_CHECK_VALUE(g.c % g.groups == 0, op, ": input channels (", g.c,
                  ") must be divisible by groups (", g.groups, "); 'input' has shape ", shape_str(x.shape));
  TFG_CHECK_VALUE(g.oc % g.groups == 0, op, ": out_channels (", g.oc, ", weight shape ",
                  shape_str(weight.shape), ") must be divisible by groups (", g.groups, ")");
  TFG_CHECK_VALUE(weight.shape[1] * g.groups == g.c, op, ": 'weight' of shape ", shape_str(weight.shape),
                  " expects ", weight.shape[1] * g.groups, " input channels (", weight.shape[1],
                  " per group x ", g.groups, " groups), but 'input' of shape ", shape_str(x.shape),
                  " has ", g.c);
  TFG_CHECK_VALUE(g.kh > 0 && g.kw > 0, op, ": 'weight' has an empty kernel, shape ",
                  shape_str(weight.shape));
  if (bias) {
    check_float_cpu(op, "bias", *bias);
    check_same_dtype(op, "bias", *bias, x);
    TFG_CHECK_VALUE(bias->ndim() == 1 && bias->shape[0] == g.oc, op, ": 'bias' must have shape (",
                    g.oc, ",), got ", shape_str(bias->shape));
  }
  g.sh = o.stride[0];
  g.sw = o.stride[1];
  g.dh = o.dilation[0];
  g.dw = o.dilation[1];
  int64_t pad_h_total, pad_w_total;
  switch (o.padding_mode) {
    case Conv2dOptions::Padding::same:
      TFG_CHECK_VALUE(g.sh == 1 && g.sw == 1, op,
                      ": padding='same' is not supported for strided convolutions, got stride (",
                      g.sh, ", ", g.sw, ")");
      // PyTorch puts the odd pixel of an even kernel's padding after the input.
      pad_h_total = g.dh * (g.kh - 1);
      pad_w_total = g.dw * (g.kw - 1);
      g.ph = pad_h_total / 2;
      g.pw = pad_w_total / 2;
      break;
    case Conv2dOptions::Padding::valid:
      pad_h_total = pad_w_total = 0;
      break;
    default:
      g.ph = o.padding[0];
      g.pw = o.padding[1];
      pad_h_total = 2 * g.ph;
      pad_w_total = 2 * g.pw;
  }
  const int64_t span_h = g.dh * (g.kh - 1) + 1, span_w = g.dw * (g.kw - 1) + 1;
  TFG_CHECK_VALUE(span_h <= g.h + pad_h_total && span_w <= g.w + pad_w_total, op,
                  ": the kernel (", g.kh, "x", g.kw, ", dilation (", g.dh, ", ", g.dw, "), spanning ",
                  span_h, "x", span_w, ") is larger than the padded input (", g.h + pad_h_total,
                  "x", g.w + pad_w_total, "); 'input' has shape ", shape_str(x.shape));
  g.oh = (g.h + pad_h_total - span_h) / g.sh + 1;
  g.ow = (g.w + pad_w_total - span_w) / g.sw + 1;
  return g;
}

Shape conv2d_output_shape(const ConvGeometry& g, bool batched) {
  if (batched) return {g.n, g.oc, g.oh, g.ow};
  return {g.oc, g.oh, g.ow};
}

ConvGeometry conv2d_backward_geometry(const Array& grad_output, const Array& x, const Array& weight,
                                      const Array* bias, const Conv2dOptions& options) {
  const ConvGeometry g = conv2d_geometry(kBwd, x, weight, bias, options);
  check_float_cpu(kBwd, "grad_output", grad_output);
  check_same_dtype(kBwd, "grad_output", grad_output, x);
  const Shape expected = conv2d_output_shape(g, x.ndim() == 4);
  TFG_CHECK_VALUE(grad_output.shape == expected, kBwd, ": 'grad_output' has shape ",
                  shape_str(grad_output.shape), " but the convolution of 'input' ", shape_str(x.shape),
                  " with 'weight' ", shape_str(weight.shape), " gives ", shape_str(expected));
  return g;
}

namespace {

template <class T>
const DepthwiseKernels<T>& active_depthwise_kernels();
template <> const DepthwiseKernels<float>& active_depthwise_kernels() { return active_depthwise_kernels_f32(); }
template <> const DepthwiseKernels<double>& active_depthwise_kernels() { return active_depthwise_kernels_f64(); }

bool is_depthwise(const ConvGeometry& g) { return g.c_per_group() == 1; }
bool is_pointwise(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// One output plane per item; the input plane of output channel o is o / (oc / groups).
template <class T>
void depthwise_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  const auto& kr = active_depthwise_kernels<T>();
  const int64_t m = g.oc_per_group(), taps = g.taps();
  const int threads = conv_threads(2.0 * g.n * g.oc * g.pixels() * taps);
  PerThread<T> scratch(threads, depthwise_scratch_size(g), true);  // zero padding
  parallel_for_with_thread(g.n * g.oc, [&](int64_t item, int thread) {
    const int64_t n = item / g.oc, o = item % g.oc;
    kr.forward_plane(g, x + (n * g.c + o / m) * g.plane(), w + o * taps, bias ? bias[o] : T(0),
                     out + item * g.pixels(), scratch[thread]);
  }, threads);
}

// out[n, group] = W[group] (m x c/groups) * x[n, group] (c/groups x h*w), one GEMM per item.
template <class T>
void pointwise_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  const int64_t m = g.oc_per_group(), cg = g.c_per_group(), pixels = g.pixels();
  const int64_t items = g.n * g.groups;
  const int threads = conv_threads(2.0 * g.n * g.oc * pixels * cg);
  // Many items: one single-threaded GEMM each, in parallel; few: each GEMM is parallel.
  const bool outer = items >= 2 * threads;
  parallel_for(items, [&](int64_t item) {
    const int64_t n = item / g.groups, grp = item % g.groups;
    T* c = out + (n * g.oc + grp * m) * pixels;
    if (bias)  // filled just before the GEMM, so that C is in cache when it accumulates
      for (int64_t i = 0; i < m; ++i) std::fill_n(c + i * pixels, pixels, bias[grp * m + i]);
    GemmProblem<T> p;
    p.m = m; p.n = pixels; p.k = cg;
    p.a = w + grp * m * cg; p.rs_a = cg; p.cs_a = 1;
    p.b = x + (n * g.c + grp * cg) * pixels; p.rs_b = pixels; p.cs_b = 1;
    p.c = c; p.rs_c = pixels; p.cs_c = 1;
    p.accumulate = bias != nullptr;
    gemm(p, outer ? 1 : threads);
  }, outer ? threads : 1);
}

template <class T>
void forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  if (g.n == 0 || g.oc == 0) return;
  if (g.c == 0) {  // an empty sum: only the bias
    for (int64_t i = 0; i < g.n * g.oc; ++i)
      std::fill_n(out + i * g.pixels(), g.pixels(), bias ? bias[i % g.oc] : T(0));
  } else if (is_depthwise(g)) {
    depthwise_forward(g, x, w, bias, out);
  } else if (is_pointwise(g)) {
    pointwise_forward(g, x, w, bias, out);
  } else if (g.sh == 1 && g.sw == 1) {
    conv2d_forward_direct(g, x, w, bias, out);
  } else {
    conv2d_forward_gemm(g, x, w, bias, out);
  }
}

// Items are input planes; each gathers from the m output channels that read it.
template <class T>
void depthwise_backward_input(const ConvGeometry& g, const T* gy, const T* w, T* gx) {
  const auto& kr = active_depthwise_kernels<T>();
  const int64_t m = g.oc_per_group(), taps = g.taps();
  const int threads = conv_threads(2.0 * g.n * g.oc * g.pixels() * taps);
  PerThread<T> scratch(threads, depthwise_scratch_size(g), true);  // zero padding
  parallel_for_with_thread(g.n * g.c, [&](int64_t item, int thread) {
    const int64_t n = item / g.c, ci = item % g.c;
    T* plane = gx + item * g.plane();
    std::fill_n(plane, g.plane(), T(0));
    for (int64_t o = ci * m; o < (ci + 1) * m; ++o)
      kr.backward_input_plane(g, gy + (n * g.oc + o) * g.pixels(), w + o * taps, plane, scratch[thread]);
  }, threads);
}

// Items are output channels; each sums over the batch in order (deterministic).
template <class T>
void depthwise_backward_weight(const ConvGeometry& g, const T* gy, const T* x, T* gw) {
  const auto& kr = active_depthwise_kernels<T>();
  const int64_t m = g.oc_per_group(), taps = g.taps();
  const int threads = conv_threads(2.0 * g.n * g.oc * g.pixels() * taps);
  PerThread<T> scratch(threads, depthwise_scratch_size(g), true);  // zero padding
  parallel_for_with_thread(g.oc, [&](int64_t o, int thread) {
    T* taps_out = gw + o * taps;
    std::fill_n(taps_out, taps, T(0));
    for (int64_t n = 0; n < g.n; ++n)
      kr.backward_weight_plane(g, gy + (n * g.oc + o) * g.pixels(), x + (n * g.c + o / m) * g.plane(),
                               taps_out, scratch[thread]);
  }, threads);
}

template <class T>
void backward_bias(const ConvGeometry& g, const T* gy, T* gb) {
  const auto& kr = active_depthwise_kernels<T>();
  parallel_for(g.oc, [&](int64_t o) {
    T total = T(0);
    for (int64_t n = 0; n < g.n; ++n) total += kr.sum(gy + (n * g.oc + o) * g.pixels(), g.pixels());
    gb[o] = total;
  }, conv_threads(double(g.n) * g.oc * g.pixels() * 8));
}

// Note [input gradient as a convolution]: with stride 1 the input gradient
// is the forward convolution of grad_out with the kernel flipped in both
// directions and its channels transposed (input_grad_is_convolution), so it
// runs at the forward's speed on the forward's paths, with no col2im pass.
template <class T>
void backward_input_as_convolution(const ConvGeometry& g, const T* gy, const T* w, T* gx) {
  const int64_t m = g.oc_per_group(), cg = g.c_per_group(), taps = g.taps();
  Array flipped_arr = Array::empty({g.c * m * taps}, dtype_of<T>());
  T* flipped = flipped_arr.ptr<T>();  // (groups * cg) x m x kh x kw
  for (int64_t grp = 0; grp < g.groups; ++grp)
    for (int64_t o = 0; o < m; ++o)
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t t = 0; t < taps; ++t)
          flipped[((grp * cg + c) * m + o) * taps + (taps - 1 - t)] = w[((grp * m + o) * cg + c) * taps + t];
  forward(transposed_geometry(g), gy, flipped, static_cast<const T*>(nullptr), gx);
}

template <class T>
void backward(const ConvGeometry& g, const T* gy, const T* x, const T* w, T* gx, T* gw, T* gb) {
  const bool empty = g.n == 0 || g.oc == 0 || g.c == 0;
  if (gx) {
    if (empty) std::fill_n(gx, g.n * g.c * g.plane(), T(0));
    else if (is_depthwise(g)) depthwise_backward_input(g, gy, w, gx);
    else if (input_grad_is_convolution(g)) backward_input_as_convolution(g, gy, w, gx);
    else conv2d_backward_input_gemm(g, gy, w, gx);
  }
  if (gw) {
    if (empty) std::fill_n(gw, g.oc * g.k_per_group(), T(0));
    else if (is_depthwise(g)) depthwise_backward_weight(g, gy, x, gw);
    else conv2d_backward_weight_gemm(g, gy, x, gw);
  }
  if (gb) {
    if (g.n == 0) std::fill_n(gb, g.oc, T(0));
    else backward_bias(g, gy, gb);
  }
}

}  // namespace

// Below 4 MFLOP a convolution runs on one thread: fork/join and the second
// core's cold caches cost more than they give.
int conv_threads(double flops) { return flops < 4e6 ? 1 : num_threads(); }

Array conv2d(const Array& x, const Array& weight, const Array* bias, const Conv2dOptions& options) {
  const ConvGeometry g = conv2d_geometry(kFwd, x, weight, bias, options);
  const Array xc = x.contiguous(), wc = weight.contiguous();
  const Array bc = bias ? bias->contiguous() : Array();
  Array out = Array::empty(conv2d_output_shape(g, x.ndim() == 4), x.dtype);
  TFG_DISPATCH_FLOATING(x.dtype, kFwd, [&] {
    forward<scalar_t>(g, xc.ptr<scalar_t>(), wc.ptr<scalar_t>(), bias ? bc.ptr<scalar_t>() : nullptr,
                      out.ptr<scalar_t>());
  });
  return out;
}

Conv2dGrads conv2d_backward(const Array& grad_output, const Array& x, const Array& weight,
                            const Array* bias, const Conv2dOptions& options,
                            std::array<bool, 3> output_mask) {
  const ConvGeometry g = conv2d_backward_geometry(grad_output, x, weight, bias, options);
  Conv2dGrads grads;
  if (output_mask[0]) grads.input = Array::empty(x.shape, x.dtype);
  if (output_mask[1]) grads.weight = Array::empty(weight.shape, x.dtype);
  if (output_mask[2] && bias) grads.bias = Array::empty(bias->shape, x.dtype);
  const Array gyc = grad_output.contiguous();
  const Array xc = output_mask[1] ? x.contiguous() : x;
  const Array wc = output_mask[0] ? weight.contiguous() : weight;
  TFG_DISPATCH_FLOATING(x.dtype, kBwd, [&] {
    using T = scalar_t;
    backward<T>(g, gyc.ptr<T>(), xc.ptr<T>(), wc.ptr<T>(), grads.input.ptr<T>(),
                grads.weight.ptr<T>(), grads.bias.ptr<T>());
  });
  return grads;
}

}  // namespace tfg
