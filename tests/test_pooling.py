"""tfg.ops 2-D pooling (max_pool2d, avg_pool2d, adaptive_avg_pool2d and their
backwards) against the float64 loop references, on every ISA level and both
dtypes: padded borders, strides 1, 2 and others, dilation, ceil_mode, widths
on both sides of the vector width, ties, NaN and -inf, 3-D input, empty
batches, non-contiguous views, the scalar fallbacks, finite differences, and
the errors."""
import zlib

import numpy as np
import pytest

import tensorforge as tfg
from reference import (adaptive_avg_pool2d_backward_ref, adaptive_avg_pool2d_ref,
                       avg_pool2d_backward_ref, avg_pool2d_ref, max_pool2d_backward_ref,
                       max_pool2d_ref, sum_tolerance)

ops = tfg.ops

# (shape, kernel_size, stride, padding, dilation, ceil_mode). Widths 66-71 give
# rows with more outputs than a vector holds (read in place when no window
# touches a border), narrow ones fewer (padded row buffers).
MAX_CASES = [
    ((2, 3, 8, 8), 2, None, 0, 1, False),
    ((2, 3, 13, 17), 3, 2, 1, 1, False),
    ((2, 3, 13, 17), 3, 2, 1, 1, True),
    ((1, 2, 9, 70), 2, 2, 0, 1, False),
    ((1, 2, 7, 71), 3, 2, 1, 1, True),
    ((1, 2, 6, 66), 3, 1, 1, 1, False),
    ((1, 2, 6, 66), 3, 1, 0, 1, False),
    ((1, 2, 6, 40), 2, 1, 0, 1, True),
    ((2, 2, 11, 29), (2, 3), (1, 2), (1, 1), 1, False),
    ((2, 2, 11, 29), (3, 2), (2, 3), (1, 0), (1, 2), True),
    ((1, 3, 12, 50), 3, 3, 1, 1, False),
    ((1, 3, 12, 50), 3, 3, 1, 1, True),
    ((1, 2, 10, 37), 3, 2, 1, 2, False),
    ((1, 2, 10, 68), 3, 2, 0, 2, False),
    ((1, 2, 10, 37), 1, 2, 0, 1, False),
    ((1, 2, 10, 68), 1, 2, 0, 1, False),
    ((1, 2, 4, 37), 1, 1, 0, 1, False),
    ((1, 1, 1, 1), 1, None, 0, 1, False),
    ((1, 1, 1, 1), 3, 1, 1, 1, False),
    ((3, 5, 5), 2, None, 0, 1, True),
    ((1, 1, 5, 5), 2, 2, 1, 1, True),
    ((1, 1, 2, 2), 2, 1, 1, 3, False),
    ((1, 2, 3, 9), 2, 1, 1, (1, 5), False),
    ((2, 2, 5, 19), 4, 3, 2, 1, True),
    ((1, 2, 3, 100), 5, 4, 2, 1, True),
    ((1, 1, 33, 33), 7, 5, 3, 1, False),
]

# (shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [
    ((2, 3, 8, 8), 2, None, 0, False, True, None),
    ((2, 3, 13, 17), 3, 2, 1, False, True, None),
    ((2, 3, 13, 17), 3, 2, 1, True, True, None),
    ((2, 3, 13, 17), 3, 2, 1, True, False, None),
    ((1, 2, 6, 66), 3, 1, 1, False, False, None),
    ((1, 2, 6, 66), 2, 1, 0, False, True, None),
    ((1, 2, 9, 70), 2, 2, 0, False, True, None),
    ((1, 2, 7, 71), 3, 2, 1, True, True, None),
    ((1, 2, 7, 71), 2, 2, 1, True, False, None),
    ((2, 2, 11, 29), (2, 3), (1, 2), (1, 1), False, False, None),
    ((1, 3, 12, 50), 3, 3, 1, True, True, None),
    ((1, 3, 12, 50), 3, 3, 1, False, True, 5),
    ((1, 2, 6, 37), 1, 2, 0, False, True, None),
    ((1, 2, 6, 68), 1, 2, 0, False, True, None),
    ((1, 1, 1, 1), 3, 1, 1, False, True, None),
    ((1, 1, 1, 1), 3, 1, 1, False, False, None),
    ((3, 6, 6), 3, 2, 1, True, True, None),
    ((2, 2, 5, 19), 4, 3, 2, True, False, -3),
    ((1, 1, 33, 33), 7, 5, 3, False, True, None),
]

ADAPTIVE_CASES = [
    ((2, 3, 8, 8), 1),
    ((2, 3, 8, 8), (2, 4)),
    ((2, 3, 13, 17), (5, 7)),
    ((2, 3, 13, 17), (4, 1)),
    ((1, 2, 9, 100), (2, 1)),
    ((2, 3, 13, 17), (13, 17)),
    ((1, 2, 5, 7), (8, 11)),
    ((3, 9, 10), (None, 4)),
    ((2, 2, 7, 70), (3, None)),
    ((1, 2, 56, 56), 7),
    ((1, 1, 1, 1), (3, 2)),
    ((2, 3, 6, 6), (0, 2)),
]

_refs = {}


def cached(key, compute):
    if key not in _refs:
        _refs[key] = compute()
    return _refs[key]


def data(shape, kind="normal", seed=0):
    """Deterministic test data (the same on every ISA level), float64 values that
    float32 holds exactly. "ties": small integers, so windows hold equal maxima."""
    rng = np.random.default_rng(zlib.crc32(repr((shape, kind, seed)).encode()))
    if kind == "ties":
        return rng.integers(-3, 4, size=shape).astype(np.float64)
    return rng.standard_normal(shape).astype(np.float32).astype(np.float64)


def case_id(case):
    return "-".join(str(v).replace(" ", "") for v in case)


def assert_sum_close(actual, expected, dtype, terms, *arrays):
    assert isinstance(actual, np.ndarray) and actual.dtype == np.dtype(dtype), actual.dtype
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    rtol, atol = sum_tolerance(dtype, terms, *arrays)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol)


def window_area(kernel_size):
    k = kernel_size if isinstance(kernel_size, tuple) else (kernel_size, kernel_size)
    return k[0] * k[1]


# ----------------------------------------------------------------------------
# max_pool2d

@pytest.mark.parametrize("case", MAX_CASES, ids=case_id)
def test_max_pool2d(isa, dtype, case):
    shape, k, s, p, d, ceil = case
    x64 = data(shape, "ties")
    ref_out, ref_ind = cached(("max", case), lambda: max_pool2d_ref(x64, k, s, p, d, ceil))
    x = x64.astype(dtype)
    out, ind = ops.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    assert out.dtype == dtype and ind.dtype == np.int64
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(ops.max_pool2d(x, k, s, p, d, ceil), ref_out)


@pytest.mark.parametrize("case", MAX_CASES, ids=case_id)
def test_max_pool2d_backward(isa, dtype, case):
    shape, k, s, p, d, ceil = case
    x64 = data(shape, "ties")
    ref_out, ref_ind = cached(("max", case), lambda: max_pool2d_ref(x64, k, s, p, d, ceil))
    g64 = data(ref_out.shape, "normal", 1)
    expected = cached(("max_bwd", case),
                      lambda: max_pool2d_backward_ref(g64, x64, k, s, p, d, ceil, ref_ind))
    x, g = x64.astype(dtype), g64.astype(dtype)
    (recomputed,) = ops.max_pool2d_backward(g, x, k, s, p, d, ceil)
    (given,) = ops.max_pool2d_backward(g, x, k, s, p, d, ceil, indices=ref_ind)
    terms = window_area(k)  # the most outputs that can pick one input element
    assert_sum_close(recomputed, expected, dtype, terms, g64)
    np.testing.assert_array_equal(given, recomputed)


def test_max_pool2d_nan_inf(isa, dtype):
    """PyTorch's rule: a tap wins when v > best or v is NaN (the last NaN wins);
    an all -inf window points at its first in-bounds element."""
    nan, inf = np.nan, np.inf
    rows = [
        [1, nan, 2, nan, 5, 0, -inf, -inf, -inf, 7, 7, 3, -0.0, 0.0, 0.0, -0.0],
        [nan, 1, 9, 9, -inf, -inf, -inf, -inf, inf, 1, nan, inf, 4, 4, 4, 4],
    ]
    x = np.array(rows, dtype=dtype).reshape(1, 1, 2, 16)
    for kwargs in [dict(kernel_size=2), dict(kernel_size=(2, 4)), dict(kernel_size=3, stride=1, padding=1),
                   dict(kernel_size=(1, 3), stride=(1, 2), padding=(0, 1))]:
        out, ind = ops.max_pool2d(x, return_indices=True, **kwargs)
        ref_out, ref_ind = max_pool2d_ref(x, **kwargs)
        np.testing.assert_array_equal(out, ref_out)
        np.testing.assert_array_equal(ind, ref_ind)
        np.testing.assert_array_equal(np.signbit(out), np.signbit(ref_out))
    # Wide rows with NaN and -inf scattered through vector groups and borders.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 9, 70)).astype(dtype)
    x.flat[rng.choice(x.size, 60, replace=False)] = np.nan
    x.flat[rng.choice(x.size, 60, replace=False)] = -np.inf
    x[0, 0, :, :8] = -np.inf
    for k, s, p in [(2, 2, 0), (3, 2, 1), (3, 1, 1)]:
        out, ind = ops.max_pool2d(x, k, s, p, return_indices=True)
        ref_out, ref_ind = max_pool2d_ref(x, k, s, p)
        np.testing.assert_array_equal(out, ref_out)
        np.testing.assert_array_equal(ind, ref_ind)


def test_max_pool2d_empty_windows(isa, dtype):
    """With dilation a window can hold no input element: -inf and index -1,
    which the backward skips."""
    x = np.arange(1, 5, dtype=dtype).reshape(1, 1, 2, 2)
    out, ind = ops.max_pool2d(x, 2, 1, 1, 3, return_indices=True)
    np.testing.assert_array_equal(out, [[[[-np.inf]]]])
    np.testing.assert_array_equal(ind, [[[[-1]]]])
    g = np.ones_like(out)
    for indices in (None, ind):
        (gx,) = ops.max_pool2d_backward(g, x, 2, 1, 1, 3, indices=indices)
        np.testing.assert_array_equal(gx, np.zeros_like(x))


def test_max_pool2d_scalar_fallbacks(isa, dtype, rng):
    """Geometries the vector path declines: more than 2^16 taps per window, and
    a stride so large the padded rows would be mostly padding."""
    x = rng.standard_normal((1, 2, 1, 70000)).astype(dtype)
    out, ind = ops.max_pool2d(x, (1, 70000), return_indices=True)
    np.testing.assert_array_equal(out[..., 0, 0], x.max(axis=(2, 3)))
    np.testing.assert_array_equal(ind[..., 0, 0], x.reshape(2, -1).argmax(axis=1)[None])
    x = rng.standard_normal((1, 2, 3, 2000)).astype(dtype)
    for ceil in (False, True):
        out, ind = ops.max_pool2d(x, 2, 1000, 1, 1, ceil, return_indices=True)
        ref_out, ref_ind = max_pool2d_ref(x, 2, 1000, 1, 1, ceil)
        np.testing.assert_array_equal(out, ref_out)
        np.testing.assert_array_equal(ind, ref_ind)
        out = ops.avg_pool2d(x, 2, 1000, 1, ceil)
        assert_sum_close(out, avg_pool2d_ref(x, 2, 1000, 1, ceil), dtype, 4, x)


# ----------------------------------------------------------------------------
# avg_pool2d

@pytest.mark.parametrize("case", AVG_CASES, ids=case_id)
def test_avg_pool2d(isa, dtype, case):
    shape, k, s, p, ceil, cip, div = case
    x64 = data(shape)
    expected = cached(("avg", case), lambda: avg_pool2d_ref(x64, k, s, p, ceil, cip, div))
    out = ops.avg_pool2d(x64.astype(dtype), k, s, p, ceil, cip, div)
    assert_sum_close(out, expected, dtype, window_area(k), x64)


@pytest.mark.parametrize("case", AVG_CASES, ids=case_id)
def test_avg_pool2d_backward(isa, dtype, case):
    shape, k, s, p, ceil, cip, div = case
    x64 = data(shape)
    out_shape = cached(("avg", case), lambda: avg_pool2d_ref(x64, k, s, p, ceil, cip, div)).shape
    g64 = data(out_shape, "normal", 1)
    expected = cached(("avg_bwd", case),
                      lambda: avg_pool2d_backward_ref(g64, x64, k, s, p, ceil, cip, div))
    (gx,) = ops.avg_pool2d_backward(g64.astype(dtype), x64.astype(dtype), k, s, p, ceil, cip, div)
    assert_sum_close(gx, expected, dtype, window_area(k), g64)


# ----------------------------------------------------------------------------
# adaptive_avg_pool2d

@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=case_id)
def test_adaptive_avg_pool2d(isa, dtype, case):
    shape, size = case
    x64 = data(shape)
    expected = cached(("adaptive", case), lambda: adaptive_avg_pool2d_ref(x64, size))
    out = ops.adaptive_avg_pool2d(x64.astype(dtype), size)
    assert_sum_close(out, expected, dtype, shape[-1] * shape[-2], x64)


@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=case_id)
def test_adaptive_avg_pool2d_backward(isa, dtype, case):
    shape, size = case
    x64 = data(shape)
    out_shape = cached(("adaptive", case), lambda: adaptive_avg_pool2d_ref(x64, size)).shape
    g64 = data(out_shape, "normal", 1)
    expected = cached(("adaptive_bwd", case),
                      lambda: adaptive_avg_pool2d_backward_ref(g64, x64, size))
    (gx,) = ops.adaptive_avg_pool2d_backward(g64.astype(dtype), x64.astype(dtype), size)
    assert_sum_close(gx, expected, dtype, out_shape[-1] * out_shape[-2], g64)


# ----------------------------------------------------------------------------
# Gradients against central finite differences (float64)

def finite_difference(f, x, g, eps=1e-6):
    """d/dx sum(f(x) * g) by central differences, one element at a time."""
    grad = np.zeros_like(x)
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += eps
        xm.flat[i] -= eps
        grad.flat[i] = ((f(xp) * g).sum() - (f(xm) * g).sum()) / (2 * eps)
    return grad


@pytest.mark.parametrize("k,s,p,d,ceil", [(2, None, 0, 1, False), (3, 2, 1, 1, True),
                                          ((2, 3), (1, 2), (1, 0), (2, 1), False)])
def test_max_pool2d_gradient_fd(best_isa, rng, k, s, p, d, ceil):
    # Distinct values far apart, so a step of eps never changes an argmax.
    x = rng.permutation(2 * 7 * 9).reshape(1, 2, 7, 9) * 0.01
    out = ops.max_pool2d(x, k, s, p, d, ceil)
    g = rng.standard_normal(out.shape)
    (gx,) = ops.max_pool2d_backward(g, x, k, s, p, d, ceil)
    fd = finite_difference(lambda v: ops.max_pool2d(v, k, s, p, d, ceil), x, g)
    np.testing.assert_allclose(gx, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("k,s,p,ceil,cip,div", [(2, None, 0, False, True, None),
                                                (3, 2, 1, True, False, None),
                                                ((3, 2), (2, 1), (1, 1), True, True, 7)])
def test_avg_pool2d_gradient_fd(best_isa, rng, k, s, p, ceil, cip, div):
    x = rng.standard_normal((1, 2, 7, 9))
    out = ops.avg_pool2d(x, k, s, p, ceil, cip, div)
    g = rng.standard_normal(out.shape)
    (gx,) = ops.avg_pool2d_backward(g, x, k, s, p, ceil, cip, div)
    fd = finite_difference(lambda v: ops.avg_pool2d(v, k, s, p, ceil, cip, div), x, g)
    np.testing.assert_allclose(gx, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("size", [(3, 4), (9, 11), 1])
def test_adaptive_avg_pool2d_gradient_fd(best_isa, rng, size):
    x = rng.standard_normal((1, 2, 7, 9))
    out = ops.adaptive_avg_pool2d(x, size)
    g = rng.standard_normal(out.shape)
    (gx,) = ops.adaptive_avg_pool2d_backward(g, x, size)
    fd = finite_difference(lambda v: ops.adaptive_avg_pool2d(v, size), x, g)
    np.testing.assert_allclose(gx, fd, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------
# Layouts, empty sizes, threads

def test_non_contiguous(isa, dtype, rng):
    base = rng.standard_normal((3, 2, 14, 24)).astype(dtype)
    views = [base[:, :, ::2, 1::2], base.transpose(1, 0, 3, 2), base[::-1, :, 3:, ::-1]]
    for x in views:
        assert not x.flags.c_contiguous
        out, ind = ops.max_pool2d(x, 3, 2, 1, return_indices=True)
        ref_out, ref_ind = max_pool2d_ref(x, 3, 2, 1)
        np.testing.assert_array_equal(out, ref_out)
        np.testing.assert_array_equal(ind, ref_ind)
        g = rng.standard_normal(out.shape[::-1]).astype(dtype).T  # a transposed gradient
        ind_t = np.ascontiguousarray(ind.T).T
        (gx,) = ops.max_pool2d_backward(g, x, 3, 2, 1, indices=ind_t)
        assert_sum_close(gx, max_pool2d_backward_ref(g, x, 3, 2, 1), dtype, 9, g)
        assert_sum_close(ops.avg_pool2d(x, 3, 2, 1), avg_pool2d_ref(x, 3, 2, 1), dtype, 9, x)
        (gx,) = ops.avg_pool2d_backward(g, x, 3, 2, 1)
        assert_sum_close(gx, avg_pool2d_backward_ref(g, x, 3, 2, 1), dtype, 9, g)
        assert_sum_close(ops.adaptive_avg_pool2d(x, (2, 3)), adaptive_avg_pool2d_ref(x, (2, 3)),
                         dtype, x.shape[-1] * x.shape[-2], x)
        g = rng.standard_normal((3, 2, x.shape[1], x.shape[0])).astype(dtype).T
        (gx,) = ops.adaptive_avg_pool2d_backward(g, x, (2, 3))
        assert_sum_close(gx, adaptive_avg_pool2d_backward_ref(g, x, (2, 3)), dtype, 6, g)


def test_inputs_untouched_and_fresh_outputs(rng):
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    before = x.copy()
    out, ind = ops.max_pool2d(x, 2, return_indices=True)
    ops.avg_pool2d(x, 2)
    ops.adaptive_avg_pool2d(x, 3)
    np.testing.assert_array_equal(x, before)
    assert out.flags.c_contiguous and out.flags.writeable and not np.shares_memory(out, x)
    assert ind.flags.c_contiguous


@pytest.mark.parametrize("shape", [(0, 3, 8, 8), (0, 0, 8, 8)])
def test_empty_batch(dtype, shape):
    x = np.zeros(shape, dtype)
    if shape[1] == 0:  # only adaptive pooling takes zero channels
        assert ops.adaptive_avg_pool2d(x, 2).shape == (0, 0, 2, 2)
        return
    out, ind = ops.max_pool2d(x, 2, return_indices=True)
    assert out.shape == ind.shape == (0, 3, 4, 4)
    assert ops.max_pool2d_backward(out, x, 2)[0].shape == shape
    assert ops.max_pool2d_backward(out, x, 2, indices=ind)[0].shape == shape
    out = ops.avg_pool2d(x, 3, 2, 1, True)
    assert out.shape == (0, 3, 5, 5) and out.dtype == dtype
    assert ops.avg_pool2d_backward(out, x, 3, 2, 1, True)[0].shape == shape
    out = ops.adaptive_avg_pool2d(x, (3, None))
    assert out.shape == (0, 3, 3, 8)
    assert ops.adaptive_avg_pool2d_backward(out, x, (3, None))[0].shape == shape


def test_adaptive_zero_channels_and_empty_output(dtype):
    x = np.ones((2, 0, 5, 5), dtype)
    assert ops.adaptive_avg_pool2d(x, (2, 3)).shape == (2, 0, 2, 3)
    x = np.ones((2, 3, 5, 5), dtype)
    out = ops.adaptive_avg_pool2d(x, (0, 3))
    assert out.shape == (2, 3, 0, 3)
    (gx,) = ops.adaptive_avg_pool2d_backward(out, x, (0, 3))
    np.testing.assert_array_equal(gx, np.zeros_like(x))


def test_threads_agree(restore_threads, rng):
    """Many planes split into runs over the threads give exactly the one-thread result."""
    x = rng.standard_normal((8, 37, 9, 11)).astype(np.float32)
    g = rng.standard_normal((8, 37, 5, 6)).astype(np.float32)
    results = []
    for threads in (1, 2):
        tfg.set_num_threads(threads)
        results.append([ops.max_pool2d(x, 3, 2, 1, return_indices=True)[1],
                        ops.max_pool2d_backward(g, x, 3, 2, 1)[0],
                        ops.avg_pool2d(x, 3, 2, 1), ops.avg_pool2d_backward(g, x, 3, 2, 1)[0],
                        ops.adaptive_avg_pool2d(x, (5, 6)),
                        ops.adaptive_avg_pool2d_backward(g, x, (5, 6))[0]])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_options_as_pairs_lists_and_defaults(rng):
    x = rng.standard_normal((1, 2, 9, 10)).astype(np.float32)
    ref = ops.max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1))
    for k, s, p, d in [(3, 2, 1, 1), ([3, 3], [2, 2], [1], (1,)), ((3,), np.int64(2), 1, 1)]:
        np.testing.assert_array_equal(ops.max_pool2d(x, k, s, p, d), ref)
    np.testing.assert_array_equal(ops.max_pool2d(x, 2, stride=()), ops.max_pool2d(x, 2))
    np.testing.assert_array_equal(ops.avg_pool2d(x, 2, stride=[]), ops.avg_pool2d(x, 2, 2))
    np.testing.assert_array_equal(ops.adaptive_avg_pool2d(x, [None, 5]),
                                  ops.adaptive_avg_pool2d(x, (9, 5)))


# ----------------------------------------------------------------------------
# Errors: TypeError / ValueError naming the argument and what it got

F32 = np.float32
X = np.ones((1, 2, 6, 6), F32)
G = np.ones((1, 2, 3, 3), F32)
IND = np.zeros((1, 2, 3, 3), np.int64)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: ops.max_pool2d(np.ones((6, 6), F32), 2), ValueError, r"'x' must be 3-D .* \(6, 6\)"),
    (lambda: ops.max_pool2d(np.ones((1, 1, 1, 6, 6), F32), 2), ValueError, r"'x' must be 3-D"),
    (lambda: ops.max_pool2d(np.ones((1, 0, 6, 6), F32), 2), ValueError, r"empty in dimension 1"),
    (lambda: ops.avg_pool2d(np.ones((0, 6, 6), F32), 2), ValueError, r"empty in dimension 0"),
    (lambda: ops.adaptive_avg_pool2d(np.ones((1, 1, 0, 6), F32), 2), ValueError, r"empty in dimension 2"),
    (lambda: ops.max_pool2d(X, 0), ValueError, r"'kernel_size' must be positive, got \(0,\)"),
    (lambda: ops.max_pool2d(X, (2, -1)), ValueError, r"'kernel_size' must be positive, got \(2, -1\)"),
    (lambda: ops.max_pool2d(X, 2, 0), ValueError, r"'stride' must be positive"),
    (lambda: ops.avg_pool2d(X, 2, (1, 0)), ValueError, r"'stride' must be positive"),
    (lambda: ops.max_pool2d(X, 2, 1, 0, 0), ValueError, r"'dilation' must be positive"),
    (lambda: ops.max_pool2d(X, 2, 1, -1), ValueError, r"'padding' must be non-negative"),
    (lambda: ops.max_pool2d(X, 3, 1, 2), ValueError, r"at most half of 'kernel_size'.*\(2,\).*\(3,\)"),
    (lambda: ops.avg_pool2d(X, (2, 4), 1, (1, 3)), ValueError, r"at most half"),
    (lambda: ops.max_pool2d(X, 7), ValueError, r"output would be empty.*\(1, 2, 6, 6\).* 0 x 0"),
    (lambda: ops.max_pool2d(X, 3, 1, 0, 3), ValueError, r"output would be empty"),
    (lambda: ops.max_pool2d(X, (2, 2, 2)), ValueError, r"'kernel_size' must be an int or a pair"),
    (lambda: ops.max_pool2d(X, ()), ValueError, r"'kernel_size' must be an int or a pair"),
    (lambda: ops.max_pool2d(X, 2.5), TypeError, r"'kernel_size' must be an int or a tuple of ints, got float"),
    (lambda: ops.max_pool2d(X, True), TypeError, r"'kernel_size' .* got bool"),
    (lambda: ops.max_pool2d(X, (2, "a")), TypeError, r"'kernel_size' .* element of type str"),
    (lambda: ops.max_pool2d(X, 2, padding=None), TypeError, r"'padding'"),
    (lambda: ops.max_pool2d(X, 2**64), ValueError, r"'kernel_size' holds 18446744073709551616"),
    (lambda: ops.max_pool2d(X, 2**40), ValueError, r"'kernel_size' must be at most 2147483647"),
    (lambda: ops.max_pool2d(X.astype(np.int64), 2), TypeError, r"'x' has dtype int64"),
    (lambda: ops.max_pool2d([[1.0]], 2), TypeError, r"'x' must be a NumPy array"),
    (lambda: ops.avg_pool2d(X, 2, divisor_override=0), ValueError, r"'divisor_override' must not be zero"),
    (lambda: ops.avg_pool2d(X, 2, divisor_override=1.5), TypeError, r"'divisor_override' must be an int or None"),
    (lambda: ops.adaptive_avg_pool2d(X, -1), ValueError, r"'output_size' must be non-negative, got \(-1, -1\)"),
    (lambda: ops.adaptive_avg_pool2d(X, (2, 2, 2)), ValueError, r"'output_size' must be an int or a pair"),
    (lambda: ops.adaptive_avg_pool2d(X, "a"), TypeError, r"'output_size' must be an int or None"),
    (lambda: ops.max_pool2d_backward(G.astype(np.float64), X, 2), TypeError,
     r"'grad_output' has dtype float64 but 'x' has dtype float32"),
    (lambda: ops.max_pool2d_backward(np.ones((1, 2, 3, 4), F32), X, 2), ValueError,
     r"'grad_output' must have the output's shape \(1, 2, 3, 3\).*got \(1, 2, 3, 4\)"),
    (lambda: ops.avg_pool2d_backward(np.ones((2, 3, 3), F32), X, 2), ValueError, r"'grad_output' must have"),
    (lambda: ops.adaptive_avg_pool2d_backward(G, X, 2), ValueError, r"\(1, 2, 2, 2\).*got \(1, 2, 3, 3\)"),
    (lambda: ops.max_pool2d_backward(G, X, 2, indices=IND.astype(np.int32)), TypeError,
     r"'indices' must have dtype int64, got int32"),
    (lambda: ops.max_pool2d_backward(G, X, 2, indices=IND[:, :, :2]), ValueError,
     r"'indices' must have the output's shape \(1, 2, 3, 3\), got \(1, 2, 2, 3\)"),
    (lambda: ops.max_pool2d_backward(G, X, 2, indices=np.full_like(IND, 36)), ValueError,
     r"'indices' holds 36 at flat position 0.*\[0, 36\)"),
    (lambda: ops.max_pool2d_backward(G, X, 2, indices=np.where(np.arange(18).reshape(IND.shape) == 11, -2, IND)),
     ValueError, r"'indices' holds -2 at flat position 11"),
])
def test_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# ----------------------------------------------------------------------------
# Against PyTorch, when it is importable (not in CI)

@pytest.mark.parametrize("case", [c for c in MAX_CASES if c[4] == 1], ids=case_id)
def test_against_torch(best_isa, case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape, k, s, p, _, ceil = case
    x = data(shape).astype(np.float32)
    xt = torch.from_numpy(x)
    out, ind = ops.max_pool2d(x, k, s, p, 1, ceil, return_indices=True)
    tout, tind = F.max_pool2d(xt, k, s, p, 1, ceil, return_indices=True)
    np.testing.assert_array_equal(out, tout.numpy())
    np.testing.assert_array_equal(ind, tind.numpy())
    for cip in (True, False):
        np.testing.assert_allclose(ops.avg_pool2d(x, k, s, p, ceil, cip),
                                   F.avg_pool2d(xt, k, s, p, ceil, cip).numpy(), rtol=1e-6, atol=1e-6)
    g = data(tuple(tout.shape), "normal", 1).astype(np.float32)
    xg = xt.clone().requires_grad_()
    F.avg_pool2d(xg, k, s, p, ceil, False).backward(torch.from_numpy(g))
    np.testing.assert_allclose(ops.avg_pool2d_backward(g, x, k, s, p, ceil, False)[0], xg.grad.numpy(),
                               rtol=1e-6, atol=1e-6)
    size = (shape[-2] // 2 + 1, shape[-1] // 3 + 1)
    np.testing.assert_allclose(ops.adaptive_avg_pool2d(x, size), F.adaptive_avg_pool2d(xt, size).numpy(),
                               rtol=1e-6, atol=1e-6)
