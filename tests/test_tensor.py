"""tfg.Tensor: creation, dtypes and promotion, operators, indexing, views,
reductions, NumPy exchange and the errors a user meets first."""
import numpy as np
import pytest

import tensorforge as tfg


def test_creation_dtypes_follow_pytorch():
    assert tfg.tensor([1.0, 2.0]).dtype == tfg.float32
    assert tfg.tensor([1, 2]).dtype == tfg.int64
    assert tfg.tensor([True, False]).dtype == tfg.bool
    assert tfg.tensor(np.zeros(3)).dtype == tfg.float64        # NumPy arrays keep theirs
    assert tfg.tensor([1, 2], dtype=tfg.float64).dtype == tfg.float64
    assert tfg.zeros(2, 3).shape == (2, 3) and tfg.zeros((2, 3)).dtype == tfg.float32
    assert tfg.ones(4, dtype="float64").dtype == tfg.float64
    assert tfg.full((2,), 7).dtype == tfg.int64 and tfg.full((2,), 0.5).dtype == tfg.float32
    assert tfg.arange(5).dtype == tfg.int64 and tfg.arange(0, 1, 0.25).shape == (4,)
    with pytest.raises(TypeError, match="complex64"):
        tfg.tensor(np.zeros(2, np.complex64))
    with pytest.raises(RuntimeError, match="floating-point"):
        tfg.tensor([1, 2], requires_grad=True)


def test_manual_seed_reproduces_random_tensors():
    tfg.manual_seed(7)
    a = tfg.randn(3, 4)
    b = tfg.rand(5)
    tfg.manual_seed(7)
    np.testing.assert_array_equal(a.numpy(), tfg.randn(3, 4).numpy())
    np.testing.assert_array_equal(b.numpy(), tfg.rand(5).numpy())
    assert a.dtype == tfg.float32
    with pytest.raises(ValueError):
        tfg.manual_seed(-1)


def test_numpy_exchange_is_zero_copy_both_ways():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = tfg.from_numpy(array)
    assert np.shares_memory(t.numpy(), array)
    array[0, 0] = 42
    assert t[0, 0].item() == 42
    t.numpy()[1, 2] = -1
    assert array[1, 2] == -1
    assert np.shares_memory(np.asarray(t), array)
    with pytest.raises(RuntimeError, match="requires grad"):
        tfg.ones(2, requires_grad=True).numpy()
    assert tfg.ones(2, requires_grad=True).detach().numpy().shape == (2,)


def test_promotion_rules():
    f32, f64 = tfg.ones(2), tfg.ones(2, dtype=tfg.float64)
    i64 = tfg.tensor([1, 2])
    assert (f32 + f64).dtype == tfg.float64
    assert (i64 + f32).dtype == tfg.float32         # a float tensor wins over an integer one
    assert (i64 * 2.5).dtype == tfg.float32         # Python floats are "weak"
    assert (f32 * 2).dtype == tfg.float32 and (i64 * 2).dtype == tfg.int64
    assert (i64 / i64).dtype == tfg.float32         # true division of integers
    assert (f32 + 1.0).dtype == tfg.float32
    assert (2 - f32).tolist() == [1.0, 1.0]
    assert (np.ones(2, np.float32) + f32).dtype == tfg.float32


def test_operators_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    ta, tb = tfg.tensor(a), tfg.tensor(b)
    for op in (lambda x, y: x + y, lambda x, y: x - y, lambda x, y: x * y, lambda x, y: x / y,
               lambda x, y: x > y, lambda x, y: x == y, lambda x, y: x <= y):
        np.testing.assert_allclose(np.asarray(op(ta, tb)), op(a, b))
    np.testing.assert_allclose((ta @ tb).numpy(), a @ b)
    np.testing.assert_allclose((-ta).abs().numpy(), np.abs(a))
    np.testing.assert_allclose((ta ** 2).numpy(), a ** 2)
    assert ((ta > 0) & (ta < 0.5)).dtype == tfg.bool


def test_reductions_match_numpy():
    a = np.random.default_rng(1).standard_normal((3, 4, 5))
    t = tfg.tensor(a)
    np.testing.assert_allclose(t.sum().item(), a.sum())
    np.testing.assert_allclose(t.sum((0, 2)).numpy(), a.sum((0, 2)))
    np.testing.assert_allclose(t.mean(1, keepdim=True).numpy(), a.mean(1, keepdims=True))
    np.testing.assert_allclose(t.var(2).numpy(), a.var(2, ddof=1))
    np.testing.assert_allclose(t.std(unbiased=False).item(), a.std())
    values, indices = t.max(1)
    np.testing.assert_allclose(values.numpy(), a.max(1))
    np.testing.assert_array_equal(indices.numpy(), a.argmax(1))
    assert t.min().item() == a.min()
    assert t.argmax().item() == a.argmax()
    np.testing.assert_array_equal(t.argmin(2, keepdim=True).numpy(), a.argmin(2)[..., None])
    assert tfg.tensor([1, 2]).sum().dtype == tfg.int64
    with pytest.raises(IndexError, match="out of range"):
        t.sum(3)


def test_views_share_memory_and_version():
    t = tfg.zeros(4, 6)
    v = t.view(24)
    v[0] = 5.0
    assert t[0, 0].item() == 5.0
    row = t[2]
    row.fill_(1.0)
    assert t.sum().item() == 5.0 + 6.0
    assert row._version is t._version
    with pytest.raises(RuntimeError, match="reshape"):
        t.T.view(24)
    assert t.T.reshape(24).shape == (24,)
    assert t.permute(1, 0).shape == (6, 4) and t.unsqueeze(0).squeeze(0).shape == (4, 6)
    assert t.flatten().shape == (24,) and t.expand(2, 4, 6).shape == (2, 4, 6)


def test_indexing_and_assignment():
    a = np.arange(24.0).reshape(4, 6)
    t = tfg.tensor(a)
    np.testing.assert_array_equal(t[1:, ::2].numpy(), a[1:, ::2])
    np.testing.assert_array_equal(t[tfg.tensor([3, 0])].numpy(), a[[3, 0]])
    np.testing.assert_array_equal(t[t > 20].numpy(), a[a > 20])
    np.testing.assert_array_equal(t[..., 1].numpy(), a[..., 1])
    t[0] = 0.0
    t[:, 5] = tfg.tensor(np.ones(4))
    a[0] = 0.0
    a[:, 5] = 1
    np.testing.assert_array_equal(t.numpy(), a)
    with pytest.raises(IndexError, match="out of range"):
        t[10]


def test_item_tolist_repr_and_conversions():
    t = tfg.tensor([[1.5, 2.0]])
    assert t.tolist() == [[1.5, 2.0]]
    assert t[0, 1].item() == 2.0 and float(t[0, 0]) == 1.5
    assert "tensor(" in repr(t) and "requires_grad=True" in repr(tfg.ones(1, requires_grad=True))
    with pytest.raises(RuntimeError, match="2 elements"):
        t.item()
    assert t.double().dtype == tfg.float64 and t.long().tolist() == [[1, 2]]
    assert t.to(tfg.float64).dtype == tfg.float64 and t.to("cpu") is t
    assert len(tfg.zeros(3, 2)) == 3 and [r.shape for r in tfg.zeros(2, 3)] == [(3,), (3,)]


def test_ops_take_and_return_tensors():
    x = tfg.randn(2, 3, 8, 8)
    w = tfg.randn(4, 3, 3, 3)
    y = tfg.ops.conv2d(x, w, padding=1)
    assert isinstance(y, tfg.Tensor) and y.shape == (2, 4, 8, 8)
    np.testing.assert_allclose(y.numpy(), tfg.ops.conv2d(x.numpy(), w.numpy(), padding=1))
    gx, gw, gb = tfg.ops.conv2d_backward(tfg.ones_like(y), x, w, padding=1)
    assert isinstance(gx, tfg.Tensor) and gb is None
    assert isinstance(tfg.ops.matmul(np.ones((2, 2)), np.ones((2, 2))), np.ndarray)


def test_matmul_backward_kernel_against_numpy():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 5, 3)), rng.standard_normal((3, 4))
    g = rng.standard_normal((2, 5, 4))
    ga, gb = tfg.ops.matmul_backward(g, a, b)
    np.testing.assert_allclose(ga, g @ b.T)
    np.testing.assert_allclose(gb, np.einsum("bik,bij->kj", a, g))
    x, w, bias = rng.standard_normal((7, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)
    g = rng.standard_normal((7, 4))
    gx, gw, gbias = tfg.ops.linear_backward(g, x, w, bias)
    np.testing.assert_allclose(gx, g @ w)
    np.testing.assert_allclose(gw, g.T @ x)
    np.testing.assert_allclose(gbias, g.sum(0))


def test_pytorch_style_helpers_match_numpy():
    a = np.random.default_rng(5).standard_normal((4, 6))
    t = tfg.tensor(a)
    values, indices = tfg.sort(t, 1, descending=True)
    np.testing.assert_array_equal(indices.numpy(), np.argsort(-a, 1, kind="stable"))
    np.testing.assert_allclose(tfg.topk(t, 2).values.numpy(), -np.sort(-a, 1)[:, :2])
    np.testing.assert_allclose(tfg.triu(t, 1).numpy(), np.triu(a, 1))
    np.testing.assert_allclose(tfg.tril(t).numpy(), np.tril(a))
    np.testing.assert_allclose(tfg.cumsum(t, 0).numpy(), np.cumsum(a, 0))
    np.testing.assert_allclose(tfg.norm(t).item(), np.linalg.norm(a))
    np.testing.assert_array_equal(tfg.nonzero(t > 1).numpy(), np.argwhere(a > 1))
    assert tfg.eye(3).tolist() == np.eye(3).tolist()
    assert tfg.allclose(t, a) and tfg.equal(t, tfg.tensor(a)) and tfg.is_tensor(t)
    assert t.new_zeros(2, 2).dtype == tfg.float64 and t.stride() == (6, 1)
    np.testing.assert_array_equal(tfg.unique(tfg.tensor([3, 1, 3])).numpy(), [1, 3])


def test_multinomial_draws():
    tfg.manual_seed(0)
    draws = tfg.multinomial(tfg.tensor([0.0, 1.0, 3.0]), 4000, replacement=True).numpy()
    counts = np.bincount(draws, minlength=3)
    assert counts[0] == 0 and abs(counts[2] / counts[1] - 3) < 0.4
    without = tfg.multinomial(tfg.ones(5, 7), 7).numpy()
    assert all(sorted(row) == list(range(7)) for row in without)
    with pytest.raises(RuntimeError, match="without replacement"):
        tfg.multinomial(tfg.ones(3), 4)
