// Test bindings of the CUDA cross-entropy kernels
// (ops/cross_entropy/cuda/cross_entropy.cu), compiled only with the CUDA
// backend or the SIMT emulation: _C._cuda_cross_entropy(input, target,
// weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0) and
// _C._cuda_cross_entropy_backward(grad_output, ...), with the arguments,
// checks and target validation of the CPU ops (prepare_cross_entropy).
// Operands are copied C-contiguous to device memory, the kernels run on a
// stream of their own, the result is copied back.
#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "bindings/cuda_test_memory.h"
#include "bindings/numpy_array.h"
#include "core/error.h"
#include "cuda/cuda_info.h"
#include "ops/cross_entropy/cross_entropy.h"
#include "ops/cross_entropy/cuda/cross_entropy_cuda.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

using cuda_test::require_cuda;

using cuda_test::DeviceBuffer;
using cuda_test::Stream;

template <class T>
CrossEntropyParams<T> device_params(const CrossEntropyPrepared& p, const DeviceBuffer& w,
                                    int64_t ignore_index, double label_smoothing) {
  CrossEntropyParams<T> k;
  k.weight = p.w.data ? w.get<T>() : nullptr;
  k.ignore_index = ignore_index;
  k.smoothing = static_cast<T>(label_smoothing);
  k.weight_sum = static_cast<T>(p.weight_sum);
  return k;
}

Array forward(const Array& input, const Array& target, const Array* weight, int64_t ignore_index,
              Reduction reduction, double label_smoothing) {
  const char* op = "_cuda_cross_entropy";
  const CrossEntropyPrepared p = prepare_cross_entropy(op, input, target, weight, ignore_index, label_smoothing);
  require_cuda();
  const size_t elem = static_cast<size_t>(dtype_size(input.dtype));
  Array out = Array::empty(reduction == Reduction::none ? target.shape : Shape{}, input.dtype);
  Stream stream;
  DeviceBuffer dx, dt, dw, dloss, dout;
  cuda_test::upload(p.x, elem, dx, stream.s);
  cuda_test::upload(p.t, sizeof(int64_t), dt, stream.s);
  if (p.w.data) cuda_test::upload(p.w, elem, dw, stream.s);
  cuda_test::allocate(dloss, elem * static_cast<size_t>(p.t.numel()));
  if (reduction != Reduction::none) cuda_test::allocate(dout, elem);
  TFG_DISPATCH_FLOATING(input.dtype, op, [&] {
    cuda::cross_entropy_forward(dx.get<scalar_t>(), dt.get<int64_t>(), p.l,
                                device_params<scalar_t>(p, dw, ignore_index, label_smoothing), reduction,
                                p.denom, dloss.get<scalar_t>(), dout.get<scalar_t>(), stream.s);
  });
  cuda_test::download(reduction == Reduction::none ? dloss : dout, elem, out, stream.s);
  return out;
}

Array backward(const Array& grad_output, const Array& input, const Array& target, const Array* weight,
               int64_t ignore_index, Reduction reduction, double label_smoothing) {
  const char* op = "_cuda_cross_entropy_backward";
  const CrossEntropyPrepared p = prepare_cross_entropy(op, input, target, weight, ignore_index, label_smoothing);
  check_cross_entropy_grad_output(op, grad_output, input, target, reduction);
  require_cuda();
  Array gx = Array::empty(input.shape, input.dtype);
  if (gx.numel() == 0) return gx;
  const size_t elem = static_cast<size_t>(dtype_size(input.dtype));
  Stream stream;
  DeviceBuffer dx, dt, dw, dgo, dgx;
  cuda_test::upload(p.x, elem, dx, stream.s);
  cuda_test::upload(p.t, sizeof(int64_t), dt, stream.s);
  if (p.w.data) cuda_test::upload(p.w, elem, dw, stream.s);
  cuda_test::upload(grad_output, elem, dgo, stream.s);
  cuda_test::allocate(dgx, elem * static_cast<size_t>(gx.numel()));
  TFG_DISPATCH_FLOATING(input.dtype, op, [&] {
    const scalar_t divisor = reduction == Reduction::mean ? static_cast<scalar_t>(p.denom) : scalar_t(1);
    cuda::cross_entropy_backward(dx.get<scalar_t>(), dt.get<int64_t>(), p.l,
                                 device_params<scalar_t>(p, dw, ignore_index, label_smoothing),
                                 dgo.get<scalar_t>(), reduction == Reduction::none ? 1 : 0, divisor,
                                 dgx.get<scalar_t>(), stream.s);
  });
  cuda_test::download(dgx, elem, gx, stream.s);
  return gx;
}

}  // namespace

void bind_cuda_cross_entropy(py::module_& m) {
  m.def("_cuda_cross_entropy",
        [](const py::handle& input, const py::handle& target, const py::handle& weight, int64_t ignore_index,
           const std::string& reduction, double label_smoothing) {
          const char* op = "_cuda_cross_entropy";
          const Array iv = borrow_array(input, op, "input"), tv = borrow_array(target, op, "target");
          Array wv;
          const bool has_weight = !weight.is_none();
          if (has_weight) wv = borrow_array(weight, op, "weight");
          const Reduction red = parse_reduction(op, reduction);
          Array out;
          {
            py::gil_scoped_release nogil;
            out = forward(iv, tv, has_weight ? &wv : nullptr, ignore_index, red, label_smoothing);
          }
          return to_numpy(std::move(out));
        },
        py::arg("input"), py::arg("target"), py::arg("weight") = py::none(), py::arg("ignore_index") = -100,
        py::arg("reduction") = "mean", py::arg("label_smoothing") = 0.0,
        "Test hook: cross_entropy by the CUDA kernels (arguments as _C.cross_entropy).");
  m.def("_cuda_cross_entropy_backward",
        [](const py::handle& grad_output, const py::handle& input, const py::handle& target,
           const py::handle& weight, int64_t ignore_index, const std::string& reduction,
           double label_smoothing) {
          const char* op = "_cuda_cross_entropy_backward";
          const Array gv = borrow_array(grad_output, op, "grad_output");
          const Array iv = borrow_array(input, op, "input"), tv = borrow_array(target, op, "target");
          Array wv;
          const bool has_weight = !weight.is_none();
          if (has_weight) wv = borrow_array(weight, op, "weight");
          const Reduction red = parse_reduction(op, reduction);
          Array out;
          {
            py::gil_scoped_release nogil;
            out = backward(gv, iv, tv, has_weight ? &wv : nullptr, ignore_index, red, label_smoothing);
          }
          return py::make_tuple(to_numpy(std::move(out)));
        },
        py::arg("grad_output"), py::arg("input"), py::arg("target"), py::arg("weight") = py::none(),
        py::arg("ignore_index") = -100, py::arg("reduction") = "mean", py::arg("label_smoothing") = 0.0,
        "Test hook: cross_entropy_backward by the CUDA kernels; returns (grad_input,).");
}

}  // namespace tfg::bindings
