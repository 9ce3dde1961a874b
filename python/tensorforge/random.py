"""The default random generator: ``tfg.manual_seed(seed)`` reseeds it.

Everything random in tensorforge (rand, randn, dropout, parameter
initialisation, DataLoader shuffling without its own seed) draws from this
one generator, so a seed makes a whole training run reproducible.
"""
import operator

import numpy as np

_state = {"generator": np.random.default_rng()}


def manual_seed(seed):
    """Seeds the default generator; returns it."""
    if isinstance(seed, bool):
        raise TypeError("manual_seed: seed must be an integer, got bool")
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TypeError(f"manual_seed: seed must be an integer, got {type(seed).__name__}") from None
    if seed < 0:
        raise ValueError(f"manual_seed: seed must be >= 0, got {seed}")
    _state["generator"] = np.random.default_rng(seed)
    return _state["generator"]


def default_generator():
    """The ``numpy.random.Generator`` all tensorforge randomness draws from."""
    return _state["generator"]


__all__ = ["manual_seed", "default_generator"]
