"""tensorforge: a small deep-learning library with hand-written CPU (SIMD +
OpenMP, chosen at run time by ISA) and CUDA kernels.

    import tensorforge as tfg
    y = tfg.ops.matmul(a, b)
"""
import operator
from importlib import metadata as _metadata

from . import _C
from . import cuda, ops
from . import optim

try:
    __version__ = _metadata.version("tensorforge")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"


def get_num_threads() -> int:
    """Number of threads the kernels use (starts from OMP_NUM_THREADS or the core count)."""
    return _C.get_num_threads()


def set_num_threads(n: int) -> None:
    """Sets the number of threads the kernels use; n must be a positive integer."""
    if isinstance(n, bool):
        raise TypeError("set_num_threads: n must be an integer, got bool")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"set_num_threads: n must be an integer, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    if n > 4096:
        raise ValueError(f"set_num_threads: n must be <= 4096, got {n}")
    _C.set_num_threads(n)


__all__ = ["ops", "cuda", "optim", "get_num_threads", "set_num_threads", "__version__"]
