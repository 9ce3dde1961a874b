// Bindings for conv2d and conv2d_backward: argument parsing (int or pair
// sizes, "same"/"valid" padding) and docstrings.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/conv2d_options.h"
#include "bindings/numpy_array.h"
#include "ops/conv2d/conv2d.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

// An int or a pair of ints (any sequence of two) -> (h, w).
std::array<int64_t, 2> int_pair(const py::handle& v, const char* op, const char* arg) {
  if (py::isinstance<py::int_>(v) && !py::isinstance<py::bool_>(v)) {
    const int64_t n = v.cast<int64_t>();
    return {n, n};
  }
  if (py::isinstance<py::sequence>(v) && !py::isinstance<py::str>(v)) {
    const auto seq = py::reinterpret_borrow<py::sequence>(v);
    if (seq.size() == 2 && py::isinstance<py::int_>(seq[0]) && py::isinstance<py::int_>(seq[1]))
      return {seq[0].cast<int64_t>(), seq[1].cast<int64_t>()};
  }
  throw TypeError(cat(op, ": '", arg, "' must be an int or a pair of ints, got ",
                      std::string(py::repr(v))));
}

}  // namespace

Conv2dOptions parse_conv2d_options(const char* op, const py::handle& stride, const py::handle& padding,
                            const py::handle& dilation, int64_t groups) {
  Conv2dOptions o;
  o.stride = int_pair(stride, op, "stride");
  o.dilation = int_pair(dilation, op, "dilation");
  o.groups = groups;
  if (py::isinstance<py::str>(padding)) {
    const std::string mode = padding.cast<std::string>();
    if (mode == "same") o.padding_mode = Conv2dOptions::Padding::same;
    else if (mode == "valid") o.padding_mode = Conv2dOptions::Padding::valid;
    else throw ValueError(cat(op, ": 'padding' must be an int, a pair, \"same\" or \"valid\", got \"",
                              mode, "\""));
  } else {
    o.padding = int_pair(padding, op, "padding");
  }
  return o;
}

namespace {

py::object maybe_numpy(Array&& a) {
  if (!a.data && a.shape.empty()) return py::none();
  return to_numpy(std::move(a));
}

}  // namespace

void bind_conv2d(py::module_& m) {
  m.def("conv2d", [](const py::handle& x, const py::handle& weight, const py::handle& bias,
                     const py::handle& stride, const py::handle& padding, const py::handle& dilation,
                     int64_t groups) {
    const Conv2dOptions o = parse_conv2d_options("conv2d", stride, padding, dilation, groups);
    const Array xv = borrow_array(x, "conv2d", "input"), wv = borrow_array(weight, "conv2d", "weight");
    Array bv;
    if (!bias.is_none()) bv = borrow_array(bias, "conv2d", "bias");
    Array out;
    {
      py::gil_scoped_release nogil;
      out = conv2d(xv, wv, bias.is_none() ? nullptr : &bv, o);
    }
    return to_numpy(std::move(out));
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
  py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1,
  R"(2-D convolution (cross-correlation) as torch.nn.functional.conv2d.

input (N, C, H, W) or (C, H, W); weight (out_channels, C / groups, kH, kW);
bias (out_channels,) or None. stride, dilation: int or pair; padding: int,
pair, "same" (stride 1 only; an even kernel pads one more after) or "valid".)");

  m.def("conv2d_backward", [](const py::handle& grad_output, const py::handle& x,
                              const py::handle& weight, const py::handle& bias,
                              const py::handle& stride, const py::handle& padding,
                              const py::handle& dilation, int64_t groups,
                              std::array<bool, 3> output_mask) {
    const char* op = "conv2d_backward";
    const Conv2dOptions o = parse_conv2d_options(op, stride, padding, dilation, groups);
    const Array gv = borrow_array(grad_output, op, "grad_output");
    const Array xv = borrow_array(x, op, "input"), wv = borrow_array(weight, op, "weight");
    Array bv;
    if (!bias.is_none()) bv = borrow_array(bias, op, "bias");
    Conv2dGrads grads;
    {
      py::gil_scoped_release nogil;
      grads = conv2d_backward(gv, xv, wv, bias.is_none() ? nullptr : &bv, o, output_mask);
    }
    return py::make_tuple(maybe_numpy(std::move(grads.input)), maybe_numpy(std::move(grads.weight)),
                          maybe_numpy(std::move(grads.bias)));
  }, py::arg("grad_output"), py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(),
  py::arg("stride") = 1, py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1,
  py::arg("output_mask") = std::array<bool, 3>{true, true, true},
  R"(Gradients of conv2d: (grad_input, grad_weight, grad_bias).

Each is computed only when its entry of output_mask is true, else None;
grad_bias is None when bias is None (only its shape is used).)");
}

}  // namespace tfg::bindings
