"""Shared fixtures: the CPU ISA levels and dtypes every kernel test runs on.

`isa` runs a test once per ISA level that is both compiled into this module
and supported by this CPU, switching the kernels to it with `_C.set_isa` and
restoring the previous level afterwards. `dtype` runs it for float32 and
float64. `blocking` gives that level's GEMM blocking sizes for that dtype
(mr, nr, mc, kc, nc) so tests can aim at tile boundaries.
"""
import os
import sys

import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import _C

# tests/ on sys.path so test modules can `import reference`.
sys.path.insert(0, os.path.dirname(__file__))

ISAS = [name for name in _C.isa_built() if _C.isa_supported(name)]
BEST_ISA = ISAS[-1]  # isa_built() lists the levels lowest first
DTYPES = [np.float32, np.float64]


@pytest.fixture(params=ISAS)
def isa(request):
    previous = _C.active_isa()
    _C.set_isa(request.param)
    assert _C.active_isa() == request.param
    try:
        yield request.param
    finally:
        _C.set_isa(previous)


@pytest.fixture
def best_isa():
    """The best built and supported level only (for the expensive tests)."""
    previous = _C.active_isa()
    _C.set_isa(BEST_ISA)
    try:
        yield BEST_ISA
    finally:
        _C.set_isa(previous)


@pytest.fixture(params=DTYPES, ids=lambda t: np.dtype(t).name)
def dtype(request):
    return request.param


@pytest.fixture
def blocking(isa, dtype):
    return _C.gemm_blocking(isa, np.dtype(dtype).name)


@pytest.fixture
def rng(request):
    # A fixed seed per test (derived from its name) so failures reproduce.
    seed = sum(request.node.nodeid.encode()) % (2**32)
    return np.random.default_rng(seed)


@pytest.fixture
def restore_threads():
    previous = tfg.get_num_threads()
    try:
        yield previous
    finally:
        tfg.set_num_threads(previous)


@pytest.fixture
def package_env():
    """Returns env(**extra): an environment for a subprocess that must import
    this same tensorforge (PYTHONPATH from the imported package's location),
    without any TENSORFORGE_ISA inherited from the caller."""
    return _package_env


def _package_env(**extra):
    root = os.path.dirname(os.path.dirname(os.path.abspath(tfg.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("TENSORFORGE_ISA", None)
    env.update(extra)
    return env


# The CUDA kernel tests (tests/test_cuda_*.py) run only in the emulated build
# (TENSORFORGE_CUDA_EMULATION=ON, tools/test_emulated.sh); there, every one of
# them must also give back all the emulated device memory it allocated.
def pytest_collection_modifyitems(config, items):
    if tfg.cuda.is_emulated():
        return
    skip = pytest.mark.skip(reason="needs the emulated CUDA build (TENSORFORGE_CUDA_EMULATION=ON, "
                                   "tools/test_emulated.sh)")
    for item in items:
        if item.fspath.basename.startswith("test_cuda_"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_emulated_device_leaks(request):
    checked = tfg.cuda.is_emulated() and request.node.fspath.basename.startswith("test_cuda_")
    before = _C._simt_live_allocations() if checked else 0
    yield
    if checked:
        assert _C._simt_live_allocations() == before, "emulated device memory leaked"
