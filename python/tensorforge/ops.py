"""Kernels as plain functions (no autograd) on NumPy arrays.

NumPy in gives NumPy out; C-contiguous float32/float64 inputs are not copied
and non-contiguous ones are read through their strides. Bad input raises
TypeError / ValueError naming the argument.
"""
from . import _C


def matmul(a, b):
    """Matrix product with ``torch.matmul`` semantics (1-D, 2-D, batched with broadcasting)."""
    return _C.matmul(a, b)


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` as ``torch.nn.functional.linear``; the bias is fused."""
    return _C.linear(input, weight, bias)


__all__ = ["matmul", "linear"]
