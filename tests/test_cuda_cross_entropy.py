"""The fused CUDA cross-entropy kernels (csrc/ops/cross_entropy/cuda/
cross_entropy.cu) on the SIMT emulation, against the float64 references of
the CPU tests: every combination of class weights, ignore_index, label
smoothing and reduction on unbatched, batched and spatial inputs (the warp,
block and column kernels), class counts that are not multiples of 32, long
rows, int32 targets, extreme logits, all targets ignored, empty batches and
no classes, deterministic reductions, and the CPU op's argument errors.

Runs only against the emulated test build (tools/test_emulated.sh)."""
import itertools

import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import _C
from reference import cross_entropy_backward_ref, cross_entropy_ref
from test_cross_entropy import assert_close, rand, targets

REDUCTIONS = ["mean", "sum", "none"]
DTYPES = [np.float32, np.float64]


def ce(x, t, **kwargs):
    return _C._cuda_cross_entropy(x, t, **kwargs)


def ce_backward(go, x, t, **kwargs):
    result = _C._cuda_cross_entropy_backward(go, x, t, **kwargs)
    assert isinstance(result, tuple) and len(result) == 1
    return result[0]


def check(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0, rng=None):
    dtype = x.dtype
    c = x.shape[0] if x.ndim == 1 else x.shape[1]
    kwargs = dict(weight=weight, ignore_index=ignore_index, reduction=reduction,
                  label_smoothing=label_smoothing)
    loss = ce(x, t, **kwargs)
    finite = np.abs(x[np.isfinite(x)])
    wmax = 1.0 if weight is None else float(np.abs(weight).max())
    row_scale = (1.0 + (finite.max() if finite.size else 0.0)) * wmax
    count = t.size if reduction == "sum" else 1
    assert_close(loss, cross_entropy_ref(x, t, **kwargs), dtype, c, row_scale * count)
    shape = t.shape if reduction == "none" else ()
    go = (rng.standard_normal(shape) if rng is not None else np.ones(shape)).astype(dtype)
    grad = ce_backward(go, x, t, **kwargs)
    gscale = (1.0 + float(np.abs(go).max()) if go.size else 1.0) * wmax
    assert_close(grad, cross_entropy_backward_ref(go, x, t, **kwargs), dtype, c, gscale)
    return loss, grad


OPTIONS = list(itertools.product([False, True], [0, 3], [0.0, 0.25, 1.0], REDUCTIONS))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 11), (13,), (4, 5, 3, 2), (3, 37, 2)], ids=str)
def test_options(dtype, shape):
    rng = np.random.default_rng(sum(map(ord, str(shape))))
    c = shape[0] if len(shape) == 1 else shape[1]
    w = rng.uniform(0.2, 2.0, size=c).astype(dtype)
    x = rand(rng, shape, dtype)
    for use_weight, ignore_every, ls, red in OPTIONS:
        t = targets(rng, shape, ignore_every)
        check(x, t, w if use_weight else None, reduction=red, label_smoothing=ls, rng=rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (1, 17), (9, 33), (5, 1024), (3, 1500), (2, 1, 5),
                                   (300, 13), (2, 10, 70), (3, 9, 40)], ids=str)
def test_shapes(dtype, shape):
    """Warp rows (partial blocks of 4 rows), block rows (C > 1024), column
    blocks (partial blocks of 32 positions, 1 to 8 threads along C)."""
    rng = np.random.default_rng(sum(map(ord, str(shape))) + 1)
    x = rand(rng, shape, dtype)
    t = targets(rng, shape, 5)
    w = rng.uniform(0.2, 2.0, size=shape[1]).astype(dtype)
    for red in REDUCTIONS:
        check(x, t, w, reduction=red, label_smoothing=0.1, rng=rng)
    check(x, t, rng=rng)


@pytest.mark.parametrize("ignore_index", [0, 2, -1, 10**12])
def test_ignore_index_values(ignore_index):
    rng = np.random.default_rng(3)
    x = rand(rng, (9, 6), np.float64)
    t = targets(rng, (9, 6), 2, ignore_index)
    w = rng.uniform(0.2, 2.0, size=6)
    for red, ls in itertools.product(REDUCTIONS, [0.0, 0.3]):
        check(x, t, w, ignore_index=ignore_index, reduction=red, label_smoothing=ls, rng=rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_cpu_op(dtype):
    rng = np.random.default_rng(9)
    for shape in [(40, 19), (4, 7, 3)]:
        x = rand(rng, shape, dtype)
        t64 = targets(rng, shape, 4)
        t32 = t64.astype(np.int32)
        for red in REDUCTIONS:
            kw = dict(reduction=red, label_smoothing=0.2)
            a = ce(x, t32, **kw)
            np.testing.assert_array_equal(a, ce(x, t64, **kw))
            np.testing.assert_allclose(a, tfg.ops.cross_entropy(x, t64, **kw), rtol=50 * np.finfo(dtype).eps)
            go = np.ones(t64.shape if red == "none" else (), dtype)
            np.testing.assert_allclose(ce_backward(go, x, t32, **kw),
                                       tfg.ops.cross_entropy_backward(go, x, t64, **kw)[0],
                                       rtol=1e-4 if dtype == np.float32 else 1e-12,
                                       atol=1e-6 if dtype == np.float32 else 1e-15)
            np.testing.assert_array_equal(ce(x, t64, **kw), ce(x, t64, **kw))  # deterministic


def test_extreme_logits():
    rng = np.random.default_rng(4)
    x = rand(rng, (6, 21), np.float32)
    x[0, :] = 1e4
    x[0, 3] = -1e4
    x[1, ::2] = -np.inf
    x[2, :] = -1e4
    x[3, 5] = 1e4
    t = np.array([3, 1, 7, 5, 2, 0])
    for red in REDUCTIONS:
        loss, _ = check(x, t, reduction=red, rng=rng)
        assert np.isfinite(loss).all()
    loss = ce(x, t, reduction="none", label_smoothing=0.2)
    assert np.isinf(loss[1]) and np.isfinite(np.delete(loss, 1)).all()
    assert ce(x, np.array([3, 0, 7, 5, 2, 0]), reduction="none")[1] == np.inf
    xs = np.ascontiguousarray(np.moveaxis(x[None], 2, 1))   # (1, 21, 6): the column kernel
    np.testing.assert_allclose(ce(xs, t[None], reduction="none")[0], ce(x, t, reduction="none"), rtol=1e-6)


@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3)], ids=str)
def test_all_ignored_and_empty(shape):
    x = np.zeros(shape, np.float32)
    t = np.full((shape[0],) + shape[2:], -100)
    for ls in (0.0, 0.5):
        assert np.isnan(ce(x, t, label_smoothing=ls))
        assert ce(x, t, reduction="sum", label_smoothing=ls) == 0.0
        np.testing.assert_array_equal(ce(x, t, reduction="none", label_smoothing=ls), np.zeros(t.shape))
    x[0] = np.nan
    np.testing.assert_array_equal(ce_backward(np.array(1.0, np.float32), x, t, reduction="sum"),
                                  np.zeros(shape))
    for eshape in [(0, 5), (0, 5, 3), (2, 3, 0)]:
        xe = np.zeros(eshape, np.float64)
        te = np.zeros((eshape[0],) + eshape[2:], np.int64)
        assert np.isnan(ce(xe, te)) and ce(xe, te, reduction="sum") == 0.0
        assert ce(xe, te, reduction="none").shape == te.shape
        assert ce_backward(np.array(1.0), xe, te).shape == eshape
    xc = np.zeros((3, 0))
    assert np.isnan(ce(xc, np.full(3, -100)))
    np.testing.assert_array_equal(ce(xc, np.full(3, -100), reduction="none"), np.zeros(3))


def test_errors():
    x = np.zeros((3, 4), np.float32)
    t = np.array([0, 4, 1])
    with pytest.raises(ValueError, match=r"_cuda_cross_entropy: target value 4 \(at flat index 1\) is out of range"):
        ce(x, t)
    with pytest.raises(ValueError, match=r"_cuda_cross_entropy_backward: target value 7"):
        ce_backward(np.array(1.0, np.float32), x, np.array([0, 7, 1]))
    with pytest.raises(ValueError, match=r"'target' has shape \(4,\) but 'input' of shape \(3, 4\)"):
        ce(x, np.zeros(4, np.int64))
    with pytest.raises(TypeError, match=r"'weight' has dtype float64 but 'input' has dtype float32"):
        ce(x, np.zeros(3, np.int64), weight=np.ones(4))
    with pytest.raises(ValueError, match=r"'reduction' must be 'none', 'mean' or 'sum', got 'avg'"):
        ce(x, np.zeros(3, np.int64), reduction="avg")
    with pytest.raises(ValueError, match=r"'label_smoothing' must be in \[0, 1\], got 1.5"):
        ce(x, np.zeros(3, np.int64), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"'grad_output' has shape \(3,\) but reduction='mean' needs shape \(\)"):
        ce_backward(np.zeros(3, np.float32), x, np.zeros(3, np.int64))
    with pytest.raises(TypeError, match=r"'grad_output' has dtype float64 but 'input' has dtype float32"):
        ce_backward(np.array(1.0), x, np.zeros(3, np.int64))
