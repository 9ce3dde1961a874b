"""Reproducibility: the kernels whose gradients are sums over parallel work
give the same bits on 1 and 2 threads, and a seeded training run repeats bit
for bit (issue 5: "tfg.manual_seed makes a whole training run reproducible")."""
import numpy as np
import pytest

import tensorforge as tfg


@pytest.fixture
def restore_threads():
    before = tfg.get_num_threads()
    yield
    tfg.set_num_threads(before)


def _on_threads(threads, fn):
    tfg.set_num_threads(threads)
    return fn()


def _same_bits(a, b):
    for x, y in zip(a, b):
        if x is None:
            assert y is None
        else:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_conv2d_weight_gradient_same_bits_on_any_thread_count(restore_threads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 8, 13, 11)).astype(np.float32)
    w = rng.standard_normal((12, 8, 3, 3)).astype(np.float32)
    for stride in (1, 2):
        g = tfg.ops.conv2d(x, w, stride=stride, padding=1)
        grad = rng.standard_normal(g.shape).astype(np.float32)
        run = lambda: tfg.ops.conv2d_backward(grad, x, w, stride=stride, padding=1)  # noqa: E731
        _same_bits(_on_threads(1, run), _on_threads(2, run))


def test_attention_gradients_same_bits_on_any_thread_count(restore_threads):
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, 3, 70, 16)).astype(np.float32)
    k = rng.standard_normal((2, 3, 50, 16)).astype(np.float32)
    v = rng.standard_normal((2, 3, 50, 8)).astype(np.float32)
    g = rng.standard_normal((2, 3, 70, 8)).astype(np.float32)
    run = lambda: tfg.ops.scaled_dot_product_attention_backward(g, q, k, v, is_causal=True)  # noqa: E731
    _same_bits(_on_threads(1, run), _on_threads(2, run))


def test_seeded_training_run_repeats_bit_for_bit():
    nn = tfg.nn

    def run():
        tfg.manual_seed(123)
        model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Dropout(0.2), nn.Linear(6 * 4 * 4, 10))
        x, y = tfg.randn(40, 1, 8, 8), tfg.randint(0, 10, (40,))
        loader = tfg.data.DataLoader(tfg.data.TensorDataset(x, y), batch_size=16, shuffle=True)
        opt = tfg.optim.Adam(model.parameters(), 1e-2)
        for _ in range(2):
            for xb, yb in loader:
                opt.zero_grad()
                nn.functional.cross_entropy(model(xb), yb).backward()
                opt.step()
        return [p.detach().numpy().copy() for p in model.parameters()]

    _same_bits(run(), run())
