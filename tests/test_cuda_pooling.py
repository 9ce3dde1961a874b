"""The CUDA pooling kernels (csrc/ops/pooling/cuda/pooling.cu) on the SIMT
emulation, against the float64 loop references of the CPU tests, on the CPU
tests' geometries (padding, strides, dilation, ceil_mode, count_include_pad,
divisor_override, adaptive bins that overlap or repeat): max_pool2d with
indices (ties, NaN, -inf, windows with no input element), avg_pool2d,
adaptive_avg_pool2d, each forward and backward (the gather backwards, max from
given or recomputed indices), empty batches and outputs, and the CPU op's
argument errors.

Runs only against the emulated test build (tools/test_emulated.sh)."""
import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import _C
from reference import (adaptive_avg_pool2d_backward_ref, adaptive_avg_pool2d_ref,
                       avg_pool2d_backward_ref, avg_pool2d_ref, max_pool2d_backward_ref,
                       max_pool2d_ref)
from test_pooling import ADAPTIVE_CASES, AVG_CASES, MAX_CASES, assert_sum_close, case_id, data, window_area

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAX_CASES, ids=case_id)
def test_max_pool2d(dtype, case):
    shape, k, s, p, d, ceil = case
    x64 = data(shape, "ties")
    ref_out, ref_ind = max_pool2d_ref(x64, k, s, p, d, ceil)
    x = x64.astype(dtype)
    out, ind = _C._cuda_max_pool2d(x, k, s, p, d, ceil, True)
    assert out.dtype == dtype and ind.dtype == np.int64
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(_C._cuda_max_pool2d(x, k, s, p, d, ceil), ref_out)

    g64 = data(ref_out.shape, "normal", 1)
    expected = max_pool2d_backward_ref(g64, x64, k, s, p, d, ceil, ref_ind)
    g = g64.astype(dtype)
    (recomputed,) = _C._cuda_max_pool2d_backward(g, x, k, s, p, d, ceil)
    (given,) = _C._cuda_max_pool2d_backward(g, x, k, s, p, d, ceil, ref_ind)
    assert_sum_close(recomputed, expected, dtype, window_area(k), g64)
    np.testing.assert_array_equal(given, recomputed)
    # The gather adds in the CPU scatter's order.
    np.testing.assert_array_equal(given, tfg.ops.max_pool2d_backward(g, x, k, s, p, d, ceil, indices=ref_ind)[0])


def test_max_pool2d_nan_inf_and_empty_windows():
    nan, inf = np.nan, np.inf
    rows = [[1, nan, 2, nan, 5, 0, -inf, -inf, -inf, 7, 7, 3, -0.0, 0.0, 0.0, -0.0],
            [nan, 1, 9, 9, -inf, -inf, -inf, -inf, inf, 1, nan, inf, 4, 4, 4, 4]]
    for dtype in DTYPES:
        x = np.array(rows, dtype=dtype).reshape(1, 1, 2, 16)
        for kwargs in [dict(kernel_size=2), dict(kernel_size=(2, 4)), dict(kernel_size=3, stride=1, padding=1),
                       dict(kernel_size=(1, 3), stride=(1, 2), padding=(0, 1))]:
            out, ind = _C._cuda_max_pool2d(x, return_indices=True, **kwargs)
            ref_out, ref_ind = max_pool2d_ref(x, **kwargs)
            np.testing.assert_array_equal(out, ref_out)
            np.testing.assert_array_equal(ind, ref_ind)
            np.testing.assert_array_equal(np.signbit(out), np.signbit(ref_out))
        x = np.arange(1, 5, dtype=dtype).reshape(1, 1, 2, 2)
        out, ind = _C._cuda_max_pool2d(x, 2, 1, 1, 3, return_indices=True)
        np.testing.assert_array_equal(out, [[[[-np.inf]]]])
        np.testing.assert_array_equal(ind, [[[[-1]]]])
        for indices in (None, ind):
            (gx,) = _C._cuda_max_pool2d_backward(np.ones_like(out), x, 2, 1, 1, 3, indices=indices)
            np.testing.assert_array_equal(gx, np.zeros_like(x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", AVG_CASES, ids=case_id)
def test_avg_pool2d(dtype, case):
    shape, k, s, p, ceil, cip, div = case
    x64 = data(shape)
    expected = avg_pool2d_ref(x64, k, s, p, ceil, cip, div)
    out = _C._cuda_avg_pool2d(x64.astype(dtype), k, s, p, ceil, cip, div)
    assert_sum_close(out, expected, dtype, window_area(k), x64)
    g64 = data(expected.shape, "normal", 1)
    (gx,) = _C._cuda_avg_pool2d_backward(g64.astype(dtype), x64.astype(dtype), k, s, p, ceil, cip, div)
    assert_sum_close(gx, avg_pool2d_backward_ref(g64, x64, k, s, p, ceil, cip, div), dtype, window_area(k), g64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=case_id)
def test_adaptive_avg_pool2d(dtype, case):
    shape, size = case
    x64 = data(shape)
    expected = adaptive_avg_pool2d_ref(x64, size)
    out = _C._cuda_adaptive_avg_pool2d(x64.astype(dtype), size)
    assert_sum_close(out, expected, dtype, shape[-1] * shape[-2], x64)
    g64 = data(expected.shape, "normal", 1)
    (gx,) = _C._cuda_adaptive_avg_pool2d_backward(g64.astype(dtype), x64.astype(dtype), size)
    assert_sum_close(gx, adaptive_avg_pool2d_backward_ref(g64, x64, size), dtype,
                     expected.shape[-1] * expected.shape[-2], g64)


def test_empty_and_strided():
    x = np.zeros((0, 3, 8, 8), np.float32)
    out, ind = _C._cuda_max_pool2d(x, 2, return_indices=True)
    assert out.shape == ind.shape == (0, 3, 4, 4)
    assert _C._cuda_max_pool2d_backward(out, x, 2)[0].shape == x.shape
    assert _C._cuda_max_pool2d_backward(out, x, 2, indices=ind)[0].shape == x.shape
    out = _C._cuda_avg_pool2d(x, 3, 2, 1, True)
    assert out.shape == (0, 3, 5, 5) and _C._cuda_avg_pool2d_backward(out, x, 3, 2, 1, True)[0].shape == x.shape
    assert _C._cuda_adaptive_avg_pool2d(np.ones((2, 0, 5, 5)), (2, 3)).shape == (2, 0, 2, 3)
    x = np.ones((2, 3, 5, 5))
    out = _C._cuda_adaptive_avg_pool2d(x, (0, 3))
    assert out.shape == (2, 3, 0, 3)
    np.testing.assert_array_equal(_C._cuda_adaptive_avg_pool2d_backward(out, x, (0, 3))[0], np.zeros_like(x))
    rng = np.random.default_rng(2)
    base = rng.standard_normal((2, 3, 20, 30))
    for v in (base[:, :, ::2, ::-1], base.transpose(0, 1, 3, 2)):
        np.testing.assert_array_equal(_C._cuda_max_pool2d(v, 3, 2, 1), tfg.ops.max_pool2d(v, 3, 2, 1))
        np.testing.assert_allclose(_C._cuda_avg_pool2d(v, 3, 2, 1), tfg.ops.avg_pool2d(v, 3, 2, 1), rtol=1e-14)


def test_errors():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"_cuda_max_pool2d: 'padding' must be at most half of 'kernel_size'"):
        _C._cuda_max_pool2d(x, 2, 1, 2)
    with pytest.raises(TypeError, match=r"_cuda_avg_pool2d: 'kernel_size' must be an int or a tuple of ints"):
        _C._cuda_avg_pool2d(x, "a")
    with pytest.raises(ValueError, match=r"_cuda_avg_pool2d: 'divisor_override' must not be zero"):
        _C._cuda_avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"_cuda_max_pool2d_backward: 'grad_output' must have the output's shape"):
        _C._cuda_max_pool2d_backward(np.zeros((1, 1, 3, 3), np.float32), x, 2)
    g = np.zeros((1, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"'indices' holds 16 at flat position 3; entries must index the input "
                                         r"plane of 4 x 4 elements"):
        _C._cuda_max_pool2d_backward(g, x, 2, indices=np.array([0, 1, 2, 16]).reshape(1, 1, 2, 2))
    with pytest.raises(TypeError, match=r"'indices' must have dtype int64"):
        _C._cuda_max_pool2d_backward(g, x, 2, indices=np.zeros((1, 1, 2, 2), np.int32))
    with pytest.raises(ValueError, match=r"_cuda_adaptive_avg_pool2d: 'x' must be 3-D"):
        _C._cuda_adaptive_avg_pool2d(np.zeros((4, 4)), 2)
