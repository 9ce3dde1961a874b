// Bindings for scaled_dot_product_attention and its backward.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "bindings/attention_args.h"
#include "bindings/numpy_array.h"
#include "ops/attention/attention.h"

namespace py = pybind11;

namespace tfg::bindings {

void bind_attention(py::module_& m) {
  m.def("scaled_dot_product_attention",
        [](const py::handle& q, const py::handle& k, const py::handle& v, const py::handle& attn_mask,
           bool is_causal, std::optional<double> scale, bool enable_gqa, bool return_lse) {
          const char* op = "scaled_dot_product_attention";
          AttentionInputs in(op, q, k, v, attn_mask, is_causal, scale, enable_gqa);
          Array out, lse;
          {
            py::gil_scoped_release nogil;
            out = scaled_dot_product_attention(in.q, in.k, in.v, in.opt, return_lse ? &lse : nullptr);
          }
          if (!return_lse) return py::object(to_numpy(std::move(out)));
          return py::object(py::make_tuple(to_numpy(std::move(out)), to_numpy(std::move(lse))));
        },
        py::arg("query"), py::arg("key"), py::arg("value"), py::arg("attn_mask") = py::none(),
        py::arg("is_causal") = false, py::arg("scale") = py::none(), py::arg("enable_gqa") = false,
        py::kw_only(), py::arg("return_lse") = false,
        R"(softmax(query key^T * scale + mask) value, as torch.nn.functional.scaled_dot_product_attention.

query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); leading
dims broadcast. attn_mask: bool (True attends) or query's dtype (added),
broadcasting to (..., L, S). is_causal: query i attends keys j <= i (top-left
aligned). scale defaults to 1/sqrt(E). enable_gqa: query heads (dim -3) a
multiple of key/value heads. A row whose keys are all masked gives 0, as
PyTorch. One fused flash-attention kernel; no L x S matrix is stored.
return_lse=True returns (out, lse), lse (..., L) the row log-sum-exp of the
scaled masked scores (+inf for fully masked rows), for the backward.)");
  m.def("scaled_dot_product_attention_backward",
        [](const py::handle& grad_out, const py::handle& q, const py::handle& k, const py::handle& v,
           const py::handle& attn_mask, bool is_causal, std::optional<double> scale, bool enable_gqa,
           const py::handle& output, const py::handle& lse) {
          const char* op = "scaled_dot_product_attention_backward";
          const Array gv = borrow_array(grad_out, op, "grad_out");
          AttentionInputs in(op, q, k, v, attn_mask, is_causal, scale, enable_gqa);
          Array ov, lv;
          if (!output.is_none()) ov = borrow_array(output, op, "output");
          if (!lse.is_none()) lv = borrow_array(lse, op, "lse");
          AttentionGrads g;
          {
            py::gil_scoped_release nogil;
            g = scaled_dot_product_attention_backward(gv, in.q, in.k, in.v, in.opt,
                                                      output.is_none() ? nullptr : &ov,
                                                      lse.is_none() ? nullptr : &lv);
          }
          return py::make_tuple(to_numpy(std::move(g.grad_q)), to_numpy(std::move(g.grad_k)),
                                to_numpy(std::move(g.grad_v)));
        },
        py::arg("grad_out"), py::arg("query"), py::arg("key"), py::arg("value"),
        py::arg("attn_mask") = py::none(), py::arg("is_causal") = false, py::arg("scale") = py::none(),
        py::arg("enable_gqa") = false, py::kw_only(), py::arg("output") = py::none(),
        py::arg("lse") = py::none(),
        R"(Gradients of scaled_dot_product_attention: (grad_query, grad_key, grad_value).

Fused: the forward is recomputed for the output and the row log-sum-exp, then
the probabilities tile by tile; broadcast inputs get their summed gradients.
output / lse: the forward's results (return_lse=True), both or neither; given,
the forward is not recomputed.)");
}

}  // namespace tfg::bindings
