"""``nn.Module`` and ``nn.Parameter``: PyTorch's layer base class.

A module registers the Parameters, buffers and sub-modules assigned to its
attributes (in order), and gives ``parameters()``, ``state_dict()``,
``load_state_dict()``, ``train()``/``eval()``, ``to()`` and ``zero_grad()``
over the whole tree. Registered objects are also kept in the instance
``__dict__`` so that reading ``self.weight`` in a forward costs a plain
attribute lookup.
"""
import collections

import numpy as np

from ..autograd import no_grad
from ..dtypes import as_dtype
from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor that is a module's learnable parameter (requires grad by default)."""
    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            array = np.empty(0, np.float32)
            device = None
        elif isinstance(data, Tensor):
            array, device = data._data, data._device
        else:
            array, device = np.asarray(data), None
        from ..device import CPU
        self._init(array, device or CPU, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of all layers: subclasses set attributes in ``__init__`` and define ``forward``."""

    training = True

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ registration
    def _registries(self):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 "before assigning parameters, buffers or sub-modules")
        return self._parameters, self._buffers, self._modules

    def __setattr__(self, name, value):
        if isinstance(value, (Parameter, Module)) or "_parameters" in self.__dict__:
            params, buffers, modules = self._registries()
            if isinstance(value, Parameter):
                buffers.pop(name, None)
                modules.pop(name, None)
                params[name] = value
            elif isinstance(value, Module):
                params.pop(name, None)
                buffers.pop(name, None)
                modules[name] = value
            elif name in params or name in modules:
                if value is not None:
                    kind = "Parameter" if name in params else "Module"
                    raise TypeError(f"cannot assign a {type(value).__name__} to {name!r}: it is a "
                                    f"registered {kind} (assign a {kind} or None)")
                (params if name in params else modules)[name] = None
            elif name in buffers:
                if value is not None and not isinstance(value, Tensor):
                    raise TypeError(f"cannot assign a {type(value).__name__} to buffer {name!r} "
                                    "(a Tensor or None expected)")
                buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in (self.__dict__.get("_parameters", {}), self.__dict__.get("_buffers", {}),
                         self.__dict__.get("_modules", {})):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got "
                            f"{type(param).__name__}")
        self._registries()[0][name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that is state but not a parameter (e.g. running statistics)."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got "
                            f"{type(tensor).__name__}")
        self._registries()[1][name] = tensor
        if not persistent:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got "
                            f"{type(module).__name__}")
        self._registries()[2][name] = module
        object.__setattr__(self, name, module)

    register_module = add_module

    # --------------------------------------------------------------- traversal
    def named_modules(self, prefix="", memo=None):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named_members(self, registry, prefix, recurse):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix="", recurse=True):
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    def apply(self, fn):
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------- modes
    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad._data[...] = 0
                p.grad._mark_modified()

    # ------------------------------------------------------- device and dtype
    def to(self, *args, **kwargs):
        """Moves/converts every parameter and buffer in place (``to(device)``, ``to(dtype)``)."""
        def convert(t):
            moved = t.to(*args, **kwargs)
            if moved.dtype.is_floating_point or not t.dtype.is_floating_point:
                return moved
            return t   # as PyTorch: a dtype change applies to floating-point tensors only
        return self._convert(convert)

    def _convert(self, fn):
        """Replaces every parameter's data (keeping the Parameter objects), grad and buffer
        by ``fn`` of it."""
        with no_grad():
            for module in self.modules():
                for param in module._parameters.values():
                    if param is None:
                        continue
                    converted = fn(param)
                    if converted is not param:
                        param._data, param._device = converted._data, converted._device
                        param._mark_modified()
                    if param.grad is not None:
                        param.grad = fn(param.grad)
                for name, buffer in module._buffers.items():
                    if buffer is not None:
                        module._buffers[name] = fn(buffer)
                        object.__setattr__(module, name, module._buffers[name])
        return self

    def _cast_floats(self, dtype):
        target = as_dtype(dtype)
        return self._convert(lambda t: t.to(dtype=target) if t.dtype.is_floating_point else t)

    def float(self):
        return self._cast_floats("float32")

    def double(self):
        return self._cast_floats("float64")

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{device}")

    # ------------------------------------------------------------ state dicts
    def state_dict(self, prefix=""):
        """Parameters and persistent buffers by dotted name, sharing memory with the module."""
        out = collections.OrderedDict()
        for module_prefix, module in self.named_modules(prefix.rstrip(".")):
            for name, param in module._parameters.items():
                if param is not None:
                    out[f"{module_prefix}.{name}" if module_prefix else name] = param.detach()
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent:
                    out[f"{module_prefix}.{name}" if module_prefix else name] = buffer.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copies ``state_dict`` into the parameters and buffers, after checking all of it:
        with ``strict`` missing or unexpected keys are an error, and a shape mismatch always
        is; nothing is changed unless every check passes."""
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        sources = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = value._data if isinstance(value, Tensor) else np.asarray(value)
            if array.shape != target.shape:
                problems.append(f"{key}: shape {list(array.shape)} in the state dict, "
                                f"{list(target.shape)} in the model")
            elif array.dtype.kind not in "fiub":
                problems.append(f"{key}: unsupported dtype {array.dtype}")
            sources[key] = array
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n  "
                               + "\n  ".join(problems))
        with no_grad():
            for key, array in sources.items():
                own[key]._data[...] = array
                own[key]._mark_modified()
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------- repr
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        for name, child in self._modules.items():
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {text}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


__all__ = ["Module", "Parameter"]
