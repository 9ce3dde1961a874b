// Conv2dOptions from Python arguments (bind_conv2d.cpp): stride and dilation
// as an int or a pair, padding as an int, a pair, "same" or "valid". Shared by
// the conv2d bindings and the CUDA test bindings (bind_cuda_conv2d.cpp).
#pragma once
#include <pybind11/pybind11.h>

#include "ops/conv2d/conv2d.h"

namespace tfg::bindings {

Conv2dOptions parse_conv2d_options(const char* op, const pybind11::handle& stride,
                                   const pybind11::handle& padding, const pybind11::handle& dilation,
                                   int64_t groups);

}  // namespace tfg::bindings
