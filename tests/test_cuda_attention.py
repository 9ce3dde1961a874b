"""The CUDA attention kernels (csrc/ops/attention/cuda/attention.cu) on the SIMT
emulation: _C._cuda_scaled_dot_product_attention and its backward against the
float64 references of test_attention.py, on shapes across the 16-row query and
32-key tiles, head dims that are no multiple of 32, causal with L != S, bool
and float masks, fully masked rows, GQA, broadcast batches, the saved
output / lse path and the errors. Skipped unless the emulated build is
imported (tools/test_emulated.sh)."""
import numpy as np
import pytest

import reference as ref
import tensorforge as tfg
from tensorforge import _C
from test_attention import rand, assert_close, qkv

sdpa = getattr(_C, "_cuda_scaled_dot_product_attention", None)  # absent outside CUDA builds
sdpa_bw = getattr(_C, "_cuda_scaled_dot_product_attention_backward", None)


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
    out2, lse = sdpa(q, k, v, **kw, return_lse=True)
    np.testing.assert_array_equal(out2, out)
    _, lse_cpu = tfg.ops.scaled_dot_product_attention(q, k, v, **kw, return_lse=True)
    np.testing.assert_allclose(lse, lse_cpu, rtol=1e-5 if dtype == np.float32 else 1e-12)
    # Deterministic kernels: the saved results give the very same gradients.
    for a, b in zip(sdpa_bw(g, q, k, v, **kw, output=out2, lse=lse), grads):
        np.testing.assert_array_equal(a, b)
    return out, grads


SHAPES = [(1, 1, 1, 1), (5, 7, 3, 4), (17, 33, 33, 7), (40, 70, 16, 1), (33, 16, 64, 40)]


@pytest.mark.parametrize("L,S,E,Ev", SHAPES)
@pytest.mark.parametrize("causal", [False, True])
def test_shapes(dtype, rng, L, S, E, Ev, causal):
    q, k, v = qkv(rng, dtype, (2,), (2,), L, S, E, Ev)
    check(rng, dtype, q, k, v, is_causal=causal)


def test_scale_and_2d(dtype, rng):
    q, k, v = qkv(rng, dtype, (), (), 9, 11, 5, 6)
    check(rng, dtype, q, k, v, scale=0.3)


@pytest.mark.parametrize("mask_shape", [(9, 40), (40,), (9, 1), (2, 1, 9, 40)])
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masks(dtype, rng, mask_shape, kind):
    q, k, v = qkv(rng, dtype, (2, 3), (2, 3), 9, 40, 5, 3)
    if kind == "bool":
        mask = rng.random(mask_shape) < 0.7
    else:
        mask = rand(rng, mask_shape, dtype)
    check(rng, dtype, q, k, v, attn_mask=mask)


@pytest.mark.parametrize("L,S", [(3, 40), (40, 3), (20, 70)])
def test_causal_rectangular(dtype, rng, L, S):
    q, k, v = qkv(rng, dtype, (2,), (2,), L, S, 6, 5)
    check(rng, dtype, q, k, v, is_causal=True)


@pytest.mark.parametrize("hq,hk,hv", [(6, 2, 3), (4, 1, 1)])
def test_gqa(dtype, rng, hq, hk, hv):
    q = rand(rng, (2, hq, 9, 5), dtype)
    k = rand(rng, (2, hk, 20, 5), dtype)
    v = rand(rng, (2, hv, 20, 3), dtype)
    check(rng, dtype, q, k, v, enable_gqa=True)
    check(rng, dtype, q, k, v, enable_gqa=True, is_causal=True)


def test_batch_broadcast_and_strides(dtype, rng):
    q = rand(rng, (2, 1, 7, 5), dtype)
    k = rand(rng, (1, 3, 20, 5), dtype)
    v = rand(rng, (2, 3, 20, 4), dtype)
    check(rng, dtype, q, k, v)
    qt = np.swapaxes(rand(rng, (2, 5, 7), dtype), -1, -2)
    check(rng, dtype, qt, k[0, :2, ::-1], v[0, :2, ::-1])


def test_fully_masked_rows(dtype, rng):
    q, k, v = qkv(rng, dtype, (2,), (2,), 5, 70, 4, 3)
    bmask = rng.random((5, 70)) < 0.5
    bmask[1] = False
    bmask[3, :] = False
    bmask[3, 69] = True  # only the last key (in the third key tile)
    fmask = np.where(bmask, 0.0, -np.inf).astype(dtype)
    for mask in (bmask, fmask):
        out, (gq, _, _) = check(rng, dtype, q, k, v, attn_mask=mask)
        assert np.all(out[:, 1] == 0) and np.all(gq[:, 1] == 0)
        assert np.all(np.isfinite(out))
        _, lse = sdpa(q, k, v, attn_mask=mask, return_lse=True)
        assert np.all(lse[:, 1] == np.inf)


def test_large_scores(dtype, rng):
    q, k, v = qkv(rng, dtype, (2,), (2,), 17, 40, 8, 5, scale=40.0)
    out = sdpa(q, k, v)
    assert np.all(np.isfinite(out))
    mag = float(np.abs(q.astype(np.float64) @ np.swapaxes(k, -1, -2)).max()) / np.sqrt(8)
    assert_close(out, ref.sdpa_ref(q, k, v), dtype, 8 + 40 + 5, mag * ref._absmax(v))


@pytest.mark.parametrize("shape", [(0, 4, 3, 2), (2, 0, 3, 2), (2, 4, 0, 2), (2, 4, 3, 0), (2, 4, 0, 0)])
def test_empty(dtype, rng, shape):
    B, L, S, E = shape
    q, k, v = qkv(rng, dtype, (B,), (B,), L, S, E, 3)
    out = sdpa(q, k, v)
    np.testing.assert_allclose(out, ref.sdpa_ref(q, k, v), atol=1e-6)
    grads = sdpa_bw(np.ones_like(out), q, k, v)
    for a, e in zip(grads, ref.sdpa_backward_ref(np.ones_like(out), q, k, v)):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, atol=1e-5)


def test_errors():
    f4, f8 = np.float32, np.float64
    q = np.zeros((2, 3, 4, 5), f4)
    k = np.zeros((2, 3, 6, 5), f4)
    v = np.zeros((2, 3, 6, 7), f4)
    cases = [
        (ValueError, "key's last dim", (q, np.zeros((2, 3, 6, 4), f4), v), {}),
        (TypeError, "same dtype", (q, k.astype(f8), v), {}),
        (TypeError, "attn_mask", (q, k, v), dict(attn_mask=np.zeros((4, 6), np.int64))),
        (ValueError, "does not broadcast", (q, k, v), dict(attn_mask=np.zeros((4, 5), bool))),
        (ValueError, "is_causal", (q, k, v), dict(attn_mask=np.ones((4, 6), bool), is_causal=True)),
        (ValueError, "multiple of", (np.zeros((2, 4, 4, 5), f4), np.zeros((2, 3, 6, 5), f4),
                                     np.zeros((2, 3, 6, 7), f4)), dict(enable_gqa=True)),
    ]
    for exc, text, args, kw in cases:
        with pytest.raises(exc, match="_cuda_scaled_dot_product_attention.*" + text):
            sdpa(*args, **kw)
        with pytest.raises(exc, match=text):
            sdpa_bw(np.zeros((2, 3, 4, 7), f4), *args, **kw)
    with pytest.raises(ValueError, match="grad_out has shape"):
        sdpa_bw(np.zeros((2, 3, 4, 5), f4), q, k, v)
    with pytest.raises(ValueError, match="together"):
        sdpa_bw(np.zeros((2, 3, 4, 7), f4), q, k, v, output=np.zeros((2, 3, 4, 7), f4))
    # E too large for a block's shared memory: a clear error, not a failed launch.
    big = np.zeros((1, 2, 2000), f8)
    with pytest.raises(ValueError, match="shared memory"):
        sdpa(big, big, big)
