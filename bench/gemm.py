"""GEMM suite: tfg.ops.matmul against NumPy (OpenBLAS) and PyTorch.

Cases: square 128..2048, an MLP layer (64x784)·(784x256), a matrix-vector
product (1x4096)·(4096x4096) that is bound by memory bandwidth, and a batched
(32,128,64)·(32,64,128); each in every requested dtype and thread count.
Inputs are uniform in [-1, 1), C-contiguous, built once per shape and dtype;
the peers read the same buffers (torch.from_numpy views, no copies), and every
contender allocates its output inside the timed call.

Note [gemm check]: before timing, ours is compared elementwise with a float64
reference. Blocked summation of K products errs by at most about K*u*(|A||B|)
(u = eps/2), so ours must lie within K*eps*(|A||B|) of the reference and
within 2*K*eps*(|A||B|) of NumPy's own result (each of the two may err by
the bound). The largest errors, relative to |A||B|, are recorded for ours and
for the peers, so a reader can see ours is no worse than theirs.
"""
from __future__ import annotations

import zlib
from typing import Any, Dict, List, Tuple

import numpy as np

from bench.harness import Case, CaseRun, Contender, Timing, optional_torch

NAME = "gemm"
PEERS = ["numpy", "torch"]
PEER_LABELS = {"numpy": "NumPy", "torch": "torch"}

TIMING = Timing(warmup_s=0.1, min_sample_s=0.05, budget_s=1.0, min_samples=5, max_samples=15)
QUICK_TIMING = Timing(warmup_s=0.01, min_sample_s=0.005, budget_s=0.05, min_samples=3, settle_s=0.01,
                      max_samples=3)

Shape = Tuple[int, ...]


def _shapes(quick: bool) -> List[Tuple[Shape, Shape, str, Dict[str, Any]]]:
    """(a shape, b shape, bound, timing overrides) for every case shape."""
    big = {"min_samples": 3, "max_samples": 5, "budget_s": 2.0, "warmup_calls": 1}
    if quick:
        sq = [(n, {}) for n in (128, 256)]
        rest = [((64, 784), (784, 256), "compute"), ((1, 1024), (1024, 1024), "memory"),
                ((8, 64, 32), (8, 32, 64), "compute")]
    else:
        sq = [(n, big if n >= 2048 else {}) for n in (128, 256, 512, 1024, 2048)]
        rest = [((64, 784), (784, 256), "compute"), ((1, 4096), (4096, 4096), "memory"),
                ((32, 128, 64), (32, 64, 128), "compute")]
    out = [((n, n), (n, n), "compute", t) for n, t in sq]
    out += [(a, b, bound, {}) for a, b, bound in rest]
    return out


def _label(a: Shape, b: Shape) -> str:
    return f"{'x'.join(map(str, a))} @ {'x'.join(map(str, b))}"


class _Inputs:
    """Inputs and float64 reference for one (shape, dtype), kept while its thread counts run."""
    key = None
    data: Dict[str, Any] = {}

    @classmethod
    def get(cls, a_shape: Shape, b_shape: Shape, dtype: str) -> Dict[str, Any]:
        key = (a_shape, b_shape, dtype)
        if cls.key != key:
            cls.key, cls.data = None, {}  # free the previous inputs first
            rng = np.random.default_rng(zlib.crc32(repr(key).encode()))
            a = rng.uniform(-1, 1, a_shape).astype(dtype)
            b = rng.uniform(-1, 1, b_shape).astype(dtype)
            cls.key, cls.data = key, {"a": a, "b": b}
        return cls.data

    @classmethod
    def reference(cls) -> Tuple[np.ndarray, np.ndarray]:
        d = cls.data
        if "ref" not in d:
            a64, b64 = d["a"].astype(np.float64), d["b"].astype(np.float64)
            d["ref"] = a64 @ b64
            d["scale"] = np.maximum(np.abs(a64) @ np.abs(b64), np.finfo(np.float64).tiny)
        return d["ref"], d["scale"]


def _max_rel(x, ref: np.ndarray, scale: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(x, dtype=np.float64) - ref) / scale))


def _make_setup(a_shape: Shape, b_shape: Shape, dtype: str):
    def setup() -> CaseRun:
        import tensorforge as tfg

        d = _Inputs.get(a_shape, b_shape, dtype)
        a, b = d["a"], d["b"]
        matmul = tfg.ops.matmul
        contenders = [Contender("tensorforge", lambda: matmul(a, b)),
                      Contender("numpy", lambda: a @ b)]
        notes: List[str] = []
        torch, torch_note = optional_torch()
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            tmatmul = torch.matmul
            contenders.append(Contender("torch", lambda: tmatmul(ta, tb)))
        else:
            notes.append(torch_note)

        def check() -> Dict[str, Any]:
            # See Note [gemm check].
            ref, scale = _Inputs.reference()
            k = a_shape[-1]
            eps = float(np.finfo(dtype).eps)
            ours = matmul(a, b)
            peer = a @ b
            res: Dict[str, Any] = {
                "reference": "float64 A@B; tolerance K*eps*(|A||B|) to it, 2*K*eps*(|A||B|) to NumPy",
                "k": k, "eps": eps,
                "shape_ok": tuple(ours.shape) == tuple(ref.shape),
                "dtype_ok": ours.dtype == np.dtype(dtype),
            }
            if not res["shape_ok"]:
                res.update(ok=False, error=f"shape {tuple(ours.shape)} != {tuple(ref.shape)}")
                return res
            o64 = ours.astype(np.float64)
            finite = bool(np.all(np.isfinite(o64)))
            within_ref = bool(np.all(np.abs(o64 - ref) <= k * eps * scale))
            within_np = bool(np.all(np.abs(o64 - peer) <= 2 * k * eps * scale))
            res.update(finite=finite, within_reference=within_ref, within_numpy=within_np,
                       max_rel_err={"tensorforge": _max_rel(ours, ref, scale),
                                    "numpy": _max_rel(peer, ref, scale)},
                       max_rel_diff_vs_numpy=_max_rel(ours, peer.astype(np.float64), scale))
            if torch is not None:
                res["max_rel_err"]["torch"] = _max_rel(tmatmul(ta, tb).numpy(), ref, scale)
            res["ok"] = finite and within_ref and within_np and res["dtype_ok"]
            return res

        return CaseRun(contenders, check, notes)

    return setup


def cases(dtypes: List[str], threads: List[int], quick: bool = False) -> List[Case]:
    """All cases, grouped so one shape and dtype's inputs serve all its thread counts."""
    out = []
    for a_shape, b_shape, bound, timing in _shapes(quick):
        batch = int(np.prod(a_shape[:-2])) if len(a_shape) > 2 else 1
        m, k, n = a_shape[-2], a_shape[-1], b_shape[-1]
        for dtype in dtypes:
            item = np.dtype(dtype).itemsize
            for nt in threads:
                out.append(Case(
                    label=_label(a_shape, b_shape), dtype=dtype, threads=nt,
                    flops=2.0 * batch * m * n * k,
                    bytes=float(item * batch * (m * k + k * n + m * n)),
                    setup=_make_setup(a_shape, b_shape, dtype), bound=bound,
                    params={"a": list(a_shape), "b": list(b_shape),
                            "batch": batch, "m": m, "k": k, "n": n},
                    timing=timing))
    return out


def timing(quick: bool) -> Timing:
    return QUICK_TIMING if quick else TIMING


def finish() -> None:
    """Drops the cached inputs."""
    _Inputs.key, _Inputs.data = None, {}
