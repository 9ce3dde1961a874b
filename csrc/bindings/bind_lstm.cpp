// Bindings for lstm_cell, lstm and their backwards: argument parsing (None for
// optional biases and gradients) and docstrings.
#include <pybind11/pybind11.h>

#include <optional>

#include "bindings/lstm_args.h"
#include "bindings/numpy_array.h"
#include "ops/lstm/lstm.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

py::tuple grads_tuple(LstmGrads&& g) {
  auto maybe = [](bool has, Array&& a) -> py::object {
    if (!has) return py::none();
    return to_numpy(std::move(a));
  };
  return py::make_tuple(to_numpy(std::move(g.grad_x)), to_numpy(std::move(g.grad_hx)),
                        to_numpy(std::move(g.grad_cx)), to_numpy(std::move(g.grad_w_ih)),
                        to_numpy(std::move(g.grad_w_hh)), maybe(g.has_b_ih, std::move(g.grad_b_ih)),
                        maybe(g.has_b_hh, std::move(g.grad_b_hh)));
}

}  // namespace

void bind_lstm(py::module_& m) {
  m.def("lstm_cell",
        [](const py::handle& x, const py::handle& hx, const py::handle& cx, const py::handle& w_ih,
           const py::handle& w_hh, const py::handle& b_ih, const py::handle& b_hh) {
          const char* op = "lstm_cell";
          const Operands a(op, x, hx, cx, w_ih, w_hh, b_ih, b_hh);
          LstmCellResult r;
          {
            py::gil_scoped_release nogil;
            r = lstm_cell(a.x, a.hx, a.cx, a.w_ih, a.w_hh, a.b_ih.get(), a.b_hh.get());
          }
          return py::make_tuple(to_numpy(std::move(r.h)), to_numpy(std::move(r.c)));
        },
        py::arg("x"), py::arg("hx"), py::arg("cx"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b_ih") = py::none(), py::arg("b_hh") = py::none(),
        R"(One LSTM step, as torch.nn.LSTMCell: (h, c).

Gate order i, f, g, o. x (N, I) or (I,); hx, cx (N, H) or, with a 1-D x, (H,);
w_ih (4H, I), w_hh (4H, H), biases (4H,) or None. The gate pre-activations are
two GEMMs (the biases summed and fused into the first); the nonlinearities and
the cell update are one fused pass.)");
  m.def("lstm_cell_backward",
        [](const py::handle& grad_h, const py::handle& grad_c, const py::handle& x, const py::handle& hx,
           const py::handle& cx, const py::handle& w_ih, const py::handle& w_hh, const py::handle& b_ih,
           const py::handle& b_hh) {
          const char* op = "lstm_cell_backward";
          const Maybe gh(grad_h, op, "grad_h"), gc(grad_c, op, "grad_c");
          const Operands a(op, x, hx, cx, w_ih, w_hh, b_ih, b_hh);
          LstmGrads g;
          {
            py::gil_scoped_release nogil;
            g = lstm_cell_backward(gh.get(), gc.get(), a.x, a.hx, a.cx, a.w_ih, a.w_hh, a.b_ih.get(), a.b_hh.get());
          }
          return grads_tuple(std::move(g));
        },
        py::arg("grad_h"), py::arg("grad_c"), py::arg("x"), py::arg("hx"), py::arg("cx"), py::arg("w_ih"),
        py::arg("w_hh"), py::arg("b_ih") = py::none(), py::arg("b_hh") = py::none(),
        R"(Gradient of lstm_cell: (grad_x, grad_hx, grad_cx, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).

grad_h / grad_c may be None (zero); a bias gradient is None when that bias is.
The step's gates are recomputed from the inputs.)");
  m.def("lstm",
        [](const py::handle& x, const py::handle& hx, const py::handle& cx, const py::handle& w_ih,
           const py::handle& w_hh, const py::handle& b_ih, const py::handle& b_hh) {
          const char* op = "lstm";
          const Operands a(op, x, hx, cx, w_ih, w_hh, b_ih, b_hh);
          LstmResult r;
          {
            py::gil_scoped_release nogil;
            r = lstm(a.x, a.hx, a.cx, a.w_ih, a.w_hh, a.b_ih.get(), a.b_hh.get());
          }
          return py::make_tuple(to_numpy(std::move(r.y)), to_numpy(std::move(r.h)), to_numpy(std::move(r.c)));
        },
        py::arg("x"), py::arg("hx"), py::arg("cx"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b_ih") = py::none(), py::arg("b_hh") = py::none(),
        R"(One LSTM layer over a sequence, as torch.nn.LSTM (one layer, one direction): (y, h, c).

x (T, N, I); hx, cx (N, H); y (T, N, H), h and c the final state. The input
projection of all T steps is one GEMM; each step then adds h_prev w_hh^T and
runs the fused gate pass.)");
  m.def("lstm_backward",
        [](const py::handle& grad_y, const py::handle& grad_h, const py::handle& grad_c, const py::handle& x,
           const py::handle& hx, const py::handle& cx, const py::handle& w_ih, const py::handle& w_hh,
           const py::handle& b_ih, const py::handle& b_hh) {
          const char* op = "lstm_backward";
          const Maybe gy(grad_y, op, "grad_y"), gh(grad_h, op, "grad_h"), gc(grad_c, op, "grad_c");
          const Operands a(op, x, hx, cx, w_ih, w_hh, b_ih, b_hh);
          LstmGrads g;
          {
            py::gil_scoped_release nogil;
            g = lstm_backward(gy.get(), gh.get(), gc.get(), a.x, a.hx, a.cx, a.w_ih, a.w_hh, a.b_ih.get(),
                              a.b_hh.get());
          }
          return grads_tuple(std::move(g));
        },
        py::arg("grad_y"), py::arg("grad_h"), py::arg("grad_c"), py::arg("x"), py::arg("hx"), py::arg("cx"),
        py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = py::none(), py::arg("b_hh") = py::none(),
        R"(Gradient of lstm through time: (grad_x, grad_hx, grad_cx, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).

grad_y (T, N, H); grad_h, grad_c (N, H) for the final state; each may be None
(zero). The forward is recomputed keeping the gates and cell states of every
step; the weight gradients are one GEMM each over all T * N rows.)");
}

}  // namespace tfg::bindings
