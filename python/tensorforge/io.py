"""`tfg.save` / `tfg.load`: state dicts and nested checkpoints in the
safetensors format.

Tensors (and NumPy arrays) are stored as safetensors tensors under keys made
from their path in the object ("model.fc.weight", "optimizer.state.0.exp_avg");
the structure around them (dicts, lists, tuples and the non-tensor leaves:
numbers, strings, bools, None) is stored as JSON in the file's metadata, with
a CRC-32 of the structure and the tensors, so damage anywhere is detected.
A flat state dict therefore gives an ordinary safetensors file that other
tools read, and `load` reads foreign safetensors files as a flat dict of
Tensors.
"""
import json
import math
import os
import tempfile
import zlib

import numpy as np
import safetensors
import safetensors.numpy

from .tensor import Tensor, from_numpy

__all__ = ["save", "load"]

_FORMAT_KEY = "tensorforge.format"
_FORMAT_VERSION = "1"
_STRUCTURE_KEY = "tensorforge.structure"
_CRC_KEY = "tensorforge.crc32"
_TENSOR_DTYPES = ("float32", "float64", "int32", "int64", "bool", "uint8")

# Node tags of the JSON structure. Containers and array leaves are JSON
# objects {"t": tag, ...}; None, bools, ints, floats and strings are stored as
# themselves (the "float" tag carries nan and the infinities, which JSON lacks).
_DICT, _LIST, _TUPLE, _TENSOR, _NDARRAY, _NPSCALAR, _FLOAT = (
    "dict", "list", "tuple", "tensor", "ndarray", "npscalar", "float")


def _tensor_array(tensor):
    """The data of a Tensor as a NumPy array on the host."""
    tensor = tensor.detach()
    if str(tensor.device) != "cpu":
        tensor = tensor.to("cpu")
    return tensor.numpy()


def _check_path(path, fn):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{fn}: path must be a str or os.PathLike, got {type(path).__name__}")
    return os.fspath(path)


class _Flattener:
    """Splits an object into a JSON-able structure and a dict of arrays."""

    def __init__(self):
        self.arrays = {}

    def _store(self, key, array):
        name, n = key or "_", 1
        while name in self.arrays:
            n += 1
            name = f"{key}~{n}"
        self.arrays[name] = array if array.flags.c_contiguous else np.array(array, order="C")
        return name

    def visit(self, obj, key):
        where = key or "<root>"
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, np.generic):  # before int and float: np.float64 is a float
            self._check_dtype(obj.dtype, where)
            return {"t": _NPSCALAR, "k": self._store(key, np.asarray(obj))}
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            value = float(obj)
            return value if math.isfinite(value) else {"t": _FLOAT, "v": repr(value)}
        if isinstance(obj, Tensor):
            return {"t": _TENSOR, "k": self._store(key, _tensor_array(obj)),
                    "g": bool(obj.requires_grad)}
        if isinstance(obj, np.ndarray):
            self._check_dtype(obj.dtype, where)
            return {"t": _NDARRAY, "k": self._store(key, obj)}
        if isinstance(obj, dict):
            items = []
            for name, value in obj.items():
                if isinstance(name, bool) or not isinstance(name, (str, int)):
                    raise TypeError(f"tfg.save: dict keys must be str or int; {where} has key {name!r} "
                                    f"of type {type(name).__name__}")
                items.append([name, self.visit(value, f"{key}.{name}" if key else str(name))])
            return {"t": _DICT, "i": items}
        if isinstance(obj, (list, tuple)):
            tag = _TUPLE if isinstance(obj, tuple) else _LIST
            return {"t": tag, "i": [self.visit(v, f"{key}.{i}" if key else str(i))
                                    for i, v in enumerate(obj)]}
        raise TypeError(f"tfg.save: cannot save {where}: unsupported type {type(obj).__name__} "
                        f"(leaves must be Tensors, NumPy arrays, numbers, strings, bools or None)")

    @staticmethod
    def _check_dtype(dtype, where):
        if dtype.kind not in "biuf" or dtype.byteorder == ">":
            raise TypeError(f"tfg.save: cannot save {where}: NumPy dtype {dtype} is not supported")


def _checksum(structure, arrays):
    """CRC-32 of everything a file holds but its checksum: the structure and
    each tensor's name, dtype, shape and bytes."""
    crc = zlib.crc32(structure.encode())
    for name in sorted(arrays):
        array = arrays[name]
        crc = zlib.crc32(f"{name}|{array.dtype.str}|{array.shape}".encode(), crc)
        crc = zlib.crc32(array.reshape(-1).view(np.uint8), crc)
    return f"{crc:08x}"


def save(obj, path):
    """Saves `obj` to `path` in the safetensors format, atomically.

    `obj` is a state dict (name -> Tensor) or any nesting of dicts (str or int
    keys), lists and tuples whose leaves are Tensors, NumPy arrays, numbers,
    strings, bools or None, such as {"model": model.state_dict(), "optimizer":
    optimizer.state_dict(), "epoch": 3}. The file is written to a temporary
    file next to `path` and renamed over it, so `path` never holds half a file.
    """
    path = _check_path(path, "tfg.save")
    flattener = _Flattener()
    structure = flattener.visit(obj, "")
    arrays = flattener.arrays
    structure = json.dumps(structure, separators=(",", ":"))
    metadata = {_FORMAT_KEY: _FORMAT_VERSION, _STRUCTURE_KEY: structure,
                _CRC_KEY: _checksum(structure, arrays)}
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.close(fd)
        safetensors.numpy.save_file(arrays, tmp, metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class _Rebuilder:
    """Rebuilds an object from its JSON structure and the loaded arrays."""

    def __init__(self, arrays, path):
        self.arrays = arrays
        self.path = path
        self.used = set()

    def corrupt(self, what):
        return ValueError(f"tfg.load: {self.path} is corrupt: {what}")

    def array(self, node):
        name = node.get("k")
        if not isinstance(name, str) or name not in self.arrays:
            raise self.corrupt(f"the structure names tensor {name!r}, which the file does not hold")
        if name in self.used:
            raise self.corrupt(f"tensor {name!r} is referenced twice")
        self.used.add(name)
        return self.arrays[name]

    def visit(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, dict):
            tag = node.get("t")
            if tag == _TENSOR:
                return _make_tensor(self.array(node), bool(node.get("g", False)))
            if tag == _NDARRAY:
                return self.array(node)
            if tag == _NPSCALAR:
                return self.array(node)[()]
            if tag == _FLOAT and node.get("v") in ("nan", "inf", "-inf"):
                return float(node["v"])
            items = node.get("i")
            if tag in (_LIST, _TUPLE) and isinstance(items, list):
                values = [self.visit(v) for v in items]
                return tuple(values) if tag == _TUPLE else values
            if tag == _DICT and isinstance(items, list):
                out = {}
                for item in items:
                    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], (str, int))
                            and not isinstance(item[0], bool)):
                        raise self.corrupt(f"malformed dict entry {str(item)[:80]!r} in the structure")
                    out[item[0]] = self.visit(item[1])
                return out
        raise self.corrupt(f"malformed node {str(node)[:80]!r} in the structure")


def _make_tensor(array, requires_grad=False):
    tensor = from_numpy(array)
    if requires_grad:
        tensor.requires_grad_(True)
    return tensor


def _read(path):
    """The metadata and arrays of a safetensors file, or ValueError naming `path`."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise FileNotFoundError(f"tfg.load: cannot read {path}: {e.strerror}") from None
    if size < 8:
        raise ValueError(f"tfg.load: {path} is not a safetensors file: it is {size} bytes long, "
                         f"shorter than the 8-byte header length")
    try:
        with safetensors.safe_open(path, framework="np") as f:
            metadata = f.metadata() or {}
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as e:  # safetensors raises its own SafetensorError for every kind of damage
        raise ValueError(f"tfg.load: {path} is truncated, corrupt or not a safetensors file "
                         f"({type(e).__name__}: {e})") from None
    return metadata, arrays


def load(path):
    """Loads what `tfg.save` wrote to `path`, with the same structure; the
    tensors come back as Tensors with their dtypes (and requires_grad flags),
    NumPy arrays as NumPy arrays.

    A safetensors file written by another tool loads as a flat dict of
    Tensors. A truncated or corrupt file raises ValueError naming the path and
    the damage; nothing is returned from a file that fails any check.
    """
    path = _check_path(path, "tfg.load")
    metadata, arrays = _read(path)
    ours = sorted(key for key in metadata if key.startswith("tensorforge."))
    if not ours:
        unsupported = {name: str(a.dtype) for name, a in arrays.items()
                       if a.dtype.name not in _TENSOR_DTYPES}
        if unsupported:
            raise TypeError(f"tfg.load: {path} holds tensors of dtypes tensorforge does not support: "
                            f"{unsupported}; read it with safetensors.numpy.load_file")
        return {name: _make_tensor(array) for name, array in arrays.items()}
    if ours != sorted((_FORMAT_KEY, _STRUCTURE_KEY, _CRC_KEY)):
        raise ValueError(f"tfg.load: {path} is corrupt: its tensorforge metadata keys are {ours}")
    if metadata[_FORMAT_KEY] != _FORMAT_VERSION:
        raise ValueError(f"tfg.load: {path} was written in tensorforge format version "
                         f"{metadata[_FORMAT_KEY]!r}; this version reads {_FORMAT_VERSION!r}")
    if metadata[_CRC_KEY] != _checksum(metadata[_STRUCTURE_KEY], arrays):
        raise ValueError(f"tfg.load: {path} is corrupt: its contents do not match their checksum")
    try:
        structure = json.loads(metadata[_STRUCTURE_KEY])
    except ValueError as e:
        raise ValueError(f"tfg.load: {path} is corrupt: its structure is not valid JSON ({e})") from None
    rebuilder = _Rebuilder(arrays, path)
    obj = rebuilder.visit(structure)
    unused = sorted(set(arrays) - rebuilder.used)
    if unused:
        raise rebuilder.corrupt(f"tensors {unused[:5]} are not referenced by the structure")
    return obj
