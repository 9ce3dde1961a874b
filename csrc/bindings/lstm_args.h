// Argument parsing shared by the CPU and CUDA LSTM bindings (bind_lstm.cpp,
// bind_cuda_lstm.cpp).
#pragma once
#include <pybind11/pybind11.h>

#include "bindings/numpy_array.h"

namespace tfg::bindings {

// An optional array argument: None, or a borrowed view.
struct Maybe {
  Array a;
  bool present = false;
  Maybe(const pybind11::handle& obj, const char* op, const char* arg) : present(!obj.is_none()) {
    if (present) a = borrow_array(obj, op, arg);
  }
  const Array* get() const { return present ? &a : nullptr; }
};

// The forward's operands, borrowed: x, hx, cx, w_ih, w_hh and the optional biases.
struct Operands {
  Array x, hx, cx, w_ih, w_hh;
  Maybe b_ih, b_hh;
  Operands(const char* op, const pybind11::handle& x_, const pybind11::handle& hx_, const pybind11::handle& cx_,
           const pybind11::handle& w_ih_, const pybind11::handle& w_hh_, const pybind11::handle& b_ih_,
           const pybind11::handle& b_hh_)
      : x(borrow_array(x_, op, "x")), hx(borrow_array(hx_, op, "hx")), cx(borrow_array(cx_, op, "cx")),
        w_ih(borrow_array(w_ih_, op, "w_ih")), w_hh(borrow_array(w_hh_, op, "w_hh")),
        b_ih(b_ih_, op, "b_ih"), b_hh(b_hh_, op, "b_hh") {}
};

}  // namespace tfg::bindings
