"""The CUDA NMS kernels (csrc/ops/nms/cuda/nms.cu) on the SIMT emulation:
_C._cuda_nms and _C._cuda_box_iou against the float64 references of
test_nms.py (integer-coordinate boxes so float32 is exact), on sizes around the
64-box tile, score ties, NaN scores, degenerate boxes, IoU exactly at the
threshold and the float32 threshold rule. Skipped unless the emulated build
is imported (tools/test_emulated.sh)."""
import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import _C
import reference as ref
from test_nms import grid_boxes, tie_scores, exact_pairs


def check(boxes, scores, thr, dtype):
    b = np.ascontiguousarray(boxes, dtype=dtype)
    s = np.ascontiguousarray(scores, dtype=dtype)
    got = _C._cuda_nms(b, s, thr)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, tfg.ops.nms(b, s, thr))  # the CPU op, same float rounding
    np.testing.assert_array_equal(got, ref.nms_ref(b, s, thr))  # exact here: dyadic thresholds
    return got


@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 130, 300])
@pytest.mark.parametrize("thr", [0.0, 0.5, 1.0])
def test_nms_matches_reference(dtype, rng, n, thr):
    boxes = grid_boxes(rng, n, clusters=max(1, n // 12))
    check(boxes, tie_scores(rng, n), thr, dtype)
    check(boxes, rng.random(n), thr, dtype)


def test_nms_larger(dtype, rng):
    n = 1500
    check(grid_boxes(rng, n, clusters=60), tie_scores(rng, n, levels=200), 0.5, dtype)
    check(grid_boxes(rng, n), rng.random(n), 0.25, dtype)
    b = grid_boxes(rng, n, clusters=100).astype(dtype)
    s = rng.random(n).astype(dtype)
    np.testing.assert_array_equal(_C._cuda_nms(b, s, 0.3), tfg.ops.nms(b, s, 0.3))


def test_nms_float64_continuous(rng):
    n = 500
    c = rng.random((n // 9, 2)) * 100
    centres = c[rng.integers(0, len(c), n)] + rng.normal(0, 0.7, (n, 2))
    wh = rng.uniform(1, 6, (n, 2))
    boxes = np.concatenate([centres - wh / 2, centres + wh / 2], axis=1)
    for thr in (0.1, 0.45, 0.7):
        check(boxes, rng.random(n), thr, np.float64)


def test_nms_at_threshold(dtype):
    boxes = exact_pairs(2.0 ** -22)
    for k, box in zip((-1, 0, 1), boxes[1:]):
        pair = np.stack([boxes[0], box]).astype(dtype)
        keep = _C._cuda_nms(pair, np.array([1.0, 0.5], dtype=dtype), 0.5)
        assert keep.tolist() == ([0, 1] if k <= 0 else [0]), (k, keep)
    check(boxes, np.array([4.0, 3.0, 2.0, 1.0]), 0.5, dtype)


def test_nms_float32_threshold_not_a_float():
    # (0, 0, 1, h) inside (0, 0, 1, 1): IoU = h in float32; float32(0.7) < 0.7 does
    # not suppress at 0.7, the next float32 up does.
    below = np.float32(0.7)
    above = np.nextafter(below, np.float32(1))
    for h, suppressed in ((below, False), (above, True)):
        boxes = np.array([[0, 0, 1, 1], [0, 0, 1, h]], dtype=np.float32)
        keep = _C._cuda_nms(boxes, np.array([1, 0], dtype=np.float32), 0.7)
        assert keep.tolist() == ([0] if suppressed else [0, 1]), h
        assert keep.tolist() == tfg.ops.nms(boxes, np.array([1, 0], dtype=np.float32), 0.7).tolist()


def test_nms_ties_nan_scores_and_order(dtype, rng):
    boxes = np.array([[i * 10, 0, i * 10 + 5, 5] for i in range(70)], dtype=dtype)
    scores = np.zeros(70, dtype=dtype)
    scores[::3] = -0.0
    np.testing.assert_array_equal(_C._cuda_nms(boxes, scores, 0.5), np.arange(70))
    n = 200
    scores = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 0.5]), n)
    scores = np.where(rng.random(n) < 0.5, scores, rng.normal(0, 10, n)).astype(dtype)
    np.testing.assert_array_equal(_C._cuda_nms(grid_boxes(rng, n).astype(dtype), scores, 1.0),
                                  ref.score_order_ref(scores))
    check(grid_boxes(rng, n, clusters=10), scores, 0.5, dtype)


def test_nms_degenerate_boxes(dtype):
    boxes = np.array([
        [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 10], [5, 5, 1, 1], [5, 5, 1, 1], [1, 1, 5, 5],
        [0, 0, 10, 10], [np.nan, 0, 10, 10], [0, 0, 10, 10], [0, 0, np.inf, 10], [0, 0, np.inf, 10],
        [-np.inf, 0, 5, 5], [3, 3, 3, 8], [2, 2, 8, 2],
    ], dtype=dtype)
    n = len(boxes)
    for scores in (np.linspace(1, 0, n), np.ones(n), np.linspace(0, 1, n)):
        for thr in (0.0, 0.5, 1.0):
            check(boxes, scores, thr, dtype)


def test_nms_empty_and_non_contiguous(dtype, rng):
    keep = _C._cuda_nms(np.zeros((0, 4), dtype=dtype), np.zeros(0, dtype=dtype), 0.5)
    assert keep.dtype == np.int64 and keep.shape == (0,)
    big = grid_boxes(rng, 100, clusters=8).astype(dtype)
    boxes = np.asfortranarray(big)[::2]
    scores = rng.random(100).astype(dtype)[::2]
    np.testing.assert_array_equal(_C._cuda_nms(boxes, scores, 0.4), ref.nms_ref(boxes, scores, 0.4))


@pytest.mark.parametrize("n,m", [(0, 3), (3, 0), (1, 1), (5, 7), (17, 33), (40, 9), (70, 65)])
def test_box_iou(dtype, rng, n, m):
    a = grid_boxes(rng, n, clusters=3, extent=300) if n else np.zeros((0, 4))
    b = grid_boxes(rng, m, clusters=3, extent=300) if m else np.zeros((0, 4))
    got = _C._cuda_box_iou(a.astype(dtype), b.astype(dtype)[::-1])
    assert got.dtype == dtype and got.shape == (n, m)
    np.testing.assert_allclose(got, ref.box_iou_ref(a, b[::-1]), rtol=4 * np.finfo(dtype).eps, atol=0)
    np.testing.assert_array_equal(got, tfg.ops.box_iou(a.astype(dtype), b.astype(dtype)[::-1]))


def test_box_iou_degenerate(dtype):
    boxes = np.array([[0, 0, 0, 0], [5, 5, 1, 1], [1, 1, 5, 5], [np.nan, 0, 1, 1], [0, 0, np.inf, 1],
                      [0, 0, 2, 2]], dtype=dtype)
    got = _C._cuda_box_iou(boxes, boxes[::-1])
    np.testing.assert_allclose(got, ref.box_iou_ref(boxes, boxes[::-1]), rtol=4 * np.finfo(dtype).eps,
                               equal_nan=True)


def test_errors():
    b = np.zeros((3, 4), dtype=np.float32)
    s = np.zeros(3, dtype=np.float32)
    cases = [
        (ValueError, r"_cuda_nms.*boxes.*\(3, 5\)", lambda: _C._cuda_nms(np.zeros((3, 5), np.float32), s, 0.5)),
        (ValueError, "scores", lambda: _C._cuda_nms(b, np.zeros(4, np.float32), 0.5)),
        (TypeError, "scores", lambda: _C._cuda_nms(b, np.zeros(3, np.float64), 0.5)),
        (TypeError, "boxes", lambda: _C._cuda_nms(np.zeros((3, 4), np.int64), s, 0.5)),
        (ValueError, "iou_threshold", lambda: _C._cuda_nms(b, s, 1.5)),
        (ValueError, "iou_threshold", lambda: _C._cuda_nms(b, s, float("nan"))),
        (TypeError, "_cuda_box_iou.*boxes2", lambda: _C._cuda_box_iou(b, np.zeros((2, 4), np.float64))),
        (ValueError, "boxes1", lambda: _C._cuda_box_iou(np.zeros((2, 2), np.float32), b)),
    ]
    for kind, pattern, fn in cases:
        with pytest.raises(kind, match=pattern):
            fn()
