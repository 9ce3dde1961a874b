"""Recurrent layers with PyTorch's names, parameter layout and semantics: ``RNN``,
``LSTM``, ``GRU`` over whole sequences and the single-step ``RNNCell``,
``LSTMCell``, ``GRUCell``.

Parameters are named and shaped as PyTorch's (``weight_ih_l0``,
``bias_hh_l1_reverse``, ...), so state dicts move between the two libraries.
Each LSTM layer and direction is one call of the fused sequence kernel; RNN and
GRU have no fused kernel and are composed per time step from differentiable
operations after one input projection over all time steps.
"""
import math
import warnings

from .. import differentiable as D
from ..autograd import no_grad
from ..tensor import Tensor, empty, zeros
from . import functional as F
from .module import Module, Parameter

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _uniform_init(module, hidden_size):
    """PyTorch's recurrent initialisation: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)),
    drawn from the default generator."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    with no_grad():
        for param in module.parameters():
            param.uniform_(-bound, bound)


def _check_sizes(name, **sizes):
    for arg, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")


def _check_input(name, input, input_size, batched_ndim):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim not in (batched_ndim - 1, batched_ndim):
        raise ValueError(f"{name}: expected input of {batched_ndim - 1} (unbatched) or "
                         f"{batched_ndim} (batched) dims, got shape {list(input.shape)}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{name}: input must be floating point, got {input.dtype}")
    if input.shape[-1] != input_size:
        raise ValueError(f"{name}: input.size(-1) must be equal to input_size {input_size}, "
                         f"got shape {list(input.shape)}")


def _check_dtype(name, input, weight):
    if input.dtype != weight.dtype:
        raise TypeError(f"{name}: input dtype {input.dtype} does not match the parameters' "
                        f"dtype {weight.dtype} (convert one with .to() or module.double())")


def _check_state(name, what, state, expected):
    if not isinstance(state, Tensor):
        raise TypeError(f"{name}: {what} must be a Tensor, got {type(state).__name__}")
    if tuple(state.shape) != tuple(expected):
        raise ValueError(f"{name}: expected {what} of shape {list(expected)}, got "
                         f"{list(state.shape)}")


class RNNBase(Module):
    """Shared parameter layout and forward driver of :class:`RNN`, :class:`LSTM` and
    :class:`GRU` (``mode`` one of "RNN_TANH", "RNN_RELU", "LSTM", "GRU")."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        _check_sizes(name, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout={dropout} has no effect with num_layers=1 (it is "
                          "applied between stacked layers only)", stacklevel=3)
        if proj_size != 0:
            raise NotImplementedError(f"{name}: proj_size is not supported (got {proj_size})")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = 0
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        self._weight_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = [("weight_ih", (gate_size, layer_input)),
                          ("weight_hh", (gate_size, hidden_size))]
                if self.bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                names = []
                for stem, shape in shapes:
                    setattr(self, stem + suffix,
                            Parameter(empty(*shape, dtype=dtype, device=device)))
                    names.append(stem + suffix)
                self._weight_names.append(names)
        self.reset_parameters()

    def reset_parameters(self):
        _uniform_init(self, self.hidden_size)

    @property
    def _directions(self):
        return 2 if self.bidirectional else 1

    def flatten_parameters(self):
        """Kept for PyTorch compatibility: the weights are always used as they are."""

    @property
    def all_weights(self):
        """The parameters grouped per layer and direction, as PyTorch's ``all_weights``."""
        return [[getattr(self, n) for n in names] for names in self._weight_names]

    def _layer_weights(self, index):
        """(w_ih, w_hh, b_ih, b_hh) of layer-direction ``index`` (biases None without bias)."""
        weights = [getattr(self, n) for n in self._weight_names[index]]
        return tuple(weights) if self.bias else (weights[0], weights[1], None, None)

    def _initial_state(self, hx, batch, like, batched):
        """``hx`` checked and made batched, or zeros."""
        name = type(self).__name__
        shape = (self.num_layers * self._directions, batch, self.hidden_size)
        if hx is None:
            return zeros(*shape, dtype=like.dtype, device=like.device)
        expected = shape if batched else (shape[0], shape[2])
        _check_state(name, "hidden state", hx, expected)
        if hx.dtype != like.dtype:
            raise TypeError(f"{name}: hidden state dtype {hx.dtype} does not match input dtype "
                            f"{like.dtype}")
        return hx if batched else hx.unsqueeze(1)

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text

    def _run(self, input, states):
        """Runs all layers over ``input`` (T, N, I) from ``states`` (a list of (L*D, N, H)
        tensors); returns the last layer's output and the final states, stacked."""
        layer_input = input
        finals = [[] for _ in states]
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self._directions):
                index = layer * self._directions + direction
                start = [s[index] for s in states]
                y, ends = self._direction(layer_input, start, self._layer_weights(index),
                                          reverse=direction == 1)
                outputs.append(y)
                for final, end in zip(finals, ends):
                    final.append(end)
            layer_input = outputs[0] if len(outputs) == 1 else D.cat(outputs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        return layer_input, [D.stack(final, 0) for final in finals]

    def _forward_sequence(self, input, hx_parts):
        """Common forward: layout, unbatched input and initial states; ``hx_parts`` is the
        list of given states (each None or a tensor)."""
        name = type(self).__name__
        _check_input(name, input, self.input_size, 3)
        _check_dtype(name, input, self.weight_ih_l0)
        batched = input.ndim == 3
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        states = [self._initial_state(h, input.shape[1], input, batched) for h in hx_parts]
        output, finals = self._run(input, states)
        if not batched:
            output = output.squeeze(1)
            finals = [f.squeeze(1) for f in finals]
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, finals


class LSTM(RNNBase):
    """``torch.nn.LSTM``: ``forward(input, (h_0, c_0)=None) -> (output, (h_n, c_n))``.

    input (T, N, I), (N, T, I) with ``batch_first``, or (T, I) unbatched; states
    (num_layers * directions, N, H). Each layer and direction runs the fused LSTM
    sequence kernel once; the reverse direction runs it on the time-flipped input."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)

    def _direction(self, input, start, weights, reverse):
        h0, c0 = start
        if reverse:
            input = input[::-1]
        y, h, c = D.lstm(input, h0, c0, *weights)
        return (y[::-1] if reverse else y), (h, c)

    def forward(self, input, hx=None):
        if hx is None:
            parts = [None, None]
        elif isinstance(hx, (tuple, list)) and len(hx) == 2:
            parts = list(hx)
        else:
            raise TypeError("LSTM: hx must be None or a tuple (h_0, c_0)")
        output, (h, c) = self._forward_sequence(input, parts)
        return output, (h, c)


class GRU(RNNBase):
    """``torch.nn.GRU``: ``forward(input, h_0=None) -> (output, h_n)``, gates r, z, n:

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)

    def _direction(self, input, start, weights, reverse):
        w_ih, w_hh, b_ih, b_hh = weights
        return _scan(D.linear(input, w_ih, b_ih), start[0], reverse,
                     lambda x_t, h: _gru_step(x_t, h, w_hh, b_hh))

    def forward(self, input, hx=None):
        output, (h,) = self._forward_sequence(input, [hx])
        return output, h


class RNN(RNNBase):
    """``torch.nn.RNN`` (Elman): ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, ``act`` tanh
    or relu (``nonlinearity``); ``forward(input, h_0=None) -> (output, h_n)``."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r} (expected 'tanh' or "
                             "'relu')")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype)

    def _direction(self, input, start, weights, reverse):
        w_ih, w_hh, b_ih, b_hh = weights
        activation = D.tanh if self.nonlinearity == "tanh" else D.relu
        return _scan(D.linear(input, w_ih, b_ih), start[0], reverse,
                     lambda x_t, h: activation(D.add(x_t, D.linear(h, w_hh, b_hh))))

    def forward(self, input, hx=None):
        output, (h,) = self._forward_sequence(input, [hx])
        return output, h

    def extra_repr(self):
        text = super().extra_repr()
        return text + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


def _scan(projected, h, reverse, step):
    """Runs ``h = step(projected[t], h)`` over the time steps (last to first when
    ``reverse``); returns the outputs stacked in time order and ``(h_last,)``."""
    steps = range(projected.shape[0] - 1, -1, -1) if reverse else range(projected.shape[0])
    outputs = []
    for t in steps:
        h = step(projected[t], h)
        outputs.append(h)
    if reverse:
        outputs.reverse()
    return D.stack(outputs, 0), (h,)


def _gru_step(projected, h, w_hh, b_hh):
    """One GRU update from the input projection ``projected`` (N, 3H) and state ``h``."""
    i_r, i_z, i_n = D.chunk(projected, 3, -1)
    h_r, h_z, h_n = D.chunk(D.linear(h, w_hh, b_hh), 3, -1)
    r = D.sigmoid(D.add(i_r, h_r))
    z = D.sigmoid(D.add(i_z, h_z))
    n = D.tanh(D.add(i_n, D.mul(r, h_n)))
    return D.add(n, D.mul(z, D.sub(h, n)))


# ---------------------------------------------------------------------- cells
class RNNCellBase(Module):
    """Parameters ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``/``bias_hh``
    (G*H) of a single-step cell with G gates."""

    def __init__(self, input_size, hidden_size, bias, gates, device=None, dtype=None):
        super().__init__()
        _check_sizes(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bool(bias)
        self.weight_ih = Parameter(empty(gates * hidden_size, input_size, dtype=dtype,
                                         device=device))
        self.weight_hh = Parameter(empty(gates * hidden_size, hidden_size, dtype=dtype,
                                         device=device))
        if self.bias:
            self.bias_ih = Parameter(empty(gates * hidden_size, dtype=dtype, device=device))
            self.bias_hh = Parameter(empty(gates * hidden_size, dtype=dtype, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        _uniform_init(self, self.hidden_size)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def _state(self, state, input, what):
        """``state`` checked against ``input`` (batched or not), or zeros."""
        name = type(self).__name__
        expected = input.shape[:-1] + (self.hidden_size,)
        if state is None:
            return zeros(*expected, dtype=input.dtype, device=input.device)
        _check_state(name, what, state, expected)
        if state.dtype != input.dtype:
            raise TypeError(f"{name}: {what} dtype {state.dtype} does not match input dtype "
                            f"{input.dtype}")
        return state


class LSTMCell(RNNCellBase):
    """``torch.nn.LSTMCell``: ``forward(input, (h, c)=None) -> (h', c')`` on the fused
    cell kernel; input (N, I) or (I,)."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        _check_input("LSTMCell", input, self.input_size, 2)
        _check_dtype("LSTMCell", input, self.weight_ih)
        if hx is None:
            hx = (None, None)
        elif not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError("LSTMCell: hx must be None or a tuple (h, c)")
        h = self._state(hx[0], input, "h")
        c = self._state(hx[1], input, "c")
        return D.lstm_cell(input, h, c, self.weight_ih, self.weight_hh, self.bias_ih,
                           self.bias_hh)


class GRUCell(RNNCellBase):
    """``torch.nn.GRUCell``: ``forward(input, h=None) -> h'`` with :class:`GRU`'s update."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        _check_input("GRUCell", input, self.input_size, 2)
        _check_dtype("GRUCell", input, self.weight_ih)
        h = self._state(hx, input, "hx")
        return _gru_step(D.linear(input, self.weight_ih, self.bias_ih), h, self.weight_hh,
                         self.bias_hh)


class RNNCell(RNNCellBase):
    """``torch.nn.RNNCell``: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, act tanh or relu."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r} (expected 'tanh' "
                             "or 'relu')")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input, hx=None):
        _check_input("RNNCell", input, self.input_size, 2)
        _check_dtype("RNNCell", input, self.weight_ih)
        h = self._state(hx, input, "hx")
        activation = D.tanh if self.nonlinearity == "tanh" else D.relu
        return activation(D.add(D.linear(input, self.weight_ih, self.bias_ih),
                                D.linear(h, self.weight_hh, self.bias_hh)))


__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]
