// Array: a strided n-d view (shape and strides in elements) of typed memory on
// a device, optionally owning that memory. Ops take Arrays in and return owning
// Arrays; the bindings convert to and from NumPy without copying.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace tfg {

enum class DType : int8_t { float32, float64, int32, int64, bool_ };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::int32: return "int32";
    case DType::int64: return "int64";
    case DType::bool_: return "bool";
  }
  return "?";
}

inline int64_t dtype_size(DType t) {
  switch (t) {
    case DType::float32: case DType::int32: return 4;
    case DType::float64: case DType::int64: return 8;
    case DType::bool_: return 1;
  }
  return 0;
}

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::float32; }
template <> constexpr DType dtype_of<double>() { return DType::float64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::int64; }

struct Device {
  enum Kind : int8_t { cpu, cuda } kind = cpu;
  int index = 0;
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  std::string str() const { return kind == cpu ? "cpu" : "cuda:" + std::to_string(index); }
};

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "(2, 3)"
Shape c_strides(const Shape& shape);     // strides (in elements) of a C-contiguous array

struct Array {
  void* data = nullptr;
  DType dtype = DType::float32;
  Device device;
  Shape shape;
  Shape strides;                  // in elements; may be 0 (broadcast) or negative
  std::shared_ptr<void> owner;    // keeps owned memory alive; null for borrowed views

  int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
  int64_t numel() const;
  bool is_contiguous() const;     // C order
  template <class T> T* ptr() const { return static_cast<T*>(data); }

  // A new, owning, C-contiguous CPU array (uninitialised / zero-filled).
  static Array empty(const Shape& shape, DType dtype);
  static Array zeros(const Shape& shape, DType dtype);
  // This array if it is C-contiguous (a view sharing its memory), else a C-contiguous copy.
  Array contiguous() const;
  // The same memory seen with another shape; only for C-contiguous arrays.
  Array reshaped(const Shape& shape) const;
};

// Raises ValueError unless `a` is on the CPU and TypeError unless it is float32
// or float64, naming the op and the argument.
void check_float_cpu(const char* op, const char* arg, const Array& a);

// Dispatches on a floating dtype: body is instantiated with scalar_t = float / double.
#define TFG_DISPATCH_FLOATING(dtype, op_name, ...)                                     \
  [&] {                                                                                \
    switch (dtype) {                                                                   \
      case ::tfg::DType::float32: { using scalar_t = float; return __VA_ARGS__(); }    \
      case ::tfg::DType::float64: { using scalar_t = double; return __VA_ARGS__(); }   \
      default:                                                                         \
        throw ::tfg::TypeError(::tfg::cat(op_name, ": unsupported dtype ",             \
                                          ::tfg::dtype_name(dtype)));                  \
    }                                                                                  \
  }()

}  // namespace tfg
