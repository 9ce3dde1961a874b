"""The optimizer base class: parameter groups, per-parameter state, state_dict.

Subclasses give their default options, check them in `_check_options`, and
update one parameter in `_update`; everything else (groups, the step loop,
zero_grad, saving and loading state) lives here. The layout of `state_dict()`
is PyTorch's: ``{"state": {index: {name: value}}, "param_groups": [{option:
value, ..., "params": [index, ...]}]}`` with parameters numbered in group
order, so a state saved by one optimizer loads into another built the same way.

Updates run on the CPU arrays of the parameters (`Tensor._data`, NumPy).
"""
import math
import numbers
import operator
from collections.abc import Iterable, Mapping, MutableMapping

import numpy as np

import tensorforge as _tfg

__all__ = ["Optimizer"]

_SET_MESSAGE = ("parameters must be given as an ordered collection (a list, not a set), so that their "
                "order, and so the layout of state_dict(), is the same from run to run")


class _ParamState(MutableMapping):
    """Per-parameter state keyed by parameter identity (not by value).

    Reading a parameter that has no state yet gives a new empty dict and stores
    it, as PyTorch's `optimizer.state` (a defaultdict) does.
    """

    def __init__(self):
        self._entries = {}

    def __getitem__(self, param):
        entry = self._entries.get(id(param))
        if entry is None:
            entry = (param, {})
            self._entries[id(param)] = entry
        return entry[1]

    def __setitem__(self, param, state):
        self._entries[id(param)] = (param, state)

    def __delitem__(self, param):
        del self._entries[id(param)]

    def __contains__(self, param):
        return id(param) in self._entries

    def __iter__(self):
        return (param for param, _ in self._entries.values())

    def __len__(self):
        return len(self._entries)

    def __repr__(self):
        return f"<optimizer state of {len(self)} parameters>"


def check_nonnegative(owner, options, *names):
    """Raises ValueError naming the option unless each named option is a number >= 0."""
    for name in names:
        value = options[name]
        _check_real(owner, name, value)
        if not value >= 0.0:
            raise ValueError(f"{owner}: invalid {name}: {value!r} (must be >= 0)")


def check_betas(owner, options, name="betas"):
    """Raises unless options[name] is a pair of numbers each in [0, 1)."""
    betas = options[name]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{owner}: {name} must be a pair (beta1, beta2), got {betas!r}")
    for index, beta in enumerate(betas):
        _check_real(owner, f"{name}[{index}]", beta)
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{owner}: invalid {name}[{index}]: {beta!r} (must be in [0, 1))")


def check_real(owner, options, *names):
    """Raises TypeError naming the option unless each named option is a real number."""
    for name in names:
        _check_real(owner, name, options[name])


def _check_real(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__} {value!r}")


def effective_grad(param, grad, weight_decay, maximize):
    """The gradient an update uses: g (or -g when maximizing) + weight_decay * param.

    Returns `grad` itself when neither applies (callers must not write into it),
    a new array otherwise.
    """
    if weight_decay == 0:
        return np.negative(grad) if maximize else grad
    result = np.multiply(param, weight_decay)
    if maximize:
        result -= grad
    else:
        result += grad
    return result


class Optimizer:
    """Base class of all optimizers.

    params: an iterable of Tensors, or of dicts each holding "params" (a Tensor
    or an iterable of Tensors) and options that override `defaults` for that
    group. `param_groups` is the list of groups (dicts: options + "params");
    `state` maps each parameter to its dict of state (Tensors and numbers).
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self._check_options(self.defaults)
        self.state = _ParamState()
        self.param_groups = []
        if isinstance(params, _tfg.Tensor):
            raise TypeError("params must be an iterable of Tensors or dicts, got a single Tensor "
                            "(wrap it in a list)")
        if isinstance(params, Mapping) or not isinstance(params, Iterable):
            raise TypeError(f"params must be an iterable of Tensors or dicts, got {type(params).__name__}")
        if isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE)
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def _check_options(self, options):
        """Raises ValueError/TypeError naming a bad option; subclasses override."""

    def _update(self, param, grad, state, group):
        """Updates one parameter's array in place from its gradient; subclasses override."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    def add_param_group(self, param_group):
        """Adds a group of parameters, its missing options taken from `defaults`."""
        if not isinstance(param_group, Mapping):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, _tfg.Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE)
        else:
            params = list(params)
        for index, param in enumerate(params):
            if not isinstance(param, _tfg.Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize Tensors, but parameter {index} "
                                f"of the group is a {type(param).__name__}")
            if not param.is_leaf:
                raise ValueError(f"{type(self).__name__} can't optimize a non-leaf Tensor "
                                 f"(parameter {index} of the group)")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter group lists the same parameter more than once")
        group["params"] = params
        for name, value in self.defaults.items():
            group.setdefault(name, value)
        self._check_options(group)
        known = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in known for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Clears the gradients: sets them to None (default) or fills them with zeros."""
        for group in self.param_groups:
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    if getattr(grad, "grad_fn", None) is not None:
                        grad = grad.detach()
                        param.grad = grad
                    with _tfg.no_grad():
                        grad.zero_()

    def step(self, closure=None):
        """Updates every parameter that has a gradient (parameters whose grad is None are skipped).

        closure: optional callable that re-evaluates the model and returns the
        loss; it runs with gradients enabled before the update, and its result
        is returned.
        """
        loss = None
        if closure is not None:
            with _tfg.enable_grad():
                loss = closure()
        with _tfg.no_grad():
            for group in self.param_groups:
                for param in group["params"]:
                    grad = param.grad
                    if grad is None:
                        continue
                    if param.device.type != "cpu":
                        raise RuntimeError(f"{type(self).__name__}: updates are implemented for CPU "
                                           f"parameters only, got a parameter on {param.device}")
                    if grad.shape != param.shape:
                        raise RuntimeError(f"{type(self).__name__}: gradient of shape {tuple(grad.shape)} "
                                           f"for a parameter of shape {tuple(param.shape)}")
                    self._update(param._data, grad._data, self.state[param], group)
                    param._mark_modified()
        return loss

    @staticmethod
    def _state_tensor(array, fill=0.0):
        """A new state Tensor shaped and typed like a parameter's array, filled with `fill`."""
        return _tfg.from_numpy(np.full_like(array, fill))

    @staticmethod
    def _step_tensor(value=0.0):
        """The step counter as PyTorch keeps it: a 0-dim float32 Tensor."""
        return _tfg.from_numpy(np.array(value, dtype=np.float32))

    def state_dict(self):
        """The optimizer's state in PyTorch's layout (see the module docstring).

        The returned dicts are new, the state Tensors in them are the
        optimizer's own (as in PyTorch): save or copy them before stepping again.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {name: value for name, value in group.items() if name != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if s and id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Loads a state from `state_dict()` (of this optimizer or one built the same way).

        The groups must match in number and size. Every entry is checked before
        anything changes, so a bad state leaves the optimizer as it was. State
        Tensors (or anything NumPy can read: arrays, CPU torch tensors) are
        copied, cast to their parameter's dtype (the step counter stays float32).
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups', "
                             f"got {type(state_dict).__name__}")
        if "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups', "
                             f"got one with keys {sorted(map(str, state_dict))}")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state has {len(saved_groups)} parameter groups, "
                             f"the optimizer has {len(self.param_groups)}")
        by_index = {}
        new_groups = []
        for number, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(saved, Mapping) or "params" not in saved:
                raise ValueError(f"{name}.load_state_dict: parameter group {number} of the state "
                                 f"has no 'params'")
            saved_params = list(saved["params"])
            if len(saved_params) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {number} of the state has "
                                 f"{len(saved_params)} parameters, the optimizer's has "
                                 f"{len(group['params'])}")
            for index, param in zip(saved_params, group["params"]):
                by_index[_state_index(name, index)] = param
            new_group = dict(group)
            new_group.update({k: _plain(v) for k, v in saved.items() if k != "params"})
            new_group["params"] = group["params"]
            self._check_options(new_group)
            new_groups.append(new_group)
        new_state = _ParamState()
        for key, saved_state in dict(state_dict["state"]).items():
            index = _state_index(name, key)
            if index not in by_index:
                raise ValueError(f"{name}.load_state_dict: the state has an entry for parameter {index}, "
                                 f"which no parameter group lists")
            param = by_index[index]
            if not isinstance(saved_state, Mapping):
                raise ValueError(f"{name}.load_state_dict: the state of parameter {index} is a "
                                 f"{type(saved_state).__name__}, not a dict")
            new_state[param] = {key: _load_state_value(name, index, key, value, param)
                                for key, value in saved_state.items()}
        self.param_groups = new_groups
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for number, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {number}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        lines.append(")")
        return "\n".join(lines)


def _state_index(owner, key):
    try:
        if isinstance(key, bool):
            raise TypeError
        return int(key) if isinstance(key, str) else operator.index(key)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}.load_state_dict: parameter index {key!r} is not an integer") from None


def _plain(value):
    """Options saved as 0-dim arrays or Tensors (after a file round trip) come back as Python numbers."""
    if isinstance(value, _tfg.Tensor):
        value = value._data
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def _load_state_value(owner, index, key, value, param):
    """A copy of one saved state entry for `param`, checked and cast to the parameter's dtype."""
    if isinstance(value, _tfg.Tensor):
        array = value._data
    elif isinstance(value, numbers.Number) and not isinstance(value, bool):
        return Optimizer._step_tensor(float(value)) if key == "step" else value
    elif hasattr(value, "__array__"):
        array = np.asarray(value)
    else:
        return value
    if key == "step":
        if array.size != 1 or not math.isfinite(float(array.reshape(-1)[0])):
            raise ValueError(f"{owner}.load_state_dict: 'step' of parameter {index} must be one finite "
                             f"number, got shape {tuple(array.shape)}")
        return Optimizer._step_tensor(float(array.reshape(-1)[0]))
    if tuple(array.shape) != tuple(param.shape):
        raise ValueError(f"{owner}.load_state_dict: '{key}' of parameter {index} has shape "
                         f"{tuple(array.shape)}, the parameter has shape {tuple(param.shape)}")
    return _tfg.from_numpy(np.array(array, dtype=param.dtype.numpy, copy=True))
