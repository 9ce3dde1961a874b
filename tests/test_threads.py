"""Threads: concurrent calls from Python threads (the kernels release the
GIL), the kernel thread count, and results independent of it."""
import subprocess
import sys
import threading

import numpy as np
import pytest

import tensorforge as tfg
from reference import assert_gemm_close, linear_ref, matmul_ref

# Shapes that take every scheduling path of gemm_batched / gemm_blocked:
# tiny (one thread), one large product (parallel over blocks), few rows and
# many columns (B panels split into chunks), many small products (parallel
# over the batch), a folded 3-D input, and linear.
PROBLEMS = [
    ("matmul", (7, 5), (5, 3)),
    ("matmul", (200, 150), (150, 170)),
    ("matmul", (9, 300), (300, 700)),
    ("matmul", (64, 24, 20), (64, 20, 28)),
    ("matmul", (6, 40, 64), (64, 90)),
    ("linear", (130, 70), (110, 70)),
]


def make_problem(rng, kind, s1, s2, dtype=np.float32):
    a = rng.uniform(-1, 1, s1).astype(dtype)
    b = rng.uniform(-1, 1, s2).astype(dtype)
    if kind == "matmul":
        return (lambda: tfg.ops.matmul(a, b)), matmul_ref(a, b), a, b
    bias = rng.uniform(-1, 1, s2[0]).astype(dtype)
    return (lambda: tfg.ops.linear(a, b, bias)), linear_ref(a, b, bias), a, b


def test_concurrent_python_threads(rng, restore_threads):
    tfg.set_num_threads(2)
    n_threads, rounds = 4, 3
    # Different data per thread, float32 and float64 mixed.
    work = [[make_problem(rng, *PROBLEMS[(t + i) % len(PROBLEMS)],
                          dtype=np.float32 if (t + i) % 2 else np.float64)
             for i in range(len(PROBLEMS))] for t in range(n_threads)]
    results = [[None] * len(w) for w in work]
    errors = []
    barrier = threading.Barrier(n_threads)

    def worker(t):
        try:
            barrier.wait()
            for _ in range(rounds):
                for i, (call, _, _, _) in enumerate(work[t]):
                    out = call()
                    if results[t][i] is None:
                        results[t][i] = out
                    elif not np.array_equal(out, results[t][i]):
                        errors.append(f"thread {t} problem {i}: result changed between rounds")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {t}: {e!r}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads), "a worker thread hung"
    assert not errors, errors
    for t in range(n_threads):
        for i, (_, expected, a, b) in enumerate(work[t]):
            assert_gemm_close(results[t][i], expected, a.dtype, a.shape[-1], a, b)


def test_set_get_num_threads_round_trip(restore_threads):
    for n in [1, 2, 3, 1]:
        tfg.set_num_threads(n)
        assert tfg.get_num_threads() == n
        assert isinstance(tfg.get_num_threads(), int)


@pytest.mark.parametrize("kind,s1,s2", PROBLEMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_results_identical_for_1_and_2_threads(rng, restore_threads, kind, s1, s2, dtype):
    call, expected, a, b = make_problem(rng, kind, s1, s2, dtype)
    tfg.set_num_threads(1)
    one = call()
    tfg.set_num_threads(2)
    two = call()
    tfg.set_num_threads(3)  # more threads than cores must also work
    three = call()
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, three)
    assert_gemm_close(one, expected, dtype, a.shape[-1], a, b)


@pytest.mark.parametrize("bad", [0, -1, -100])
def test_set_num_threads_rejects_nonpositive(restore_threads, bad):
    with pytest.raises(ValueError, match=rf"n must be >= 1, got {bad}"):
        tfg.set_num_threads(bad)
    assert tfg.get_num_threads() == restore_threads


@pytest.mark.parametrize("bad", [1.5, 2.0, "2", None, True])
def test_set_num_threads_rejects_non_int(restore_threads, bad):
    with pytest.raises(TypeError, match=r"n must be an int"):
        tfg.set_num_threads(bad)
    assert tfg.get_num_threads() == restore_threads


def test_omp_num_threads_env(package_env):
    code = "import tensorforge; print(tensorforge.get_num_threads())"
    for value in ["1", "2"]:
        proc = subprocess.run([sys.executable, "-c", code], env=package_env(OMP_NUM_THREADS=value),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        expected = value if tfg._C.openmp_enabled() else "1"
        assert proc.stdout.strip() == expected


# A process that forks after the kernels have used their thread team (as
# multiprocessing's default "fork" start method and data-loader workers do)
# must still be able to run multi-threaded kernels in the child. NumPy's
# OpenBLAS handles this; GNU OpenMP's team does not survive fork(), so a
# library built on it has to protect the child (e.g. a pthread_atfork child
# handler that drops the child to one thread, as PyTorch does for its pool).
# Run in a subprocess: the failure mode is a hang.
FORK_CODE = r"""
import multiprocessing as mp
import numpy as np
import tensorforge as tfg

a = np.arange(300 * 300, dtype=np.float32).reshape(300, 300) % 7
tfg.set_num_threads(2)
expected = tfg.ops.matmul(a, a)          # big enough to use the thread team

def child(q):
    q.put(tfg.ops.matmul(a, a))          # same size: would use a team in the child

ctx = mp.get_context("fork")
q = ctx.Queue()
p = ctx.Process(target=child, args=(q,))
p.start()
try:
    out = q.get(timeout=15)   # read before join: a child exits only once its queue is drained
except Exception:
    p.kill()
    print("child hung")
else:
    p.join(15)
    print("child exit", p.exitcode, "equal", bool(np.array_equal(out, expected)))
"""


@pytest.mark.skipif(not tfg._C.openmp_enabled(), reason="built without OpenMP")
def test_fork_after_parallel_matmul(package_env):
    proc = subprocess.run([sys.executable, "-c", FORK_CODE], env=package_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "child exit 0 equal True", proc.stdout + proc.stderr
