"""``tfg.nn.functional``: the stateless forms of the layers, activations and
losses, with PyTorch's signatures, defaults and semantics.

The convolutions, poolings, softmaxes, cross-entropy, linear and attention run
the C++ kernels through ``differentiable``; batch_norm, layer_norm, dropout,
embedding, nll_loss and the binary cross-entropies are single graph nodes with
fused backward rules; the rest are compositions of differentiable tensor ops.
Arguments are checked here, with errors naming the argument and the values.
"""
import math
import numbers
import warnings

import numpy as np

from .. import differentiable as D
from ..random import default_generator
from ..tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------- checking
def _check_tensor(x, name, what):
    if not isinstance(x, Tensor):
        raise TypeError(f"{what}: argument '{name}' must be a Tensor, got {type(x).__name__}")


def _check_float(x, name, what):
    _check_tensor(x, name, what)
    if not x.dtype.is_floating_point:
        raise TypeError(f"{what}: argument '{name}' must be a floating-point tensor, got {x.dtype}")


def _check_optional(x, name, what):
    if x is not None:
        _check_tensor(x, name, what)


def _check_same_dtype(input, tensors, what):
    for name, t in tensors:
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"{what}: '{name}' has dtype {t.dtype.name} but 'input' has dtype "
                            f"{input.dtype.name}; both must be the same")


def _check_reduction(reduction, what):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{what}: {reduction!r} is not a valid value for reduction "
                         f"(expected 'mean', 'sum' or 'none')")


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_same_shape(input, target, what):
    if input.shape != target.shape:
        raise ValueError(f"{what}: target size {list(target.shape)} is different from the input "
                         f"size {list(input.shape)}; they must match")


def _check_probability(p, name, what):
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{what}: {name} has to be between 0 and 1, but got {p!r}")


# ------------------------------------------------------------------ linear
def linear(input, weight, bias=None):
    """``input @ weight.T + bias``: input (..., in_features), weight (out_features,
    in_features), bias (out_features,)."""
    _check_tensor(input, "input", "linear")
    _check_tensor(weight, "weight", "linear")
    _check_optional(bias, "bias", "linear")
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                         f"{list(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {list(input.shape)} does not match weight of "
                         f"shape {list(weight.shape)} (last input dim must be {weight.shape[1]})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape [{weight.shape[0]}], got "
                         f"{list(bias.shape)}")
    return D.linear(input, weight, bias)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) of (N, C, H, W) or (C, H, W) input with weight
    (out_channels, C / groups, kH, kW); ``padding`` may be "same" or "valid"."""
    _check_tensor(input, "input", "conv2d")
    _check_tensor(weight, "weight", "conv2d")
    _check_optional(bias, "bias", "conv2d")
    return D.conv2d(input, weight, bias, stride, padding, dilation, groups)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling; with ``return_indices`` also the flat per-plane argmax indices."""
    _check_tensor(input, "input", "max_pool2d")
    return D.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling."""
    _check_tensor(input, "input", "avg_pool2d")
    return D.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed ``output_size`` (an int or a pair; None keeps that size)."""
    _check_tensor(input, "input", "adaptive_avg_pool2d")
    return D.adaptive_avg_pool2d(input, output_size)


# ------------------------------------------------------------- activations
# ``inplace`` is accepted for PyTorch compatibility; the result is always a new tensor.
def relu(input, inplace=False):
    """max(x, 0)."""
    _check_tensor(input, "input", "relu")
    return D.relu(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, else negative_slope * x."""
    _check_float(input, "input", "leaky_relu")
    return D.leaky_relu(input, negative_slope)


def sigmoid(input):
    """1 / (1 + exp(-x))."""
    _check_tensor(input, "input", "sigmoid")
    return D.sigmoid(input)


def tanh(input):
    """The hyperbolic tangent."""
    _check_tensor(input, "input", "tanh")
    return D.tanh(input)


def gelu(input, approximate="none"):
    """x * Phi(x) (``approximate="none"``) or its tanh approximation (``"tanh"``)."""
    _check_float(input, "input", "gelu")
    return D.gelu(input, approximate)


def silu(input, inplace=False):
    """x * sigmoid(x) (swish)."""
    _check_float(input, "input", "silu")
    return input * D.sigmoid(input)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""
    _check_float(input, "input", "softplus")
    scaled = input * beta
    smooth = (D.exp(D.clamp(scaled, max=threshold)) + 1).log() / beta
    return D.where(scaled > threshold, input, smooth)


def _implicit_dim(input, what):
    warnings.warn(f"Implicit dimension choice for {what} has been deprecated. Change the call "
                  "to include dim=X as an argument.", stacklevel=3)
    return 0 if input.ndim in (0, 1, 3) else 1


def _softmax_input(input, dim, dtype, what):
    _check_float(input, "input", what)
    if dim is None:
        dim = _implicit_dim(input, what)
    if dtype is not None:
        input = D.cast(input, dtype)
    return input, dim


def softmax(input, dim=None, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim``."""
    input, dim = _softmax_input(input, dim, dtype, "softmax")
    return D.softmax(input, dim)


def log_softmax(input, dim=None, dtype=None):
    """x - logsumexp(x) along ``dim``."""
    input, dim = _softmax_input(input, dim, dtype, "log_softmax")
    return D.log_softmax(input, dim)


# ------------------------------------------------------ dropout, normalisation
def dropout(input, p=0.5, training=True, inplace=False):
    """In training, zeroes elements with probability ``p`` (drawn from the default
    generator) and scales the others by 1 / (1 - p); otherwise the identity."""
    _check_tensor(input, "input", "dropout")
    _check_probability(p, "dropout probability", "dropout")
    if not training or p == 0:
        return input
    _check_float(input, "input", "dropout")
    return D.dropout(input, p, default_generator())


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalises each channel (dim 1) of (N, C, ...) input: by the batch statistics when
    ``training`` (then updating ``running_mean``/``running_var`` in place with
    ``momentum``, the variance unbiased), else by the running statistics."""
    _check_float(input, "input", "batch_norm")
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_optional(t, name, "batch_norm")
    _check_same_dtype(input, (("weight", weight), ("bias", bias)), "batch_norm")
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input with at least 2 dims (N, C, ...), got "
                         f"shape {list(input.shape)}")
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (channels,):
            raise ValueError(f"batch_norm: {name} must have shape [{channels}] for input of shape "
                             f"{list(input.shape)}, got {list(t.shape)}")
    if training:
        if input.numel() // channels <= 1:
            raise ValueError("batch_norm: expected more than 1 value per channel when training, "
                             f"got input size {list(input.shape)}")
    elif running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are required when not training")
    return D.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _normalized_tuple(normalized_shape):
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(n) for n in normalized_shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalises over the trailing ``normalized_shape`` dims (biased variance), then
    multiplies by ``weight`` and adds ``bias`` (both of that shape) when given."""
    _check_float(input, "input", "layer_norm")
    _check_optional(weight, "weight", "layer_norm")
    _check_optional(bias, "bias", "layer_norm")
    _check_same_dtype(input, (("weight", weight), ("bias", bias)), "layer_norm")
    shape = _normalized_tuple(normalized_shape)
    if not shape or input.shape[input.ndim - len(shape):] != shape or len(shape) > input.ndim:
        raise ValueError(f"layer_norm: normalized_shape {list(shape)} does not match the trailing "
                         f"dims of input of shape {list(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ValueError(f"layer_norm: {name} must have shape {list(shape)}, got "
                             f"{list(t.shape)}")
    return D.layer_norm(input, shape, weight, bias, eps)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` (num_embeddings, dim) at the integer indices ``input``; the
    ``padding_idx`` row gets no gradient; with ``max_norm`` the looked-up rows whose
    ``norm_type``-norm exceeds it are renormalised in place first, as PyTorch."""
    _check_tensor(input, "input", "embedding")
    _check_tensor(weight, "weight", "embedding")
    if input.dtype.is_floating_point or input.dtype.name == "bool":
        raise TypeError(f"embedding: argument 'input' must be an integer tensor (int64 or int32), "
                        f"got {input.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {list(weight.shape)}")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse are not supported")
    count = weight.shape[0]
    if padding_idx is not None:
        if not -count <= padding_idx < count:
            raise ValueError(f"embedding: padding_idx {padding_idx} is out of range for "
                             f"{count} embeddings")
        padding_idx %= count
    indices = input._data
    if indices.size and (indices.min() < 0 or indices.max() >= count):
        bad = indices.min() if indices.min() < 0 else indices.max()
        raise IndexError(f"embedding: index {int(bad)} is out of range for {count} embeddings")
    if max_norm is not None:
        _renorm_rows(weight, indices, max_norm, norm_type)
    return D.embedding(input, weight, padding_idx)


def _renorm_rows(weight, indices, max_norm, norm_type):
    rows = np.unique(indices)
    data = weight._data
    norms = np.linalg.norm(data[rows], ord=norm_type, axis=1)
    over = norms > max_norm
    if over.any():
        data[rows[over]] *= (max_norm / (norms[over] + 1e-7))[:, None].astype(data.dtype)
        weight._mark_modified()


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """softmax(query key^T * scale + mask) value over the last two dims; ``attn_mask`` is
    bool (True attends) or added; ``dropout_p`` drops attention weights."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        _check_float(t, name, "scaled_dot_product_attention")
    _check_optional(attn_mask, "attn_mask", "scaled_dot_product_attention")
    _check_probability(dropout_p, "dropout_p", "scaled_dot_product_attention")
    if dropout_p == 0:
        return D.scaled_dot_product_attention(query, key, value, attn_mask, is_causal, scale,
                                              enable_gqa)
    if enable_gqa:
        raise NotImplementedError("scaled_dot_product_attention: enable_gqa with dropout_p > 0 "
                                  "is not supported")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    factor = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = D.matmul(query, D.transpose(key, -2, -1)) * factor
    if is_causal:
        length, source = query.shape[-2], key.shape[-2]
        attn_mask = Tensor._wrap(np.tril(np.ones((length, source), bool)), query.device)
    if attn_mask is not None:
        if attn_mask.dtype.name == "bool":
            scores = D.where(attn_mask, scores, -math.inf)
        else:
            scores = scores + attn_mask
    weights = dropout(D.softmax(scores, -1), dropout_p)
    return D.matmul(weights, value)


# ------------------------------------------------------------------- losses
def _broadcast_pair(input, target, what):
    if input.shape != target.shape:
        try:
            np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            raise ValueError(f"{what}: target size {list(target.shape)} cannot be broadcast to "
                             f"input size {list(input.shape)}") from None
        warnings.warn(f"{what}: using a target size {list(target.shape)} that is different to "
                      f"the input size {list(input.shape)}; they are broadcast, which is "
                      "likely not intended", stacklevel=3)


def mse_loss(input, target, reduction="mean"):
    """(input - target)^2, reduced."""
    _check_float(input, "input", "mse_loss")
    _check_tensor(target, "target", "mse_loss")
    _check_reduction(reduction, "mse_loss")
    _broadcast_pair(input, target, "mse_loss")
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input, target, reduction="mean"):
    """|input - target|, reduced."""
    _check_float(input, "input", "l1_loss")
    _check_tensor(target, "target", "l1_loss")
    _check_reduction(reduction, "l1_loss")
    _broadcast_pair(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction)


def _weighted(loss, weight, what):
    if weight is None:
        return loss
    _check_tensor(weight, "weight", what)
    try:
        np.broadcast_shapes(weight.shape, loss.shape)
    except ValueError:
        raise ValueError(f"{what}: weight of shape {list(weight.shape)} cannot be broadcast to "
                         f"the input's shape {list(loss.shape)}") from None
    return loss * weight


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-w (t log x + (1 - t) log(1 - x)) for probabilities ``input`` in [0, 1], the logs
    clamped at -100 as PyTorch; ``weight`` broadcasts to the input."""
    _check_float(input, "input", "binary_cross_entropy")
    _check_float(target, "target", "binary_cross_entropy")
    _check_reduction(reduction, "binary_cross_entropy")
    _check_same_shape(input, target, "binary_cross_entropy")
    x = input._data
    if x.size and not ((x >= 0) & (x <= 1)).all():
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1 "
                         f"(got values from {x.min()} to {x.max()}); use "
                         "binary_cross_entropy_with_logits for logits")
    loss = D.binary_cross_entropy(input, D.cast(target, x.dtype) if target.dtype != input.dtype
                                  else target)
    return _reduce(_weighted(loss, weight, "binary_cross_entropy"), reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid and binary cross-entropy in one, stable for any logits; ``pos_weight``
    (broadcast along the last dim, usually one per class) weighs the positive term."""
    what = "binary_cross_entropy_with_logits"
    _check_float(input, "input", what)
    _check_float(target, "target", what)
    _check_optional(pos_weight, "pos_weight", what)
    _check_reduction(reduction, what)
    _check_same_shape(input, target, what)
    if target.dtype != input.dtype:
        target = D.cast(target, input.dtype)
    if pos_weight is not None:
        try:
            np.broadcast_shapes(pos_weight.shape, input.shape)
        except ValueError:
            raise ValueError(f"{what}: pos_weight of shape {list(pos_weight.shape)} cannot be "
                             f"broadcast to the input's shape {list(input.shape)}") from None
        pos_weight = pos_weight.detach()
    loss = D.binary_cross_entropy_with_logits(input, target, pos_weight)
    return _reduce(_weighted(loss, weight, what), reduction)


def _check_class_target(input, target, what):
    """Checks class-index ``target`` against ``input`` (C,), (N, C) or (N, C, d1, ...)."""
    if target.dtype.is_floating_point or target.dtype.name == "bool":
        raise TypeError(f"{what}: class-index target must be an integer tensor (int64), got "
                        f"{target.dtype}")
    if input.ndim == 0:
        raise ValueError(f"{what}: input must have at least 1 dim, (C,) or (N, C, ...), got "
                         "a scalar")
    expected = () if input.ndim == 1 else (input.shape[0],) + input.shape[2:]
    if target.shape != expected:
        raise ValueError(f"{what}: target of shape {list(target.shape)} does not match input of "
                         f"shape {list(input.shape)} (expected target shape {list(expected)})")


def _check_class_weight(input, weight, what):
    if weight is None:
        return
    _check_float(weight, "weight", what)
    classes = input.shape[0 if input.ndim == 1 else 1]
    if weight.shape != (classes,):
        raise ValueError(f"{what}: weight must have shape [{classes}] (one per class), got "
                         f"{list(weight.shape)}")


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Log-softmax over the classes (dim 1, or 0 for (C,) input) and negative log-likelihood.
    ``target`` holds class indices (integer, the input's shape without the class dim) or
    class probabilities (floating, the input's shape)."""
    _check_float(input, "input", "cross_entropy")
    _check_tensor(target, "target", "cross_entropy")
    _check_reduction(reduction, "cross_entropy")
    _check_class_weight(input, weight, "cross_entropy")
    _check_probability(label_smoothing, "label_smoothing", "cross_entropy")
    if target.dtype.is_floating_point:
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    _check_class_target(input, target, "cross_entropy")
    return D.cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)


def _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing):
    if target.shape != input.shape:
        raise ValueError(f"cross_entropy: probability target of shape {list(target.shape)} must "
                         f"have the input's shape {list(input.shape)}")
    class_dim = 0 if input.ndim == 1 else 1
    classes = input.shape[class_dim]
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    terms = D.log_softmax(input, class_dim) * target
    if weight is not None:
        terms = terms * D.reshape(weight, (classes,) + (1,) * (input.ndim - class_dim - 1))
    return _reduce(-terms.sum(class_dim), reduction)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """-input[n, target[n]] per sample (log-probabilities ``input``, classes on dim 1), with
    per-class ``weight``; "mean" divides by the summed weights of the non-ignored targets."""
    _check_float(input, "input", "nll_loss")
    _check_tensor(target, "target", "nll_loss")
    _check_reduction(reduction, "nll_loss")
    _check_class_target(input, target, "nll_loss")
    _check_class_weight(input, weight, "nll_loss")
    classes = input.shape[0 if input.ndim == 1 else 1]
    labels = target._data
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= classes))
    if bad.any():
        raise IndexError(f"nll_loss: target {int(labels[bad].reshape(-1)[0])} is out of bounds "
                         f"for {classes} classes")
    return D.nll_loss(input, target, weight, ignore_index, reduction)


# -------------------------------------------------------------------- misc
def one_hot(tensor, num_classes=-1):
    """int64 one-hot encoding of the class indices ``tensor`` in a new last dim."""
    _check_tensor(tensor, "tensor", "one_hot")
    if tensor.dtype.is_floating_point or tensor.dtype.name == "bool":
        raise TypeError(f"one_hot: expected an integer tensor of class indices, got {tensor.dtype}")
    labels = tensor._data
    if labels.size and labels.min() < 0:
        raise ValueError(f"one_hot: class values must be non-negative, got {labels.min()}")
    if num_classes == -1:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif labels.size and labels.max() >= num_classes:
        raise ValueError(f"one_hot: class value {labels.max()} is not below num_classes "
                         f"{num_classes}")
    out = (labels[..., None] == np.arange(num_classes)).astype(np.int64)
    return Tensor._wrap(out, tensor.device)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """input / max(||input||_p along dim, eps)."""
    _check_float(input, "input", "normalize")
    # max(norm, eps) taken on norm^p, so a zero vector gets the finite gradient 1 / eps
    powered = D.clamp((input.abs() ** p).sum(dim, keepdim=True), min=eps ** p)
    return input / powered ** (1.0 / p)


def pad(input, pad, mode="constant", value=0.0):
    """Pads (or, with negative sizes, crops) the last dims: ``pad`` lists (before, after)
    pairs starting from the last dim. Only mode "constant" is supported."""
    _check_tensor(input, "input", "pad")
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported (only 'constant')")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding length {len(pad)} must be even and at most twice the "
                         f"input's {input.ndim} dims")
    crop = [slice(None)] * input.ndim
    place = [slice(None)] * input.ndim
    shape = list(input.shape)
    for k in range(len(pad) // 2):
        axis = input.ndim - 1 - k
        before, after = int(pad[2 * k]), int(pad[2 * k + 1])
        crop[axis] = slice(max(-before, 0), shape[axis] - max(-after, 0))
        size = shape[axis] - max(-before, 0) - max(-after, 0)
        if size < 0 or size + max(before, 0) + max(after, 0) <= 0:
            raise ValueError(f"pad: padding {list(pad)} leaves dim {axis} of input shape "
                             f"{list(input.shape)} empty")
        place[axis] = slice(max(before, 0), max(before, 0) + size)
        shape[axis] = size + max(before, 0) + max(after, 0)
    cropped = input[tuple(crop)]
    out = Tensor._wrap(np.full(shape, value, input._data.dtype), input.device)
    out[tuple(place)] = cropped
    return out


__all__ = ["linear", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "relu",
           "leaky_relu", "sigmoid", "tanh", "gelu", "silu", "softplus", "softmax", "log_softmax",
           "dropout", "batch_norm", "layer_norm", "embedding", "scaled_dot_product_attention",
           "mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "cross_entropy", "nll_loss", "one_hot", "normalize", "pad"]
