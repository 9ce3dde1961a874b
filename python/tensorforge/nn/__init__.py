"""``tfg.nn``: layers (modules), their functional forms and initialisers, with
PyTorch's names and semantics."""
from .container import ModuleList, Sequential
from .module import Module, Parameter
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase

__all__ = ["Module", "Parameter", "Sequential", "ModuleList",
           "RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]
