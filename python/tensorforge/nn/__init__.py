"""``tfg.nn``: layers (modules), their functional forms and initialisers, with
PyTorch's names and semantics."""
from . import functional, init
from .container import ModuleList, Sequential
from .dropout import Dropout
from .linear import Identity, Linear
from .module import Module, Parameter
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm

__all__ = ["functional", "init", "Module", "Parameter", "Sequential", "ModuleList", "Identity",
           "Linear", "Dropout", "LayerNorm", "BatchNorm1d", "BatchNorm2d"]
