// The tensorforge._C extension module: exception translation and one
// bind_<area>() call per area.
#include <pybind11/pybind11.h>

#include "core/error.h"

namespace py = pybind11;

namespace tfg::bindings {
void bind_core(py::module_& m);
void bind_matmul(py::module_& m);
void bind_conv2d(py::module_& m);
void bind_softmax(py::module_& m);
void bind_pooling(py::module_& m);
void bind_nms(py::module_& m);
void bind_lstm(py::module_& m);
void bind_attention(py::module_& m);
void bind_dlpack(py::module_& m);
#if defined(TFG_WITH_CUDA)
void bind_cuda_matmul(py::module_& m);
void bind_cuda_nms(py::module_& m);
void bind_cuda_attention(py::module_& m);
void bind_cuda_lstm(py::module_& m);
void bind_cuda_softmax(py::module_& m);
void bind_cuda_cross_entropy(py::module_& m);
void bind_cuda_pooling(py::module_& m);
void bind_cuda_conv2d(py::module_& m);
#endif
#if defined(TFG_CUDA_EMULATION)
void bind_simt_selftest(py::module_& m);
#endif
}  // namespace tfg::bindings

PYBIND11_MODULE(_C, m) {
  m.doc() = "tensorforge native kernels";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const tfg::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const tfg::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  tfg::bindings::bind_core(m);
  tfg::bindings::bind_matmul(m);
  tfg::bindings::bind_conv2d(m);
  tfg::bindings::bind_softmax(m);
  tfg::bindings::bind_pooling(m);
  tfg::bindings::bind_nms(m);
  tfg::bindings::bind_lstm(m);
  tfg::bindings::bind_attention(m);
  tfg::bindings::bind_dlpack(m);
#if defined(TFG_WITH_CUDA)
  tfg::bindings::bind_cuda_matmul(m);
  tfg::bindings::bind_cuda_nms(m);
  tfg::bindings::bind_cuda_attention(m);
  tfg::bindings::bind_cuda_lstm(m);
  tfg::bindings::bind_cuda_softmax(m);
  tfg::bindings::bind_cuda_cross_entropy(m);
  tfg::bindings::bind_cuda_pooling(m);
  tfg::bindings::bind_cuda_conv2d(m);
#endif
#if defined(TFG_CUDA_EMULATION)
  tfg::bindings::bind_simt_selftest(m);
#endif
}
