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


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution as ``torch.nn.functional.conv2d`` (NCHW; ``padding`` may be
    an int, a pair, ``"same"`` or ``"valid"``)."""
    return _C.conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv2d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1,
                    groups=1, output_mask=(True, True, True)):
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of :func:`conv2d`; an entry
    whose ``output_mask`` is False (or ``grad_bias`` when ``bias`` is None) is None."""
    return _C.conv2d_backward(grad_output, input, weight, bias, stride, padding, dilation, groups,
                              tuple(bool(m) for m in output_mask))


__all__ = ["matmul", "linear", "conv2d", "conv2d_backward"]
