// Bindings for nms, batched_nms and box_iou (torchvision.ops semantics).
#include <pybind11/pybind11.h>

#include "bindings/numpy_array.h"
#include "ops/nms/nms.h"

namespace py = pybind11;

namespace tfg::bindings {

void bind_nms(py::module_& m) {
  m.def("nms",
        [](const py::handle& boxes, const py::handle& scores, double iou_threshold) {
          const char* op = "nms";
          const Array bv = borrow_array(boxes, op, "boxes"), sv = borrow_array(scores, op, "scores");
          Array out;
          {
            py::gil_scoped_release nogil;
            out = nms(bv, sv, iou_threshold);
          }
          return to_numpy(std::move(out));
        },
        py::arg("boxes"), py::arg("scores"), py::arg("iou_threshold"),
        R"(Non-maximum suppression, as torchvision.ops.nms.

boxes (N, 4) rows x1, y1, x2, y2 and scores (N,), both float32 or both
float64; iou_threshold in [0, 1]. Returns the int64 indices of the kept boxes
by decreasing score; equal scores keep input order and NaN scores come first
(torch.sort(descending=True, stable=True)). A box is suppressed by a kept box
when their IoU is strictly greater than iou_threshold.)");
  m.def("batched_nms",
        [](const py::handle& boxes, const py::handle& scores, const py::handle& idxs, double iou_threshold) {
          const char* op = "batched_nms";
          const Array bv = borrow_array(boxes, op, "boxes"), sv = borrow_array(scores, op, "scores");
          const Array iv = borrow_array(idxs, op, "idxs");
          Array out;
          {
            py::gil_scoped_release nogil;
            out = batched_nms(bv, sv, iv, iou_threshold);
          }
          return to_numpy(std::move(out));
        },
        py::arg("boxes"), py::arg("scores"), py::arg("idxs"), py::arg("iou_threshold"),
        R"(NMS within each category, as torchvision.ops.batched_nms.

idxs (N,) int64 or int32 gives each box's category; boxes of different
categories never suppress each other. Returns the kept indices of all
categories by decreasing score (ties in input order).)");
  m.def("box_iou",
        [](const py::handle& boxes1, const py::handle& boxes2) {
          const char* op = "box_iou";
          const Array av = borrow_array(boxes1, op, "boxes1"), bv = borrow_array(boxes2, op, "boxes2");
          Array out;
          {
            py::gil_scoped_release nogil;
            out = box_iou(av, bv);
          }
          return to_numpy(std::move(out));
        },
        py::arg("boxes1"), py::arg("boxes2"),
        R"(IoU of every pair of boxes, as torchvision.ops.box_iou: (N, M) for
boxes1 (N, 4) and boxes2 (M, 4) of the same float dtype.)");
}

}  // namespace tfg::bindings
