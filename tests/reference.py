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


# ----------------------------------------------------------------------------
# 2-D pooling (F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d and their
# gradients), one output element at a time over every plane at once: the
# window of output (oh, ow) starts at (oh * sh - ph, ow * sw - pw) and its taps
# are checked against the input bounds one by one.

def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def pool_output_size(n, k, s, p, d, ceil_mode):
    """PyTorch's pooling_output_shape for one dimension."""
    span = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = span // s + 1  # floor division, also for negative spans
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def _planes(x):
    """(N, C, H, W) or (C, H, W) -> float64 (planes, H, W) and the leading shape."""
    x = np.asarray(x, dtype=np.float64)
    assert x.ndim in (3, 4)
    return x.reshape((-1,) + x.shape[-2:]), x.shape[:-2]


def _pool_options(kernel_size, stride, padding, dilation):
    k = _pair(kernel_size)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else _pair(stride)
    return k, s, _pair(padding), _pair(dilation)


def max_pool2d_ref(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(out, indices) as F.max_pool2d(..., return_indices=True), in float64.

    Taps are scanned row by row; a tap wins when v > best or v is NaN, starting
    from best = -inf and the first in-bounds position (so ties keep the first
    maximum, the last NaN wins, an all -inf window points at its first
    in-bounds element). A window with no element inside the input gives -inf
    and index -1.
    """
    xp, lead = _planes(x)
    planes, h, w = xp.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _pool_options(kernel_size, stride, padding, dilation)
    oh_n = pool_output_size(h, kh, sh, ph, dh, ceil_mode)
    ow_n = pool_output_size(w, kw, sw, pw, dw, ceil_mode)
    out = np.full((planes, oh_n, ow_n), -np.inf)
    ind = np.full((planes, oh_n, ow_n), -1, dtype=np.int64)
    for oh in range(oh_n):
        for ow in range(ow_n):
            best = np.full(planes, -np.inf)
            arg = np.full(planes, -1, dtype=np.int64)
            first = True
            for i in range(kh):
                hh = oh * sh - ph + i * dh
                if not 0 <= hh < h:
                    continue
                for j in range(kw):
                    ww = ow * sw - pw + j * dw
                    if not 0 <= ww < w:
                        continue
                    if first:
                        arg[:] = hh * w + ww
                        first = False
                    v = xp[:, hh, ww]
                    take = (v > best) | np.isnan(v)
                    best = np.where(take, v, best)
                    arg = np.where(take, hh * w + ww, arg)
            out[:, oh, ow] = best
            ind[:, oh, ow] = arg
    return out.reshape(lead + (oh_n, ow_n)), ind.reshape(lead + (oh_n, ow_n))


def max_pool2d_backward_ref(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, indices=None):
    """grad_x: each output's gradient added at its argmax (indices, or recomputed)."""
    xp, lead = _planes(x)
    if indices is None:
        indices = max_pool2d_ref(x, kernel_size, stride, padding, dilation, ceil_mode)[1]
    g = np.asarray(grad_output, dtype=np.float64).reshape(xp.shape[0], -1)
    ind = np.asarray(indices).reshape(xp.shape[0], -1)
    gx = np.zeros((xp.shape[0], xp.shape[1] * xp.shape[2]))
    for p in range(xp.shape[0]):
        for o in range(ind.shape[1]):
            if ind[p, o] >= 0:
                gx[p, ind[p, o]] += g[p, o]
    return gx.reshape(np.shape(x))


def _avg_windows(h, w, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """(oh_n, ow_n) and, for every output of avg_pool2d, (oh, ow, rows, cols, divisor)."""
    (kh, kw), (sh, sw), (ph, pw), _ = _pool_options(kernel_size, stride, padding, 1)
    oh_n = pool_output_size(h, kh, sh, ph, 1, ceil_mode)
    ow_n = pool_output_size(w, kw, sw, pw, 1, ceil_mode)
    windows = []
    for oh in range(oh_n):
        for ow in range(ow_n):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, h + ph), min(w0 + kw, w + pw)  # clipped to the padded input
            pool_size = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            if divisor_override is not None:
                divisor = divisor_override
            elif count_include_pad:
                divisor = pool_size
            else:
                divisor = (h1 - h0) * (w1 - w0)
            windows.append((oh, ow, range(h0, h1), range(w0, w1), divisor))
    return (oh_n, ow_n), windows


def avg_pool2d_ref(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                   divisor_override=None):
    """F.avg_pool2d in float64 (a window with no input element gives 0)."""
    xp, lead = _planes(x)
    shape, windows = _avg_windows(xp.shape[1], xp.shape[2], kernel_size, stride, padding,
                                  ceil_mode, count_include_pad, divisor_override)
    out = np.zeros((xp.shape[0],) + shape)
    for oh, ow, rows, cols, divisor in windows:
        total = np.zeros(xp.shape[0])
        for hh in rows:
            for ww in cols:
                total = total + xp[:, hh, ww]
        if len(rows) and len(cols):
            out[:, oh, ow] = total / divisor
    return out.reshape(lead + shape)


def avg_pool2d_backward_ref(grad_output, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                            count_include_pad=True, divisor_override=None):
    """grad_x: each output's gradient / divisor added over its (clipped) window."""
    xp, lead = _planes(x)
    shape, windows = _avg_windows(xp.shape[1], xp.shape[2], kernel_size, stride, padding,
                                  ceil_mode, count_include_pad, divisor_override)
    g = np.asarray(grad_output, dtype=np.float64).reshape((xp.shape[0],) + shape)
    gx = np.zeros(xp.shape)
    for oh, ow, rows, cols, divisor in windows:
        for hh in rows:
            for ww in cols:
                gx[:, hh, ww] += g[:, oh, ow] / divisor
    return gx.reshape(np.shape(x))


def _adaptive_bins(n, out):
    """PyTorch's bins: output i covers [floor(i * n / out), ceil((i + 1) * n / out))."""
    return [(i * n // out, -((-(i + 1) * n) // out)) for i in range(out)]


def _adaptive_size(x_shape, output_size):
    oh, ow = _pair(output_size)
    return (x_shape[-2] if oh is None else oh), (x_shape[-1] if ow is None else ow)


def adaptive_avg_pool2d_ref(x, output_size):
    """F.adaptive_avg_pool2d in float64."""
    xp, lead = _planes(x)
    oh_n, ow_n = _adaptive_size(xp.shape, output_size)
    out = np.zeros((xp.shape[0], oh_n, ow_n))
    for oh, (h0, h1) in enumerate(_adaptive_bins(xp.shape[1], oh_n)):
        for ow, (w0, w1) in enumerate(_adaptive_bins(xp.shape[2], ow_n)):
            total = np.zeros(xp.shape[0])
            for hh in range(h0, h1):
                for ww in range(w0, w1):
                    total = total + xp[:, hh, ww]
            out[:, oh, ow] = total / ((h1 - h0) * (w1 - w0))
    return out.reshape(lead + (oh_n, ow_n))


def adaptive_avg_pool2d_backward_ref(grad_output, x, output_size):
    """grad_x: each output's gradient / bin area added over its bin."""
    xp, lead = _planes(x)
    oh_n, ow_n = _adaptive_size(xp.shape, output_size)
    g = np.asarray(grad_output, dtype=np.float64).reshape((xp.shape[0], oh_n, ow_n))
    gx = np.zeros(xp.shape)
    for oh, (h0, h1) in enumerate(_adaptive_bins(xp.shape[1], oh_n)):
        for ow, (w0, w1) in enumerate(_adaptive_bins(xp.shape[2], ow_n)):
            gx[:, h0:h1, w0:w1] += g[:, oh, ow, None, None] / ((h1 - h0) * (w1 - w0))
    return gx.reshape(np.shape(x))


def sum_tolerance(dtype, terms, *arrays, c=4.0):
    """(rtol, atol) for a sum of `terms` products/values of `arrays` in `dtype`
    (divided by a count, which adds one rounding): the gemm_tolerance bound
    with K = terms."""
    eps = float(np.finfo(dtype).eps)
    terms = max(int(terms), 1) + 1
    scale = 1.0
    for a in arrays:
        scale *= max(_absmax(a), 1e-300)
    return c * eps * terms, max(c * eps * terms * scale, float(np.finfo(dtype).tiny))
