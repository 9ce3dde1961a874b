// matmul / linear entry points: validate, work out shapes and strides, and
// hand the batched problem to gemm. Non-contiguous operands are passed with
// their strides and handled by packing; nothing is copied to contiguous first.
#include "ops/matmul/matmul.h"

#include <algorithm>

#include "ops/matmul/gemm.h"

namespace tfg {

namespace {

// An operand seen as a stack of matrices: batch dims + (rows, cols).
struct MatrixStack {
  Shape batch, batch_strides;
  int64_t rows, cols, rs, cs;
};

// a: (..., M, K) or (K,) as a 1 x K row; b: (..., K, N) or (K,) as a K x 1 column.
MatrixStack as_stack(const Array& x, bool vector_is_row) {
  MatrixStack s;
  const int64_t nd = x.ndim();
  if (nd == 1) {
    if (vector_is_row) s = {{}, {}, 1, x.shape[0], 0, x.strides[0]};
    else s = {{}, {}, x.shape[0], 1, x.strides[0], 0};
    return s;
  }
  s.batch.assign(x.shape.begin(), x.shape.end() - 2);
  s.batch_strides.assign(x.strides.begin(), x.strides.end() - 2);
  s.rows = x.shape[nd - 2];
  s.cols = x.shape[nd - 1];
  s.rs = x.strides[nd - 2];
  s.cs = x.strides[nd - 1];
  return s;
}

// Note [folding the batch into M]: when B has no batch dims and A's batch dims
// and rows are laid out as one uniform stride (e.g. a contiguous (B, T, K)
// input), the stack is one tall matrix and a single GEMM does it all.
void fold_batch_into_rows(MatrixStack& a) {
  int64_t rows = a.rows;
  for (int64_t i = static_cast<int64_t>(a.batch.size()) - 1; i >= 0; --i) {
    if (a.batch[i] != 1 && a.batch_strides[i] != a.rs * rows) return;
    rows *= a.batch[i];
  }
  a.rows = rows;
  a.batch.clear();
  a.batch_strides.clear();
}

Shape broadcast_batch(const char* op, const MatrixStack& a, const MatrixStack& b,
                      const Array& a_arr, const Array& b_arr) {
  const size_t nd = std::max(a.batch.size(), b.batch.size());
  Shape out(nd);
  for (size_t i = 0; i < nd; ++i) {
    const int64_t da = i + a.batch.size() >= nd ? a.batch[i + a.batch.size() - nd] : 1;
    const int64_t db = i + b.batch.size() >= nd ? b.batch[i + b.batch.size() - nd] : 1;
    TFG_CHECK_VALUE(da == db || da == 1 || db == 1, op,
                    ": batch dimensions do not broadcast: a has shape ", shape_str(a_arr.shape),
                    " and b has shape ", shape_str(b_arr.shape));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Element offsets of each batch entry of `s` within the broadcast batch `out`.
std::vector<int64_t> batch_offsets(const MatrixStack& s, const Shape& out) {
  int64_t count = 1;
  for (int64_t d : out) count *= d;
  std::vector<int64_t> offsets(count, 0);
  const size_t lead = out.size() - s.batch.size();
  for (int64_t flat = 0; flat < count; ++flat) {
    int64_t rem = flat, off = 0;
    for (int64_t d = static_cast<int64_t>(out.size()) - 1; d >= 0; --d) {
      const int64_t idx = rem % out[d];
      rem /= out[d];
      if (d >= static_cast<int64_t>(lead) && s.batch[d - lead] != 1)
        off += idx * s.batch_strides[d - lead];
    }
    offsets[flat] = off;
  }
  return offsets;
}

// out = a @ b (+ bias) for validated stacks. The result has the broadcast
// batch, then M unless A was a vector, then `tail` (N unless B was a vector).
Array matmul_stacks(const char* op, MatrixStack a, const MatrixStack& b, const Array& a_arr,
                    const Array& b_arr, const Array* bias, const Shape& tail) {
  Shape shape = broadcast_batch(op, a, b, a_arr, b_arr);
  if (a_arr.ndim() > 1) shape.push_back(a.rows);
  shape.insert(shape.end(), tail.begin(), tail.end());
  Array out = Array::empty(shape, a_arr.dtype);

  if (b.batch.empty()) fold_batch_into_rows(a);
  const Shape batch = broadcast_batch(op, a, b, a_arr, b_arr);
  const std::vector<int64_t> a_off = batch_offsets(a, batch), b_off = batch_offsets(b, batch);
  std::vector<int64_t> c_off(a_off.size());
  for (size_t i = 0; i < c_off.size(); ++i) c_off[i] = static_cast<int64_t>(i) * a.rows * b.cols;

  TFG_DISPATCH_FLOATING(a_arr.dtype, op, [&] {
    GemmProblem<scalar_t> p;
    p.m = a.rows; p.n = b.cols; p.k = a.cols;
    p.a = a_arr.ptr<scalar_t>(); p.rs_a = a.rs; p.cs_a = a.cs;
    p.b = b_arr.ptr<scalar_t>(); p.rs_b = b.rs; p.cs_b = b.cs;
    p.c = out.ptr<scalar_t>(); p.rs_c = b.cols; p.cs_c = 1;
    p.bias = bias ? bias->ptr<scalar_t>() : nullptr;
    gemm_batched(p, static_cast<int64_t>(c_off.size()), a_off.data(), b_off.data(), c_off.data());
  });
  return out;
}

}  // namespace

Array matmul(const Array& a, const Array& b) {
  check_float_cpu("matmul", "a", a);
  check_float_cpu("matmul", "b", b);
  TFG_CHECK_TYPE(a.dtype == b.dtype, "matmul: argument 'a' has dtype ", dtype_name(a.dtype),
                 " but 'b' has dtype ", dtype_name(b.dtype), "; both must be the same");
  TFG_CHECK_VALUE(a.ndim() >= 1 && b.ndim() >= 1,
                  "matmul: both arguments need at least 1 dimension, got 'a' with shape ",
                  shape_str(a.shape), " and 'b' with shape ", shape_str(b.shape));
  const MatrixStack sa = as_stack(a, true), sb = as_stack(b, false);
  TFG_CHECK_VALUE(sa.cols == sb.rows, "matmul: inner dimensions differ: a has shape ",
                  shape_str(a.shape), " (K=", sa.cols, ") and b has shape ", shape_str(b.shape),
                  " (K=", sb.rows, ")");
  Shape tail;
  if (b.ndim() > 1) tail.push_back(sb.cols);
  return matmul_stacks("matmul", sa, sb, a, b, nullptr, tail);
}

Array linear(const Array& x, const Array& weight, const Array* bias) {
  check_float_cpu("linear", "input", x);
  check_float_cpu("linear", "weight", weight);
  TFG_CHECK_TYPE(x.dtype == weight.dtype, "linear: 'input' has dtype ", dtype_name(x.dtype),
                 " but 'weight' has dtype ", dtype_name(weight.dtype), "; both must be the same");
  TFG_CHECK_VALUE(x.ndim() >= 1, "linear: 'input' needs at least 1 dimension, got shape ",
                  shape_str(x.shape));
  TFG_CHECK_VALUE(weight.ndim() == 2, "linear: 'weight' must be 2-D (out_features, in_features), got shape ",
                  shape_str(weight.shape));
  TFG_CHECK_VALUE(x.shape.back() == weight.shape[1], "linear: 'input' has ", x.shape.back(),
                  " features (shape ", shape_str(x.shape), ") but 'weight' expects ",
                  weight.shape[1], " (shape ", shape_str(weight.shape), ")");
  if (bias) {
    check_float_cpu("linear", "bias", *bias);
    TFG_CHECK_TYPE(bias->dtype == x.dtype, "linear: 'bias' has dtype ", dtype_name(bias->dtype),
                   " but 'input' has dtype ", dtype_name(x.dtype));
    TFG_CHECK_VALUE(bias->ndim() == 1 && bias->shape[0] == weight.shape[0],
                    "linear: 'bias' must have shape (", weight.shape[0], ",), got ",
                    shape_str(bias->shape));
  }
  // The kernel reads the bias with unit stride; a strided bias view is small, so copy it.
  Array bias_contig;
  if (bias && bias->strides[0] != 1 && bias->shape[0] > 1) {
    bias_contig = Array::empty(bias->shape, bias->dtype);
    TFG_DISPATCH_FLOATING(bias->dtype, "linear", [&] {
      for (int64_t i = 0; i < bias->shape[0]; ++i)
        bias_contig.ptr<scalar_t>()[i] = bias->ptr<scalar_t>()[i * bias->strides[0]];
    });
    bias = &bias_contig;
  }
  MatrixStack w;  // weight^T: in_features x out_features, a strided view
  w.rows = weight.shape[1];
  w.cols = weight.shape[0];
  w.rs = weight.strides[1];
  w.cs = weight.strides[0];
  return matmul_stacks("linear", as_stack(x, true), w, x, weight, bias, {w.cols});
}

}  // namespace tfg
