"""Bad input to matmul / linear: a TypeError or ValueError whose message names
the argument and what it got, never a crash or a silently wrong result."""
import re
import subprocess
import sys

import numpy as np
import pytest

import tensorforge as tfg

F32, F64 = np.float32, np.float64


def ones(*shape, dtype=F32):
    return np.ones(shape, dtype)


def misaligned(shape, dtype=F32):
    """A C-contiguous array whose data pointer is not a multiple of the item size."""
    item = np.dtype(dtype).itemsize
    count = int(np.prod(shape))
    buf = np.zeros(count * item + 2 * item, dtype=np.uint8)
    offset = next(o for o in range(1, item) if (buf.ctypes.data + o) % item)
    arr = buf[offset:offset + count * item].view(dtype).reshape(shape)
    assert not arr.flags.aligned
    return arr


# ----------------------------------------------------------------------------
# matmul

@pytest.mark.parametrize("a,b,pattern", [
    (np.array(2.0, F32), ones(3), r"at least 1 dimension.*'a' with shape \(\)"),
    (ones(3), np.array(2.0, F32), r"at least 1 dimension.*'b' with shape \(\)"),
    (np.array(2.0, F32), np.array(3.0, F32), r"at least 1 dimension.*\(\)"),
])
def test_matmul_0d(a, b, pattern):
    with pytest.raises(ValueError, match=pattern):
        tfg.ops.matmul(a, b)


@pytest.mark.parametrize("a_shape,b_shape", [
    ((3, 4), (5, 6)),
    ((4,), (5,)),
    ((4,), (5, 6)),
    ((3, 4), (5,)),
    ((2, 3, 4), (2, 5, 6)),
    ((2, 3, 4), (5, 6)),
    ((3, 0), (1, 2)),
])
def test_matmul_inner_mismatch(a_shape, b_shape):
    msg = (rf"inner dimensions.*\ba\b has shape {re.escape(str(a_shape))}.*"
           rf"\bb\b has shape {re.escape(str(b_shape))}")
    with pytest.raises(ValueError, match=msg):
        tfg.ops.matmul(ones(*a_shape), ones(*b_shape))


@pytest.mark.parametrize("a_shape,b_shape", [
    ((2, 3, 4), (3, 4, 5)),
    ((2, 1, 3, 4), (3, 1, 4, 5)),
    ((4, 3, 4), (2, 3, 4, 5)),
    ((2, 3, 4), (0, 4, 5)),
])
def test_matmul_batch_not_broadcastable(a_shape, b_shape):
    msg = (rf"do not broadcast.*\ba\b has shape {re.escape(str(a_shape))}.*"
           rf"\bb\b has shape {re.escape(str(b_shape))}")
    with pytest.raises(ValueError, match=msg):
        tfg.ops.matmul(ones(*a_shape), ones(*b_shape))


BAD_DTYPES = [np.int32, np.int64, np.complex64, np.float16, np.bool_, np.uint8, np.longdouble,
              object]


@pytest.mark.parametrize("bad", BAD_DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("which", ["a", "b"])
def test_matmul_unsupported_dtype(bad, which):
    good = ones(3, 3)
    bad_arr = np.ones((3, 3), dtype=bad)
    args = (bad_arr, good) if which == "a" else (good, bad_arr)
    name = re.escape(np.dtype(bad).name)
    with pytest.raises(TypeError, match=rf"argument '{which}'.*dtype {name}"):
        tfg.ops.matmul(*args)


@pytest.mark.parametrize("which", ["a", "b"])
def test_matmul_python_list(which):
    args = ([[1.0, 2.0], [3.0, 4.0]], ones(2, 2))
    if which == "b":
        args = args[::-1]
    with pytest.raises(TypeError, match=rf"argument '{which}'.*NumPy array.*got list"):
        tfg.ops.matmul(*args)
    with pytest.raises(TypeError, match=rf"argument '{which}'"):
        tfg.ops.matmul(*[None if isinstance(x, list) else x for x in args])


@pytest.mark.parametrize("a_dt,b_dt", [(F32, F64), (F64, F32)])
def test_matmul_mixed_dtypes(a_dt, b_dt):
    msg = rf"'a' has dtype {np.dtype(a_dt).name}.*'b' has dtype {np.dtype(b_dt).name}"
    with pytest.raises(TypeError, match=msg):
        tfg.ops.matmul(ones(2, 3, dtype=a_dt), ones(3, 4, dtype=b_dt))


@pytest.mark.parametrize("which", ["a", "b"])
@pytest.mark.parametrize("dt", [">f4", ">f8"])
def test_matmul_non_native_byte_order(which, dt):
    swapped = np.ones((3, 3), dtype=dt)
    good = ones(3, 3, dtype=swapped.dtype.newbyteorder("="))
    args = (swapped, good) if which == "a" else (good, swapped)
    with pytest.raises(TypeError, match=rf"argument '{which}'.*byte order.*{re.escape(dt)}"):
        tfg.ops.matmul(*args)


@pytest.mark.parametrize("which", ["a", "b"])
@pytest.mark.parametrize("dt", [F32, F64], ids=["float32", "float64"])
def test_matmul_misaligned(which, dt):
    bad = misaligned((4, 4), dt)
    good = ones(4, 4, dtype=dt)
    args = (bad, good) if which == "a" else (good, bad)
    item = np.dtype(dt).itemsize
    with pytest.raises(ValueError, match=rf"argument '{which}'.*not aligned.*{item}-byte"):
        tfg.ops.matmul(*args)


def test_matmul_misaligned_strides():
    # Aligned start, but a byte stride that is not a multiple of the item size.
    buf = np.zeros(64, np.uint8)
    bad = np.lib.stride_tricks.as_strided(buf.view(F32)[:1], shape=(3, 3), strides=(6, 4))
    with pytest.raises(ValueError, match=r"argument 'a'.*not aligned"):
        tfg.ops.matmul(bad, ones(3, 3))


def test_matmul_wrong_arity():
    with pytest.raises(TypeError):
        tfg.ops.matmul(ones(2, 2))
    with pytest.raises(TypeError):
        tfg.ops.matmul(ones(2, 2), ones(2, 2), ones(2, 2))


# ----------------------------------------------------------------------------
# linear

def test_linear_input_0d():
    with pytest.raises(ValueError, match=r"'input'.*at least 1 dimension.*\(\)"):
        tfg.ops.linear(np.array(1.0, F32), ones(3, 1))


@pytest.mark.parametrize("w_shape", [(5,), (2, 3, 5), ()])
def test_linear_weight_not_2d(w_shape):
    with pytest.raises(ValueError, match=rf"'weight' must be 2-D.*{re.escape(str(w_shape))}"):
        tfg.ops.linear(ones(4, 5), ones(*w_shape))


@pytest.mark.parametrize("x_shape,w_shape", [((4, 5), (3, 6)), ((5,), (3, 4)), ((2, 4, 5), (3, 4))])
def test_linear_feature_mismatch(x_shape, w_shape):
    msg = (rf"'input' has {x_shape[-1]} features.*{re.escape(str(x_shape))}.*"
           rf"'weight' expects {w_shape[1]}.*{re.escape(str(w_shape))}")
    with pytest.raises(ValueError, match=msg):
        tfg.ops.linear(ones(*x_shape), ones(*w_shape))


@pytest.mark.parametrize("b_shape", [(4,), (2,), (1, 3), (3, 1), (), (0,)])
def test_linear_bad_bias_shape(b_shape):
    with pytest.raises(ValueError, match=rf"'bias' must have shape \(3,\), got {re.escape(str(b_shape))}"):
        tfg.ops.linear(ones(4, 5), ones(3, 5), ones(*b_shape))


@pytest.mark.parametrize("bad", BAD_DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("which", ["input", "weight", "bias"])
def test_linear_unsupported_dtype(bad, which):
    args = {"input": ones(4, 5), "weight": ones(3, 5), "bias": ones(3)}
    args[which] = np.ones(args[which].shape, dtype=bad)
    name = re.escape(np.dtype(bad).name)
    with pytest.raises(TypeError, match=rf"'{which}'.*dtype {name}"):
        tfg.ops.linear(**args)


@pytest.mark.parametrize("which", ["input", "weight", "bias"])
def test_linear_python_list(which):
    args = {"input": ones(2, 2), "weight": ones(2, 2), "bias": ones(2)}
    args[which] = args[which].tolist()
    with pytest.raises(TypeError, match=rf"argument '{which}'.*got list"):
        tfg.ops.linear(**args)


@pytest.mark.parametrize("which", ["weight", "bias"])
def test_linear_mixed_dtypes(which):
    args = {"input": ones(4, 5), "weight": ones(3, 5), "bias": ones(3)}
    args[which] = args[which].astype(F64)
    with pytest.raises(TypeError, match=rf"'{which}' has dtype float64.*'input' has dtype float32"
                       if which == "bias" else r"'input' has dtype float32.*'weight' has dtype float64"):
        tfg.ops.linear(**args)


@pytest.mark.parametrize("which", ["input", "weight", "bias"])
def test_linear_non_native_byte_order(which):
    args = {"input": ones(4, 5), "weight": ones(3, 5), "bias": ones(3)}
    args[which] = args[which].astype(">f4")
    with pytest.raises(TypeError, match=rf"argument '{which}'.*byte order"):
        tfg.ops.linear(**args)


@pytest.mark.parametrize("which", ["input", "weight", "bias"])
def test_linear_misaligned(which):
    args = {"input": ones(4, 5), "weight": ones(3, 5), "bias": ones(3)}
    args[which] = misaligned(args[which].shape)
    with pytest.raises(ValueError, match=rf"argument '{which}'.*not aligned"):
        tfg.ops.linear(**args)


def test_errors_leave_library_usable():
    # After a batch of failures the next good call still works and is right.
    for bad in [np.ones((2, 2), np.int32), [1.0], np.array(1.0, F32), misaligned((2, 2))]:
        with pytest.raises((TypeError, ValueError)):
            tfg.ops.matmul(bad, ones(2, 2))
    out = tfg.ops.matmul(np.arange(4, dtype=F32).reshape(2, 2), ones(2, 2))
    np.testing.assert_array_equal(out, [[1, 1], [5, 5]])


# The result's size overflows: (2**31, 1) @ (1, 2**31) has 2**62 elements, 2**64 bytes
# in float32 (0 after wrapping); NumPy raises "array is too big". Must be a Python
# exception (ValueError or MemoryError), not a segmentation fault. Run in a subprocess
# so a crash cannot take the test session down.
OVERFLOW_CODE = r"""
import sys
import numpy as np, tensorforge as tfg
big = 2**31
cases = {
    # 2**62 elements: the byte count wraps
    "matmul": lambda: tfg.ops.matmul(np.broadcast_to(np.float32(1), (big, 1)),
                                     np.broadcast_to(np.float32(1), (1, big))),
    # 2**64 elements: the element count itself wraps
    "matmul_batched": lambda: tfg.ops.matmul(np.broadcast_to(np.float32(1), (big, big, 1)),
                                             np.broadcast_to(np.float32(1), (1, 4))),
    "linear": lambda: tfg.ops.linear(np.broadcast_to(np.float64(1), (big, 1)),
                                     np.broadcast_to(np.float64(1), (big, 1))),
}
try:
    cases[sys.argv[1]]()
    print("returned")
except (ValueError, MemoryError) as e:
    print("raised", type(e).__name__)
"""


@pytest.mark.parametrize("case", ["matmul", "matmul_batched", "linear"])
def test_output_size_overflow_raises(package_env, case):
    proc = subprocess.run([sys.executable, "-c", OVERFLOW_CODE, case], env=package_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (f"crashed with exit code {proc.returncode}\n"
                                  f"stdout: {proc.stdout}\nstderr: {proc.stderr[-2000:]}")
    assert re.fullmatch(r"raised (ValueError|MemoryError)\n", proc.stdout), proc.stdout
