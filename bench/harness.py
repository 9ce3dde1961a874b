"""Benchmark harness: interleaved A/B timing of our kernels against their peers.

A suite (bench/gemm.py, ...) describes cases; each case builds its inputs once
(outside the timing), checks our result against a reference once (outside the
timing), then times every contender, ours first, in interleaved rounds
(ours, peer, peer, ours, peer, peer, ...) so that a change in the machine's
state during the case hits all of them alike. Each case reports, per
contender, the median time (with min and IQR), the rate (GFLOP/s and GB/s),
the fraction of this machine's peak, and ours/peer as a throughput ratio
(> 1: we are faster), plus a measured figure of how busy the rest of the
machine was while the case ran.

Note [quiet]: /proc/stat counts busy jiffies over all CPUs, ours included;
os.times() counts this process's CPU time (all its threads). The difference,
divided by the wall time, is the other processes' load in cores (hypervisor
steal counts as other load: it is time our cores were taken). A case is
"quiet" when that is under QUIET_OTHER_CORES. Jiffies are 10 ms, so a case
shorter than about a second reads this coarsely.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# Measured on the development machine (design.md section 3): 2 Zen 4 cores at
# ~3.65 GHz, 32 FP32 FLOP/cycle/core. float64 peak is half. run.py's
# --peak-fp32 replaces this table on another machine.
PEAK_FP32_GFLOPS: Dict[int, float] = {1: 117.0, 2: 233.0}

QUIET_OTHER_CORES = 0.15

ENV_VARS = (
    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
    "MKL_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
    "TENSORFORGE_ISA",
)


# ----------------------------------------------------------------------------- peaks

def peak_gflops(dtype: str, threads: int) -> float:
    """This machine's peak GFLOP/s for a dtype on `threads` cores (float64: half of FP32)."""
    if threads in PEAK_FP32_GFLOPS:
        fp32 = PEAK_FP32_GFLOPS[threads]
    else:  # beyond the table: scale the per-core figure of the largest entry
        top = max(PEAK_FP32_GFLOPS)
        fp32 = PEAK_FP32_GFLOPS[top] / top * threads
    return fp32 / 2 if np.dtype(dtype) == np.float64 else fp32


def set_peak_fp32(values: List[float]) -> None:
    """Replaces the FP32 peak table: values[i] is the peak on i+1 threads."""
    PEAK_FP32_GFLOPS.clear()
    PEAK_FP32_GFLOPS.update({i + 1: float(v) for i, v in enumerate(values)})


# ----------------------------------------------------------------------------- optional peers

_torch_cache: Dict[str, Any] = {}


def optional_torch():
    """(torch module or None, note). Imported once; a missing torch is a note, not an error."""
    if "mod" not in _torch_cache:
        try:
            import torch  # noqa: F401
            _torch_cache["mod"], _torch_cache["note"] = torch, ""
        except ImportError as e:
            _torch_cache["mod"] = None
            _torch_cache["note"] = (f"PyTorch not installed ({e}); its columns are skipped. "
                                    "`pip install torch==2.13.0` (the `torch` extra) adds it.")
    return _torch_cache["mod"], _torch_cache["note"]


def _threadpoolctl():
    try:
        import threadpoolctl
        return threadpoolctl
    except ImportError:
        return None


# ----------------------------------------------------------------------------- inputs and checks

def seeded_rng(key: str) -> np.random.Generator:
    """A generator seeded from a case's name, so inputs are the same in every run."""
    import zlib

    return np.random.default_rng(zlib.crc32(key.encode()))


def compare_to_max(got: Any, ref: Any, dtype: str, k: float, c: float) -> Dict[str, Any]:
    """Compares each array of `got` (an array or a tuple) with `ref`'s: finite, same
    shape, and within c * eps * max(k, 1) of the reference's largest magnitude."""
    got = got if isinstance(got, tuple) else (got,)
    ref = ref if isinstance(ref, tuple) else (ref,)
    tolerance = c * float(np.finfo(dtype).eps) * max(k, 1.0)
    worst, ok = 0.0, len(got) == len(ref)
    for g, r in zip(got, ref):
        g64, r64 = np.asarray(g, np.float64), np.asarray(r, np.float64)
        if g64.shape != r64.shape:
            return {"ok": False, "error": f"shape {g64.shape} != {r64.shape}"}
        scale = max(float(np.abs(r64).max()) if r64.size else 0.0, np.finfo(np.float64).tiny)
        err = float(np.abs(g64 - r64).max()) / scale if r64.size else 0.0
        worst = max(worst, err)
        ok = ok and bool(np.all(np.isfinite(g64))) and err <= tolerance
    return {"ok": ok, "max_err_rel_to_max": worst, "tolerance": tolerance}


# ----------------------------------------------------------------------------- machine load

def _read_proc_stat():
    """(busy jiffies, steal jiffies) summed over all CPUs, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    v = [int(x) for x in fields[1:9]] + [0] * 8
    user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
    # guest time is already inside user/nice.
    return user + nice + system + irq + softirq + steal, steal


def _loadavg() -> Optional[str]:
    try:
        with open("/proc/loadavg") as f:
            return f.read().strip()
    except OSError:
        return None


class LoadMonitor:
    """Measures other processes' CPU load between start() and stop(); see Note [quiet]."""

    def __init__(self) -> None:
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def start(self) -> None:
        self._stat0 = _read_proc_stat()
        t = os.times()
        self._self0 = t.user + t.system
        self._wall0 = time.perf_counter()
        self._loadavg0 = _loadavg()

    def stop(self) -> Dict[str, Any]:
        wall = time.perf_counter() - self._wall0
        t = os.times()
        ours = t.user + t.system - self._self0
        stat1 = _read_proc_stat()
        out: Dict[str, Any] = {
            "wall_s": wall,
            "ours_cores": ours / wall if wall > 0 else None,
            "loadavg_before": self._loadavg0,
            "loadavg_after": _loadavg(),
        }
        if self._stat0 is None or stat1 is None or wall <= 0:
            out.update(other_cores=None, steal_cores=None, quiet=None)
            return out
        busy = (stat1[0] - self._stat0[0]) / self._tick
        steal = (stat1[1] - self._stat0[1]) / self._tick
        other = max(0.0, busy - ours) / wall
        out.update(busy_cores=busy / wall, other_cores=other, steal_cores=steal / wall,
                   quiet=other < QUIET_OTHER_CORES)
        return out


# ----------------------------------------------------------------------------- threads

@contextlib.contextmanager
def thread_limit(n: int):
    """Runs tensorforge, NumPy's BLAS and PyTorch (if present) on n threads; yields what each reports."""
    import tensorforge as tfg

    torch, _ = optional_torch()
    tpc = _threadpoolctl()
    old_tfg = tfg.get_num_threads()
    old_torch = torch.get_num_threads() if torch is not None else None
    tfg.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    limiter = tpc.threadpool_limits(limits=n, user_api="blas") if tpc else contextlib.nullcontext()
    try:
        with limiter:
            blas = None
            if tpc is not None:
                blas = [p["num_threads"] for p in tpc.threadpool_info() if p["user_api"] == "blas"]
            yield {
                "tensorforge": tfg.get_num_threads(),
                "numpy_blas": blas,  # None: threadpoolctl missing, NumPy ran on its default
                "torch": torch.get_num_threads() if torch is not None else None,
            }
    finally:
        tfg.set_num_threads(old_tfg)
        if torch is not None:
            torch.set_num_threads(old_torch)


# ----------------------------------------------------------------------------- timing

@dataclass
class Timing:
    """How long to time. A sample is `inner` back-to-back calls (enough to last
    min_sample_s), and its figure is their mean; the samples per contender are
    chosen so the case's timed part lasts about budget_s per contender, within
    [min_samples, max_samples]."""
    warmup_s: float = 0.1
    warmup_calls: int = 1
    min_sample_s: float = 0.05
    budget_s: float = 1.5
    min_samples: int = 5
    max_samples: int = 15
    # Note [settling]: idle libraries keep their worker threads spinning for a
    # while after each call (OpenBLAS yields for up to ~0.1 s, libgomp spins for
    # milliseconds), and those spinners take CPU from whichever library is timed
    # next: measured here, tensorforge on 64x784x256 with 2 threads fell from
    # ~150 to ~90 GFLOP/s (and once to 3) right after NumPy. So before each
    # sample the harness sleeps settle_s, then makes one untimed call (waking the
    # contender's own threads), then times.
    settle_s: float = 0.1

    def replace(self, **kw) -> "Timing":
        d = dict(self.__dict__)
        d.update(kw)
        return Timing(**d)


@dataclass
class Contender:
    name: str                  # "tensorforge" (ours, always first), "numpy", "torch", ...
    fn: Callable[[], Any]


@dataclass
class CaseRun:
    """What a case's setup builds: the contenders (ours first) and a check of ours."""
    contenders: List[Contender]
    check: Optional[Callable[[], Dict[str, Any]]] = None
    notes: List[str] = field(default_factory=list)


@dataclass
class Case:
    label: str                 # e.g. "512x512 @ 512x512"
    dtype: str
    threads: int
    flops: float               # floating-point operations of one call
    bytes: float               # minimal memory traffic of one call (inputs once, output once)
    setup: Callable[[], CaseRun]
    bound: str = "compute"     # "compute" or "memory": which rate tells the story
    params: Dict[str, Any] = field(default_factory=dict)
    timing: Dict[str, Any] = field(default_factory=dict)  # overrides of the suite's Timing


def _warm_up(fn: Callable[[], Any], t: Timing) -> float:
    """Runs fn for at least warmup_calls calls and warmup_s seconds; returns the fastest call."""
    best = math.inf
    n = 0
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        n += 1
        if n >= t.warmup_calls and time.perf_counter() - start >= t.warmup_s:
            return best


def time_interleaved(contenders: List[Contender], t: Timing) -> Dict[str, Dict[str, Any]]:
    """Times the contenders in interleaved rounds; returns per-contender statistics (seconds per call)."""
    per_call = [_warm_up(c.fn, t) for c in contenders]
    inner = [max(1, math.ceil(t.min_sample_s / max(pc, 1e-9))) for pc in per_call]
    round_s = sum(i * pc for i, pc in zip(inner, per_call))
    samples = int(round(t.budget_s * len(contenders) / max(round_s, 1e-9)))
    samples = max(t.min_samples, min(t.max_samples, samples))

    times: List[List[float]] = [[] for _ in contenders]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(samples):
            for k, c in enumerate(contenders):
                fn, n = c.fn, inner[k]
                time.sleep(t.settle_s)
                fn()
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                times[k].append((time.perf_counter() - t0) / n)
    finally:
        if gc_was_enabled:
            gc.enable()

    out = {}
    for k, c in enumerate(contenders):
        a = np.asarray(times[k])
        q1, med, q3 = np.percentile(a, [25, 50, 75])
        out[c.name] = {
            "median_s": float(med), "min_s": float(a.min()), "q1_s": float(q1), "q3_s": float(q3),
            "iqr_rel": float((q3 - q1) / med) if med > 0 else None,
            "samples": samples, "inner": inner[k], "warmup_best_s": per_call[k],
            "times_s": [float(x) for x in a],
        }
    return out


def run_case(case: Case, timing: Timing) -> Dict[str, Any]:
    """Builds, checks and times one case under its thread count; returns its record."""
    t = timing.replace(**case.timing)
    record: Dict[str, Any] = {
        "label": case.label, "dtype": case.dtype, "threads": case.threads, "bound": case.bound,
        "flops": case.flops, "bytes": case.bytes, "params": case.params,
        "peak_gflops": peak_gflops(case.dtype, case.threads),
        "timing": dict(t.__dict__),
    }
    with thread_limit(case.threads) as effective:
        record["threads_effective"] = effective
        run = case.setup()
        record["notes"] = list(run.notes)
        record["check"] = run.check() if run.check is not None else None
        monitor = LoadMonitor()
        monitor.start()
        stats = time_interleaved(run.contenders, t)
        record["load"] = monitor.stop()
        del run
    for s in stats.values():
        s["gflops"] = case.flops / s["median_s"] / 1e9
        s["gflops_best"] = case.flops / s["min_s"] / 1e9
        s["gbs"] = case.bytes / s["median_s"] / 1e9
        s["pct_peak"] = 100.0 * s["gflops"] / record["peak_gflops"]
    names = list(stats)
    ours = names[0]
    record["ours"] = ours
    record["contenders"] = stats
    # ours/peer in throughput terms: > 1 means we are faster.
    record["ratios"] = {p: stats[p]["median_s"] / stats[ours]["median_s"] for p in names[1:]}
    record["quiet"] = record["load"].get("quiet")
    return record


# ----------------------------------------------------------------------------- machine info

def _cpuinfo() -> Dict[str, Any]:
    info: Dict[str, Any] = {"model": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return info
    cores = set()
    logical = 0
    phys = core = None
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "processor":
            logical += 1
        elif key == "model name" and "model_name" not in info:
            info["model"] = info["model_name"] = val
        elif key == "cpu MHz" and "mhz" not in info:
            info["mhz"] = float(val)
        elif key == "flags" and "flags" not in info:
            have = set(val.split())
            info["flags"] = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw",
                                         "avx512vl", "avx512_bf16", "avx512_vnni", "amx_tile")
                             if f in have]
            info["hypervisor"] = "hypervisor" in have
        elif key == "physical id":
            phys = val
        elif key == "core id":
            core = val
            cores.add((phys, core))
    info.pop("model_name", None)
    info["logical_cpus"] = logical
    info["physical_cores"] = len(cores) or None
    return info


def _git() -> Dict[str, Any]:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               text=True, capture_output=True, timeout=10)
        if head.returncode != 0:
            return {}
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def machine_info() -> Dict[str, Any]:
    """Everything a reader needs to know what ran: CPU, versions, ISA, BLAS core, env."""
    import tensorforge as tfg
    from tensorforge import _C

    torch, torch_note = optional_torch()
    tpc = _threadpoolctl()
    warnings: List[str] = []

    tf: Dict[str, Any] = {
        "version": tfg.__version__, "file": os.path.dirname(tfg.__file__),
        "active_isa": _C.active_isa(), "isa_built": list(_C.isa_built()),
        "isa_env_note": _C.isa_env_note(), "openmp": bool(_C.openmp_enabled()),
        "default_threads": tfg.get_num_threads(),
    }
    try:
        tf["gemm_blocking"] = {dt: _C.gemm_blocking(_C.active_isa(), dt)
                               for dt in ("float32", "float64")}
    except Exception as e:  # an older build without it
        tf["gemm_blocking"] = f"unavailable: {e}"

    npinfo: Dict[str, Any] = {"version": np.__version__}
    try:
        npinfo["blas_build"] = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # numpy < 1.26 has no mode="dicts"
        pass
    pools = tpc.threadpool_info() if tpc else None
    if pools is None:
        warnings.append("threadpoolctl not installed (`pip install threadpoolctl`, the `bench` "
                        "extra): NumPy's BLAS runs with its own default thread count.")
    else:
        blas = [p for p in pools if p.get("user_api") == "blas"]
        npinfo["blas_runtime"] = [{k: p.get(k) for k in ("internal_api", "architecture", "version",
                                                          "threading_layer", "num_threads",
                                                          "filepath")} for p in blas]

    env = {k: os.environ.get(k) for k in ENV_VARS}
    if env["OPENBLAS_CORETYPE"] or env["OPENBLAS_L2_SIZE"]:
        warnings.append(
            f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']} OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE']} "
            "are set: NumPy's OpenBLAS runs a forced kernel core (see blas_runtime.architecture), "
            "which slows a current NumPy. For a fair peer, unset both for the benchmark command "
            "alone: `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m tensorforge bench ...`.")

    tinfo: Optional[Dict[str, Any]] = None
    if torch is not None:
        tinfo = {"version": torch.__version__, "default_threads": torch.get_num_threads()}
        for name, probe in (("cpu_capability", lambda: torch.backends.cpu.get_cpu_capability()),
                            ("mkl", lambda: torch.backends.mkl.is_available()),
                            ("mkldnn", lambda: torch.backends.mkldnn.is_available())):
            try:
                tinfo[name] = probe()
            except Exception:
                pass
    else:
        warnings.append(torch_note)

    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpuinfo(), "cpus_usable": affinity, "os_cpu_count": os.cpu_count(),
        "platform": platform.platform(), "python": sys.version.split()[0],
        "peak_fp32_gflops": dict(PEAK_FP32_GFLOPS),
        "quiet_threshold_other_cores": QUIET_OTHER_CORES,
        "loadavg": _loadavg(),
        "tensorforge": tf, "git": _git(), "numpy": npinfo, "torch": tinfo,
        "threadpools": pools, "env": env, "warnings": warnings,
    }


def blas_summary(machine: Dict[str, Any]) -> str:
    """One line naming NumPy's BLAS and the kernel core it runs, e.g. 'openblas 0.3.31 SkylakeX'."""
    rt = machine["numpy"].get("blas_runtime")
    if not rt:
        build = machine["numpy"].get("blas_build") or {}
        return f"{build.get('name', '?')} {build.get('version', '')} (core unknown: no threadpoolctl)"
    return ", ".join(f"{p['internal_api']} {p['version']} core={p['architecture']} "
                     f"({p['threading_layer']})" for p in rt)
