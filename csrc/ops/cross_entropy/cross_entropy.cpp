// cross_entropy / cross_entropy_backward entries: argument checks, target
// validation (before anything is computed), the mean's denominator, and the
// parallel loop over work items (layout.h) with per-item partial sums added
// in item order, so the reduction does not depend on the thread count.
#include "ops/cross_entropy/cross_entropy.h"

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "ops/softmax/layout.h"

namespace tfg {

Reduction parse_reduction(const char* op, const std::string& name) {
  if (name == "mean") return Reduction::mean;
  if (name == "sum") return Reduction::sum;
  TFG_CHECK_VALUE(name == "none", op, ": 'reduction' must be 'none', 'mean' or 'sum', got '", name, "'");
  return Reduction::none;
}

CrossEntropyPrepared prepare_cross_entropy(const char* op, const Array& input, const Array& target,
                                           const Array* weight, int64_t ignore_index,
                                           double label_smoothing) {
  check_float_cpu(op, "input", input);
  TFG_CHECK_VALUE(input.ndim() >= 1, op, ": 'input' must have shape (C,) or (N, C, ...), got shape ",
                  shape_str(input.shape));
  TFG_CHECK_VALUE(target.device.kind == Device::cpu, op, ": argument 'target' is on ",
                  target.device.str(), "; only cpu is supported by this build");
  TFG_CHECK_TYPE(target.dtype == DType::int64 || target.dtype == DType::int32, op,
                 ": argument 'target' has dtype ", dtype_name(target.dtype),
                 "; expected int64 or int32 class indices (probability targets are not supported)");
  Shape expected = input.shape;
  expected.erase(expected.begin() + (input.ndim() == 1 ? 0 : 1));
  TFG_CHECK_VALUE(target.shape == expected, op, ": 'target' has shape ", shape_str(target.shape),
                  " but 'input' of shape ", shape_str(input.shape), " needs a target of shape ",
                  shape_str(expected));
  const int64_t c = input.ndim() == 1 ? input.shape[0] : input.shape[1];
  if (weight) {
    TFG_CHECK_VALUE(weight->device.kind == Device::cpu, op, ": argument 'weight' is on ",
                    weight->device.str(), "; only cpu is supported by this build");
    TFG_CHECK_TYPE(weight->dtype == input.dtype, op, ": 'weight' has dtype ", dtype_name(weight->dtype),
                   " but 'input' has dtype ", dtype_name(input.dtype), "; both must be the same");
    TFG_CHECK_VALUE(weight->ndim() == 1 && weight->shape[0] == c, op, ": 'weight' must have shape (",
                    c, ",) (one weight per class), got ", shape_str(weight->shape));
  }
  TFG_CHECK_VALUE(label_smoothing >= 0.0 && label_smoothing <= 1.0, op,
                  ": 'label_smoothing' must be in [0, 1], got ", label_smoothing);

  CrossEntropyPrepared p;
  p.l = reduce_layout(input.shape, input.ndim() == 1 ? 0 : 1);
  p.x = input.contiguous();
  if (weight) p.w = weight->contiguous();
  const Array t = target.contiguous();
  if (t.dtype == DType::int64) {
    p.t = t;
  } else {
    p.t = Array::empty(t.shape, DType::int64);
    const int32_t* src = t.ptr<int32_t>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p.t.ptr<int64_t>()[i] = src[i];
  }

  TFG_DISPATCH_FLOATING(input.dtype, op, [&] {
    const scalar_t* w = weight ? p.w.ptr<scalar_t>() : nullptr;
    const int64_t* tp = p.t.ptr<int64_t>();
    for (int64_t i = 0, n = p.t.numel(); i < n; ++i) {
      const int64_t v = tp[i];
      if (v == ignore_index) continue;
      TFG_CHECK_VALUE(v >= 0 && v < c, op, ": target value ", v, " (at flat index ", i,
                      ") is out of range for ", c, " classes; expected 0 to ", c - 1,
                      " or ignore_index (", ignore_index, ")");
      p.denom += w ? static_cast<double>(w[v]) : 1.0;
    }
    if (w) {
      for (int64_t i = 0; i < c; ++i) p.weight_sum += static_cast<double>(w[i]);
    } else {
      p.weight_sum = static_cast<double>(c);
    }
  });
  return p;
}

void check_cross_entropy_grad_output(const char* op, const Array& grad_output, const Array& input,
                                     const Array& target, Reduction reduction) {
  TFG_CHECK_VALUE(grad_output.device.kind == Device::cpu, op, ": argument 'grad_output' is on ",
                  grad_output.device.str(), "; only cpu is supported by this build");
  TFG_CHECK_TYPE(grad_output.dtype == input.dtype, op, ": 'grad_output' has dtype ",
                 dtype_name(grad_output.dtype), " but 'input' has dtype ", dtype_name(input.dtype),
                 "; both must be the same");
  const Shape go_shape = reduction == Reduction::none ? target.shape : Shape{};
  TFG_CHECK_VALUE(grad_output.shape == go_shape, op, ": 'grad_output' has shape ",
                  shape_str(grad_output.shape), " but reduction='",
                  reduction == Reduction::none ? "none" : reduction == Reduction::mean ? "mean" : "sum",
                  "' needs shape ", shape_str(go_shape));
}

namespace {

using Prepared = CrossEntropyPrepared;

template <class T>
const CrossEntropyKernels<T>& kernels() {
  if constexpr (std::is_same_v<T, float>) return active_cross_entropy_kernels_f32();
  else return active_cross_entropy_kernels_f64();
}

template <class T>
CrossEntropyParams<T> params(const Prepared& p, int64_t ignore_index, double label_smoothing) {
  CrossEntropyParams<T> k;
  k.weight = p.w.data ? p.w.ptr<T>() : nullptr;
  k.ignore_index = ignore_index;
  k.smoothing = static_cast<T>(label_smoothing);
  k.weight_sum = static_cast<T>(p.weight_sum);
  return k;
}

}  // namespace

Array cross_entropy(const Array& input, const Array& target, const Array* weight, int64_t ignore_index,
                    Reduction reduction, double label_smoothing) {
  const char* op = "cross_entropy";
  const Prepared p = prepare_cross_entropy(op, input, target, weight, ignore_index, label_smoothing);
  const ReduceLayout& l = p.l;
  Array out = Array::empty(reduction == Reduction::none ? target.shape : Shape{}, input.dtype);
  TFG_DISPATCH_FLOATING(input.dtype, op, [&] {
    const CrossEntropyKernels<scalar_t>& k = kernels<scalar_t>();
    const CrossEntropyParams<scalar_t> kp = params<scalar_t>(p, ignore_index, label_smoothing);
    const scalar_t* x = p.x.ptr<scalar_t>();
    const int64_t* t = p.t.ptr<int64_t>();
    scalar_t* loss = reduction == Reduction::none ? out.ptr<scalar_t>() : nullptr;
    auto at = [](scalar_t* q, int64_t off) { return q ? q + off : nullptr; };
    const WorkItems items(l);
    std::vector<double> partial(items.count(), 0.0);
    parallel_for(items.count(), [&](int64_t i) {
      const WorkItems::Range r = items.item(i);
      if (l.inner == 1) {
        partial[i] = k.forward_rows(x + r.o * l.n, t + r.o, r.o_end - r.o, l.n, kp, at(loss, r.o));
        return;
      }
      double sum = 0;
      for (int64_t o = r.o; o < r.o_end; ++o) {
        const int64_t col = o * l.inner + r.c0;
        sum += k.forward_cols(x + o * l.n * l.inner + r.c0, t + col, l.n, l.inner, r.c1 - r.c0, kp,
                              at(loss, col));
      }
      partial[i] = sum;
    });
    if (reduction == Reduction::none) return;
    double total = 0;
    for (double s : partial) total += s;
    if (reduction == Reduction::mean) total /= p.denom;  // 0 / 0 = NaN when every target is ignored
    *out.ptr<scalar_t>() = static_cast<scalar_t>(total);
  });
  return out;
}

Array cross_entropy_backward(const Array& grad_output, const Array& input, const Array& target,
                             const Array* weight, int64_t ignore_index, Reduction reduction,
                             double label_smoothing) {
  const char* op = "cross_entropy_backward";
  const Prepared p = prepare_cross_entropy(op, input, target, weight, ignore_index, label_smoothing);
  check_cross_entropy_grad_output(op, grad_output, input, target, reduction);
  const ReduceLayout& l = p.l;
  Array gx = Array::empty(input.shape, input.dtype);
  if (gx.numel() == 0) return gx;
  const Array go = grad_output.contiguous();
  const int64_t go_stride = reduction == Reduction::none ? 1 : 0;
  TFG_DISPATCH_FLOATING(input.dtype, op, [&] {
    const CrossEntropyKernels<scalar_t>& k = kernels<scalar_t>();
    const CrossEntropyParams<scalar_t> kp = params<scalar_t>(p, ignore_index, label_smoothing);
    const scalar_t* x = p.x.ptr<scalar_t>();
    const int64_t* t = p.t.ptr<int64_t>();
    const scalar_t* g = go.ptr<scalar_t>();
    scalar_t* out = gx.ptr<scalar_t>();
    const scalar_t divisor = reduction == Reduction::mean ? static_cast<scalar_t>(p.denom) : scalar_t(1);
    const WorkItems items(l);
    parallel_for(items.count(), [&](int64_t i) {
      const WorkItems::Range r = items.item(i);
      if (l.inner == 1) {
        k.backward_rows(x + r.o * l.n, t + r.o, r.o_end - r.o, l.n, kp, g + r.o * go_stride, go_stride,
                        divisor, out + r.o * l.n);
        return;
      }
      for (int64_t o = r.o; o < r.o_end; ++o) {
        const int64_t off = o * l.n * l.inner + r.c0, col = o * l.inner + r.c0;
        k.backward_cols(x + off, t + col, l.n, l.inner, r.c1 - r.c0, kp, g + col * go_stride, go_stride,
                        divisor, out + off);
      }
    });
  });
  return gx;
}

}  // namespace tfg
