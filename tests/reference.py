"""Plain float64 NumPy references for the kernels, and the tolerances used to
compare against them.

The references are written for clarity, not speed: the shape rules of
torch.matmul are spelled out step by step and the product is an explicit sum
over k in float64, so they share no code path (and no BLAS) with what they
check.
"""
import numpy as np


def matmul_ref(a, b):
    """torch.matmul semantics, computed in float64.

    1-D a is a row (1, K) and 1-D b a column (K, 1); the added dimension is
    dropped from the result. Batch dimensions (all but the last two) broadcast.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.ndim >= 1 and b.ndim >= 1
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
    m, k = a2.shape[-2:]
    k2, n = b2.shape[-2:]
    assert k == k2, (a.shape, b.shape)
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    count = int(np.prod(batch, dtype=np.int64))
    a3 = np.broadcast_to(a2, batch + (m, k)).reshape(count, m, k)
    b3 = np.broadcast_to(b2, batch + (k, n)).reshape(count, k, n)

    out = np.zeros((count, m, n), dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # Inf * 0 = NaN is intended
        for p in range(k):
            out += a3[:, :, p, None] * b3[:, None, p, :]

    shape = batch + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())
    return out.reshape(shape)


def linear_ref(x, weight, bias=None):
    """torch.nn.functional.linear: x @ weight.T + bias, in float64."""
    out = matmul_ref(x, np.asarray(weight, dtype=np.float64).T)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)
    return out


def _absmax(x):
    x = np.asarray(x, dtype=np.float64)
    finite = x[np.isfinite(x)]
    return float(np.abs(finite).max()) if finite.size else 0.0


def gemm_tolerance(dtype, k, a, b, bias=None, c=4.0):
    """(rtol, atol) for comparing a GEMM computed in `dtype` with its float64 reference.

    A dot product of length K accumulated in precision eps has an absolute
    error of at most about K * eps * sum_k |a_ik| |b_kj| (the standard
    forward bound gamma_K), and sum_k |a_ik||b_kj| <= K * max|a| * max|b|.
    The typical error grows like sqrt(K), so the bound
        atol = c * eps * K * max|a| * max|b|   (+ eps * max|bias| for linear)
    with a safety factor c holds by a wide margin for any blocking order or
    FMA use, while a real indexing bug (a missing, repeated or misplaced term
    of size ~ max|a| * max|b|) is K / c times larger than atol and never
    passes. rtol = c * eps * K covers entries whose magnitude dominates.
    max(K, 1) keeps K = 0 (exact zeros or exactly the bias) strict.
    Non-finite entries are excluded from the maxima; they are compared exactly.
    """
    eps = float(np.finfo(dtype).eps)
    k = max(int(k), 1)
    atol = c * eps * k * _absmax(a) * _absmax(b)
    if bias is not None:
        atol += c * eps * _absmax(bias)
    # The smallest positive normal number, so an all-zero problem is still compared sensibly.
    atol = max(atol, float(np.finfo(dtype).tiny))
    rtol = c * eps * k
    return rtol, atol


def assert_gemm_close(actual, expected, dtype, k, a, b, bias=None):
    """Checks dtype, exact shape, NaN/Inf positions and values within gemm_tolerance."""
    assert isinstance(actual, np.ndarray), type(actual)
    assert actual.dtype == np.dtype(dtype), (actual.dtype, dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    rtol, atol = gemm_tolerance(dtype, k, a, b, bias)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol,
                               equal_nan=True)
