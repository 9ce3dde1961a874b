// Array helpers: sizes, contiguity, allocation.
#include "core/array.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

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

Shape c_strides(const Shape& shape) {
  Shape strides(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
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
  a.strides = c_strides(shape);
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

namespace {

// Copies the elements of `src` in C order to `dst`, element type E.
template <class E>
void copy_to_contiguous(const Array& src, E* dst) {
  const int64_t nd = src.ndim(), n = src.numel();
  if (n == 0) return;
  if (nd == 0) {
    *dst = *static_cast<const E*>(src.data);
    return;
  }
  std::vector<int64_t> index(nd, 0);
  const E* base = static_cast<const E*>(src.data);
  const int64_t inner = src.shape[nd - 1], inner_stride = src.strides[nd - 1];
  for (int64_t done = 0; done < n; done += inner) {
    int64_t offset = 0;
    for (int64_t d = 0; d < nd - 1; ++d) offset += index[d] * src.strides[d];
    const E* row = base + offset;
    for (int64_t t = 0; t < inner; ++t) *dst++ = row[t * inner_stride];
    for (int64_t d = nd - 2; d >= 0; --d) {
      if (++index[d] < src.shape[d]) break;
      index[d] = 0;
    }
  }
}

}  // namespace

void check_float_cpu(const char* op, const char* arg, const Array& a) {
  TFG_CHECK_VALUE(a.device.kind == Device::cpu, op, ": argument '", arg, "' is on ", a.device.str(),
                  "; only cpu is supported by this build");
  TFG_CHECK_TYPE(a.dtype == DType::float32 || a.dtype == DType::float64, op, ": argument '", arg,
                 "' has dtype ", dtype_name(a.dtype), "; expected float32 or float64");
}

Array Array::contiguous() const {
  if (is_contiguous()) {
    Array view = *this;
    view.strides = c_strides(shape);  // size-1 dims may have had any stride
    return view;
  }
  Array out = empty(shape, dtype);
  switch (dtype_size(dtype)) {
    case 1: copy_to_contiguous(*this, static_cast<uint8_t*>(out.data)); break;
    case 4: copy_to_contiguous(*this, static_cast<uint32_t*>(out.data)); break;
    default: copy_to_contiguous(*this, static_cast<uint64_t*>(out.data)); break;
  }
  return out;
}

Array Array::reshaped(const Shape& new_shape) const {
  Array view = contiguous();
  int64_t count = 1;
  for (int64_t d : new_shape) count *= d;
  TFG_CHECK_VALUE(count == view.numel(), "cannot reshape ", shape_str(shape), " to ", shape_str(new_shape));
  view.shape = new_shape;
  view.strides = c_strides(new_shape);
  return view;
}

}  // namespace tfg
