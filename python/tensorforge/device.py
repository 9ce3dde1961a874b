"""Devices: ``tfg.device("cpu")``, ``"cuda"``, ``"cuda:N"``.

A device also names the array namespace its tensors' data lives in (NumPy on
the CPU); code that must not assume NumPy asks the device for it.
"""
import numpy as np


class device:
    """Where a tensor's data lives: ``type`` is "cpu" or "cuda", ``index`` None or an int."""
    __slots__ = ("type", "index")

    def __init__(self, spec, index=None):
        if isinstance(spec, device):
            object.__setattr__(self, "type", spec.type)
            object.__setattr__(self, "index", spec.index)
            return
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, number = spec.partition(":")
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {spec!r} (expected 'cpu', 'cuda' or 'cuda:N')")
        if number:
            if not number.isdigit():
                raise ValueError(f"bad device index in {spec!r}")
            if index is not None:
                raise ValueError(f"device {spec!r} given together with index {index}")
            index = int(number)
        if kind == "cpu" and index not in (None, 0):
            raise ValueError(f"device 'cpu' has no index {index}")
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "index", None if kind == "cpu" else index)

    def __setattr__(self, key, value):
        raise AttributeError("devices are immutable")

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except (TypeError, ValueError):
                return False
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __reduce__(self):
        return (device, (str(self),))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"


CPU = device("cpu")


def as_device(spec):
    """A :class:`device` from a device, a string or None (the CPU)."""
    if spec is None:
        return CPU
    if isinstance(spec, device):
        return spec
    return device(spec)


def check_available(dev):
    """Raises RuntimeError when tensors cannot be made on ``dev`` in this build."""
    if dev.type == "cuda":
        from . import cuda

        raise cuda.not_available_error()


def array_namespace(dev):
    """The module holding the array functions for data on ``dev`` (NumPy on the CPU)."""
    if dev.type == "cpu":
        return np
    check_available(dev)


__all__ = ["device"]
