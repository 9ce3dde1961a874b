"""The CUDA conv2d kernels (csrc/ops/conv2d/cuda/conv2d.cu) on the SIMT emulation.

Runs only against the emulated test build (tools/test_emulated.sh); skipped
everywhere else. _C._cuda_conv2d / _C._cuda_conv2d_backward take the
arguments of _C.conv2d / _C.conv2d_backward and are compared with the same
float64 references as the CPU op (tests/test_conv2d.py's cases, plus sizes
that cross the CUDA tiles: more than one row tile, column tile and K step,
and a weight gradient split over several blocks), in both dtypes, with the
output_mask semantics, determinism and the argument errors.
"""
import numpy as np
import pytest

from tensorforge import _C
from reference import conv2d_backward_ref, conv2d_ref
from test_conv2d import CASES, IDS, assert_conv_close, make, reduction_lengths

# Beyond the CPU cases: several tiles of every dimension of the three GEMMs.
CUDA_CASES = [
    ((2, 5, 13, 11), (70, 5, 3, 3), dict(padding=1)),                 # 2 row tiles, 3 column tiles, split dW
    ((1, 36, 6, 7), (9, 12, 3, 3), dict(stride=2, padding=1, groups=3)),  # K = 108: 7 K steps, groups
    ((3, 4, 17, 19), (6, 4, 3, 5), dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1))),
    ((1, 66, 5, 5), (2, 33, 1, 1), dict(groups=2)),                   # input gradient: 2 row tiles
]
CUDA_IDS = [f"{c[0]}x{c[1]}-{'-'.join(f'{k}{v}' for k, v in c[2].items())}" for c in CUDA_CASES]
ALL_CASES, ALL_IDS = CASES + CUDA_CASES, IDS + CUDA_IDS


@pytest.fixture
def rng():
    return np.random.default_rng(6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs,ws,opts", ALL_CASES, ids=ALL_IDS)
def test_forward(dtype, rng, xs, ws, opts):
    x, w, b = make(rng, xs, dtype), make(rng, ws, dtype), make(rng, ws[0], dtype)
    k = ws[1] * ws[2] * ws[3]
    assert_conv_close(_C._cuda_conv2d(x, w, b, **opts), conv2d_ref(x, w, b, **opts), dtype, k, x, w, b)
    assert_conv_close(_C._cuda_conv2d(x, w, **opts), conv2d_ref(x, w, None, **opts), dtype, k, x, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs,ws,opts", ALL_CASES, ids=ALL_IDS)
def test_backward(dtype, rng, xs, ws, opts):
    x, w, b = make(rng, xs, dtype), make(rng, ws, dtype), make(rng, ws[0], dtype)
    out_shape = conv2d_ref(x, w, **opts).shape
    gy = make(rng, out_shape, dtype)
    gx, gw, gb = _C._cuda_conv2d_backward(gy, x, w, b, **opts)
    rx, rw, rb = conv2d_backward_ref(gy, x, w, **opts)
    _, k_in, k_w = reduction_lengths(xs, ws, out_shape, opts.get("groups", 1))
    assert_conv_close(gx, rx, dtype, k_in, gy, w)
    assert_conv_close(gw, rw, dtype, k_w, gy, x)
    assert_conv_close(gb, rb, dtype, k_w, gy, np.ones(1))


@pytest.mark.parametrize("mask", [(True, False, False), (False, True, False), (False, False, True),
                                  (False, False, False)])
def test_backward_output_mask(rng, mask):
    x, w, b = make(rng, (2, 4, 6, 5), np.float64), make(rng, (3, 4, 3, 3), np.float64), np.zeros(3)
    gy = make(rng, (2, 3, 4, 3), np.float64)
    got = _C._cuda_conv2d_backward(gy, x, w, b, output_mask=mask)
    full = conv2d_backward_ref(gy, x, w)
    for want, g, r in zip(mask, got, full):
        if want:
            np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)
        else:
            assert g is None
    assert _C._cuda_conv2d_backward(gy, x, w, None)[2] is None  # no bias, no bias gradient


def test_deterministic(rng):
    """The weight gradient is split over blocks; the sums must not depend on timing."""
    x, w = make(rng, (4, 6, 15, 14), np.float32), make(rng, (10, 6, 3, 3), np.float32)
    gy = make(rng, (4, 10, 15, 14), np.float32)
    first = _C._cuda_conv2d_backward(gy, x, w, np.zeros(10, np.float32), padding=1)
    for _ in range(2):
        again = _C._cuda_conv2d_backward(gy, x, w, np.zeros(10, np.float32), padding=1)
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)
    rx, rw, rb = conv2d_backward_ref(gy, x, w, padding=1)
    assert_conv_close(first[1], rw, np.float32, 4 * 15 * 14, gy, x)


def test_unbatched_and_non_contiguous(rng):
    x, w = make(rng, (3, 8, 7), np.float64), make(rng, (4, 3, 3, 3), np.float64)
    y = _C._cuda_conv2d(x, w, padding=1)
    np.testing.assert_allclose(y, conv2d_ref(x, w, padding=1), rtol=1e-12, atol=1e-12)
    gx, gw, _ = _C._cuda_conv2d_backward(np.ones_like(y), x, w, padding=1)
    rx, rw, _ = conv2d_backward_ref(np.ones_like(y), x, w, padding=1)
    np.testing.assert_allclose(gx, rx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, rw, rtol=1e-12, atol=1e-12)
    xs = make(rng, (2, 10, 9, 12), np.float32)[:, ::2, :, 1:11]
    wt = np.ascontiguousarray(make(rng, (5, 6, 3, 3), np.float32)).transpose(1, 0, 2, 3)
    gy = make(rng, (2, 6, 10, 9), np.float32).transpose(0, 1, 3, 2)
    assert_conv_close(_C._cuda_conv2d(xs, wt, padding=1), conv2d_ref(xs, wt, padding=1), np.float32, 45, xs, wt)
    gx, gw, _ = _C._cuda_conv2d_backward(gy, xs, wt, padding=1)
    rx, rw, _ = conv2d_backward_ref(gy, xs, wt, padding=1)
    assert_conv_close(gx, rx, np.float32, 54, gy, wt)
    assert_conv_close(gw, rw, np.float32, 180, gy, xs)


def test_empty_batch_and_channels(rng):
    w = make(rng, (4, 3, 3, 3), np.float32)
    y = _C._cuda_conv2d(np.zeros((0, 3, 5, 5), np.float32), w)
    assert y.shape == (0, 4, 3, 3)
    gx, gw, gb = _C._cuda_conv2d_backward(np.zeros((0, 4, 3, 3), np.float32), np.zeros((0, 3, 5, 5), np.float32),
                                          w, np.full(4, 7, np.float32))
    assert gx.shape == (0, 3, 5, 5) and gw.shape == w.shape and not gw.any() and not gb.any()
    bias = np.arange(4, dtype=np.float32)
    y = _C._cuda_conv2d(np.zeros((2, 0, 5, 5), np.float32), np.zeros((4, 0, 3, 3), np.float32), bias)
    np.testing.assert_array_equal(y, np.broadcast_to(bias[None, :, None, None], (2, 4, 3, 3)))
    gx, gw, gb = _C._cuda_conv2d_backward(np.ones((2, 4, 3, 3), np.float32), np.zeros((2, 0, 5, 5), np.float32),
                                          np.zeros((4, 0, 3, 3), np.float32), bias)
    assert gx.shape == (2, 0, 5, 5) and gw.shape == (4, 0, 3, 3)
    np.testing.assert_array_equal(gb, np.full(4, 18, np.float32))
    y = _C._cuda_conv2d(np.ones((1, 3, 4, 4), np.float32), np.zeros((0, 3, 3, 3), np.float32))
    assert y.shape == (1, 0, 2, 2)
    gx, _, _ = _C._cuda_conv2d_backward(np.zeros((1, 0, 2, 2), np.float32), np.ones((1, 3, 4, 4), np.float32),
                                        np.zeros((0, 3, 3, 3), np.float32))
    np.testing.assert_array_equal(gx, np.zeros((1, 3, 4, 4), np.float32))


def test_errors():
    x = np.zeros((2, 4, 8, 8), np.float32)
    w = np.zeros((6, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"conv2d: input channels \(4\) must be divisible by groups \(3\)"):
        _C._cuda_conv2d(x, np.zeros((6, 1, 3, 3), np.float32), groups=3)
    with pytest.raises(ValueError, match="expects 2 input channels"):
        _C._cuda_conv2d(x, w)
    with pytest.raises(ValueError, match="larger than the padded input"):
        _C._cuda_conv2d(x, np.zeros((6, 4, 3, 3), np.float32), dilation=4)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        _C._cuda_conv2d(x, w, stride=2, padding="same", groups=2)
    with pytest.raises(TypeError, match="'stride' must be an int or a pair"):
        _C._cuda_conv2d(x, w, stride="2", groups=2)
    with pytest.raises(TypeError, match="dtype"):
        _C._cuda_conv2d(x, w.astype(np.float64), groups=2)
    with pytest.raises(ValueError, match="conv2d_backward: 'grad_output' has shape"):
        _C._cuda_conv2d_backward(np.zeros((2, 6, 5, 5), np.float32), x, w, groups=2)
    with pytest.raises(TypeError, match="conv2d_backward: argument 'grad_output' has dtype"):
        _C._cuda_conv2d_backward(np.zeros((2, 6, 6, 6), np.float64), x, w, groups=2)
