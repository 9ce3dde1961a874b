// Test bindings of the CUDA conv2d (ops/conv2d/cuda/conv2d.cu), compiled only
// with the CUDA backend or the SIMT emulation: _C._cuda_conv2d and
// _C._cuda_conv2d_backward take the arguments of _C.conv2d and
// _C.conv2d_backward (checked by the same code, ops/conv2d/conv2d.cpp), copy
// the operands (made C-contiguous) to device memory, run the kernels on a
// stream of their own and copy the results back.
#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <stdexcept>

#include "bindings/conv2d_options.h"
#include "bindings/numpy_array.h"
#include "core/error.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_info.h"
#include "ops/conv2d/conv2d.h"
#include "bindings/cuda_test_memory.h"
#include "ops/conv2d/cuda/conv2d_cuda.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

using cuda_test::require_cuda;

// Device memory for `count` elements of T (none for 0), freed on scope exit.
template <class T>
struct DeviceArray {
  T* p = nullptr;
  explicit DeviceArray(int64_t count) {
    if (count > 0) TFG_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), count * sizeof(T)));
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { if (p) cudaFree(p); }
};

using cuda_test::Stream;

template <class T>
void upload(const Array& a, const DeviceArray<T>& d, cudaStream_t stream) {
  if (a.numel() == 0) return;
  const Array c = a.contiguous();
  TFG_CUDA_CHECK(cudaMemcpyAsync(d.p, c.ptr<T>(), a.numel() * sizeof(T), cudaMemcpyHostToDevice, stream));
  TFG_CUDA_CHECK(cudaStreamSynchronize(stream));  // `c` may be a copy that dies on return
}

template <class T>
void download(const DeviceArray<T>& d, Array& a, cudaStream_t stream) {
  if (a.numel() == 0) return;
  TFG_CUDA_CHECK(cudaMemcpyAsync(a.ptr<T>(), d.p, a.numel() * sizeof(T), cudaMemcpyDeviceToHost, stream));
}

template <class T>
Array forward(const ConvGeometry& g, const Array& x, const Array& w, const Array* bias, const Shape& shape) {
  Stream stream;
  DeviceArray<T> dx(x.numel()), dw(w.numel()), db(bias ? bias->numel() : 0);
  Array out = Array::empty(shape, dtype_of<T>());
  DeviceArray<T> dout(out.numel());
  upload(x, dx, stream.s);
  upload(w, dw, stream.s);
  if (bias) upload(*bias, db, stream.s);
  cuda::conv2d_forward<T>(g, dx.p, dw.p, bias ? db.p : nullptr, dout.p, stream.s);
  download(dout, out, stream.s);
  TFG_CUDA_CHECK(cudaStreamSynchronize(stream.s));
  return out;
}

template <class T>
Conv2dGrads backward(const ConvGeometry& g, const Array& gy, const Array& x, const Array& w, const Array* bias,
                     std::array<bool, 3> mask) {
  Stream stream;
  Conv2dGrads grads;
  DeviceArray<T> dgy(gy.numel());
  upload(gy, dgy, stream.s);
  // Kept alive until the synchronization below.
  DeviceArray<T> dx(mask[1] ? x.numel() : 0), dw(mask[0] ? w.numel() : 0);
  DeviceArray<T> dgx(mask[0] ? x.numel() : 0), dgw(mask[1] ? w.numel() : 0);
  DeviceArray<T> ws(mask[1] ? cuda::conv2d_backward_weight_workspace<T>(g) : 0);
  DeviceArray<T> dgb(mask[2] && bias ? bias->numel() : 0);
  if (mask[0]) {
    grads.input = Array::empty(x.shape, dtype_of<T>());
    upload(w, dw, stream.s);
    cuda::conv2d_backward_input<T>(g, dgy.p, dw.p, dgx.p, stream.s);
    download(dgx, grads.input, stream.s);
  }
  if (mask[1]) {
    grads.weight = Array::empty(w.shape, dtype_of<T>());
    upload(x, dx, stream.s);
    cuda::conv2d_backward_weight<T>(g, dgy.p, dx.p, dgw.p, ws.p, stream.s);
    download(dgw, grads.weight, stream.s);
  }
  if (mask[2] && bias) {
    grads.bias = Array::empty(bias->shape, dtype_of<T>());
    cuda::conv2d_backward_bias<T>(g, dgy.p, dgb.p, stream.s);
    download(dgb, grads.bias, stream.s);
  }
  TFG_CUDA_CHECK(cudaStreamSynchronize(stream.s));
  return grads;
}

py::object maybe_numpy(Array&& a) {
  if (!a.data && a.shape.empty()) return py::none();
  return to_numpy(std::move(a));
}

}  // namespace

void bind_cuda_conv2d(py::module_& m) {
  m.def("_cuda_conv2d", [](const py::handle& x, const py::handle& weight, const py::handle& bias,
                           const py::handle& stride, const py::handle& padding, const py::handle& dilation,
                           int64_t groups) {
    const char* op = "conv2d";
    const Conv2dOptions o = parse_conv2d_options(op, stride, padding, dilation, groups);
    const Array xv = borrow_array(x, op, "input"), wv = borrow_array(weight, op, "weight");
    Array bv;
    if (!bias.is_none()) bv = borrow_array(bias, op, "bias");
    const Array* bp = bias.is_none() ? nullptr : &bv;
    const ConvGeometry g = conv2d_geometry(op, xv, wv, bp, o);
    require_cuda();
    Array out;
    {
      py::gil_scoped_release nogil;
      const Shape shape = conv2d_output_shape(g, xv.ndim() == 4);
      out = xv.dtype == DType::float32 ? forward<float>(g, xv, wv, bp, shape) : forward<double>(g, xv, wv, bp, shape);
    }
    return to_numpy(std::move(out));
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
  py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1,
  R"(Test hook: conv2d (as _C.conv2d, same arguments and checks) by the CUDA kernels.

NumPy operands are copied to device memory and the result back.
RuntimeError when CUDA is not available.)");

  m.def("_cuda_conv2d_backward", [](const py::handle& grad_output, const py::handle& x,
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
    const Array* bp = bias.is_none() ? nullptr : &bv;
    const ConvGeometry g = conv2d_backward_geometry(gv, xv, wv, bp, o);
    require_cuda();
    Conv2dGrads grads;
    {
      py::gil_scoped_release nogil;
      grads = xv.dtype == DType::float32 ? backward<float>(g, gv, xv, wv, bp, output_mask)
                                         : backward<double>(g, gv, xv, wv, bp, output_mask);
    }
    return py::make_tuple(maybe_numpy(std::move(grads.input)), maybe_numpy(std::move(grads.weight)),
                          maybe_numpy(std::move(grads.bias)));
  }, py::arg("grad_output"), py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(),
  py::arg("stride") = 1, py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1,
  py::arg("output_mask") = std::array<bool, 3>{true, true, true},
  R"(Test hook: conv2d_backward (as _C.conv2d_backward) by the CUDA kernels.

Returns (grad_input, grad_weight, grad_bias), each None where output_mask is
false; grad_bias is None when bias is None.)");
}

}  // namespace tfg::bindings
