// NumPy <-> Array conversion for the bindings, without copying: inputs are
// borrowed views (the caller keeps the py::array alive across the kernel
// call); outputs hand their owning storage to NumPy through a capsule.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "core/array.h"

namespace tfg::bindings {

namespace py = pybind11;

// Views `obj` (a NumPy array) as an Array; raises TypeError naming `op` and `arg`
// for anything else, for dtypes tensorforge has no kernels for, and for
// non-native byte order; ValueError for misaligned data.
Array borrow_array(const py::handle& obj, const char* op, const char* arg);

// Wraps an owning Array as a NumPy array sharing its memory.
py::array to_numpy(Array&& a);

}  // namespace tfg::bindings
