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
    with pytest.warns(UserWarning, match="zero-element"):
        assert nn.Linear(0, 3).weight.shape == (3, 0)


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
    compare_with_torch(torch, nn.Linear(4, 3), torch.nn.Linear(4, 3),
                       rand(2, 5, 4).astype(np.float32))


# --------------------------------------------------------------- LayerNorm
def test_layer_norm_module():
    layer = nn.LayerNorm((3, 4), dtype=tfg.float64)
    assert (layer.weight.detach().numpy() == 1).all() and (layer.bias.detach().numpy() == 0).all()
    assert repr(layer) == "LayerNorm((3, 4), eps=1e-05, elementwise_affine=True, bias=True)"
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


# ------------------------------------------------------------------ Conv2d
def test_conv2d_default_init_and_repr():
    tfg.manual_seed(3)
    conv = nn.Conv2d(16, 32, 3, padding=1)
    bound = 1 / math.sqrt(16 * 9)
    w = conv.weight.detach().numpy()
    assert conv.weight.shape == (32, 16, 3, 3)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(conv.bias.detach().numpy()).max() <= bound
    assert repr(conv) == "Conv2d(16, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    grouped = nn.Conv2d(4, 6, (3, 2), stride=2, dilation=2, groups=2, bias=False)
    assert grouped.weight.shape == (6, 2, 3, 2)
    assert repr(grouped) == ("Conv2d(4, 6, kernel_size=(3, 2), stride=(2, 2), dilation=(2, 2), "
                             "groups=2, bias=False)")
    assert "padding=same" in repr(nn.Conv2d(1, 1, 3, padding="same"))


@pytest.mark.parametrize("options", [dict(), dict(stride=2, padding=1),
                                     dict(padding="same", dilation=2),
                                     dict(padding="valid", groups=2, bias=False)])
def test_conv2d_against_torch(options):
    torch = pytest.importorskip("torch")
    compare_with_torch(torch, nn.Conv2d(4, 6, 3, **options), torch.nn.Conv2d(4, 6, 3, **options),
                       rand(2, 4, 7, 6).astype(np.float32), atol=1e-4)


def test_conv2d_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 6, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="'same' or 'valid'"):
        nn.Conv2d(3, 6, 3, padding="full")
    with pytest.raises(NotImplementedError, match="padding_mode"):
        nn.Conv2d(3, 6, 3, padding_mode="reflect")


# ---------------------------------------------- pooling, flatten, activations
def test_stateless_layers_against_torch():
    torch = pytest.importorskip("torch")
    x = rand(2, 3, 7, 6).astype(np.float32)
    pairs = [
        (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
        (nn.AvgPool2d(3, 2, 1, count_include_pad=False),
         torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
        (nn.AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((3, None))),
        (nn.Flatten(), torch.nn.Flatten()),
        (nn.Flatten(0, 2), torch.nn.Flatten(0, 2)),
        (nn.Unflatten(1, (1, 3)), torch.nn.Unflatten(1, (1, 3))),
        (nn.ReLU(), torch.nn.ReLU()),
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (nn.Sigmoid(), torch.nn.Sigmoid()),
        (nn.Tanh(), torch.nn.Tanh()),
        (nn.GELU(), torch.nn.GELU()),
        (nn.GELU("tanh"), torch.nn.GELU("tanh")),
        (nn.SiLU(), torch.nn.SiLU()),
        (nn.Softplus(2.0, 1.0), torch.nn.Softplus(2.0, 1.0)),
        (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
        (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        compare_with_torch(torch, ours, theirs, x * 3)


# --------------------------------------------------------------- BatchNorm
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_2d_running_stats_against_torch(momentum):
    torch = pytest.importorskip("torch")
    ours, theirs = nn.BatchNorm2d(3, momentum=momentum), torch.nn.BatchNorm2d(3, momentum=momentum)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-1, 1)
    for step in range(4):
        x = (rand(4, 3, 5, 5) * (step + 1) + step).astype(np.float32)
        compare_with_torch(torch, ours, theirs, x) if step == 0 else None
        if step:
            with torch.no_grad():
                expected = theirs(torch.tensor(x)).numpy()
            np.testing.assert_allclose(ours(tfg.tensor(x)).detach().numpy(), expected, atol=1e-5)
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(ours, name).numpy(),
                                       getattr(theirs, name).numpy(), rtol=1e-5, atol=1e-6)
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == step + 1
    ours.eval()
    theirs.eval()
    x = rand(2, 3, 4, 4).astype(np.float32)
    compare_with_torch(torch, ours, theirs, x)


@pytest.mark.parametrize("shape", [(6, 4), (5, 4, 3)])
def test_batch_norm_1d_against_torch(shape):
    torch = pytest.importorskip("torch")
    ours, theirs = nn.BatchNorm1d(4, eps=1e-3), torch.nn.BatchNorm1d(4, eps=1e-3)
    compare_with_torch(torch, ours, theirs, rand(*shape).astype(np.float32))
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), rtol=1e-5)
    ours.eval()
    theirs.eval()
    compare_with_torch(torch, ours, theirs, rand(*shape).astype(np.float32))


def test_batch_norm_options():
    layer = nn.BatchNorm1d(3, affine=False, track_running_stats=False)
    assert list(layer.parameters()) == [] and list(layer.buffers()) == []
    assert layer.state_dict() == {}
    x = rand(8, 3)
    layer.eval()
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    np.testing.assert_allclose(layer(tfg.tensor(x)).numpy(), expected, atol=1e-10)
    tracked = nn.BatchNorm2d(2)
    assert list(tracked.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                          "num_batches_tracked"]
    assert tracked.num_batches_tracked.dtype == tfg.int64
    assert repr(tracked) == ("BatchNorm2d(2, eps=1e-05, momentum=0.1, affine=True, bias=True, "
                             "track_running_stats=True)")
    no_bias = nn.BatchNorm2d(2, bias=False)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match="expected 4D input"):
        tracked(tfg.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(2)(tfg.zeros(2, 2, 3, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(2)(tfg.zeros(1, 2))


# --------------------------------------------------------------- Embedding
def test_embedding_module():
    tfg.manual_seed(0)
    emb = nn.Embedding(1000, 64, padding_idx=3)
    w = emb.weight.detach().numpy()
    assert (w[3] == 0).all()
    assert abs(w.std() - 1) < 0.02 and abs(w.mean()) < 0.02
    assert repr(emb) == "Embedding(1000, 64, padding_idx=3)"
    idx = tfg.tensor([[3, 5], [5, 7]])
    emb(idx).sum().backward()
    grad = emb.weight.grad.numpy()
    assert (grad[3] == 0).all() and (grad[5] == 2).all() and (grad[7] == 1).all()
    assert grad.sum() == 3 * 64
    assert nn.Embedding(5, 2, padding_idx=-1).padding_idx == 4
    frozen = nn.Embedding.from_pretrained(tfg.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(tfg.tensor([1, 0])).numpy(), [[3, 4], [1, 2]])
    assert nn.Embedding.from_pretrained(tfg.ones(2, 2), freeze=False).weight.requires_grad


def test_embedding_against_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.Embedding(10, 4, padding_idx=0), torch.nn.Embedding(10, 4, padding_idx=0)
    copy_params(ours, theirs)
    idx = R.integers(0, 10, (3, 5))
    idx[0, 0] = 0
    y, ty = ours(tfg.tensor(idx)), theirs(torch.tensor(idx))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy())
    g = R.standard_normal(ty.shape).astype(np.float32)
    y.backward(tfg.from_numpy(g))
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-6,
                               atol=1e-6)


# ------------------------------------------------------------------ losses
def test_loss_modules_against_torch():
    torch = pytest.importorskip("torch")
    x = rand(6, 4) * 2
    probs = 1 / (1 + np.exp(-x))
    t = rand(6, 4, low=0, high=1)
    labels = R.integers(0, 4, 6)
    labels[2] = 1
    w, pw = rand(4, low=0.5, high=2), rand(4, low=0.5, high=2)
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    cases = [
        (nn.MSELoss(), torch.nn.MSELoss(), x, t),
        (nn.L1Loss(reduction="sum"), torch.nn.L1Loss(reduction="sum"), x, t),
        (nn.BCELoss(weight=tfg.tensor(w)), torch.nn.BCELoss(weight=torch.tensor(w)), probs, t),
        (nn.BCEWithLogitsLoss(pos_weight=tfg.tensor(pw), reduction="none"),
         torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw), reduction="none"), x, t),
        (nn.CrossEntropyLoss(weight=tfg.tensor(w), ignore_index=1, label_smoothing=0.05),
         torch.nn.CrossEntropyLoss(weight=torch.tensor(w), ignore_index=1, label_smoothing=0.05),
         x, labels),
        (nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), x, t / t.sum(1, keepdims=True)),
        (nn.NLLLoss(weight=tfg.tensor(w), reduction="sum"),
         torch.nn.NLLLoss(weight=torch.tensor(w), reduction="sum"), logp, labels),
    ]
    for ours, theirs, input, target in cases:
        assert repr(ours) == repr(theirs)
        xx, tx = tfg.tensor(input, requires_grad=True), torch.tensor(input, requires_grad=True)
        y, ty = ours(xx, tfg.tensor(target)), theirs(tx, torch.tensor(target))
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-12)
        y.sum().backward()
        ty.sum().backward()
        np.testing.assert_allclose(xx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="max")
    assert "weight" in dict(nn.CrossEntropyLoss(weight=tfg.ones(3)).named_buffers())


# ------------------------------------------------------ a small CNN end to end
class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding="same"),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(0.2)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.dropout(self.norm(self.features(x))))


def test_small_cnn_state_dict_round_trip_and_training_step():
    tfg.manual_seed(0)
    model = SmallCNN()
    x = tfg.tensor(rand(4, 1, 8, 8).astype(np.float32))
    labels = tfg.tensor([0, 1, 2, 1])
    loss = nn.CrossEntropyLoss()(model(x), labels)
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    assert state["features.1.num_batches_tracked"] == 1
    tfg.manual_seed(1)
    other = SmallCNN()
    other.load_state_dict(state)
    model.eval()
    other.eval()
    np.testing.assert_array_equal(other(x).detach().numpy(), model(x).detach().numpy())
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), state[key])
    with pytest.raises(RuntimeError, match="shape"):
        nn.Linear(8, 4).load_state_dict(model.head.state_dict())


def test_small_cnn_against_torch():
    torch = pytest.importorskip("torch")
    tn = torch.nn
    theirs = tn.Sequential(tn.Conv2d(1, 4, 3, padding=1), tn.BatchNorm2d(4), tn.ReLU(),
                           tn.MaxPool2d(2), tn.Conv2d(4, 8, 3, padding="same"), tn.ReLU(),
                           tn.AdaptiveAvgPool2d(1), tn.Flatten(), tn.LayerNorm(8), tn.Linear(8, 3))
    ours = nn.Sequential(*SmallCNN().features, nn.LayerNorm(8), nn.Linear(8, 3))
    compare_with_torch(torch, ours, theirs, rand(4, 1, 8, 8).astype(np.float32), atol=1e-4)


def test_reprs_match_torch():
    torch = pytest.importorskip("torch")
    tn = torch.nn
    pairs = [
        (nn.Linear(3, 2, bias=False), tn.Linear(3, 2, bias=False)),
        (nn.Conv2d(2, 4, 3, stride=2, padding=1, dilation=2, groups=2),
         tn.Conv2d(2, 4, 3, stride=2, padding=1, dilation=2, groups=2)),
        (nn.Conv2d(2, 4, (1, 3), padding="valid"), tn.Conv2d(2, 4, (1, 3), padding="valid")),
        (nn.LayerNorm([2, 3], eps=1e-6, elementwise_affine=False),
         tn.LayerNorm([2, 3], eps=1e-6, elementwise_affine=False)),
        (nn.BatchNorm1d(5, momentum=None, affine=False),
         tn.BatchNorm1d(5, momentum=None, affine=False)),
        (nn.BatchNorm2d(5, bias=False), tn.BatchNorm2d(5, bias=False)),
        (nn.Dropout(0.1), tn.Dropout(0.1)),
        (nn.Embedding(7, 3, padding_idx=2, max_norm=1.0),
         tn.Embedding(7, 3, padding_idx=2, max_norm=1.0)),
        (nn.ReLU(inplace=True), tn.ReLU(inplace=True)),
        (nn.Identity(), tn.Identity()),
        (nn.Sequential(nn.Linear(2, 2), nn.Tanh()), tn.Sequential(tn.Linear(2, 2), tn.Tanh())),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
