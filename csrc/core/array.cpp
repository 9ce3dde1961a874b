// Array helpers: sizes, contiguity, allocation.
#include "core/array.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace tfg {

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  if (s.size() == 1) out += ",";
  return out + ")";
}

int64_t Array::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool Array::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = ndim() - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

Array Array::empty(const Shape& shape, DType dtype) {
  // Refuse sizes whose byte count does not fit (it would wrap and under-allocate).
  const int64_t limit = INT64_MAX / 2 / dtype_size(dtype);
  int64_t count = 1;
  for (int64_t d : shape) {
    TFG_CHECK_VALUE(d >= 0, "negative dimension in shape ", shape_str(shape));
    TFG_CHECK_VALUE(d == 0 || count <= limit / d, "a result of shape ", shape_str(shape), " and dtype ",
                    dtype_name(dtype), " is too large to allocate");
    count *= d;
  }
  Array a;
  a.dtype = dtype;
  a.shape = shape;
  a.strides.assign(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    a.strides[i] = a.strides[i + 1] * shape[i + 1];
  // 64-byte alignment so kernels may use aligned vector stores at row starts.
  size_t bytes = static_cast<size_t>(a.numel() * dtype_size(dtype));
  size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p) throw std::bad_alloc();
  a.data = p;
  a.owner = std::shared_ptr<void>(p, std::free);
  return a;
}

Array Array::zeros(const Shape& shape, DType dtype) {
  Array a = empty(shape, dtype);
  std::memset(a.data, 0, static_cast<size_t>(a.numel() * dtype_size(dtype)));
  return a;
}

}  // namespace tfg
