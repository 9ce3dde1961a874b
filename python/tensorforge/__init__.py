"""tensorforge: a small deep-learning library with hand-written CPU (SIMD +
OpenMP, chosen at run time by ISA) and CUDA kernels, under a PyTorch-like
Python layer.

    import tensorforge as tfg
    y = tfg.ops.matmul(a, b)                      # kernels on NumPy arrays
    x = tfg.randn(8, 3, requires_grad=True)       # tensors with autograd
"""
from importlib import metadata as _metadata

from . import _C
from ._args import integer_in_range as _integer_in_range
from . import cuda, ops
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .device import device
from .dtypes import bool_ as bool  # noqa: A001  (tfg.bool, as torch.bool)
from .dtypes import dtype, float32, float64, int32, int64, uint8
from .random import manual_seed
from .tensor import (Tensor, allclose, arange, as_tensor, broadcast_to, empty, empty_like, eye, from_numpy, full,
                     full_like, linspace, multinomial, ones, ones_like, rand, rand_like, randint,
                     randn, randn_like, randperm, tensor, zeros, zeros_like, equal, is_tensor)
from .differentiable import cat, maximum, minimum, stack, where
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


def _method_as_function(name):
    def function(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``tfg.{name}(input, ...)``: the same as ``input.{name}(...)``."
    return function


# tfg.<name>(input, ...) for the Tensor methods PyTorch also offers as functions
_FUNCTIONS = ["abs", "all", "amax", "amin", "any", "argmax", "argmin", "argsort", "bmm", "ceil",
              "chunk", "clamp", "clip", "cos", "cumsum", "dot", "exp", "expm1", "flatten", "flip",
              "floor", "gather", "index_select", "isfinite", "isinf", "isnan", "log", "log1p",
              "log_softmax", "logical_not", "logsumexp", "masked_fill", "masked_select",
              "matmul", "max", "mean", "min", "mm", "neg", "nonzero", "norm", "numel", "outer",
              "permute", "pow", "reciprocal", "relu", "reshape", "roll", "round", "rsqrt",
              "sigmoid", "sign", "sin", "softmax", "sort", "split", "sqrt", "square", "squeeze",
              "std", "sum", "t", "tanh", "topk", "transpose", "tril", "triu", "unbind", "unique",
              "unsqueeze", "var"]
for _name in _FUNCTIONS:
    globals()[_name] = _method_as_function(_name)
del _name


def get_num_threads() -> int:
    """Number of threads the kernels use (starts from OMP_NUM_THREADS or the core count)."""
    return _C.get_num_threads()


def set_num_threads(n: int) -> None:
    """Sets the number of threads the kernels use; n must be a positive integer."""
    _C.set_num_threads(_integer_in_range(n, "set_num_threads: n", low=1, high=4096))


__all__ = ["ops", "cuda", "nn", "optim", "data", "metrics", "fit", "History",
           "Callback", "EarlyStopping", "ModelCheckpoint", "Tensor", "tensor", "as_tensor",
           "from_numpy", "from_dlpack", "save", "load", "zeros", "ones", "empty", "full",
           "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "eye",
           "arange", "linspace", "rand", "randn", "randint", "randperm", "multinomial", "cat",
           "stack", "where", "maximum", "minimum", "is_tensor", "broadcast_to", "allclose",
           "equal", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "manual_seed", "device", "dtype", "float32", "float64", "int64", "int32", "bool",
           "uint8", "float", "double", "long", "get_num_threads", "set_num_threads",
           "__version__"] + _FUNCTIONS
