"""The CUDA LSTM cell (csrc/ops/lstm/cuda/lstm.cu: CUDA GEMMs + fused
element-wise kernels) on the SIMT emulation: _C._cuda_lstm_cell and its
backward against the float64 references of test_lstm.py, on awkward sizes,
both dtypes, bias options, optional output gradients, 1-D input, empty sizes,
saturation, and the errors. Skipped unless the emulated build is imported
(tools/test_emulated.sh)."""
import numpy as np
import pytest

import reference as ref
from tensorforge import _C
from test_lstm import make_params, assert_close, assert_grads_close

cell = getattr(_C, "_cuda_lstm_cell", None)  # absent outside CUDA builds
cell_bw = getattr(_C, "_cuda_lstm_cell_backward", None)


@pytest.mark.parametrize("N,I,H", [(1, 1, 1), (1, 3, 1), (2, 5, 3), (5, 7, 17), (4, 33, 16), (3, 10, 37),
                                   (70, 9, 20)])
def test_lstm_cell(dtype, rng, N, I, H):
    p = make_params(rng, None, N, I, H, dtype)
    h, c = cell(**p)
    h_ref, c_ref = ref.lstm_cell_ref(**p)
    assert_close(h, h_ref, dtype, I + H, "h")
    assert_close(c, c_ref, dtype, I + H, "c")
    gh, gc = rng.standard_normal((N, H)).astype(dtype), rng.standard_normal((N, H)).astype(dtype)
    g = cell_bw(gh, gc, **p)
    assert_grads_close(g, ref.lstm_cell_backward_ref(gh, gc, **p), dtype, I + 4 * H + N)


@pytest.mark.parametrize("which", ["none", "ih", "hh"])
def test_bias_options(dtype, rng, which):
    N, I, H = 3, 4, 5
    p = make_params(rng, None, N, I, H, dtype)
    if which != "hh":
        p["b_hh"] = None
    if which != "ih":
        p["b_ih"] = None
    h, c = cell(**p)
    h_ref, c_ref = ref.lstm_cell_ref(**p)
    assert_close(h, h_ref, dtype, I + H, "h")
    gh, gc = rng.standard_normal((N, H)).astype(dtype), rng.standard_normal((N, H)).astype(dtype)
    g = cell_bw(gh, gc, **p)
    assert (g[5] is None) == (p["b_ih"] is None) and (g[6] is None) == (p["b_hh"] is None)
    assert_grads_close(g, ref.lstm_cell_backward_ref(gh, gc, **p), dtype, I + 4 * H + N)


def test_optional_output_grads_and_both_biases(dtype, rng):
    N, I, H = 2, 3, 9
    p = make_params(rng, None, N, I, H, dtype)
    gh, gc = rng.standard_normal((N, H)).astype(dtype), rng.standard_normal((N, H)).astype(dtype)
    for args in [(gh, None), (None, gc), (None, None)]:
        g = cell_bw(*args, **p)
        assert_grads_close(g, ref.lstm_cell_backward_ref(*args, **p), dtype, I + 4 * H + N)
    g = cell_bw(gh, gc, **p)
    np.testing.assert_array_equal(g[5], g[6])
    g[5][0] += 1  # separate arrays
    assert g[5][0] != g[6][0]
    assert all(np.all(a == 0) for a in cell_bw(None, None, **p))


def test_unbatched_and_non_contiguous(dtype, rng):
    I, H = 6, 5
    p = make_params(rng, None, 1, I, H, dtype)
    p["x"], p["hx"], p["cx"] = p["x"][0], p["hx"][0], p["cx"][0]
    h, c = cell(**p)
    assert h.shape == c.shape == (H,)
    h_ref, c_ref = ref.lstm_cell_ref(**p)
    assert_close(h, h_ref, dtype, I + H, "h")
    gh, gc = rng.standard_normal(H).astype(dtype), rng.standard_normal(H).astype(dtype)
    g = cell_bw(gh, gc, **p)
    assert g[0].shape == (I,) and g[1].shape == g[2].shape == (H,)
    assert_grads_close(g, ref.lstm_cell_backward_ref(gh, gc, **p), dtype, I + 4 * H)
    q = make_params(rng, None, 3, I, H, dtype)
    r = dict(q, w_ih=np.asfortranarray(q["w_ih"]), hx=np.asfortranarray(q["hx"]),
             b_ih=np.repeat(q["b_ih"], 2)[::2])
    for a, b in zip(cell(**r), cell(**q)):
        np.testing.assert_array_equal(a, b)


def test_empty_sizes(dtype, rng):
    for N, I, H in [(0, 4, 5), (3, 0, 4), (2, 3, 0)]:
        p = make_params(rng, None, N, I, H, dtype)
        h, c = cell(**p)
        h_ref, c_ref = ref.lstm_cell_ref(**p)
        assert_close(h, h_ref, dtype, I + H + 1, "h")
        assert_close(c, c_ref, dtype, I + H + 1, "c")
        gh, gc = rng.standard_normal((N, H)).astype(dtype), rng.standard_normal((N, H)).astype(dtype)
        g = cell_bw(gh, gc, **p)
        assert_grads_close(g, ref.lstm_cell_backward_ref(gh, gc, **p), dtype, I + 4 * H + N + 1)


def test_saturation_and_nan(dtype, rng):
    N, I, H = 4, 6, 11
    p = make_params(rng, None, N, I, H, dtype, scale=300.0)
    h, c = cell(**p)
    assert np.isfinite(h).all() and np.abs(h).max() <= 1
    h_ref, c_ref = ref.lstm_cell_ref(**p)
    assert_close(h, h_ref, dtype, I + H, "h", c=8.0 * 300)
    g = cell_bw(rng.standard_normal((N, H)).astype(dtype), rng.standard_normal((N, H)).astype(dtype), **p)
    assert all(np.isfinite(a).all() for a in g)
    p = make_params(rng, None, 3, 4, 5, dtype)
    p["x"][1, 2] = np.nan
    h, c = cell(**p)
    assert np.isnan(h[1]).all() and np.isfinite(h[[0, 2]]).all()


def test_errors(rng):
    p = make_params(rng, None, 3, 4, 5, np.float32)

    def raises(exc, fn, pattern, **changes):
        with pytest.raises(exc, match=pattern):
            fn(**dict(p, **changes))

    raises(ValueError, cell, r"_cuda_lstm_cell.*'x'.*\(2, 3, 4\)", x=np.zeros((2, 3, 4), np.float32))
    raises(ValueError, cell, r"'w_ih'.*\(20, 3\).*\(20, 4\)", w_ih=p["w_ih"][:, :3])
    raises(ValueError, cell, r"'cx'.*\(3, 4\).*\(3, 5\)", cx=p["cx"][:, :4])
    raises(ValueError, cell, r"'b_hh'.*\(1, 20\)", b_hh=p["b_hh"][None])
    raises(TypeError, cell, r"'cx'.*float64", cx=p["cx"].astype(np.float64))
    gh = np.zeros((3, 5), np.float32)
    with pytest.raises(TypeError, match=r"_cuda_lstm_cell_backward.*'grad_h'.*float64"):
        cell_bw(gh.astype(np.float64), gh, **p)
    with pytest.raises(ValueError, match=r"'grad_c'.*\(2, 5\)"):
        cell_bw(gh, gh[:2], **p)
