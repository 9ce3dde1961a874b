"""CNN suite: conv2d, pooling, softmax and cross-entropy against PyTorch and NumPy.

Cases (issue 3), float32 by default:
- conv2d forward (32,3,32,32)*(64,3,3,3) pad 1, (16,64,56,56)*(64,64,3,3) pad 1,
  (8,128,28,28)*(256,128,1,1), depthwise 3x3 on (16,64,56,56); all with a bias;
- conv2d backward (input and weight gradients) on the 56x56 case;
- max_pool2d 2x2/2 and 3x3/2 pad 1, avg_pool2d 2x2/2 on (32,64,56,56);
- softmax, log_softmax, cross-entropy forward and forward+backward on (4096,1000).

Peers: PyTorch (when installed) and NumPy. NumPy has no convolution or
pooling, so its column is the usual NumPy way of writing them: a sliding-window
view contracted with np.einsum/tensordot (OpenBLAS) for convolution, a reshape
or sliding-window max/mean for pooling, and exp/sum/log for softmax and the
loss. Every contender reads the same input buffers (torch.from_numpy views)
and allocates its output inside the timed call.

Pooling, softmax and the loss are memory-bound: their GB/s (input once +
output once) is the figure to read, against the machine's copy bandwidth,
which the suite measures at the start of the run (`bandwidth probe`: NumPy
copying 256 MB) and records with the results.

Check: ours against PyTorch's result when it is installed, else against a
float64 NumPy computation, within a tolerance scaled by the reduction length.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bench.harness import Case, CaseRun, Contender, Timing, compare_to_max, optional_torch, seeded_rng

NAME = "cnn"
PEERS = ["torch", "numpy"]
PEER_LABELS = {"torch": "torch", "numpy": "NumPy"}
DEFAULT_DTYPES = ["float32"]

TIMING = Timing(warmup_s=0.1, min_sample_s=0.05, budget_s=1.0, min_samples=5, max_samples=11)
QUICK_TIMING = Timing(warmup_s=0.01, min_sample_s=0.005, budget_s=0.05, min_samples=3, settle_s=0.01,
                      max_samples=3)


# ----------------------------------------------------------------------------- NumPy peers

def _np_conv2d(x, w, b, padding: int, groups: int):
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))) if padding else x
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))   # n, c, oh, ow, kh, kw
    if groups == 1:
        out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    else:  # depthwise: one channel per group
        out = np.einsum("nchwij,cij->nchw", win, w.reshape(c, kh, kw), optimize=True)
    return out + b[None, :, None, None]


def _np_max_pool(x, k: int, s: int, p: int):
    if p == 0 and k == s and x.shape[2] % k == 0 and x.shape[3] % k == 0:
        n, c, h, w = x.shape
        return x.reshape(n, c, h // k, k, w // k, k).max(axis=(3, 5))
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    return sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s].max(axis=(4, 5))


def _np_avg_pool(x, k: int):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // k, k, w // k, k).mean(axis=(3, 5))


def _np_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _np_log_softmax(x):
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _np_cross_entropy(x, t):
    return -np.mean(_np_log_softmax(x)[np.arange(len(t)), t])


def _np_cross_entropy_grad(x, t):
    g = _np_softmax(x)
    g[np.arange(len(t)), t] -= 1
    return g / len(t)


# ----------------------------------------------------------------------------- cases

def _check(ours: Callable[[], Any], reference: Callable[[], Any], dtype: str, k: float,
           what: str) -> Callable[[], Dict[str, Any]]:
    """ours() against reference(), within 8*eps*k of the reference's largest magnitude."""
    return lambda: dict(compare_to_max(ours(), reference(), dtype, k, 8.0), reference=what)


def _conv_case(label, xs, ws, padding, groups, backward, dtype, threads) -> Case:
    def setup() -> CaseRun:
        import tensorforge as tfg

        rng = seeded_rng(label + dtype)
        x = rng.standard_normal(xs).astype(dtype)
        w = (rng.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))).astype(dtype)
        b = rng.standard_normal(ws[0]).astype(dtype)
        ops = tfg.ops
        torch, note = optional_torch()
        notes = [] if torch else [note]
        if not backward:
            contenders = [Contender("tensorforge", lambda: ops.conv2d(x, w, b, padding=padding, groups=groups))]
            if torch:
                F = torch.nn.functional
                xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))
                contenders.append(Contender("torch", lambda: F.conv2d(xt, wt, bt, padding=padding, groups=groups)))
            contenders.append(Contender("numpy", lambda: _np_conv2d(x, w, b, padding, groups)))
            if torch:
                ref = lambda: F.conv2d(xt, wt, bt, padding=padding, groups=groups).numpy()
                what = "torch F.conv2d"
            else:
                ref = lambda: _np_conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                                         padding, groups)
                what = "float64 NumPy sliding-window conv"
            check = _check(contenders[0].fn, ref, dtype, ws[1] * ws[2] * ws[3], what)
            return CaseRun(contenders, check, notes)
        gy = rng.standard_normal((xs[0], ws[0], xs[2], xs[3])).astype(dtype)
        mask = (True, True, False)
        contenders = [Contender("tensorforge", lambda: ops.conv2d_backward(
            gy, x, w, None, padding=padding, groups=groups, output_mask=mask)[:2])]
        if torch:
            xt, wt, gyt = (torch.from_numpy(a) for a in (x, w, gy))
            cb = torch.ops.aten.convolution_backward
            args = ([0], [1, 1], [padding, padding], [1, 1], False, [0, 0], groups, [True, True, False])
            contenders.append(Contender("torch", lambda: cb(gyt, xt, wt, *args)))
            check = _check(contenders[0].fn, lambda: tuple(t.numpy() for t in cb(gyt, xt, wt, *args)[:2]),
                           dtype, xs[0] * xs[2] * xs[3], "torch convolution_backward")
        else:
            check = None
            notes.append("no check without torch (the backward has no NumPy reference here)")
        return CaseRun(contenders, check, notes)

    n, c, h, wd = xs
    out = n * ws[0] * h * wd
    flops = 2.0 * out * ws[1] * ws[2] * ws[3] * (2 if backward else 1)
    item = np.dtype(dtype).itemsize
    nbytes = float(item * (np.prod(xs) + np.prod(ws) + out) * (2 if backward else 1))
    return Case(label=label, dtype=dtype, threads=threads, flops=flops, bytes=nbytes, setup=setup,
                bound="memory" if groups > 1 else "compute",
                params={"input": list(xs), "weight": list(ws), "padding": padding, "groups": groups,
                        "backward": backward})


def _pool_case(label, kind, k, s, p, dtype, threads) -> Case:
    shape = (32, 64, 56, 56)

    def setup() -> CaseRun:
        import tensorforge as tfg

        x = seeded_rng(label + dtype).standard_normal(shape).astype(dtype)
        ops = tfg.ops
        torch, note = optional_torch()
        if kind == "max":
            contenders = [Contender("tensorforge", lambda: ops.max_pool2d(x, k, s, p))]
            np_fn = lambda: _np_max_pool(x, k, s, p)
        else:
            contenders = [Contender("tensorforge", lambda: ops.avg_pool2d(x, k, s, p))]
            np_fn = lambda: _np_avg_pool(x, k)
        if torch:
            F = torch.nn.functional
            xt = torch.from_numpy(x)
            tfn = (lambda: F.max_pool2d(xt, k, s, p)) if kind == "max" else (lambda: F.avg_pool2d(xt, k, s, p))
            contenders.append(Contender("torch", tfn))
        contenders.append(Contender("numpy", np_fn))
        check = _check(contenders[0].fn, np_fn, dtype, k * k, "NumPy pooling")
        return CaseRun(contenders, check, [] if torch else [note])

    oh = (shape[2] + 2 * p - k) // s + 1
    out = shape[0] * shape[1] * oh * oh
    item = np.dtype(dtype).itemsize
    return Case(label=label, dtype=dtype, threads=threads, flops=float(out * k * k),
                bytes=float(item * (np.prod(shape) + out)), setup=setup, bound="memory",
                params={"input": list(shape), "kernel": k, "stride": s, "padding": p, "kind": kind})


def _softmax_case(label, kind, dtype, threads) -> Case:
    shape = (4096, 1000)

    def setup() -> CaseRun:
        import tensorforge as tfg

        rng = seeded_rng(label + dtype)
        x = (3 * rng.standard_normal(shape)).astype(dtype)
        t = rng.integers(0, shape[1], shape[0]).astype(np.int64)
        ops = tfg.ops
        torch, note = optional_torch()
        if torch:
            F = torch.nn.functional
            xt, tt = torch.from_numpy(x), torch.from_numpy(t)
        if kind == "softmax":
            ours = lambda: ops.softmax(x, 1)
            peer = (lambda: F.softmax(xt, 1)) if torch else None
            np_fn, ref = (lambda: _np_softmax(x)), (lambda: _np_softmax(x.astype(np.float64)))
        elif kind == "log_softmax":
            ours = lambda: ops.log_softmax(x, 1)
            peer = (lambda: F.log_softmax(xt, 1)) if torch else None
            np_fn, ref = (lambda: _np_log_softmax(x)), (lambda: _np_log_softmax(x.astype(np.float64)))
        elif kind == "cross_entropy":
            ours = lambda: ops.cross_entropy(x, t)
            peer = (lambda: F.cross_entropy(xt, tt)) if torch else None
            np_fn, ref = (lambda: _np_cross_entropy(x, t)), (lambda: _np_cross_entropy(x.astype(np.float64), t))
        else:  # forward + backward of the mean loss
            one = np.ones((), dtype)

            def ours():
                return ops.cross_entropy(x, t), ops.cross_entropy_backward(one, x, t)[0]

            if torch:
                def peer():
                    xg = xt.detach().requires_grad_()
                    loss = F.cross_entropy(xg, tt)
                    loss.backward()
                    return loss, xg.grad
            else:
                peer = None
            np_fn = lambda: (_np_cross_entropy(x, t), _np_cross_entropy_grad(x, t))
            x64 = x.astype(np.float64)
            ref = lambda: (_np_cross_entropy(x64, t), _np_cross_entropy_grad(x64, t))
        contenders = [Contender("tensorforge", ours)]
        if peer:
            contenders.append(Contender("torch", peer))
        contenders.append(Contender("numpy", np_fn))
        check = _check(ours, ref, dtype, shape[1], "float64 NumPy")
        return CaseRun(contenders, check, [] if torch else [note])

    item = np.dtype(dtype).itemsize
    n = shape[0] * shape[1]
    in_out = {"softmax": 2 * n, "log_softmax": 2 * n, "cross_entropy": n, "cross_entropy fwd+bwd": 3 * n}
    return Case(label=label, dtype=dtype, threads=threads, flops=float(4 * n), bytes=float(item * in_out[kind]),
                setup=setup, bound="memory", params={"input": list(shape), "kind": kind})


def cases(dtypes: List[str], threads: List[int], quick: bool = False) -> List[Case]:
    conv = [
        ("conv2d 32x3x32x32 * 64x3x3x3 pad 1", (32, 3, 32, 32), (64, 3, 3, 3), 1, 1, False),
        ("conv2d 16x64x56x56 * 64x64x3x3 pad 1", (16, 64, 56, 56), (64, 64, 3, 3), 1, 1, False),
        ("conv2d 8x128x28x28 * 256x128x1x1", (8, 128, 28, 28), (256, 128, 1, 1), 0, 1, False),
        ("depthwise 16x64x56x56 * 64x1x3x3 pad 1", (16, 64, 56, 56), (64, 1, 3, 3), 1, 64, False),
        ("conv2d bwd (in+w) 16x64x56x56 * 64x64x3x3", (16, 64, 56, 56), (64, 64, 3, 3), 1, 1, True),
    ]
    pool = [("max_pool2d 2x2/2 32x64x56x56", "max", 2, 2, 0),
            ("max_pool2d 3x3/2 pad 1 32x64x56x56", "max", 3, 2, 1),
            ("avg_pool2d 2x2/2 32x64x56x56", "avg", 2, 2, 0)]
    soft = [("softmax 4096x1000", "softmax"), ("log_softmax 4096x1000", "log_softmax"),
            ("cross_entropy 4096x1000", "cross_entropy"),
            ("cross_entropy fwd+bwd 4096x1000", "cross_entropy fwd+bwd")]
    if quick:
        conv, pool, soft = conv[:1], pool[:1], soft[:1]
    out = []
    for dtype in dtypes:
        for nt in threads:
            out += [_conv_case(label, xs, ws, p, g, bwd, dtype, nt) for label, xs, ws, p, g, bwd in conv]
            out += [_pool_case(label, kind, k, s, p, dtype, nt) for label, kind, k, s, p in pool]
            out += [_softmax_case(label, kind, dtype, nt) for label, kind in soft]
    return out


def timing(quick: bool) -> Timing:
    return QUICK_TIMING if quick else TIMING


def extra_info(quick: bool = False) -> Dict[str, Any]:
    """The machine's copy bandwidth, measured now with NumPy: read + write GB/s of
    copying a 256 MB buffer (median of several), the yardstick for the memory-bound cases."""
    n = (16 if quick else 64) << 20
    src = np.ones(n, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    times = []
    for _ in range(3 if quick else 9):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    gbs = 2 * src.nbytes / float(np.median(times)) / 1e9
    return {"bandwidth_probe": {"what": f"np.copyto of {src.nbytes >> 20} MB float32 (read + write)",
                                "gbs_median": gbs, "gbs_best": 2 * src.nbytes / min(times) / 1e9}}
