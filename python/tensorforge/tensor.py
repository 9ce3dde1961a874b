"""``tfg.Tensor``: an array on a device plus what autograd needs, and the
functions that create tensors.

A Tensor wraps its device's array (a NumPy ndarray on the CPU, shared with
NumPy without copying both ways). Operations are in ``differentiable.py``; the
methods here only route to them. Views (reshape, indexing with slices,
transpose, ...) share data and the version counter with their base.
"""
import numbers
import operator

import numpy as np

from . import autograd
from .device import CPU, array_namespace, as_device, check_available
from .dtypes import as_dtype, float32, from_numpy_dtype, int64
from .random import default_generator


class Tensor:
    """A multi-dimensional array with autograd, PyTorch's ``torch.Tensor`` semantics."""
    __slots__ = ("_data", "_device", "_requires_grad", "grad", "_node", "_output_index",
                 "_version", "_base", "__weakref__")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to the Tensor's reflected operator

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        source = tensor(data, dtype=dtype, device=device)
        self._init(source._data, source._device, requires_grad=requires_grad)

    def _init(self, data, device, requires_grad=False, node=None, output_index=0, version=None,
              base=None):
        self._data = data
        self._device = device
        self._requires_grad = requires_grad or node is not None
        self.grad = None
        self._node = node
        self._output_index = output_index
        self._version = [0] if version is None else version
        self._base = base
        if requires_grad and not data.dtype.kind == "f":
            raise RuntimeError(f"only floating-point tensors can require gradients, got "
                               f"{from_numpy_dtype(data.dtype)}")

    @classmethod
    def _wrap(cls, data, device=CPU, requires_grad=False):
        """A tensor around ``data`` (already on ``device``) with no history."""
        out = object.__new__(cls)
        out._data = data
        out._device = device
        out._requires_grad = requires_grad
        out.grad = None
        out._node = None
        out._output_index = 0
        out._version = [0]
        out._base = None
        return out

    # ----------------------------------------------------------- attributes
    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return from_numpy_dtype(self._data.dtype)

    @property
    def device(self):
        return self._device

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def is_cuda(self):
        return self._device.type == "cuda"

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if self._node is not None and not flag:
            raise RuntimeError("requires_grad can only be switched off on a leaf tensor; use "
                               "detach() for a computed one")
        if flag and self._data.dtype.kind != "f":
            raise RuntimeError(f"only floating-point tensors can require gradients, got {self.dtype}")
        self._requires_grad = bool(flag) or self._node is not None

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    @property
    def data(self):
        """This tensor's data as a new tensor outside autograd (changes are not tracked)."""
        return Tensor._wrap(self._data, self._device)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        self._data = value._data
        self._device = value._device

    @property
    def T(self):
        return self.permute(*range(self.ndim - 1, -1, -1))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def size(self, dim=None):
        return self._data.shape if dim is None else self._data.shape[_dim(dim, self.ndim, "size")]

    def dim(self):
        return self._data.ndim

    def numel(self):
        return int(self._data.size)

    def element_size(self):
        return self._data.itemsize

    def is_floating_point(self):
        return self._data.dtype.kind == "f"

    def is_contiguous(self):
        return bool(self._data.flags.c_contiguous)

    def _mark_modified(self):
        """Records an in-place change of the data (see Note [saved tensors and in-place changes])."""
        self._version[0] += 1

    # ------------------------------------------------------- leaving tensorforge
    def numpy(self, force=False):
        """The data as a NumPy array, sharing memory (CPU tensors only)."""
        if self._requires_grad and not force:
            raise RuntimeError("Can't call numpy() on a Tensor that requires grad; use "
                               "tensor.detach().numpy()")
        if self._device.type != "cpu":
            raise TypeError(f"can't convert a {self._device} tensor to NumPy; use .cpu() first")
        return self._data

    def __array__(self, dtype=None, copy=None):
        if self._device.type != "cpu":
            raise TypeError(f"can't convert a {self._device} tensor to NumPy; use .cpu() first")
        if copy is False and dtype is not None and np.dtype(dtype) != self._data.dtype:
            raise ValueError("a dtype conversion needs a copy but copy=False was given")
        data = self._data if dtype is None else self._data.astype(dtype, copy=False)
        return data.copy() if copy else data

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"item(): a tensor with {self._data.size} elements cannot be "
                               "converted to a Python number")
        return self._data.reshape(()).item()

    def tolist(self):
        return self._data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self._data.size} elements is "
                               "ambiguous")
        return bool(self._data.reshape(()))

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    __hash__ = object.__hash__

    def __repr__(self):
        body = np.array2string(self._data, separator=", ", prefix="tensor(")
        extra = []
        if self._data.dtype not in (np.float32, np.int64, np.bool_):
            extra.append(f"dtype={self.dtype}")
        if self._device.type != "cpu":
            extra.append(f"device='{self._device}'")
        if self._node is not None:
            extra.append(f"grad_fn={self._node!r}")
        elif self._requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    # ---------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph=False):
        """Accumulates d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad.

        ``gradient`` (same shape, dtype and device as self) is required unless self has
        one element.
        """
        if not self._requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no grad_fn")
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(f"backward(): grad can be implicitly created only for tensors "
                                   f"with one element; this one has shape {tuple(self.shape)}, "
                                   "pass gradient=")
            grad = np.ones_like(self._data)
        else:
            if not isinstance(gradient, Tensor):
                gradient = tensor(gradient, dtype=self.dtype, device=self._device)
            if gradient._device != self._device:
                raise RuntimeError(f"backward(): gradient is on {gradient.device} but the tensor is "
                                   f"on {self._device}")
            if gradient.shape != self.shape:
                raise RuntimeError(f"backward(): gradient has shape {tuple(gradient.shape)} but the "
                                   f"tensor has shape {tuple(self.shape)}")
            if gradient._data.dtype != self._data.dtype:
                raise RuntimeError(f"backward(): gradient has dtype {gradient.dtype} but the tensor "
                                   f"has dtype {self.dtype}")
            grad = gradient._data
        autograd.run_backward((self,), (grad,), retain_graph=retain_graph)

    def detach(self):
        """The same data, cut from the graph (shares memory and the version counter)."""
        out = Tensor._wrap(self._data, self._device)
        out._version = self._version
        out._base = self if self._base is None else self._base
        return out

    def detach_(self):
        if self._base is not None and self._node is not None:
            raise RuntimeError("detach_() on a view that has history is not supported; use detach()")
        self._node = None
        self._requires_grad = False
        return self

    def retain_grad(self):
        """Keeps ``.grad`` on this non-leaf tensor after backward."""
        if self._node is None:
            return
        import weakref

        entry = (self._output_index, weakref.ref(self))
        self._node.retained = (self._node.retained or []) + [entry]

    # ------------------------------------------------------ device and dtype
    def to(self, *args, dtype=None, device=None, copy=False):
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(other_tensor)``."""
        for arg in args:
            if isinstance(arg, Tensor):
                device, dtype = arg._device, arg.dtype
            elif isinstance(arg, str) or type(arg).__name__ == "device":
                device = arg
            else:
                dtype = arg
        out = self
        if device is not None:
            target = as_device(device)
            if target != self._device:
                check_available(target)
        if dtype is not None and as_dtype(dtype).numpy != self._data.dtype:
            out = F.cast(out, as_dtype(dtype))
        elif copy:
            out = out.clone()
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{operator.index(device)}")

    def float(self):
        return self.to(dtype="float32")

    def double(self):
        return self.to(dtype="float64")

    def long(self):
        return self.to(dtype="int64")

    def int(self):
        return self.to(dtype="int32")

    def bool(self):
        return self.to(dtype="bool")

    def type_as(self, other):
        return self.to(dtype=other.dtype)

    def clone(self):
        return F.clone(self)

    def contiguous(self):
        return self if self._data.flags.c_contiguous else F.clone(self)

    # ------------------------------------------------------------- arithmetic
    def __add__(self, other):
        return F.add(self, other)

    def __radd__(self, other):
        return F.add(other, self)

    def __sub__(self, other):
        return F.sub(self, other)

    def __rsub__(self, other):
        return F.sub(other, self)

    def __mul__(self, other):
        return F.mul(self, other)

    def __rmul__(self, other):
        return F.mul(other, self)

    def __truediv__(self, other):
        return F.div(self, other)

    def __rtruediv__(self, other):
        return F.div(other, self)

    def __floordiv__(self, other):
        return F.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return F.floor_divide(other, self)

    def __mod__(self, other):
        return F.remainder(self, other)

    def __pow__(self, other):
        return F.pow(self, other)

    def __rpow__(self, other):
        return F.pow(other, self)

    def __matmul__(self, other):
        return F.matmul(self, other)

    def __rmatmul__(self, other):
        return F.matmul(other, self)

    def __neg__(self):
        return F.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return F.abs(self)

    def __eq__(self, other):
        return F.compare(np.equal, self, other)

    def __ne__(self, other):
        return F.compare(np.not_equal, self, other)

    def __lt__(self, other):
        return F.compare(np.less, self, other)

    def __le__(self, other):
        return F.compare(np.less_equal, self, other)

    def __gt__(self, other):
        return F.compare(np.greater, self, other)

    def __ge__(self, other):
        return F.compare(np.greater_equal, self, other)

    def __and__(self, other):
        return F.compare(np.bitwise_and, self, other)

    def __or__(self, other):
        return F.compare(np.bitwise_or, self, other)

    def __xor__(self, other):
        return F.compare(np.bitwise_xor, self, other)

    def __invert__(self):
        return Tensor._wrap(np.invert(self._data), self._device)

    def __iadd__(self, other):
        return F.in_place(self, F.add, other)

    def __isub__(self, other):
        return F.in_place(self, F.sub, other)

    def __imul__(self, other):
        return F.in_place(self, F.mul, other)

    def __itruediv__(self, other):
        return F.in_place(self, F.div, other)

    def add(self, other, alpha=1):
        return F.add(self, other if alpha == 1 else F.mul(other, alpha))

    def sub(self, other, alpha=1):
        return F.sub(self, other if alpha == 1 else F.mul(other, alpha))

    def mul(self, other):
        return F.mul(self, other)

    def div(self, other):
        return F.div(self, other)

    def pow(self, exponent):
        return F.pow(self, exponent)

    def matmul(self, other):
        return F.matmul(self, other)

    def mm(self, other):
        return F.matmul(self, other)

    def neg(self):
        return F.neg(self)

    def abs(self):
        return F.abs(self)

    def exp(self):
        return F.exp(self)

    def log(self):
        return F.log(self)

    def sqrt(self):
        return F.sqrt(self)

    def sin(self):
        return F.sin(self)

    def cos(self):
        return F.cos(self)

    def tanh(self):
        return F.tanh(self)

    def sigmoid(self):
        return F.sigmoid(self)

    def relu(self):
        return F.relu(self)

    def clamp(self, min=None, max=None):
        return F.clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return F.maximum(self, other)

    def minimum(self, other):
        return F.minimum(self, other)

    def softmax(self, dim):
        return F.softmax(self, dim)

    def log_softmax(self, dim):
        return F.log_softmax(self, dim)

    def masked_fill(self, mask, value):
        return F.where(mask, value, self)

    # ----------------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim=False, dtype=None):
        return F.sum(self, dim, keepdim, dtype)

    def mean(self, dim=None, keepdim=False, dtype=None):
        return F.mean(self, dim, keepdim, dtype)

    def var(self, dim=None, unbiased=None, keepdim=False, correction=None):
        return F.var(self, dim, _correction(unbiased, correction), keepdim)

    def std(self, dim=None, unbiased=None, keepdim=False, correction=None):
        return F.sqrt(F.var(self, dim, _correction(unbiased, correction), keepdim))

    def max(self, dim=None, keepdim=False):
        return F.extremum(self, dim, keepdim, "max")

    def min(self, dim=None, keepdim=False):
        return F.extremum(self, dim, keepdim, "min")

    def argmax(self, dim=None, keepdim=False):
        return F.arg_extremum(self, dim, keepdim, "max")

    def argmin(self, dim=None, keepdim=False):
        return F.arg_extremum(self, dim, keepdim, "min")

    def logsumexp(self, dim, keepdim=False):
        return F.logsumexp(self, dim, keepdim)

    def all(self, dim=None, keepdim=False):
        return F.logical_reduce(np.all, self, dim, keepdim)

    def any(self, dim=None, keepdim=False):
        return F.logical_reduce(np.any, self, dim, keepdim)

    # -------------------------------------------------------------------- shapes
    def reshape(self, *shape):
        return F.reshape(self, _shape_args(shape))

    def view(self, *shape):
        return F.view(self, _shape_args(shape))

    def view_as(self, other):
        return F.view(self, other.shape)

    def reshape_as(self, other):
        return F.reshape(self, other.shape)

    def permute(self, *dims):
        return F.permute(self, _shape_args(dims))

    def transpose(self, dim0, dim1):
        return F.transpose(self, dim0, dim1)

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, got {self.ndim}")
        return self if self.ndim < 2 else F.transpose(self, 0, 1)

    def flatten(self, start_dim=0, end_dim=-1):
        return F.flatten(self, start_dim, end_dim)

    def squeeze(self, dim=None):
        return F.squeeze(self, dim)

    def unsqueeze(self, dim):
        return F.unsqueeze(self, dim)

    def expand(self, *sizes):
        return F.expand(self, _shape_args(sizes))

    def expand_as(self, other):
        return F.expand(self, other.shape)

    def repeat(self, *repeats):
        return F.repeat(self, _shape_args(repeats))

    def split(self, split_size, dim=0):
        return F.split(self, split_size, dim)

    def chunk(self, chunks, dim=0):
        return F.chunk(self, chunks, dim)

    def unbind(self, dim=0):
        return F.unbind(self, dim)

    def __getitem__(self, index):
        return F.index(self, index)

    def __setitem__(self, index, value):
        F.index_assign(self, index, value)

    def square(self):
        return F.mul(self, self)

    def rsqrt(self):
        return F.div(1.0, F.sqrt(self))

    def reciprocal(self):
        return F.div(1.0, self)

    def log1p(self):
        return F.log1p(self)

    def expm1(self):
        return F.expm1(self)

    def cumsum(self, dim):
        return F.cumsum(self, dim)

    def norm(self, p=2, dim=None, keepdim=False):
        return F.norm(self, p, dim, keepdim)

    def amax(self, dim=None, keepdim=False):
        return F.amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        return F.amin(self, dim, keepdim)

    def gather(self, dim, index):
        return F.gather(self, dim, index)

    def index_select(self, dim, index):
        return F.index_select(self, dim, index)

    def masked_select(self, mask):
        return F.index(self, F.expand(mask, self.shape) if mask.shape != self.shape else mask)

    def flip(self, dims):
        return F.flip(self, dims)

    def roll(self, shifts, dims=None):
        return F.roll(self, shifts, dims)

    def tril(self, diagonal=0):
        return F.tril(self, diagonal)

    def triu(self, diagonal=0):
        return F.triu(self, diagonal)

    def sort(self, dim=-1, descending=False, stable=False):
        return F.sort(self, dim, descending, stable)

    def argsort(self, dim=-1, descending=False, stable=False):
        return F.argsort(self, dim, descending, stable)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        return F.topk(self, k, dim, largest, sorted)

    def nonzero(self, as_tuple=False):
        return F.nonzero(self, as_tuple)

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        return F.unique(self, sorted, return_inverse, return_counts, dim)

    def bmm(self, other):
        return F.matmul(self, other)

    def dot(self, other):
        return F.matmul(self, other)

    def outer(self, other):
        return F.mul(F.unsqueeze(self, 1), other)

    def unflatten(self, dim, sizes):
        axis = _dim(dim, self.ndim, "unflatten")
        return F.reshape(self, self.shape[:axis] + tuple(sizes) + self.shape[axis + 1:])

    def sign(self):
        return F._no_grad_op(np.sign, self)

    def floor(self):
        return F._no_grad_op(np.floor, self)

    def ceil(self):
        return F._no_grad_op(np.ceil, self)

    def round(self, decimals=0):
        return F._no_grad_op(np.round, self, decimals)

    def isnan(self):
        return F._no_grad_op(np.isnan, self)

    def isinf(self):
        return F._no_grad_op(np.isinf, self)

    def isfinite(self):
        return F._no_grad_op(np.isfinite, self)

    def logical_not(self):
        return F._no_grad_op(np.logical_not, self)

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    def clamp_min(self, min):
        return F.clamp(self, min, None)

    def clamp_max(self, max):
        return F.clamp(self, None, max)

    def type(self, dtype=None):
        return str(self.dtype) if dtype is None else self.to(dtype=dtype)

    def stride(self, dim=None):
        strides = tuple(s // self._data.itemsize for s in self._data.strides)
        return strides if dim is None else strides[_dim(dim, self.ndim, "stride")]

    def data_ptr(self):
        return self._data.__array_interface__["data"][0]

    def new_tensor(self, data, dtype=None, requires_grad=False):
        return tensor(data, dtype=dtype or self.dtype, device=self._device,
                      requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, requires_grad=False):
        return zeros(*size, dtype=dtype or self.dtype, device=self._device,
                     requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad=False):
        return ones(*size, dtype=dtype or self.dtype, device=self._device,
                    requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, requires_grad=False):
        return full(size, fill_value, dtype=dtype or self.dtype, device=self._device,
                    requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, requires_grad=False):
        return empty(*size, dtype=dtype or self.dtype, device=self._device,
                     requires_grad=requires_grad)

    # ------------------------------------------------------------- in place
    def zero_(self):
        return F.fill_in_place(self, 0)

    def fill_(self, value):
        return F.fill_in_place(self, value)

    def copy_(self, source):
        return F.copy_in_place(self, source)

    def add_(self, other, alpha=1):
        return F.in_place(self, F.add, other if alpha == 1 else F.mul(other, alpha))

    def sub_(self, other, alpha=1):
        return F.in_place(self, F.sub, other if alpha == 1 else F.mul(other, alpha))

    def mul_(self, other):
        return F.in_place(self, F.mul, other)

    def div_(self, other):
        return F.in_place(self, F.div, other)

    def clamp_(self, min=None, max=None):
        return F.in_place(self, lambda t, _: F.clamp(t, min, max), None)

    def masked_fill_(self, mask, value):
        return F.in_place(self, lambda t, _: F.where(mask, value, t), None)

    def exp_(self):
        return F.in_place(self, lambda t, _: F.exp(t), None)

    def sqrt_(self):
        return F.in_place(self, lambda t, _: F.sqrt(t), None)

    def abs_(self):
        return F.in_place(self, lambda t, _: F.abs(t), None)

    def neg_(self):
        return F.in_place(self, lambda t, _: F.neg(t), None)

    def relu_(self):
        return F.in_place(self, lambda t, _: F.relu(t), None)

    def sigmoid_(self):
        return F.in_place(self, lambda t, _: F.sigmoid(t), None)

    def tanh_(self):
        return F.in_place(self, lambda t, _: F.tanh(t), None)

    def pow_(self, exponent):
        return F.in_place(self, F.pow, exponent)

    def bernoulli_(self, p=0.5, generator=None):
        gen = generator or default_generator()
        return F.copy_in_place(self, gen.random(self.shape) < p)

    def uniform_(self, a=0.0, b=1.0, generator=None):
        gen = generator or default_generator()
        return F.copy_in_place(self, gen.uniform(a, b, self.shape))

    def normal_(self, mean=0.0, std=1.0, generator=None):
        gen = generator or default_generator()
        return F.copy_in_place(self, gen.normal(mean, std, self.shape))

    # ------------------------------------------------------------- DLPack
    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """This tensor as a DLPack capsule, sharing memory (see interop.to_dlpack)."""
        return interop.to_dlpack(self, stream, max_version, dl_device, copy)

    def __dlpack_device__(self):
        return interop.dlpack_device(self)


def _dim(dim, ndim, what):
    dim = operator.index(dim)
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{what}: dimension {dim} out of range for a tensor with {ndim} dims")
    return dim % max(ndim, 1)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def _shape_args(args):
    """Accepts f(2, 3) and f((2, 3)) alike."""
    if len(args) == 1 and not isinstance(args[0], numbers.Integral):
        return tuple(args[0])
    return tuple(args)


# ------------------------------------------------------------------ creation
def _array_from(data, dtype):
    """A fresh array of ``data`` (nested lists, numbers, arrays, tensors) in ``dtype``."""
    if isinstance(data, Tensor):
        data = data._data
    if dtype is not None:
        return np.array(data, dtype=as_dtype(dtype).numpy)
    array = np.array(data)
    if array.dtype == np.float64 and not isinstance(data, np.ndarray) \
            and not isinstance(data, np.floating):
        array = array.astype(np.float32)   # Python floats become the default float32
    elif array.dtype.kind in "iu" and array.dtype != np.uint8 and not isinstance(data, np.ndarray):
        array = array.astype(np.int64)
    elif array.dtype.kind not in "fiub":
        raise TypeError(f"tensor(): cannot make a tensor from data of NumPy dtype {array.dtype}")
    from_numpy_dtype(array.dtype)  # rejects unsupported dtypes with a clear message
    return array


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (Python floats become float32, ints int64)."""
    dev = as_device(device)
    array_namespace(dev)
    array = _array_from(data, dtype)
    out = Tensor._wrap(array, dev)
    out.requires_grad = requires_grad
    return out


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor, without copying when it already is one (or a suitable array)."""
    if isinstance(data, Tensor):
        return data.to(dtype=dtype, device=device)
    if isinstance(data, np.ndarray) and (dtype is None or as_dtype(dtype).numpy == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array):
    """A CPU tensor sharing memory with the NumPy array ``array``."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    from_numpy_dtype(array.dtype)
    return Tensor._wrap(array, CPU)


def _creation_dtype(dtype, default=float32):
    return (default if dtype is None else as_dtype(dtype)).numpy


def _made(array, device, requires_grad):
    out = Tensor._wrap(array, device)
    if requires_grad:
        out.requires_grad = True
    return out


def _creator(fill):
    def create(*size, dtype=None, device=None, requires_grad=False):
        dev = as_device(device)
        array_namespace(dev)
        return _made(fill(_shape_args(size), _creation_dtype(dtype)), dev, requires_grad)
    return create


zeros = _creator(np.zeros)
ones = _creator(np.ones)
empty = _creator(np.empty)
zeros.__doc__ = "A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``; float32 by default."
ones.__doc__ = "A tensor of ones: ``ones(2, 3)`` or ``ones((2, 3))``; float32 by default."
empty.__doc__ = "An uninitialised tensor of the given size; float32 by default."


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor of ``size`` filled with ``fill_value`` (dtype from the value when not given)."""
    if dtype is None:
        dtype = "bool" if isinstance(fill_value, bool) else \
            "int64" if isinstance(fill_value, numbers.Integral) else "float32"
    dev = as_device(device)
    array_namespace(dev)
    return _made(np.full(tuple(size), fill_value, _creation_dtype(dtype)), dev, requires_grad)


def zeros_like(other, dtype=None, device=None, requires_grad=False):
    return zeros(other.shape, dtype=dtype or other.dtype, device=device or other.device,
                 requires_grad=requires_grad)


def ones_like(other, dtype=None, device=None, requires_grad=False):
    return ones(other.shape, dtype=dtype or other.dtype, device=device or other.device,
                requires_grad=requires_grad)


def full_like(other, fill_value, dtype=None, device=None, requires_grad=False):
    return full(other.shape, fill_value, dtype=dtype or other.dtype,
                device=device or other.device, requires_grad=requires_grad)


def empty_like(other, dtype=None, device=None, requires_grad=False):
    return empty(other.shape, dtype=dtype or other.dtype, device=device or other.device,
                 requires_grad=requires_grad)


def rand_like(other, dtype=None, device=None, requires_grad=False):
    return rand(other.shape, dtype=dtype or other.dtype, device=device or other.device,
                requires_grad=requires_grad)


def randn_like(other, dtype=None, device=None, requires_grad=False):
    return randn(other.shape, dtype=dtype or other.dtype, device=device or other.device,
                 requires_grad=requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """The (n, m) identity matrix, float32 by default."""
    dev = as_device(device)
    array_namespace(dev)
    return _made(np.eye(n, m, dtype=_creation_dtype(dtype)), dev, requires_grad)


def multinomial(input, num_samples, replacement=False, generator=None):
    """Indices drawn from each row of non-negative weights ``input`` (1-D or 2-D), int64."""
    weights = np.asarray(input._data if isinstance(input, Tensor) else input, np.float64)
    if weights.ndim not in (1, 2) or (weights < 0).any() or not np.isfinite(weights).all():
        raise RuntimeError("multinomial: input must be a 1-D or 2-D tensor of finite, "
                           "non-negative weights")
    rows = weights.reshape(-1, weights.shape[-1])
    totals = rows.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        raise RuntimeError("multinomial: every row of weights must have a positive sum")
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError(f"multinomial: cannot draw {num_samples} samples without replacement "
                           f"from {rows.shape[1]} categories")
    gen = generator or default_generator()
    if replacement:
        # inverse-CDF sampling, vectorised over rows
        cdf = np.cumsum(rows / totals, axis=1)
        u = gen.random((rows.shape[0], num_samples))
        drawn = np.minimum((u[:, :, None] > cdf[:, None, :]).sum(axis=2), rows.shape[1] - 1)
    else:
        # Gumbel top-k: the k largest of log(w) + Gumbel noise are a draw without replacement
        with np.errstate(divide="ignore"):
            keys = np.log(rows) - np.log(-np.log(gen.random(rows.shape)))
        drawn = np.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    drawn = drawn.astype(np.int64).reshape(weights.shape[:-1] + (num_samples,))
    return Tensor._wrap(drawn, input._device if isinstance(input, Tensor) else CPU)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """``arange(end)`` or ``arange(start, end, step)``: int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        integral = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = "int64" if integral else "float32"
    dev = as_device(device)
    array_namespace(dev)
    return _made(np.arange(start, end, step).astype(_creation_dtype(dtype)), dev, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    dev = as_device(device)
    array_namespace(dev)
    return _made(np.linspace(start, end, steps).astype(_creation_dtype(dtype)), dev, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False, generator=None):
    """Uniform [0, 1) samples from the default generator (``tfg.manual_seed``)."""
    dev = as_device(device)
    array_namespace(dev)
    gen = generator or default_generator()
    return _made(gen.random(_shape_args(size)).astype(_creation_dtype(dtype)), dev, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False, generator=None):
    """Standard normal samples from the default generator (``tfg.manual_seed``)."""
    dev = as_device(device)
    array_namespace(dev)
    gen = generator or default_generator()
    return _made(gen.standard_normal(_shape_args(size)).astype(_creation_dtype(dtype)), dev,
                 requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None, generator=None):
    """Integers in [low, high) (``randint(high, size)`` also works), int64 by default."""
    if high is None:
        low, high = 0, low
    dev = as_device(device)
    array_namespace(dev)
    gen = generator or default_generator()
    return _made(gen.integers(low, high, tuple(size)).astype(_creation_dtype(dtype, int64)), dev,
                 False)


def randperm(n, dtype=None, device=None, generator=None):
    dev = as_device(device)
    array_namespace(dev)
    gen = generator or default_generator()
    return _made(gen.permutation(n).astype(_creation_dtype(dtype, int64)), dev, False)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def broadcast_to(input, size):
    return input.expand(*size)


def allclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    return bool(np.allclose(np.asarray(input), np.asarray(other), rtol, atol, equal_nan))


def equal(input, other) -> bool:
    """True when both have the same shape and elements."""
    return input.shape == other.shape and bool(np.array_equal(np.asarray(input), np.asarray(other)))


from . import differentiable as F  # noqa: E402  (the operations need Tensor defined first)
from . import interop  # noqa: E402
