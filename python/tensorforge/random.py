"""The default random generator: ``tfg.manual_seed(seed)`` reseeds it.

Everything random in tensorforge (rand, randn, dropout, parameter
initialisation, DataLoader shuffling without its own seed) draws from this
one generator, so a seed makes a whole training run reproducible.
"""
import numpy as np

from ._args import integer_in_range

_state = {"generator": np.random.default_rng()}


def manual_seed(seed):
    """Seeds the default generator; returns it."""
    seed = integer_in_range(seed, "manual_seed: seed", low=0)
    _state["generator"] = np.random.default_rng(seed)
    return _state["generator"]


def default_generator():
    """The ``numpy.random.Generator`` all tensorforge randomness draws from."""
    return _state["generator"]


__all__ = ["manual_seed", "default_generator"]
