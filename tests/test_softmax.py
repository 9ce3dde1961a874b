"""tfg.ops.softmax / log_softmax and their backwards against the float64
references, on every ISA level and both dtypes: every dimension (rows and
column-block kernels, several work items), lengths that are not multiples of
the vector width, 0-d and empty inputs, extreme values (the vectorised exp
over its whole range, +-1e4, -inf, NaN), non-contiguous inputs, finite
differences, errors, and PyTorch when it is installed."""
import numpy as np
import pytest

import tensorforge as tfg
from reference import softmax_backward_ref, softmax_ref

FNS = ["softmax", "log_softmax"]


def forward(name, x, dim):
    return getattr(tfg.ops, name)(x, dim)


def backward(name, g, x, dim, output=None):
    result = getattr(tfg.ops, name + "_backward")(g, x, dim, output)
    assert isinstance(result, tuple) and len(result) == 1
    return result[0]


def tolerance(dtype, n):
    """Relative error allowed for a softmax row of length n computed in dtype: exp
    and the division cost a few ulp; the row's sum of n positive terms (several
    accumulators) drifts like a random walk, about sqrt(n) ulp, with a wide margin
    here. A wrong, missing or repeated term is off by far more."""
    eps = float(np.finfo(dtype).eps)
    return eps * (16 + 4 * np.sqrt(max(int(n), 1)))


def assert_close(actual, expected, dtype, n, scale=1.0, log=False):
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == np.dtype(dtype), actual.dtype
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    tol = tolerance(dtype, n)
    finite = expected[np.isfinite(expected)]
    if log:  # log-probabilities: absolute error grows with |x - max|
        scale = scale * (1.0 + (np.abs(finite).max() if finite.size else 0.0))
    # The smallest normal: exp flushes results below it to 0 (Note [exp range]).
    atol = tol * scale + 2 * float(np.finfo(dtype).tiny)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=tol, atol=atol, equal_nan=True)


def check_forward(name, x, dim):
    before = x.copy()
    out = forward(name, x, dim)
    n = x.shape[dim] if x.ndim else 1
    assert_close(out, softmax_ref(x, dim, log=name == "log_softmax"), x.dtype, n,
                 log=name == "log_softmax")
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(x, before)
    return out


def check_backward(name, g, x, dim):
    log = name == "log_softmax"
    n = x.shape[dim] if x.ndim else 1
    expected = softmax_backward_ref(g, x, dim, log)
    scale = 1.0 + float(np.abs(g).max()) * max(n, 1) if g.size else 1.0
    y = forward(name, x, dim)
    for output in (None, y):
        gx = backward(name, g, x, dim, output)
        assert_close(gx, expected, x.dtype, n, scale=scale)


def rand(rng, shape, dtype, scale=3.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# ----------------------------------------------------------------------------
# Shapes and dimensions. Widths: 8/16 floats, 4/8 doubles; column blocks of
# 4 vectors; work items of 2^15 elements.

SHAPES_DIMS = [
    ((1,), 0), ((7,), 0), ((7,), -1), ((33,), 0), ((1000,), 0),
    ((5, 1), 1), ((1, 5), 1), ((5, 1), 0), ((3, 17), 1), ((3, 17), 0), ((4, 64), -1), ((4, 65), -2),
    ((2, 3, 37), 0), ((2, 3, 37), 1), ((2, 3, 37), 2), ((2, 3, 37), -2),
    ((2, 5, 4, 3), 1), ((2, 5, 4, 3), -1), ((2, 5, 4, 3), 2), ((2, 5, 1, 1), 1),
    ((3, 20, 67), 1),     # full 4-vector column blocks + single vectors + a partial one
    ((2, 9, 129), 1),
    ((300, 130), 1),      # several row items
    ((2, 40000), 1),      # one long row per item
    ((2, 64, 600), 1),    # one slice split into column ranges
    ((40, 30, 30), 1),    # several whole slices per item
]


@pytest.mark.parametrize("name", FNS)
@pytest.mark.parametrize("shape,dim", SHAPES_DIMS, ids=[f"{s}-d{d}" for s, d in SHAPES_DIMS])
def test_forward(isa, dtype, rng, name, shape, dim):
    check_forward(name, rand(rng, shape, dtype), dim)


BACKWARD_SHAPES = [((1,), 0), ((7,), 0), ((3, 17), 1), ((3, 17), 0), ((2, 3, 37), 1), ((2, 3, 37), -1),
                   ((3, 20, 67), 1), ((2, 5, 1, 1), 1), ((300, 130), 1), ((2, 64, 600), 1)]


@pytest.mark.parametrize("name", FNS)
@pytest.mark.parametrize("shape,dim", BACKWARD_SHAPES, ids=[f"{s}-d{d}" for s, d in BACKWARD_SHAPES])
def test_backward(isa, dtype, rng, name, shape, dim):
    check_backward(name, rand(rng, shape, dtype, 1.0), rand(rng, shape, dtype), dim)


@pytest.mark.parametrize("name", FNS)
def test_zero_dim(isa, dtype, name):
    x = np.array(2.5, dtype=dtype)
    for dim in (0, -1):
        out = forward(name, x, dim)
        assert out.shape == () and out.dtype == np.dtype(dtype)
        assert float(out) == (0.0 if name == "log_softmax" else 1.0)
        gx = backward(name, np.array(3.0, dtype=dtype), x, dim)
        assert gx.shape == ()
        np.testing.assert_allclose(gx, softmax_backward_ref(3.0, x, 0, name == "log_softmax"), atol=1e-6)
    assert np.isnan(forward(name, np.array(np.nan, dtype=dtype), 0))


@pytest.mark.parametrize("name", FNS)
@pytest.mark.parametrize("shape,dim", [((0,), 0), ((0, 5), 1), ((0, 5), 0), ((5, 0), 1), ((5, 0), 0),
                                       ((2, 0, 3), 1), ((2, 3, 0), 1)])
def test_empty(isa, dtype, name, shape, dim):
    x = np.zeros(shape, dtype)
    out = forward(name, x, dim)
    assert out.shape == shape and out.dtype == np.dtype(dtype)
    gx = backward(name, x, x, dim, out)
    assert gx.shape == shape and gx.dtype == np.dtype(dtype)


# ----------------------------------------------------------------------------
# Extreme values, in the rows layout (dim last) and the columns layout (dim 0).

def special_rows(dtype):
    inf, nan = np.inf, np.nan
    big = 1e4
    rows = [
        [big, -big, 0.0, 1.0, big - 1, -3.0, 2.0, 0.5, big, 7.0, -1.0],
        [-big, -big, -big + 2, -big, -big, -big, -big, -big, -big, -big, -big + 1],
        [-inf, 0.0, 1.0, -inf, 2.0, -inf, -inf, 3.0, -inf, 1.5, -inf],
        [-inf] * 11,                                                       # NaN, as PyTorch
        [0.0, 1.0, nan, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],           # NaN row
        [0.0, 1.0, 2.0, inf, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],           # inf - inf: NaN row
        [-inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, 5.0],  # exactly one 1
        [1e30 if dtype == np.float32 else 1e300] + [0.0] * 10,
        [-80.0, -90.0, -100.0, -88.0, -87.0, -700.0, -710.0, -1e4, 0.0, -50.0, -20.0],
    ]
    return np.array(rows, dtype=dtype)


@pytest.mark.parametrize("name", FNS)
@pytest.mark.parametrize("transpose", [False, True])
def test_special_values(isa, dtype, name, transpose):
    x = special_rows(dtype)
    x = np.ascontiguousarray(x.T) if transpose else x
    dim = 0 if transpose else 1
    out = check_forward(name, x, dim)
    rows = out.T if transpose else out
    assert np.isnan(rows[3]).all() and np.isnan(rows[4]).all() and np.isnan(rows[5]).all()
    if name == "softmax":
        np.testing.assert_array_equal(rows[6], [0.0] * 10 + [1.0])
        assert rows[2][0] == 0.0
    else:
        assert rows[2][0] == -np.inf and rows[6][-1] == 0.0


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_exp_range(isa, dtype, layout):
    """softmax([0, x])[1] = e^x / (1 + e^x) over the whole range the kernels feed
    to exp (x <= 0): within a few ulp where the result is normal, 0 (or, at the
    scalar level, a denormal) below, exactly 0 for -inf."""
    lo = -87.3365 if dtype == np.float32 else -708.3964
    xs = np.concatenate([np.linspace(lo, 0.0, 4001), -np.logspace(-8, 0, 50), [-0.0],
                         np.linspace(lo - 30, lo, 50), [-1e4, -1e30, -np.inf]]).astype(dtype)
    x = np.stack([np.zeros_like(xs), xs], axis=1)
    if layout == "columns":
        x = np.ascontiguousarray(x.T)
    out = tfg.ops.softmax(x, 1 if layout == "rows" else 0)
    y = out[:, 1] if layout == "rows" else out[1]
    e = np.exp(xs.astype(np.float64))
    expected = e / (1.0 + e)
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)
    np.testing.assert_allclose(y.astype(np.float64), expected, rtol=4 * eps, atol=2 * tiny)
    assert y[-1] == 0.0 and y[-2] == 0.0 and y[-3] == 0.0


# ----------------------------------------------------------------------------
# Layouts: strided views are accepted and read correctly.

def views(rng, dtype):
    base = rand(rng, (6, 40, 50), dtype)
    return [
        base[:, ::2, :],               # strided middle dim
        base[:, :, ::-1],              # negative stride
        base.transpose(2, 0, 1),       # permuted
        base[1:4, 3:30, 7:45],         # offsets
        np.broadcast_to(base[:1], (3, 40, 50)),  # stride 0
    ]


@pytest.mark.parametrize("name", FNS)
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_non_contiguous(isa, dtype, rng, name, dim):
    for x in views(rng, dtype):
        assert not x.flags.c_contiguous
        check_forward(name, x, dim)
        g = rand(rng, x.shape, dtype, 1.0)[::1]
        g_view = np.asfortranarray(g)
        y = forward(name, np.ascontiguousarray(x), dim)
        y_view = np.asfortranarray(y)
        expected = softmax_backward_ref(g, x, dim, name == "log_softmax")
        n = x.shape[dim]
        for output in (None, y_view):
            assert_close(backward(name, g_view, x, dim, output), expected, dtype, n,
                         scale=1.0 + np.abs(g).max() * n)


# ----------------------------------------------------------------------------
# Finite differences (float64): the backward is the gradient of the forward.

@pytest.mark.parametrize("name", FNS)
@pytest.mark.parametrize("shape,dim", [((5,), 0), ((3, 7), 1), ((3, 7), 0), ((2, 3, 4), 1), ((2, 3, 4), -1)])
def test_finite_differences(isa, rng, name, shape, dim):
    x = rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    h = 1e-6
    numeric = np.zeros(shape)
    for idx in np.ndindex(shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        numeric[idx] = (np.sum(g * forward(name, xp, dim)) - np.sum(g * forward(name, xm, dim))) / (2 * h)
    y = forward(name, x, dim)
    for output in (None, y):
        np.testing.assert_allclose(backward(name, g, x, dim, output), numeric, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------
# Threads: each row is computed the same way whatever the thread count.

def test_thread_count_independent(best_isa, restore_threads, rng):
    x = rand(rng, (500, 300), np.float32)
    outs = []
    for threads in (1, 2):
        tfg.set_num_threads(threads)
        outs.append((tfg.ops.softmax(x, 1), tfg.ops.log_softmax(x, 0)))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------
# Errors.

@pytest.mark.parametrize("name", FNS)
def test_errors(name):
    f = getattr(tfg.ops, name)
    fb = getattr(tfg.ops, name + "_backward")
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=rf"{name}: dim 2 is out of range.*\(2, 3\).*\[-2, 1\]"):
        f(x, 2)
    with pytest.raises(ValueError, match=rf"{name}: dim -3 is out of range"):
        f(x, -3)
    with pytest.raises(ValueError, match=r"dim 1 is out of range.*shape \(\)"):
        f(np.array(1.0, np.float32), 1)
    with pytest.raises(TypeError, match=rf"{name}: argument 'x' has dtype int64; expected float32 or float64"):
        f(np.zeros((2, 3), np.int64), 1)
    with pytest.raises(TypeError, match=rf"{name}: argument 'x' must be a NumPy array"):
        f([1.0, 2.0], 0)
    with pytest.raises(TypeError, match=r"'grad_output' has dtype float64 but 'x' has dtype float32"):
        fb(np.zeros((2, 3), np.float64), x, 1)
    with pytest.raises(ValueError, match=r"'grad_output' has shape \(3, 2\) but 'x' has shape \(2, 3\)"):
        fb(np.zeros((3, 2), np.float32), x, 1)
    with pytest.raises(ValueError, match=r"'output' has shape \(2, 4\) but 'x' has shape \(2, 3\)"):
        fb(x, x, 1, np.zeros((2, 4), np.float32))
    with pytest.raises(TypeError, match=r"'output' has dtype float64"):
        fb(x, x, 1, np.zeros((2, 3), np.float64))
    with pytest.raises(ValueError, match=rf"{name}_backward: dim 5 is out of range"):
        fb(x, x, 5)


# ----------------------------------------------------------------------------
# PyTorch, when installed.

@pytest.mark.parametrize("name", FNS)
def test_against_torch(best_isa, dtype, rng, name):
    torch = pytest.importorskip("torch")
    for shape, dim in [((64, 1000), 1), ((8, 30, 5, 7), 1), ((33, 9), 0)]:
        x = rand(rng, shape, dtype)
        x.reshape(-1)[:3] = [-np.inf, 1e4, -1e4]
        tx = torch.from_numpy(x).requires_grad_()
        ty = getattr(torch.nn.functional, name)(tx, dim)
        g = rand(rng, shape, dtype, 1.0)
        (tgx,) = torch.autograd.grad(ty, tx, torch.from_numpy(g))
        y = forward(name, x, dim)
        n = shape[dim]
        assert_close(y, ty.detach().numpy().astype(np.float64), dtype, 2 * n, log=name == "log_softmax")
        assert_close(backward(name, g, x, dim), tgx.numpy().astype(np.float64), dtype, 2 * n,
                     scale=1.0 + np.abs(g).max() * n)
