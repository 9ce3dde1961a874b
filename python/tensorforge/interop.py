"""DLPack interchange: the Python side of `Tensor.__dlpack__`,
`Tensor.__dlpack_device__` and `tfg.from_dlpack`, following the Python array
API's protocol. The capsules themselves are made and read in C++
(`_C.to_dlpack`, `_C.from_dlpack`); CPU memory is shared, never copied,
unless the caller asks for a copy or the protocol needs one.
"""
import enum

import numpy as np

from . import _C

__all__ = ["DLDeviceType", "to_dlpack", "dlpack_device", "from_dlpack"]

# The DLPack version this module produces and reads.
DLPACK_VERSION = (1, 0)


class DLDeviceType(enum.IntEnum):
    """DLPack device type codes (the ones tensorforge can name)."""

    kDLCPU = 1
    kDLCUDA = 2
    kDLCUDAHost = 3
    kDLROCM = 10
    kDLCUDAManaged = 13


def dlpack_device(tensor):
    """`Tensor.__dlpack_device__`: the tensor's (DLPack device type, device index)."""
    device = tensor.device
    kind = getattr(device, "type", str(device).split(":")[0])
    index = getattr(device, "index", None) or 0
    if kind == "cpu":
        return (DLDeviceType.kDLCPU, 0)
    if kind == "cuda":
        return (DLDeviceType.kDLCUDA, index)
    raise BufferError(f"__dlpack_device__: device {device} has no DLPack device type")


def _as_version(max_version):
    try:
        major, minor = (int(v) for v in max_version)
    except (TypeError, ValueError):
        raise TypeError(f"__dlpack__: max_version must be a (major, minor) tuple of ints, "
                        f"got {max_version!r}") from None
    return major, minor


def _as_device(dl_device):
    try:
        kind, index = (int(v) for v in dl_device)
    except (TypeError, ValueError):
        raise TypeError(f"__dlpack__: dl_device must be a (device type, index) tuple of ints, "
                        f"got {dl_device!r}") from None
    return kind, index


def to_dlpack(tensor, stream=None, max_version=None, dl_device=None, copy=None):
    """`Tensor.__dlpack__`: exports `tensor` as a DLPack capsule.

    A "dltensor_versioned" capsule (DLPack 1.0, with the read-only flag) when
    `max_version` is at least (1, 0), else a legacy "dltensor" one. The capsule
    shares the tensor's memory unless `copy=True`, or a copy is needed (a
    read-only tensor asked for as a legacy capsule) and `copy` is not False;
    `copy=False` with a needed copy raises BufferError. `stream` must be None
    (CPU has no streams); `dl_device`, when given, must be the tensor's device.
    """
    if getattr(tensor, "requires_grad", False):
        raise RuntimeError("__dlpack__: cannot export a tensor that requires grad; "
                           "export tensor.detach() instead")
    if copy is not None and not isinstance(copy, bool):
        raise TypeError(f"__dlpack__: copy must be True, False or None, got {copy!r}")
    device = dlpack_device(tensor)
    if dl_device is not None and _as_device(dl_device) != (int(device[0]), int(device[1])):
        raise BufferError(f"__dlpack__: cannot export a tensor on {tensor.device} to DLPack device "
                          f"{tuple(dl_device)}; only its own device {(int(device[0]), device[1])}")
    if device[0] != DLDeviceType.kDLCPU:
        raise BufferError(f"__dlpack__: exporting tensors on {tensor.device} is not supported by "
                          f"this build")
    if stream is not None:
        raise ValueError(f"__dlpack__: stream must be None for a CPU tensor, got {stream!r}")
    versioned = max_version is not None and _as_version(max_version) >= DLPACK_VERSION
    array = tensor._data
    if copy:
        return _C.to_dlpack(_native_copy(array), versioned, True)
    try:
        return _C.to_dlpack(array, versioned)
    except BufferError:
        if copy is False:
            raise
    return _C.to_dlpack(_native_copy(array), versioned, True)


def _native_copy(array):
    """A fresh writable, C-contiguous, native-byte-order copy of `array`."""
    return np.array(array, dtype=array.dtype.newbyteorder("="), order="C", copy=True)


def _is_capsule(obj):
    return type(obj).__name__ == "PyCapsule"


def from_dlpack(obj):
    """A Tensor sharing the memory of `obj`, with no copy.

    `obj` is any object with `__dlpack__` (a NumPy array, a PyTorch or JAX
    tensor, a tensorforge Tensor) or a DLPack capsule, which is consumed. Only
    CPU memory is supported; other devices raise BufferError naming the device
    type. A read-only source gives a tensor whose array is not writeable.
    """
    if _is_capsule(obj):
        capsule = obj
    elif hasattr(obj, "__dlpack__"):
        try:
            capsule = obj.__dlpack__(max_version=DLPACK_VERSION)
        except TypeError:
            capsule = obj.__dlpack__()
    else:
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ or a DLPack capsule, "
                        f"got {type(obj).__name__}")
    from .tensor import from_numpy

    return from_numpy(_C.from_dlpack(capsule))
