"""``tfg.nn`` layers, losses and ``tfg.nn.init``: outputs and gradients against
NumPy and (when importable) PyTorch with identical weights, PyTorch's default
initialisation, running statistics, reprs, state dicts and argument checks."""
import math

import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import nn
from tensorforge.nn import init

R = np.random.default_rng(11)


def rand(*shape, low=-1.0, high=1.0):
    return R.uniform(low, high, shape)


def copy_params(tfg_module, torch_module):
    """Copies the PyTorch module's parameters and buffers into the tfg module."""
    state = {k: v.detach().numpy().copy() for k, v in torch_module.state_dict().items()}
    tfg_module.load_state_dict(state)


def compare_with_torch(torch, module, torch_module, x, atol=1e-5, rtol=1e-5):
    """Output, input gradient and parameter gradients of both modules on ``x``."""
    copy_params(module, torch_module)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch_module(tx)
    xx = tfg.tensor(x, requires_grad=True)
    y = module(xx)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), atol=atol, rtol=rtol)
    g = R.standard_normal(ty.shape).astype(x.dtype)
    ty.backward(torch.from_numpy(g))
    y.backward(tfg.from_numpy(g))
    np.testing.assert_allclose(xx.grad.numpy(), tx.grad.numpy(), atol=atol, rtol=rtol)
    torch_params = dict(torch_module.named_parameters())
    for name, p in module.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), torch_params[name].grad.numpy(), atol=atol,
                                   rtol=rtol, err_msg=name)


# -------------------------------------------------------------------- init
def test_calculate_gain():
    assert init.calculate_gain("linear") == 1
    assert init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError, match="unsupported"):
        init.calculate_gain("swish")


def test_init_bounds_and_statistics():
    tfg.manual_seed(0)
    w = tfg.empty(200, 100, 3, 3)
    fan_in, fan_out = 900, 1800
    init.kaiming_uniform_(w, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / fan_in)
    assert np.abs(w.numpy()).max() <= bound and np.abs(w.numpy()).max() > 0.99 * bound
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / fan_out), rel=0.01)
    init.xavier_uniform_(w, gain=2.0)
    bound = 2 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(w.numpy()).max() <= bound and np.abs(w.numpy()).max() > 0.99 * bound
    init.xavier_normal_(w)
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.01)
    init.normal_(w, 3.0, 0.5)
    assert w.numpy().mean() == pytest.approx(3.0, abs=0.01)
    assert w.numpy().std() == pytest.approx(0.5, rel=0.01)
    init.uniform_(w, -2, -1)
    assert w.numpy().min() >= -2 and w.numpy().max() <= -1
    assert (init.zeros_(w).numpy() == 0).all() and (init.ones_(w).numpy() == 1).all()
    assert (init.constant_(w, 0.25).numpy() == 0.25).all()


def test_init_on_parameters_is_untracked_and_seeded():
    p = nn.Parameter(tfg.empty(4, 5))
    tfg.manual_seed(5)
    out = init.xavier_uniform_(p)
    assert out is p and p.is_leaf and p.grad_fn is None
    first = p.detach().numpy().copy()
    tfg.manual_seed(5)
    init.xavier_uniform_(p)
    np.testing.assert_array_equal(p.detach().numpy(), first)


def test_init_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(tfg.empty(5))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform_(tfg.empty(3, 4), mode="fan_avg")
    with pytest.raises(TypeError, match="floating-point"):
        init.normal_(tfg.zeros(3, dtype=tfg.int64))


# ------------------------------------------------------------------ Linear
def test_linear_default_init_and_forward():
    tfg.manual_seed(1)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)   # kaiming_uniform_(a=sqrt(5)) gives the same bound as the bias
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.95 * bound
    assert w.dtype == np.float32 and layer.weight.requires_grad
    x = rand(7, 400).astype(np.float32)
    np.testing.assert_allclose(layer(tfg.tensor(x)).detach().numpy(), x @ w.T + b, atol=1e-5)
    assert repr(layer) == "Linear(in_features=400, out_features=300, bias=True)"
    no_bias = nn.Linear(3, 2, bias=False, dtype=tfg.float64)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    assert no_bias.weight.dtype == tfg.float64


def test_linear_against_torch():
    torch = pytest.importorskip("torch")
    compare_with_torch(torch, nn.Linear(4, 3), torch.nn.Linear(4, 3), rand(2, 5, 4).astype(np.float32))


# --------------------------------------------------------------- LayerNorm
def test_layer_norm_module():
    layer = nn.LayerNorm((3, 4), dtype=tfg.float64)
    assert (layer.weight.detach().numpy() == 1).all() and (layer.bias.detach().numpy() == 0).all()
    assert repr(layer) == "LayerNorm((3, 4), eps=1e-05, elementwise_affine=True)"
    assert list(nn.LayerNorm(4, elementwise_affine=False).parameters()) == []
    assert nn.LayerNorm(4, bias=False).bias is None
    x = rand(2, 3, 4)
    mean = x.mean(axis=(1, 2), keepdims=True)
    ref = (x - mean) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(layer(tfg.tensor(x)).detach().numpy(), ref, atol=1e-10)


def test_layer_norm_against_torch():
    torch = pytest.importorskip("torch")
    module, reference = nn.LayerNorm(6, eps=1e-3), torch.nn.LayerNorm(6, eps=1e-3)
    with torch.no_grad():
        reference.weight.uniform_(0.5, 1.5)
        reference.bias.uniform_(-1, 1)
    compare_with_torch(torch, module, reference, rand(4, 3, 6).astype(np.float32))


# ----------------------------------------------------------------- Dropout
def test_dropout_module_modes():
    layer = nn.Dropout(0.3)
    assert repr(layer) == "Dropout(p=0.3, inplace=False)"
    x = tfg.ones(100, 100)
    tfg.manual_seed(2)
    y = layer(x).numpy()
    assert abs((y == 0).mean() - 0.3) < 0.02
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(-0.1)
