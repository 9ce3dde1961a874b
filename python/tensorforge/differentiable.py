"""The differentiable operations on Tensors: each forward, and its backward
rule in the one table ``BACKWARD_RULES`` that ``autograd.run_backward`` reads.

Forwards compute on the inputs' arrays and call ``_record``, which wraps the
result and, when gradients are wanted, records the node. A rule receives the
node and the gradient of the output (a list of per-output gradients, None
where none arrived, for several outputs) and returns one gradient per input,
None where an input needs none. Rules use the public kernels
(``ops.*_backward``) where they exist; the rest is array arithmetic.

Note [array functions]: the elementwise work calls NumPy functions on the
tensors' arrays. NumPy dispatches those (``__array_ufunc__``,
``__array_function__``) on the array's type, so a device array type that
implements the protocols takes the same code.
"""
import builtins
import collections
import numbers

import numpy as np

from . import _C, ops
from .autograd import Node, _mode, is_grad_enabled, no_grad
from .dtypes import as_dtype
from ._shapes import sum_to as _sum_to
from .tensor import Tensor, _dim

BACKWARD_RULES = {}


def rule(name):
    """Registers ``fn(node, grad) -> input gradients`` as the backward of operation ``name``."""
    def register(fn):
        BACKWARD_RULES[name] = fn
        return fn
    return register


def _record(data, inputs, name, saved=(), ctx=None):
    """Wraps ``data`` (an array, or a tuple of arrays for several outputs) as tensors and
    records the node when grad mode is on and an input requires grad."""
    device = inputs[0]._device
    if type(data) is not tuple:
        out = Tensor._wrap(data, device)
        if _mode.enabled:
            edges = _edges(inputs)
            if edges is not None:
                out._node = Node(name, edges, saved, ctx)
                out._requires_grad = True
        return out
    outputs = tuple([Tensor._wrap(d, device) for d in data])
    if _mode.enabled:
        edges = _edges(inputs)
        if edges is not None:
            node = Node(name, edges, saved, ctx, len(outputs))
            for index, out in enumerate(outputs):
                if out._data.dtype.kind == "f":
                    out._node, out._output_index, out._requires_grad = node, index, True
    return outputs


def _edges(inputs):
    """Where each input's gradient goes (see Node), or None when no input requires grad."""
    wanted = False
    edges = []
    for t in inputs:
        if t is None or not t._requires_grad:
            edges.append(None)
        else:
            wanted = True
            edges.append(t if t._node is None else (t._node, t._output_index))
    return tuple(edges) if wanted else None


def _view_of(out, base):
    """Marks ``out`` as a view of ``base`` when their data overlap (shared version counter)."""
    if np.may_share_memory(out._data, base._data):
        out._version = base._version
        out._base = base if base._base is None else base._base
    return out


def _alias(out):
    """A history-free tensor over ``out``'s data sharing its version counter: lets a node save
    its own output without a reference cycle."""
    alias = Tensor._wrap(out._data, out._device)
    alias._version = out._version
    return alias


# ------------------------------------------------------------ operands, dtypes
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


def _tensor_operand(x, like):
    """``x`` as a tensor next to ``like``: Python numbers take like's dtype when they fit
    its kind (PyTorch's rule: a float number makes an integer tensor float32)."""
    if isinstance(x, Tensor):
        if x._device != like._device:
            raise RuntimeError(f"expected all tensors on the same device, got {like._device} and "
                               f"{x._device}")
        return x
    if isinstance(x, np.ndarray):
        return Tensor._wrap(x, like._device)
    if isinstance(x, (bool, np.bool_)):
        dtype = like._data.dtype
    elif isinstance(x, numbers.Integral):
        dtype = like._data.dtype if like._data.dtype.kind in "iuf" else np.dtype(np.int64)
    elif isinstance(x, numbers.Real):
        dtype = like._data.dtype if like._data.dtype.kind == "f" else np.dtype(np.float32)
    else:
        raise TypeError(f"unsupported operand of type {type(x).__name__} for a tensor operation")
    return Tensor._wrap(np.asarray(x, dtype=dtype), like._device)


def _operands(a, b):
    """Both operands as tensors on one device, promoted to a common dtype as PyTorch does."""
    if not isinstance(a, Tensor):
        a = _tensor_operand(a, b)
    else:
        b = _tensor_operand(b, a)
    da, db = a._data.dtype, b._data.dtype
    if da != db:
        ra, rb = _KIND_RANK[da.kind], _KIND_RANK[db.kind]
        target = np.result_type(da, db) if ra == rb else (da if ra > rb else db)
        if da != target:
            a = cast(a, target)
        if db != target:
            b = cast(b, target)
    return a, b


def cast(a, dtype):
    """``a`` converted to ``dtype`` (a copy); gradients are converted back."""
    target = as_dtype(dtype).numpy
    return _record(a._data.astype(target), (a,), "cast", ctx=a._data.dtype)


@rule("cast")
def _cast_backward(node, grad):
    return (grad.astype(node.ctx),)


def clone(a):
    return _record(a._data.copy(), (a,), "clone")


@rule("clone")
def _clone_backward(node, grad):
    return (grad,)


# ------------------------------------------------------------------ arithmetic
def add(a, b):
    a, b = _operands(a, b)
    return _record(a._data + b._data, (a, b), "add", ctx=(a.shape, b.shape))


@rule("add")
def _add_backward(node, grad):
    shape_a, shape_b = node.ctx
    return _sum_to(grad, shape_a), _sum_to(grad, shape_b)


def sub(a, b):
    a, b = _operands(a, b)
    return _record(a._data - b._data, (a, b), "sub", ctx=(a.shape, b.shape))


@rule("sub")
def _sub_backward(node, grad):
    shape_a, shape_b = node.ctx
    return _sum_to(grad, shape_a), _sum_to(-grad, shape_b)


def mul(a, b):
    a, b = _operands(a, b)
    return _record(a._data * b._data, (a, b), "mul", saved=(a, b))


@rule("mul")
def _mul_backward(node, grad):
    a, b = node.saved()
    return _sum_to(grad * b, a.shape), _sum_to(grad * a, b.shape)


def div(a, b):
    a, b = _operands(a, b)
    if a._data.dtype.kind != "f":
        a, b = cast(a, np.float32), cast(b, np.float32)
    return _record(a._data / b._data, (a, b), "div", saved=(a, b))


@rule("div")
def _div_backward(node, grad):
    a, b = node.saved()
    grad_a = grad / b
    return _sum_to(grad_a, a.shape), _sum_to(-grad_a * a / b, b.shape)


def floor_divide(a, b):
    a, b = _operands(a, b)
    return Tensor._wrap(np.floor_divide(a._data, b._data), a._device)


def remainder(a, b):
    a, b = _operands(a, b)
    return Tensor._wrap(np.remainder(a._data, b._data), a._device)


def pow(a, b):
    a, b = _operands(a, b)
    return _record(np.power(a._data, b._data), (a, b), "pow", saved=(a, b))


@rule("pow")
def _pow_backward(node, grad):
    a, b = node.saved()
    grad_a = grad * b * np.power(a, b - 1)
    grad_b = None
    if node.edges[1] is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_b = grad * np.power(a, b) * np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)
        grad_b = _sum_to(grad_b, b.shape)
    return _sum_to(grad_a, a.shape), grad_b


def neg(a):
    return _record(-a._data, (a,), "neg")


@rule("neg")
def _neg_backward(node, grad):
    return (-grad,)


def compare(ufunc, a, b):
    """Elementwise comparisons and bitwise logic: no gradient."""
    a, b = _operands(a, b)
    return Tensor._wrap(ufunc(a._data, b._data), a._device)


def maximum(a, b):
    a, b = _operands(a, b)
    return _record(np.maximum(a._data, b._data), (a, b), "maximum", saved=(a, b))


def minimum(a, b):
    a, b = _operands(a, b)
    return _record(np.minimum(a._data, b._data), (a, b), "minimum", saved=(a, b))


def _extremum_pair_backward(node, grad, a_wins):
    a, b = node.saved()
    tie = a == b
    share = np.where(tie, 0.5, np.where(a_wins(a, b), 1.0, 0.0)).astype(grad.dtype)
    return _sum_to(grad * share, a.shape), _sum_to(grad * (1 - share), b.shape)


@rule("maximum")
def _maximum_backward(node, grad):
    return _extremum_pair_backward(node, grad, np.greater)


@rule("minimum")
def _minimum_backward(node, grad):
    return _extremum_pair_backward(node, grad, np.less)


def where(condition, a, b):
    """``a`` where ``condition`` is true, else ``b`` (either may be a number)."""
    if not isinstance(condition, Tensor):
        condition = Tensor._wrap(np.asarray(condition, dtype=bool),
                                 a._device if isinstance(a, Tensor) else b._device)
    if condition._data.dtype != np.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {condition.dtype}")
    a, b = _operands(a, b)
    mask = condition._data
    return _record(np.where(mask, a._data, b._data), (a, b), "where",
                   ctx=(mask, a.shape, b.shape))


@rule("where")
def _where_backward(node, grad):
    mask, shape_a, shape_b = node.ctx
    zero = np.zeros((), grad.dtype)
    return _sum_to(np.where(mask, grad, zero), shape_a), _sum_to(np.where(mask, zero, grad), shape_b)


# ----------------------------------------------------------------- unary maths
def _float_input(a, what):
    if a._data.dtype.kind != "f":
        return cast(a, np.float32)
    return a


def exp(a):
    a = _float_input(a, "exp")
    return _saving_output(np.exp(a._data), a, "exp")


@rule("exp")
def _exp_backward(node, grad):
    (out,) = node.saved()
    return (grad * out,)


def log(a):
    a = _float_input(a, "log")
    return _record(np.log(a._data), (a,), "log", saved=(a,))


@rule("log")
def _log_backward(node, grad):
    (a,) = node.saved()
    return (grad / a,)


def sqrt(a):
    a = _float_input(a, "sqrt")
    return _saving_output(np.sqrt(a._data), a, "sqrt")


@rule("sqrt")
def _sqrt_backward(node, grad):
    (out,) = node.saved()
    return (grad / (2 * out),)


def abs(a):
    return _record(np.abs(a._data), (a,), "abs", saved=(a,))


@rule("abs")
def _abs_backward(node, grad):
    (a,) = node.saved()
    return (grad * np.sign(a),)


def sin(a):
    a = _float_input(a, "sin")
    return _record(np.sin(a._data), (a,), "sin", saved=(a,))


@rule("sin")
def _sin_backward(node, grad):
    (a,) = node.saved()
    return (grad * np.cos(a),)


def cos(a):
    a = _float_input(a, "cos")
    return _record(np.cos(a._data), (a,), "cos", saved=(a,))


@rule("cos")
def _cos_backward(node, grad):
    (a,) = node.saved()
    return (-grad * np.sin(a),)


def _saving_output(data, a, name, ctx=None):
    """Records a one-input op whose backward needs its own output."""
    return _save_output(_record(data, (a,), name, ctx=ctx))


def _save_output(out):
    """Adds ``out`` to its node's saved tensors, as an alias (no reference cycle)."""
    node = out._node
    if node is not None:
        node._saved += (_alias(out),)
        node._versions += (out._version[0],)
    return out


def tanh(a):
    a = _float_input(a, "tanh")
    return _saving_output(np.tanh(a._data), a, "tanh")


@rule("tanh")
def _tanh_backward(node, grad):
    (out,) = node.saved()
    return (grad * (1 - out * out),)


def sigmoid(a):
    a = _float_input(a, "sigmoid")
    x = a._data
    # exp of -|x| never overflows; the two branches give the same function
    e = np.exp(-np.abs(x))
    return _saving_output(np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False),
                          a, "sigmoid")


@rule("sigmoid")
def _sigmoid_backward(node, grad):
    (out,) = node.saved()
    return (grad * out * (1 - out),)


def relu(a):
    return _saving_output(np.maximum(a._data, 0), a, "relu")


@rule("relu")
def _relu_backward(node, grad):
    (out,) = node.saved()
    return (grad * (out > 0),)


def leaky_relu(a, negative_slope=0.01):
    x = a._data
    return _record(np.where(x > 0, x, x * x.dtype.type(negative_slope)), (a,), "leaky_relu",
                   saved=(a,), ctx=negative_slope)


@rule("leaky_relu")
def _leaky_relu_backward(node, grad):
    (a,) = node.saved()
    return (grad * np.where(a > 0, 1, node.ctx).astype(grad.dtype),)


_SQRT_2_OVER_PI = 0.7978845608028654


def gelu(a, approximate="none"):
    """GELU: x * Phi(x) exactly (``approximate="none"``) or with PyTorch's tanh formula."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    x = a._data
    if approximate == "tanh":
        inner = np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))
        out = 0.5 * x * (1 + inner)
    else:
        out = 0.5 * x * (1 + _erf(x / np.sqrt(2)))
    return _record(out.astype(x.dtype, copy=False), (a,), "gelu", saved=(a,), ctx=approximate)


_ERF_TERMS = 44
# erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)): coefficients of the series in x^2
_ERF_SERIES = [(-1) ** n / (__import__("math").factorial(n) * (2 * n + 1)) for n in range(_ERF_TERMS)]


def _erf(x):
    """erf for arrays to float64 accuracy: the Taylor series below |x| = 3 (at most ~3 digits
    lost to cancellation) and erfc's continued fraction above it, both evaluated in float64."""
    z = np.abs(x.astype(np.float64))
    small = np.minimum(z, 3.0)
    y = small * small
    series = np.full_like(y, _ERF_SERIES[-1])
    for c in reversed(_ERF_SERIES[:-1]):
        series = series * y + c
    erf_small = 2 / np.sqrt(np.pi) * small * series
    large = np.maximum(z, 3.0)
    fraction = large.copy()
    for k in range(60, 0, -1):          # erfc(x) = e^(-x^2) / sqrt(pi) / (x + (1/2)/(x + 1/(x + ...)))
        fraction = large + (k / 2) / fraction
    erf_large = 1 - np.exp(-large * large) / (np.sqrt(np.pi) * fraction)
    return (np.sign(x) * np.where(z < 3.0, erf_small, erf_large)).astype(x.dtype, copy=False)


@rule("gelu")
def _gelu_backward(node, grad):
    (x,) = node.saved()
    if node.ctx == "tanh":
        u = _SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)
        th = np.tanh(u)
        du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
        d = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * du
    else:
        cdf = 0.5 * (1 + _erf(x / np.sqrt(2)))
        pdf = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
        d = cdf + x * pdf
    return (grad * d.astype(grad.dtype, copy=False),)


def clamp(a, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    x = a._data
    lo = -np.inf if min is None else min
    hi = np.inf if max is None else max
    out = np.clip(x, lo, hi).astype(x.dtype, copy=False)
    return _record(out, (a,), "clamp", saved=(a,), ctx=(lo, hi))


@rule("clamp")
def _clamp_backward(node, grad):
    (a,) = node.saved()
    lo, hi = node.ctx
    return (grad * ((a >= lo) & (a <= hi)),)


# ------------------------------------------------------------------ reductions
def _axes(dim, ndim, what):
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        return tuple(sorted({_dim(d, ndim, what) for d in dim}))
    return (_dim(dim, ndim, what),)


def _expand_reduced(grad, shape, axes, keepdim):
    """The gradient of a reduction over ``axes``, broadcast back to the input's ``shape``."""
    if axes is None:
        axes = tuple(range(len(shape)))
    if not keepdim:
        grad = np.expand_dims(grad, axes) if axes else grad
    return np.broadcast_to(grad, shape)


def sum(a, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        a = cast(a, dtype)
    elif a._data.dtype.kind in "bi" or a._data.dtype == np.uint8:
        a = cast(a, np.int64)
    axes = _axes(dim, a.ndim, "sum")
    return _record(np.sum(a._data, axis=axes, keepdims=keepdim), (a,), "sum",
                   ctx=(a.shape, axes, keepdim))


@rule("sum")
def _sum_backward(node, grad):
    shape, axes, keepdim = node.ctx
    return (_expand_reduced(grad, shape, axes, keepdim),)


def mean(a, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        a = cast(a, dtype)
    if a._data.dtype.kind != "f":
        raise RuntimeError(f"mean(): input dtype should be floating point, got {a.dtype}")
    axes = _axes(dim, a.ndim, "mean")
    return _record(np.mean(a._data, axis=axes, keepdims=keepdim), (a,), "mean",
                   ctx=(a.shape, axes, keepdim))


@rule("mean")
def _mean_backward(node, grad):
    shape, axes, keepdim = node.ctx
    count = np.prod([shape[i] for i in (range(len(shape)) if axes is None else axes)])
    return (_expand_reduced(grad / grad.dtype.type(builtins.max(count, 1)), shape, axes, keepdim),)


def var(a, dim=None, correction=1, keepdim=False):
    axes = _axes(dim, a.ndim, "var")
    return _record(np.var(a._data, axis=axes, ddof=correction, keepdims=keepdim), (a,), "var",
                   saved=(a,), ctx=(axes, correction, keepdim))


@rule("var")
def _var_backward(node, grad):
    (a,) = node.saved()
    axes, correction, keepdim = node.ctx
    count = a.size if axes is None else np.prod([a.shape[i] for i in axes])
    centred = a - a.mean(axis=axes, keepdims=True)
    scale = grad.dtype.type(2 / builtins.max(count - correction, 0)) if count > correction \
        else grad.dtype.type(np.nan)
    return (_expand_reduced(grad, a.shape, axes, keepdim) * centred * scale,)


MaxMin = collections.namedtuple("MaxMin", ["values", "indices"])


def extremum(a, dim, keepdim, kind):
    """``max``/``min``: the value over all elements, or ``(values, indices)`` along ``dim``."""
    pick, arg = (np.max, np.argmax) if kind == "max" else (np.min, np.argmin)
    if a._data.size == 0:
        raise RuntimeError(f"{kind}(): cannot reduce an empty tensor")
    if dim is None:
        value = pick(a._data)
        return _record(value, (a,), "extremum_all", saved=(a,), ctx=value)
    axis = _dim(dim, a.ndim, kind)
    indices = np.expand_dims(arg(a._data, axis=axis), axis)
    values = np.take_along_axis(a._data, indices, axis)
    if not keepdim:
        values, indices = values.squeeze(axis), indices.squeeze(axis)
    out = _record(values, (a,), "extremum_dim", ctx=(a.shape, axis, indices, keepdim))
    return MaxMin(out, Tensor._wrap(indices.astype(np.int64, copy=False), a._device))


@rule("extremum_all")
def _extremum_all_backward(node, grad):
    (a,) = node.saved()
    # every element equal to the extremum shares the gradient evenly, as PyTorch
    value = node.ctx
    hits = a == value
    return (grad * hits / hits.sum(),)


@rule("extremum_dim")
def _extremum_dim_backward(node, grad):
    shape, axis, indices, keepdim = node.ctx
    full = np.zeros(shape, grad.dtype)
    if not keepdim:
        grad, indices = np.expand_dims(grad, axis), np.expand_dims(indices, axis)
    np.put_along_axis(full, indices, grad, axis)
    return (full,)


def arg_extremum(a, dim, keepdim, kind):
    arg = np.argmax if kind == "max" else np.argmin
    if dim is None:
        out = arg(a._data)
        return Tensor._wrap(np.asarray(out, np.int64).reshape((1,) * a.ndim if keepdim else ()),
                            a._device)
    out = arg(a._data, axis=_dim(dim, a.ndim, f"arg{kind}"), keepdims=keepdim)
    return Tensor._wrap(out.astype(np.int64, copy=False), a._device)


def logsumexp(a, dim, keepdim=False):
    axes = _axes(dim, a.ndim, "logsumexp")
    x = a._data
    peak = np.max(x, axis=axes, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0)
    out = np.log(np.sum(np.exp(x - peak), axis=axes, keepdims=True)) + peak
    return _record(out if keepdim else out.squeeze(axes), (a,), "logsumexp", saved=(a,),
                   ctx=(axes, keepdim, out))


@rule("logsumexp")
def _logsumexp_backward(node, grad):
    (a,) = node.saved()
    axes, keepdim, out = node.ctx
    return (_expand_reduced(grad, a.shape, axes, keepdim) * np.exp(a - out),)


def logical_reduce(fn, a, dim, keepdim):
    axes = _axes(dim, a.ndim, fn.__name__)
    return Tensor._wrap(np.asarray(fn(a._data, axis=axes, keepdims=keepdim)), a._device)


# ---------------------------------------------------------------------- shapes
def _reshape_rule_output(data, a):
    return _view_of(_record(data, (a,), "reshape", ctx=a.shape), a)


def reshape(a, shape):
    try:
        data = a._data.reshape(shape)
    except ValueError:
        raise RuntimeError(f"reshape: shape {list(shape)} is invalid for a tensor of "
                           f"{a._data.size} elements (shape {list(a.shape)})") from None
    return _reshape_rule_output(data, a)


def view(a, shape):
    data = a._data.view()
    try:
        data.shape = shape
    except (AttributeError, ValueError):
        try:
            np.empty(a._data.shape, dtype=np.bool_).reshape(shape)
        except ValueError:
            raise RuntimeError(f"view: shape {list(shape)} is invalid for a tensor of "
                               f"{a._data.size} elements (shape {list(a.shape)})") from None
        raise RuntimeError(f"view: shape {list(shape)} is not compatible with the input's "
                           f"strides (shape {list(a.shape)}); use reshape() instead") from None
    return _reshape_rule_output(data, a)


@rule("reshape")
def _reshape_backward(node, grad):
    return (grad.reshape(node.ctx),)


def flatten(a, start_dim=0, end_dim=-1):
    if a.ndim == 0:
        return reshape(a, (1,))
    start, end = _dim(start_dim, a.ndim, "flatten"), _dim(end_dim, a.ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = a.shape[:start] + (-1 if a._data.size else int(np.prod(a.shape[start:end + 1])),) \
        + a.shape[end + 1:]
    return reshape(a, shape)


def squeeze(a, dim=None):
    if dim is None:
        shape = tuple(n for n in a.shape if n != 1)
    else:
        axes = _axes(dim, a.ndim, "squeeze")
        shape = tuple(n for i, n in enumerate(a.shape) if not (i in axes and n == 1))
    return reshape(a, shape)


def unsqueeze(a, dim):
    axis = _dim(dim, a.ndim + 1, "unsqueeze")
    return reshape(a, a.shape[:axis] + (1,) + a.shape[axis:])


def permute(a, dims):
    if len(dims) != a.ndim:
        raise RuntimeError(f"permute: got {len(dims)} dims for a tensor with {a.ndim}")
    order = tuple(_dim(d, a.ndim, "permute") for d in dims)
    if sorted(order) != list(range(a.ndim)):
        raise RuntimeError(f"permute: dims {list(dims)} are not a permutation")
    return _view_of(_record(a._data.transpose(order), (a,), "permute", ctx=order), a)


@rule("permute")
def _permute_backward(node, grad):
    return (grad.transpose(np.argsort(node.ctx)),)


def transpose(a, dim0, dim1):
    order = list(range(a.ndim))
    i, j = _dim(dim0, a.ndim, "transpose"), _dim(dim1, a.ndim, "transpose")
    order[i], order[j] = order[j], order[i]
    return permute(a, order)


def expand(a, sizes):
    lead = len(sizes) - a.ndim
    if lead < 0:
        raise RuntimeError(f"expand: {len(sizes)} sizes for a tensor with {a.ndim} dims")
    shape = tuple(a.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    try:
        data = np.broadcast_to(a._data, shape)
    except ValueError:
        raise RuntimeError(f"expand: cannot expand shape {list(a.shape)} to {list(sizes)}") from None
    return _view_of(_record(data, (a,), "expand", ctx=a.shape), a)


@rule("expand")
def _expand_backward(node, grad):
    return (_sum_to(grad, node.ctx),)


def repeat(a, repeats):
    if len(repeats) < a.ndim:
        raise RuntimeError(f"repeat: {len(repeats)} repeats for a tensor with {a.ndim} dims")
    shape = (1,) * (len(repeats) - a.ndim) + a.shape
    return _record(np.tile(a._data.reshape(shape), repeats), (a,), "repeat",
                   ctx=(a.shape, shape, tuple(repeats)))


@rule("repeat")
def _repeat_backward(node, grad):
    original, shape, repeats = node.ctx
    split = []
    for r, n in zip(repeats, shape):
        split += [r, n]
    grad = grad.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
    return (grad.reshape(original),)


def _index_key(key):
    """An indexing key with tensors replaced by their arrays."""
    if isinstance(key, tuple):
        return tuple(k._data if isinstance(k, Tensor) else k for k in key)
    return key._data if isinstance(key, Tensor) else key


def _is_basic(key):
    parts = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (slice, numbers.Integral))
               and not isinstance(k, (bool, np.bool_)) for k in parts)


def index(a, key):
    key = _index_key(key)
    try:
        data = a._data[key]
    except IndexError as e:
        raise IndexError(f"index {key!r} is out of range for a tensor of shape "
                         f"{list(a.shape)}: {e}") from None
    basic = _is_basic(key)
    if not isinstance(data, np.ndarray):
        data = np.asarray(data)
    out = _record(data, (a,), "index", ctx=(a.shape, key, basic))
    return _view_of(out, a) if basic else out


@rule("index")
def _index_backward(node, grad):
    shape, key, basic = node.ctx
    full = np.zeros(shape, grad.dtype)
    if basic:
        full[key] = grad
    else:
        np.add.at(full, key, grad)
    return (full,)


def split(a, split_size, dim=0):
    axis = _dim(dim, a.ndim, "split")
    n = a.shape[axis]
    if isinstance(split_size, numbers.Integral):
        if split_size <= 0:
            raise ValueError(f"split: split_size must be positive, got {split_size}")
        sizes = [split_size] * (n // split_size) + ([n % split_size] if n % split_size else [])
    else:
        sizes = list(split_size)
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to dimension {dim}'s {n}")
    out, start = [], 0
    lead = (slice(None),) * axis
    for size in sizes:
        out.append(index(a, lead + (slice(start, start + size),)))
        start += size
    return tuple(out)


def chunk(a, chunks, dim=0):
    axis = _dim(dim, a.ndim, "chunk")
    n = a.shape[axis]
    return split(a, builtins.max(-(-n // chunks), 1), axis)


def unbind(a, dim=0):
    axis = _dim(dim, a.ndim, "unbind")
    lead = (slice(None),) * axis
    return tuple(index(a, lead + (i,)) for i in range(a.shape[axis]))


def cat(tensors, dim=0):
    """Joins tensors along an existing dimension (``tfg.cat``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    tensors = [first] + [_operands(first, t)[1] for t in tensors[1:]]
    axis = _dim(dim, first.ndim, "cat")
    try:
        data = np.concatenate([t._data for t in tensors], axis=axis)
    except ValueError as e:
        raise RuntimeError(f"cat: shapes {[list(t.shape) for t in tensors]} do not match "
                           f"outside dimension {dim}: {e}") from None
    return _record(data, tuple(tensors), "cat", ctx=(axis, [t.shape[axis] for t in tensors]))


@rule("cat")
def _cat_backward(node, grad):
    axis, sizes = node.ctx
    return tuple(np.split(grad, np.cumsum(sizes)[:-1], axis=axis))


def stack(tensors, dim=0):
    """Joins tensors of one shape along a new dimension (``tfg.stack``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise RuntimeError(f"stack: all tensors must have the same shape, got "
                           f"{[list(s) for s in shapes]}")
    axis = _dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, axis) for t in tensors], axis)


# -------------------------------------------------------------------- in place
def _check_in_place(t):
    if is_grad_enabled() and t._requires_grad and t._node is None:
        raise RuntimeError("a leaf tensor that requires grad is being used in an in-place "
                           "operation; wrap it in tfg.no_grad() or use an out-of-place op")


def in_place(t, op, other):
    """``t`` replaced by ``op(t, other)`` in its own memory; the result's history becomes t's."""
    _check_in_place(t)
    tracked = is_grad_enabled() and (t._requires_grad or
                                     (isinstance(other, Tensor) and other._requires_grad))
    if tracked:
        if t._base is not None:
            raise RuntimeError("an in-place operation on a view of a tensor that is part of the "
                               "graph is not supported; use the out-of-place operation")
        before = Tensor._wrap(t._data.copy(), t._device)   # what op's backward may read
        before._node, before._output_index = t._node, t._output_index
        before._requires_grad = t._requires_grad
        result = op(before, other)
    else:
        with no_grad():
            result = op(t, other)
    if result.shape != t.shape:
        raise RuntimeError(f"in-place operation: the result's shape {list(result.shape)} does "
                           f"not match the tensor's shape {list(t.shape)}")
    if result._data.dtype != t._data.dtype and \
            not np.can_cast(result._data.dtype, t._data.dtype, "same_kind"):
        raise RuntimeError(f"in-place operation: result type {result.dtype} can't be cast to "
                           f"the tensor's dtype {t.dtype}")
    t._data[...] = result._data
    if tracked:
        t._node, t._output_index, t._requires_grad = result._node, result._output_index, True
    t._mark_modified()
    return t


def fill_in_place(t, value):
    _check_in_place(t)
    t._data[...] = value._data if isinstance(value, Tensor) else value
    t._mark_modified()
    return t


def copy_in_place(t, source):
    """``t.copy_(source)``: source broadcast to t's shape and converted to its dtype."""
    if not isinstance(source, Tensor):
        source = Tensor._wrap(np.asarray(source), t._device)
    return in_place(t, lambda _, s: expand(cast(s, t._data.dtype), t.shape), source)


def index_assign(t, key, value):
    """``t[key] = value``, differentiable in both when either takes part in the graph."""
    tracked = is_grad_enabled() and (t._requires_grad or
                                     (isinstance(value, Tensor) and value._requires_grad))
    if not tracked:
        t._data[_index_key(key)] = value._data if isinstance(value, Tensor) else value
        t._mark_modified()
        return
    if not isinstance(value, Tensor):
        value = _tensor_operand(value, t)
    in_place(t, lambda base, v: _index_put(base, key, v), value)


def _index_put(a, key, value):
    key = _index_key(key)
    data = a._data.copy()
    data[key] = value._data
    return _record(data, (a, value), "index_put", ctx=(key, value.shape))


@rule("index_put")
def _index_put_backward(node, grad):
    key, value_shape = node.ctx
    grad_a = grad.copy()
    grad_a[key] = 0
    grad_value = grad[key]
    return grad_a, _sum_to(np.asarray(grad_value), value_shape)


# --------------------------------------------------------------------- kernels
def _same_device(tensors, what):
    device = tensors[0]._device
    for t in tensors:
        if t is not None and t._device is not device and t._device != device:
            raise RuntimeError(f"{what}: expected all tensors on one device, got "
                               f"{sorted({str(t._device) for t in tensors if t is not None})}")


def _data(t):
    return None if t is None else t._data


def matmul(a, b):
    a, b = _operands(a, b)
    return _record(_C.matmul(a._data, b._data), (a, b), "matmul", saved=(a, b))


@rule("matmul")
def _matmul_backward(node, grad):
    a, b = node.saved()
    mask = tuple(edge is not None for edge in node.edges)
    return ops.matmul_backward(grad, a, b, output_mask=mask)


def linear(x, weight, bias=None):
    _same_device((x, weight, bias), "linear")
    return _record(_C.linear(x._data, weight._data, _data(bias)), (x, weight, bias), "linear",
                   saved=_present(x, weight, bias))


def _present(*tensors):
    return tuple(t for t in tensors if t is not None)


@rule("linear")
def _linear_backward(node, grad):
    mask = tuple(edge is not None for edge in node.edges)
    return ops.linear_backward(grad, *node.saved(), output_mask=mask)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    _same_device((x, weight, bias), "conv2d")
    options = (stride, padding, dilation, groups)
    return _record(_C.conv2d(x._data, weight._data, _data(bias), *options), (x, weight, bias),
                   "conv2d", saved=_present(x, weight, bias), ctx=options)


@rule("conv2d")
def _conv2d_backward(node, grad):
    x, weight, *bias = node.saved()
    mask = tuple(edge is not None for edge in node.edges)
    return ops.conv2d_backward(grad, x, weight, bias[0] if bias else None, *node.ctx,
                               output_mask=mask)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    options = (kernel_size, stride, padding, dilation, ceil_mode)
    out, indices = _C.max_pool2d(x._data, *options, True)
    result = _record(out, (x,), "max_pool2d", ctx=(x.shape, x._data.dtype, options, indices))
    if return_indices:
        return result, Tensor._wrap(indices, x._device)
    return result


@rule("max_pool2d")
def _max_pool2d_backward(node, grad):
    shape, dtype, options, indices = node.ctx
    placeholder = np.broadcast_to(np.zeros((), dtype), shape)   # only its shape is read
    return ops.max_pool2d_backward(grad, placeholder, *options, indices=indices)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return _record(_C.avg_pool2d(x._data, *options), (x,), "avg_pool2d",
                   ctx=(x.shape, x._data.dtype, options))


@rule("avg_pool2d")
def _avg_pool2d_backward(node, grad):
    shape, dtype, options = node.ctx
    return ops.avg_pool2d_backward(grad, np.broadcast_to(np.zeros((), dtype), shape), *options)


def adaptive_avg_pool2d(x, output_size):
    return _record(_C.adaptive_avg_pool2d(x._data, output_size), (x,), "adaptive_avg_pool2d",
                   ctx=(x.shape, x._data.dtype, output_size))


@rule("adaptive_avg_pool2d")
def _adaptive_avg_pool2d_backward(node, grad):
    shape, dtype, output_size = node.ctx
    return ops.adaptive_avg_pool2d_backward(grad, np.broadcast_to(np.zeros((), dtype), shape),
                                            output_size)


def softmax(x, dim):
    return _softmax_like(x, dim, "softmax", _C.softmax)


def log_softmax(x, dim):
    return _softmax_like(x, dim, "log_softmax", _C.log_softmax)


def _softmax_like(x, dim, name, kernel):
    return _saving_output(kernel(x._data, dim), x, name, ctx=dim)


@rule("softmax")
def _softmax_backward(node, grad):
    (out,) = node.saved()
    return _C.softmax_backward(grad, out, node.ctx, out)


@rule("log_softmax")
def _log_softmax_backward(node, grad):
    (out,) = node.saved()
    return _C.log_softmax_backward(grad, out, node.ctx, out)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    options = (ignore_index, reduction, label_smoothing)
    loss = _C.cross_entropy(input._data, target._data, _data(weight), *options)
    return _record(np.asarray(loss), (input,), "cross_entropy", saved=(input,),
                   ctx=(target._data, _data(weight), options))


@rule("cross_entropy")
def _cross_entropy_backward(node, grad):
    (input,) = node.saved()
    target, weight, options = node.ctx
    return ops.cross_entropy_backward(grad, input, target, weight, *options)


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None,
                                 enable_gqa=False):
    _same_device((query, key, value, attn_mask), "scaled_dot_product_attention")
    options = (_data(attn_mask), is_causal, scale, enable_gqa)
    out, lse = _C.scaled_dot_product_attention(query._data, key._data, value._data, *options,
                                               return_lse=True)
    return _save_output(_record(out, (query, key, value), "attention", saved=(query, key, value),
                                ctx=(options, lse)))


@rule("attention")
def _attention_backward(node, grad):
    query, key, value, out = node.saved()
    options, lse = node.ctx
    return ops.scaled_dot_product_attention_backward(grad, query, key, value, *options,
                                                     output=out, lse=lse)


def lstm_cell(x, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    inputs = (x, hx, cx, w_ih, w_hh, b_ih, b_hh)
    _same_device(inputs, "lstm_cell")
    h, c = _C.lstm_cell(*(_data(t) for t in inputs))
    return _record((h, c), inputs, "lstm_cell", saved=_present(*inputs),
                   ctx=(b_ih is not None, b_hh is not None))


def _with_biases(node):
    """The saved operands with None put back where a bias was absent."""
    x, hx, cx, w_ih, w_hh, *biases = node.saved()
    has_b_ih, has_b_hh = node.ctx
    b_ih = biases.pop(0) if has_b_ih else None
    b_hh = biases.pop(0) if has_b_hh else None
    return x, hx, cx, w_ih, w_hh, b_ih, b_hh


@rule("lstm_cell")
def _lstm_cell_backward(node, grads):
    grad_h, grad_c = grads
    return ops.lstm_cell_backward(grad_h, grad_c, *_with_biases(node))


def lstm(x, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    inputs = (x, hx, cx, w_ih, w_hh, b_ih, b_hh)
    _same_device(inputs, "lstm")
    y, h, c = _C.lstm(*(_data(t) for t in inputs))
    return _record((y, h, c), inputs, "lstm", saved=_present(*inputs),
                   ctx=(b_ih is not None, b_hh is not None))


@rule("lstm")
def _lstm_backward(node, grads):
    grad_y, grad_h, grad_c = grads
    return ops.lstm_backward(grad_y, grad_h, grad_c, *_with_biases(node))


# ------------------------------------------------------------ nn (fused rules)
# The layers whose forward and backward are a few array expressions each: one
# node per call, the backward written out rather than traced through the ops.
def _wanted(node, i):
    return node.edges[i] is not None


def dropout(x, p, generator):
    """Zeroes each element with probability ``p`` and scales the rest by 1 / (1 - p)."""
    keep = generator.random(x.shape) >= p
    scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
    multiplier = (keep * x._data.dtype.type(scale)).astype(x._data.dtype, copy=False)
    return _record(x._data * multiplier, (x,), "dropout", ctx=multiplier)


@rule("dropout")
def _dropout_backward(node, grad):
    return (grad * node.ctx,)


def _normalise(x, axes, eps):
    """(x - mean) / sqrt(var + eps) over ``axes`` (biased variance), and the 1 / sqrt part."""
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    rstd = 1 / np.sqrt(var + x.dtype.type(eps))
    return centred * rstd, rstd, mean, var


def _affine(xhat, weight, bias, shape):
    out = xhat
    if weight is not None:
        out = out * weight._data.reshape(shape)
    if bias is not None:
        out = out + bias._data.reshape(shape)
    return out


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalises over the last ``len(normalized_shape)`` dims, then scales and shifts."""
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    xhat, rstd, _, _ = _normalise(x._data, axes, eps)
    out = _affine(xhat, weight, bias, tuple(normalized_shape))
    return _record(out, (x, weight, bias), "layer_norm", saved=_present(weight),
                   ctx=(axes, xhat, rstd))


def _normalised_input_grad(g, xhat, rstd, axes):
    """Gradient through xhat = (x - mean(x)) * rstd with the statistics taken over ``axes``."""
    return rstd * (g - g.mean(axis=axes, keepdims=True)
                   - xhat * (g * xhat).mean(axis=axes, keepdims=True))


@rule("layer_norm")
def _layer_norm_backward(node, grad):
    axes, xhat, rstd = node.ctx
    saved = node.saved()
    weight = saved[0] if saved else None
    lead = tuple(range(grad.ndim - len(axes)))
    grad_x = grad_w = grad_b = None
    if _wanted(node, 0):
        g = grad if weight is None else grad * weight
        grad_x = _normalised_input_grad(g, xhat, rstd, axes)
    if _wanted(node, 1):
        grad_w = (grad * xhat).sum(axis=lead)
    if _wanted(node, 2):
        grad_b = grad.sum(axis=lead)
    return grad_x, grad_w, grad_b


def batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps):
    """Per-channel (dim 1) normalisation: with the batch's statistics when ``training``
    (updating the running ones in place, unbiased variance, when given), else with the
    running statistics."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    data = x._data
    if training:
        xhat, rstd, mean, var = _normalise(data, axes, eps)
        if running_mean is not None or running_var is not None:
            count = data.size // x.shape[1]
            m = data.dtype.type(momentum)
            if running_mean is not None:
                running_mean._data[...] = (1 - m) * running_mean._data + m * mean.reshape(-1)
                running_mean._mark_modified()
            if running_var is not None:
                unbiased = var.reshape(-1) * data.dtype.type(count / builtins.max(count - 1, 1))
                running_var._data[...] = (1 - m) * running_var._data + m * unbiased
                running_var._mark_modified()
    else:
        mean = running_mean._data.reshape(shape).astype(data.dtype, copy=False)
        rstd = 1 / np.sqrt(running_var._data.reshape(shape).astype(data.dtype, copy=False)
                           + data.dtype.type(eps))
        xhat = (data - mean) * rstd
    out = _affine(xhat, weight, bias, shape)
    return _record(out, (x, weight, bias), "batch_norm", saved=_present(weight),
                   ctx=(axes, shape, xhat, rstd, training))


@rule("batch_norm")
def _batch_norm_backward(node, grad):
    axes, shape, xhat, rstd, training = node.ctx
    saved = node.saved()
    weight = saved[0].reshape(shape) if saved else None
    grad_x = grad_w = grad_b = None
    if _wanted(node, 0):
        g = grad if weight is None else grad * weight
        grad_x = _normalised_input_grad(g, xhat, rstd, axes) if training else g * rstd
    if _wanted(node, 1):
        grad_w = (grad * xhat).sum(axis=axes)
    if _wanted(node, 2):
        grad_b = grad.sum(axis=axes)
    return grad_x, grad_w, grad_b


def embedding(indices, weight, padding_idx=None):
    """Rows of ``weight`` picked by the integer tensor ``indices``."""
    picked = weight._data[indices._data]
    return _record(picked, (weight,), "embedding",
                   ctx=(indices._data, padding_idx, weight.shape[0]))


@rule("embedding")
def _embedding_backward(node, grad):
    indices, padding_idx, n_embeddings = node.ctx
    rows = grad.shape[-1]
    full = np.zeros((n_embeddings, rows), grad.dtype)
    np.add.at(full, indices.reshape(-1), grad.reshape(-1, rows))
    if padding_idx is not None:
        full[padding_idx] = 0
    return (full,)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """The negative log-likelihood of the class ``target`` given log-probabilities ``input``
    (classes on dim 1, or dim 0 for an unbatched (C,) input)."""
    class_axis = 0 if input.ndim == 1 else 1
    logp = np.moveaxis(input._data, class_axis, -1)
    labels = target._data
    valid = labels != ignore_index
    safe = np.where(valid, labels, 0)
    picked = np.take_along_axis(logp, safe[..., None], -1)[..., 0]
    weights = valid.astype(logp.dtype)
    if weight is not None:
        weights = weights * weight._data[safe].astype(logp.dtype, copy=False)
    losses = -weights * picked
    if reduction == "none":
        out = losses
    elif reduction == "sum":
        out = np.asarray(losses.sum(), logp.dtype)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.asarray(losses.sum() / weights.sum(), logp.dtype)
    return _record(out, (input,), "nll_loss", ctx=(class_axis, logp.shape, safe, weights,
                                                   reduction))


@rule("nll_loss")
def _nll_loss_backward(node, grad):
    class_axis, shape, safe, weights, reduction = node.ctx
    scale = -weights * grad
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = scale / weights.sum()
    full = np.zeros(shape, grad.dtype)
    np.put_along_axis(full, safe[..., None], np.broadcast_to(scale, safe.shape)[..., None]
                      .astype(grad.dtype, copy=False), -1)
    return (np.moveaxis(full, -1, class_axis),)


def _clamped_log(x):
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(x), x.dtype.type(-100))


def binary_cross_entropy(input, target):
    """Elementwise -(t log x + (1 - t) log(1 - x)), the logs clamped at -100 as PyTorch."""
    x, t = input._data, target._data
    log_x, log_1mx = _clamped_log(x), _clamped_log(1 - x)
    return _record(-(t * log_x + (1 - t) * log_1mx), (input, target), "binary_cross_entropy",
                   saved=(input, target), ctx=(log_x, log_1mx))


@rule("binary_cross_entropy")
def _binary_cross_entropy_backward(node, grad):
    x, t = node.saved()
    log_x, log_1mx = node.ctx
    grad_x = grad_t = None
    if _wanted(node, 0):
        grad_x = grad * (x - t) / np.maximum(x * (1 - x), x.dtype.type(1e-12))
    if _wanted(node, 1):
        grad_t = grad * (log_1mx - log_x)
    return grad_x, grad_t


def _log_sigmoid(x):
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def binary_cross_entropy_with_logits(input, target, pos_weight=None):
    """Elementwise -(pw t log s(x) + (1 - t) log(1 - s(x))), computed stably from logits."""
    x, t = input._data, target._data
    log_s, log_1ms = _log_sigmoid(x), _log_sigmoid(-x)
    pw = None if pos_weight is None else pos_weight._data
    positive = t if pw is None else pw * t
    return _record(-(positive * log_s + (1 - t) * log_1ms), (input, target),
                   "bce_with_logits", saved=(input, target), ctx=(pw, log_s, log_1ms))


@rule("bce_with_logits")
def _bce_with_logits_backward(node, grad):
    x, t = node.saved()
    pw, log_s, log_1ms = node.ctx
    positive = t if pw is None else pw * t
    grad_x = grad_t = None
    if _wanted(node, 0):
        grad_x = grad * ((positive + 1 - t) * np.exp(log_s) - positive)
    if _wanted(node, 1):
        grad_t = grad * (log_1ms - (log_s if pw is None else pw * log_s))
    return grad_x, grad_t


# ------------------------------------------- more of what PyTorch users reach for
def log1p(a):
    a = _float_input(a, "log1p")
    return _record(np.log1p(a._data), (a,), "log1p", saved=(a,))


@rule("log1p")
def _log1p_backward(node, grad):
    (a,) = node.saved()
    return (grad / (1 + a),)


def expm1(a):
    a = _float_input(a, "expm1")
    return _saving_output(np.expm1(a._data), a, "expm1")


@rule("expm1")
def _expm1_backward(node, grad):
    (out,) = node.saved()
    return (grad * (out + 1),)


def cumsum(a, dim):
    axis = _dim(dim, a.ndim, "cumsum")
    data = a._data if a._data.dtype.kind == "f" else a._data.astype(np.int64)
    return _record(np.cumsum(data, axis=axis), (a,), "cumsum", ctx=axis)


@rule("cumsum")
def _cumsum_backward(node, grad):
    axis = node.ctx
    return (np.flip(np.cumsum(np.flip(grad, axis), axis=axis), axis),)


def _along(indices, what):
    data = indices._data if isinstance(indices, Tensor) else np.asarray(indices)
    if data.dtype.kind not in "iu":
        raise TypeError(f"{what}: index must be an integer tensor, got {data.dtype}")
    return data


def gather(a, dim, index):
    """``out[i][j] = a[i][index[i][j]]`` along ``dim`` (``torch.gather``)."""
    axis = _dim(dim, a.ndim, "gather")
    idx = _along(index, "gather")
    if idx.ndim != a.ndim:
        raise RuntimeError(f"gather: index has {idx.ndim} dims, input has {a.ndim}")
    try:
        data = np.take_along_axis(a._data, idx, axis)
    except (IndexError, ValueError) as e:
        raise RuntimeError(f"gather: index of shape {list(idx.shape)} does not fit input of "
                           f"shape {list(a.shape)} along dim {dim}: {e}") from None
    return _record(data, (a,), "gather", ctx=(a.shape, axis, idx))


@rule("gather")
def _gather_backward(node, grad):
    shape, axis, idx = node.ctx
    full = np.zeros(shape, grad.dtype)
    # np.add.at with a full open mesh adds duplicates, unlike put_along_axis
    mesh = list(np.ix_(*[np.arange(n) for n in idx.shape]))
    mesh[axis] = idx
    np.add.at(full, tuple(mesh), grad)
    return (full,)


def index_select(a, dim, indices):
    axis = _dim(dim, a.ndim, "index_select")
    idx = _along(indices, "index_select")
    if idx.ndim > 1:
        raise RuntimeError(f"index_select: index must be 1-D, got shape {list(idx.shape)}")
    return index(a, (slice(None),) * axis + (idx.reshape(-1),))


def flip(a, dims):
    axes = _axes(dims, a.ndim, "flip")
    key = tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(a.ndim))
    return index(a, key)


def roll(a, shifts, dims=None):
    if dims is None:
        return reshape(roll(flatten(a), shifts, 0), a.shape)
    return _record(np.roll(a._data, shifts, dims), (a,), "roll", ctx=(shifts, dims))


@rule("roll")
def _roll_backward(node, grad):
    shifts, dims = node.ctx
    back = tuple(-s for s in shifts) if isinstance(shifts, (tuple, list)) else -shifts
    return (np.roll(grad, back, dims),)


def _triangle(a, diagonal, lower):
    if a.ndim < 2:
        raise RuntimeError(f"{'tril' if lower else 'triu'}: input must have at least 2 dims")
    rows, cols = a.shape[-2:]
    keep = np.tri(rows, cols, diagonal, dtype=bool) if lower else \
        ~np.tri(rows, cols, diagonal - 1, dtype=bool)
    return where(Tensor._wrap(keep, a._device), a, 0)


def tril(a, diagonal=0):
    """The lower triangle (on and below ``diagonal``) of the last two dims; the rest 0."""
    return _triangle(a, diagonal, True)


def triu(a, diagonal=0):
    """The upper triangle (on and above ``diagonal``) of the last two dims; the rest 0."""
    return _triangle(a, diagonal, False)


SortResult = collections.namedtuple("SortResult", ["values", "indices"])


def sort(a, dim=-1, descending=False, stable=False):
    """``(values, indices)`` sorted along ``dim`` (stable; NaN last as NumPy)."""
    axis = _dim(dim, a.ndim, "sort")
    order = np.argsort(-a._data if descending and a._data.dtype.kind != "b" else a._data,
                       axis=axis, kind="stable")
    indices = Tensor._wrap(order.astype(np.int64, copy=False), a._device)
    return SortResult(gather(a, axis, indices), indices)


def argsort(a, dim=-1, descending=False, stable=False):
    return sort(a, dim, descending, stable).indices


def topk(a, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) ``(values, indices)`` along ``dim``."""
    axis = _dim(dim, a.ndim, "topk")
    if not 0 <= k <= a.shape[axis]:
        raise RuntimeError(f"topk: k = {k} is out of range for dimension {dim} of size "
                           f"{a.shape[axis]}")
    indices = sort(a.detach(), axis, descending=largest).indices
    indices = index(indices, (slice(None),) * axis + (slice(0, k),))
    return SortResult(gather(a, axis, indices), indices)


def amax(a, dim=None, keepdim=False):
    """The maximum over ``dim`` (an int or tuple); ties share the gradient evenly."""
    return _amax_amin(a, dim, keepdim, np.max)


def amin(a, dim=None, keepdim=False):
    """The minimum over ``dim`` (an int or tuple); ties share the gradient evenly."""
    return _amax_amin(a, dim, keepdim, np.min)


def _amax_amin(a, dim, keepdim, pick):
    axes = _axes(dim, a.ndim, pick.__name__)
    value = pick(a._data, axis=axes, keepdims=True)
    out = value if keepdim else (value.reshape(()) if axes is None else value.squeeze(axes))
    return _record(out, (a,), "amax_amin", saved=(a,), ctx=(axes, keepdim, value))


@rule("amax_amin")
def _amax_amin_backward(node, grad):
    (a,) = node.saved()
    axes, keepdim, value = node.ctx
    hits = a == value
    share = hits / hits.sum(axis=axes, keepdims=True)
    return (_expand_reduced(grad, a.shape, axes, keepdim) * share,)


def norm(a, p=2, dim=None, keepdim=False):
    """The vector p-norm over ``dim`` (all elements by default); ``p`` may be "fro" (= 2)
    or ``inf``."""
    if p == "fro":
        p = 2
    if p == np.inf:
        return amax(abs(a), dim, keepdim)
    if p == 2:
        return sqrt(sum(a * a, dim, keepdim))
    if p == 1:
        return sum(abs(a), dim, keepdim)
    return pow(sum(pow(abs(a), p), dim, keepdim), 1.0 / p)


def _no_grad_op(fn, a, *args):
    """An operation whose result carries no gradient (rounding, tests, indices)."""
    return Tensor._wrap(np.asarray(fn(a._data, *args)), a._device)


def nonzero(a, as_tuple=False):
    found = np.nonzero(a._data)
    if as_tuple:
        return tuple(Tensor._wrap(i.astype(np.int64), a._device) for i in found)
    return Tensor._wrap(np.stack(found, axis=1).astype(np.int64), a._device)


def unique(a, sorted=True, return_inverse=False, return_counts=False, dim=None):
    if dim is not None:
        raise NotImplementedError("unique: dim is not supported")
    values, inverse, counts = np.unique(a._data, return_inverse=True, return_counts=True)
    out = [Tensor._wrap(values, a._device)]
    if return_inverse:
        out.append(Tensor._wrap(inverse.reshape(a.shape).astype(np.int64), a._device))
    if return_counts:
        out.append(Tensor._wrap(counts.astype(np.int64), a._device))
    return out[0] if len(out) == 1 else tuple(out)
