"""lstm_cell, lstm and their backwards against the float64 references in
reference.py (the plain gate equations and backpropagation through time written
out step by step), on every ISA level and both dtypes; gradients also against
central finite differences in float64; the gate nonlinearities at the ulp level;
bad input; and, when torch is importable, torch.nn.LSTMCell / torch.nn.LSTM."""
import numpy as np
import pytest

import reference as ref
from tensorforge import ops

GRAD_NAMES = ("grad_x", "grad_hx", "grad_cx", "grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh")


def make_params(rng, T, N, I, H, dtype, bias=True, scale=None):
    """x (T, N, I) (None for T None), hx, cx, w_ih, w_hh, b_ih, b_hh in `dtype`,
    weights uniform in +-1/sqrt(H) like PyTorch's init unless `scale` is given."""
    s = 1.0 / np.sqrt(max(H, 1)) if scale is None else scale
    shape = (N, I) if T is None else (T, N, I)
    p = dict(
        x=rng.standard_normal(shape),
        hx=rng.standard_normal((N, H)) * 0.5,
        cx=rng.standard_normal((N, H)),
        w_ih=rng.uniform(-s, s, (4 * H, I)),
        w_hh=rng.uniform(-s, s, (4 * H, H)),
        b_ih=rng.uniform(-s, s, 4 * H) if bias else None,
        b_hh=rng.uniform(-s, s, 4 * H) if bias else None,
    )
    return {k: None if v is None else v.astype(dtype) for k, v in p.items()}


def assert_close(actual, expected, dtype, k, name="", c=8.0):
    """Within c * eps * k relative to the largest |expected| (at least 1): the
    errors of GEMMs of length ~k feeding nonlinearities with slopes <= 1; an
    indexing bug is O(max|expected|) and never passes."""
    if expected is None:
        assert actual is None, name
        return
    assert isinstance(actual, np.ndarray), (name, type(actual))
    assert actual.dtype == np.dtype(dtype), (name, actual.dtype, dtype)
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    eps = float(np.finfo(dtype).eps)
    scale = max(ref._absmax(expected), 1.0)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=c * eps * k,
                               atol=c * eps * k * scale, equal_nan=True, err_msg=name)


def assert_grads_close(actual, expected, dtype, k):
    assert len(actual) == 7
    for name, a, e in zip(GRAD_NAMES, actual, expected):
        assert_close(a, e, dtype, k, name)


def random_grads(rng, T, N, H, dtype):
    gy = rng.standard_normal((T, N, H)).astype(dtype)
    gh = rng.standard_normal((N, H)).astype(dtype)
    gc = rng.standard_normal((N, H)).astype(dtype)
    return gy, gh, gc


# ---- forward and backward against the references ---------------------------------

CELL_SHAPES = [(1, 1, 1), (1, 3, 1), (2, 5, 3), (3, 4, 8), (5, 7, 17), (4, 33, 16), (2, 10, 37)]


@pytest.mark.parametrize("N,I,H", CELL_SHAPES)
def test_lstm_cell(isa, dtype, rng, N, I, H):
    p = make_params(rng, None, N, I, H, dtype)
    h, c = ops.lstm_cell(**p)
    h_ref, c_ref = ref.lstm_cell_ref(**p)
    assert_close(h, h_ref, dtype, I + H, "h")
    assert_close(c, c_ref, dtype, I + H, "c")
    gh, gc = rng.standard_normal((N, H)).astype(dtype), rng.standard_normal((N, H)).astype(dtype)
    g = ops.lstm_cell_backward(gh, gc, **p)
    assert_grads_close(g, ref.lstm_cell_backward_ref(gh, gc, **p), dtype, I + 4 * H + N)


SEQ_SHAPES = [(1, 1, 1, 1), (1, 3, 4, 5), (3, 1, 2, 3), (6, 2, 5, 17), (4, 5, 9, 8), (7, 3, 3, 33),
              (2, 45, 6, 40)]


@pytest.mark.parametrize("T,N,I,H", SEQ_SHAPES)
def test_lstm(isa, dtype, rng, T, N, I, H):
    p = make_params(rng, T, N, I, H, dtype)
    y, h, c = ops.lstm(**p)
    y_ref, h_ref, c_ref = ref.lstm_ref(**p)
    k = T * (I + H)
    assert_close(y, y_ref, dtype, k, "y")
    assert_close(h, h_ref, dtype, k, "h")
    assert_close(c, c_ref, dtype, k, "c")
    gy, gh, gc = random_grads(rng, T, N, H, dtype)
    g = ops.lstm_backward(gy, gh, gc, **p)
    assert_grads_close(g, ref.lstm_backward_ref(gy, gh, gc, **p), dtype, T * (I + 4 * H + N))


@pytest.mark.parametrize("which", ["none", "ih", "hh"])
def test_bias_options(dtype, rng, which):
    T, N, I, H = 3, 2, 4, 5
    p = make_params(rng, T, N, I, H, dtype)
    if which != "hh":
        p["b_hh"] = None
    if which != "ih":
        p["b_ih"] = None
    y, h, c = ops.lstm(**p)
    assert_close(y, ref.lstm_ref(**p)[0], dtype, T * (I + H), "y")
    gy, gh, gc = random_grads(rng, T, N, H, dtype)
    g = ops.lstm_backward(gy, gh, gc, **p)
    assert (g[5] is None) == (p["b_ih"] is None) and (g[6] is None) == (p["b_hh"] is None)
    assert_grads_close(g, ref.lstm_backward_ref(gy, gh, gc, **p), dtype, T * (I + 4 * H + N))
    hc = ops.lstm_cell(p["x"][0], p["hx"], p["cx"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    assert_close(hc[0], ref.lstm_cell_ref(p["x"][0], p["hx"], p["cx"], p["w_ih"], p["w_hh"],
                                          p["b_ih"], p["b_hh"])[0], dtype, I + H, "h")


def test_optional_output_grads(isa, dtype, rng):
    T, N, I, H = 3, 2, 3, 9
    p = make_params(rng, T, N, I, H, dtype)
    gy, gh, gc = random_grads(rng, T, N, H, dtype)
    k = T * (I + 4 * H + N)
    for args in [(gy, None, None), (None, gh, None), (None, None, gc), (None, None, None)]:
        g = ops.lstm_backward(*args, **p)
        assert_grads_close(g, ref.lstm_backward_ref(*args, **p), dtype, k)
    cp = {k_: (v[0] if k_ == "x" else v) for k_, v in p.items()}
    for args in [(gh, None), (None, gc), (None, None)]:
        g = ops.lstm_cell_backward(*args, **cp)
        assert_grads_close(g, ref.lstm_cell_backward_ref(*args, **cp), dtype, I + 4 * H + N)
    zero = ops.lstm_backward(None, None, None, **p)
    assert all(np.all(a == 0) for a in zero)


def test_unbatched_cell(dtype, rng):
    I, H = 6, 5
    p = make_params(rng, None, 1, I, H, dtype)
    p["x"], p["hx"], p["cx"] = p["x"][0], p["hx"][0], p["cx"][0]
    h, c = ops.lstm_cell(**p)
    assert h.shape == c.shape == (H,)
    h_ref, c_ref = ref.lstm_cell_ref(**p)
    assert_close(h, h_ref, dtype, I + H, "h")
    assert_close(c, c_ref, dtype, I + H, "c")
    gh, gc = rng.standard_normal(H).astype(dtype), rng.standard_normal(H).astype(dtype)
    g = ops.lstm_cell_backward(gh, gc, **p)
    assert g[0].shape == (I,) and g[1].shape == g[2].shape == (H,)
    assert_grads_close(g, ref.lstm_cell_backward_ref(gh, gc, **p), dtype, I + 4 * H)


def test_empty_sizes(dtype, rng):
    # Zero steps: y is empty, the state passes through; zero batch: all empty.
    p = make_params(rng, 0, 3, 4, 5, dtype)
    y, h, c = ops.lstm(**p)
    assert y.shape == (0, 3, 5)
    np.testing.assert_array_equal(h, p["hx"])
    np.testing.assert_array_equal(c, p["cx"])
    gy, gh, gc = random_grads(rng, 0, 3, 5, dtype)
    g = ops.lstm_backward(gy, gh, gc, **p)
    np.testing.assert_array_equal(g[1], gh)
    np.testing.assert_array_equal(g[2], gc)
    assert np.all(g[3] == 0) and np.all(g[4] == 0) and np.all(g[5] == 0)
    p = make_params(rng, 2, 0, 4, 5, dtype)
    y, h, c = ops.lstm(**p)
    assert y.shape == (2, 0, 5) and h.shape == c.shape == (0, 5)
    g = ops.lstm_backward(*random_grads(rng, 2, 0, 5, dtype), **p)
    assert g[0].shape == (2, 0, 4) and np.all(g[3] == 0) and np.all(g[6] == 0)
    # No input features: the gates come from the recurrence and the bias alone.
    p = make_params(rng, 3, 2, 0, 4, dtype)
    assert_close(ops.lstm(**p)[0], ref.lstm_ref(**p)[0], dtype, 3 * 4, "y")


def test_non_contiguous(dtype, rng):
    T, N, I, H = 4, 3, 5, 6
    p = make_params(rng, T, N, I, H, dtype)
    q = dict(p)
    q["x"] = np.ascontiguousarray(p["x"].transpose(1, 0, 2)).transpose(1, 0, 2)
    q["w_ih"] = np.asfortranarray(p["w_ih"])
    q["w_hh"] = np.ascontiguousarray(p["w_hh"][:, ::-1])[:, ::-1]
    q["hx"] = np.asfortranarray(p["hx"])
    q["b_ih"] = np.repeat(p["b_ih"], 2)[::2]
    assert not q["x"].flags.c_contiguous and not q["w_ih"].flags.c_contiguous
    for a, b in zip(ops.lstm(**q), ops.lstm(**p)):
        np.testing.assert_array_equal(a, b)
    gy, gh, gc = random_grads(rng, T, N, H, dtype)
    gy_t = np.ascontiguousarray(gy.transpose(2, 1, 0)).transpose(2, 1, 0)
    for a, b in zip(ops.lstm_backward(gy_t, gh, gc, **q), ops.lstm_backward(gy, gh, gc, **p)):
        np.testing.assert_array_equal(a, b)


# ---- the nonlinearities ----------------------------------------------------------

def ulps(actual, expected, dtype):
    expected = np.asarray(expected, dtype=np.float64)
    spacing = np.spacing(np.abs(expected).astype(dtype)).astype(np.float64)
    tiny = float(np.finfo(dtype).tiny)
    return np.abs(actual.astype(np.float64) - expected) / np.maximum(spacing, tiny)


def gate_probe(z_i, z_g, dtype, H=7):
    """A cell step whose c is exactly i * g for the given pre-activations (1-D,
    laid out over rows of H units): w_ih = identity (I = 4H), hx = cx = 0, no bias."""
    n = z_i.size
    rows = -(-n // H)

    def rows_of(z):
        return np.concatenate([z, np.zeros(rows * H - n)]).reshape(rows, H)

    zero = np.zeros((rows, H))
    x = np.concatenate([rows_of(z_i), zero, rows_of(z_g), zero], axis=1).astype(dtype)
    state = np.zeros((rows, H), dtype)
    c = ops.lstm_cell(x, state, state, np.eye(4 * H, dtype=dtype), np.ones((4 * H, H), dtype))[1]
    return c.reshape(-1)[:n]


def test_sigmoid_tanh_ulps(isa, dtype):
    # g saturated to exactly 1 isolates sigmoid(z_i); i saturated to exactly 1 isolates tanh(z_g).
    z = np.concatenate([np.linspace(-20, 20, 4001), np.geomspace(1e-30, 0.7, 500),
                        -np.geomspace(1e-30, 0.7, 500), [0.0, 0.29999, 0.3, 0.30001, -0.3]])
    z = z.astype(dtype)
    big = np.full(z.size, 60.0)
    z64 = z.astype(np.float64)
    sig = gate_probe(z, big, dtype)
    assert ulps(sig, 1.0 / (1.0 + np.exp(-z64)), dtype).max() <= 4
    th = gate_probe(big, z, dtype)
    assert ulps(th, np.tanh(z64), dtype).max() <= 4
    assert np.all(np.signbit(th) == np.signbit(z))


def test_saturation_and_special_values(isa, dtype, rng):
    # (Infinities cannot pass through the identity-weight probe: inf * 0 is NaN.)
    z = np.array([-1e30, -1e4, -800.0, 100.0, 800.0, 1e4, 1e30], dtype)
    big = np.full(z.size, 60.0)
    np.testing.assert_array_equal(gate_probe(z, big, dtype), (z > 0).astype(dtype))
    np.testing.assert_array_equal(gate_probe(big, z, dtype), np.sign(z).astype(dtype))
    nan = gate_probe(np.array([np.nan, 1.0]), np.array([1.0, np.nan]), dtype)
    assert np.isnan(nan).all()
    # Large pre-activations from large weights: exactly saturated gates, no NaN.
    T, N, I, H = 3, 4, 6, 11
    p = make_params(rng, T, N, I, H, dtype, scale=300.0)
    y, h, c = ops.lstm(**p)
    assert np.isfinite(y).all() and np.abs(y).max() <= 1
    y_ref, _, c_ref = ref.lstm_ref(**p)
    # Errors in the pre-activations scale with the weights; the gate slopes are at most 1.
    assert_close(y, y_ref, dtype, T * (I + H), "y", c=8.0 * 300)
    assert_close(c, c_ref, dtype, T * (I + H), "c", c=8.0 * 300)
    gy, gh, gc = random_grads(rng, T, N, H, dtype)
    g = ops.lstm_backward(gy, gh, gc, **p)
    assert all(np.isfinite(a).all() for a in g)
    # A NaN in one batch row spreads through that row only.
    p = make_params(rng, 2, 3, 4, 5, dtype)
    p["x"][0, 1, 2] = np.nan
    y, h, c = ops.lstm(**p)
    assert np.isnan(y[:, 1]).all() and np.isfinite(y[:, [0, 2]]).all()


# ---- finite differences ----------------------------------------------------------

def finite_difference_check(forward, backward, params, out_grads, names, eps=1e-6):
    """Every gradient of sum(outputs * out_grads) against central differences."""
    grads = backward(*out_grads, **params)

    def loss(p):
        return sum(float(np.sum(o * g)) for o, g in zip(forward(**p), out_grads) if g is not None)

    for name, grad in zip(GRAD_NAMES, grads):
        arg = name[len("grad_"):]
        if params[arg] is None:
            assert grad is None
            continue
        numeric = np.zeros_like(params[arg])
        for idx in np.ndindex(params[arg].shape):
            p = {k: None if v is None else v.copy() for k, v in params.items()}
            p[arg][idx] += eps
            up = loss(p)
            p[arg][idx] -= 2 * eps
            numeric[idx] = (up - loss(p)) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8, err_msg=name)


def test_lstm_cell_finite_differences(rng):
    p = make_params(rng, None, 2, 3, 3, np.float64, scale=0.8)
    gh, gc = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    finite_difference_check(ops.lstm_cell, ops.lstm_cell_backward, p, (gh, gc), GRAD_NAMES)


def test_lstm_finite_differences(rng):
    T, N, I, H = 4, 2, 3, 2
    p = make_params(rng, T, N, I, H, np.float64, scale=0.8)
    finite_difference_check(ops.lstm, ops.lstm_backward, p, random_grads(rng, T, N, H, np.float64),
                            GRAD_NAMES)


def test_reference_backward_finite_differences(rng):
    # The reference BPTT is checked on its own too, so that the two never agree on a mistake.
    T, N, I, H = 3, 2, 2, 3
    p = make_params(rng, T, N, I, H, np.float64, scale=0.8)
    finite_difference_check(ref.lstm_ref, ref.lstm_backward_ref, p,
                            random_grads(rng, T, N, H, np.float64), GRAD_NAMES)


# ---- bad input -------------------------------------------------------------------

def test_errors(rng):
    p = make_params(rng, 2, 3, 4, 5, np.float32)
    cell = dict(p, x=p["x"][0])

    def raises(exc, fn, pattern, **changes):
        base = cell if fn in (ops.lstm_cell,) else p
        with pytest.raises(exc, match=pattern):
            fn(**dict(base, **changes))

    raises(ValueError, ops.lstm_cell, r"'x'.*\(2, 3, 4\)", x=p["x"])
    raises(ValueError, ops.lstm, r"'x'.*\(3, 4\)", x=p["x"][0])
    raises(ValueError, ops.lstm, r"'w_hh'.*\(20, 4\)", w_hh=p["w_hh"][:, :4])
    raises(ValueError, ops.lstm, r"'w_hh'.*\(20,\)", w_hh=p["w_hh"][:, 0])
    raises(ValueError, ops.lstm_cell, r"'w_ih'.*\(20, 3\).*\(20, 4\)", w_ih=p["w_ih"][:, :3])
    raises(ValueError, ops.lstm, r"'w_ih'.*\(16, 4\).*\(20, 4\)", w_ih=p["w_ih"][:16])
    raises(ValueError, ops.lstm, r"'hx'.*\(2, 5\).*\(3, 5\)", hx=p["hx"][:2])
    raises(ValueError, ops.lstm_cell, r"'cx'.*\(3, 4\).*\(3, 5\)", cx=p["cx"][:, :4])
    raises(ValueError, ops.lstm_cell, r"'hx'.*\(5,\).*\(3, 5\)", hx=p["hx"][0])
    raises(ValueError, ops.lstm, r"'b_ih'.*\(19,\).*\(20,\)", b_ih=p["b_ih"][:19])
    raises(ValueError, ops.lstm, r"'b_hh'.*\(1, 20\)", b_hh=p["b_hh"][None])
    raises(TypeError, ops.lstm, r"'w_hh'.*float64.*float32", w_hh=p["w_hh"].astype(np.float64))
    raises(TypeError, ops.lstm_cell, r"'cx'.*float64", cx=p["cx"].astype(np.float64))
    raises(TypeError, ops.lstm, r"'x'.*int64", x=p["x"].astype(np.int64))
    gy, gh, gc = random_grads(rng, 2, 3, 5, np.float32)
    with pytest.raises(ValueError, match=r"'grad_y'.*\(1, 3, 5\).*\(2, 3, 5\)"):
        ops.lstm_backward(gy[:1], gh, gc, **p)
    with pytest.raises(ValueError, match=r"'grad_c'.*\(3, 4\)"):
        ops.lstm_backward(gy, gh, gc[:, :4], **p)
    with pytest.raises(TypeError, match=r"'grad_h'.*float64"):
        ops.lstm_cell_backward(gh.astype(np.float64), gc, **cell)
    with pytest.raises(ValueError, match=r"'grad_h'.*\(2, 5\)"):
        ops.lstm_cell_backward(gh[:2], gc, **cell)


# ---- PyTorch ---------------------------------------------------------------------

@pytest.mark.parametrize("np_dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_against_torch(np_dtype, rng):
    torch = pytest.importorskip("torch")
    tdtype = torch.float32 if np_dtype == np.float32 else torch.float64
    T, N, I, H = 5, 3, 7, 10
    p = make_params(rng, T, N, I, H, np_dtype)
    gy, gh, gc = random_grads(rng, T, N, H, np_dtype)
    k = T * (I + 4 * H + N)

    lstm = torch.nn.LSTM(I, H).to(tdtype)
    cell = torch.nn.LSTMCell(I, H).to(tdtype)
    with torch.no_grad():
        for mod, sfx in ((lstm, "_l0"), (cell, "")):
            for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
                getattr(mod, name.replace("w_", "weight_").replace("b_", "bias_") + sfx).copy_(
                    torch.from_numpy(p[name]))
    x = torch.from_numpy(p["x"]).requires_grad_()
    hx = torch.from_numpy(p["hx"]).requires_grad_()
    cx = torch.from_numpy(p["cx"]).requires_grad_()
    y, (h, c) = lstm(x, (hx[None], cx[None]))
    ours = ops.lstm(**p)
    for a, b in zip(ours, (y, h[0], c[0])):
        assert_close(a, b.detach().numpy().astype(np.float64), np_dtype, k)
    torch.autograd.backward([y, h[0], c[0]], [torch.from_numpy(g) for g in (gy, gh, gc)])
    theirs = [x.grad, hx.grad, cx.grad, lstm.weight_ih_l0.grad, lstm.weight_hh_l0.grad,
              lstm.bias_ih_l0.grad, lstm.bias_hh_l0.grad]
    for a, b in zip(ops.lstm_backward(gy, gh, gc, **p), theirs):
        assert_close(a, b.numpy().astype(np.float64), np_dtype, k)

    x0 = torch.from_numpy(p["x"][0]).requires_grad_()
    hx.grad = cx.grad = None
    h1, c1 = cell(x0, (hx, cx))
    cp = dict(p, x=p["x"][0])
    for a, b in zip(ops.lstm_cell(**cp), (h1, c1)):
        assert_close(a, b.detach().numpy().astype(np.float64), np_dtype, I + H)
    torch.autograd.backward([h1, c1], [torch.from_numpy(gh), torch.from_numpy(gc)])
    theirs = [x0.grad, hx.grad, cx.grad, cell.weight_ih.grad, cell.weight_hh.grad, cell.bias_ih.grad,
              cell.bias_hh.grad]
    for a, b in zip(ops.lstm_cell_backward(gh, gc, **cp), theirs):
        assert_close(a, b.numpy().astype(np.float64), np_dtype, I + 4 * H + N)
