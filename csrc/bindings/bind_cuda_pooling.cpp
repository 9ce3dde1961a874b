// Test bindings of the CUDA pooling kernels (ops/pooling/cuda/pooling.cu),
// compiled only with the CUDA backend or the SIMT emulation:
// _C._cuda_max_pool2d, _cuda_max_pool2d_backward, _cuda_avg_pool2d,
// _cuda_avg_pool2d_backward, _cuda_adaptive_avg_pool2d,
// _cuda_adaptive_avg_pool2d_backward, with the arguments, checks and results
// of the CPU ops (pooling.h, bind_pooling.cpp). Operands are copied
// C-contiguous to device memory, the kernels run on a stream of their own,
// the results are copied back. max_pool2d_backward without indices runs the
// forward kernel for them first.
#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <stdexcept>
#include <utility>

#include "bindings/cuda_test_memory.h"
#include "bindings/numpy_array.h"
#include "bindings/pool_args.h"
#include "core/error.h"
#include "cuda/cuda_info.h"
#include "ops/pooling/cuda/pooling_cuda.h"
#include "ops/pooling/pooling.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

using cuda_test::require_cuda;

using namespace pool_args;
using cuda_test::DeviceBuffer;
using cuda_test::Stream;

size_t elem_of(const Array& x) { return static_cast<size_t>(dtype_size(x.dtype)); }

std::pair<Array, Array> max_forward(const Array& x, const IntList& k, const IntList& s, const IntList& p,
                                    const IntList& d, bool ceil_mode, bool return_indices) {
  const char* op = "_cuda_max_pool2d";
  const PoolGeometry g = max_pool2d_geometry(op, x, k, s, p, d, ceil_mode);
  require_cuda();
  Array out = Array::empty(pool_out_shape(x, g.oh, g.ow), x.dtype), ind;
  if (return_indices) ind = Array::empty(out.shape, DType::int64);
  Stream stream;
  DeviceBuffer dx, dout, dind;
  cuda_test::upload(x, elem_of(x), dx, stream.s);
  cuda_test::allocate(dout, elem_of(x) * out.numel());
  if (return_indices) cuda_test::allocate(dind, sizeof(int64_t) * out.numel());
  TFG_DISPATCH_FLOATING(x.dtype, op, [&] {
    cuda::max_pool2d_forward(g, pool_planes(x), dx.get<scalar_t>(), dout.get<scalar_t>(),
                             return_indices ? dind.get<int64_t>() : nullptr, stream.s);
  });
  cuda_test::download(dout, elem_of(x), out, stream.s);
  if (return_indices) cuda_test::download(dind, sizeof(int64_t), ind, stream.s);
  return {std::move(out), std::move(ind)};
}

Array max_backward(const Array& go, const Array& x, const IntList& k, const IntList& s, const IntList& p,
                   const IntList& d, bool ceil_mode, const Array* indices) {
  const char* op = "_cuda_max_pool2d_backward";
  const PoolGeometry g = max_pool2d_geometry(op, x, k, s, p, d, ceil_mode);
  check_pool_grad_output(op, go, x, g);
  Array ind;
  if (indices) {
    check_max_pool_indices(op, *indices, go);
    ind = indices->contiguous();
    check_max_pool_index_range(op, ind, g);
  }
  require_cuda();
  Array gx = Array::empty(x.shape, x.dtype);
  Stream stream;
  DeviceBuffer dgo, dind, dx, dgx;
  cuda_test::upload(go, elem_of(x), dgo, stream.s);
  if (indices) {
    cuda_test::upload(ind, sizeof(int64_t), dind, stream.s);
  } else {
    cuda_test::upload(x, elem_of(x), dx, stream.s);
    cuda_test::allocate(dind, sizeof(int64_t) * go.numel());
  }
  cuda_test::allocate(dgx, elem_of(x) * gx.numel());
  TFG_DISPATCH_FLOATING(x.dtype, op, [&] {
    if (!indices)
      cuda::max_pool2d_forward(g, pool_planes(x), dx.get<scalar_t>(), static_cast<scalar_t*>(nullptr),
                               dind.get<int64_t>(), stream.s);
    cuda::max_pool2d_backward(g, pool_planes(x), dgo.get<scalar_t>(), dind.get<int64_t>(),
                              dgx.get<scalar_t>(), stream.s);
  });
  cuda_test::download(dgx, elem_of(x), gx, stream.s);
  return gx;
}

// forward(g, planes, src, dst, stream) over x's planes: src (uploaded) -> a new array of `shape`.
template <class Launch>
Array run_planes(const char* op, const Array& x, const Array& src, const Shape& shape, Launch&& launch_fn) {
  require_cuda();
  Array out = Array::empty(shape, x.dtype);
  if (out.numel() == 0) return out;
  Stream stream;
  DeviceBuffer dsrc, ddst;
  cuda_test::upload(src, elem_of(x), dsrc, stream.s);
  cuda_test::allocate(ddst, elem_of(x) * out.numel());
  TFG_DISPATCH_FLOATING(x.dtype, op, [&] {
    launch_fn(dsrc.get<scalar_t>(), ddst.get<scalar_t>(), stream.s);
  });
  cuda_test::download(ddst, elem_of(x), out, stream.s);
  return out;
}

}  // namespace

void bind_cuda_pooling(py::module_& m) {
  m.def("_cuda_max_pool2d", [](const py::handle& x, const py::handle& kernel_size, const py::handle& stride,
                               const py::handle& padding, const py::handle& dilation, bool ceil_mode,
                               bool return_indices) -> py::object {
    const char* op = "_cuda_max_pool2d";
    const Array xv = borrow_array(x, op, "x");
    const IntList k = int_list(kernel_size, op, "kernel_size"), s = int_list(stride, op, "stride", true),
                  p = int_list(padding, op, "padding"), d = int_list(dilation, op, "dilation");
    std::pair<Array, Array> out;
    {
      py::gil_scoped_release nogil;
      out = max_forward(xv, k, s, p, d, ceil_mode, return_indices);
    }
    if (!return_indices) return to_numpy(std::move(out.first));
    return py::make_tuple(to_numpy(std::move(out.first)), to_numpy(std::move(out.second)));
  }, py::arg("x"), py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0,
  py::arg("dilation") = 1, py::arg("ceil_mode") = false, py::arg("return_indices") = false,
  "Test hook: max_pool2d by the CUDA kernel (arguments and results as _C.max_pool2d).");

  m.def("_cuda_max_pool2d_backward", [](const py::handle& grad_output, const py::handle& x,
                                        const py::handle& kernel_size, const py::handle& stride,
                                        const py::handle& padding, const py::handle& dilation, bool ceil_mode,
                                        const py::handle& indices) {
    const char* op = "_cuda_max_pool2d_backward";
    const Array gv = borrow_array(grad_output, op, "grad_output"), xv = borrow_array(x, op, "x");
    const IntList k = int_list(kernel_size, op, "kernel_size"), s = int_list(stride, op, "stride", true),
                  p = int_list(padding, op, "padding"), d = int_list(dilation, op, "dilation");
    Array iv;
    const bool has_indices = !indices.is_none();
    if (has_indices) iv = borrow_array(indices, op, "indices");
    Array out;
    {
      py::gil_scoped_release nogil;
      out = max_backward(gv, xv, k, s, p, d, ceil_mode, has_indices ? &iv : nullptr);
    }
    return py::make_tuple(to_numpy(std::move(out)));
  }, py::arg("grad_output"), py::arg("x"), py::arg("kernel_size"), py::arg("stride") = py::none(),
  py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("ceil_mode") = false,
  py::arg("indices") = py::none(),
  "Test hook: max_pool2d_backward by the CUDA kernels; returns (grad_x,).");

  m.def("_cuda_avg_pool2d", [](const py::handle& x, const py::handle& kernel_size, const py::handle& stride,
                               const py::handle& padding, bool ceil_mode, bool count_include_pad,
                               const py::handle& divisor_override) {
    const char* op = "_cuda_avg_pool2d";
    const Array xv = borrow_array(x, op, "x");
    const IntList k = int_list(kernel_size, op, "kernel_size"), s = int_list(stride, op, "stride", true),
                  p = int_list(padding, op, "padding");
    const std::optional<int64_t> div = optional_int(divisor_override, op, "divisor_override");
    Array out;
    {
      py::gil_scoped_release nogil;
      const PoolGeometry g = avg_pool2d_geometry(op, xv, k, s, p, ceil_mode, count_include_pad, div);
      out = run_planes(op, xv, xv, pool_out_shape(xv, g.oh, g.ow), [&](const auto* src, auto* dst, cudaStream_t st) {
        cuda::avg_pool2d_forward(g, pool_planes(xv), src, dst, st);
      });
    }
    return to_numpy(std::move(out));
  }, py::arg("x"), py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0,
  py::arg("ceil_mode") = false, py::arg("count_include_pad") = true, py::arg("divisor_override") = py::none(),
  "Test hook: avg_pool2d by the CUDA kernel (arguments as _C.avg_pool2d).");

  m.def("_cuda_avg_pool2d_backward", [](const py::handle& grad_output, const py::handle& x,
                                        const py::handle& kernel_size, const py::handle& stride,
                                        const py::handle& padding, bool ceil_mode, bool count_include_pad,
                                        const py::handle& divisor_override) {
    const char* op = "_cuda_avg_pool2d_backward";
    const Array gv = borrow_array(grad_output, op, "grad_output"), xv = borrow_array(x, op, "x");
    const IntList k = int_list(kernel_size, op, "kernel_size"), s = int_list(stride, op, "stride", true),
                  p = int_list(padding, op, "padding");
    const std::optional<int64_t> div = optional_int(divisor_override, op, "divisor_override");
    Array out;
    {
      py::gil_scoped_release nogil;
      const PoolGeometry g = avg_pool2d_geometry(op, xv, k, s, p, ceil_mode, count_include_pad, div);
      check_pool_grad_output(op, gv, xv, g);
      out = run_planes(op, xv, gv, xv.shape, [&](const auto* src, auto* dst, cudaStream_t st) {
        cuda::avg_pool2d_backward(g, pool_planes(xv), src, dst, st);
      });
    }
    return py::make_tuple(to_numpy(std::move(out)));
  }, py::arg("grad_output"), py::arg("x"), py::arg("kernel_size"), py::arg("stride") = py::none(),
  py::arg("padding") = 0, py::arg("ceil_mode") = false, py::arg("count_include_pad") = true,
  py::arg("divisor_override") = py::none(),
  "Test hook: avg_pool2d_backward by the CUDA kernel; returns (grad_x,).");

  m.def("_cuda_adaptive_avg_pool2d", [](const py::handle& x, const py::handle& output_size) {
    const char* op = "_cuda_adaptive_avg_pool2d";
    const Array xv = borrow_array(x, op, "x");
    const OutputSize size = output_size_arg(output_size, op);
    Array out;
    {
      py::gil_scoped_release nogil;
      const PoolGeometry g = adaptive_avg_pool2d_geometry(op, xv, size);
      out = run_planes(op, xv, xv, pool_out_shape(xv, g.oh, g.ow), [&](const auto* src, auto* dst, cudaStream_t st) {
        cuda::adaptive_avg_pool2d_forward(g, pool_planes(xv), src, dst, st);
      });
    }
    return to_numpy(std::move(out));
  }, py::arg("x"), py::arg("output_size"),
  "Test hook: adaptive_avg_pool2d by the CUDA kernel (arguments as _C.adaptive_avg_pool2d).");

  m.def("_cuda_adaptive_avg_pool2d_backward", [](const py::handle& grad_output, const py::handle& x,
                                                 const py::handle& output_size) {
    const char* op = "_cuda_adaptive_avg_pool2d_backward";
    const Array gv = borrow_array(grad_output, op, "grad_output"), xv = borrow_array(x, op, "x");
    const OutputSize size = output_size_arg(output_size, op);
    Array out;
    {
      py::gil_scoped_release nogil;
      const PoolGeometry g = adaptive_avg_pool2d_geometry(op, xv, size);
      check_pool_grad_output(op, gv, xv, g);
      out = run_planes(op, xv, gv, xv.shape, [&](const auto* src, auto* dst, cudaStream_t st) {
        cuda::adaptive_avg_pool2d_backward(g, pool_planes(xv), src, dst, st);
      });
    }
    return py::make_tuple(to_numpy(std::move(out)));
  }, py::arg("grad_output"), py::arg("x"), py::arg("output_size"),
  "Test hook: adaptive_avg_pool2d_backward by the CUDA kernel; returns (grad_x,).");
}

}  // namespace tfg::bindings
