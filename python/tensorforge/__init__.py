"""tensorforge: a small deep-learning library with hand-written CPU (SIMD +
OpenMP, chosen at run time by ISA) and CUDA kernels, under a PyTorch-like
Python layer.

    import tensorforge as tfg
    y = tfg.ops.matmul(a, b)                      # kernels on NumPy arrays
    x = tfg.randn(8, 3, requires_grad=True)       # tensors with autograd
"""
import operator
from importlib import metadata as _metadata

from . import _C
from . import cuda, ops
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .device import device
from .dtypes import bool_ as bool  # noqa: A001  (tfg.bool, as torch.bool)
from .dtypes import dtype, float32, float64, int32, int64, uint8
from .random import manual_seed
from .tensor import (Tensor, arange, as_tensor, empty, from_numpy, full, full_like, linspace, ones,
                     ones_like, rand, randint, randn, randperm, tensor, zeros, zeros_like)
from .differentiable import (abs, cat, chunk, clamp, exp, flatten, log, logsumexp, matmul,  # noqa: A004
                             maximum, minimum, reshape, sigmoid, sqrt, split, squeeze, stack, tanh,
                             transpose, unsqueeze, where)
from .differentiable import sum as _sum_fn, mean as _mean_fn
from . import nn  # noqa: E402
from . import data, metrics  # noqa: E402
from . import optim  # noqa: E402
from .interop import from_dlpack
from .io import load, save
from .train import Callback, EarlyStopping, History, ModelCheckpoint, fit  # noqa: E402

float = float32  # noqa: A001  (tfg.float, as torch.float)
double = float64
long = int64

try:
    __version__ = _metadata.version("tensorforge")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"


def sum(input, dim=None, keepdim=False, dtype=None):  # noqa: A001
    """``tfg.sum``: the sum of all elements, or along ``dim``."""
    return _sum_fn(input, dim, keepdim, dtype)


def mean(input, dim=None, keepdim=False, dtype=None):
    """``tfg.mean``: the mean of all elements, or along ``dim``."""
    return _mean_fn(input, dim, keepdim, dtype)


def max(input, dim=None, keepdim=False):  # noqa: A001
    """``tfg.max``: the maximum, or ``(values, indices)`` along ``dim``."""
    return input.max(dim, keepdim)


def min(input, dim=None, keepdim=False):  # noqa: A001
    """``tfg.min``: the minimum, or ``(values, indices)`` along ``dim``."""
    return input.min(dim, keepdim)


def argmax(input, dim=None, keepdim=False):
    return input.argmax(dim, keepdim)


def relu(input):
    return input.relu()


def softmax(input, dim):
    return input.softmax(dim)


def log_softmax(input, dim):
    return input.log_softmax(dim)


def permute(input, dims):
    return input.permute(*dims)


def get_num_threads() -> int:
    """Number of threads the kernels use (starts from OMP_NUM_THREADS or the core count)."""
    return _C.get_num_threads()


def set_num_threads(n: int) -> None:
    """Sets the number of threads the kernels use; n must be a positive integer."""
    if isinstance(n, type(True)):
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


__all__ = ["ops", "cuda", "nn", "Tensor", "tensor", "as_tensor", "from_numpy", "zeros", "ones",
           "data", "metrics", "optim", "fit", "History", "Callback", "EarlyStopping",
           "ModelCheckpoint",
           "empty", "full", "zeros_like", "ones_like", "full_like", "arange", "linspace", "rand",
           "randn", "randint", "randperm", "cat", "stack", "where", "matmul", "exp", "log", "sqrt",
           "abs", "tanh", "sigmoid", "relu", "softmax", "log_softmax", "clamp", "maximum",
           "minimum", "sum", "mean", "max", "min", "argmax", "logsumexp", "reshape", "flatten",
           "squeeze", "unsqueeze", "transpose", "permute", "split", "chunk", "no_grad",
           "enable_grad", "set_grad_enabled", "is_grad_enabled", "manual_seed", "device", "dtype",
           "float32", "float64", "int64", "int32", "bool", "uint8", "float", "double", "long",
           "get_num_threads", "set_num_threads", "__version__",
           "from_dlpack", "save", "load"]
