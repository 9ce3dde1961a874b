"""``tfg.nn``: layers (modules), their functional forms and initialisers, with
PyTorch's names and semantics."""
from .container import ModuleList, Sequential
from .module import Module, Parameter

__all__ = ["Module", "Parameter", "Sequential", "ModuleList"]
