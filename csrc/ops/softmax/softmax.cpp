// softmax / log_softmax entries: argument checks, the (outer, n, inner) view
// of the reduced dimension, and the parallel loop over work items that hands
// rows or column blocks to the active ISA's kernels. C-contiguous inputs are
// read in place; other layouts are copied to C order first.
#include "ops/softmax/softmax.h"

#include <type_traits>

#include "core/parallel.h"
#include "ops/softmax/layout.h"

namespace tfg {

namespace {

void check_like(const char* op, const char* arg, const Array& a, const Array& x) {
  check_float_cpu(op, arg, a);
  TFG_CHECK_TYPE(a.dtype == x.dtype, op, ": '", arg, "' has dtype ", dtype_name(a.dtype),
                 " but 'x' has dtype ", dtype_name(x.dtype), "; both must be the same");
  TFG_CHECK_VALUE(a.shape == x.shape, op, ": '", arg, "' has shape ", shape_str(a.shape),
                  " but 'x' has shape ", shape_str(x.shape), "; they must be equal");
}

}  // namespace

int64_t check_softmax_args(const char* op, const Array& x, int64_t dim) {
  check_float_cpu(op, "x", x);
  return wrap_dim(op, dim, x);
}

int64_t check_softmax_backward_args(const char* op, const Array& grad_output, const Array& x,
                                    int64_t dim, const Array* output) {
  check_float_cpu(op, "x", x);
  check_like(op, "grad_output", grad_output, x);
  if (output) check_like(op, "output", *output, x);
  return wrap_dim(op, dim, x);
}

namespace {

template <class T>
const SoftmaxKernels<T>& kernels() {
  if constexpr (std::is_same_v<T, float>) return active_softmax_kernels_f32();
  else return active_softmax_kernels_f64();
}

Array forward(const char* op, const Array& x_in, int64_t dim, bool log) {
  dim = check_softmax_args(op, x_in, dim);
  Array out = Array::empty(x_in.shape, x_in.dtype);
  if (out.numel() == 0) return out;
  const Array x = x_in.contiguous();
  const ReduceLayout l = reduce_layout(x.shape, dim);
  const WorkItems items(l);
  TFG_DISPATCH_FLOATING(x.dtype, op, [&] {
    const SoftmaxKernels<scalar_t>& k = kernels<scalar_t>();
    const scalar_t* xp = x.ptr<scalar_t>();
    scalar_t* yp = out.ptr<scalar_t>();
    parallel_for(items.count(), [&](int64_t i) {
      const WorkItems::Range r = items.item(i);
      if (l.inner == 1) {
        k.forward_rows(xp + r.o * l.n, yp + r.o * l.n, r.o_end - r.o, l.n, log);
        return;
      }
      for (int64_t o = r.o; o < r.o_end; ++o) {
        const int64_t off = o * l.n * l.inner + r.c0;
        k.forward_cols(xp + off, yp + off, l.n, l.inner, r.c1 - r.c0, log);
      }
    });
  });
  return out;
}

Array backward(const char* op, const Array& g_in, const Array& x_in, int64_t dim,
               const Array* y_in, bool log) {
  dim = check_softmax_backward_args(op, g_in, x_in, dim, y_in);
  Array out = Array::empty(x_in.shape, x_in.dtype);
  if (out.numel() == 0) return out;
  const Array g = g_in.contiguous();
  Array x, y;
  if (y_in) y = y_in->contiguous();
  else x = x_in.contiguous();  // x is only read when the probabilities are recomputed
  const ReduceLayout l = reduce_layout(x_in.shape, dim);
  const WorkItems items(l);
  TFG_DISPATCH_FLOATING(x_in.dtype, op, [&] {
    const SoftmaxKernels<scalar_t>& k = kernels<scalar_t>();
    const scalar_t* gp = g.ptr<scalar_t>();
    const scalar_t* yp = y_in ? y.ptr<scalar_t>() : nullptr;
    const scalar_t* xp = y_in ? nullptr : x.ptr<scalar_t>();
    scalar_t* gxp = out.ptr<scalar_t>();
    auto at = [](const scalar_t* p, int64_t off) { return p ? p + off : nullptr; };
    parallel_for(items.count(), [&](int64_t i) {
      const WorkItems::Range r = items.item(i);
      if (l.inner == 1) {
        const int64_t off = r.o * l.n;
        k.backward_rows(gp + off, at(yp, off), at(xp, off), gxp + off, r.o_end - r.o, l.n, log);
        return;
      }
      for (int64_t o = r.o; o < r.o_end; ++o) {
        const int64_t off = o * l.n * l.inner + r.c0;
        k.backward_cols(gp + off, at(yp, off), at(xp, off), gxp + off, l.n, l.inner, r.c1 - r.c0, log);
      }
    });
  });
  return out;
}

}  // namespace

Array softmax(const Array& x, int64_t dim) { return forward("softmax", x, dim, false); }
Array log_softmax(const Array& x, int64_t dim) { return forward("log_softmax", x, dim, true); }

Array softmax_backward(const Array& grad_output, const Array& x, int64_t dim, const Array* output) {
  return backward("softmax_backward", grad_output, x, dim, output, false);
}
Array log_softmax_backward(const Array& grad_output, const Array& x, int64_t dim, const Array* output) {
  return backward("log_softmax_backward", grad_output, x, dim, output, true);
}

}  // namespace tfg
