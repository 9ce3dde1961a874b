// NumPy <-> Array conversion (see numpy_array.h).
#include "bindings/numpy_array.h"

#include <cstdint>

namespace tfg::bindings {

namespace {

bool dtype_from_numpy(const py::dtype& dt, DType* out) {
  if (dt.kind() == 'f' && dt.itemsize() == 4) *out = DType::float32;
  else if (dt.kind() == 'f' && dt.itemsize() == 8) *out = DType::float64;
  else if (dt.kind() == 'i' && dt.itemsize() == 4) *out = DType::int32;
  else if (dt.kind() == 'i' && dt.itemsize() == 8) *out = DType::int64;
  else if (dt.kind() == 'b') *out = DType::bool_;
  else return false;
  return true;
}

py::dtype numpy_dtype(DType t) {
  switch (t) {
    case DType::float32: return py::dtype::of<float>();
    case DType::float64: return py::dtype::of<double>();
    case DType::int32: return py::dtype::of<int32_t>();
    case DType::int64: return py::dtype::of<int64_t>();
    case DType::bool_: return py::dtype::of<bool>();
  }
  return py::dtype::of<float>();
}

}  // namespace

Array borrow_array(const py::handle& obj, const char* op, const char* arg) {
  if (!py::isinstance<py::array>(obj))
    throw TypeError(cat(op, ": argument '", arg, "' must be a NumPy array or a tensorforge Tensor, got ",
                        std::string(py::str(py::type::handle_of(obj).attr("__name__")))));
  auto arr = py::reinterpret_borrow<py::array>(obj);
  const py::dtype dt = arr.dtype();
  Array a;
  if (!dtype_from_numpy(dt, &a.dtype))
    throw TypeError(cat(op, ": argument '", arg, "' has dtype ", std::string(py::str(dt)),
                        ", which tensorforge does not support (float32, float64, int32, int64, bool)"));
  if (dt.byteorder() == '>')
    throw TypeError(cat(op, ": argument '", arg, "' has non-native byte order (", std::string(py::str(dt)),
                        "); convert it with .astype(", dtype_name(a.dtype), ")"));
  const int64_t item = dt.itemsize();
  a.data = const_cast<void*>(arr.data());
  a.shape.resize(arr.ndim());
  a.strides.resize(arr.ndim());
  bool aligned = reinterpret_cast<uintptr_t>(a.data) % item == 0;
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) {
    a.shape[i] = arr.shape(i);
    aligned = aligned && arr.strides(i) % item == 0;
    a.strides[i] = arr.strides(i) / item;
  }
  if (!aligned)
    throw ValueError(cat(op, ": argument '", arg, "' (", dtype_name(a.dtype), ", shape ",
                         shape_str(a.shape), ") is not aligned to its ", item,
                         "-byte elements; pass a copy (np.ascontiguousarray)"));
  return a;
}

py::array to_numpy(Array&& a) {
  const int64_t item = dtype_size(a.dtype);
  std::vector<py::ssize_t> shape(a.shape.begin(), a.shape.end()), strides;
  for (int64_t s : a.strides) strides.push_back(s * item);
  auto* keep = new std::shared_ptr<void>(std::move(a.owner));
  py::capsule owner(keep, [](void* p) { delete static_cast<std::shared_ptr<void>*>(p); });
  return py::array(numpy_dtype(a.dtype), shape, strides, a.data, owner);
}

}  // namespace tfg::bindings
