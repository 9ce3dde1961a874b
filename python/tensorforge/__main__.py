"""Command line: ``python -m tensorforge info | bench [...]``."""
import argparse
import os
import sys


def _info() -> int:
    import tensorforge as tfg
    from tensorforge import _C

    status = _C.cuda_status()
    built = _C.isa_built()
    print(f"tensorforge {tfg.__version__}")
    print(f"ISA variants built:  {', '.join(built)}")
    print(f"ISA supported here:  {', '.join(i for i in built if _C.isa_supported(i))}")
    print(f"ISA in use:          {_C.active_isa()}")
    if _C.isa_env_note():
        print(f"  note: {_C.isa_env_note()}")
    print(f"OpenMP:              {'yes' if _C.openmp_enabled() else 'no'}, "
          f"{tfg.get_num_threads()} thread(s)")
    cuda = "built" if status["built"] else "not built"
    if status["available"]:
        cuda += f", available, {status['device_count']} device(s)"
    else:
        cuda += f"; {status['reason']}"
    if tfg.cuda.is_emulated():
        cuda += ", emulated"
    print(f"CUDA:                {cuda}")
    return 0


def _bench(args) -> int:
    # The suites live in the source tree's bench/ folder, beside their recorded results.
    here = os.getcwd()
    script = os.path.join(here, "bench", "run.py")
    if not os.path.exists(script):
        print("python -m tensorforge bench: run it from a tensorforge source checkout "
              "(bench/run.py not found in the current directory)", file=sys.stderr)
        return 2
    sys.path.insert(0, here)
    from bench import run  # noqa: E402

    return run.main(args)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tensorforge")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, ISA variants, threads, CUDA state")
    bench = sub.add_parser("bench", help="kernel benchmarks against NumPy / PyTorch (see bench/)")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    if ns.command == "info":
        return _info()
    return _bench(ns.rest)


if __name__ == "__main__":
    sys.exit(main())
