// Bindings for the 2-D pooling ops and their backwards: argument parsing
// (int-or-pair window options, None) and docstrings only.
#include <pybind11/pybind11.h>

#include <optional>
#include <string>

#include "bindings/numpy_array.h"
#include "bindings/pool_args.h"
#include "ops/pooling/pooling.h"

namespace py = pybind11;

namespace tfg::bindings {

using namespace pool_args;

void bind_pooling(py::module_& m) {
  m.def("max_pool2d", [](const py::handle& x, const py::handle& kernel_size, const py::handle& stride,
                         const py::handle& padding, const py::handle& dilation, bool ceil_mode,
                         bool return_indices) -> py::object {
    const char* op = "max_pool2d";
    const Array xv = borrow_array(x, op, "x");
    const IntList k = int_list(kernel_size, op, "kernel_size"), s = int_list(stride, op, "stride", true),
                  p = int_list(padding, op, "padding"), d = int_list(dilation, op, "dilation");
    std::pair<Array, Array> out;
    {
      py::gil_scoped_release nogil;
      out = max_pool2d(xv, k, s, p, d, ceil_mode, return_indices);
    }
    if (!return_indices) return to_numpy(std::move(out.first));
    return py::make_tuple(to_numpy(std::move(out.first)), to_numpy(std::move(out.second)));
  }, py::arg("x"), py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0,
  py::arg("dilation") = 1, py::arg("ceil_mode") = false, py::arg("return_indices") = false,
  R"(2-D max pooling over (N, C, H, W) or (C, H, W) input, as F.max_pool2d.

kernel_size, stride, padding, dilation: an int or an (H, W) pair; stride None
(or empty) means kernel_size. Returns out, or (out, indices) with int64
indices flat within each input plane (h * W + w). NaN in a window wins.)");

  m.def("max_pool2d_backward", [](const py::handle& grad_output, const py::handle& x,
                                  const py::handle& kernel_size, const py::handle& stride,
                                  const py::handle& padding, const py::handle& dilation, bool ceil_mode,
                                  const py::handle& indices) {
    const char* op = "max_pool2d_backward";
    const Array gv = borrow_array(grad_output, op, "grad_output"), xv = borrow_array(x, op, "x");
    const IntList k = int_list(kernel_size, op, "kernel_size"), s = int_list(stride, op, "stride", true),
                  p = int_list(padding, op, "padding"), d = int_list(dilation, op, "dilation");
    Array iv;
    const bool has_indices = !indices.is_none();
    if (has_indices) iv = borrow_array(indices, op, "indices");
    Array out;
    {
      py::gil_scoped_release nogil;
      out = max_pool2d_backward(gv, xv, k, s, p, d, ceil_mode, has_indices ? &iv : nullptr);
    }
    return py::make_tuple(to_numpy(std::move(out)));
  }, py::arg("grad_output"), py::arg("x"), py::arg("kernel_size"), py::arg("stride") = py::none(),
  py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("ceil_mode") = false,
  py::arg("indices") = py::none(),
  R"(Gradient of max_pool2d: (grad_x,), grad_output scattered to each window's argmax.

indices (from max_pool2d(..., return_indices=True)) are used when given
(checked: int64, the output's shape, entries inside the plane); otherwise the
argmax is recomputed from x, first maximum in window order as PyTorch.)");

  m.def("avg_pool2d", [](const py::handle& x, const py::handle& kernel_size, const py::handle& stride,
                         const py::handle& padding, bool ceil_mode, bool count_include_pad,
                         const py::handle& divisor_override) {
    const char* op = "avg_pool2d";
    const Array xv = borrow_array(x, op, "x");
    const IntList k = int_list(kernel_size, op, "kernel_size"), s = int_list(stride, op, "stride", true),
                  p = int_list(padding, op, "padding");
    const std::optional<int64_t> div = optional_int(divisor_override, op, "divisor_override");
    Array out;
    {
      py::gil_scoped_release nogil;
      out = avg_pool2d(xv, k, s, p, ceil_mode, count_include_pad, div);
    }
    return to_numpy(std::move(out));
  }, py::arg("x"), py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0,
  py::arg("ceil_mode") = false, py::arg("count_include_pad") = true,
  py::arg("divisor_override") = py::none(),
  R"(2-D average pooling over (N, C, H, W) or (C, H, W) input, as F.avg_pool2d.

The divisor follows PyTorch: the window clipped to the padded input with
count_include_pad, to the input without; divisor_override (non-zero) replaces it.)");

  m.def("avg_pool2d_backward", [](const py::handle& grad_output, const py::handle& x,
                                  const py::handle& kernel_size, const py::handle& stride,
                                  const py::handle& padding, bool ceil_mode, bool count_include_pad,
                                  const py::handle& divisor_override) {
    const char* op = "avg_pool2d_backward";
    const Array gv = borrow_array(grad_output, op, "grad_output"), xv = borrow_array(x, op, "x");
    const IntList k = int_list(kernel_size, op, "kernel_size"), s = int_list(stride, op, "stride", true),
                  p = int_list(padding, op, "padding");
    const std::optional<int64_t> div = optional_int(divisor_override, op, "divisor_override");
    Array out;
    {
      py::gil_scoped_release nogil;
      out = avg_pool2d_backward(gv, xv, k, s, p, ceil_mode, count_include_pad, div);
    }
    return py::make_tuple(to_numpy(std::move(out)));
  }, py::arg("grad_output"), py::arg("x"), py::arg("kernel_size"), py::arg("stride") = py::none(),
  py::arg("padding") = 0, py::arg("ceil_mode") = false, py::arg("count_include_pad") = true,
  py::arg("divisor_override") = py::none(),
  R"(Gradient of avg_pool2d: (grad_x,). x supplies the input's shape and dtype.)");

  m.def("adaptive_avg_pool2d", [](const py::handle& x, const py::handle& output_size) {
    const char* op = "adaptive_avg_pool2d";
    const Array xv = borrow_array(x, op, "x");
    const OutputSize size = output_size_arg(output_size, op);
    Array out;
    {
      py::gil_scoped_release nogil;
      out = adaptive_avg_pool2d(xv, size);
    }
    return to_numpy(std::move(out));
  }, py::arg("x"), py::arg("output_size"),
  R"(Adaptive 2-D average pooling, as F.adaptive_avg_pool2d.

output_size: an int or an (H, W) pair whose entries may be None (keep the
input's size). Output i averages input [floor(i * H / OH), ceil((i + 1) * H / OH)).)");

  m.def("adaptive_avg_pool2d_backward", [](const py::handle& grad_output, const py::handle& x,
                                           const py::handle& output_size) {
    const char* op = "adaptive_avg_pool2d_backward";
    const Array gv = borrow_array(grad_output, op, "grad_output"), xv = borrow_array(x, op, "x");
    const OutputSize size = output_size_arg(output_size, op);
    Array out;
    {
      py::gil_scoped_release nogil;
      out = adaptive_avg_pool2d_backward(gv, xv, size);
    }
    return py::make_tuple(to_numpy(std::move(out)));
  }, py::arg("grad_output"), py::arg("x"), py::arg("output_size"),
  R"(Gradient of adaptive_avg_pool2d: (grad_x,). x supplies the input's shape and dtype.)");
}

}  // namespace tfg::bindings
