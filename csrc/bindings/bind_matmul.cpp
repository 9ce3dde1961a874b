// Bindings for matmul and linear.
#include <pybind11/pybind11.h>

#include "bindings/numpy_array.h"
#include "ops/matmul/matmul.h"

namespace py = pybind11;

namespace tfg::bindings {

void bind_matmul(py::module_& m) {
  m.def("matmul", [](const py::handle& a, const py::handle& b) {
    const Array av = borrow_array(a, "matmul", "a"), bv = borrow_array(b, "matmul", "b");
    Array out;
    {
      py::gil_scoped_release nogil;
      out = matmul(av, bv);
    }
    return to_numpy(std::move(out));
  }, py::arg("a"), py::arg("b"),
  R"(Matrix product with torch.matmul semantics.

1-D operands are promoted to a row (a) or a column (b) and the added dimension
is removed from the result; batch dimensions broadcast. float32 or float64,
both the same; any strides.)");

  m.def("linear", [](const py::handle& x, const py::handle& weight, const py::handle& bias) {
    const Array xv = borrow_array(x, "linear", "input"), wv = borrow_array(weight, "linear", "weight");
    Array bv;
    const bool has_bias = !bias.is_none();
    if (has_bias) bv = borrow_array(bias, "linear", "bias");
    Array out;
    {
      py::gil_scoped_release nogil;
      out = linear(xv, wv, has_bias ? &bv : nullptr);
    }
    return to_numpy(std::move(out));
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(),
  R"(y = input @ weight.T + bias, as torch.nn.functional.linear.

input (..., in_features), weight (out_features, in_features), bias (out_features,)
or None. The bias is added inside the GEMM's micro-kernel.)");
}

}  // namespace tfg::bindings
