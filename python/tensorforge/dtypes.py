"""tensorforge dtypes: ``tfg.float32``, ``float64``, ``int64``, ``int32``, ``bool``.

Each is a small immutable object that knows its NumPy equivalent; anything
that takes a dtype also accepts a NumPy dtype, a NumPy scalar type or a name.
"""
import numpy as np


class dtype:
    """A tensor element type. ``d.numpy`` is the NumPy dtype it stores as."""
    __slots__ = ("name", "numpy", "is_floating_point", "itemsize")

    def __init__(self, name):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "numpy", np.dtype(name))
        object.__setattr__(self, "is_floating_point", np.dtype(name).kind == "f")
        object.__setattr__(self, "itemsize", np.dtype(name).itemsize)

    def __setattr__(self, key, value):
        raise AttributeError("tensorforge dtypes are immutable")

    def __repr__(self):
        return f"tensorforge.{self.name}"

    def __reduce__(self):
        return (as_dtype, (self.name,))


float32 = dtype("float32")
float64 = dtype("float64")
int64 = dtype("int64")
int32 = dtype("int32")
bool_ = dtype("bool")
uint8 = dtype("uint8")

_BY_NUMPY = {d.numpy: d for d in (float32, float64, int64, int32, bool_, uint8)}


def as_dtype(value):
    """The tensorforge dtype for a tfg dtype, NumPy dtype, scalar type or name."""
    if isinstance(value, dtype):
        return value
    try:
        np_dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"not a dtype: {value!r}") from None
    found = _BY_NUMPY.get(np_dtype)
    if found is None:
        raise TypeError(f"dtype {np_dtype} is not supported (use float32, float64, int64, int32, "
                        f"bool or uint8)")
    return found


def from_numpy_dtype(np_dtype):
    """The tfg dtype of a NumPy array's dtype (TypeError for unsupported ones)."""
    found = _BY_NUMPY.get(np_dtype)
    if found is None:
        return as_dtype(np_dtype)
    return found


__all__ = ["dtype", "float32", "float64", "int64", "int32", "bool_", "uint8", "as_dtype"]
