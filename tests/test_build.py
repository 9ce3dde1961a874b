"""The build as a user sees it: `python -m tensorforge info`, choosing the ISA
level (TENSORFORGE_ISA, _C.set_isa), and CUDA reporting itself unavailable
without failing."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import _C

ISAS = [name for name in _C.isa_built() if _C.isa_supported(name)]


def run_python(env, *args):
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_info(package_env):
    out = run_python(package_env(OMP_NUM_THREADS="2"), "-m", "tensorforge", "info")
    version = run_python(package_env(), "-c", "import tensorforge; print(tensorforge.__version__)")
    assert re.search(rf"^tensorforge {re.escape(version.strip())}$", out, re.M), out
    built = re.search(r"^ISA variants built:\s*(.+)$", out, re.M)
    assert built and [s.strip() for s in built.group(1).split(",")] == _C.isa_built(), out
    assert re.search(rf"^ISA in use:\s*{ISAS[-1]}$", out, re.M), out
    threads = "2" if _C.openmp_enabled() else "1"
    assert re.search(rf"^OpenMP:.*\b{threads} thread", out, re.M), out
    cuda = re.search(r"^CUDA:\s*(.+)$", out, re.M)
    if tfg.cuda.is_emulated():  # the test build of csrc/cuda/emulation
        assert cuda and "available, 1 device(s), emulated" in cuda.group(1), out
    else:
        assert cuda and "not available" in cuda.group(1), out
        assert tfg.cuda.unavailable_reason() in cuda.group(1)


def test_info_reports_env_isa(package_env):
    out = run_python(package_env(TENSORFORGE_ISA="scalar"), "-m", "tensorforge", "info")
    assert re.search(r"^ISA in use:\s*scalar$", out, re.M), out


def test_cli_rejects_unknown_command(package_env):
    proc = subprocess.run([sys.executable, "-m", "tensorforge", "frobnicate"], env=package_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("level", ISAS)
def test_env_selects_isa(package_env, level):
    code = ("from tensorforge import _C; import numpy as np; import tensorforge as tfg; "
            "print(_C.active_isa()); print(repr(_C.isa_env_note())); "
            "print(tfg.ops.matmul(np.ones((3, 5), np.float32), np.ones((5, 2), np.float32)).sum())")
    lines = run_python(package_env(TENSORFORGE_ISA=level), "-c", code).splitlines()
    assert lines[0] == level
    assert lines[1] == "''"
    assert float(lines[2]) == 30.0  # the kernels run at that level


def test_env_invalid_isa_falls_back(package_env):
    code = "from tensorforge import _C; print(_C.active_isa()); print(_C.isa_env_note())"
    lines = run_python(package_env(TENSORFORGE_ISA="bogus"), "-c", code).splitlines()
    assert lines[0] == ISAS[-1]
    assert "TENSORFORGE_ISA=bogus" in lines[1] and ISAS[-1] in lines[1], lines
    out = run_python(package_env(TENSORFORGE_ISA="bogus"), "-m", "tensorforge", "info")
    assert "note:" in out and "bogus" in out


def test_env_note_empty_without_env(package_env):
    code = "from tensorforge import _C; print(repr(_C.isa_env_note()))"
    assert run_python(package_env(), "-c", code).strip() == "''"


def test_set_isa_and_blocking():
    previous = _C.active_isa()
    try:
        for level in ISAS:
            _C.set_isa(level)
            assert _C.active_isa() == level
        with pytest.raises(ValueError, match="bogus"):
            _C.set_isa("bogus")
        assert _C.active_isa() == ISAS[-1]
    finally:
        _C.set_isa(previous)
    with pytest.raises(ValueError, match="bogus"):
        _C.isa_supported("bogus")
    for level in _C.isa_built():
        for dt in ["float32", "float64"]:
            bl = _C.gemm_blocking(level, dt)
            assert set(bl) == {"mr", "nr", "mc", "kc", "nc"}
            assert all(isinstance(v, int) and v >= 1 for v in bl.values())
            assert bl["mc"] % bl["mr"] == 0 and bl["nc"] % bl["nr"] == 0
    with pytest.raises(ValueError, match="float16"):
        _C.gemm_blocking(ISAS[0], "float16")
    with pytest.raises(ValueError, match="bogus"):
        _C.gemm_blocking("bogus", "float32")


def test_isa_levels_agree():
    # The same product at every level: all agree with each other to rounding.
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((37, 61)), rng.standard_normal((61, 45))
    previous = _C.active_isa()
    try:
        results = {}
        for level in ISAS:
            _C.set_isa(level)
            results[level] = tfg.ops.matmul(a, b)
    finally:
        _C.set_isa(previous)
    for level, out in results.items():
        np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12, err_msg=level)


@pytest.mark.skipif(os.path.exists("/dev/nvidiactl"), reason="a GPU driver is present")
@pytest.mark.skipif(tfg.cuda.is_emulated(), reason="the emulated CUDA build has a device")
def test_cuda_unavailable():
    # The development machine has the toolkit but no driver or GPU: CUDA must
    # report itself unavailable, with a reason, and importing must not fail.
    available = tfg.cuda.is_available()
    assert isinstance(available, bool) and available is False
    reason = tfg.cuda.unavailable_reason()
    assert isinstance(reason, str) and reason.strip()
    assert tfg.cuda.device_count() == 0
    assert isinstance(tfg.cuda.is_built(), bool)
    assert tfg.cuda.is_emulated() is False
