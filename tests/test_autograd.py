"""Autograd: every differentiable operation's gradient against float64 finite
differences, and the engine's rules (accumulation, no_grad, retain_graph,
in-place detection, errors)."""
import numpy as np
import pytest

import tensorforge as tfg
from gradcheck import check_gradients

R = np.random.default_rng(1234)


def rand(*shape, low=-1.0, high=1.0):
    return R.uniform(low, high, shape)


UNARY = {
    "neg": (lambda x: -x, rand(3, 4)),
    "exp": (lambda x: x.exp(), rand(3, 4)),
    "log": (lambda x: x.log(), rand(3, 4, low=0.5, high=2)),
    "sqrt": (lambda x: x.sqrt(), rand(3, 4, low=0.5, high=2)),
    "abs": (lambda x: x.abs(), rand(3, 4, low=0.1, high=1) * np.sign(rand(3, 4))),
    "sin": (lambda x: x.sin(), rand(5)),
    "cos": (lambda x: x.cos(), rand(5)),
    "tanh": (lambda x: x.tanh(), rand(3, 4)),
    "sigmoid": (lambda x: x.sigmoid(), rand(3, 4) * 5),
    "relu": (lambda x: x.relu(), rand(3, 4)),
    "leaky_relu": (lambda x: tfg.differentiable.leaky_relu(x, 0.2), rand(3, 4)),
    "gelu": (lambda x: tfg.differentiable.gelu(x), rand(3, 4) * 3),
    "gelu_tanh": (lambda x: tfg.differentiable.gelu(x, "tanh"), rand(3, 4) * 3),
    "clamp": (lambda x: x.clamp(-0.5, 0.3), rand(4, 5)),
    "pow_scalar": (lambda x: x ** 3, rand(3, 4)),
    "rpow": (lambda x: 2.0 ** x, rand(3, 4)),
    "sum_all": (lambda x: x.sum(), rand(3, 4)),
    "sum_dim": (lambda x: x.sum(1), rand(3, 4, 2)),
    "sum_dims_keep": (lambda x: x.sum((0, 2), keepdim=True), rand(3, 4, 2)),
    "mean": (lambda x: x.mean(-1), rand(3, 4)),
    "mean_all": (lambda x: x.mean(), rand(3, 4)),
    "var": (lambda x: x.var(0), rand(5, 3)),
    "var_biased_keep": (lambda x: x.var(1, unbiased=False, keepdim=True), rand(5, 3)),
    "std": (lambda x: x.std(), rand(5, 3)),
    "max_all": (lambda x: x.max(), rand(4, 3)),
    "max_dim": (lambda x: x.max(1).values, rand(4, 3)),
    "min_dim_keep": (lambda x: x.min(0, keepdim=True)[0], rand(4, 3)),
    "logsumexp": (lambda x: x.logsumexp(1), rand(4, 3) * 4),
    "reshape": (lambda x: x.reshape(2, -1) * 2, rand(3, 4)),
    "view": (lambda x: x.view(4, 3) * 2, rand(3, 4)),
    "permute": (lambda x: x.permute(2, 0, 1) * tfg.arange(4.0), rand(3, 4, 2)),
    "transpose_T": (lambda x: x.T @ x, rand(3, 4)),
    "flatten": (lambda x: x.flatten(1), rand(2, 3, 4)),
    "squeeze_unsqueeze": (lambda x: x.unsqueeze(1).squeeze(2) * 3, rand(3, 1, 4)),
    "expand": (lambda x: x.expand(3, 4, 5), rand(4, 1)),
    "repeat": (lambda x: x.repeat(2, 1, 3), rand(3, 2)),
    "index_basic": (lambda x: x[1:, ::2], rand(4, 5)),
    "index_int": (lambda x: x[2], rand(4, 5)),
    "index_advanced": (lambda x: x[tfg.tensor([0, 2, 0])], rand(4, 5)),
    "index_bool": (lambda x: x[x > 0], rand(4, 5)),
    "split": (lambda x: x.split(2, 1)[1] * x.split(2, 1)[0], rand(3, 4)),
    "chunk": (lambda x: x.chunk(3, 0)[2], rand(7, 2)),
    "unbind": (lambda x: x.unbind(1)[1] * 2, rand(3, 4)),
    "softmax": (lambda x: x.softmax(1), rand(3, 5)),
    "log_softmax": (lambda x: x.log_softmax(0), rand(3, 5)),
    "clone": (lambda x: x.clone() * x, rand(3)),
    "masked_fill": (lambda x: x.masked_fill(x > 0.5, 0.0), rand(3, 4)),
    "log1p": (lambda x: x.log1p(), rand(3, 4, low=0, high=2)),
    "expm1": (lambda x: x.expm1(), rand(3, 4)),
    "cumsum": (lambda x: x.cumsum(1), rand(3, 4)),
    "gather_repeats": (lambda x: x.gather(1, tfg.tensor([[0, 0, 2], [3, 1, 1], [2, 2, 2]])), rand(3, 4)),
    "index_select": (lambda x: x.index_select(0, tfg.tensor([2, 0, 2])), rand(3, 4)),
    "flip": (lambda x: x.flip((0, 1)) * tfg.arange(4.0), rand(3, 4)),
    "roll": (lambda x: x.roll(1, 1) * tfg.arange(4.0), rand(3, 4)),
    "tril_triu": (lambda x: x.tril(-1) + 2 * x.triu(1), rand(4, 4)),
    "sort": (lambda x: x.sort(1, descending=True).values * tfg.arange(5.0), rand(3, 5)),
    "topk": (lambda x: x.topk(2, 0).values, rand(4, 3)),
    "amax": (lambda x: x.amax((0, 1)), rand(3, 4)),
    "amin_keep": (lambda x: x.amin(1, keepdim=True), rand(3, 4)),
    "norm2": (lambda x: x.norm(dim=1), rand(3, 4)),
    "norm1": (lambda x: x.norm(1), rand(3, 4)),
    "norm3": (lambda x: x.norm(3, 0), rand(3, 4)),
    "rsqrt": (lambda x: x.rsqrt(), rand(3, 4, low=0.5, high=2)),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_gradients(name):
    fn, x = UNARY[name]
    check_gradients(fn, x)


BINARY = {
    "add_broadcast": (lambda a, b: a + b, rand(3, 4), rand(4)),
    "sub_broadcast": (lambda a, b: a - b, rand(3, 1), rand(1, 4)),
    "mul": (lambda a, b: a * b, rand(2, 3, 4), rand(3, 1)),
    "div": (lambda a, b: a / b, rand(3, 4), rand(3, 4, low=0.5, high=2)),
    "pow": (lambda a, b: a ** b, rand(3, 4, low=0.5, high=2), rand(4)),
    "maximum": (lambda a, b: tfg.maximum(a, b), rand(3, 4), rand(3, 4)),
    "minimum": (lambda a, b: tfg.minimum(a, b), rand(3, 4), rand(4)),
    "where": (lambda a, b: tfg.where(a > b, a, b * 2), rand(3, 4), rand(3, 4)),
    "matmul_2d": (lambda a, b: a @ b, rand(5, 3), rand(3, 4)),
    "matmul_vec_mat": (lambda a, b: a @ b, rand(3), rand(3, 4)),
    "matmul_mat_vec": (lambda a, b: a @ b, rand(5, 3), rand(3)),
    "matmul_batched_2d": (lambda a, b: a @ b, rand(2, 5, 3), rand(3, 4)),
    "matmul_broadcast": (lambda a, b: a @ b, rand(2, 1, 5, 3), rand(3, 3, 4)),
    "cat": (lambda a, b: tfg.cat([a, b, a], 1), rand(2, 3), rand(2, 1)),
    "stack": (lambda a, b: tfg.stack([a, b], 2), rand(2, 3), rand(2, 3)),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_gradients(name):
    fn, a, b = BINARY[name]
    check_gradients(fn, a, b)


def test_cast_gradient():
    # the float32 round trip rounds, so a wide, exact-for-linear difference step
    check_gradients(lambda x: x.float().double() * 3.0, rand(3), eps=1e-2, atol=1e-4)


def test_index_assign_gradient():
    def fn(a, v):
        out = a * 1.0
        out[1:3, 0] = v * 2
        return out
    check_gradients(fn, rand(4, 3), rand(2))


def test_in_place_on_computed_tensor_gradient():
    def fn(a, b):
        out = a * 2
        out += b
        out.mul_(a)
        return out
    check_gradients(fn, rand(3, 4), rand(4))


def test_kernel_ops_gradients():
    from tensorforge.differentiable import (adaptive_avg_pool2d, avg_pool2d, conv2d, linear,
                                            max_pool2d)
    check_gradients(lambda x, w, b: linear(x, w, b), rand(2, 3, 5), rand(4, 5), rand(4))
    check_gradients(lambda x, w, b: conv2d(x, w, b, padding=1, stride=2), rand(2, 3, 5, 6),
                    rand(4, 3, 3, 3), rand(4))
    check_gradients(lambda x: max_pool2d(x, 2), rand(1, 2, 4, 5))
    check_gradients(lambda x: avg_pool2d(x, 3, 2, 1), rand(1, 2, 5, 5))
    check_gradients(lambda x: adaptive_avg_pool2d(x, (2, 3)), rand(1, 2, 5, 7))


def test_cross_entropy_and_attention_gradients():
    from tensorforge.differentiable import cross_entropy, scaled_dot_product_attention
    target = tfg.tensor([1, 0, 3, 3])
    check_gradients(lambda x: cross_entropy(x, target, label_smoothing=0.1), rand(4, 5))
    check_gradients(lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True),
                    rand(1, 2, 3, 4), rand(1, 2, 5, 4), rand(1, 2, 5, 3))


def test_lstm_gradients():
    from tensorforge.differentiable import lstm, lstm_cell
    T, N, I, H = 3, 2, 3, 2
    check_gradients(lambda x, h, c, wi, wh, bi, bh: lstm(x, h, c, wi, wh, bi, bh),
                    rand(T, N, I), rand(N, H), rand(N, H), rand(4 * H, I), rand(4 * H, H),
                    rand(4 * H), rand(4 * H))
    check_gradients(lambda x, h, c, wi, wh: lstm_cell(x, h, c, wi, wh)[1],
                    rand(N, I), rand(N, H), rand(N, H), rand(4 * H, I), rand(4 * H, H))


def test_shared_subexpression_accumulates():
    x = tfg.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    z = y + y * 3
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 8 * np.array([1.0, 2.0]))


def test_grad_accumulates_across_backwards_and_zeroing():
    x = tfg.tensor([1.0, -2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0])


def test_non_scalar_backward_needs_gradient():
    x = tfg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="implicitly"):
        y.backward()
    y.backward(tfg.tensor([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])


def test_backward_gradient_mismatch_errors():
    x = tfg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="shape"):
        y.backward(tfg.ones(3))
    with pytest.raises(RuntimeError, match="dtype"):
        y.backward(tfg.ones(2, dtype=tfg.float64))


def test_second_backward_through_freed_graph():
    x = tfg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_in_place_change_of_saved_tensor_is_caught():
    x = tfg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = y * y
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()


def test_in_place_through_view_is_caught():
    x = tfg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x.exp()
    z = y.sum()
    with tfg.no_grad():
        y[0].mul_(2)      # a view of y shares y's version counter
    with pytest.raises(RuntimeError, match="in-place"):
        z.backward()


def test_in_place_on_leaf_requiring_grad():
    x = tfg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x.add_(1)
    with tfg.no_grad():
        x.add_(1)
    assert x.item() == 2.0


def test_no_grad_and_detach():
    x = tfg.tensor([1.0], requires_grad=True)
    with tfg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    z = (x * 2).detach()
    assert not z.requires_grad
    assert np.shares_memory(z.numpy(), (x * 1).detach().numpy()) is False

    @tfg.no_grad()
    def f(t):
        return t * 3
    assert not f(x).requires_grad
    assert tfg.is_grad_enabled()


def test_device_and_dtype_mismatch_errors():
    a = tfg.ones(2, 2)
    b = tfg.ones(2, 2, dtype=tfg.float64)
    with pytest.raises(TypeError):
        tfg.differentiable.linear(a, b)
    assert (a + b).dtype == tfg.float64      # elementwise promotes, as PyTorch
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        tfg.ones(2, device="cuda")


def test_retain_grad_on_non_leaf():
    x = tfg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [6.0, 12.0])


def test_multi_output_partial_gradients():
    from tensorforge.differentiable import lstm
    x = tfg.randn(2, 1, 3, dtype=tfg.float64)
    h = tfg.zeros(1, 2, dtype=tfg.float64)
    w_ih = tfg.randn(8, 3, dtype=tfg.float64, requires_grad=True)
    w_hh = tfg.randn(8, 2, dtype=tfg.float64, requires_grad=True)
    y, hn, cn = lstm(x, h, h, w_ih, w_hh)
    cn.sum().backward()          # only one of three outputs gets a gradient
    assert w_ih.grad is not None and np.isfinite(w_ih.grad.numpy()).all()
