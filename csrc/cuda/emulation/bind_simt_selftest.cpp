// Test-only bindings of the emulated build (never in a real CUDA build):
// _C._simt_selftest(name, input, grid, block, smem) runs a test kernel of
// selftest.cu; _C._simt_selftest_names() lists them; _C._simt_live_allocations()
// counts the emulated device allocations (for leak checks).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "core/error.h"
#include "cuda/emulation/runtime.h"
#include "cuda/emulation/selftest.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

dim3 to_dim3(const py::handle& obj, const char* arg) {
  if (py::isinstance<py::int_>(obj)) return dim3(obj.cast<unsigned>());
  const auto v = obj.cast<std::vector<unsigned>>();
  TFG_CHECK_VALUE(!v.empty() && v.size() <= 3, "_simt_selftest: ", arg, " must be an int or 1-3 ints");
  return dim3(v[0], v.size() > 1 ? v[1] : 1, v.size() > 2 ? v[2] : 1);
}

}  // namespace

void bind_simt_selftest(py::module_& m) {
  m.def("_simt_selftest", [](const std::string& name, const py::object& input, const py::object& grid,
                             const py::object& block, size_t smem) {
    std::vector<double> in;
    if (!input.is_none()) {
      const auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(input);
      TFG_CHECK_TYPE(a, "_simt_selftest: input must be convertible to a float64 array");
      in.assign(a.data(), a.data() + a.size());
    }
    const dim3 g = to_dim3(grid, "grid"), b = to_dim3(block, "block");
    std::vector<double> out;
    {
      py::gil_scoped_release nogil;
      out = simt::selftest::run(name, in, g, b, smem);
    }
    py::array_t<double> result(static_cast<py::ssize_t>(out.size()));
    std::copy(out.begin(), out.end(), result.mutable_data());
    return result;
  }, py::arg("name"), py::arg("input") = py::none(), py::arg("grid") = 1, py::arg("block") = 32,
  py::arg("smem") = 0, "Test hook: runs a test kernel of the SIMT emulation; returns its output.");
  m.def("_simt_selftest_names", &simt::selftest::names);
  m.def("_simt_live_allocations", &simt::live_allocations,
        "Test hook: live allocations of the emulated cudaMalloc.");
}

}  // namespace tfg::bindings
