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


# ---- conv2d ------------------------------------------------------------------

def conv2d_padding(kernel, dilation, padding):
    """((top, bottom), (left, right)) for padding given as int, pair, "same" or "valid"."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        # PyTorch: total padding d * (k - 1); an odd total puts the extra pixel after.
        pads = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return (ph, ph), (pw, pw)


def _pair(v):
    """An int (or NumPy integer) as (v, v); a pair as a tuple."""
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _conv_setup(x, weight, stride, padding, dilation):
    """Zero-padded input (N, C, Hp, Wp) and, per kernel tap (i, j), the window of
    the padded input that tap sees for every output pixel: (N, C, OH, OW)."""
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    kh, kw = weight.shape[2:]
    (pt, pb), (pl, pr) = conv2d_padding((kh, kw), (dh, dw), padding)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1

    def window(i, j):
        r, c = i * dh, j * dw
        return (slice(None), slice(None), slice(r, r + sh * (oh - 1) + 1, sh),
                slice(c, c + sw * (ow - 1) + 1, sw))

    return xp, (oh, ow), window, ((pt, pb), (pl, pr))


def conv2d_ref(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """F.conv2d in float64: for each group and kernel tap, the tap's window of
    the padded input times that tap's weights, summed over input channels."""
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    n, c = x.shape[:2]
    oc, cg, kh, kw = weight.shape
    og = oc // groups
    xp, (oh, ow), window, _ = _conv_setup(x, weight, stride, padding, dilation)
    out = np.zeros((n, oc, oh, ow))
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for o in range(g * og, (g + 1) * og):
            for ci in range(cg):
                for i in range(kh):
                    for j in range(kw):
                        out[:, o] += weight[o, ci, i, j] * xs[window(i, j)][:, ci]
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return out[0] if unbatched else out


def conv2d_backward_ref(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """(grad_input, grad_weight, grad_bias) of F.conv2d in float64, from the same
    tap-by-tap sum: each term w * window contributes grad * w to the window of
    the padded input and grad * window to w."""
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    gy = np.asarray(grad_output, dtype=np.float64)
    unbatched = x.ndim == 3
    if unbatched:
        x, gy = x[None], gy[None]
    oc, cg, kh, kw = weight.shape
    og = oc // groups
    xp, _, window, ((pt, _), (pl, _)) = _conv_setup(x, weight, stride, padding, dilation)
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(weight)
    for g in range(groups):
        for o in range(g * og, (g + 1) * og):
            for ci in range(cg):
                c = g * cg + ci
                for i in range(kh):
                    for j in range(kw):
                        win = window(i, j)
                        gxp[win][:, c] += weight[o, ci, i, j] * gy[:, o]
                        gw[o, ci, i, j] += np.sum(gy[:, o] * xp[win][:, c])
    gx = gxp[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]]
    gb = gy.sum(axis=(0, 2, 3))
    return (gx[0] if unbatched else gx), gw, gb


# ----------------------------------------------------------------------------
# softmax, log_softmax, cross_entropy

def _rows_along(x, dim):
    """x (float64) with `dim` moved last and flattened to (rows, n), and a function
    that puts such rows back into x's shape."""
    moved = np.moveaxis(x, dim, -1)
    rows = moved.reshape(-1, moved.shape[-1])

    def restore(r):
        return np.moveaxis(r.reshape(moved.shape), -1, dim)
    return rows, restore


def _log_softmax_row(row):
    """log_softmax of one float64 row: (x - m) - log(sum(exp(x - m))), m = max.
    NaN anywhere, +inf anywhere or a row of only -inf gives NaN everywhere."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(row)
        shifted = row - m
        return shifted - np.log(np.sum(np.exp(shifted)))


def softmax_ref(x, dim, log=False):
    """torch.nn.functional.softmax / log_softmax along dim, in float64, one row at a time."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        return softmax_ref(x.reshape(1), 0, log).reshape(())
    rows, restore = _rows_along(x, dim)
    out = np.empty_like(rows)
    for r in range(rows.shape[0]):
        lp = _log_softmax_row(rows[r])
        out[r] = lp if log else np.exp(lp)
    return restore(out)


def softmax_backward_ref(grad_output, x, dim, log=False):
    """Gradient of sum(grad_output * f(x)) for f = softmax (grad = y * (g - sum(g * y)))
    or log_softmax (grad = g - softmax(x) * sum(g)), one row at a time in float64."""
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(grad_output, dtype=np.float64)
    if x.ndim == 0:
        return softmax_backward_ref(g.reshape(1), x.reshape(1), 0, log).reshape(())
    xr, restore = _rows_along(x, dim)
    gr, _ = _rows_along(g, dim)
    out = np.empty_like(xr)
    for r in range(xr.shape[0]):
        p = np.exp(_log_softmax_row(xr[r]))
        if log:
            out[r] = gr[r] - p * np.sum(gr[r])
        else:
            out[r] = p * (gr[r] - np.sum(gr[r] * p))
    return restore(out)


def _cross_entropy_rows(input, target):
    """input as (rows, C) float64 with the class dimension (1, or 0 for 1-D) last, target as (rows,)."""
    x = np.asarray(input, dtype=np.float64)
    t = np.asarray(target).astype(np.int64)
    if x.ndim == 1:
        x, t = x[None, :], t.reshape(1)
    c = x.shape[1]
    rows = np.moveaxis(x, 1, -1).reshape(-1, c)
    return rows, t.reshape(-1), c


def cross_entropy_ref(input, target, weight=None, ignore_index=-100, reduction="mean",
                      label_smoothing=0.0):
    """torch.nn.functional.cross_entropy with class-index targets, in float64, row by row:
    loss = (1 - eps) * -w[t] * lp[t] + eps / C * sum_c -w[c] * lp[c], 0 for ignored targets;
    'mean' divides the sum by the sum of w[t] over the targets that are not ignored."""
    rows, t, c = _cross_entropy_rows(input, target)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    eps = float(label_smoothing)
    losses = np.zeros(rows.shape[0])
    denom = 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for r in range(rows.shape[0]):
            if t[r] == ignore_index:
                continue
            assert 0 <= t[r] < c, t[r]
            lp = _log_softmax_row(rows[r])
            nll = -w[t[r]] * lp[t[r]]
            loss = nll
            if eps != 0.0:
                loss = (1 - eps) * nll + eps / c * np.sum(-w * lp)
            losses[r] = loss
            denom += w[t[r]]
    if reduction == "none":
        return losses.reshape(np.shape(target))
    total = np.sum(losses)
    if reduction == "sum":
        return np.float64(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.float64(total) / np.float64(denom)


def cross_entropy_backward_ref(grad_output, input, target, weight=None, ignore_index=-100,
                               reduction="mean", label_smoothing=0.0):
    """Gradient of cross_entropy with respect to input, row by row in float64:
    d loss_r / d x_r = (1 - eps) * w[t] * (p - onehot(t)) + eps / C * (p * sum(w) - w),
    scaled by grad_output (per row for 'none'; divided by the mean's denominator for 'mean')."""
    x = np.asarray(input, dtype=np.float64)
    rows, t, c = _cross_entropy_rows(x, target)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    eps = float(label_smoothing)
    go = np.asarray(grad_output, dtype=np.float64)
    if reduction == "none":
        scales = go.reshape(-1)
    else:
        scales = np.full(rows.shape[0], float(go))
        if reduction == "mean":
            kept = [r for r in range(rows.shape[0]) if t[r] != ignore_index]
            denom = sum(w[t[r]] for r in kept)
            with np.errstate(invalid="ignore", divide="ignore"):
                scales = scales / np.float64(denom)
    grad = np.zeros_like(rows)
    with np.errstate(invalid="ignore", over="ignore"):
        for r in range(rows.shape[0]):
            if t[r] == ignore_index:
                continue
            p = np.exp(_log_softmax_row(rows[r]))
            onehot = np.zeros(c)
            onehot[t[r]] = 1.0
            d = (1 - eps) * w[t[r]] * (p - onehot) + eps / c * (p * np.sum(w) - w)
            grad[r] = scales[r] * d
    if x.ndim == 1:
        return grad.reshape(x.shape)
    moved_shape = (x.shape[0],) + x.shape[2:] + (c,)
    return np.moveaxis(grad.reshape(moved_shape), -1, 1)


# ----------------------------------------------------------------------------
# 2-D pooling (F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d and their
# gradients), one output element at a time over every plane at once: the
# window of output (oh, ow) starts at (oh * sh - ph, ow * sw - pw) and its taps
# are checked against the input bounds one by one.

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


def score_order_ref(scores):
    """torch.sort(scores, descending=True, stable=True) indices: NaN first, then
    decreasing score, equal scores in input order (Python's sort is stable)."""
    scores = [float(s) for s in np.asarray(scores, dtype=np.float64)]
    return sorted(range(len(scores)), key=lambda i: (0, 0.0) if np.isnan(scores[i]) else (1, -scores[i]))


def nms_ref(boxes, scores, iou_threshold):
    """torchvision's CPU nms as the plain greedy loop, in float64: boxes in score
    order; each box not yet suppressed is kept and suppresses every later box
    whose IoU with it is > iou_threshold. The IoU of the kept box against the
    later boxes is one NumPy expression (that inner loop over j written out),
    with torchvision's operations: std::max(a, b) is `b if a < b else a`
    (np.where below), so NaN widths become 0 and NaN IoUs suppress nothing."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = score_order_ref(scores)
    x1, y1, x2, y2 = (b[order, c] for c in range(4))
    area = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    with np.errstate(all="ignore"):
        for i in range(len(order)):
            if suppressed[i]:
                continue
            keep.append(order[i])
            j = slice(i + 1, None)
            xx1 = np.where(x1[i] < x1[j], x1[j], x1[i])
            yy1 = np.where(y1[i] < y1[j], y1[j], y1[i])
            xx2 = np.where(x2[j] < x2[i], x2[j], x2[i])
            yy2 = np.where(y2[j] < y2[i], y2[j], y2[i])
            w = np.where(0.0 < xx2 - xx1, xx2 - xx1, 0.0)
            h = np.where(0.0 < yy2 - yy1, yy2 - yy1, 0.0)
            inter = w * h
            ovr = inter / (area[i] + area[j] - inter)
            suppressed[j] |= ovr > iou_threshold
    return np.array(keep, dtype=np.int64)


def batched_nms_ref(boxes, scores, idxs, iou_threshold):
    """nms_ref within each category, then all kept indices in score order."""
    idxs = np.asarray(idxs)
    kept = []
    for c in np.unique(idxs):
        members = np.flatnonzero(idxs == c)
        kept.extend(members[nms_ref(np.asarray(boxes)[members], np.asarray(scores)[members],
                                    iou_threshold)])
    scores = np.asarray(scores, dtype=np.float64)
    order = score_order_ref(scores)
    rank = {i: r for r, i in enumerate(order)}
    return np.array(sorted(kept, key=lambda i: rank[i]), dtype=np.int64)


def box_iou_ref(boxes1, boxes2):
    """torchvision.ops.box_iou in float64, pair by pair (NaN propagates, as
    torch.max / clamp do): inter / (area1 + area2 - inter)."""
    a = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    out = np.zeros((len(a), len(b)))
    with np.errstate(all="ignore"):
        for i in range(len(a)):
            for j in range(len(b)):
                w = np.minimum(a[i, 2], b[j, 2]) - np.maximum(a[i, 0], b[j, 0])
                h = np.minimum(a[i, 3], b[j, 3]) - np.maximum(a[i, 1], b[j, 1])
                inter = np.maximum(w, 0.0) * np.maximum(h, 0.0)
                area_a = (a[i, 2] - a[i, 0]) * (a[i, 3] - a[i, 1])
                area_b = (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1])
                out[i, j] = inter / (area_a + area_b - inter)
    return out


# ---- LSTM --------------------------------------------------------------------

def _sigmoid(z):
    with np.errstate(over="ignore"):  # exp(-z) = inf for z << 0 gives exactly 0
        return 1.0 / (1.0 + np.exp(-z))


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def _lstm_gates(x, h, w_ih, w_hh, b_ih, b_hh):
    """Gate activations (i, f, g, o) of one step, each (N, H), in float64."""
    z = x @ w_ih.T + h @ w_hh.T
    if b_ih is not None:
        z = z + b_ih
    if b_hh is not None:
        z = z + b_hh
    H = w_hh.shape[1]
    zi, zf, zg, zo = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
    return _sigmoid(zi), _sigmoid(zf), np.tanh(zg), _sigmoid(zo)


def lstm_ref(x, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    """torch.nn.LSTM, one layer: x (T, N, I) -> (y, h, c) in float64, step by step:
    i, f, g, o = sigma, sigma, tanh, sigma of x w_ih^T + h w_hh^T + b_ih + b_hh;
    c = f c + i g; h = o tanh(c)."""
    x, h, c = _f64(x), _f64(hx), _f64(cx)
    w_ih, w_hh, b_ih, b_hh = _f64(w_ih), _f64(w_hh), _f64(b_ih), _f64(b_hh)
    ys = []
    for t in range(x.shape[0]):
        i, f, g, o = _lstm_gates(x[t], h, w_ih, w_hh, b_ih, b_hh)
        c = f * c + i * g
        h = o * np.tanh(c)
        ys.append(h)
    y = np.stack(ys) if ys else np.zeros((0,) + h.shape)
    return y, h, c


def lstm_cell_ref(x, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    """torch.nn.LSTMCell: (h, c); x (N, I) or (I,) with hx, cx (N, H) or (H,)."""
    x = _f64(x)
    if x.ndim == 1:
        _, h, c = lstm_ref(x[None, None], _f64(hx)[None], _f64(cx)[None], w_ih, w_hh, b_ih, b_hh)
        return h[0], c[0]
    _, h, c = lstm_ref(x[None], hx, cx, w_ih, w_hh, b_ih, b_hh)
    return h, c


def lstm_backward_ref(grad_y, grad_h, grad_c, x, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    """Backpropagation through time for lstm_ref, written out step by step in float64:
    (grad_x, grad_hx, grad_cx, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    x, hx, cx = _f64(x), _f64(hx), _f64(cx)
    w_ih, w_hh, b_ih, b_hh = _f64(w_ih), _f64(w_hh), _f64(b_ih), _f64(b_hh)
    T = x.shape[0]
    # Forward, keeping every step.
    hs, cs, gates = [hx], [cx], []
    for t in range(T):
        i, f, g, o = _lstm_gates(x[t], hs[-1], w_ih, w_hh, b_ih, b_hh)
        c = f * cs[-1] + i * g
        hs.append(o * np.tanh(c))
        cs.append(c)
        gates.append((i, f, g, o))
    dh = np.zeros_like(hx) if grad_h is None else _f64(grad_h).copy()
    dc = np.zeros_like(cx) if grad_c is None else _f64(grad_c).copy()
    gx = np.zeros_like(x)
    gw_ih, gw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
    gb = np.zeros(w_ih.shape[0])
    for t in reversed(range(T)):
        if grad_y is not None:
            dh = dh + _f64(grad_y)[t]
        i, f, g, o = gates[t]
        tc = np.tanh(cs[t + 1])
        do = dh * tc
        dc = dc + dh * o * (1.0 - tc ** 2)
        di, df, dg = dc * g, dc * cs[t], dc * i
        dz = np.concatenate([di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g ** 2),
                             do * o * (1.0 - o)], axis=1)
        gx[t] = dz @ w_ih
        gw_ih += dz.T @ x[t]
        gw_hh += dz.T @ hs[t]
        gb += dz.sum(axis=0)
        dh = dz @ w_hh
        dc = dc * f
    return (gx, dh, dc, gw_ih, gw_hh, None if b_ih is None else gb.copy(),
            None if b_hh is None else gb.copy())


def lstm_cell_backward_ref(grad_h, grad_c, x, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    """Gradient of lstm_cell_ref: the seven gradients of lstm_backward_ref for one step."""
    x = _f64(x)
    squeeze = x.ndim == 1
    if squeeze:
        x, hx, cx = x[None], _f64(hx)[None], _f64(cx)[None]
        grad_h = None if grad_h is None else _f64(grad_h)[None]
        grad_c = None if grad_c is None else _f64(grad_c)[None]
    g = lstm_backward_ref(None if grad_h is None else _f64(grad_h)[None], None, grad_c, x[None],
                          hx, cx, w_ih, w_hh, b_ih, b_hh)
    gx, ghx, gcx = g[0][0], g[1], g[2]
    if squeeze:
        gx, ghx, gcx = gx[0], ghx[0], gcx[0]
    return (gx, ghx, gcx) + tuple(g[3:])


# ---- scaled dot-product attention ----------------------------------------------

def _sdpa_expand(query, key, value, attn_mask, enable_gqa):
    """q, k, v (GQA heads repeated) and the additive mask, in float64, broadcast."""
    q = np.asarray(query, dtype=np.float64)
    k = np.asarray(key, dtype=np.float64)
    v = np.asarray(value, dtype=np.float64)
    if enable_gqa:
        k = np.repeat(k, q.shape[-3] // k.shape[-3], axis=-3)
        v = np.repeat(v, q.shape[-3] // v.shape[-3], axis=-3)
    add = 0.0
    if attn_mask is not None:
        m = np.asarray(attn_mask)
        if m.dtype == np.bool_:
            add = np.where(m, 0.0, -np.inf)
        else:
            add = m.astype(np.float64)
    return q, k, v, add


def sdpa_probs_ref(query, key, value, attn_mask=None, is_causal=False, scale=None,
                   enable_gqa=False):
    """The attention weights softmax(q k^T * scale + mask) (..., L, S), with the
    rows whose keys are all masked set to 0 (PyTorch 2.13)."""
    q, k, v, add = _sdpa_expand(query, key, value, attn_mask, enable_gqa)
    L, S = q.shape[-2], k.shape[-2]
    if scale is None:
        scale = 1.0 / np.sqrt(q.shape[-1]) if q.shape[-1] > 0 else 1.0
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * scale + add
    if is_causal:
        keep = np.zeros((L, S), dtype=bool)
        for i in range(L):
            for j in range(S):
                keep[i, j] = j <= i
        s = np.where(keep, s, -np.inf)
    p = np.zeros(s.shape)
    flat_s = s.reshape(-1, L, S) if s.size else s.reshape(0, L, S)
    flat_p = p.reshape(flat_s.shape)
    for b in range(flat_s.shape[0]):
        for i in range(L):
            row = flat_s[b, i]
            mx = np.max(row) if S else -np.inf
            if mx == -np.inf:
                continue
            e = np.exp(row - mx)
            flat_p[b, i] = e / np.sum(e)
    return p


def sdpa_ref(query, key, value, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """softmax(q k^T * scale + mask) v in float64."""
    _, _, v, _ = _sdpa_expand(query, key, value, attn_mask, enable_gqa)
    p = sdpa_probs_ref(query, key, value, attn_mask, is_causal, scale, enable_gqa)
    return np.matmul(p, v)


def _sum_to(g, shape):
    """Sums a broadcast gradient back to `shape`."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for d, n in enumerate(shape):
        if n == 1 and g.shape[d] != 1:
            g = g.sum(axis=d, keepdims=True)
    return g


def sdpa_backward_ref(grad_out, query, key, value, attn_mask=None, is_causal=False, scale=None,
                      enable_gqa=False):
    """(grad_q, grad_k, grad_v) of sdpa_ref by the plain chain rule."""
    q, k, v, _ = _sdpa_expand(query, key, value, attn_mask, enable_gqa)
    if scale is None:
        scale = 1.0 / np.sqrt(q.shape[-1]) if q.shape[-1] > 0 else 1.0
    p = sdpa_probs_ref(query, key, value, attn_mask, is_causal, scale, enable_gqa)
    g = np.asarray(grad_out, dtype=np.float64)
    gv = np.matmul(np.swapaxes(p, -1, -2), g)
    gp = np.matmul(g, np.swapaxes(v, -1, -2))
    gs = p * (gp - np.sum(gp * p, axis=-1, keepdims=True))
    gq = np.matmul(gs, k) * scale
    gk = np.matmul(np.swapaxes(gs, -1, -2), q) * scale
    qs, ks, vs = np.shape(query), np.shape(key), np.shape(value)
    if enable_gqa:
        nb = gk.shape[:-3]
        gk = gk.reshape(nb + (ks[-3], gk.shape[-3] // ks[-3]) + gk.shape[-2:]).sum(axis=-3)
        gv = gv.reshape(nb + (vs[-3], gv.shape[-3] // vs[-3]) + gv.shape[-2:]).sum(axis=-3)
    return _sum_to(gq, qs), _sum_to(gk, ks), _sum_to(gv, vs)
