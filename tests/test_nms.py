"""nms, batched_nms and box_iou against the float64 greedy-loop references.

float32 cases use integer coordinates below 2048 and dyadic thresholds, so
that every area, intersection and union is exact in float32 and the rounded
IoU lands on the same side of the threshold as the exact one: the float32
kernels must then agree with the float64 reference index for index.
"""
import numpy as np
import pytest

import tensorforge as tfg
import reference as ref


def grid_boxes(rng, n, clusters=None, extent=2000, size=(4, 120), jitter=None):
    """n integer-coordinate boxes, around `clusters` centres when given (within
    +-jitter, default twice the smallest size)."""
    jitter = size[0] * 2 if jitter is None else jitter
    w = rng.integers(size[0], size[1], n)
    h = rng.integers(size[0], size[1], n)
    if clusters:
        centres = rng.integers(size[1], extent - size[1], (clusters, 2))
        c = centres[rng.integers(0, clusters, n)] + rng.integers(-jitter, jitter + 1, (n, 2))
        cx, cy = c[:, 0], c[:, 1]
    else:
        cx = rng.integers(size[1], extent - size[1], n)
        cy = rng.integers(size[1], extent - size[1], n)
    x1, y1 = cx - w // 2, cy - h // 2
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1).astype(np.float64)


def tie_scores(rng, n, levels=7):
    return rng.integers(0, levels, n).astype(np.float64) / levels


def check(boxes, scores, thr, dtype):
    b = np.ascontiguousarray(boxes, dtype=dtype)
    s = np.ascontiguousarray(scores, dtype=dtype)
    got = tfg.ops.nms(b, s, thr)
    want = ref.nms_ref(b, s, thr)
    assert got.dtype == np.int64 and got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(got, want)
    return got


@pytest.mark.parametrize("n", [1, 2, 5, 17, 63, 64, 65, 130, 700])
@pytest.mark.parametrize("thr", [0.0, 0.25, 0.5, 1.0])
def test_nms_matches_reference(isa, dtype, rng, n, thr):
    boxes = grid_boxes(rng, n, clusters=max(1, n // 12))
    check(boxes, tie_scores(rng, n), thr, dtype)
    check(boxes, rng.random(n), thr, dtype)


def test_nms_float64_continuous(isa, rng):
    # Non-grid float64 coordinates and a threshold that is not a float32: the
    # kernel's operations are the reference's, so the results agree exactly.
    n = 900
    c = rng.random((n // 9, 2)) * 100
    centres = c[rng.integers(0, len(c), n)] + rng.normal(0, 0.7, (n, 2))
    wh = rng.uniform(1, 6, (n, 2))
    boxes = np.concatenate([centres - wh / 2, centres + wh / 2], axis=1)
    for thr in (0.1, 0.3, 0.45, 0.7):
        check(boxes, rng.random(n), thr, np.float64)


def exact_pairs(eps):
    """Box 0 = (0, 0, 4, 4), box k with IoU 0.5 + k * eps exactly (inside box 0,
    inter = its area, union = 16), for k = -1, 0, 1."""
    return np.array([[0, 0, 4, 4], [0, 0, 4, 2 - 4 * eps], [0, 0, 4, 2], [0, 0, 4, 2 + 4 * eps]], dtype=np.float64)


def test_nms_at_threshold(isa, dtype):
    eps = 2.0 ** -22  # exact in float32 for these sizes
    boxes = exact_pairs(eps)
    for k, box in zip((-1, 0, 1), boxes[1:]):
        pair = np.stack([boxes[0], box])
        keep = tfg.ops.nms(pair.astype(dtype), np.array([1.0, 0.5], dtype=dtype), 0.5)
        # IoU = 0.5 is not > 0.5: both kept; just past it the second goes.
        assert keep.tolist() == ([0, 1] if k <= 0 else [0]), (k, keep)
    # All four together: box 1 survives box 0 and suppresses its near twins 2 and 3.
    check(boxes, np.array([4.0, 3.0, 2.0, 1.0]), 0.5, dtype)
    assert tfg.ops.nms(boxes.astype(dtype), np.array([4.0, 3.0, 2.0, 1.0], dtype=dtype), 0.5).tolist() == [0, 1]


def test_nms_float32_threshold_not_a_float(isa):
    # torchvision compares the float32 IoU with the double threshold: an IoU equal
    # to float32(0.7) (< 0.7) is not above 0.7, the next float32 up is.
    thr = 0.7
    below, above = np.float32(thr), np.nextafter(np.float32(thr), np.float32(1))
    assert float(below) < thr < float(above)
    found = {}
    one = np.float32(1)
    h = np.float32(0.69)
    for _ in range(400000):
        ovr = h / ((one + h) - h)  # box (0, 0, 1, h) inside (0, 0, 1, 1), float32 arithmetic
        if ovr in (below, above):
            found[float(ovr)] = h
        if len(found) == 2 or h > np.float32(0.71):
            break
        h = np.nextafter(h, one)
    assert len(found) == 2
    for ovr, hh in found.items():
        boxes = np.array([[0, 0, 1, 1], [0, 0, 1, hh]], dtype=np.float32)
        keep = tfg.ops.nms(boxes, np.array([1, 0], dtype=np.float32), thr)
        assert keep.tolist() == ([0] if ovr > thr else [0, 1]), (ovr, keep)


def test_nms_score_ties_keep_input_order(isa, dtype):
    boxes = np.array([[i * 10, 0, i * 10 + 5, 5] for i in range(70)], dtype=dtype)
    scores = np.zeros(70, dtype=dtype)
    scores[::3] = -0.0
    np.testing.assert_array_equal(tfg.ops.nms(boxes, scores, 0.5), np.arange(70))
    scores = np.array([1.0, 2.0, 1.0, 2.0, 1.0], dtype=dtype)
    np.testing.assert_array_equal(tfg.ops.nms(boxes[:5], scores, 0.5), [1, 3, 0, 2, 4])


def test_nms_empty(isa, dtype):
    keep = tfg.ops.nms(np.zeros((0, 4), dtype=dtype), np.zeros(0, dtype=dtype), 0.5)
    assert keep.dtype == np.int64 and keep.shape == (0,)
    keep = tfg.ops.batched_nms(np.zeros((0, 4), dtype=dtype), np.zeros(0, dtype=dtype),
                               np.zeros(0, dtype=np.int64), 0.5)
    assert keep.dtype == np.int64 and keep.shape == (0,)


def test_nms_nan_scores_first(isa, dtype):
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 9, 9], [50, 50, 60, 60], [51, 51, 60, 60]],
                     dtype=dtype)
    scores = np.array([0.9, np.nan, 0.8, np.nan, np.inf], dtype=dtype)
    keep = check(boxes, scores, 0.5, dtype)
    # NaN scores sort first (in input order), then +inf, as torch.sort(descending=True).
    assert keep.tolist() == [1, 3]


@pytest.mark.parametrize("n", [40, 5000])
def test_nms_score_order(isa, dtype, rng, n):
    # Threshold 1 suppresses nothing among boxes of positive area, so nms returns
    # the whole score order: NaN first, +inf, ties (-0 and +0 among them) in input
    # order, -inf last. n = 5000 takes the radix sort, 40 the comparison sort.
    boxes = grid_boxes(rng, n)
    scores = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 1e-30, -1e-30]), n)
    scores = np.where(rng.random(n) < 0.5, scores, rng.normal(0, 10, n))
    got = tfg.ops.nms(boxes.astype(dtype), scores.astype(dtype), 1.0)
    np.testing.assert_array_equal(got, ref.score_order_ref(scores.astype(dtype)))


def test_nms_score_order_against_torch(best_isa, dtype, rng):
    torch = pytest.importorskip("torch")
    n = 3000
    scores = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 0.5]), n)
    scores = np.where(rng.random(n) < 0.5, scores, rng.normal(0, 10, n)).astype(dtype)
    got = tfg.ops.nms(grid_boxes(rng, n).astype(dtype), scores, 1.0)
    want = torch.sort(torch.from_numpy(scores), descending=True, stable=True)[1].numpy()
    np.testing.assert_array_equal(got, want)


def test_nms_degenerate_boxes(isa, dtype):
    # Zero area, negative area (x2 < x1), identical empty boxes (0 / 0 = NaN IoU:
    # never suppresses), NaN and infinite coordinates, all through torchvision's formula.
    boxes = np.array([
        [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 10], [5, 5, 1, 1], [5, 5, 1, 1], [1, 1, 5, 5],
        [0, 0, 10, 10], [np.nan, 0, 10, 10], [0, 0, 10, 10], [0, 0, np.inf, 10], [0, 0, np.inf, 10],
        [-np.inf, 0, 5, 5], [3, 3, 3, 8], [2, 2, 8, 2],
    ], dtype=dtype)
    n = len(boxes)
    for scores in (np.linspace(1, 0, n), np.ones(n), np.linspace(0, 1, n)):
        for thr in (0.0, 0.5, 1.0):
            check(boxes, scores, thr, dtype)
    keep = tfg.ops.nms(boxes[:2], np.array([1, 1], dtype=dtype), 0.0)
    assert keep.tolist() == [0, 1]  # 0 / 0 IoU: no suppression
    # A NaN-coordinate box neither suppresses nor is suppressed (its area is NaN).
    keep = tfg.ops.nms(boxes[6:9], np.array([1, 2, 0.5], dtype=dtype), 0.0)
    assert keep.tolist() == [1, 0]


_CLUSTERED = {}


def clustered_case(n, clusters, seed, size=(4, 120), jitter=None):
    key = (n, clusters, seed, size, jitter)
    if key not in _CLUSTERED:
        rng = np.random.default_rng(seed)
        boxes = grid_boxes(rng, n, clusters=clusters, size=size, jitter=jitter)
        scores = tie_scores(rng, n, levels=1000)
        _CLUSTERED[key] = (boxes, scores, ref.nms_ref(boxes, scores, 0.5))
    return _CLUSTERED[key]


@pytest.mark.parametrize("n,clusters,size,jitter", [(20000, 500, (36, 50), 5), (4000, 2000, (4, 120), None)])
def test_nms_large(isa, dtype, n, clusters, size, jitter):
    # 20 000 clustered boxes (most suppressed early, compaction) and 4000 spread
    # ones (few suppressed: many blocks of kept boxes, parallel sweeps).
    boxes, scores, want = clustered_case(n, clusters, 1234 + n, size, jitter)
    got = tfg.ops.nms(boxes.astype(dtype), scores.astype(dtype), 0.5)
    np.testing.assert_array_equal(got, want)


def test_nms_threads_agree(best_isa, restore_threads):
    boxes, scores, want = clustered_case(4000, 2000, 1234 + 4000)
    for threads in (1, 2):
        tfg.set_num_threads(threads)
        np.testing.assert_array_equal(tfg.ops.nms(boxes, scores, 0.5), want)


def test_nms_non_contiguous(isa, dtype, rng):
    n = 150
    boxes = grid_boxes(rng, n, clusters=12)
    scores = tie_scores(rng, n)
    wide = np.zeros((n, 8), dtype=dtype)
    wide[:, ::2] = boxes
    strided_scores = np.repeat(scores.astype(dtype), 3)[::3]
    got = tfg.ops.nms(wide[:, ::2], strided_scores, 0.5)
    np.testing.assert_array_equal(got, ref.nms_ref(boxes, scores, 0.5))
    got = tfg.ops.nms(np.asfortranarray(boxes.astype(dtype)), scores.astype(dtype)[::-1][::-1], 0.5)
    np.testing.assert_array_equal(got, ref.nms_ref(boxes, scores, 0.5))


@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32])
def test_batched_nms(isa, dtype, rng, idx_dtype):
    n = 3000
    boxes = grid_boxes(rng, n, clusters=40)
    scores = tie_scores(rng, n, levels=50)
    for classes in (1, 3, 700):
        idxs = (rng.integers(0, classes, n) * 7 - 5).astype(idx_dtype)  # negative ids too
        got = tfg.ops.batched_nms(boxes.astype(dtype), scores.astype(dtype), idxs, 0.5)
        np.testing.assert_array_equal(got, ref.batched_nms_ref(boxes, scores, idxs, 0.5))


def test_batched_nms_large_group(best_isa, dtype, rng):
    # One category above the size where a group sweeps on the whole team, beside small ones.
    n = 6000
    boxes = grid_boxes(rng, n, clusters=200)
    scores = rng.random(n)
    idxs = np.where(rng.random(n) < 0.8, 0, rng.integers(1, 300, n))
    got = tfg.ops.batched_nms(boxes.astype(dtype), scores.astype(dtype), idxs, 0.5)
    np.testing.assert_array_equal(got, ref.batched_nms_ref(boxes, scores, idxs, 0.5))


@pytest.mark.parametrize("n,m", [(0, 3), (3, 0), (1, 1), (5, 7), (17, 33), (40, 9)])
def test_box_iou(isa, dtype, rng, n, m):
    a = grid_boxes(rng, n, clusters=3, extent=300) if n else np.zeros((0, 4))
    b = grid_boxes(rng, m, clusters=3, extent=300) if m else np.zeros((0, 4))
    got = tfg.ops.box_iou(a.astype(dtype), b.astype(dtype))
    assert got.dtype == dtype and got.shape == (n, m)
    np.testing.assert_allclose(got, ref.box_iou_ref(a, b), rtol=4 * np.finfo(dtype).eps, atol=0)


def test_box_iou_degenerate(isa, dtype):
    boxes = np.array([[0, 0, 0, 0], [5, 5, 1, 1], [1, 1, 5, 5], [np.nan, 0, 1, 1], [0, 0, np.inf, 1],
                      [0, 0, 2, 2]], dtype=dtype)
    got = tfg.ops.box_iou(boxes, boxes[::-1])
    np.testing.assert_allclose(got, ref.box_iou_ref(boxes, boxes[::-1]), rtol=4 * np.finfo(dtype).eps,
                               equal_nan=True)


def test_errors():
    b = np.zeros((3, 4), dtype=np.float32)
    s = np.zeros(3, dtype=np.float32)
    cases = [
        (ValueError, "boxes", lambda: tfg.ops.nms(np.zeros((3, 5), np.float32), s, 0.5)),
        (ValueError, "boxes", lambda: tfg.ops.nms(np.zeros(12, np.float32), s, 0.5)),
        (ValueError, "boxes", lambda: tfg.ops.nms(np.zeros((1, 3, 4), np.float32), s, 0.5)),
        (ValueError, "scores", lambda: tfg.ops.nms(b, np.zeros(4, np.float32), 0.5)),
        (ValueError, "scores", lambda: tfg.ops.nms(b, np.zeros((3, 1), np.float32), 0.5)),
        (TypeError, "scores", lambda: tfg.ops.nms(b, np.zeros(3, np.float64), 0.5)),
        (TypeError, "boxes", lambda: tfg.ops.nms(np.zeros((3, 4), np.int64), s, 0.5)),
        (ValueError, "iou_threshold", lambda: tfg.ops.nms(b, s, -0.1)),
        (ValueError, "iou_threshold", lambda: tfg.ops.nms(b, s, 1.5)),
        (ValueError, "iou_threshold", lambda: tfg.ops.nms(b, s, float("nan"))),
        (TypeError, "idxs", lambda: tfg.ops.batched_nms(b, s, np.zeros(3, np.float32), 0.5)),
        (ValueError, "idxs", lambda: tfg.ops.batched_nms(b, s, np.zeros(4, np.int64), 0.5)),
        (ValueError, "iou_threshold", lambda: tfg.ops.batched_nms(b, s, np.zeros(3, np.int64), 2.0)),
        (TypeError, "boxes2", lambda: tfg.ops.box_iou(b, np.zeros((2, 4), np.float64))),
        (ValueError, "boxes1", lambda: tfg.ops.box_iou(np.zeros((2, 2), np.float32), b)),
    ]
    for kind, arg, fn in cases:
        with pytest.raises(kind, match=arg):
            fn()
    with pytest.raises(ValueError, match=r"\(3, 5\)"):
        tfg.ops.nms(np.zeros((3, 5), np.float32), s, 0.5)
    with pytest.raises(ValueError, match="1.5"):
        tfg.ops.nms(b, s, 1.5)


def test_against_torchvision(best_isa, dtype, rng):
    torch = pytest.importorskip("torch")
    tv_ops = pytest.importorskip("torchvision.ops")
    n = 2000
    boxes = grid_boxes(rng, n, clusters=100)
    scores = tie_scores(rng, n, levels=30)
    scores[::97] = np.nan
    idxs = rng.integers(0, 20, n)
    b, s = boxes.astype(dtype), scores.astype(dtype)
    tb, ts = torch.from_numpy(b), torch.from_numpy(s)
    for thr in (0.3, 0.5, 0.7):
        np.testing.assert_array_equal(tfg.ops.nms(b, s, thr), tv_ops.nms(tb, ts, thr).numpy())
    np.testing.assert_allclose(tfg.ops.box_iou(b[:50], b[50:90]),
                               tv_ops.box_iou(tb[:50], tb[50:90]).numpy(), rtol=1e-6)
    finite = ~np.isnan(s)
    got = tfg.ops.batched_nms(b[finite], s[finite], idxs[finite], 0.5)
    want = tv_ops.batched_nms(tb[finite], ts[finite], torch.from_numpy(idxs[finite]), 0.5).numpy()
    assert sorted(got.tolist()) == sorted(want.tolist())


def test_against_opencv(best_isa, rng):
    cv2 = pytest.importorskip("cv2")
    # cv2.dnn.NMSBoxes takes (x, y, w, h), a score threshold and float32 IoU; with
    # distinct scores and grid boxes it picks the same set.
    n = 1500
    boxes = grid_boxes(rng, n, clusters=60)
    scores = rng.permutation(n).astype(np.float64) / n + 0.001
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    want = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, 0.5)).reshape(-1)
    got = tfg.ops.nms(boxes, scores, 0.5)
    assert sorted(got.tolist()) == sorted(want.tolist())


def test_box_iou_non_contiguous(isa, dtype, rng):
    a = grid_boxes(rng, 23, clusters=2, extent=300)
    b = grid_boxes(rng, 19, clusters=2, extent=300)
    wide = np.zeros((23, 8), dtype=dtype)
    wide[:, 1::2] = a
    got = tfg.ops.box_iou(wide[:, 1::2], np.asfortranarray(b.astype(dtype))[::-1])
    np.testing.assert_allclose(got, ref.box_iou_ref(a, b[::-1]), rtol=4 * np.finfo(dtype).eps, atol=0)
