// Test bindings of the CUDA NMS kernels (ops/nms/cuda/nms.cu), compiled only
// with the CUDA backend or the SIMT emulation:
//   _C._cuda_nms(boxes, scores, iou_threshold): the CPU op's checks and score
//     sort (nms_detail), the boxes uploaded in score order, the suppression mask
//     computed on the device, copied back, and the greedy scan over it here;
//   _C._cuda_box_iou(boxes1, boxes2).
#include <pybind11/pybind11.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "bindings/cuda_test_memory.h"
#include "bindings/numpy_array.h"
#include "core/error.h"
#include "cuda/cuda_info.h"
#include "ops/nms/cuda/nms_cuda.h"
#include "ops/nms/nms.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

using namespace cuda_test;

// torchvision's scan: walk the positions in score order; a position not yet
// removed is kept and ORs its mask row (from its own tile on) into `removed`.
template <class T>
Array run_nms(const Array& boxes, const Array& scores, double iou_threshold) {
  const int64_t n = boxes.shape[0];
  const std::vector<int64_t> order = nms_detail::sort_by_score(scores.ptr<T>(), n);
  std::vector<T> sorted(static_cast<size_t>(4 * n));
  for (int64_t p = 0; p < n; ++p) std::memcpy(&sorted[4 * p], boxes.ptr<T>() + 4 * order[p], 4 * sizeof(T));
  const int64_t words = (n + cuda::kNmsTile - 1) / cuda::kNmsTile;
  Stream stream;
  DeviceBuffer dboxes, dmask(static_cast<size_t>(n * words) * sizeof(uint64_t));
  const T* db = upload(sorted.data(), sorted.size(), dboxes, stream.s);
  cuda::nms_mask<T>(db, n, nms_detail::kernel_threshold<T>(iou_threshold), dmask.get<uint64_t>(), stream.s);
  std::vector<uint64_t> mask(static_cast<size_t>(n * words));
  download(mask.data(), dmask.get<uint64_t>(), mask.size(), stream.s);
  TFG_CUDA_CHECK(cudaStreamSynchronize(stream.s));
  std::vector<uint64_t> removed(static_cast<size_t>(words), 0);
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    if ((removed[i / 64] >> (i % 64)) & 1) continue;
    keep.push_back(order[i]);
    const uint64_t* row = &mask[static_cast<size_t>(i * words)];
    for (int64_t w = i / 64; w < words; ++w) removed[w] |= row[w];
  }
  Array out = Array::empty({static_cast<int64_t>(keep.size())}, DType::int64);
  if (!keep.empty()) std::memcpy(out.data, keep.data(), keep.size() * sizeof(int64_t));
  return out;
}

template <class T>
Array run_box_iou(const Array& b1, const Array& b2) {
  const int64_t n = b1.shape[0], m = b2.shape[0];
  Array out = Array::empty({n, m}, dtype_of<T>());
  if (n == 0 || m == 0) return out;
  Stream stream;
  DeviceBuffer d1, d2, dout(static_cast<size_t>(n * m) * sizeof(T));
  const T* p1 = upload(b1.ptr<T>(), static_cast<size_t>(4 * n), d1, stream.s);
  const T* p2 = upload(b2.ptr<T>(), static_cast<size_t>(4 * m), d2, stream.s);
  cuda::box_iou<T>(p1, n, p2, m, dout.get<T>(), stream.s);
  download(out.ptr<T>(), dout.get<T>(), static_cast<size_t>(n * m), stream.s);
  TFG_CUDA_CHECK(cudaStreamSynchronize(stream.s));
  return out;
}

}  // namespace

void bind_cuda_nms(py::module_& m) {
  m.def("_cuda_nms", [](const py::handle& boxes, const py::handle& scores, double iou_threshold) {
    const char* op = "_cuda_nms";
    const Array bv = borrow_array(boxes, op, "boxes"), sv = borrow_array(scores, op, "scores");
    nms_detail::check_nms_args(op, bv, sv, iou_threshold);
    require_cuda();
    Array out;
    {
      py::gil_scoped_release nogil;
      if (bv.shape[0] == 0) {
        out = Array::empty({0}, DType::int64);
      } else {
        const Array b = bv.contiguous(), s = sv.contiguous();
        out = b.dtype == DType::float32 ? run_nms<float>(b, s, iou_threshold) : run_nms<double>(b, s, iou_threshold);
      }
    }
    return to_numpy(std::move(out));
  }, py::arg("boxes"), py::arg("scores"), py::arg("iou_threshold"),
  R"(Test hook: nms(boxes, scores, iou_threshold) with the suppression mask
computed by the CUDA kernel; the same semantics and checks as nms.)");
  m.def("_cuda_box_iou", [](const py::handle& boxes1, const py::handle& boxes2) {
    const char* op = "_cuda_box_iou";
    const Array av = borrow_array(boxes1, op, "boxes1"), bv = borrow_array(boxes2, op, "boxes2");
    nms_detail::check_box_iou_args(op, av, bv);
    require_cuda();
    Array out;
    {
      py::gil_scoped_release nogil;
      const Array a = av.contiguous(), b = bv.contiguous();
      out = a.dtype == DType::float32 ? run_box_iou<float>(a, b) : run_box_iou<double>(a, b);
    }
    return to_numpy(std::move(out));
  }, py::arg("boxes1"), py::arg("boxes2"),
  R"(Test hook: box_iou(boxes1, boxes2) by the CUDA kernel.)");
}

}  // namespace tfg::bindings
