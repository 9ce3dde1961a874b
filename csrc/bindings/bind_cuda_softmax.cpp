// Test bindings of the CUDA softmax kernels (ops/softmax/cuda/softmax.cu),
// compiled only with the CUDA backend or the SIMT emulation:
// _C._cuda_softmax(x, dim), _cuda_log_softmax(x, dim),
// _cuda_softmax_backward(grad_output, x, dim, output=None),
// _cuda_log_softmax_backward(...), with the arguments, checks and results of
// the CPU ops (softmax.h). Operands are copied C-contiguous to device memory,
// the kernel runs on a stream of its own, the result is copied back.
#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "bindings/cuda_test_memory.h"
#include "bindings/numpy_array.h"
#include "core/error.h"
#include "cuda/cuda_info.h"
#include "ops/softmax/cuda/softmax_cuda.h"
#include "ops/softmax/layout.h"
#include "ops/softmax/softmax.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

using cuda_test::require_cuda;

using cuda_test::DeviceBuffer;
using cuda_test::Stream;

Array forward(const Array& x, int64_t dim, bool log) {
  const char* op = log ? "_cuda_log_softmax" : "_cuda_softmax";
  dim = check_softmax_args(op, x, dim);
  require_cuda();
  Array out = Array::empty(x.shape, x.dtype);
  if (out.numel() == 0) return out;
  const size_t elem = static_cast<size_t>(dtype_size(x.dtype));
  const ReduceLayout l = reduce_layout(x.shape, dim);
  Stream stream;
  DeviceBuffer dx, dy;
  cuda_test::upload(x, elem, dx, stream.s);
  cuda_test::allocate(dy, elem * out.numel());
  TFG_DISPATCH_FLOATING(x.dtype, op, [&] {
    cuda::softmax_forward(dx.get<scalar_t>(), dy.get<scalar_t>(), l, log, stream.s);
  });
  cuda_test::download(dy, elem, out, stream.s);
  return out;
}

Array backward(const Array& g, const Array& x, int64_t dim, const Array* y, bool log) {
  const char* op = log ? "_cuda_log_softmax_backward" : "_cuda_softmax_backward";
  dim = check_softmax_backward_args(op, g, x, dim, y);
  require_cuda();
  Array out = Array::empty(x.shape, x.dtype);
  if (out.numel() == 0) return out;
  const size_t elem = static_cast<size_t>(dtype_size(x.dtype));
  const ReduceLayout l = reduce_layout(x.shape, dim);
  Stream stream;
  DeviceBuffer dg, dy, dx, dgx;
  cuda_test::upload(g, elem, dg, stream.s);
  if (y) cuda_test::upload(*y, elem, dy, stream.s);
  else cuda_test::upload(x, elem, dx, stream.s);
  cuda_test::allocate(dgx, elem * out.numel());
  TFG_DISPATCH_FLOATING(x.dtype, op, [&] {
    cuda::softmax_backward(dg.get<scalar_t>(), dy.get<scalar_t>(), dx.get<scalar_t>(), dgx.get<scalar_t>(),
                           l, log, stream.s);
  });
  cuda_test::download(dgx, elem, out, stream.s);
  return out;
}

py::array run_forward(const py::handle& x, int64_t dim, bool log) {
  const Array xv = borrow_array(x, log ? "_cuda_log_softmax" : "_cuda_softmax", "x");
  Array out;
  {
    py::gil_scoped_release nogil;
    out = forward(xv, dim, log);
  }
  return to_numpy(std::move(out));
}

py::tuple run_backward(const py::handle& g, const py::handle& x, int64_t dim, const py::handle& output,
                       bool log) {
  const char* op = log ? "_cuda_log_softmax_backward" : "_cuda_softmax_backward";
  const Array gv = borrow_array(g, op, "grad_output"), xv = borrow_array(x, op, "x");
  Array yv;
  const bool has_output = !output.is_none();
  if (has_output) yv = borrow_array(output, op, "output");
  Array out;
  {
    py::gil_scoped_release nogil;
    out = backward(gv, xv, dim, has_output ? &yv : nullptr, log);
  }
  return py::make_tuple(to_numpy(std::move(out)));
}

}  // namespace

void bind_cuda_softmax(py::module_& m) {
  m.def("_cuda_softmax", [](const py::handle& x, int64_t dim) { return run_forward(x, dim, false); },
        py::arg("x"), py::arg("dim"), "Test hook: softmax(x, dim) by the CUDA kernels.");
  m.def("_cuda_log_softmax", [](const py::handle& x, int64_t dim) { return run_forward(x, dim, true); },
        py::arg("x"), py::arg("dim"), "Test hook: log_softmax(x, dim) by the CUDA kernels.");
  m.def("_cuda_softmax_backward",
        [](const py::handle& g, const py::handle& x, int64_t dim, const py::handle& output) {
          return run_backward(g, x, dim, output, false);
        },
        py::arg("grad_output"), py::arg("x"), py::arg("dim"), py::arg("output") = py::none(),
        "Test hook: softmax_backward by the CUDA kernels; returns (grad_x,).");
  m.def("_cuda_log_softmax_backward",
        [](const py::handle& g, const py::handle& x, int64_t dim, const py::handle& output) {
          return run_backward(g, x, dim, output, true);
        },
        py::arg("grad_output"), py::arg("x"), py::arg("dim"), py::arg("output") = py::none(),
        "Test hook: log_softmax_backward by the CUDA kernels; returns (grad_x,).");
}

}  // namespace tfg::bindings
