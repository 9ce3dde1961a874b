"""tfg.ops.cross_entropy and cross_entropy_backward against the float64
references, on every ISA level and both dtypes: every combination of class
weights, ignore_index, label smoothing and reduction; unbatched, batched and
spatial inputs (rows and column-block kernels, several work items); int32
targets; extreme logits; all targets ignored; empty batches; non-contiguous
operands; finite differences; deterministic reductions; errors; PyTorch when
it is installed."""
import itertools

import numpy as np
import pytest

import tensorforge as tfg
from reference import cross_entropy_backward_ref, cross_entropy_ref

REDUCTIONS = ["mean", "sum", "none"]


def rand(rng, shape, dtype, scale=3.0):
    return np.asarray(rng.standard_normal(shape) * scale, dtype=dtype)


def targets(rng, input_shape, ignore_every=0, ignore_index=-100, dtype=np.int64):
    c = input_shape[0] if len(input_shape) == 1 else input_shape[1]
    shape = () if len(input_shape) == 1 else (input_shape[0],) + tuple(input_shape[2:])
    t = rng.integers(0, c, size=shape)
    if ignore_every and t.size:
        t.reshape(-1)[::ignore_every] = ignore_index
    return np.asarray(t, dtype=dtype)


def tolerance(dtype, c, count=1):
    """Relative error allowed for losses over rows of c classes in dtype, `count`
    of them summed (the sum itself is exact enough: float64)."""
    eps = float(np.finfo(dtype).eps)
    return eps * (32 + 4 * np.sqrt(max(c, 1))) * (1 + np.log2(max(count, 1)))


def assert_close(actual, expected, dtype, c, scale):
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == np.dtype(dtype), actual.dtype
    assert actual.shape == np.shape(expected), (actual.shape, np.shape(expected))
    tol = tolerance(dtype, c)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=tol, atol=tol * scale,
                               equal_nan=True)


def check(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0, rng=None,
          grad_output=None):
    """Forward and backward against the references; returns (loss, grad)."""
    dtype = x.dtype
    c = x.shape[0] if x.ndim == 1 else x.shape[1]
    kwargs = dict(weight=weight, ignore_index=ignore_index, reduction=reduction,
                  label_smoothing=label_smoothing)
    before = [a.copy() for a in (x, t)]
    loss = tfg.ops.cross_entropy(x, t, **kwargs)
    expected = cross_entropy_ref(x, t, **kwargs)
    finite = np.abs(x[np.isfinite(x)])
    wmax = 1.0 if weight is None else float(np.abs(weight).max())
    row_scale = (1.0 + (finite.max() if finite.size else 0.0)) * wmax
    count = t.size if reduction == "sum" else 1
    assert_close(loss, expected, dtype, c, row_scale * count)

    if grad_output is None:
        shape = t.shape if reduction == "none" else ()
        grad_output = (rng.standard_normal(shape) if rng is not None else np.ones(shape)).astype(dtype)
    (grad,) = tfg.ops.cross_entropy_backward(grad_output, x, t, **kwargs)
    expected_grad = cross_entropy_backward_ref(grad_output, x, t, **kwargs)
    assert grad.flags.c_contiguous
    gscale = (1.0 + float(np.abs(grad_output).max()) if grad_output.size else 1.0) * wmax
    assert_close(grad, expected_grad, dtype, c, gscale)
    for a, b in zip((x, t), before):
        np.testing.assert_array_equal(a, b)
    return loss, grad


# ----------------------------------------------------------------------------
# Options, all combinations, on a batched, an unbatched and a spatial input.

SHAPES = [(7, 11), (13,), (4, 5, 3, 2), (3, 37, 2)]
OPTIONS = list(itertools.product([False, True], [0, 3], [0.0, 0.25, 1.0], REDUCTIONS))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_options(isa, dtype, rng, shape):
    c = shape[0] if len(shape) == 1 else shape[1]
    w = rng.uniform(0.2, 2.0, size=c).astype(dtype)
    x = rand(rng, shape, dtype)
    for use_weight, ignore_every, ls, red in OPTIONS:
        t = targets(rng, shape, ignore_every)
        check(x, t, w if use_weight else None, reduction=red, label_smoothing=ls, rng=rng)


@pytest.mark.parametrize("ignore_index", [0, 2, -1, 10**12])
def test_ignore_index_values(isa, dtype, rng, ignore_index):
    shape = (9, 6)
    x = rand(rng, shape, dtype)
    t = targets(rng, shape, 2, ignore_index)
    w = rng.uniform(0.2, 2.0, size=6).astype(dtype)
    for red, ls in itertools.product(REDUCTIONS, [0.0, 0.3]):
        check(x, t, w, ignore_index=ignore_index, reduction=red, label_smoothing=ls, rng=rng)


@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (1, 17), (5, 16), (5, 33), (2, 1, 5), (300, 130),
                                   (2, 10, 3300), (70, 8, 70)], ids=str)
def test_shapes(isa, dtype, rng, shape):
    """Widths that are not vector multiples, single classes, and shapes with
    several work items (rows, split column ranges, several slices per item)."""
    x = rand(rng, shape, dtype)
    t = targets(rng, shape, 5)
    w = rng.uniform(0.2, 2.0, size=shape[1]).astype(dtype)
    for red in REDUCTIONS:
        check(x, t, w, reduction=red, label_smoothing=0.1, rng=rng)
    check(x, t, rng=rng)


def test_int32_targets(isa, dtype, rng):
    for shape in [(7, 11), (4, 5, 3)]:
        x = rand(rng, shape, dtype)
        t64 = targets(rng, shape, 3)
        t32 = t64.astype(np.int32)
        for red in REDUCTIONS:
            a = tfg.ops.cross_entropy(x, t32, reduction=red, label_smoothing=0.2)
            b = tfg.ops.cross_entropy(x, t64, reduction=red, label_smoothing=0.2)
            np.testing.assert_array_equal(a, b)
            go = np.ones(t64.shape if red == "none" else (), dtype)
            np.testing.assert_array_equal(tfg.ops.cross_entropy_backward(go, x, t32, reduction=red)[0],
                                          tfg.ops.cross_entropy_backward(go, x, t64, reduction=red)[0])


# ----------------------------------------------------------------------------
# Edge values.

def test_extreme_logits(isa, dtype, rng):
    x = rand(rng, (6, 21), dtype)
    x[0, :] = 1e4
    x[0, 3] = -1e4
    x[1, ::2] = -np.inf          # never the target below
    x[2, :] = -1e4
    x[3, 5] = 1e4
    t = np.array([3, 1, 7, 5, 2, 0])
    for red, ls in itertools.product(REDUCTIONS, [0.0, 0.2]):
        if ls == 0.0:
            loss, _ = check(x, t, reduction=red, rng=rng)
            assert np.isfinite(loss).all()
    # Label smoothing over -inf logits is inf, as in PyTorch.
    loss = tfg.ops.cross_entropy(x, t, reduction="none", label_smoothing=0.2)
    assert np.isinf(loss[1]) and np.isfinite(np.delete(loss, 1)).all()
    # A -inf target logit: infinite loss.
    t2 = np.array([3, 0, 7, 5, 2, 0])
    assert tfg.ops.cross_entropy(x, t2, reduction="none")[1] == np.inf
    # Spatial layout too.
    xs = np.ascontiguousarray(np.moveaxis(x[None], 2, 1))   # (1, 21, 6)
    np.testing.assert_allclose(tfg.ops.cross_entropy(xs, t[None], reduction="none")[0],
                               tfg.ops.cross_entropy(x, t, reduction="none"), rtol=1e-6)


@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3)], ids=str)
def test_all_ignored(isa, dtype, shape):
    x = np.zeros(shape, dtype)
    t = np.full((shape[0],) + shape[2:], -100)
    for ls in (0.0, 0.5):
        assert np.isnan(tfg.ops.cross_entropy(x, t, label_smoothing=ls))
        assert tfg.ops.cross_entropy(x, t, reduction="sum", label_smoothing=ls) == 0.0
        np.testing.assert_array_equal(tfg.ops.cross_entropy(x, t, reduction="none", label_smoothing=ls),
                                      np.zeros(t.shape))
        for red in ("mean", "sum"):
            (g,) = tfg.ops.cross_entropy_backward(np.array(1.0, dtype), x, t, reduction=red, label_smoothing=ls)
            np.testing.assert_array_equal(g, np.zeros(shape))
    # NaN logits in ignored rows do not reach the gradient.
    x[0] = np.nan
    (g,) = tfg.ops.cross_entropy_backward(np.array(1.0, dtype), x, t, reduction="sum")
    np.testing.assert_array_equal(g, np.zeros(shape))


def test_empty(isa, dtype):
    for shape in [(0, 5), (0, 5, 3), (2, 3, 0)]:
        x = np.zeros(shape, dtype)
        t = np.zeros((shape[0],) + shape[2:], np.int64)
        assert np.isnan(tfg.ops.cross_entropy(x, t))
        assert tfg.ops.cross_entropy(x, t, reduction="sum") == 0.0
        none = tfg.ops.cross_entropy(x, t, reduction="none")
        assert none.shape == t.shape and none.dtype == np.dtype(dtype)
        (g,) = tfg.ops.cross_entropy_backward(np.array(1.0, dtype), x, t)
        assert g.shape == shape
    # No classes: only ignored targets are valid, and the mean is NaN as in PyTorch.
    x = np.zeros((3, 0), dtype)
    t = np.full(3, -100)
    assert np.isnan(tfg.ops.cross_entropy(x, t))
    np.testing.assert_array_equal(tfg.ops.cross_entropy(x, t, reduction="none"), np.zeros(3))
    with pytest.raises(ValueError, match="target value 0 .* out of range for 0 classes"):
        tfg.ops.cross_entropy(x, np.zeros(3, np.int64))


def test_zero_weights(isa, dtype, rng):
    x = rand(rng, (6, 5), dtype)
    t = np.array([0, 1, 2, 0, 1, 2])
    w = np.array([0, 0, 0, 1, 1], dtype)
    assert np.isnan(tfg.ops.cross_entropy(x, t, w))         # 0 / 0, as PyTorch
    check(x, t, w, reduction="sum", rng=rng)
    check(x, t, w, reduction="none", label_smoothing=0.3, rng=rng)


# ----------------------------------------------------------------------------
# Layouts.

def test_non_contiguous(isa, dtype, rng):
    base = rand(rng, (8, 12, 10), dtype)
    wbase = rng.uniform(0.2, 2.0, size=60).astype(dtype)
    tbase = rng.integers(0, 1000, size=(10, 24))
    cases = [
        (base[:, ::2, 0], tbase[:8, 0] % 6),                                        # (8, 6)
        (base.transpose(0, 2, 1), tbase[:8, ::2] % 10),                             # (8, 10, 12)
        (base[::-1, :, ::-1].transpose(0, 2, 1)[:, :, :5], tbase[:8, 1:11:2] % 10),  # (8, 10, 5)
        (base[0].T[:, ::-1], tbase[:10, 5] % 12),                                   # (10, 12)
    ]
    for x, t in cases:
        assert not x.flags.c_contiguous
        c = x.shape[1]
        w = wbase[::5][:c]                                                          # strided weight
        for red in REDUCTIONS:
            go = None
            if red == "none":
                go = np.asfortranarray(rand(rng, t.shape, dtype, 1.0))
            check(x, t, w, reduction=red, label_smoothing=0.1, rng=rng, grad_output=go)


# ----------------------------------------------------------------------------
# Finite differences (float64), every option.

@pytest.mark.parametrize("shape", [(4, 5), (5,), (2, 4, 3)], ids=str)
def test_finite_differences(isa, rng, shape):
    c = shape[0] if len(shape) == 1 else shape[1]
    x = rng.standard_normal(shape)
    w = rng.uniform(0.2, 2.0, size=c)
    for use_weight, ls, red in itertools.product([False, True], [0.0, 0.3], REDUCTIONS):
        t = targets(rng, shape, 3 if len(shape) > 1 else 0)
        kwargs = dict(weight=w if use_weight else None, reduction=red, label_smoothing=ls)
        go = rng.standard_normal(t.shape if red == "none" else ())

        def objective(xx):
            return float(np.sum(go * tfg.ops.cross_entropy(xx, t, **kwargs)))

        h = 1e-6
        numeric = np.zeros(shape)
        for idx in np.ndindex(shape):
            xp, xm = x.copy(), x.copy()
            xp[idx] += h
            xm[idx] -= h
            numeric[idx] = (objective(xp) - objective(xm)) / (2 * h)
        (g,) = tfg.ops.cross_entropy_backward(go, x, t, **kwargs)
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8, err_msg=str(kwargs))


# ----------------------------------------------------------------------------
# Deterministic reductions: bit-identical whatever the thread count.

def test_thread_count_independent(best_isa, restore_threads, rng):
    for shape in [(3000, 50), (4, 20, 900)]:
        x = rand(rng, shape, np.float32)
        t = targets(rng, shape, 7)
        results = []
        for threads in (1, 2, 1, 2):
            tfg.set_num_threads(threads)
            results.append([tfg.ops.cross_entropy(x, t, reduction=r, label_smoothing=0.1) for r in REDUCTIONS]
                           + [tfg.ops.cross_entropy_backward(np.array(1.0, np.float32), x, t)[0]])
        for other in results[1:]:
            for a, b in zip(results[0], other):
                np.testing.assert_array_equal(a, b)


def test_scalar_grad_output(rng):
    x = rand(rng, (4, 5), np.float32)
    t = targets(rng, (4, 5))
    (a,) = tfg.ops.cross_entropy_backward(np.array(2.0, np.float32), x, t)
    for go in (2.0, 2, np.float32(2.0)):
        np.testing.assert_array_equal(tfg.ops.cross_entropy_backward(go, x, t)[0], a)
    with pytest.raises(TypeError, match="'grad_output' has dtype float64"):
        tfg.ops.cross_entropy_backward(np.float64(2.0), x, t)


# ----------------------------------------------------------------------------
# Errors: raised before any result exists, naming the argument and the values.

def test_errors():
    ce, ceb = tfg.ops.cross_entropy, tfg.ops.cross_entropy_backward
    x = np.zeros((3, 4), np.float32)
    t = np.array([0, 1, 3])
    with pytest.raises(ValueError, match=r"cross_entropy: target value 4 \(at flat index 1\) is out of range "
                                         r"for 4 classes; expected 0 to 3 or ignore_index \(-100\)"):
        ce(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"target value -1 .*ignore_index \(-100\)"):
        ce(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"target value -100 .*ignore_index \(-1\)"):
        ce(x, np.array([0, -100, 1]), ignore_index=-1)
    with pytest.raises(ValueError, match=r"cross_entropy_backward: target value 7"):
        ceb(np.array(1.0, np.float32), x, np.array([7, 0, 0]))
    with pytest.raises(ValueError, match=r"'target' has shape \(4,\) but 'input' of shape \(3, 4\) needs a target "
                                         r"of shape \(3,\)"):
        ce(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"'target' has shape \(1,\) .* needs a target of shape \(\)"):
        ce(np.zeros(4, np.float32), np.array([1]))
    with pytest.raises(ValueError, match=r"'input' must have shape \(C,\) or \(N, C, ...\), got shape \(\)"):
        ce(np.array(1.0, np.float32), np.array(0))
    with pytest.raises(TypeError, match=r"'target' has dtype float32; expected int64 or int32"):
        ce(x, np.zeros(3, np.float32))
    with pytest.raises(TypeError, match=r"'input' has dtype int64; expected float32 or float64"):
        ce(np.zeros((3, 4), np.int64), t)
    with pytest.raises(TypeError, match=r"'weight' has dtype float64 but 'input' has dtype float32"):
        ce(x, t, np.ones(4))
    with pytest.raises(ValueError, match=r"'weight' must have shape \(4,\) \(one weight per class\), got \(3,\)"):
        ce(x, t, np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"'reduction' must be 'none', 'mean' or 'sum', got 'avg'"):
        ce(x, t, reduction="avg")
    with pytest.raises(ValueError, match=r"'label_smoothing' must be in \[0, 1\], got 1.5"):
        ce(x, t, label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"'label_smoothing' must be in \[0, 1\], got -0.1"):
        ce(x, t, label_smoothing=-0.1)
    with pytest.raises(ValueError, match=r"'grad_output' has shape \(3,\) but reduction='mean' needs shape \(\)"):
        ceb(np.ones(3, np.float32), x, t)
    with pytest.raises(ValueError, match=r"'grad_output' has shape \(\) but reduction='none' needs shape \(3,\)"):
        ceb(np.array(1.0, np.float32), x, t, reduction="none")
    with pytest.raises(TypeError, match=r"'grad_output' has dtype float64 but 'input' has dtype float32"):
        ceb(np.array(1.0), x, t)
    with pytest.raises(TypeError, match=r"argument 'target' must be a NumPy array"):
        ce(x, [0, 1, 2])


# ----------------------------------------------------------------------------
# PyTorch, when installed (int64 targets; this PyTorch rejects int32 ones).

def test_against_torch(best_isa, dtype, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for shape in [(32, 300), (5, 7, 3, 4), (9,)]:
        c = shape[0] if len(shape) == 1 else shape[1]
        x = rand(rng, shape, dtype)
        w = rng.uniform(0.2, 2.0, size=c).astype(dtype)
        for use_weight, ignore_every, ls, red in OPTIONS:
            t = targets(rng, shape, ignore_every if len(shape) > 1 else 0)
            weight = w if use_weight else None
            tx = torch.from_numpy(x).requires_grad_()
            tl = F.cross_entropy(tx, torch.from_numpy(t), weight=None if weight is None else torch.from_numpy(w),
                                 reduction=red, label_smoothing=ls)
            go = rand(rng, tl.shape, dtype, 1.0)
            (tg,) = torch.autograd.grad(tl, tx, torch.from_numpy(go))
            kwargs = dict(weight=weight, reduction=red, label_smoothing=ls)
            loss = tfg.ops.cross_entropy(x, t, **kwargs)
            (g,) = tfg.ops.cross_entropy_backward(go, x, t, **kwargs)
            count = t.size if red == "sum" else 1
            scale = 4.0 * (1 + np.abs(x).max()) * count
            assert_close(loss, tl.detach().numpy().astype(np.float64), dtype, 2 * c, scale)
            assert_close(g, tg.numpy().astype(np.float64), dtype, 2 * c, 4.0 * (1 + np.abs(go).max()))
