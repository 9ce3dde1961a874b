"""Recurrent layers (nn.RNN, LSTM, GRU and their cells): a NumPy reference of the
GRU and LSTM equations, float64 gradient checks, and PyTorch with identical
weights (state dicts loaded across) when torch is importable."""
import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import nn
from gradcheck import check_gradients


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _numpy(t):
    return t.detach().numpy()


def _bind(module, names, tensors):
    """Makes ``module`` read the given tensors for its parameters (so a gradient check can
    differentiate with respect to them)."""
    for name, t in zip(names, tensors):
        owner = module
        *path, leaf = name.split(".")
        for part in path:
            owner = getattr(owner, part)
        object.__setattr__(owner, leaf, t)


def _check_module_gradients(module, inputs, call):
    """check_gradients of ``call(module, *inputs)`` with respect to the inputs and every
    parameter of ``module`` (float64)."""
    module.double()
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().numpy().copy() for p in module.parameters()]
    count = len(inputs)

    def fn(*leaves):
        _bind(module, names, leaves[count:])
        return call(module, *leaves[:count])

    check_gradients(fn, *inputs, *params)


# -------------------------------------------------------------- NumPy references
def _gru_reference(x, h, w_ih, w_hh, b_ih, b_hh):
    outputs = []
    for x_t in x:
        gi = x_t @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        i_r, i_z, i_n = np.split(gi, 3, axis=-1)
        h_r, h_z, h_n = np.split(gh, 3, axis=-1)
        r = _sigmoid(i_r + h_r)
        z = _sigmoid(i_z + h_z)
        n = np.tanh(i_n + r * h_n)
        h = (1 - z) * n + z * h
        outputs.append(h)
    return np.stack(outputs), h


def _lstm_reference(x, h, c, w_ih, w_hh, b_ih, b_hh):
    outputs = []
    for x_t in x:
        gates = x_t @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = np.split(gates, 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs), h, c


def test_gru_matches_numpy_equations():
    tfg.manual_seed(0)
    gru = nn.GRU(3, 4, dtype=tfg.float64)
    rng = np.random.default_rng(1)
    x, h0 = rng.standard_normal((5, 2, 3)), rng.standard_normal((1, 2, 4))
    out, h = gru(tfg.tensor(x), tfg.tensor(h0))
    ref_out, ref_h = _gru_reference(x, h0[0], *(_numpy(p) for p in gru.parameters()))
    np.testing.assert_allclose(_numpy(out), ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_numpy(h)[0], ref_h, rtol=1e-12, atol=1e-12)


def test_bidirectional_gru_reverse_direction_runs_backwards_in_time():
    tfg.manual_seed(0)
    gru = nn.GRU(3, 4, bidirectional=True, dtype=tfg.float64)
    x = np.random.default_rng(2).standard_normal((6, 2, 3))
    out, h = gru(tfg.tensor(x))
    weights = [_numpy(getattr(gru, f"{w}_l0_reverse"))
               for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    ref_out, ref_h = _gru_reference(x[::-1], np.zeros((2, 4)), *weights)
    np.testing.assert_allclose(_numpy(out)[..., 4:], ref_out[::-1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_numpy(h)[1], ref_h, rtol=1e-12, atol=1e-12)


def test_lstm_matches_numpy_equations_batch_first_two_layers():
    tfg.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True, dtype=tfg.float64)
    x = np.random.default_rng(3).standard_normal((2, 5, 3))
    out, (h, c) = lstm(tfg.tensor(x))
    layer0 = [_numpy(p) for p in list(lstm.parameters())[:4]]
    layer1 = [_numpy(p) for p in list(lstm.parameters())[4:]]
    zeros = np.zeros((2, 4))
    y0, h0, c0 = _lstm_reference(x.transpose(1, 0, 2), zeros, zeros, *layer0)
    y1, h1, c1 = _lstm_reference(y0, zeros, zeros, *layer1)
    np.testing.assert_allclose(_numpy(out), y1.transpose(1, 0, 2), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_numpy(h), np.stack([h0, h1]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_numpy(c), np.stack([c0, c1]), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------- layout and init
def test_parameter_names_shapes_and_initialisation():
    tfg.manual_seed(0)
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    shapes = {n: p.shape for n, p in lstm.named_parameters()}
    assert list(shapes)[:8] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                "weight_ih_l0_reverse", "weight_hh_l0_reverse",
                                "bias_ih_l0_reverse", "bias_hh_l0_reverse"]
    assert shapes["weight_ih_l0"] == (20, 3)
    assert shapes["weight_ih_l1_reverse"] == (20, 10)
    assert shapes["weight_hh_l1"] == (20, 5)
    assert len(shapes) == 16
    bound = 1 / np.sqrt(5)
    for p in lstm.parameters():
        assert p.dtype == tfg.float32 and np.all(np.abs(_numpy(p)) <= bound)
    tfg.manual_seed(0)
    again = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    for a, b in zip(lstm.parameters(), again.parameters()):
        np.testing.assert_array_equal(_numpy(a), _numpy(b))
    assert [n for n, _ in nn.GRU(2, 3, bias=False).named_parameters()] == \
        ["weight_ih_l0", "weight_hh_l0"]
    assert nn.GRU(2, 3).weight_ih_l0.shape == (9, 2)
    assert nn.RNN(2, 3).weight_hh_l0.shape == (3, 3)
    assert [n for n, _ in nn.LSTMCell(2, 3).named_parameters()] == \
        ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


def test_unbatched_input_and_states():
    tfg.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    x = tfg.randn(5, 3)
    out, (h, c) = lstm(x)
    assert out.shape == (5, 8) and h.shape == (4, 4) and c.shape == (4, 4)
    batched, (hb, cb) = lstm(x.unsqueeze(0))
    np.testing.assert_allclose(_numpy(out), _numpy(batched)[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_numpy(h), _numpy(hb)[:, 0], rtol=1e-6, atol=1e-7)
    gru = nn.GRU(3, 4)
    out, h = gru(x, tfg.zeros(1, 4))
    assert out.shape == (5, 4) and h.shape == (1, 4)
    cell = nn.GRUCell(3, 4)
    assert cell(x[0]).shape == (4,)


def test_bad_input_is_a_clear_error():
    lstm = nn.LSTM(3, 4)
    with pytest.raises(ValueError, match="input_size 3"):
        lstm(tfg.randn(5, 2, 4))
    with pytest.raises(ValueError, match="hidden state"):
        lstm(tfg.randn(5, 2, 3), (tfg.zeros(1, 3, 4), tfg.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="dims"):
        lstm(tfg.randn(5, 2, 3, 1))
    with pytest.raises(TypeError, match="tuple"):
        lstm(tfg.randn(5, 2, 3), tfg.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        nn.GRU(3, 0)
    with pytest.raises(TypeError, match="dtype"):
        lstm(tfg.randn(5, 2, 3, dtype=tfg.float64))
    with pytest.raises(TypeError, match="dtype"):
        nn.LSTMCell(3, 4)(tfg.randn(2, 3, dtype=tfg.float64))
    with pytest.raises(ValueError, match="hx"):
        nn.GRUCell(3, 4)(tfg.randn(2, 3), tfg.zeros(3, 4))


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="num_layers=1"):
        nn.LSTM(3, 4, dropout=0.2)


def test_dropout_between_layers_only_in_training():
    tfg.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=2, dropout=0.5)
    x = tfg.randn(4, 2, 3)
    gru.eval()
    first, _ = gru(x)
    second, _ = gru(x)
    np.testing.assert_array_equal(_numpy(first), _numpy(second))
    gru.train()
    tfg.manual_seed(5)
    trained, _ = gru(x)
    tfg.manual_seed(5)
    repeated, _ = gru(x)
    np.testing.assert_array_equal(_numpy(trained), _numpy(repeated))
    assert not np.allclose(_numpy(trained), _numpy(first))


# ------------------------------------------------------------ gradient checks
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_sequence_layer_gradients(kind):
    tfg.manual_seed(0)
    layer = getattr(nn, kind)(2, 2, num_layers=2, bidirectional=True, batch_first=True)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 2))
    h0 = rng.standard_normal((4, 2, 2))
    if kind == "LSTM":
        c0 = rng.standard_normal((4, 2, 2))
        _check_module_gradients(layer, [x, h0, c0],
                                lambda m, x, h, c: (lambda o: (o[0], *o[1]))(m(x, (h, c))))
    else:
        _check_module_gradients(layer, [x, h0], lambda m, x, h: m(x, h))


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cell_gradients(kind):
    tfg.manual_seed(0)
    cell = getattr(nn, kind)(3, 2)
    rng = np.random.default_rng(5)
    x, h = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))
    if kind == "LSTMCell":
        c = rng.standard_normal((2, 2))
        _check_module_gradients(cell, [x, h, c], lambda m, x, h, c: m(x, (h, c)))
    else:
        _check_module_gradients(cell, [x, h], lambda m, x, h: m(x, h))


# ----------------------------------------------------------------- PyTorch
def _to_torch(ours, theirs, torch):
    own = ours.state_dict()
    assert list(own) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in own.items()})


def _compare_grads(ours, theirs, rtol, atol):
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(_numpy(p.grad), q.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=name)


CONFIGS = [dict(), dict(num_layers=2, bidirectional=True), dict(batch_first=True, bias=False),
           dict(num_layers=3, batch_first=True, bidirectional=True, dropout=0.3)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(c) or "default")
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "RNN-relu"])
def test_sequence_layers_match_pytorch(kind, config):
    torch = pytest.importorskip("torch")
    name, _, nonlinearity = kind.partition("-")
    extra = {"nonlinearity": nonlinearity} if nonlinearity else {}
    tfg.manual_seed(0)
    ours = getattr(nn, name)(3, 5, **config, **extra)
    theirs = getattr(torch.nn, name)(3, 5, **config, **extra)
    _to_torch(ours, theirs, torch)
    ours.eval()
    theirs.eval()
    directions = 2 if config.get("bidirectional") else 1
    layers = config.get("num_layers", 1)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 3) if config.get("batch_first") else (4, 2, 3))
    states = [rng.standard_normal((layers * directions, 2, 5)).astype(np.float32)
              for _ in range(2 if name == "LSTM" else 1)]
    x = x.astype(np.float32)
    our_x = tfg.tensor(x, requires_grad=True)
    our_states = [tfg.tensor(s, requires_grad=True) for s in states]
    their_x = torch.tensor(x, requires_grad=True)
    their_states = [torch.tensor(s, requires_grad=True) for s in states]
    pack = tuple if name == "LSTM" else (lambda s: s[0])
    out, final = ours(our_x, pack(our_states))
    ref, ref_final = theirs(their_x, pack(their_states))
    finals = final if name == "LSTM" else (final,)
    ref_finals = ref_final if name == "LSTM" else (ref_final,)
    np.testing.assert_allclose(_numpy(out), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    for a, b in zip(finals, ref_finals):
        np.testing.assert_allclose(_numpy(a), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    weights = rng.standard_normal(out.shape).astype(np.float32)
    loss = (out * tfg.tensor(weights)).sum() + sum((f * f).sum() for f in finals)
    ref_loss = (ref * torch.tensor(weights)).sum() + sum((f * f).sum() for f in ref_finals)
    loss.backward()
    ref_loss.backward()
    np.testing.assert_allclose(_numpy(our_x.grad), their_x.grad.numpy(), rtol=1e-4, atol=1e-5)
    for a, b in zip(our_states, their_states):
        np.testing.assert_allclose(_numpy(a.grad), b.grad.numpy(), rtol=1e-4, atol=1e-5)
    _compare_grads(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_unbatched_matches_pytorch(kind):
    torch = pytest.importorskip("torch")
    tfg.manual_seed(0)
    ours = getattr(nn, kind)(3, 4, num_layers=2, bidirectional=True, dtype=tfg.float64)
    theirs = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=True).double()
    _to_torch(ours, theirs, torch)
    x = np.random.default_rng(7).standard_normal((5, 3))
    tfg.manual_seed(1)
    ours = getattr(nn, kind)(3, 4, num_layers=2, bidirectional=True, dtype=tfg.float64)
    ours.load_state_dict(theirs.state_dict())
    out, final = ours(tfg.tensor(x))
    ref, ref_final = theirs(torch.tensor(x))
    np.testing.assert_allclose(_numpy(out), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    first = final[0] if kind == "LSTM" else final
    ref_first = ref_final[0] if kind == "LSTM" else ref_final
    np.testing.assert_allclose(_numpy(first), ref_first.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell"])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_pytorch(kind, batched):
    torch = pytest.importorskip("torch")
    tfg.manual_seed(0)
    ours = getattr(nn, kind)(3, 4, dtype=tfg.float64)
    theirs = getattr(torch.nn, kind)(3, 4).double()
    _to_torch(ours, theirs, torch)
    rng = np.random.default_rng(8)
    shape = (2,) if batched else ()
    x, h, c = (rng.standard_normal(shape + (n,)) for n in (3, 4, 4))
    our_x, their_x = tfg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    if kind == "LSTMCell":
        out = ours(our_x, (tfg.tensor(h), tfg.tensor(c)))
        ref = theirs(their_x, (torch.tensor(h), torch.tensor(c)))
        (out[0].sum() + (out[1] * out[1]).sum()).backward()
        (ref[0].sum() + (ref[1] * ref[1]).sum()).backward()
        out, ref = out[1], ref[1]
    else:
        out = ours(our_x, tfg.tensor(h))
        ref = theirs(their_x, torch.tensor(h))
        (out * out).sum().backward()
        (ref * ref).sum().backward()
    np.testing.assert_allclose(_numpy(out), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_numpy(our_x.grad), their_x.grad.numpy(), rtol=1e-10, atol=1e-12)
    _compare_grads(ours, theirs, rtol=1e-10, atol=1e-12)
