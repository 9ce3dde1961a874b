// Test binding of the CUDA GEMM (ops/matmul/cuda/matmul.cu), compiled only
// with the CUDA backend or the SIMT emulation: _C._cuda_matmul(a, b, bias, c)
// copies NumPy operands to device memory, runs tfg::cuda::gemm on a stream of
// its own and copies C back. Each operand travels as the whole memory span of
// its elements, so its strides (transposed, broadcast, negative) reach the
// kernel unchanged.
#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "bindings/numpy_array.h"
#include "core/error.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_info.h"
#include "bindings/cuda_test_memory.h"
#include "ops/matmul/cuda/matmul_cuda.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

using cuda_test::DeviceBuffer;
using cuda_test::Stream;

// The elements of `a` lie at offsets [lo, hi) from a.data.
struct Span {
  int64_t lo = 0, hi = 0;
  int64_t size() const { return hi - lo; }
};

Span span_of(const Array& a) {
  if (a.numel() == 0) return {};
  Span s{0, 1};
  for (int64_t d = 0; d < a.ndim(); ++d) {
    const int64_t extent = (a.shape[d] - 1) * a.strides[d];
    (extent < 0 ? s.lo : s.hi) += extent;
  }
  return s;
}

// Copies the span of `a` into `buf`; returns the device address of element 0.
template <class T>
T* upload(const Array& a, DeviceBuffer& buf, cudaStream_t stream) {
  const Span s = span_of(a);
  if (s.size() == 0) return nullptr;
  TFG_CUDA_CHECK(cudaMalloc(&buf.p, s.size() * sizeof(T)));
  TFG_CUDA_CHECK(cudaMemcpyAsync(buf.p, a.ptr<T>() + s.lo, s.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
  return static_cast<T*>(buf.p) - s.lo;
}

template <class T>
Array run(const Array& a, const Array& b, const Array* bias, const Array* c) {
  GemmProblem<T> p;
  p.m = a.shape[0]; p.k = a.shape[1]; p.n = b.shape[1];
  Stream stream;
  DeviceBuffer da, db, dbias, dc;
  p.a = upload<T>(a, da, stream.s); p.rs_a = a.strides[0]; p.cs_a = a.strides[1];
  p.b = upload<T>(b, db, stream.s); p.rs_b = b.strides[0]; p.cs_b = b.strides[1];
  if (bias) p.bias = upload<T>(bias->contiguous(), dbias, stream.s);
  Array c_host;  // the layout of C on the device, as host memory
  if (c) {
    c_host = *c;
    p.accumulate = true;
  } else {
    c_host = Array::zeros({p.m, p.n}, dtype_of<T>());
  }
  p.c = upload<T>(c_host, dc, stream.s); p.rs_c = c_host.strides[0]; p.cs_c = c_host.strides[1];
  cuda::gemm(p, stream.s);

  const Span s = span_of(c_host);
  std::vector<T> back(static_cast<size_t>(s.size()));
  if (s.size())
    TFG_CUDA_CHECK(cudaMemcpyAsync(back.data(), p.c + s.lo, s.size() * sizeof(T), cudaMemcpyDeviceToHost, stream.s));
  TFG_CUDA_CHECK(cudaStreamSynchronize(stream.s));
  Array out = Array::empty({p.m, p.n}, dtype_of<T>());
  T* o = out.ptr<T>();
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j) o[i * p.n + j] = back[i * p.rs_c + j * p.cs_c - s.lo];
  return out;
}

}  // namespace

void bind_cuda_matmul(py::module_& m) {
  m.def("_cuda_matmul", [](const py::handle& a, const py::handle& b, const py::handle& bias,
                           const py::handle& c) {
    const Array av = borrow_array(a, "_cuda_matmul", "a"), bv = borrow_array(b, "_cuda_matmul", "b");
    check_float_cpu("_cuda_matmul", "a", av);
    TFG_CHECK_TYPE(bv.dtype == av.dtype, "_cuda_matmul: b is ", dtype_name(bv.dtype), ", a is ",
                   dtype_name(av.dtype));
    TFG_CHECK_VALUE(av.ndim() == 2 && bv.ndim() == 2 && av.shape[1] == bv.shape[0],
                    "_cuda_matmul: a ", shape_str(av.shape), " and b ", shape_str(bv.shape),
                    " are not (m, k) and (k, n)");
    Array biasv, cv;
    if (!bias.is_none()) {
      biasv = borrow_array(bias, "_cuda_matmul", "bias");
      TFG_CHECK_TYPE(biasv.dtype == av.dtype, "_cuda_matmul: bias is ", dtype_name(biasv.dtype));
      TFG_CHECK_VALUE(biasv.ndim() == 1 && biasv.shape[0] == bv.shape[1], "_cuda_matmul: bias ",
                      shape_str(biasv.shape), " is not (", bv.shape[1], ",)");
    }
    if (!c.is_none()) {
      cv = borrow_array(c, "_cuda_matmul", "c");
      TFG_CHECK_TYPE(cv.dtype == av.dtype, "_cuda_matmul: c is ", dtype_name(cv.dtype));
      TFG_CHECK_VALUE(cv.ndim() == 2 && cv.shape[0] == av.shape[0] && cv.shape[1] == bv.shape[1],
                      "_cuda_matmul: c ", shape_str(cv.shape), " is not (", av.shape[0], ", ", bv.shape[1], ")");
    }
    cuda_test::require_cuda();
    Array out;
    {
      py::gil_scoped_release nogil;
      const Array* bp = bias.is_none() ? nullptr : &biasv;
      const Array* cp = c.is_none() ? nullptr : &cv;
      out = av.dtype == DType::float32 ? run<float>(av, bv, bp, cp) : run<double>(av, bv, bp, cp);
    }
    return to_numpy(std::move(out));
  }, py::arg("a"), py::arg("b"), py::arg("bias") = py::none(), py::arg("c") = py::none(),
  R"(Test hook: (c if given else 0) + a @ b (+ bias) by the CUDA GEMM kernel.

a (m, k), b (k, n), bias (n,), c (m, n); NumPy float32 or float64, any strides.
Returns a new C-contiguous array. RuntimeError when CUDA is not available.)");
}

}  // namespace tfg::bindings
