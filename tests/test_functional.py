"""``tfg.nn.functional``: forwards against plain float64 NumPy references,
gradients against finite differences, PyTorch (when importable) for the
semantics, and the argument checks."""
import math

import numpy as np
import pytest

import tensorforge as tfg
import tensorforge.nn.functional as F
from gradcheck import check_gradients

R = np.random.default_rng(7)


def rand(*shape, low=-1.0, high=1.0):
    return R.uniform(low, high, shape)


def t64(a, requires_grad=False):
    return tfg.tensor(np.asarray(a, np.float64), requires_grad=requires_grad)


def close(actual, expected, atol=1e-10, rtol=1e-9):
    np.testing.assert_allclose(actual.detach().numpy() if isinstance(actual, tfg.Tensor)
                               else actual, expected, atol=atol, rtol=rtol)


# ------------------------------------------------------------------- linear
def test_linear_forward_and_gradients():
    x, w, b = rand(2, 3, 4), rand(5, 4), rand(5)
    close(F.linear(t64(x), t64(w), t64(b)), x @ w.T + b)
    close(F.linear(t64(x), t64(w)), x @ w.T)
    check_gradients(lambda x, w, b: F.linear(x, w, b), x, w, b)


def test_linear_errors():
    with pytest.raises(ValueError, match="last input dim"):
        F.linear(t64(rand(2, 3)), t64(rand(5, 4)))
    with pytest.raises(ValueError, match="bias"):
        F.linear(t64(rand(2, 4)), t64(rand(5, 4)), t64(rand(4)))
    with pytest.raises(TypeError, match="'weight'"):
        F.linear(t64(rand(2, 4)), rand(5, 4))


# ------------------------------------------------------------------ dropout
def test_dropout_scaling_and_reproducibility():
    x = tfg.ones(1000, 20, dtype=tfg.float64)
    tfg.manual_seed(3)
    y = F.dropout(x, 0.25).numpy()
    assert set(np.unique(y)) <= {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.01
    tfg.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.25).numpy(), y)
    assert F.dropout(x, 0.25, training=False) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()


def test_dropout_gradient_uses_the_mask():
    x = t64(rand(50, 8), requires_grad=True)
    tfg.manual_seed(0)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    mask = y.detach().numpy() != 0
    np.testing.assert_allclose(x.grad.numpy(), mask * 2.0)


def test_dropout_errors():
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(t64(rand(3)), 1.5)


# --------------------------------------------------------------- layer_norm
def layer_norm_ref(x, k, w=None, b=None, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    out = (x - mean) / np.sqrt(var + eps)
    if w is not None:
        out = out * w
    if b is not None:
        out = out + b
    return out


def test_layer_norm_forward():
    x, w, b = rand(2, 3, 4, 5), rand(4, 5), rand(4, 5)
    close(F.layer_norm(t64(x), (4, 5), t64(w), t64(b)), layer_norm_ref(x, 2, w, b))
    close(F.layer_norm(t64(x), 5, eps=1e-3), layer_norm_ref(x, 1, eps=1e-3))
    out32 = F.layer_norm(tfg.tensor(x.astype(np.float32)), 5)
    assert out32.dtype == tfg.float32
    close(out32, layer_norm_ref(x, 1), atol=1e-5, rtol=1e-4)


def test_layer_norm_gradients():
    x, w, b = rand(3, 2, 4), rand(2, 4), rand(2, 4)
    check_gradients(lambda x, w, b: F.layer_norm(x, (2, 4), w, b), x, w, b)
    check_gradients(lambda x: F.layer_norm(x, (4,)), rand(3, 4))
    check_gradients(lambda x, w: F.layer_norm(x, 4, weight=w), rand(3, 4), rand(4))


def test_layer_norm_is_one_node():
    y = F.layer_norm(t64(rand(2, 3), requires_grad=True), 3)
    assert y.grad_fn.name == "layer_norm"


def test_layer_norm_errors():
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(t64(rand(2, 3)), (2,))
    with pytest.raises(ValueError, match="weight must have shape"):
        F.layer_norm(t64(rand(2, 3)), 3, t64(rand(2)))
