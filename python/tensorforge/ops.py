"""Kernels as plain functions (no autograd) on NumPy arrays or tfg Tensors.

NumPy in gives NumPy out, Tensor in gives Tensor out (on the same device,
never recorded for autograd); C-contiguous float32/float64 inputs are not
copied and non-contiguous ones are read through their strides. Bad input
raises TypeError / ValueError naming the argument.
"""
import functools

import numpy as np

from . import _C
from ._shapes import sum_to
from .tensor import Tensor


def matmul(a, b):
    """Matrix product with ``torch.matmul`` semantics (1-D, 2-D, batched with broadcasting)."""
    return _C.matmul(a, b)


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` as ``torch.nn.functional.linear``; the bias is fused."""
    return _C.linear(input, weight, bias)


def matmul_backward(grad_output, a, b, output_mask=(True, True)):
    """Gradients ``(grad_a, grad_b)`` of :func:`matmul` (summed over broadcast batch dims);
    an entry whose ``output_mask`` is False is None."""
    a_2d = a[None, :] if a.ndim == 1 else a
    b_2d = b[:, None] if b.ndim == 1 else b
    grad = grad_output
    if a.ndim == 1:
        grad = np.expand_dims(grad, -2)
    if b.ndim == 1:
        grad = np.expand_dims(grad, -1)
    grad_a = grad_b = None
    if output_mask[0]:
        grad_a = sum_to(_C.matmul(grad, np.swapaxes(b_2d, -1, -2)), a_2d.shape).reshape(a.shape)
    if output_mask[1]:
        if b_2d.ndim == 2 and a_2d.ndim > 2:
            # one product over all batch rows instead of a batch of products summed after
            rows_a = a_2d.reshape(-1, a_2d.shape[-1])
            rows_grad = np.broadcast_to(grad, a_2d.shape[:-1] + grad.shape[-1:]).reshape(
                -1, grad.shape[-1])
            grad_b = _C.matmul(rows_a.T, rows_grad).reshape(b.shape)
        else:
            grad_b = sum_to(_C.matmul(np.swapaxes(a_2d, -1, -2), grad), b_2d.shape).reshape(b.shape)
    return grad_a, grad_b


def linear_backward(grad_output, input, weight, bias=None, output_mask=(True, True, True)):
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of :func:`linear`; ``grad_bias`` is
    None without a bias, and an entry whose ``output_mask`` is False is None."""
    out_features = weight.shape[0]
    rows_grad = grad_output.reshape(-1, out_features)
    grad_input = _C.matmul(grad_output, weight) if output_mask[0] else None
    grad_weight = None
    if output_mask[1]:
        grad_weight = _C.matmul(rows_grad.T, input.reshape(-1, weight.shape[1]))
    grad_bias = rows_grad.sum(axis=0) if output_mask[2] and bias is not None else None
    return grad_input, grad_weight, grad_bias


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


def softmax(x, dim):
    """``torch.nn.functional.softmax(x, dim)``; a row of only -inf gives NaN as in PyTorch."""
    return _C.softmax(x, dim)


def log_softmax(x, dim):
    """``torch.nn.functional.log_softmax(x, dim)``."""
    return _C.log_softmax(x, dim)


def softmax_backward(grad_output, x, dim, output=None):
    """Gradient of ``softmax`` -> ``(grad_x,)``; pass the forward's ``output`` to skip recomputing it."""
    return _C.softmax_backward(grad_output, x, dim, output)


def log_softmax_backward(grad_output, x, dim, output=None):
    """Gradient of ``log_softmax`` -> ``(grad_x,)``; ``output`` is the forward's result, if kept."""
    return _C.log_softmax_backward(grad_output, x, dim, output)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """``torch.nn.functional.cross_entropy`` with class-index targets (int64 or int32),
    log-softmax and NLL fused per row."""
    return _C.cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)


def cross_entropy_backward(grad_output, input, target, weight=None, ignore_index=-100,
                           reduction="mean", label_smoothing=0.0):
    """Gradient of ``cross_entropy`` with respect to ``input`` -> ``(grad_input,)``.
    ``grad_output`` is a scalar for reduction "mean"/"sum", the target's shape for "none"."""
    if isinstance(grad_output, np.generic):
        grad_output = np.asarray(grad_output)
    elif isinstance(grad_output, (int, float)):
        grad_output = np.asarray(grad_output, dtype=getattr(input, "dtype", None))
    return _C.cross_entropy_backward(grad_output, input, target, weight, ignore_index, reduction,
                                     label_smoothing)


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


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None,
                                 enable_gqa=False, *, return_lse=False):
    """``F.scaled_dot_product_attention``: softmax(query key^T * scale + mask) value.

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev), leading
    dims broadcasting. ``attn_mask`` is bool (True attends) or of query's dtype
    (added); ``is_causal`` is top-left aligned; ``scale`` defaults to 1/sqrt(E);
    ``enable_gqa`` shares each key/value head among consecutive query heads. Rows
    whose keys are all masked give 0, as PyTorch 2.13. ``return_lse=True`` (not in
    PyTorch) returns ``(out, lse)``, ``lse`` (..., L) the rows' log-sum-exp, for
    the backward.
    """
    return _C.scaled_dot_product_attention(query, key, value, attn_mask, is_causal, scale,
                                           enable_gqa, return_lse=return_lse)


def scaled_dot_product_attention_backward(grad_out, query, key, value, attn_mask=None,
                                          is_causal=False, scale=None, enable_gqa=False, *,
                                          output=None, lse=None):
    """Gradient of :func:`scaled_dot_product_attention`: ``(grad_query, grad_key, grad_value)``,
    each of its input's shape (summed over broadcast and GQA-shared heads). ``output`` and
    ``lse`` (both or neither) are the forward's ``return_lse=True`` results; without them
    the forward is recomputed."""
    return _C.scaled_dot_product_attention_backward(grad_out, query, key, value, attn_mask,
                                                    is_causal, scale, enable_gqa, output=output,
                                                    lse=lse)


def nms(boxes, scores, iou_threshold):
    """``torchvision.ops.nms``: int64 indices of the boxes kept by greedy non-maximum
    suppression, by decreasing score (stable; NaN scores first). ``boxes`` (N, 4) as
    x1, y1, x2, y2; a box is dropped when its IoU with a kept box is > ``iou_threshold``.
    No gradient: the result is a set of indices."""
    return _C.nms(boxes, scores, iou_threshold)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """``torchvision.ops.batched_nms``: :func:`nms` within each category of ``idxs``
    (int64 or int32), all kept indices together by decreasing score."""
    return _C.batched_nms(boxes, scores, idxs, iou_threshold)


def box_iou(boxes1, boxes2):
    """``torchvision.ops.box_iou``: the (N, M) IoU matrix of boxes1 (N, 4) and boxes2 (M, 4)."""
    return _C.box_iou(boxes1, boxes2)


def lstm_cell(x, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One ``torch.nn.LSTMCell`` step (gate order i, f, g, o) -> ``(h, c)``.

    x (N, I) or (I,); hx, cx (N, H) (or (H,) with a 1-D x); w_ih (4H, I), w_hh (4H, H);
    biases (4H,) or None."""
    return _C.lstm_cell(x, hx, cx, w_ih, w_hh, b_ih, b_hh)


def lstm_cell_backward(grad_h, grad_c, x, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    """Gradient of :func:`lstm_cell` -> ``(grad_x, grad_hx, grad_cx, grad_w_ih, grad_w_hh,
    grad_b_ih, grad_b_hh)``; grad_h / grad_c may be None (zero), a bias gradient is None
    when that bias is."""
    return _C.lstm_cell_backward(grad_h, grad_c, x, hx, cx, w_ih, w_hh, b_ih, b_hh)


def lstm(x, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One ``torch.nn.LSTM`` layer over a sequence -> ``(y, h, c)``: x (T, N, I),
    hx, cx (N, H), y (T, N, H), h and c the final state."""
    return _C.lstm(x, hx, cx, w_ih, w_hh, b_ih, b_hh)


def lstm_backward(grad_y, grad_h, grad_c, x, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    """Gradient of :func:`lstm` through time -> the seven gradients of
    :func:`lstm_cell_backward`; grad_y (T, N, H), grad_h / grad_c for the final state,
    each may be None (zero)."""
    return _C.lstm_backward(grad_y, grad_h, grad_c, x, hx, cx, w_ih, w_hh, b_ih, b_hh)


def _tensor_in_tensor_out(kernel):
    """Lets ``kernel`` take tfg Tensors: their arrays go in, and when any argument was a
    Tensor the array results come back as Tensors on that device."""
    @functools.wraps(kernel)
    def call(*args, **kwargs):
        device = None
        unwrapped = []
        for value in args:
            if isinstance(value, Tensor):
                device, value = value._device, value._data
            unwrapped.append(value)
        for name, value in kwargs.items():
            if isinstance(value, Tensor):
                device, kwargs[name] = value._device, value._data
        result = kernel(*unwrapped, **kwargs)
        if device is None:
            return result
        if isinstance(result, tuple):
            return tuple(None if r is None else Tensor._wrap(r, device) for r in result)
        return Tensor._wrap(result, device)
    return call


__all__ = ["matmul", "matmul_backward", "linear", "linear_backward", "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward",
           "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
           "softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "cross_entropy",
           "cross_entropy_backward", "scaled_dot_product_attention",
           "scaled_dot_product_attention_backward", "nms", "batched_nms", "box_iou", "lstm_cell",
           "lstm_cell_backward", "lstm", "lstm_backward"]

for _name in __all__:
    globals()[_name] = _tensor_in_tensor_out(globals()[_name])
del _name
