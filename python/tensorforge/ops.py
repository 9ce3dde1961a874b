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


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling of (N, C, H, W) or (C, H, W) input, as ``F.max_pool2d``.

    Returns ``out``, or ``(out, indices)`` with int64 indices flat within each
    input plane (``h * W + w``) when ``return_indices``.
    """
    return _C.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, indices=None):
    """Gradient of :func:`max_pool2d`: ``(grad_x,)``. Uses ``indices`` when given,
    else recomputes the argmax from ``x``."""
    return _C.max_pool2d_backward(grad_output, x, kernel_size, stride, padding, dilation,
                                  ceil_mode, indices)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling of (N, C, H, W) or (C, H, W) input, as ``F.avg_pool2d``."""
    return _C.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override)


def avg_pool2d_backward(grad_output, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool2d`: ``(grad_x,)``."""
    return _C.avg_pool2d_backward(grad_output, x, kernel_size, stride, padding, ceil_mode,
                                  count_include_pad, divisor_override)


def adaptive_avg_pool2d(x, output_size):
    """Adaptive 2-D average pooling, as ``F.adaptive_avg_pool2d``; ``output_size`` is an
    int or a pair whose entries may be None (keep that input size)."""
    return _C.adaptive_avg_pool2d(x, output_size)


def adaptive_avg_pool2d_backward(grad_output, x, output_size):
    """Gradient of :func:`adaptive_avg_pool2d`: ``(grad_x,)``."""
    return _C.adaptive_avg_pool2d_backward(grad_output, x, output_size)


__all__ = ["matmul", "linear", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
           "avg_pool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward"]
