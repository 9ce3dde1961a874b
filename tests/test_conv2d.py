"""conv2d and conv2d_backward against the float64 references in reference.py,
on every ISA level and both dtypes, plus finite differences and bad input.

The cases reach every algorithm (pointwise GEMM, direct depthwise, implicit
GEMM) and their edges: sizes that are not multiples of the vector width or the
micro-tile, more than one block of K (k > 256), more than one pixel tile,
1x1 images, stride larger than the kernel, dilation, every kind of groups and
"same" with even kernels.
"""
import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import ops
from reference import conv2d_backward_ref, conv2d_ref, gemm_tolerance

# (input shape, weight shape, options)
CASES = [
    ((2, 3, 9, 11), (5, 3, 3, 3), dict(padding=1)),
    ((1, 1, 1, 1), (1, 1, 1, 1), {}),
    ((1, 2, 1, 1), (3, 2, 3, 3), dict(padding=1)),
    ((2, 5, 7, 6), (17, 5, 2, 3), dict(stride=(3, 4))),             # stride > kernel
    ((1, 4, 13, 12), (6, 2, 3, 2), dict(padding=(2, 1), dilation=(2, 3), groups=2)),
    ((2, 6, 8, 9), (6, 1, 3, 3), dict(padding=1, groups=6)),         # depthwise
    ((1, 3, 10, 7), (6, 1, 5, 3), dict(stride=2, padding=2, groups=3)),  # depthwise x2, strided
    ((2, 1, 9, 8), (4, 1, 3, 3), {}),                                # single-channel input
    ((1, 2, 4, 5), (2, 1, 2, 2), dict(padding=2, groups=2)),         # depthwise, padding > kernel reach
    ((2, 3, 9, 21), (3, 1, 3, 3), dict(padding=1, dilation=(1, 2), groups=3)),
    ((2, 19, 5, 7), (33, 19, 1, 1), {}),                             # pointwise
    ((1, 8, 6, 5), (8, 2, 1, 1), dict(groups=4)),                    # pointwise, grouped
    ((2, 8, 9, 9), (5, 8, 1, 1), dict(stride=2)),                    # 1x1 strided: implicit GEMM
    ((1, 3, 7, 8), (4, 3, 4, 4), dict(padding="same")),              # even kernel, extra pad after
    ((1, 2, 7, 8), (4, 2, 2, 3), dict(padding="same", dilation=(3, 2))),
    ((2, 3, 6, 7), (2, 3, 3, 2), dict(padding="valid")),
    ((1, 40, 9, 10), (20, 40, 3, 3), dict(padding=1)),               # K = 360: two K blocks
    ((1, 5, 41, 37), (3, 5, 3, 3), dict(padding=(0, 1))),            # several pixel tiles
    ((3, 7, 5, 5), (7, 7, 5, 5), dict(padding=4)),                   # padding wider than the input
    ((1, 3, 4, 4), (2, 3, 2, 2), dict(padding=2)),                   # padding beyond the kernel's reach
]
IDS = [f"{c[0]}x{c[1]}-{'-'.join(f'{k}{v}' for k, v in c[2].items())}" for c in CASES]


def make(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def assert_conv_close(actual, expected, dtype, k, *scales):
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == np.dtype(dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    rtol, atol = gemm_tolerance(dtype, k, *scales)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol)


def reduction_lengths(x_shape, w_shape, out_shape, groups):
    """K of the forward, the input gradient and the weight gradient sums."""
    oc, cg, kh, kw = w_shape
    pixels = int(np.prod(out_shape[-2:])) * (x_shape[0] if len(x_shape) == 4 else 1)
    return cg * kh * kw, oc // groups * kh * kw, pixels


@pytest.mark.parametrize("xs,ws,opts", CASES, ids=IDS)
def test_forward(isa, dtype, rng, xs, ws, opts):
    x, w, b = make(rng, xs, dtype), make(rng, ws, dtype), make(rng, ws[0], dtype)
    expected = conv2d_ref(x, w, b, **opts)
    assert_conv_close(ops.conv2d(x, w, b, **opts), expected, dtype, ws[1] * ws[2] * ws[3], x, w, b)
    expected = conv2d_ref(x, w, None, **opts)
    assert_conv_close(ops.conv2d(x, w, **opts), expected, dtype, ws[1] * ws[2] * ws[3], x, w)


@pytest.mark.parametrize("xs,ws,opts", CASES, ids=IDS)
def test_backward(isa, dtype, rng, xs, ws, opts):
    x, w, b = make(rng, xs, dtype), make(rng, ws, dtype), make(rng, ws[0], dtype)
    out_shape = conv2d_ref(x, w, **opts).shape
    gy = make(rng, out_shape, dtype)
    gx, gw, gb = ops.conv2d_backward(gy, x, w, b, **opts)
    rx, rw, rb = conv2d_backward_ref(gy, x, w, **opts)
    k_fwd, k_in, k_w = reduction_lengths(xs, ws, out_shape, opts.get("groups", 1))
    assert_conv_close(gx, rx, dtype, k_in, gy, w)
    assert_conv_close(gw, rw, dtype, k_w, gy, x)
    assert_conv_close(gb, rb, dtype, k_w, gy, np.ones(1))


@pytest.mark.parametrize("mask", [(True, False, False), (False, True, False), (False, False, True),
                                  (False, False, False)])
def test_backward_output_mask(rng, mask):
    x, w, b = make(rng, (2, 4, 6, 5), np.float64), make(rng, (3, 4, 3, 3), np.float64), np.zeros(3)
    gy = make(rng, (2, 3, 4, 3), np.float64)
    got = ops.conv2d_backward(gy, x, w, b, output_mask=mask)
    full = conv2d_backward_ref(gy, x, w)
    for want, g, r in zip(mask, got, full):
        if want:
            np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)
        else:
            assert g is None
    assert ops.conv2d_backward(gy, x, w, None)[2] is None  # no bias, no bias gradient


def test_unbatched_input(rng):
    x, w = make(rng, (3, 8, 7), np.float64), make(rng, (4, 3, 3, 3), np.float64)
    y = ops.conv2d(x, w, padding=1)
    assert y.shape == (4, 8, 7)
    np.testing.assert_allclose(y, conv2d_ref(x, w, padding=1), rtol=1e-12, atol=1e-12)
    gx, gw, _ = ops.conv2d_backward(np.ones_like(y), x, w, padding=1)
    rx, rw, _ = conv2d_backward_ref(np.ones_like(y), x, w, padding=1)
    np.testing.assert_allclose(gx, rx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, rw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["input", "weight", "grad_output"])
def test_non_contiguous(isa, rng, kind):
    x = make(rng, (2, 5, 9, 10), np.float32)
    w = make(rng, (6, 5, 3, 3), np.float32)
    gy = make(rng, (2, 6, 9, 10), np.float32)
    if kind == "input":
        x = make(rng, (2, 10, 9, 12), np.float32)[:, ::2, :, 1:11]
    elif kind == "weight":
        w = np.ascontiguousarray(w.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    else:
        gy = make(rng, (2, 6, 10, 9), np.float32).transpose(0, 1, 3, 2)
    assert not (x.flags.c_contiguous and w.flags.c_contiguous and gy.flags.c_contiguous)
    assert_conv_close(ops.conv2d(x, w, padding=1), conv2d_ref(x, w, padding=1), np.float32, 45, x, w)
    gx, gw, _ = ops.conv2d_backward(gy, x, w, padding=1)
    rx, rw, _ = conv2d_backward_ref(gy, x, w, padding=1)
    assert_conv_close(gx, rx, np.float32, 54, gy, w)
    assert_conv_close(gw, rw, np.float32, 180, gy, x)


def test_empty_batch_and_channels(rng):
    w = make(rng, (4, 3, 3, 3), np.float32)
    y = ops.conv2d(np.zeros((0, 3, 5, 5), np.float32), w)
    assert y.shape == (0, 4, 3, 3)
    gx, gw, gb = ops.conv2d_backward(np.zeros((0, 4, 3, 3), np.float32), np.zeros((0, 3, 5, 5), np.float32),
                                     w, np.zeros(4, np.float32))
    assert gx.shape == (0, 3, 5, 5) and not gw.any() and not gb.any()
    y = ops.conv2d(np.zeros((2, 0, 5, 5), np.float32), np.zeros((4, 0, 3, 3), np.float32),
                   np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(y, np.broadcast_to(np.arange(4, dtype=np.float32)[None, :, None, None],
                                                     (2, 4, 3, 3)))


def test_large_image_threads(best_isa, rng, restore_threads):
    """A size that runs on the whole team, on several items per thread."""
    tfg.set_num_threads(2)
    x, w, b = make(rng, (3, 16, 40, 40), np.float32), make(rng, (24, 16, 3, 3), np.float32), None
    y = ops.conv2d(x, w, b, padding=1)
    assert_conv_close(y, conv2d_ref(x, w, b, padding=1), np.float32, 144, x, w)
    gy = make(rng, y.shape, np.float32)
    gx, gw, _ = ops.conv2d_backward(gy, x, w, padding=1)
    rx, rw, _ = conv2d_backward_ref(gy, x, w, padding=1)
    assert_conv_close(gx, rx, np.float32, 216, gy, w)
    assert_conv_close(gw, rw, np.float32, 4800, gy, x)


# ---- finite differences -------------------------------------------------------

FD_CASES = [
    ((1, 2, 5, 4), (3, 2, 3, 2), dict(padding=1, stride=(2, 1))),
    ((2, 4, 5, 5), (4, 1, 3, 3), dict(padding=1, groups=4, dilation=2)),
    ((1, 4, 4, 3), (2, 2, 1, 1), dict(groups=2)),
    ((1, 2, 5, 6), (2, 2, 2, 2), dict(padding="same")),
]


@pytest.mark.parametrize("xs,ws,opts", FD_CASES)
def test_finite_differences(rng, xs, ws, opts):
    x, w, b = make(rng, xs, np.float64), make(rng, ws, np.float64), make(rng, ws[0], np.float64)
    gy = make(rng, ops.conv2d(x, w, b, **opts).shape, np.float64)
    grads = ops.conv2d_backward(gy, x, w, b, **opts)
    eps = 1e-6
    for arg, grad in zip((x, w, b), grads):
        numeric = np.zeros_like(arg)
        for idx in np.ndindex(arg.shape):
            old = arg[idx]
            arg[idx] = old + eps
            plus = np.sum(gy * ops.conv2d(x, w, b, **opts))
            arg[idx] = old - eps
            minus = np.sum(gy * ops.conv2d(x, w, b, **opts))
            arg[idx] = old
            numeric[idx] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


# ---- bad input ------------------------------------------------------------------

def test_errors():
    x = np.zeros((2, 4, 8, 8), np.float32)
    w = np.zeros((6, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"input channels \(4\) must be divisible by groups \(3\)"):
        ops.conv2d(x, np.zeros((6, 1, 3, 3), np.float32), groups=3)
    with pytest.raises(ValueError, match="expects 2 input channels"):
        ops.conv2d(x, w)
    with pytest.raises(ValueError, match=r"out_channels \(5.*divisible by groups \(2\)"):
        ops.conv2d(x, np.zeros((5, 2, 3, 3), np.float32), groups=2)
    with pytest.raises(ValueError, match="larger than the padded input"):
        ops.conv2d(x, np.zeros((6, 4, 9, 3), np.float32))
    with pytest.raises(ValueError, match="larger than the padded input"):
        ops.conv2d(x, np.zeros((6, 4, 3, 3), np.float32), dilation=4)
    with pytest.raises(ValueError, match="'stride' must be positive"):
        ops.conv2d(x, w, stride=0, groups=2)
    with pytest.raises(ValueError, match="'dilation' must be positive"):
        ops.conv2d(x, w, dilation=(1, -1), groups=2)
    with pytest.raises(ValueError, match="'padding' must be non-negative"):
        ops.conv2d(x, w, padding=-1, groups=2)
    with pytest.raises(ValueError, match="'groups' must be positive"):
        ops.conv2d(x, w, groups=0)
    with pytest.raises(ValueError, match="not supported for strided"):
        ops.conv2d(x, w, padding="same", stride=2, groups=2)
    with pytest.raises(ValueError, match='"full"'):
        ops.conv2d(x, w, padding="full", groups=2)
    with pytest.raises(TypeError, match="'padding' must be an int or a pair"):
        ops.conv2d(x, w, padding=(1, 2, 3), groups=2)
    with pytest.raises(ValueError, match="'input' must be 4-D"):
        ops.conv2d(np.zeros((4, 8), np.float32), w)
    with pytest.raises(ValueError, match="'weight' must be 4-D"):
        ops.conv2d(x, np.zeros((6, 4, 3), np.float32))
    with pytest.raises(TypeError, match="'weight' has dtype float64 but 'input' has dtype float32"):
        ops.conv2d(x, w.astype(np.float64), groups=2)
    with pytest.raises(TypeError, match="'input' has dtype int64"):
        ops.conv2d(x.astype(np.int64), w, groups=2)
    with pytest.raises(ValueError, match=r"'bias' must have shape \(6,\)"):
        ops.conv2d(x, w, np.zeros(5, np.float32), groups=2)
    with pytest.raises(TypeError, match="must be a NumPy array"):
        ops.conv2d(x.tolist(), w, groups=2)
    with pytest.raises(ValueError, match=r"'grad_output' has shape \(2, 6, 7, 7\).*gives \(2, 6, 6, 6\)"):
        ops.conv2d_backward(np.zeros((2, 6, 7, 7), np.float32), x, w, groups=2)
    with pytest.raises(TypeError, match="'grad_output' has dtype float64"):
        ops.conv2d_backward(np.zeros((2, 6, 6, 6)), x, w, groups=2)


def test_matches_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for xs, ws, opts in CASES:
        x, w, b = make(rng, xs, np.float64), make(rng, ws, np.float64), make(rng, ws[0], np.float64)
        xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        yt = F.conv2d(xt, wt, bt, **opts)
        np.testing.assert_allclose(ops.conv2d(x, w, b, **opts), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
        gy = make(rng, yt.shape, np.float64)
        yt.backward(torch.from_numpy(gy))
        for got, ref in zip(ops.conv2d_backward(gy, x, w, b, **opts), (xt.grad, wt.grad, bt.grad)):
            np.testing.assert_allclose(got, ref.numpy(), rtol=1e-10, atol=1e-10)
