"""Sequence/detection suite: LSTM, attention and NMS against PyTorch, OpenCV and NumPy.

Cases (issue 4), float32:
- lstm_cell B64 I256 H512 forward; lstm T100 B32 I128 H256 forward, and
  forward + backward, against torch.nn.LSTMCell / torch.nn.LSTM holding the
  same weights, and the plain NumPy gate equations (a Python loop over time);
- scaled_dot_product_attention B4 H8 L512 E64 non-causal and causal, and
  B1 H8 L2048 E64 causal, forward and forward + backward, against
  F.scaled_dot_product_attention (and its autograd) and the plain NumPy
  softmax(Q K^T / sqrt(E)) V. The peak extra memory of one call is recorded
  per contender (Note [peak memory]);
- nms on 1 000, 5 000 and 20 000 clustered boxes against cv2.dnn.NMSBoxes
  (when opencv is installed) and a vectorised NumPy greedy NMS.

Rates: GFLOP/s for LSTM and attention (2 flops per multiply-add of the
products; causal attention counts the full L x S, so its rate shows the saving
as speed); NMS reports GB/s of its input (boxes + scores), a throughput whose
ratio is what matters.

Note [peak memory]: Linux keeps a process's peak resident size (VmHWM) and
resets it when "5" is written to /proc/self/clear_refs. For each contender a
fresh Python process builds the case's inputs, resets the peak, makes ONE
call and reports VmHWM - VmRSS(before): the most memory the call held at once
beyond what was resident (its output included), in MB, whichever library
allocated it. A fresh process, and malloc_trim before the baseline, because
memory freed earlier stays resident in the allocator and a call reusing it
would show no growth.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from bench.harness import Case, CaseRun, Contender, Timing, compare_to_max, optional_torch, seeded_rng

NAME = "seq"
PEERS = ["torch", "opencv", "numpy"]
PEER_LABELS = {"torch": "torch", "opencv": "OpenCV", "numpy": "NumPy"}
DEFAULT_DTYPES = ["float32"]

TIMING = Timing(warmup_s=0.1, min_sample_s=0.05, budget_s=1.0, min_samples=5, max_samples=11)
QUICK_TIMING = Timing(warmup_s=0.01, min_sample_s=0.005, budget_s=0.05, min_samples=3, settle_s=0.01,
                      max_samples=3)


def _optional_cv2():
    try:
        import cv2
        return cv2
    except ImportError:
        return None


# ----------------------------------------------------------------------------- peak memory

def _status_kb(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_extra_mb(fn: Callable[[], Any]) -> Optional[float]:
    """See Note [peak memory]; None where /proc does not allow it."""
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)  # free memory held by the allocator would hide growth
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    before = _status_kb("VmRSS")
    result = fn()
    peak = _status_kb("VmHWM")
    del result
    if before is None or peak is None:
        return None
    return max(0, peak - before) / 1024.0


# ----------------------------------------------------------------------------- NumPy peers

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_lstm_cell(x, h, c, w_ih, w_hh, b):
    gates = x @ w_ih.T + h @ w_hh.T + b
    i, f, g, o = np.split(gates, 4, axis=1)
    c2 = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c2), c2


def _np_lstm(x, h, c, w_ih, w_hh, b):
    ys = []
    for t in range(x.shape[0]):
        h, c = _np_lstm_cell(x[t], h, c, w_ih, w_hh, b)
        ys.append(h)
    return np.stack(ys), h, c


def _np_attention(q, k, v, causal: bool):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if causal:
        L, S = s.shape[-2:]
        s = np.where(np.tril(np.ones((L, S), bool)), s, -np.inf)
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    return (s / s.sum(axis=-1, keepdims=True)) @ v


def np_nms(boxes, scores, threshold):
    """Greedy NMS, vectorised over the remaining boxes per kept box (the usual NumPy way)."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= threshold]
    return np.asarray(keep, dtype=np.int64)


def clustered_boxes(n: int, rng: np.random.Generator, dtype) -> tuple:
    """n boxes around n/20 cluster centres (heavy overlap inside a cluster), scores uniform."""
    centres = rng.uniform(0, 1000, (max(1, n // 20), 2))
    pick = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 8, (n, 2))
    wh = rng.uniform(20, 60, (n, 2))
    boxes = np.concatenate([pick - wh / 2, pick + wh / 2], axis=1).astype(dtype)
    return boxes, rng.uniform(0, 1, n).astype(dtype)


# ----------------------------------------------------------------------------- cases

def _lstm_case(label, T, B, I, H, backward, dtype, threads) -> Case:
    cell = T == 0

    def setup() -> CaseRun:
        import tensorforge as tfg

        rng = seeded_rng(label + dtype)
        s = 1 / np.sqrt(H)
        x = rng.uniform(-1, 1, (B, I) if cell else (T, B, I)).astype(dtype)
        h0 = rng.uniform(-1, 1, (B, H)).astype(dtype)
        c0 = rng.uniform(-1, 1, (B, H)).astype(dtype)
        w_ih = rng.uniform(-s, s, (4 * H, I)).astype(dtype)
        w_hh = rng.uniform(-s, s, (4 * H, H)).astype(dtype)
        b_ih = rng.uniform(-s, s, 4 * H).astype(dtype)
        b_hh = rng.uniform(-s, s, 4 * H).astype(dtype)
        ops = tfg.ops
        torch, note = optional_torch()
        notes = [] if torch else [note]
        if cell:
            ours = lambda: ops.lstm_cell(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
            np_fn = lambda: _np_lstm_cell(x, h0, c0, w_ih, w_hh, b_ih + b_hh)
        elif not backward:
            ours = lambda: ops.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
            np_fn = lambda: _np_lstm(x, h0, c0, w_ih, w_hh, b_ih + b_hh)
        else:
            gy = rng.uniform(-1, 1, (T, B, H)).astype(dtype)

            def ours():
                y, h, c = ops.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
                return (y,) + tuple(ops.lstm_backward(gy, None, None, x, h0, c0, w_ih, w_hh, b_ih, b_hh))

            np_fn = None
        contenders = [Contender("tensorforge", ours)]
        check = None
        if torch:
            mod = (torch.nn.LSTMCell(I, H) if cell else torch.nn.LSTM(I, H)).to(getattr(torch, dtype))
            with torch.no_grad():
                suffix = "" if cell else "_l0"
                for name, a in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih), ("bias_hh", b_hh)):
                    getattr(mod, name + suffix).copy_(torch.from_numpy(a))
            xt, ht, ct = (torch.from_numpy(a) for a in (x, h0, c0))
            if cell:
                def peer():
                    with torch.no_grad():
                        return mod(xt, (ht, ct))
                ref = lambda: tuple(t.numpy() for t in peer())
            elif not backward:
                def peer():
                    with torch.no_grad():
                        return mod(xt, (ht[None], ct[None]))
                ref = lambda: peer()[0].numpy()
            else:
                gyt = torch.from_numpy(gy)

                def peer():
                    xg = xt.detach().requires_grad_()
                    for p in mod.parameters():
                        p.grad = None
                    y, _ = mod(xg, (ht[None], ct[None]))
                    y.backward(gyt)
                    return y, xg.grad
                ref = None
            contenders.append(Contender("torch", peer))
            if ref is not None:
                got = (lambda: ours()) if cell else (lambda: ours()[0])
                check = lambda: dict(compare_to_max(got(), ref(), dtype, I + H, 16.0), reference="torch")
        if np_fn is not None:
            contenders.append(Contender("numpy", np_fn))
        return CaseRun(contenders, check, notes)

    steps = 1 if cell else T
    flops = 2.0 * steps * B * (I + H) * 4 * H * (3 if backward else 1)
    item = np.dtype(dtype).itemsize
    nbytes = float(item * (4 * H * (I + H) + steps * B * (I + 2 * H)))
    return Case(label=label, dtype=dtype, threads=threads, flops=flops, bytes=nbytes, setup=setup,
                params={"T": T, "B": B, "I": I, "H": H, "backward": backward})


def _attention_case(label, B, Hh, L, E, causal, backward, dtype, threads) -> Case:
    def setup() -> CaseRun:
        import tensorforge as tfg

        rng = seeded_rng(label + dtype)
        q, k, v = (rng.standard_normal((B, Hh, L, E)).astype(dtype) for _ in range(3))
        ops = tfg.ops
        torch, note = optional_torch()
        notes = [] if torch else [note]
        if backward:
            go = rng.standard_normal((B, Hh, L, E)).astype(dtype)

            def ours():  # as autograd runs it: the backward reuses the forward's output and lse
                out, lse = ops.scaled_dot_product_attention(q, k, v, is_causal=causal, return_lse=True)
                return (out,) + tuple(ops.scaled_dot_product_attention_backward(
                    go, q, k, v, is_causal=causal, output=out, lse=lse))
        else:
            ours = lambda: ops.scaled_dot_product_attention(q, k, v, is_causal=causal)
        contenders = [Contender("tensorforge", ours)]
        check = None
        if torch:
            F = torch.nn.functional
            qt, kt, vt = (torch.from_numpy(a) for a in (q, k, v))
            if backward:
                got = torch.from_numpy(go)

                def peer():
                    qg, kg, vg = (t.detach().requires_grad_() for t in (qt, kt, vt))
                    out = F.scaled_dot_product_attention(qg, kg, vg, is_causal=causal)
                    out.backward(got)
                    return out, qg.grad, kg.grad, vg.grad
                ref = lambda: tuple(t.detach().numpy() for t in peer())
            else:
                def peer():
                    with torch.no_grad():
                        return F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
                ref = lambda: peer().numpy()
            contenders.append(Contender("torch", peer))
            check = lambda: dict(compare_to_max(ours(), ref(), dtype, L, 16.0), reference="torch")
        if not backward and L <= 512:
            contenders.append(Contender("numpy", lambda: _np_attention(q, k, v, causal)))
        if _MEMORY_PROBE:  # inside the probe's own process: just the contenders
            return CaseRun(contenders, None, notes)
        base_check = check

        def check_with_memory():
            res = base_check() if base_check else {"ok": True, "reference": "none (no torch)"}
            res["peak_extra_mb"] = {c.name: _peak_in_fresh_process(
                [label, B, Hh, L, E, causal, backward, dtype, threads], c.name) for c in contenders}
            return res

        return CaseRun(contenders, check_with_memory, notes)

    flops = 4.0 * B * Hh * L * L * E * (2.5 if backward else 1.0)
    item = np.dtype(dtype).itemsize
    return Case(label=label, dtype=dtype, threads=threads, flops=flops,
                bytes=float(item * 4 * B * Hh * L * E), setup=setup,
                params={"B": B, "H": Hh, "L": L, "E": E, "causal": causal, "backward": backward})


def _nms_case(label, n, dtype, threads) -> Case:
    threshold = 0.5

    def setup() -> CaseRun:
        import tensorforge as tfg

        boxes, scores = clustered_boxes(n, seeded_rng(label + dtype), dtype)
        ops = tfg.ops
        contenders = [Contender("tensorforge", lambda: ops.nms(boxes, scores, threshold))]
        notes = []
        cv2 = _optional_cv2()
        if cv2 is not None:
            xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float32)
            sc = scores.astype(np.float32)
            contenders.append(Contender("opencv", lambda: cv2.dnn.NMSBoxes(xywh, sc, 0.0, threshold)))
        else:
            notes.append("OpenCV not installed (pip install opencv-python-headless); its column is skipped")
        contenders.append(Contender("numpy", lambda: np_nms(boxes, scores, threshold)))

        def check():
            got = ops.nms(boxes, scores, threshold)
            ref = np_nms(boxes.astype(np.float64), scores.astype(np.float64), threshold)
            same = got.shape == ref.shape and bool(np.all(got == ref))
            return {"ok": same, "kept": int(got.size), "reference": "NumPy greedy NMS in float64"}

        return CaseRun(contenders, check, notes)

    item = np.dtype(dtype).itemsize
    return Case(label=label, dtype=dtype, threads=threads, flops=0.0, bytes=float(5 * item * n),
                setup=setup, bound="memory", params={"boxes": n, "iou_threshold": threshold})


_MEMORY_PROBE = False


def _peak_in_fresh_process(args: list, contender: str) -> Optional[float]:
    """Note [peak memory]: one call of `contender` of the attention case `args`, in a new process."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(root), str(root / "python"), env.get("PYTHONPATH")] if p)
    code = ("import json, sys; from bench import seq; "
            f"print(json.dumps(seq._memory_probe({json.dumps(args)!r}, {contender!r})))")
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             timeout=300, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def _memory_probe(args_json: str, contender: str) -> Optional[float]:
    global _MEMORY_PROBE
    from bench.harness import thread_limit

    _MEMORY_PROBE = True
    label, B, Hh, L, E, causal, backward, dtype, threads = json.loads(args_json)
    with thread_limit(threads):
        run = _attention_case(label, B, Hh, L, E, causal, backward, dtype, threads).setup()
        fn = next(c.fn for c in run.contenders if c.name == contender)
        return peak_extra_mb(fn)


def cases(dtypes: List[str], threads: List[int], quick: bool = False) -> List[Case]:
    lstm = [("lstm_cell B64 I256 H512", 0, 64, 256, 512, False),
            ("lstm T100 B32 I128 H256", 100, 32, 128, 256, False),
            ("lstm fwd+bwd T100 B32 I128 H256", 100, 32, 128, 256, True)]
    attn = [("attention B4 H8 L512 E64", 4, 8, 512, 64, False, False),
            ("attention causal B4 H8 L512 E64", 4, 8, 512, 64, True, False),
            ("attention causal B1 H8 L2048 E64", 1, 8, 2048, 64, True, False),
            ("attention fwd+bwd B4 H8 L512 E64", 4, 8, 512, 64, False, True),
            ("attention fwd+bwd causal B4 H8 L512 E64", 4, 8, 512, 64, True, True),
            ("attention fwd+bwd causal B1 H8 L2048 E64", 1, 8, 2048, 64, True, True)]
    nms = [(f"nms {n} clustered boxes", n) for n in (1000, 5000, 20000)]
    if quick:
        lstm, attn, nms = lstm[:1], attn[:1], nms[:1]
    out = []
    for dtype in dtypes:
        for nt in threads:
            out += [_lstm_case(label, T, B, I, H, bwd, dtype, nt) for label, T, B, I, H, bwd in lstm]
            out += [_attention_case(label, B, Hh, L, E, c, bwd, dtype, nt) for label, B, Hh, L, E, c, bwd in attn]
            out += [_nms_case(label, n, dtype, nt) for label, n in nms]
    return out


def timing(quick: bool) -> Timing:
    return QUICK_TIMING if quick else TIMING
