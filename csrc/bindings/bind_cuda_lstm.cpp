// Test bindings of the CUDA LSTM cell (ops/lstm/cuda/lstm.cu), compiled only
// with the CUDA backend or the SIMT emulation, with the CPU op's arguments,
// checks (lstm_detail) and results:
//   _C._cuda_lstm_cell(x, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None) -> (h, c)
//   _C._cuda_lstm_cell_backward(grad_h, grad_c, x, hx, cx, w_ih, w_hh, b_ih=None,
//     b_hh=None) -> (grad_x, grad_hx, grad_cx, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)
#include <pybind11/pybind11.h>

#include <cstring>
#include <stdexcept>

#include "bindings/cuda_test_memory.h"
#include "bindings/lstm_args.h"
#include "bindings/numpy_array.h"
#include "core/error.h"
#include "cuda/cuda_info.h"
#include "ops/lstm/cuda/lstm_cuda.h"
#include "ops/lstm/lstm.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

using namespace cuda_test;

template <class T>
T* up(const Array& a, DeviceBuffer& buf, cudaStream_t s) {
  const Array c = a.contiguous();
  return upload(c.ptr<T>(), static_cast<size_t>(c.numel()), buf, s);
}

// The operands in device memory.
template <class T>
struct Device {
  DeviceBuffer x, hx, cx, w_ih, w_hh, b_ih, b_hh;
  cuda::LstmCellDevice<T> p;
  Device(const Operands& a, const lstm_detail::CellDims& d, cudaStream_t s) {
    p.N = d.N; p.I = d.I; p.H = d.H;
    p.x = up<T>(a.x, x, s);
    p.hx = up<T>(a.hx, hx, s);
    p.cx = up<T>(a.cx, cx, s);
    p.w_ih = up<T>(a.w_ih, w_ih, s);
    p.w_hh = up<T>(a.w_hh, w_hh, s);
    if (a.b_ih.present) p.b_ih = up<T>(a.b_ih.a, b_ih, s);
    if (a.b_hh.present) p.b_hh = up<T>(a.b_hh.a, b_hh, s);
  }
};

template <class T>
size_t bytes(int64_t n) { return sizeof(T) * static_cast<size_t>(n); }

template <class T>
void forward(const Operands& a, const lstm_detail::CellDims& d, Array& h, Array& c) {
  h = Array::empty(d.state, dtype_of<T>());
  c = Array::empty(d.state, dtype_of<T>());
  Stream stream;
  Device<T> dev(a, d, stream.s);
  DeviceBuffer gates(bytes<T>(d.N * 4 * d.H)), dh(bytes<T>(d.N * d.H)), dc(bytes<T>(d.N * d.H));
  cuda::lstm_cell_forward<T>(dev.p, gates.get<T>(), dh.get<T>(), dc.get<T>(), stream.s);
  download(h.ptr<T>(), dh.get<T>(), static_cast<size_t>(d.N * d.H), stream.s);
  download(c.ptr<T>(), dc.get<T>(), static_cast<size_t>(d.N * d.H), stream.s);
  TFG_CUDA_CHECK(cudaStreamSynchronize(stream.s));
}

template <class T>
LstmGrads backward(const Array* grad_h, const Array* grad_c, const Operands& a, const lstm_detail::CellDims& d) {
  const int64_t N = d.N, I = d.I, H = d.H;
  Stream stream;
  Device<T> dev(a, d, stream.s);
  DeviceBuffer dgh, dgc;
  const T* gh = grad_h ? up<T>(*grad_h, dgh, stream.s) : nullptr;
  const T* gc = grad_c ? up<T>(*grad_c, dgc, stream.s) : nullptr;
  DeviceBuffer gates(bytes<T>(N * 4 * H)), c(bytes<T>(N * H)), dx(bytes<T>(N * I)), dhx(bytes<T>(N * H)),
      dcx(bytes<T>(N * H)), dwi(bytes<T>(4 * H * I)), dwh(bytes<T>(4 * H * H)), db(bytes<T>(4 * H));
  const bool any_bias = a.b_ih.present || a.b_hh.present;
  cuda::lstm_cell_backward<T>(dev.p, gh, gc, gates.get<T>(), c.get<T>(), dx.get<T>(), dhx.get<T>(), dcx.get<T>(),
                              dwi.get<T>(), dwh.get<T>(), any_bias ? db.get<T>() : nullptr, stream.s);
  LstmGrads g;
  g.grad_x = Array::empty(a.x.shape, dtype_of<T>());
  g.grad_hx = Array::empty(d.state, dtype_of<T>());
  g.grad_cx = Array::empty(d.state, dtype_of<T>());
  g.grad_w_ih = Array::empty({4 * H, I}, dtype_of<T>());
  g.grad_w_hh = Array::empty({4 * H, H}, dtype_of<T>());
  Array gb = Array::empty({4 * H}, dtype_of<T>());
  download(g.grad_x.ptr<T>(), dx.get<T>(), static_cast<size_t>(N * I), stream.s);
  download(g.grad_hx.ptr<T>(), dhx.get<T>(), static_cast<size_t>(N * H), stream.s);
  download(g.grad_cx.ptr<T>(), dcx.get<T>(), static_cast<size_t>(N * H), stream.s);
  download(g.grad_w_ih.ptr<T>(), dwi.get<T>(), static_cast<size_t>(4 * H * I), stream.s);
  download(g.grad_w_hh.ptr<T>(), dwh.get<T>(), static_cast<size_t>(4 * H * H), stream.s);
  if (any_bias) download(gb.ptr<T>(), db.get<T>(), static_cast<size_t>(4 * H), stream.s);
  TFG_CUDA_CHECK(cudaStreamSynchronize(stream.s));
  g.has_b_ih = a.b_ih.present;
  g.has_b_hh = a.b_hh.present;
  if (g.has_b_ih) g.grad_b_ih = gb;
  if (g.has_b_hh) {  // its own array, not a view of grad_b_ih's
    g.grad_b_hh = Array::empty({4 * H}, dtype_of<T>());
    if (H) std::memcpy(g.grad_b_hh.data, gb.data, bytes<T>(4 * H));
  }
  return g;
}

py::object maybe(bool has, Array&& a) {
  if (!has) return py::none();
  return to_numpy(std::move(a));
}

}  // namespace

void bind_cuda_lstm(py::module_& m) {
  m.def("_cuda_lstm_cell",
        [](const py::handle& x, const py::handle& hx, const py::handle& cx, const py::handle& w_ih,
           const py::handle& w_hh, const py::handle& b_ih, const py::handle& b_hh) {
          const char* op = "_cuda_lstm_cell";
          const Operands a(op, x, hx, cx, w_ih, w_hh, b_ih, b_hh);
          const lstm_detail::CellDims d =
              lstm_detail::check_cell_args(op, a.x, a.hx, a.cx, a.w_ih, a.w_hh, a.b_ih.get(), a.b_hh.get());
          require_cuda();
          Array h, c;
          {
            py::gil_scoped_release nogil;
            if (a.x.dtype == DType::float32) forward<float>(a, d, h, c);
            else forward<double>(a, d, h, c);
          }
          return py::make_tuple(to_numpy(std::move(h)), to_numpy(std::move(c)));
        },
        py::arg("x"), py::arg("hx"), py::arg("cx"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b_ih") = py::none(), py::arg("b_hh") = py::none(),
        R"(Test hook: lstm_cell by the CUDA GEMM and fused element-wise kernel: (h, c).)");
  m.def("_cuda_lstm_cell_backward",
        [](const py::handle& grad_h, const py::handle& grad_c, const py::handle& x, const py::handle& hx,
           const py::handle& cx, const py::handle& w_ih, const py::handle& w_hh, const py::handle& b_ih,
           const py::handle& b_hh) {
          const char* op = "_cuda_lstm_cell_backward";
          const Maybe gh(grad_h, op, "grad_h"), gc(grad_c, op, "grad_c");
          const Operands a(op, x, hx, cx, w_ih, w_hh, b_ih, b_hh);
          const lstm_detail::CellDims d = lstm_detail::check_cell_backward_args(
              op, gh.get(), gc.get(), a.x, a.hx, a.cx, a.w_ih, a.w_hh, a.b_ih.get(), a.b_hh.get());
          require_cuda();
          LstmGrads g;
          {
            py::gil_scoped_release nogil;
            if (a.x.dtype == DType::float32) g = backward<float>(gh.get(), gc.get(), a, d);
            else g = backward<double>(gh.get(), gc.get(), a, d);
          }
          return py::make_tuple(to_numpy(std::move(g.grad_x)), to_numpy(std::move(g.grad_hx)),
                                to_numpy(std::move(g.grad_cx)), to_numpy(std::move(g.grad_w_ih)),
                                to_numpy(std::move(g.grad_w_hh)), maybe(g.has_b_ih, std::move(g.grad_b_ih)),
                                maybe(g.has_b_hh, std::move(g.grad_b_hh)));
        },
        py::arg("grad_h"), py::arg("grad_c"), py::arg("x"), py::arg("hx"), py::arg("cx"), py::arg("w_ih"),
        py::arg("w_hh"), py::arg("b_ih") = py::none(), py::arg("b_hh") = py::none(),
        R"(Test hook: lstm_cell_backward by the CUDA kernels (same arguments, checks and results).)");
}

}  // namespace tfg::bindings
