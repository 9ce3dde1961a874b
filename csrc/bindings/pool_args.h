// Argument parsing of the pooling bindings (bind_pooling.cpp, and the CUDA
// test binding bind_cuda_pooling.cpp): int-or-pair window options, None,
// output sizes, with errors naming the op and argument.
#pragma once
#include <pybind11/pybind11.h>

#include <optional>
#include <string>

#include "core/error.h"
#include "ops/pooling/pooling.h"

namespace tfg::bindings::pool_args {

namespace py = pybind11;

inline std::string type_name(const py::handle& obj) {
  return py::str(py::type::handle_of(obj).attr("__name__"));
}

// An int (anything with __index__ but bool), or nullopt when `obj` is not one.
inline std::optional<int64_t> as_int(const py::handle& obj, const char* op, const char* name) {
  if (py::isinstance<py::bool_>(obj) || !PyIndex_Check(obj.ptr())) return std::nullopt;
  const auto index = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
  if (!index) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
  if (overflow)
    throw ValueError(cat(op, ": '", name, "' holds ", std::string(py::str(index)),
                         ", which does not fit in 64 bits"));
  return static_cast<int64_t>(v);
}

// An int, or a tuple/list of ints; None gives an empty list when `none_ok`.
inline IntList int_list(const py::handle& obj, const char* op, const char* name, bool none_ok = false) {
  if (none_ok && obj.is_none()) return {};
  if (auto v = as_int(obj, op, name)) return {*v};
  if (py::isinstance<py::tuple>(obj) || py::isinstance<py::list>(obj)) {
    IntList out;
    for (const py::handle item : obj) {
      auto v = as_int(item, op, name);
      if (!v)
        throw TypeError(cat(op, ": '", name, "' must be an int or a tuple of ints, got an element of type ",
                            type_name(item)));
      out.push_back(*v);
    }
    return out;
  }
  throw TypeError(cat(op, ": '", name, "' must be an int or a tuple of ints", none_ok ? " (or None)" : "",
                      ", got ", type_name(obj)));
}

inline std::optional<int64_t> optional_int(const py::handle& obj, const char* op, const char* name) {
  if (obj.is_none()) return std::nullopt;
  if (auto v = as_int(obj, op, name)) return v;
  throw TypeError(cat(op, ": '", name, "' must be an int or None, got ", type_name(obj)));
}

inline OutputSize output_size_arg(const py::handle& obj, const char* op) {
  if (py::isinstance<py::tuple>(obj) || py::isinstance<py::list>(obj)) {
    OutputSize out;
    for (const py::handle item : obj) out.push_back(optional_int(item, op, "output_size"));
    return out;
  }
  return {optional_int(obj, op, "output_size")};
}

}  // namespace tfg::bindings::pool_args
