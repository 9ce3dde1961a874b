"""tfg.ops.matmul and tfg.ops.linear against the float64 references, on every
ISA level and both dtypes: tile boundaries of each level's blocking, the
torch.matmul shape rules, strided/transposed/broadcast views, empty shapes,
NaN/Inf, and the properties of the returned array."""
import numpy as np
import pytest

import tensorforge as tfg
from reference import assert_gemm_close, gemm_tolerance, linear_ref, matmul_ref


def rand(rng, shape, dtype):
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def check_matmul(a, b, dtype=None):
    dtype = dtype or a.dtype
    a_before, b_before = a.copy(), b.copy()
    out = tfg.ops.matmul(a, b)
    k = a.shape[-1]
    assert_gemm_close(out, matmul_ref(a, b), dtype, k, a, b)
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)
    return out


def check_linear(x, w, bias=None):
    before = [v.copy() for v in (x, w, bias) if v is not None]
    out = tfg.ops.linear(x, w, bias) if bias is not None else tfg.ops.linear(x, w)
    assert_gemm_close(out, linear_ref(x, w, bias), x.dtype, x.shape[-1], x, w, bias)
    for v, v0 in zip([v for v in (x, w, bias) if v is not None], before):
        np.testing.assert_array_equal(v, v0)
    return out


def size(expr, bl):
    """Evaluates a boundary name such as 'mr+1' or '2*kc+1' with the blocking sizes."""
    return max(1, eval(expr, {}, dict(bl)))


# ----------------------------------------------------------------------------
# Tile boundaries of the active ISA's blocking.

M_CASES = ["1", "mr-1", "mr", "mr+1", "2*mr+1", "mc-1", "mc", "mc+1"]
N_CASES = ["1", "nr-1", "nr", "nr+1", "2*nr+1", "nc-1", "nc", "nc+1"]
K_CASES = ["1", "2", "kc-1", "kc", "kc+1", "2*kc+1"]


@pytest.mark.parametrize("m_case", M_CASES)
def test_matmul_m_boundaries(isa, dtype, blocking, rng, m_case):
    m = size(m_case, blocking)
    # N with full and partial register tiles, K spanning two KC blocks (so edge
    # tiles go through the accumulate path too).
    n, k = 2 * blocking["nr"] + 3, blocking["kc"] + 5
    check_matmul(rand(rng, (m, k), dtype), rand(rng, (k, n), dtype))


@pytest.mark.parametrize("n_case", N_CASES)
def test_matmul_n_boundaries(isa, dtype, blocking, rng, n_case):
    n = size(n_case, blocking)
    m, k = blocking["mr"] + 3, blocking["kc"] + 5
    check_matmul(rand(rng, (m, k), dtype), rand(rng, (k, n), dtype))


@pytest.mark.parametrize("k_case", K_CASES)
def test_matmul_k_boundaries(isa, dtype, blocking, rng, k_case):
    k = size(k_case, blocking)
    m, n = 2 * blocking["mr"] + 1, 2 * blocking["nr"] + 1
    check_matmul(rand(rng, (m, k), dtype), rand(rng, (k, n), dtype))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 15, 16, 17, 31, 32, 33, 64, 65, 100, 129, 257])
def test_matmul_square(isa, dtype, rng, n):
    check_matmul(rand(rng, (n, n), dtype), rand(rng, (n, n), dtype))


@pytest.mark.parametrize("mnk", [("mr-1", "nr+1", "kc+1"), ("mr+1", "nr-1", "kc-1"),
                                 ("mc+1", "nr", "1"), ("1", "nr+1", "2*kc+1"),
                                 ("mc-1", "2*nr+1", "kc")])
def test_matmul_rectangular_combinations(isa, dtype, blocking, rng, mnk):
    m, n, k = (size(e, blocking) for e in mnk)
    check_matmul(rand(rng, (m, k), dtype), rand(rng, (k, n), dtype))


@pytest.mark.parametrize("n_case", ["1", "nr-1", "nr+1", "2*nr+1", "nc+1"])
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
def test_linear_n_boundaries(isa, dtype, blocking, rng, n_case, with_bias):
    # weight.T is read column-major: the other packing path of B. The bias
    # crosses register tiles and the NC block edge.
    n = size(n_case, blocking)
    m, k = blocking["mr"] + 1, blocking["kc"] + 3
    bias = rand(rng, (n,), dtype) if with_bias else None
    check_linear(rand(rng, (m, k), dtype), rand(rng, (n, k), dtype), bias)


@pytest.mark.parametrize("mk", [("mr-1", "1"), ("mr+1", "kc-1"), ("mc+1", "kc+1"), ("1", "2*kc+1")])
def test_linear_mk_boundaries(isa, dtype, blocking, rng, mk):
    m, k = (size(e, blocking) for e in mk)
    n = blocking["nr"] + 1
    check_linear(rand(rng, (m, k), dtype), rand(rng, (n, k), dtype), rand(rng, (n,), dtype))


# ----------------------------------------------------------------------------
# K = 0 and other empty shapes.

def test_matmul_k0_gives_zeros(isa, dtype, blocking):
    m, n = blocking["mr"] + 1, blocking["nr"] + 1
    a, b = np.empty((m, 0), dtype), np.empty((0, n), dtype)
    out = tfg.ops.matmul(a, b)
    assert out.shape == (m, n) and out.dtype == dtype
    np.testing.assert_array_equal(out, np.zeros((m, n)))
    out = tfg.ops.matmul(np.empty((3, 2, 0), dtype), np.empty((0, n), dtype))
    assert out.shape == (3, 2, n)
    np.testing.assert_array_equal(out, 0)
    out = tfg.ops.matmul(np.empty((0,), dtype), np.empty((0,), dtype))
    assert out.shape == () and out.dtype == dtype and out == 0


def test_linear_k0_is_bias(isa, dtype, blocking, rng):
    m, n = blocking["mr"] + 1, 2 * blocking["nr"] + 1
    x, w = np.empty((m, 0), dtype), np.empty((n, 0), dtype)
    bias = rand(rng, (n,), dtype)
    out = tfg.ops.linear(x, w, bias)
    assert out.shape == (m, n) and out.dtype == dtype
    np.testing.assert_array_equal(out, np.broadcast_to(bias, (m, n)))
    # A strided bias view, still K = 0.
    bias_full = rand(rng, (2 * n,), dtype)
    out = tfg.ops.linear(x, w, bias_full[::2])
    np.testing.assert_array_equal(out, np.broadcast_to(bias_full[::2], (m, n)))
    out = tfg.ops.linear(x, w)
    np.testing.assert_array_equal(out, np.zeros((m, n)))


@pytest.mark.parametrize("a_shape,b_shape,out_shape", [
    ((0, 5), (5, 7), (0, 7)),            # M = 0
    ((4, 5), (5, 0), (4, 0)),            # N = 0
    ((0, 0), (0, 0), (0, 0)),
    ((0, 5), (5, 0), (0, 0)),
    ((0, 3, 5), (5, 7), (0, 3, 7)),      # batch 0, folded path
    ((0, 3, 5), (0, 5, 7), (0, 3, 7)),   # batch 0 on both
    ((2, 0, 3, 5), (1, 5, 7), (2, 0, 3, 7)),
    ((1, 3, 5), (0, 5, 7), (0, 3, 7)),   # batch 0 by broadcasting
    ((5,), (0, 5, 7), (0, 7)),
    ((0, 3, 5), (5,), (0, 3)),
    ((0,), (0, 4), (4,)),
    ((4, 0), (0,), (4,)),
])
def test_matmul_empty_shapes(isa, dtype, a_shape, b_shape, out_shape):
    a, b = np.ones(a_shape, dtype), np.ones(b_shape, dtype)
    out = tfg.ops.matmul(a, b)
    assert out.shape == out_shape
    assert out.dtype == dtype
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, matmul_ref(a, b))  # zeros where K = 0


@pytest.mark.parametrize("x_shape,w_shape,out_shape", [
    ((0, 5), (7, 5), (0, 7)),
    ((4, 5), (0, 5), (4, 0)),
    ((2, 0, 5), (7, 5), (2, 0, 7)),
    ((5,), (0, 5), (0,)),
])
def test_linear_empty_shapes(isa, dtype, x_shape, w_shape, out_shape):
    x, w = np.ones(x_shape, dtype), np.ones(w_shape, dtype)
    bias = np.ones((w_shape[0],), dtype)
    for args in [(x, w), (x, w, bias)]:
        out = tfg.ops.linear(*args)
        assert out.shape == out_shape and out.dtype == dtype


# ----------------------------------------------------------------------------
# torch.matmul's shape rules.

@pytest.mark.parametrize("a_shape,b_shape,out_shape", [
    ((7,), (7,), ()),                       # dot product: a 0-d array
    ((1,), (1,), ()),
    ((7,), (7, 5), (5,)),                   # vector-matrix
    ((6, 7), (7,), (6,)),                   # matrix-vector
    ((3, 6, 7), (7,), (3, 6)),              # batched-vector
    ((7,), (3, 7, 5), (3, 5)),              # vector-batched
    ((2, 3, 6, 7), (7,), (2, 3, 6)),
    ((7,), (2, 3, 7, 5), (2, 3, 5)),
    ((2, 1, 3, 4), (5, 4, 6), (2, 5, 3, 6)),  # broadcast batch dims
    ((3, 4), (2, 4, 6), (2, 3, 6)),         # 2-D a broadcast over b's batch
    ((2, 3, 4), (2, 4, 6), (2, 3, 6)),
    ((1, 3, 4), (2, 4, 6), (2, 3, 6)),
    ((2, 3, 4), (1, 4, 6), (2, 3, 6)),
    ((2, 1, 3, 4), (1, 5, 4, 6), (2, 5, 3, 6)),
    ((5, 1, 1, 3, 4), (2, 1, 4, 6), (5, 2, 1, 3, 6)),
])
def test_matmul_shape_rules(isa, dtype, rng, a_shape, b_shape, out_shape):
    a, b = rand(rng, a_shape, dtype), rand(rng, b_shape, dtype)
    out = check_matmul(a, b)
    assert out.shape == out_shape
    assert out.ndim == len(out_shape)
    # Independent spot check of one entry of the broadcast against a plain dot product.
    if out.ndim == 0:
        assert abs(float(out) - float(np.dot(a.astype(np.float64), b.astype(np.float64)))) < 1e-4


def test_matmul_broadcast_batch_entries(isa, dtype, rng):
    # Each output matrix [i, j] must be a[i, 0] @ b[j]: a wrong batch offset shows here.
    a, b = rand(rng, (2, 1, 3, 4), dtype), rand(rng, (5, 4, 6), dtype)
    out = tfg.ops.matmul(a, b)
    for i in range(2):
        for j in range(5):
            exp = a[i, 0].astype(np.float64) @ b[j].astype(np.float64)
            np.testing.assert_allclose(out[i, j], exp, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [(3,), (2, 3), (1,), (3, 1), (1, 1, 2)])
def test_matmul_3d_contiguous_folds(isa, dtype, blocking, rng, batch):
    # A contiguous (..., T, K) times (K, N): the batch is folded into M. T is a
    # tile size + 1 so that folded rows straddle tiles differently than per batch entry.
    t, k, n = blocking["mr"] + 1, 33, blocking["nr"] + 3
    a, b = rand(rng, batch + (t, k), dtype), rand(rng, (k, n), dtype)
    assert a.flags.c_contiguous
    out = check_matmul(a, b)
    for idx in np.ndindex(*batch):  # every batch entry equals its own 2-D product
        exp = a[idx].astype(np.float64) @ b.astype(np.float64)
        np.testing.assert_allclose(out[idx], exp, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("view", ["row_step", "transposed_batch", "col_step", "batch_step",
                                  "inner_transposed", "broadcast_batch", "broadcast_rows"])
def test_matmul_3d_noncontiguous(isa, dtype, blocking, rng, view):
    t, k, n = blocking["mr"] + 1, 19, blocking["nr"] + 3
    big = 2 * max(t, k)
    base = rand(rng, (4, big, big), dtype)
    a = {
        "row_step": lambda: base[:, ::2, :k],             # batch stride != rows * row stride
        "transposed_batch": lambda: base[:, :t, :k].transpose(1, 0, 2),
        "col_step": lambda: base[:, :t, ::2],             # foldable rows, strided columns
        "batch_step": lambda: base[::2, :t, :k],
        "inner_transposed": lambda: base[:, :k, :t].transpose(0, 2, 1),
        "broadcast_batch": lambda: np.broadcast_to(base[0, :t, :k], (3, t, k)),
        "broadcast_rows": lambda: np.broadcast_to(base[0, 0, :k], (3, t, k)),
    }[view]()
    assert not a.flags.c_contiguous
    b = rand(rng, (a.shape[-1], n), dtype)
    check_matmul(a, b)


# ----------------------------------------------------------------------------
# Views: transposed, strided, negative strides, Fortran order, broadcast.

VIEWS_2D = {
    "contiguous": lambda x: x,
    "padded_rows": lambda x: np.pad(x, ((0, 0), (0, 3)))[:, :x.shape[1]],
    "fortran": lambda x: np.asfortranarray(x),
    "step_slice": lambda x: np.repeat(np.repeat(x, 2, axis=0), 3, axis=1)[::2, 1::3],
    "negative_rows": lambda x: np.ascontiguousarray(x[::-1])[::-1],
    "negative_both": lambda x: np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1],
}


@pytest.mark.parametrize("b_view", list(VIEWS_2D))
@pytest.mark.parametrize("a_view", list(VIEWS_2D))
def test_matmul_views(isa, dtype, blocking, rng, a_view, b_view):
    # The same values laid out differently must give the same product.
    m, k, n = blocking["mr"] + 2, 37, blocking["nr"] + 2
    a0, b0 = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    a, b = VIEWS_2D[a_view](a0), VIEWS_2D[b_view](b0)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
    out = check_matmul(a, b)
    np.testing.assert_allclose(out, tfg.ops.matmul(a0, b0), rtol=0, atol=0)


def test_matmul_transpose_operands(isa, dtype, rng):
    a, b = rand(rng, (40, 23), dtype), rand(rng, (31, 40), dtype)
    check_matmul(a.T, b.T)        # (23, 40) @ (40, 31)
    check_matmul(b, a)            # (31, 40) @ (40, 23)
    check_matmul(a.T, a)          # both operands are the same memory


def test_matmul_strided_slices(isa, dtype, rng):
    a, b = rand(rng, (30, 50), dtype), rand(rng, (50, 45), dtype)
    check_matmul(a[::2, 1::3], b[:17, ::2])          # (15, 17) @ (17, 23)
    check_matmul(a[::-1], b)                         # negative row stride of A
    check_matmul(a, b[::-1, ::-1])                   # negative strides of B
    check_matmul(a[::-3, ::-1], b[::-1, 5::4])       # negative and non-unit together
    check_matmul(a[:, ::-1].T[::2].T, b[::-2, ::3])  # (30, 25) @ (25, 15)


def test_matmul_fortran_order(isa, dtype, rng):
    a = np.asfortranarray(rand(rng, (3, 21, 17), dtype))
    b = np.asfortranarray(rand(rng, (17, 19), dtype))
    check_matmul(a, b)
    check_matmul(a, np.asfortranarray(rand(rng, (3, 17, 5), dtype)))
    check_matmul(np.asfortranarray(rand(rng, (21, 17), dtype)), b)


def test_matmul_broadcast_views(isa, dtype, blocking, rng):
    # Stride-0 views from np.broadcast_to, in every position.
    m, k, n = blocking["mr"] + 1, 29, blocking["nr"] + 1
    row, col = rand(rng, (k,), dtype), rand(rng, (k, 1), dtype)
    b = rand(rng, (k, n), dtype)
    a_rows = np.broadcast_to(row, (m, k))               # every row the same (row stride 0)
    out = check_matmul(a_rows, b)
    np.testing.assert_array_equal(out, np.broadcast_to(out[0], out.shape))
    a_cols = np.broadcast_to(rand(rng, (m, 1), dtype), (m, k))  # K stride 0
    check_matmul(a_cols, b)
    b_cols = np.broadcast_to(col, (k, n))               # B's column stride 0
    out = check_matmul(rand(rng, (m, k), dtype), b_cols)
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1], out.shape))
    b_rows = np.broadcast_to(rand(rng, (n,), dtype), (k, n))  # B's row stride 0
    check_matmul(rand(rng, (m, k), dtype), b_rows)
    scalar = np.broadcast_to(np.asarray(0.5, dtype), (m, k))  # all strides 0
    check_matmul(scalar, b)
    batch_a = np.broadcast_to(rand(rng, (m, k), dtype), (4, m, k))  # batch stride 0
    check_matmul(batch_a, b)
    check_matmul(batch_a, rand(rng, (4, k, n), dtype))
    batch_b = np.broadcast_to(b, (4, k, n))
    check_matmul(rand(rng, (4, m, k), dtype), batch_b)


def test_matmul_vector_views(isa, dtype, blocking, rng):
    # 1-D operands with non-unit, negative and zero strides.
    k, n, m = blocking["kc"] + 3, blocking["nr"] + 1, blocking["mr"] + 1
    v = rand(rng, (3 * k,), dtype)
    a2, b2 = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    vectors = {"step": v[::3], "negative": v[::-1][:k], "offset_step": v[1::3],
               "broadcast": np.broadcast_to(v[:1], (k,))}
    for name, x in vectors.items():
        assert x.shape == (k,), name
        assert check_matmul(x, x).shape == ()
        assert check_matmul(x, b2).shape == (n,)
        assert check_matmul(a2, x).shape == (m,)
        assert check_matmul(x, np.broadcast_to(b2, (2, k, n))).shape == (2, n)
        assert check_matmul(np.broadcast_to(a2, (2, m, k))[:, ::-1], x).shape == (2, m)


def test_matmul_batched_noncontiguous_both(isa, dtype, blocking, rng):
    m, k, n = blocking["mr"] + 1, 11, blocking["nr"] + 1
    a = rand(rng, (3, 2, k, m), dtype).transpose(1, 0, 3, 2)[:, None]   # (2, 1, 3, m, k)
    b = rand(rng, (2 * n, 4, k), dtype)[::-2].transpose(1, 2, 0)        # (4, k, n)
    assert a.shape == (2, 1, 3, m, k) and b.shape == (4, k, n)
    with pytest.raises(ValueError):   # batch (2, 1, 3) vs (4,) do not broadcast
        tfg.ops.matmul(a, b)
    out = check_matmul(a[:, :, :1], b)
    assert out.shape == (2, 1, 4, m, n)
    out = check_matmul(a[::-1, :, :, ::-1], b[:1])
    assert out.shape == (2, 1, 3, m, n)
    # A negative-stride 3-D view that is still one uniform stride (folds into M).
    base = rand(rng, (3, m, k), dtype)
    check_matmul(base[::-1, ::-1], rand(rng, (k, n), dtype))


# ----------------------------------------------------------------------------
# NaN and Inf.

def test_matmul_nan_propagates_to_its_row(isa, dtype, blocking, rng):
    m, k, n = 2 * blocking["mr"] + 1, blocking["kc"] + 3, 2 * blocking["nr"] + 1
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    a[1, 0] = np.nan
    a[m - 1, k - 1] = np.nan          # in an edge tile and the last K block
    out = check_matmul(a, b)
    assert np.isnan(out[1]).all() and np.isnan(out[m - 1]).all()
    assert np.isfinite(np.delete(out, [1, m - 1], axis=0)).all()
    b[5, n - 1] = np.nan              # a NaN in B poisons its column
    out = check_matmul(a, b)
    assert np.isnan(out[:, n - 1]).all()


def test_matmul_inf_times_zero_is_nan(isa, dtype, blocking, rng):
    m, k, n = blocking["mr"] + 1, 9, blocking["nr"] + 1
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    a[0, 3] = np.inf
    b[3, :] = 1.0
    b[3, 2] = 0.0                     # Inf * 0 -> NaN at (0, 2)
    a[m - 1, 4] = -np.inf
    b[4, n - 1] = 2.0                 # -Inf * 2 -> -Inf at (m-1, n-1) (b[4, :] finite)
    out = check_matmul(a, b)
    assert np.isnan(out[0, 2])
    assert np.isposinf(out[0, 0]) and np.isposinf(out[0, n - 1])
    assert np.isneginf(out[m - 1, n - 1])
    # +Inf + -Inf within one dot product -> NaN.
    a2 = rand(rng, (2, 4), dtype)
    a2[0, :2] = [np.inf, np.inf]
    b2 = np.array([[1, 1], [-1, 1], [0.5, 0.5], [0.5, 0.5]], dtype)
    out = check_matmul(a2, b2)
    assert np.isnan(out[0, 0]) and np.isposinf(out[0, 1]) and np.isfinite(out[1]).all()


def test_linear_nan_inf(isa, dtype, rng):
    x, w, bias = rand(rng, (5, 7), dtype), rand(rng, (9, 7), dtype), rand(rng, (9,), dtype)
    x[2, 3] = np.nan
    bias[4] = np.inf
    out = check_linear(x, w, bias)
    assert np.isnan(out[2]).all()
    assert np.isposinf(np.delete(out[:, 4], 2)).all()


def test_matmul_subnormals(isa, dtype):
    # No flush-to-zero: a product in the subnormal range survives, exactly as
    # NumPy computes the single product in the same dtype.
    tiny_a, tiny_b = (1e-30, 1e-10) if dtype == np.float32 else (1e-300, 1e-20)
    a = np.full((3, 1), tiny_a, dtype)
    b = np.full((1, 5), tiny_b, dtype)
    expected = a[0, 0] * b[0, 0]
    assert 0 < expected < np.finfo(dtype).tiny
    out = tfg.ops.matmul(a, b)
    np.testing.assert_array_equal(out, np.full((3, 5), expected, dtype))
    # Subnormal inputs are not treated as zero either.
    sub = np.full((2, 1), np.finfo(dtype).tiny / 4, dtype)
    out = tfg.ops.matmul(sub, np.full((1, 2), 2.0, dtype))
    np.testing.assert_array_equal(out, np.full((2, 2), np.finfo(dtype).tiny / 2, dtype))


# ----------------------------------------------------------------------------
# The returned array.

def test_output_is_fresh_contiguous_same_dtype(isa, dtype, rng):
    a, b = rand(rng, (2, 6, 5), dtype), rand(rng, (5, 7), dtype)
    a_t = np.asfortranarray(a[0])
    for out, inputs in [(tfg.ops.matmul(a, b), (a, b)),
                        (tfg.ops.matmul(a_t, b[:, ::-1]), (a_t, b)),
                        (tfg.ops.matmul(a[0, 0], b), (a, b)),
                        (tfg.ops.matmul(a[0, 0], b[:, 0]), (a, b)),
                        (tfg.ops.linear(a, b.T, b[0]), (a, b))]:
        assert type(out) is np.ndarray
        assert out.dtype == dtype
        assert out.flags.c_contiguous
        assert out.flags.writeable
        for x in inputs:
            assert not np.shares_memory(out, x)
    # Two calls give two buffers; writing to one leaves the other and the inputs alone.
    a0, b0 = a.copy(), b.copy()
    o1, o2 = tfg.ops.matmul(a, b), tfg.ops.matmul(a, b)
    assert not np.shares_memory(o1, o2)
    o1[...] = 123
    assert not (o2 == 123).any()
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


def test_output_outlives_inputs(isa, dtype, rng):
    a, b = rand(rng, (20, 30), dtype), rand(rng, (30, 10), dtype)
    expected = matmul_ref(a, b)
    out = tfg.ops.matmul(a, b)
    del a, b
    import gc
    gc.collect()
    junk = [np.full((20, 10), 7, dtype) for _ in range(10)]  # reuse freed memory
    assert_gemm_close(out, expected, dtype, 30, np.ones(1), np.ones(1))
    del junk


def test_readonly_inputs(isa, dtype, rng):
    a, b = rand(rng, (8, 9), dtype), rand(rng, (9, 4), dtype)
    a.flags.writeable = False
    b.flags.writeable = False
    check_matmul(a, b)
    check_linear(a, b.T, b[0])


# ----------------------------------------------------------------------------
# linear.

def test_linear_basic(isa, dtype, rng):
    x, w, bias = rand(rng, (13, 21), dtype), rand(rng, (11, 21), dtype), rand(rng, (11,), dtype)
    out = check_linear(x, w, bias)
    assert out.shape == (13, 11)
    out_nb = check_linear(x, w)
    out_none = tfg.ops.linear(x, w, None)
    np.testing.assert_array_equal(out_nb, out_none)
    # The bias is really added: the two differ by exactly the bias (to rounding).
    np.testing.assert_allclose(out - out_nb, np.broadcast_to(bias, out.shape), rtol=0,
                               atol=8 * np.finfo(dtype).eps * 21)
    out_kw = tfg.ops.linear(input=x, weight=w, bias=bias)
    np.testing.assert_array_equal(out_kw, out)


@pytest.mark.parametrize("bias_view", ["step", "negative", "broadcast", "offset_step"])
def test_linear_noncontiguous_bias(isa, dtype, blocking, rng, bias_view):
    n, k, m = 2 * blocking["nr"] + 1, 17, blocking["mr"] + 1
    x, w = rand(rng, (m, k), dtype), rand(rng, (n, k), dtype)
    full = rand(rng, (3 * n,), dtype)
    bias = {"step": full[::2][:n], "negative": full[::-1][:n], "offset_step": full[1::3],
            "broadcast": np.broadcast_to(full[:1], (n,))}[bias_view]
    assert bias.shape == (n,) and bias.strides[0] != bias.itemsize
    out = check_linear(x, w, bias)
    np.testing.assert_allclose(out, tfg.ops.linear(x, w, bias.copy()), rtol=0, atol=0)


def test_linear_1d_input(isa, dtype, rng):
    x, w, bias = rand(rng, (21,), dtype), rand(rng, (11, 21), dtype), rand(rng, (11,), dtype)
    out = check_linear(x, w, bias)
    assert out.shape == (11,)
    assert check_linear(x, w).shape == (11,)
    out = check_linear(x, rand(rng, (1, 21), dtype), bias[:1])
    assert out.shape == (1,)
    big = rand(rng, (63,), dtype)
    for view in [big[::3], big[::-3], big[2::3]]:   # strided 1-D input
        assert check_linear(view, w, bias).shape == (11,)


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced", "fortran"])
def test_linear_3d_input(isa, dtype, blocking, rng, layout):
    t, k, n = blocking["mr"] + 1, 23, blocking["nr"] + 2
    base = rand(rng, (4, 2 * t, 2 * k), dtype)
    x = {"contiguous": np.ascontiguousarray(base[:, :t, :k]),
         "transposed": base[:, :t, :k].transpose(1, 0, 2),
         "sliced": base[:, ::2, ::2],
         "fortran": np.asfortranarray(base[:, :t, :k])}[layout]
    w, bias = rand(rng, (n, x.shape[-1]), dtype), rand(rng, (n,), dtype)
    out = check_linear(x, w, bias)
    assert out.shape == x.shape[:-1] + (n,)
    check_linear(x[None], w)  # 4-D


@pytest.mark.parametrize("weight_view", ["transposed", "step", "negative", "fortran", "broadcast"])
def test_linear_noncontiguous_weight(isa, dtype, blocking, rng, weight_view):
    k, n, m = blocking["kc"] + 2, 2 * blocking["nr"] + 1, blocking["mr"] + 1
    w_in_out = rand(rng, (k, n), dtype)
    big = rand(rng, (2 * n, 2 * k), dtype)
    w = {"transposed": w_in_out.T,                # (out, in) view of an (in, out) array
         "step": big[::2, 1::2],
         "negative": big[:n, :k][::-1, ::-1],
         "fortran": np.asfortranarray(big[:n, :k]),
         "broadcast": np.broadcast_to(big[0, :k], (n, k))}[weight_view]
    assert w.shape == (n, k) and not w.flags.c_contiguous
    x, bias = rand(rng, (m, k), dtype), rand(rng, (n,), dtype)
    out = check_linear(x, w, bias)
    np.testing.assert_allclose(out, tfg.ops.linear(x, np.ascontiguousarray(w), bias),
                               rtol=0, atol=0)


def test_linear_matches_matmul(isa, dtype, rng):
    x, w = rand(rng, (3, 5, 16), dtype), rand(rng, (9, 16), dtype)
    np.testing.assert_array_equal(tfg.ops.linear(x, w), tfg.ops.matmul(x, w.T))


# ----------------------------------------------------------------------------
# A large problem, float32 on the best ISA only (time).

def test_matmul_large_1024(best_isa, rng):
    n = 1024
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    out = tfg.ops.matmul(a, b)
    assert out.shape == (n, n) and out.dtype == np.float32
    rows = rng.choice(n, size=48, replace=False)
    cols = rng.choice(n, size=48, replace=False)
    # Exact comparison on a sample of whole rows and whole columns...
    assert_gemm_close(out[rows], matmul_ref(a[rows], b), np.float32, n, a, b)
    assert_gemm_close(out[:, cols], matmul_ref(a, b[:, cols]), np.float32, n, a, b)
    # ...and of everything through random projections (Freivalds): out @ v = a @ (b @ v).
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    _, atol = gemm_tolerance(np.float32, n, a, b)
    for _ in range(3):
        v = rng.uniform(-1, 1, size=n)
        lhs = out.astype(np.float64) @ v
        rhs = a64 @ (b64 @ v)
        assert np.all(np.abs(lhs - rhs) <= atol * np.abs(v).sum()), np.abs(lhs - rhs).max()
    # Each entry's error is far below an entry's typical size: no garbage anywhere.
    assert np.isfinite(out).all()


# ----------------------------------------------------------------------------
# Random shapes and layouts (seeded): combinations the targeted tests miss.

def random_view(rng, x):
    """The same values as x, laid out with random reversals, steps and transposition."""
    for ax in range(x.ndim):
        choice = rng.integers(4)
        if choice == 0:
            x = np.flip(np.ascontiguousarray(np.flip(x, ax)), ax)
        elif choice == 1:
            step = int(rng.integers(2, 4))
            sl = [slice(None)] * x.ndim
            sl[ax] = slice(0, None, step)
            x = np.repeat(x, step, axis=ax)[tuple(sl)]
    if x.ndim >= 2 and rng.integers(3) == 0:
        perm = list(range(x.ndim))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        x = np.ascontiguousarray(x.transpose(perm)).transpose(perm)
    return x


def test_random_shapes_and_views(isa, dtype, blocking, rng):
    for _ in range(25):
        m, n, k = (int(rng.integers(0, 3 * t)) for t in (blocking["mr"], blocking["nr"], 20))
        if rng.integers(4) == 0:
            k = int(rng.integers(blocking["kc"] - 2, 2 * blocking["kc"] + 3))
        batch_a = tuple(int(rng.choice([1, 2, 3])) for _ in range(rng.integers(0, 3)))
        batch_b = tuple(d if rng.integers(2) else 1 for d in batch_a[rng.integers(0, len(batch_a) + 1):])
        a, b = rand(rng, batch_a + (m, k), dtype), rand(rng, batch_b + (k, n), dtype)
        if a.ndim == 2 and m and rng.integers(4) == 0:
            a = a[0]
        if b.ndim == 2 and n and rng.integers(4) == 0:
            b = b[:, 0]
        av, bv = random_view(rng, a), random_view(rng, b)
        np.testing.assert_array_equal(av, a)
        if b.ndim == 2 and rng.integers(2):
            bias = rand(rng, (n,), dtype) if rng.integers(2) else None
            out = tfg.ops.linear(av, bv.T, bias)
            assert_gemm_close(out, linear_ref(a, b.T, bias), dtype, k, a, b, bias)
        else:
            assert_gemm_close(tfg.ops.matmul(av, bv), matmul_ref(a, b), dtype, k, a, b)
