"""scaled_dot_product_attention forward and backward against the float64
references in reference.py (the plain softmax(q k^T * scale + mask) v), on
every ISA level and both dtypes; finite differences; errors; and PyTorch's
F.scaled_dot_product_attention when torch is importable."""
import numpy as np
import pytest

import reference as ref
import tensorforge as tfg

sdpa = tfg.ops.scaled_dot_product_attention
sdpa_bw = tfg.ops.scaled_dot_product_attention_backward


def rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def assert_close(actual, expected, dtype, terms, mag=1.0):
    """Error bound: c * eps * (E + S + Ev) relative to the larger of the
    result's magnitude and `mag` (the magnitude scores and values give)."""
    assert actual.shape == expected.shape
    assert actual.dtype == np.dtype(dtype)
    eps = float(np.finfo(dtype).eps)
    scale = max(ref._absmax(expected), mag)
    tol = 16 * eps * (terms + 1) * scale
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=0, atol=tol)


def qkv(rng, dtype, batch_q, batch_kv, L, S, E, Ev, scale=1.0, batch_v=None):
    q = rand(rng, batch_q + (L, E), dtype, scale)
    k = rand(rng, batch_kv + (S, E), dtype, scale)
    v = rand(rng, (batch_v if batch_v is not None else batch_kv) + (S, Ev), dtype)
    return q, k, v


def check(rng, dtype, q, k, v, mag=1.0, **kw):
    out = sdpa(q, k, v, **kw)
    terms = q.shape[-1] + k.shape[-2] + v.shape[-1]
    assert_close(out, ref.sdpa_ref(q, k, v, **kw), dtype, terms, mag)
    g = rand(rng, out.shape, dtype)
    grads = sdpa_bw(g, q, k, v, **kw)
    expected = ref.sdpa_backward_ref(g, q, k, v, **kw)
    for name, a, e, x in zip("qkv", grads, expected, (q, k, v)):
        assert a.shape == x.shape, name
        assert_close(a, e, dtype, 4 * terms, mag * max(ref._absmax(q), ref._absmax(k), 1.0))
    # The forward's saved results give the same gradients without the recompute.
    out2, lse = sdpa(q, k, v, **kw, return_lse=True)
    np.testing.assert_array_equal(out2, out)
    assert lse.shape == out.shape[:-1] and lse.dtype == out.dtype
    # (Equal up to rounding: dk / dv are summed per thread, Note [broadcast gradients].)
    for a, b in zip(sdpa_bw(g, q, k, v, **kw, output=out2, lse=lse), grads):
        assert_close(a, b.astype(np.float64), dtype, terms)
    return out, grads


# (L, S, E, Ev): L != S, head dims 1, 7, 33 (no multiple of any vector width),
# sizes across the 64-row query / key tiles.
SHAPES = [(1, 1, 1, 1), (5, 7, 3, 4), (7, 5, 7, 33), (65, 63, 33, 7), (64, 130, 16, 1),
          (130, 64, 64, 64)]


@pytest.mark.parametrize("L,S,E,Ev", SHAPES)
@pytest.mark.parametrize("causal", [False, True])
def test_shapes(isa, dtype, rng, L, S, E, Ev, causal):
    q, k, v = qkv(rng, dtype, (2, 2), (2, 2), L, S, E, Ev)
    check(rng, dtype, q, k, v, is_causal=causal)


def test_scale_and_2d(isa, dtype, rng):
    q, k, v = qkv(rng, dtype, (), (), 9, 11, 5, 6)
    check(rng, dtype, q, k, v, scale=0.37)
    check(rng, dtype, q, k, v, is_causal=True, scale=2.0)


@pytest.mark.parametrize("mask_shape", [(9, 70), (70,), (1, 70), (9, 1), (3, 1, 70), (2, 3, 9, 70),
                                        (2, 1, 1, 70), ()])
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masks(isa, dtype, rng, mask_shape, kind):
    q, k, v = qkv(rng, dtype, (2, 3), (2, 3), 9, 70, 7, 5)
    if kind == "bool":
        mask = np.asarray(rng.random(mask_shape) < 0.7)
    else:
        mask = np.asarray(rand(rng, mask_shape, dtype, 2.0))
        if mask.ndim:
            mask[rng.random(mask_shape) < 0.2] = -np.inf
    check(rng, dtype, q, k, v, attn_mask=mask)


def test_mask_non_contiguous(isa, dtype, rng):
    q, k, v = qkv(rng, dtype, (2,), (2,), 6, 20, 4, 3)
    bmask = (rng.random((20, 6)) < 0.8).T          # transposed bool
    fmask = rand(rng, (6, 40), dtype)[::-1, ::2]    # negative and step strides
    check(rng, dtype, q, k, v, attn_mask=bmask)
    check(rng, dtype, q, k, v, attn_mask=fmask)


@pytest.mark.parametrize("L,S", [(3, 70), (70, 3), (66, 130), (130, 66)])
def test_causal_rectangular(isa, dtype, rng, L, S):
    # Top-left aligned: query i attends keys 0..i whatever L and S are.
    q, k, v = qkv(rng, dtype, (2,), (2,), L, S, 8, 9)
    check(rng, dtype, q, k, v, is_causal=True)


@pytest.mark.parametrize("hq,hk,hv", [(6, 2, 3), (4, 1, 1), (8, 8, 8), (6, 3, 6)])
def test_gqa(isa, dtype, rng, hq, hk, hv):
    q = rand(rng, (2, hq, 19, 6), dtype)
    k = rand(rng, (2, hk, 23, 6), dtype)
    v = rand(rng, (2, hv, 23, 5), dtype)
    check(rng, dtype, q, k, v, enable_gqa=True)
    check(rng, dtype, q, k, v, enable_gqa=True, is_causal=True)


def test_batch_broadcast(isa, dtype, rng):
    # k / v broadcast over the batch, q over the heads; gradients summed back.
    q = rand(rng, (3, 1, 10, 6), dtype)
    k = rand(rng, (1, 4, 12, 6), dtype)
    v = rand(rng, (4, 12, 5), dtype)
    out, _ = check(rng, dtype, q, k, v)
    assert out.shape == (3, 4, 10, 5)


def test_non_contiguous_inputs(isa, dtype, rng):
    base = rand(rng, (2, 13, 3, 8), dtype)
    q = base.transpose(0, 2, 1, 3)                        # (2, 3, 13, 8)
    k = rand(rng, (2, 3, 8, 30), dtype).swapaxes(-1, -2)  # (2, 3, 30, 8)
    v = rand(rng, (2, 3, 30, 10), dtype)[..., ::2]
    check(rng, dtype, q, k, v, is_causal=True)


def test_lse(isa, dtype, rng):
    q, k, v = qkv(rng, dtype, (2,), (2,), 9, 70, 5, 3)
    mask = rng.random((9, 70)) < 0.5
    mask[4] = False
    _, lse = sdpa(q, k, v, attn_mask=mask, return_lse=True)
    s = np.where(mask, q.astype(np.float64) @ np.swapaxes(k, -1, -2) / np.sqrt(5), -np.inf)
    with np.errstate(divide="ignore"):
        expected = np.log(np.sum(np.exp(s), axis=-1))
    expected[:, 4] = np.inf  # fully masked rows
    assert np.all(lse[:, 4] == np.inf)
    np.testing.assert_allclose(lse, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_fully_masked_rows(isa, dtype, rng):
    # PyTorch 2.13 returns 0 for a row whose keys are all masked (bool False or
    # float -inf), and zero gradients through it.
    q, k, v = qkv(rng, dtype, (2,), (2,), 5, 70, 4, 3)
    bmask = rng.random((5, 70)) < 0.5
    bmask[1] = False
    bmask[3, :] = False
    bmask[3, 69] = True  # only the last key (in the second key tile)
    fmask = np.where(bmask, 0.0, -np.inf).astype(dtype)
    for mask in (bmask, fmask):
        out, (gq, _, _) = check(rng, dtype, q, k, v, attn_mask=mask)
        assert np.all(out[:, 1] == 0) and np.all(gq[:, 1] == 0)
        assert np.all(np.isfinite(out))


def test_large_scores(isa, dtype, rng):
    # Scores of magnitude ~1e4: no overflow, the softmax is (nearly) one-hot.
    q, k, v = qkv(rng, dtype, (2,), (2,), 33, 67, 8, 5, scale=40.0)
    out = sdpa(q, k, v)
    assert np.all(np.isfinite(out))
    mag = float(np.abs(q.astype(np.float64) @ np.swapaxes(k, -1, -2)).max()) / np.sqrt(8)
    assert mag > 1e3
    assert_close(out, ref.sdpa_ref(q, k, v), dtype, 8 + 67 + 5, mag * ref._absmax(v))
    mask = rand(rng, (33, 67), dtype, 1e4)
    q2, k2, v2 = qkv(rng, dtype, (2,), (2,), 33, 67, 8, 5)
    out = sdpa(q2, k2, v2, attn_mask=mask)
    assert np.all(np.isfinite(out))
    assert_close(out, ref.sdpa_ref(q2, k2, v2, attn_mask=mask), dtype, 8 + 67 + 5, 1e4 * ref._absmax(v2))


@pytest.mark.parametrize("shape", [(0, 4, 3, 2), (2, 0, 3, 2), (2, 4, 0, 2), (2, 4, 3, 0), (2, 4, 0, 0)])
def test_empty(isa, dtype, rng, shape):
    B, L, S, E = shape
    q, k, v = qkv(rng, dtype, (B,), (B,), L, S, E, 3)
    out = sdpa(q, k, v)
    np.testing.assert_allclose(out, ref.sdpa_ref(q, k, v), atol=1e-6)
    grads = sdpa_bw(np.ones_like(out), q, k, v)
    for a, e in zip(grads, ref.sdpa_backward_ref(np.ones_like(out), q, k, v)):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, atol=1e-5)


def test_s_zero_gives_zeros(isa, dtype, rng):
    q, k, v = qkv(rng, dtype, (2,), (2,), 4, 0, 3, 5)
    out = sdpa(q, k, v)
    assert out.shape == (2, 4, 5) and np.all(out == 0)


@pytest.mark.parametrize("kw", [dict(), dict(is_causal=True), dict(enable_gqa=True),
                                dict(mask=True), dict(scale=0.7, broadcast=True)])
def test_finite_differences(isa, rng, kw):
    kw = dict(kw)
    hq = 4 if kw.get("enable_gqa") else 2
    q = rng.standard_normal((2, hq, 3, 3))
    k = rng.standard_normal((1 if kw.pop("broadcast", False) else 2, 2, 5, 3))
    v = rng.standard_normal((2, 2, 5, 2))
    if kw.pop("mask", False):
        kw["attn_mask"] = rng.random((3, 5)) < 0.7
    g = rng.standard_normal(sdpa(q, k, v, **kw).shape)
    grads = sdpa_bw(g, q, k, v, **kw)
    h = 1e-6
    for x, gx in zip((q, k, v), grads):
        num = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + h
            fp = np.sum(sdpa(q, k, v, **kw) * g)
            x[i] = old - h
            fm = np.sum(sdpa(q, k, v, **kw) * g)
            x[i] = old
            num[i] = (fp - fm) / (2 * h)
        np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-7)


def test_threads_agree(best_isa, restore_threads, rng):
    q, k, v = qkv(rng, np.float64, (2, 3), (2, 3), 150, 140, 8, 8)
    g = rng.standard_normal((2, 3, 150, 8))
    tfg.set_num_threads(1)
    one = (sdpa(q, k, v, is_causal=True),) + sdpa_bw(g, q, k, v, is_causal=True)
    tfg.set_num_threads(2)
    two = (sdpa(q, k, v, is_causal=True),) + sdpa_bw(g, q, k, v, is_causal=True)
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_errors():
    f4, f8 = np.float32, np.float64
    q = np.zeros((2, 3, 4, 5), f4)
    k = np.zeros((2, 3, 6, 5), f4)
    v = np.zeros((2, 3, 6, 7), f4)
    cases = [
        (ValueError, "key's last dim", (q, np.zeros((2, 3, 6, 4), f4), v), {}),
        (ValueError, "value's dim -2", (q, k, np.zeros((2, 3, 5, 7), f4)), {}),
        (ValueError, "do not broadcast", (q, np.zeros((3, 3, 6, 5), f4), np.zeros((3, 3, 6, 7), f4)), {}),
        (ValueError, "at least 2 dims", (np.zeros(5, f4), k, v), {}),
        (TypeError, "same dtype", (q, k.astype(f8), v), {}),
        (TypeError, "float32", (q.astype(np.int64), k, v), {}),
        (TypeError, "attn_mask", (q, k, v), dict(attn_mask=np.zeros((4, 6), f8))),
        (TypeError, "attn_mask", (q, k, v), dict(attn_mask=np.zeros((4, 6), np.int64))),
        (ValueError, "does not broadcast", (q, k, v), dict(attn_mask=np.zeros((4, 5), bool))),
        (ValueError, "does not broadcast", (q, k, v), dict(attn_mask=np.zeros((1, 2, 3, 4, 6), bool))),
        (ValueError, "does not broadcast", (q, k, v), dict(attn_mask=np.zeros((3, 3, 4, 6), bool))),
        (ValueError, "is_causal", (q, k, v), dict(attn_mask=np.ones((4, 6), bool), is_causal=True)),
        (ValueError, "multiple of", (np.zeros((2, 4, 4, 5), f4), np.zeros((2, 3, 6, 5), f4),
                                     np.zeros((2, 3, 6, 7), f4)), dict(enable_gqa=True)),
        (ValueError, "heads dim", (q[0, 0], k[0, 0], v[0, 0]), dict(enable_gqa=True)),
        (ValueError, "do not broadcast", (np.zeros((2, 6, 4, 5), f4), k, v), {}),
    ]
    for exc, text, args, kw in cases:
        with pytest.raises(exc, match=text):
            sdpa(*args, **kw)
        g = np.zeros((2, 3, 4, 7), f4)
        with pytest.raises(exc, match=text):
            sdpa_bw(g, *args, **kw)
    with pytest.raises(ValueError, match="grad_out has shape"):
        sdpa_bw(np.zeros((2, 3, 4, 5), f4), q, k, v)
    with pytest.raises(TypeError, match="grad_out has dtype"):
        sdpa_bw(np.zeros((2, 3, 4, 7), f8), q, k, v)
    g = np.zeros((2, 3, 4, 7), f4)
    out, lse = sdpa(q, k, v, return_lse=True)
    with pytest.raises(ValueError, match="together"):
        sdpa_bw(g, q, k, v, output=out)
    with pytest.raises(ValueError, match="lse"):
        sdpa_bw(g, q, k, v, output=out, lse=lse[..., :2])
    with pytest.raises(TypeError, match="dtype"):
        sdpa_bw(g, q, k, v, output=out, lse=lse.astype(f8))


TORCH_CASES = [
    dict(shape=(2, 4, 70, 66, 33, 7)),
    dict(shape=(2, 4, 70, 66, 33, 7), is_causal=True),
    dict(shape=(1, 2, 130, 20, 8, 8), is_causal=True),
    dict(shape=(2, 4, 9, 70, 16, 16), mask="bool"),
    dict(shape=(2, 4, 9, 70, 16, 16), mask="float"),
    dict(shape=(2, 4, 9, 70, 16, 16), mask="rows"),
    dict(shape=(2, 6, 17, 19, 8, 8), gqa=2, scale=0.3),
]


@pytest.mark.parametrize("case", range(len(TORCH_CASES)))
def test_against_torch(best_isa, dtype, rng, case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    c = TORCH_CASES[case]
    B, H, L, S, E, Ev = c["shape"]
    hk = H // c.get("gqa", 1)
    q = rand(rng, (B, H, L, E), dtype)
    k = rand(rng, (B, hk, S, E), dtype)
    v = rand(rng, (B, hk, S, Ev), dtype)
    kw = dict(is_causal=c.get("is_causal", False), scale=c.get("scale"), enable_gqa="gqa" in c)
    mask = None
    if c.get("mask") == "bool":
        mask = rng.random((L, S)) < 0.6
    elif c.get("mask") == "float":
        mask = rand(rng, (B, 1, L, S), dtype)
    elif c.get("mask") == "rows":
        mask = rng.random((B, H, L, S)) < 0.6
        mask[:, :, 2] = False
    tq, tk, tv = (torch.from_numpy(x.copy()).requires_grad_() for x in (q, k, v))
    tmask = torch.from_numpy(mask) if mask is not None else None
    tout = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask, **kw)
    g = rand(rng, tuple(tout.shape), dtype)
    tout.backward(torch.from_numpy(g))
    out = sdpa(q, k, v, attn_mask=mask, **kw)
    grads = sdpa_bw(g, q, k, v, attn_mask=mask, **kw)
    terms = E + S + Ev
    assert_close(out, tout.detach().numpy().astype(np.float64), dtype, 2 * terms)
    for a, t in zip(grads, (tq, tk, tv)):
        assert_close(a, t.grad.numpy().astype(np.float64), dtype, 8 * terms, max(ref._absmax(q), 1.0))
