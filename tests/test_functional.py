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
    with pytest.raises(TypeError, match="'weight' has dtype float32"):
        F.layer_norm(t64(rand(2, 3)), 3, tfg.ones(3))


# -------------------------------------------------- kernels behind wrappers
def conv2d_ref(x, w, b, stride, padding):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out + b[None, :, None, None]


def test_conv2d_and_pooling_wrappers():
    x, w, b = rand(2, 3, 6, 5), rand(4, 3, 3, 3), rand(4)
    close(F.conv2d(t64(x), t64(w), t64(b), stride=2, padding=1), conv2d_ref(x, w, b, 2, 1))
    assert F.conv2d(t64(x), t64(w), padding="same").shape == (2, 4, 6, 5)
    check_gradients(lambda x, w, b: F.conv2d(x, w, b, padding=1), rand(1, 2, 4, 4),
                    rand(3, 2, 3, 3), rand(3))
    pooled = x[:, :, :6, :4].reshape(2, 3, 3, 2, 2, 2)
    close(F.max_pool2d(t64(x), 2), pooled.max(axis=(3, 5)))
    close(F.avg_pool2d(t64(x), 2), pooled.mean(axis=(3, 5)))
    close(F.adaptive_avg_pool2d(t64(x), 1), x.mean(axis=(2, 3), keepdims=True))
    out, indices = F.max_pool2d(t64(x), 2, return_indices=True)
    assert indices.dtype == tfg.int64 and indices.shape == out.shape
    check_gradients(lambda x: F.max_pool2d(x, 2, stride=1), rand(1, 2, 4, 4))
    check_gradients(lambda x: F.avg_pool2d(x, 3, 2, padding=1), rand(1, 2, 5, 5))
    check_gradients(lambda x: F.adaptive_avg_pool2d(x, (2, 3)), rand(1, 2, 5, 4))


# -------------------------------------------------------------- activations
def test_activations_forward():
    x = rand(3, 4) * 4
    close(F.relu(t64(x)), np.maximum(x, 0))
    close(F.leaky_relu(t64(x), 0.2), np.where(x > 0, x, 0.2 * x))
    close(F.sigmoid(t64(x)), 1 / (1 + np.exp(-x)))
    close(F.tanh(t64(x)), np.tanh(x))
    erf = np.vectorize(math.erf)
    close(F.gelu(t64(x)), 0.5 * x * (1 + erf(x / math.sqrt(2))))
    close(F.silu(t64(x)), x / (1 + np.exp(-x)))
    close(F.softplus(t64(x), beta=2, threshold=3),
          np.where(2 * x > 3, x, np.log1p(np.exp(2 * x)) / 2))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    close(F.softmax(t64(x), dim=1), e / e.sum(axis=1, keepdims=True))
    close(F.log_softmax(t64(x), -1), np.log(e / e.sum(axis=1, keepdims=True)))
    assert F.softmax(tfg.tensor(x.astype(np.float32)), 1, dtype=tfg.float64).dtype == tfg.float64
    with pytest.warns(UserWarning, match="Implicit dimension"):
        close(F.softmax(t64(x)), e / e.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("fn", [F.silu, lambda x: F.softplus(x, 1.5, 2.0), F.gelu,
                                lambda x: F.leaky_relu(x, 0.1), lambda x: F.softmax(x, 0)])
def test_activation_gradients(fn):
    check_gradients(fn, rand(3, 4) * 3)


# --------------------------------------------------------------- batch_norm
def batch_norm_ref(x, w, b, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w.reshape(shape) + b.reshape(shape), mean, var


def test_batch_norm_training_updates_running_stats():
    x, w, b = rand(4, 3, 5, 2), rand(3), rand(3)
    running_mean, running_var = t64(np.zeros(3)), t64(np.ones(3))
    out = F.batch_norm(t64(x), running_mean, running_var, t64(w), t64(b), training=True,
                       momentum=0.3)
    expected, mean, var = batch_norm_ref(x, w, b)
    close(out, expected)
    count = x.size / 3
    close(running_mean, 0.3 * mean.reshape(-1))
    close(running_var, 0.7 + 0.3 * var.reshape(-1) * count / (count - 1))


def test_batch_norm_eval_uses_running_stats():
    x, w, b = rand(4, 3), rand(3), rand(3)
    rm, rv = rand(3), rand(3, low=0.5, high=2)
    out = F.batch_norm(t64(x), t64(rm), t64(rv), t64(w), t64(b), eps=1e-3)
    close(out, (x - rm) / np.sqrt(rv + 1e-3) * w + b)


def test_batch_norm_gradients():
    check_gradients(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                    rand(4, 3, 2), rand(3), rand(3))
    check_gradients(lambda x: F.batch_norm(x, None, None, training=True), rand(5, 2))
    rm, rv = t64(rand(3)), t64(rand(3, low=0.5, high=2))
    check_gradients(lambda x, w, b: F.batch_norm(x, rm, rv, w, b), rand(4, 3, 2), rand(3),
                    rand(3))


def test_batch_norm_errors():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(t64(rand(1, 3)), None, None, training=True)
    with pytest.raises(ValueError, match="running_mean must have shape"):
        F.batch_norm(t64(rand(2, 3)), t64(rand(4)), t64(rand(3)))
    with pytest.raises(ValueError, match="required when not training"):
        F.batch_norm(t64(rand(2, 3)), None, None)


# ---------------------------------------------------------------- embedding
def test_embedding_forward_backward_and_padding():
    weight = rand(6, 3)
    idx = np.array([[1, 4, 1], [0, 5, 1]])
    close(F.embedding(tfg.tensor(idx), t64(weight)), weight[idx])
    w = t64(weight, requires_grad=True)
    out = F.embedding(tfg.tensor(idx), w, padding_idx=1)
    assert out.grad_fn.name == "embedding"
    g = rand(2, 3, 3)
    out.backward(tfg.from_numpy(g))
    expected = np.zeros((6, 3))
    np.add.at(expected, idx.reshape(-1), g.reshape(-1, 3))
    expected[1] = 0
    close(w.grad, expected)
    check_gradients(lambda w: F.embedding(tfg.tensor(idx), w), weight)


def test_embedding_max_norm_renormalises_rows_in_place():
    weight = t64(np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]]))
    out = F.embedding(tfg.tensor([0, 1]), weight, max_norm=1.0)
    np.testing.assert_allclose(np.linalg.norm(out.numpy(), axis=1), [1.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(weight.numpy()[2], [6.0, 8.0])


def test_embedding_errors():
    with pytest.raises(TypeError, match="integer tensor"):
        F.embedding(t64([0.0, 1.0]), t64(rand(3, 2)))
    with pytest.raises(IndexError, match="index 3 is out of range"):
        F.embedding(tfg.tensor([0, 3]), t64(rand(3, 2)))
    with pytest.raises(ValueError, match="padding_idx"):
        F.embedding(tfg.tensor([0]), t64(rand(3, 2)), padding_idx=5)


# ---------------------------------------------------------------- attention
def attention_ref(q, k, v, mask=None):
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True) @ v


def test_scaled_dot_product_attention():
    q, k, v = rand(2, 3, 4), rand(2, 5, 4), rand(2, 5, 2)
    close(F.scaled_dot_product_attention(t64(q), t64(k), t64(v)), attention_ref(q, k, v))
    causal = np.tril(np.ones((3, 5), bool))
    close(F.scaled_dot_product_attention(t64(q), t64(k), t64(v), is_causal=True),
          attention_ref(q, k, v, causal))

    def with_dropout(q, k, v):
        tfg.manual_seed(4)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.3, is_causal=True)
    check_gradients(with_dropout, q, k, v)
    tfg.manual_seed(4)
    dropped = with_dropout(t64(q), t64(k), t64(v))
    assert dropped.shape == (2, 3, 2)
    assert not np.allclose(dropped.numpy(), attention_ref(q, k, v, causal))


# ------------------------------------------------------------------- losses
REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda a: a}


@pytest.mark.parametrize("reduction", list(REDUCE))
def test_regression_losses(reduction):
    x, y = rand(3, 4), rand(3, 4)
    close(F.mse_loss(t64(x), t64(y), reduction=reduction), REDUCE[reduction]((x - y) ** 2))
    close(F.l1_loss(t64(x), t64(y), reduction=reduction), REDUCE[reduction](np.abs(x - y)))
    check_gradients(lambda x, y: F.mse_loss(x, y, reduction=reduction), x, y)
    check_gradients(lambda x, y: F.l1_loss(x, y, reduction=reduction), x, y)


@pytest.mark.parametrize("reduction", list(REDUCE))
def test_binary_cross_entropies(reduction):
    x, t, w = rand(3, 4, low=0.05, high=0.95), rand(3, 4, low=0, high=1), rand(4, low=0, high=2)
    expected = -w * (t * np.log(x) + (1 - t) * np.log(1 - x))
    close(F.binary_cross_entropy(t64(x), t64(t), t64(w), reduction), REDUCE[reduction](expected))
    check_gradients(lambda x, t: F.binary_cross_entropy(x, t, reduction=reduction), x, t)
    z, pw = rand(3, 4) * 5, rand(4, low=0.5, high=3)
    s = 1 / (1 + np.exp(-z))
    expected = -w * (pw * t * np.log(s) + (1 - t) * np.log(1 - s))
    close(F.binary_cross_entropy_with_logits(t64(z), t64(t), t64(w), reduction, t64(pw)),
          REDUCE[reduction](expected))
    check_gradients(lambda z, t: F.binary_cross_entropy_with_logits(
        z, t, reduction=reduction, pos_weight=t64(pw)), z, t)
    check_gradients(lambda z, t: F.binary_cross_entropy_with_logits(z, t, reduction=reduction),
                    z, t)


def test_binary_cross_entropy_extremes():
    x = t64([0.0, 1.0, 0.5], requires_grad=True)
    loss = F.binary_cross_entropy(x, t64([1.0, 0.0, 1.0]), reduction="none")
    close(loss, [100.0, 100.0, math.log(2)])
    loss.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    big = F.binary_cross_entropy_with_logits(t64([1000.0, -1000.0]), t64([0.0, 1.0]),
                                             reduction="none")
    close(big, [1000.0, 1000.0])


def nll_ref(logp, target, weight=None, ignore_index=-100, reduction="mean"):
    """logp (N, C, ...) and target (N, ...) by explicit loops over the samples."""
    logp = np.moveaxis(logp, 1, -1).reshape(-1, logp.shape[1])
    flat = target.reshape(-1)
    losses, weights = np.zeros(flat.size), np.zeros(flat.size)
    for i, c in enumerate(flat):
        if c != ignore_index:
            weights[i] = 1.0 if weight is None else weight[c]
            losses[i] = -weights[i] * logp[i, c]
    if reduction == "none":
        return losses.reshape(target.shape)
    return losses.sum() if reduction == "sum" else losses.sum() / weights.sum()


@pytest.mark.parametrize("reduction", list(REDUCE))
def test_nll_and_cross_entropy(reduction):
    x = rand(4, 5, 3) * 3
    target = np.array([[0, 4, 2], [1, -100, 3], [4, 4, 0], [2, 1, -100]])
    w = rand(5, low=0.2, high=2)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    for weight in (None, w):
        tw = None if weight is None else t64(weight)
        expected = nll_ref(logp, target, weight, reduction=reduction)
        close(F.nll_loss(t64(logp), tfg.tensor(target), tw, reduction=reduction), expected)
        close(F.cross_entropy(t64(x), tfg.tensor(target), tw, reduction=reduction), expected)
        check_gradients(lambda lp: F.nll_loss(lp, tfg.tensor(target), tw, reduction=reduction),
                        logp)
    close(F.nll_loss(t64(logp[0, :, 0]), tfg.tensor(2)), -logp[0, 2, 0])


def test_cross_entropy_probabilities_and_smoothing():
    x, p = rand(4, 3) * 2, rand(4, 3, low=0, high=1)
    p /= p.sum(axis=1, keepdims=True)
    w = rand(3, low=0.5, high=1.5)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    close(F.cross_entropy(t64(x), t64(p)), -(p * logp).sum(axis=1).mean())
    close(F.cross_entropy(t64(x), t64(p), t64(w), reduction="none"), -(w * p * logp).sum(axis=1))
    smoothed = p * 0.9 + 0.1 / 3
    close(F.cross_entropy(t64(x), t64(p), label_smoothing=0.1), -(smoothed * logp).sum(1).mean())
    check_gradients(lambda x, p: F.cross_entropy(x, p, label_smoothing=0.2), x, p)
    labels = np.array([0, 2, 1, 1])
    onehot = np.eye(3)[labels] * 0.8 + 0.2 / 3
    close(F.cross_entropy(t64(x), tfg.tensor(labels), label_smoothing=0.2),
          -(onehot * logp).sum(1).mean())


def test_loss_errors():
    x = t64(rand(3, 4))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.mse_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="cannot be broadcast"):
        F.mse_loss(x, t64(rand(5)))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(t64([0.5, 1.5]), t64([0.0, 1.0]))
    with pytest.raises(ValueError, match="different from the input"):
        F.binary_cross_entropy(t64([0.5, 0.5]), t64([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="different from the input"):
        F.binary_cross_entropy_with_logits(x, t64(rand(4)))
    with pytest.raises(ValueError, match="expected target shape"):
        F.cross_entropy(x, tfg.tensor([[0, 1, 2]]))
    with pytest.raises(TypeError, match="integer"):
        F.nll_loss(x, tfg.tensor([True, False, True]))
    with pytest.raises(ValueError, match="probability target"):
        F.cross_entropy(x, t64(rand(3, 5)))
    with pytest.raises(ValueError, match="weight must have shape"):
        F.cross_entropy(x, tfg.tensor([0, 1, 2]), weight=t64(rand(3)))
    with pytest.raises(IndexError, match="out of bounds"):
        F.nll_loss(x, tfg.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="out of range"):
        F.cross_entropy(x, tfg.tensor([0, 4, 1]))
    with pytest.warns(UserWarning, match="broadcast"):
        F.l1_loss(x, t64(rand(4)))


def test_losses_against_torch():
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    x, t = rand(5, 4, 3) * 2, rand(5, 4, 3, low=0, high=1)
    labels = R.integers(0, 4, (5, 3))
    labels[0, 0] = 2
    labels[1, 2] = 2
    w, pw = rand(4, low=0.3, high=2), rand(3, low=0.3, high=2)

    def both(name, args, kwargs, grad_of=0):
        tf_args = [t64(a, i == grad_of) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                   else (tfg.tensor(a) if isinstance(a, np.ndarray) else a)
                   for i, a in enumerate(args)]
        th_args = [torch.tensor(a, requires_grad=(i == grad_of)) if isinstance(a, np.ndarray)
                   else a for i, a in enumerate(args)]
        t_kwargs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                    for k, v in kwargs.items()}
        f_kwargs = {k: t64(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        ours = getattr(F, name)(*tf_args, **f_kwargs)
        theirs = getattr(tF, name)(*th_args, **t_kwargs)
        close(ours, theirs.detach().numpy(), atol=1e-9, rtol=1e-8)
        g = R.standard_normal(theirs.shape)
        ours.backward(tfg.tensor(g))
        theirs.backward(torch.tensor(g))
        close(tf_args[grad_of].grad, th_args[grad_of].grad.numpy(), atol=1e-9, rtol=1e-8)

    sig = 1 / (1 + np.exp(-x))
    for reduction in REDUCE:
        both("cross_entropy", (x, labels), dict(weight=w, ignore_index=2, reduction=reduction,
                                                label_smoothing=0.1))
        both("nll_loss", (x, labels), dict(weight=w, ignore_index=2, reduction=reduction))
        both("binary_cross_entropy", (sig, t), dict(reduction=reduction))
        both("binary_cross_entropy", (sig, t), dict(reduction=reduction), grad_of=1)
        both("binary_cross_entropy_with_logits", (x, t), dict(pos_weight=pw, reduction=reduction))
        both("binary_cross_entropy_with_logits", (x, t), dict(pos_weight=pw), grad_of=1)
    both("gelu", (x,), dict(approximate="tanh"))
    both("softplus", (x,), dict(beta=2.0, threshold=1.0))
    both("layer_norm", (x, (4, 3)), {})


# --------------------------------------------------------------------- misc
def test_one_hot_normalize_pad():
    oh = F.one_hot(tfg.tensor([[0, 2], [1, 0]]))
    assert oh.dtype == tfg.int64 and oh.shape == (2, 2, 3)
    np.testing.assert_array_equal(oh.numpy(), np.eye(3, dtype=np.int64)[[[0, 2], [1, 0]]])
    assert F.one_hot(tfg.tensor([1]), num_classes=4).shape == (1, 4)
    with pytest.raises(ValueError, match="num_classes"):
        F.one_hot(tfg.tensor([5]), 3)
    x = rand(3, 4)
    close(F.normalize(t64(x)), x / np.linalg.norm(x, axis=1, keepdims=True))
    close(F.normalize(t64(x), p=1, dim=0), x / np.abs(x).sum(axis=0, keepdims=True))
    check_gradients(lambda x: F.normalize(x, dim=-1), x)
    zero = t64(np.zeros((1, 3)), requires_grad=True)
    F.normalize(zero).sum().backward()
    close(zero.grad, np.full((1, 3), 1e12))
    close(F.pad(t64(x), (1, 2)), np.pad(x, ((0, 0), (1, 2))))
    close(F.pad(t64(x), (0, 1, 2, 0), value=7.0), np.pad(x, ((2, 0), (0, 1)), constant_values=7.0))
    close(F.pad(t64(x), (-1, 1)), np.pad(x[:, 1:], ((0, 0), (0, 1))))
    check_gradients(lambda x: F.pad(x, (1, -1, 1, 1)), x)
    with pytest.raises(NotImplementedError, match="reflect"):
        F.pad(t64(x), (1, 1), mode="reflect")
