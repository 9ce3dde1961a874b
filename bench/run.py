"""Runs benchmark suites and records their results.

    python -m tensorforge bench gemm [--threads 1,2] [--dtype float32,float64] [--quick]
    python bench/run.py gemm ...          (from the repository root)

Prints one table row per case as it finishes, then writes
<out>/<suite>-<YYYYMMDD-HHMMSS>.json, <out>/<suite>-latest.json and
<out>/<suite>-latest.md (the summary table the README links to). A --quick
run writes <suite>-quick-* files instead, so a smoke run never replaces the
recorded results.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(ROOT))

SUITES = {"gemm": "bench.gemm", "cnn": "bench.cnn", "seq": "bench.seq", "train": "bench.train"}
DTYPES = ("float32", "float64")


def _ensure_tensorforge() -> None:
    """Imports tensorforge, falling back to the source tree's python/ (a built, uninstalled checkout)."""
    try:
        import tensorforge  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(ROOT / "python"))
        import tensorforge  # noqa: F401


def _int_list(text: str) -> List[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"thread counts must be positive integers, got {text!r}")
    return vals


def _dtype_list(text: str) -> List[str]:
    vals = [x.strip() for x in text.split(",") if x.strip()]
    bad = [v for v in vals if v not in DTYPES]
    if not vals or bad:
        raise argparse.ArgumentTypeError(f"dtypes must be among {', '.join(DTYPES)}, got {text!r}")
    return vals


def _float_list(text: str) -> List[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"peaks must be positive, got {text!r}")
    return vals


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tensorforge bench",
        description="Time tensorforge's kernels against NumPy / PyTorch in the same run.")
    p.add_argument("suites", nargs="*", metavar="SUITE",
                   help=f"suites to run: {', '.join(SUITES)} (default: all)")
    p.add_argument("--threads", type=_int_list, default=[1, 2], metavar="LIST",
                   help="thread counts, comma-separated (default 1,2)")
    p.add_argument("--dtype", type=_dtype_list, default=None, metavar="LIST",
                   help="dtypes, comma-separated (default: the suite's; gemm float32,float64, cnn float32)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: small sizes, few samples (seconds); writes *-quick-* files")
    p.add_argument("-k", "--filter", default=None, metavar="TEXT",
                   help="only cases whose label contains TEXT (e.g. '2048', '@ 784')")
    p.add_argument("--budget", type=float, default=None, metavar="S",
                   help="timed seconds per contender per case (default: the suite's)")
    p.add_argument("--peak-fp32", type=_float_list, default=None, metavar="LIST",
                   help="FP32 peak GFLOP/s on 1,2,... threads (default 117,233: the development "
                        "machine); float64 is half")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"), metavar="DIR",
                   help="where results go (default bench/results)")
    p.add_argument("--no-save", action="store_true", help="print only; write no files")
    p.add_argument("--busy", action="store_true",
                   help="keep one core busy with a spinning process for the whole run, to check that "
                        "more threads are never slower than one on a shared machine; writes *-busy-* files")
    return p


class _Hog:
    """A process spinning on one core for the duration of a --busy run."""

    def __init__(self, active: bool) -> None:
        self.active = active
        self.proc = None

    def __enter__(self):
        if self.active:
            import subprocess
            self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def _thread_scaling(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Ours at n threads against ours at 1 thread, per case and dtype (rate ratio)."""
    one = {(r["label"], r["dtype"]): r["contenders"][r["ours"]]["gflops"]
           for r in records if r["threads"] == 1}
    rows = []
    for r in records:
        base = one.get((r["label"], r["dtype"]))
        if r["threads"] > 1 and base:
            rows.append({"label": r["label"], "dtype": r["dtype"], "threads": r["threads"],
                         "speedup": r["contenders"][r["ours"]]["gflops"] / base})
    return rows


# ----------------------------------------------------------------------------- table

def _fmt_rate(x: Optional[float]) -> str:
    return "-" if x is None else (f"{x:.1f}" if x < 100 else f"{x:.0f}")


def _fmt_ratio(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _columns(peers: List[str], labels: Dict[str, str], times: bool = False) -> List[str]:
    cols = ["case", "dtype", "thr", "ours GFLOP/s", "IQR", "% peak", "ours GB/s"]
    if times:
        cols.append("ours us/call")
    for p in peers:
        if times:
            cols.append(f"{labels.get(p, p)} us/call")
        cols += [f"{labels.get(p, p)} GFLOP/s", f"ours/{labels.get(p, p)}"]
    return cols + ["other load", "quiet", "check"]


def _fmt_us(seconds: float) -> str:
    us = 1e6 * seconds
    return f"{us:.1f}" if us < 100 else f"{us:.0f}"


def _row(rec: Dict[str, Any], peers: List[str], times: bool = False) -> List[str]:
    c = rec["contenders"]
    ours = c[rec["ours"]]
    row = [rec["label"], rec["dtype"], str(rec["threads"]), _fmt_rate(ours["gflops"]),
           f"{100 * ours['iqr_rel']:.0f}%" if ours.get("iqr_rel") is not None else "-",
           f"{ours['pct_peak']:.0f}%",
           _fmt_rate(ours["gbs"]) if rec["bound"] == "memory" else "-"]
    if times:
        row.append(_fmt_us(ours["median_s"]))
    for p in peers:
        if times:
            row.append(_fmt_us(c[p]["median_s"]) if p in c else "-")
        if p in c:
            row += [_fmt_rate(c[p]["gflops"]), _fmt_ratio(rec["ratios"][p])]
        else:
            row += ["-", "-"]
    load = rec["load"]
    other = load.get("other_cores")
    row.append("?" if other is None else f"{other:.2f}")
    row.append("?" if rec["quiet"] is None else ("yes" if rec["quiet"] else "NO"))
    chk = rec.get("check")
    row.append("-" if chk is None else ("ok" if chk.get("ok") else "FAIL"))
    return row


class _Table:
    """Prints rows as they come, with column widths fixed from the header and typical cells."""

    def __init__(self, cols: List[str], case_width: int = 22) -> None:
        self.cols = cols
        mins = {"case": case_width, "dtype": 7, "thr": 3}
        self.widths = [max(len(c), mins.get(c, 6)) for c in cols]

    def _line(self, cells: List[str]) -> str:
        out = []
        for i, (cell, w) in enumerate(zip(cells, self.widths)):
            out.append(cell.ljust(w) if i < 2 else cell.rjust(w))
        return "  ".join(out)

    def header(self) -> str:
        return self._line(self.cols) + "\n" + "  ".join("-" * w for w in self.widths)

    def row(self, cells: List[str]) -> str:
        return self._line(cells)


def _markdown(suite: str, result: Dict[str, Any], peers: List[str], labels: Dict[str, str]) -> str:
    from bench.harness import QUIET_OTHER_CORES, blas_summary

    m = result["machine"]
    tf = m["tensorforge"]
    cpu = m["cpu"]
    torch = m["torch"]
    lines = [
        f"# `{suite}` benchmark{' (quick smoke run: not a measurement)' if result['quick'] else ''}",
        "",
        f"- date: {m['date']}; commit: {m['git'].get('commit', '?')}"
        f"{' (dirty)' if m['git'].get('dirty') else ''}; took {result['elapsed_s']:.0f} s",
        f"- CPU: {cpu.get('model', '?')}, {m['cpus_usable']} usable CPU(s); "
        f"FP32 peak used: {', '.join(f'{v:g} GFLOP/s on {k} thread(s)' for k, v in m['peak_fp32_gflops'].items())}"
        " (float64: half)",
        f"- tensorforge {tf['version']}, ISA {tf['active_isa']}, OpenMP {'on' if tf['openmp'] else 'off'}",
        f"- NumPy {m['numpy']['version']}: {blas_summary(m)}",
        f"- PyTorch: {torch['version'] + ' (' + str(torch.get('cpu_capability', '?')) + ')' if torch else 'not installed'}",
        "- env: " + (", ".join(f"{k}={v}" for k, v in m["env"].items() if v is not None)
                     or "none of " + ", ".join(m["env"]) + " set"),
    ]
    if result.get("filter"):
        lines.append(f"- partial run: only cases containing `{result['filter']}`")
    probe = result.get("extra", {}).get("bandwidth_probe")
    if probe:
        lines.append(f"- memory bandwidth probe: {probe['gbs_median']:.1f} GB/s median "
                     f"({probe['gbs_best']:.1f} best), {probe['what']}")
    for w in m["warnings"]:
        lines.append(f"- note: {w}")
    lines += [
        "",
        "Rates are medians over interleaved samples; `ours/X` > 1 means tensorforge is faster. "
        f"`other load` is other processes' CPU use in cores during the case; quiet means < {QUIET_OTHER_CORES}. "
        "GB/s is shown for memory-bound cases. Raw samples: the JSON beside this file.",
        "",
    ]
    times = result.get("show_times", False)
    cols = _columns(peers, labels, times)
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(cols))) + "|")
    for rec in result["cases"]:
        lines.append("| " + " | ".join(_row(rec, peers, times)) + " |")
    s = result["summary"]
    lines += ["", f"{s['cases']} cases; {s['not_quiet']} not quiet; {s['check_failed']} failed the check."]
    if result.get("busy"):
        lines[0] += " with one core kept busy (--busy)"
    scaling = _thread_scaling(result["cases"])
    if scaling:
        lines += ["", "tensorforge with n threads against itself with 1 thread (rate ratio; "
                  "> 1: the extra thread helps):", "",
                  "| case | dtype | threads | speedup |", "|---|---|---:|---:|"]
        lines += [f"| {r['label']} | {r['dtype']} | {r['threads']} | {r['speedup']:.2f}x |" for r in scaling]
    if s.get("over_peak"):
        lines.append(f"{len(s['over_peak'])} rate(s) exceed the peak table: this CPU is faster than the "
                     "machine it describes, so read `% peak` as relative only.")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- running

def _print_header(machine: Dict[str, Any]) -> None:
    from bench.harness import blas_summary

    tf = machine["tensorforge"]
    cpu = machine["cpu"]
    torch = machine["torch"]
    print(f"machine: {cpu.get('model', '?')}, {machine['cpus_usable']} usable CPU(s), "
          f"loadavg {machine['loadavg']}")
    print(f"tensorforge {tf['version']} ISA={tf['active_isa']} "
          f"| NumPy {machine['numpy']['version']}: {blas_summary(machine)} "
          f"| torch {torch['version'] if torch else 'not installed'}")
    env = {k: v for k, v in machine["env"].items() if v is not None}
    if env:
        print("env: " + " ".join(f"{k}={v}" for k, v in env.items()))
    for w in machine["warnings"]:
        print(f"note: {w}")


def _run_suite(name: str, args, machine: Dict[str, Any]) -> Dict[str, Any]:
    from bench import harness

    mod = importlib.import_module(SUITES[name])
    timing = mod.timing(args.quick)
    if args.budget is not None:
        timing = timing.replace(budget_s=args.budget)
    dtypes = args.dtype or list(getattr(mod, "DEFAULT_DTYPES", DTYPES))
    extra = mod.extra_info(args.quick) if hasattr(mod, "extra_info") else {}
    for key, value in extra.items():
        print(f"{key}: {value}")
    cases = mod.cases(dtypes, args.threads, quick=args.quick)
    if args.filter:
        cases = [c for c in cases if args.filter in c.label]
    peers = list(mod.PEERS)
    labels = dict(getattr(mod, "PEER_LABELS", {}))
    times = bool(getattr(mod, "SHOW_TIMES", False))
    table = _Table(_columns(peers, labels, times), max([22] + [len(c.label) for c in cases]))
    print(f"\n== {name}: {len(cases)} case(s){' (quick)' if args.quick else ''}")
    print(table.header(), flush=True)
    start = time.perf_counter()
    records = []
    try:
        for case in cases:
            rec = harness.run_case(case, timing)
            records.append(rec)
            print(table.row(_row(rec, peers, times)), flush=True)
    finally:
        if hasattr(mod, "finish"):
            mod.finish()
    elapsed = time.perf_counter() - start
    summary = {
        "cases": len(records),
        "not_quiet": sum(1 for r in records if r["quiet"] is False),
        "quiet_unknown": sum(1 for r in records if r["quiet"] is None),
        "check_failed": sum(1 for r in records if r.get("check") and not r["check"].get("ok")),
    }
    summary["over_peak"] = sorted({f"{r['label']} {r['dtype']} {r['threads']}t {n}"
                                   for r in records for n, c in r["contenders"].items()
                                   if c["pct_peak"] > 100})
    print(f"-- {name}: {summary['cases']} cases in {elapsed:.0f} s; {summary['not_quiet']} not quiet "
          f"(other load >= {harness.QUIET_OTHER_CORES} cores); {summary['check_failed']} failed the check")
    if summary["over_peak"]:
        print(f"note: {len(summary['over_peak'])} rate(s) above the peak table "
              f"({', '.join(summary['over_peak'][:3])}{', ...' if len(summary['over_peak']) > 3 else ''}): "
              "this CPU is faster than the one the table describes; pass --peak-fp32 with its figures")
    return {
        "suite": name, "quick": args.quick, "filter": args.filter, "argv": sys.argv[1:],
        "threads": args.threads, "dtypes": dtypes, "timing": dict(timing.__dict__), "extra": extra,
        "peers": peers, "peer_labels": labels, "show_times": times, "elapsed_s": elapsed,
        "machine": machine, "summary": summary, "cases": records, "busy": args.busy,
    }


def _save(result: Dict[str, Any], out_dir: Path, stamp: str) -> List[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    base = result["suite"] + ("-quick" if result["quick"] else "") + ("-busy" if result["busy"] else "")
    text = json.dumps(result, indent=1, default=str) + "\n"
    paths = [out_dir / f"{base}-{stamp}.json", out_dir / f"{base}-latest.json",
             out_dir / f"{base}-latest.md"]
    paths[0].write_text(text)
    paths[1].write_text(text)
    paths[2].write_text(_markdown(result["suite"], result, result["peers"], result["peer_labels"]))
    return paths


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        print(f"unknown suite(s): {', '.join(unknown)}; available: {', '.join(SUITES)}",
              file=sys.stderr)
        return 2
    suites = args.suites or list(SUITES)
    if sys.path[0] != str(ROOT) and str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    _ensure_tensorforge()
    from bench import harness

    if args.peak_fp32:
        harness.set_peak_fp32(args.peak_fp32)
    ncpu = os.cpu_count() or 1
    if max(args.threads) > ncpu:
        print(f"note: {max(args.threads)} threads on {ncpu} CPU(s): oversubscribed", file=sys.stderr)

    machine = harness.machine_info()
    _print_header(machine)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    failed = 0
    with _Hog(args.busy):
        for name in suites:
            result = _run_suite(name, args, machine)
            failed += result["summary"]["check_failed"]
            for r in _thread_scaling(result["cases"]):
                print(f"ours {r['threads']} threads / 1 thread: {r['speedup']:.2f}x  {r['label']} {r['dtype']}")
            if not args.no_save:
                for p in _save(result, Path(args.out), stamp):
                    print(f"wrote {os.path.relpath(p)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
