// Test bindings of the CUDA attention kernels (ops/attention/cuda/attention.cu),
// compiled only with the CUDA backend or the SIMT emulation, with the CPU op's
// arguments and checks (attn_detail::analyse):
//   _C._cuda_scaled_dot_product_attention(q, k, v, attn_mask, is_causal, scale,
//     enable_gqa, *, return_lse)
//   _C._cuda_scaled_dot_product_attention_backward(grad_out, q, k, v, attn_mask,
//     is_causal, scale, enable_gqa, *, output, lse)
// Inputs are uploaded C-contiguous with the per-batch matrix indices; the
// kernels give per-output-batch gradients, summed here into the inputs' shapes
// (GQA groups, broadcast batches) in batch order, so deterministically.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <limits>
#include <optional>
#include <stdexcept>
#include <vector>

#include "bindings/cuda_test_memory.h"
#include "bindings/attention_args.h"
#include "bindings/numpy_array.h"
#include "core/error.h"
#include "cuda/cuda_info.h"
#include "ops/attention/attention.h"
#include "ops/attention/cuda/attention_cuda.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

using namespace cuda_test;
using attn_detail::Problem;

// The problem's arrays in device memory.
template <class T>
struct DeviceProblem {
  DeviceBuffer q, k, v, mask, qi, ki, vi, mi;
  cuda::AttnDeviceProblem<T> p;
  DeviceProblem(const Problem& pr, cudaStream_t s) {
    p.q = upload(pr.q.ptr<T>(), static_cast<size_t>(pr.q.numel()), q, s);
    p.k = upload(pr.k.ptr<T>(), static_cast<size_t>(pr.k.numel()), k, s);
    p.v = upload(pr.v.ptr<T>(), static_cast<size_t>(pr.v.numel()), v, s);
    if (pr.has_mask) {
      p.mask = upload(pr.mask.ptr<T>(), static_cast<size_t>(pr.mask.numel()), mask, s);
      p.mi = upload(pr.mi.data(), pr.mi.size(), mi, s);
    }
    p.qi = upload(pr.qi.data(), pr.qi.size(), qi, s);
    p.ki = upload(pr.ki.data(), pr.ki.size(), ki, s);
    p.vi = upload(pr.vi.data(), pr.vi.size(), vi, s);
    p.nbatch = pr.nbatch; p.L = pr.L; p.S = pr.S; p.E = pr.E; p.Ev = pr.Ev;
    p.mask_rs = pr.mask_rs; p.mask_mat = pr.mask_mat;
    p.scale = static_cast<T>(pr.scale);
    p.causal = pr.causal;
  }
};

Shape lse_shape(const Problem& p) {
  Shape s = p.batch;
  s.push_back(p.L);
  return s;
}

template <class T>
void forward(const Problem& pr, Array& out, Array& lse) {
  out = Array::empty(attn_detail::out_shape(pr, pr.Ev), dtype_of<T>());
  lse = Array::empty(lse_shape(pr), dtype_of<T>());
  if (pr.nbatch * pr.L == 0) return;
  if (pr.S == 0) {
    out = Array::zeros(out.shape, dtype_of<T>());
    for (int64_t i = 0; i < lse.numel(); ++i) lse.ptr<T>()[i] = std::numeric_limits<T>::infinity();
    return;
  }
  Stream stream;
  DeviceProblem<T> d(pr, stream.s);
  DeviceBuffer dout(sizeof(T) * static_cast<size_t>(out.numel())), dlse(sizeof(T) * static_cast<size_t>(lse.numel()));
  cuda::attention_forward<T>(d.p, dout.get<T>(), dlse.get<T>(), stream.s);
  download(out.ptr<T>(), dout.get<T>(), static_cast<size_t>(out.numel()), stream.s);
  download(lse.ptr<T>(), dlse.get<T>(), static_cast<size_t>(lse.numel()), stream.s);
  TFG_CUDA_CHECK(cudaStreamSynchronize(stream.s));
}

// dst (matrices of `mat` elements) [index[b]] += src[b], in b order.
template <class T>
void sum_into(Array& dst, const std::vector<T>& src, const std::vector<int64_t>& index, int64_t mat) {
  T* d = dst.ptr<T>();
  for (size_t b = 0; b < index.size(); ++b)
    for (int64_t i = 0; i < mat; ++i) d[index[b] * mat + i] += src[b * mat + i];
}

template <class T>
AttentionGrads backward(const Problem& pr, const Array& q, const Array& k, const Array& v, const Array& grad_out,
                        const Array* output, const Array* lse_in) {
  AttentionGrads g{Array::zeros(q.shape, q.dtype), Array::zeros(k.shape, q.dtype), Array::zeros(v.shape, q.dtype)};
  if (pr.nbatch * pr.L * pr.S == 0) return g;
  Array o, lse;
  if (output) {
    o = output->contiguous();
    lse = lse_in->contiguous();
  } else {
    forward<T>(pr, o, lse);
  }
  const Array dout_h = grad_out.contiguous();
  const size_t nq = static_cast<size_t>(pr.nbatch * pr.L * pr.E), nk = static_cast<size_t>(pr.nbatch * pr.S * pr.E),
               nv = static_cast<size_t>(pr.nbatch * pr.S * pr.Ev), no = static_cast<size_t>(pr.nbatch * pr.L * pr.Ev),
               nl = static_cast<size_t>(pr.nbatch * pr.L);
  Stream stream;
  DeviceProblem<T> d(pr, stream.s);
  DeviceBuffer ddout, dout_o, dlse, delta(sizeof(T) * nl), dq(sizeof(T) * nq), dk(sizeof(T) * nk), dv(sizeof(T) * nv);
  const T* pdout = upload(dout_h.ptr<T>(), no, ddout, stream.s);
  const T* po = upload(o.ptr<T>(), no, dout_o, stream.s);
  const T* plse = upload(lse.ptr<T>(), nl, dlse, stream.s);
  cuda::attention_backward<T>(d.p, pdout, po, plse, delta.get<T>(), dq.get<T>(), dk.get<T>(), dv.get<T>(), stream.s);
  std::vector<T> hq(nq), hk(nk), hv(nv);
  download(hq.data(), dq.get<T>(), nq, stream.s);
  download(hk.data(), dk.get<T>(), nk, stream.s);
  download(hv.data(), dv.get<T>(), nv, stream.s);
  TFG_CUDA_CHECK(cudaStreamSynchronize(stream.s));
  sum_into(g.grad_q, hq, pr.qi, pr.L * pr.E);
  sum_into(g.grad_k, hk, pr.ki, pr.S * pr.E);
  sum_into(g.grad_v, hv, pr.vi, pr.S * pr.Ev);
  return g;
}

}  // namespace

void bind_cuda_attention(py::module_& m) {
  m.def("_cuda_scaled_dot_product_attention",
        [](const py::handle& q, const py::handle& k, const py::handle& v, const py::handle& attn_mask,
           bool is_causal, std::optional<double> scale, bool enable_gqa, bool return_lse) {
          const char* op = "_cuda_scaled_dot_product_attention";
          AttentionInputs in(op, q, k, v, attn_mask, is_causal, scale, enable_gqa);
          const Problem pr = attn_detail::analyse(op, in.q, in.k, in.v, in.opt);
          require_cuda();
          Array out, lse;
          {
            py::gil_scoped_release nogil;
            if (pr.q.dtype == DType::float32) forward<float>(pr, out, lse);
            else forward<double>(pr, out, lse);
          }
          if (!return_lse) return py::object(to_numpy(std::move(out)));
          return py::object(py::make_tuple(to_numpy(std::move(out)), to_numpy(std::move(lse))));
        },
        py::arg("query"), py::arg("key"), py::arg("value"), py::arg("attn_mask") = py::none(),
        py::arg("is_causal") = false, py::arg("scale") = py::none(), py::arg("enable_gqa") = false,
        py::kw_only(), py::arg("return_lse") = false,
        R"(Test hook: scaled_dot_product_attention by the CUDA flash-attention kernel
(same arguments, semantics and checks as the CPU op).)");
  m.def("_cuda_scaled_dot_product_attention_backward",
        [](const py::handle& grad_out, const py::handle& q, const py::handle& k, const py::handle& v,
           const py::handle& attn_mask, bool is_causal, std::optional<double> scale, bool enable_gqa,
           const py::handle& output, const py::handle& lse) {
          const char* op = "_cuda_scaled_dot_product_attention_backward";
          const Array gv = borrow_array(grad_out, op, "grad_out");
          AttentionInputs in(op, q, k, v, attn_mask, is_causal, scale, enable_gqa);
          Array ov, lv;
          if (!output.is_none()) ov = borrow_array(output, op, "output");
          if (!lse.is_none()) lv = borrow_array(lse, op, "lse");
          const Array* op_out = output.is_none() ? nullptr : &ov;
          const Array* op_lse = lse.is_none() ? nullptr : &lv;
          const Problem pr = attn_detail::analyse(op, in.q, in.k, in.v, in.opt);
          attn_detail::check_backward_args(op, pr, in.q, gv, op_out, op_lse);
          require_cuda();
          AttentionGrads g;
          {
            py::gil_scoped_release nogil;
            if (pr.q.dtype == DType::float32) g = backward<float>(pr, in.q, in.k, in.v, gv, op_out, op_lse);
            else g = backward<double>(pr, in.q, in.k, in.v, gv, op_out, op_lse);
          }
          return py::make_tuple(to_numpy(std::move(g.grad_q)), to_numpy(std::move(g.grad_k)),
                                to_numpy(std::move(g.grad_v)));
        },
        py::arg("grad_out"), py::arg("query"), py::arg("key"), py::arg("value"),
        py::arg("attn_mask") = py::none(), py::arg("is_causal") = false, py::arg("scale") = py::none(),
        py::arg("enable_gqa") = false, py::kw_only(), py::arg("output") = py::none(),
        py::arg("lse") = py::none(),
        R"(Test hook: the gradients (grad_query, grad_key, grad_value) by the CUDA
attention backward kernels (same arguments and checks as the CPU op).)");
}

}  // namespace tfg::bindings
