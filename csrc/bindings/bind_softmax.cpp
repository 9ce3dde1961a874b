// Bindings for softmax, log_softmax, cross_entropy and their backwards.
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/numpy_array.h"
#include "ops/cross_entropy/cross_entropy.h"
#include "ops/softmax/softmax.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

using ForwardFn = Array (*)(const Array&, int64_t);
using BackwardFn = Array (*)(const Array&, const Array&, int64_t, const Array*);

py::array run_forward(ForwardFn fn, const char* op, const py::handle& x, int64_t dim) {
  const Array xv = borrow_array(x, op, "x");
  Array out;
  {
    py::gil_scoped_release nogil;
    out = fn(xv, dim);
  }
  return to_numpy(std::move(out));
}

py::tuple run_backward(BackwardFn fn, const char* op, const py::handle& grad_output,
                       const py::handle& x, int64_t dim, const py::handle& output) {
  const Array gv = borrow_array(grad_output, op, "grad_output"), xv = borrow_array(x, op, "x");
  Array yv;
  const bool has_output = !output.is_none();
  if (has_output) yv = borrow_array(output, op, "output");
  Array out;
  {
    py::gil_scoped_release nogil;
    out = fn(gv, xv, dim, has_output ? &yv : nullptr);
  }
  return py::make_tuple(to_numpy(std::move(out)));
}

}  // namespace

void bind_softmax(py::module_& m) {
  m.def("softmax", [](const py::handle& x, int64_t dim) { return run_forward(&softmax, "softmax", x, dim); },
        py::arg("x"), py::arg("dim"),
        R"(softmax along `dim`, as torch.nn.functional.softmax.

float32 or float64, any shape (0-d counts as one element), any strides; dim
may be negative. A row of only -inf, or holding NaN or +inf, gives NaN.)");
  m.def("log_softmax",
        [](const py::handle& x, int64_t dim) { return run_forward(&log_softmax, "log_softmax", x, dim); },
        py::arg("x"), py::arg("dim"),
        R"(log_softmax along `dim`, as torch.nn.functional.log_softmax: x - max - log(sum(exp(x - max))).)");
  m.def("softmax_backward",
        [](const py::handle& g, const py::handle& x, int64_t dim, const py::handle& output) {
          return run_backward(&softmax_backward, "softmax_backward", g, x, dim, output);
        },
        py::arg("grad_output"), py::arg("x"), py::arg("dim"), py::arg("output") = py::none(),
        R"(Gradient of softmax: (grad_x,) with grad_x = y * (g - sum(g * y)) along `dim`.

`output` is the forward's result y when available; without it y is recomputed
from x row by row.)");
  m.def("log_softmax_backward",
        [](const py::handle& g, const py::handle& x, int64_t dim, const py::handle& output) {
          return run_backward(&log_softmax_backward, "log_softmax_backward", g, x, dim, output);
        },
        py::arg("grad_output"), py::arg("x"), py::arg("dim"), py::arg("output") = py::none(),
        R"(Gradient of log_softmax: (grad_x,) with grad_x = g - exp(y) * sum(g) along `dim`.

`output` is the forward's result y (log-probabilities) when available; without
it the probabilities are recomputed from x row by row.)");

  m.def("cross_entropy",
        [](const py::handle& input, const py::handle& target, const py::handle& weight,
           int64_t ignore_index, const std::string& reduction, double label_smoothing) {
          const char* op = "cross_entropy";
          const Array iv = borrow_array(input, op, "input"), tv = borrow_array(target, op, "target");
          Array wv;
          const bool has_weight = !weight.is_none();
          if (has_weight) wv = borrow_array(weight, op, "weight");
          const Reduction red = parse_reduction(op, reduction);
          Array out;
          {
            py::gil_scoped_release nogil;
            out = cross_entropy(iv, tv, has_weight ? &wv : nullptr, ignore_index, red, label_smoothing);
          }
          return to_numpy(std::move(out));
        },
        py::arg("input"), py::arg("target"), py::arg("weight") = py::none(),
        py::arg("ignore_index") = -100, py::arg("reduction") = "mean", py::arg("label_smoothing") = 0.0,
        R"(Cross-entropy of logits and class indices, as torch.nn.functional.cross_entropy.

input (C,) or (N, C, d1, ...); target () or (N, d1, ...), int64 or int32;
weight (C,) or None. Log-softmax and the NLL are fused per row. Targets other
than ignore_index outside [0, C) raise ValueError.)");
  m.def("cross_entropy_backward",
        [](const py::handle& grad_output, const py::handle& input, const py::handle& target,
           const py::handle& weight, int64_t ignore_index, const std::string& reduction,
           double label_smoothing) {
          const char* op = "cross_entropy_backward";
          const Array gv = borrow_array(grad_output, op, "grad_output");
          const Array iv = borrow_array(input, op, "input"), tv = borrow_array(target, op, "target");
          Array wv;
          const bool has_weight = !weight.is_none();
          if (has_weight) wv = borrow_array(weight, op, "weight");
          const Reduction red = parse_reduction(op, reduction);
          Array out;
          {
            py::gil_scoped_release nogil;
            out = cross_entropy_backward(gv, iv, tv, has_weight ? &wv : nullptr, ignore_index, red,
                                         label_smoothing);
          }
          return py::make_tuple(to_numpy(std::move(out)));
        },
        py::arg("grad_output"), py::arg("input"), py::arg("target"), py::arg("weight") = py::none(),
        py::arg("ignore_index") = -100, py::arg("reduction") = "mean", py::arg("label_smoothing") = 0.0,
        R"(Gradient of cross_entropy with respect to input: (grad_input,).

grad_output is a 0-d array for reduction 'mean' / 'sum' and has the target's
shape for 'none'. One fused pass per row recomputes the softmax.)");
}

}  // namespace tfg::bindings
