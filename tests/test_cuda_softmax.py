"""The CUDA softmax / log_softmax kernels (csrc/ops/softmax/cuda/softmax.cu) on
the SIMT emulation, against the float64 references of the CPU tests: the three
kernel shapes (a warp per row for rows up to 1024, a block per longer row,
column blocks for other dims), sizes that are not multiples of 32 or of the
block, partial column blocks, 0-d and empty inputs, extreme values (-inf,
NaN, +inf, huge), non-contiguous inputs, backward with and without the
forward's output, and the CPU op's argument errors.

Runs only against the emulated test build (tools/test_emulated.sh)."""
import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import _C
from reference import softmax_backward_ref, softmax_ref
from test_softmax import assert_close, special_rows

FNS = ["softmax", "log_softmax"]


def forward(name, x, dim):
    return getattr(_C, "_cuda_" + name)(x, dim)


def backward(name, g, x, dim, output=None):
    result = getattr(_C, "_cuda_" + name + "_backward")(g, x, dim, output)
    assert isinstance(result, tuple) and len(result) == 1
    return result[0]


def rand(rng, shape, dtype, scale=3.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def check_forward(name, x, dim):
    out = forward(name, x, dim)
    n = x.shape[dim] if x.ndim else 1
    log = name == "log_softmax"
    assert_close(out, softmax_ref(x, dim, log=log), x.dtype, n, log=log)
    assert out.flags.c_contiguous
    return out


def check_backward(name, g, x, dim):
    log = name == "log_softmax"
    n = x.shape[dim] if x.ndim else 1
    expected = softmax_backward_ref(g, x, dim, log)
    scale = 1.0 + float(np.abs(g).max()) * max(n, 1) if g.size else 1.0
    y = forward(name, x, dim)
    for output in (None, y):
        assert_close(backward(name, g, x, dim, output), expected, x.dtype, n, scale=scale)


SHAPES_DIMS = [
    ((1,), 0), ((7,), 0), ((33,), -1), ((1024,), 0), ((1025,), 0), ((3000,), 0),
    ((5, 1), 1), ((1, 5), 1), ((5, 1), 0), ((3, 17), 1), ((3, 17), 0), ((4, 65), -2),
    ((2, 3, 37), 0), ((2, 3, 37), 1), ((2, 3, 37), 2),
    ((2, 5, 4, 3), 1), ((2, 5, 1, 1), 1),
    ((9, 31), 1),          # warp rows, a partial last block of 4 rows
    ((3, 2500), 1),        # block rows, not a multiple of 512
    ((2, 40, 33), 1),      # 33 columns: a second column block of 1
    ((70, 3), 0),          # 3 columns, 8 threads along n
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FNS)
@pytest.mark.parametrize("shape,dim", SHAPES_DIMS, ids=[f"{s}-d{d}" for s, d in SHAPES_DIMS])
def test_forward(dtype, name, shape, dim):
    rng = np.random.default_rng(sum(map(ord, f"{shape}{dim}{name}")))
    check_forward(name, rand(rng, shape, dtype), dim)


BACKWARD_SHAPES = [((1,), 0), ((7,), 0), ((3, 17), 1), ((3, 17), 0), ((2, 3, 37), 1), ((9, 31), -1),
                   ((3, 2500), 1), ((2, 40, 33), 1), ((2, 5, 1, 1), 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FNS)
@pytest.mark.parametrize("shape,dim", BACKWARD_SHAPES, ids=[f"{s}-d{d}" for s, d in BACKWARD_SHAPES])
def test_backward(dtype, name, shape, dim):
    rng = np.random.default_rng(sum(map(ord, f"{shape}{dim}{name}b")))
    check_backward(name, rand(rng, shape, dtype, 1.0), rand(rng, shape, dtype), dim)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FNS)
def test_matches_cpu_op(dtype, name):
    rng = np.random.default_rng(5)
    x, g = rand(rng, (6, 50, 7), dtype), rand(rng, (6, 50, 7), dtype, 1.0)
    for dim in (0, 1, 2):
        cpu = getattr(tfg.ops, name)(x, dim)
        np.testing.assert_allclose(forward(name, x, dim), cpu, rtol=20 * np.finfo(dtype).eps,
                                   atol=20 * np.finfo(dtype).eps)
        gcpu = getattr(tfg.ops, name + "_backward")(g, x, dim, cpu)[0]
        np.testing.assert_allclose(backward(name, g, x, dim, cpu), gcpu, rtol=1e-4 if dtype == np.float32
                                   else 1e-12, atol=1e-5 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FNS)
def test_zero_dim_and_empty(dtype, name):
    x = np.array(2.5, dtype=dtype)
    out = forward(name, x, -1)
    assert out.shape == () and float(out) == (0.0 if name == "log_softmax" else 1.0)
    gx = backward(name, np.array(3.0, dtype=dtype), x, 0)
    np.testing.assert_allclose(gx, softmax_backward_ref(3.0, x, 0, name == "log_softmax"), atol=1e-6)
    for shape, dim in [((0,), 0), ((0, 5), 1), ((5, 0), 1), ((5, 0), 0), ((2, 0, 3), 1), ((2, 3, 0), 1)]:
        x = np.zeros(shape, dtype)
        out = forward(name, x, dim)
        assert out.shape == shape and out.dtype == np.dtype(dtype)
        assert backward(name, x, x, dim, out).shape == shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FNS)
@pytest.mark.parametrize("transpose", [False, True])
def test_special_values(dtype, name, transpose):
    x = special_rows(dtype)
    x = np.ascontiguousarray(x.T) if transpose else x
    out = check_forward(name, x, 0 if transpose else 1)
    rows = out.T if transpose else out
    assert np.isnan(rows[3]).all() and np.isnan(rows[4]).all() and np.isnan(rows[5]).all()
    if name == "softmax":
        np.testing.assert_array_equal(rows[6], [0.0] * 10 + [1.0])
        assert rows[2][0] == 0.0
    else:
        assert rows[2][0] == -np.inf and rows[6][-1] == 0.0


@pytest.mark.parametrize("name", FNS)
def test_strided_inputs(name):
    rng = np.random.default_rng(11)
    base = rand(rng, (6, 40, 50), np.float64)
    for x in (base[:, ::2, :], base[:, :, ::-1], base.transpose(2, 0, 1), np.broadcast_to(base[:1], (3, 40, 50))):
        for dim in (0, 2):
            check_forward(name, x, dim)
        check_backward(name, np.ones_like(x)[::-1], x, 1)


@pytest.mark.parametrize("name", FNS)
def test_errors(name):
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=rf"_cuda_{name}: dim 2 is out of range.*\(2, 3\).*\[-2, 1\]"):
        forward(name, x, 2)
    with pytest.raises(TypeError, match=rf"_cuda_{name}: argument 'x' has dtype int64"):
        forward(name, np.zeros((2, 3), np.int64), 0)
    with pytest.raises(TypeError, match=r"'grad_output' has dtype float64 but 'x' has dtype float32"):
        backward(name, np.zeros((2, 3)), x, 0)
    with pytest.raises(ValueError, match=r"'grad_output' has shape \(3, 2\) but 'x' has shape \(2, 3\)"):
        backward(name, np.zeros((3, 2), np.float32), x, 0)
    with pytest.raises(ValueError, match=r"'output' has shape \(2, 4\) but 'x' has shape \(2, 3\)"):
        backward(name, x, x, 0, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=rf"_cuda_{name}_backward: dim 5 is out of range"):
        backward(name, x, x, 5)
