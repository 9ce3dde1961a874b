"""Datasets and mini-batch loading: `TensorDataset` and `DataLoader`, as PyTorch's.

A DataLoader over a TensorDataset builds each batch by indexing every tensor
once with the batch's index array; over any other map-style dataset (one with
`__len__` and `__getitem__`) it fetches the samples and stacks them field by
field. Shuffling draws from the loader's own NumPy generator, seeded by `seed`
or, when no seed is given, once from `tfg.random.default_generator()` at
construction, so `tfg.manual_seed` fixes the order of every epoch (a loader
that does not shuffle draws nothing from the default generator).
"""
import numbers

import numpy as np

from . import random as _random
from .differentiable import stack
from .dtypes import bool_ as _bool, float64 as _float64, int64 as _int64
from .tensor import Tensor, from_numpy, tensor

__all__ = ["TensorDataset", "DataLoader"]


class TensorDataset:
    """Samples are the rows of tensors sharing their first dimension:
    `dataset[i]` is `(t[i] for t in tensors)` as a tuple.

    NumPy arrays are accepted and wrapped without a copy.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        converted = []
        for position, t in enumerate(tensors):
            if isinstance(t, np.ndarray):
                t = from_numpy(t)
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"TensorDataset: argument {position} must be a Tensor or NumPy array, "
                    f"got {type(t).__name__}"
                )
            if t.ndim == 0:
                raise ValueError(
                    f"TensorDataset: argument {position} is 0-d; every tensor needs a first dimension"
                )
            converted.append(t)
        sizes = [t.shape[0] for t in converted]
        if len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: tensors must have the same first dimension, got sizes {sizes}")
        self.tensors = tuple(converted)

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


def _check_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"DataLoader: {name} must be a bool, got {value!r}")
    return bool(value)


class DataLoader:
    """Iterates over `dataset` in mini-batches of `batch_size` samples.

    Each batch is a list with one Tensor per sample field (a Tensor, or a dict
    of them, for datasets whose samples are a single Tensor or a dict), stacked
    along a new first dimension; batches never require grad. `shuffle=True`
    draws a new permutation at every `iter()`, from a NumPy generator seeded by
    `seed` or, when `seed` is None, once at construction from tensorforge's
    default generator (a loader that does not shuffle draws nothing from it).
    `drop_last=True` drops a final batch shorter than `batch_size`.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"DataLoader: dataset must define __len__ and __getitem__, got {type(dataset).__name__}"
            )
        if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size}")
        if seed is not None:
            if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
                raise TypeError(f"DataLoader: seed must be an integer or None, got {seed!r}")
            if seed < 0:
                raise ValueError(f"DataLoader: seed must be >= 0, got {seed}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = _check_flag(shuffle, "shuffle")
        self.drop_last = _check_flag(drop_last, "drop_last")
        self.seed = seed
        self.generator = None
        if seed is not None:
            self.generator = np.random.default_rng(seed)
        elif self.shuffle:
            self.generator = _generator_from_default()

    def __len__(self):
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def __iter__(self):
        """A fresh pass over the dataset; with shuffle on, its order is drawn here."""
        n = len(self.dataset)
        if self.shuffle:
            if self.generator is None:
                self.generator = _generator_from_default()
            order = self.generator.permutation(n)
        else:
            order = np.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        starts = range(0, stop, self.batch_size)
        return (self._batch(order[start:start + self.batch_size]) for start in starts)

    def _batch(self, indices):
        if isinstance(self.dataset, TensorDataset):
            return [_take_rows(t, indices) for t in self.dataset.tensors]
        return _collate([self.dataset[int(i)] for i in indices])


def _generator_from_default():
    """A NumPy generator seeded by one draw from tensorforge's default generator."""
    return np.random.default_rng(int(_random.default_generator().integers(0, 2**63 - 1)))


def _take_rows(t, indices):
    """Rows `indices` of t, as a new tensor that does not require grad."""
    index = tensor(indices, dtype=_int64, device=t.device)
    return t.detach()[index]


def _collate(samples):
    """Stacks a list of samples into one batch, field by field (tuples/lists give
    a list, dicts a dict, Tensors/arrays/numbers a Tensor with a new first dim)."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        widths = {len(s) for s in samples}
        if len(widths) != 1:
            raise ValueError(f"DataLoader: samples have different numbers of fields: {sorted(widths)}")
        return [_collate(list(field)) for field in zip(*samples)]
    if isinstance(first, dict):
        keys = first.keys()
        for s in samples:
            if not isinstance(s, dict) or s.keys() != keys:
                raise ValueError("DataLoader: dict samples must all have the same keys")
        return {k: _collate([s[k] for s in samples]) for k in keys}
    if isinstance(first, Tensor):
        if not all(isinstance(s, Tensor) for s in samples):
            raise TypeError("DataLoader: a sample field mixes Tensors with other types")
        return stack([s.detach() for s in samples])
    if isinstance(first, (np.ndarray, np.generic)):
        return from_numpy(np.ascontiguousarray(np.stack([np.asarray(s) for s in samples])))
    if isinstance(first, (bool, np.bool_)):
        return tensor(samples, dtype=_bool)
    if isinstance(first, numbers.Integral):
        return tensor(samples, dtype=_int64)
    if isinstance(first, numbers.Real):
        return tensor(samples, dtype=_float64)
    raise TypeError(
        f"DataLoader: cannot batch samples of type {type(first).__name__}; "
        "samples must be Tensors, NumPy arrays, numbers, or tuples/lists/dicts of them"
    )
