"""Command line: ``python -m tensorforge info | bench [...] | demo [NAME] [--fast]``."""
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


def _demo(ns) -> int:
    from tensorforge import demos

    if ns.name is None:
        print("usage: python -m tensorforge demo NAME [--fast] [--seed N] [--output PATH]\n")
        print("demos:")
        for name, summary in demos.DEMOS.items():
            print(f"  {name:<12} {summary}")
        return 0
    if ns.name not in demos.DEMOS:
        print(f"python -m tensorforge demo: unknown demo {ns.name!r}; choose one of "
              f"{', '.join(demos.DEMOS)}", file=sys.stderr)
        return 2
    try:
        demos.run(ns.name, fast=ns.fast, seed=ns.seed, output=ns.output)
    except demos.MissingDependency as exc:
        print(f"python -m tensorforge demo {ns.name}: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tensorforge")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, ISA variants, threads, CUDA state")
    bench = sub.add_parser("bench", help="kernel benchmarks against NumPy / PyTorch (see bench/)")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    demo = sub.add_parser("demo", help="end-to-end examples on data from installed packages")
    demo.add_argument("name", nargs="?", help="the demo to run (leave out to list them)")
    demo.add_argument("--fast", action="store_true",
                      help="a quick, smaller run (what the tests use)")
    demo.add_argument("--seed", type=int, default=0, help="tfg.manual_seed for the run (0)")
    demo.add_argument("--output", default=None,
                      help="where a demo writes its file (gan: the PNG of generated digits)")
    ns = parser.parse_args(argv)
    if ns.command == "info":
        return _info()
    if ns.command == "demo":
        return _demo(ns)
    return _bench(ns.rest)


if __name__ == "__main__":
    sys.exit(main())
