// Bindings for build information, threads and the ISA level.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/error.h"
#include "core/parallel.h"
#include "cuda/cuda_info.h"
#include "dispatch/isa.h"
#include "ops/matmul/gemm.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

Isa parse_isa(const std::string& name) {
  Isa isa;
  TFG_CHECK_VALUE(isa_from_name(name, &isa), "unknown ISA level '", name,
                  "'; expected one of scalar, avx2, avx512");
  return isa;
}

template <class T>
py::dict blocking(Isa isa) {
  const GemmKernels<T>& k = gemm_kernels_for<T>(isa);
  py::dict d;
  d["mr"] = k.mr; d["nr"] = k.nr; d["mc"] = k.mc; d["kc"] = k.kc; d["nc"] = k.nc;
  return d;
}

}  // namespace

void bind_core(py::module_& m) {
  m.def("get_num_threads", &num_threads, "Number of threads the kernels use.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"),
        "Sets the number of threads the kernels use (n >= 1).");
  m.def("openmp_enabled", &openmp_enabled, "Whether the module was built with OpenMP.");

  m.def("isa_built", [] {
    std::vector<std::string> names;
    for (Isa isa : isa_built()) names.push_back(isa_name(isa));
    return names;
  }, "ISA levels compiled into this module, lowest first.");
  m.def("isa_supported", [](const std::string& name) { return isa_supported(parse_isa(name)); },
        py::arg("name"), "Whether this CPU can run the ISA level `name`.");
  m.def("active_isa", [] { return std::string(isa_name(active_isa())); },
        "The ISA level the CPU kernels run at.");
  m.def("set_isa", [](const std::string& name) { set_active_isa(parse_isa(name)); }, py::arg("name"),
        "Switches the CPU kernels to ISA level `name` (for tests; it must be built and supported).");
  m.def("isa_env_note", [] { return isa_env_note(); },
        "Why TENSORFORGE_ISA could not be honoured, or ''.");
  m.def("gemm_blocking", [](const std::string& isa, const std::string& dtype) {
    const Isa level = parse_isa(isa);
    if (dtype == "float32") return blocking<float>(level);
    TFG_CHECK_VALUE(dtype == "float64", "gemm_blocking: dtype must be float32 or float64, got ", dtype);
    return blocking<double>(level);
  }, py::arg("isa"), py::arg("dtype"),
  "GEMM blocking sizes (mr, nr, mc, kc, nc) of an ISA level and dtype.");

  m.def("cuda_status", [] {
    const cuda::Status& s = cuda::status();
    py::dict d;
    d["built"] = s.built; d["available"] = s.available;
    d["device_count"] = s.device_count; d["reason"] = s.reason;
    d["emulated"] = s.emulated;
    return d;
  }, "CUDA state: built, available, device_count, reason, emulated.");
}

}  // namespace tfg::bindings
