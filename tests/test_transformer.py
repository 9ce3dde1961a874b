"""nn.MultiheadAttention and the Transformer layers: a NumPy reference of
multi-head attention, mask conventions, float64 gradient checks, and PyTorch
with identical weights when torch is importable."""
import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import nn
from tensorforge.nn.transformer import generate_square_subsequent_mask
from gradcheck import check_gradients
from test_rnn import _check_module_gradients, _compare_grads, _numpy, _to_torch


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _mha_reference(mha, query, key, value, mask):
    """Batch-first multi-head attention in NumPy; ``mask`` additive, (N, H, L, S)-broadcastable."""
    w = _numpy(mha.in_proj_weight)
    b = _numpy(mha.in_proj_bias)
    e, heads = mha.embed_dim, mha.num_heads
    q, k, v = (x @ w[i * e:(i + 1) * e].T + b[i * e:(i + 1) * e]
               for i, x in enumerate((query, key, value)))
    split = lambda x: x.reshape(x.shape[0], x.shape[1], heads, e // heads).transpose(0, 2, 1, 3)
    q, k, v = split(q), split(k), split(v)
    weights = _softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(e // heads) + mask)
    out = (weights @ v).transpose(0, 2, 1, 3).reshape(query.shape[0], query.shape[1], e)
    return out @ _numpy(mha.out_proj.weight).T + _numpy(mha.out_proj.bias), weights


def _mha(batch_first=True, **kwargs):
    tfg.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=batch_first, dtype=tfg.float64, **kwargs)
    with tfg.no_grad():
        if mha.in_proj_bias is not None:
            mha.in_proj_bias.normal_()
    return mha


def _masks(rng, batch=2, target=5, source=6):
    attn = rng.random((target, source)) < 0.3
    attn[:, 0] = False
    padding = np.zeros((batch, source), bool)
    padding[0, -2:] = True
    return attn, padding


def test_attention_matches_numpy_reference_with_masks():
    mha = _mha()
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 6, 8)), \
        rng.standard_normal((2, 6, 8))
    attn, padding = _masks(rng)
    additive = np.where(attn, -np.inf, 0)[None, None] + np.where(padding, -np.inf, 0)[:, None, None]
    ref_out, ref_weights = _mha_reference(mha, q, k, v, additive)
    out, weights = mha(tfg.tensor(q), tfg.tensor(k), tfg.tensor(v), attn_mask=tfg.tensor(attn),
                       key_padding_mask=tfg.tensor(padding), average_attn_weights=False)
    np.testing.assert_allclose(_numpy(out), ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_numpy(weights), ref_weights, rtol=1e-12, atol=1e-12)
    assert np.all(_numpy(weights)[0, :, :, -2:] == 0)
    _, averaged = mha(tfg.tensor(q), tfg.tensor(k), tfg.tensor(v), attn_mask=tfg.tensor(attn),
                      key_padding_mask=tfg.tensor(padding))
    np.testing.assert_allclose(_numpy(averaged), ref_weights.mean(1), rtol=1e-12, atol=1e-12)
    fused, none = mha(tfg.tensor(q), tfg.tensor(k), tfg.tensor(v), attn_mask=tfg.tensor(attn),
                      key_padding_mask=tfg.tensor(padding), need_weights=False)
    assert none is None
    np.testing.assert_allclose(_numpy(fused), ref_out, rtol=1e-10, atol=1e-12)


def test_float_masks_are_added_and_bool_masks_mean_masked_out():
    mha = _mha()
    rng = np.random.default_rng(1)
    x = tfg.tensor(rng.standard_normal((2, 5, 8)))
    attn, padding = _masks(rng, source=5)
    bias = rng.standard_normal((5, 5))
    out, weights = mha(x, x, x, attn_mask=tfg.tensor(bias), average_attn_weights=False)
    ref_out, ref_weights = _mha_reference(mha, _numpy(x), _numpy(x), _numpy(x), bias)
    np.testing.assert_allclose(_numpy(out), ref_out, rtol=1e-12, atol=1e-12)
    as_bool = mha(x, x, x, attn_mask=tfg.tensor(attn), key_padding_mask=tfg.tensor(padding))
    as_float = mha(x, x, x, attn_mask=tfg.tensor(np.where(attn, -np.inf, 0.0)),
                   key_padding_mask=tfg.tensor(np.where(padding, -np.inf, 0.0)))
    for a, b in zip(as_bool, as_float):
        np.testing.assert_allclose(_numpy(a), _numpy(b), rtol=1e-12, atol=1e-12)
    per_head = np.repeat(np.where(attn, -np.inf, 0.0)[None], 4, axis=0)
    three_d = mha(x, x, x, attn_mask=tfg.tensor(per_head))
    np.testing.assert_allclose(_numpy(three_d[0]), _numpy(mha(x, x, x,
                               attn_mask=tfg.tensor(attn))[0]), rtol=1e-12, atol=1e-12)


def test_is_causal_equals_the_causal_mask_on_both_paths():
    mha = _mha()
    x = tfg.tensor(np.random.default_rng(2).standard_normal((2, 5, 8)))
    causal = generate_square_subsequent_mask(5, dtype=tfg.float64)
    assert _numpy(causal)[0, 1] == -np.inf and _numpy(causal)[1, 0] == 0
    expected, weights = mha(x, x, x, attn_mask=causal)
    assert np.all(np.triu(_numpy(weights), 1) == 0)
    for need_weights in (True, False):
        out, _ = mha(x, x, x, is_causal=True, need_weights=need_weights)
        np.testing.assert_allclose(_numpy(out), _numpy(expected), rtol=1e-10, atol=1e-12)


def test_layouts_unbatched_and_kdim_vdim():
    mha = _mha()
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 5, 8))
    batched, weights = mha(*(tfg.tensor(q),) * 3)
    single, single_weights = mha(*(tfg.tensor(q[1]),) * 3)
    assert single.shape == (5, 8) and single_weights.shape == (5, 5)
    np.testing.assert_allclose(_numpy(single), _numpy(batched)[1], rtol=1e-12, atol=1e-12)
    seq_first = nn.MultiheadAttention(8, 2, dtype=tfg.float64)
    seq_first.load_state_dict(mha.state_dict())
    out, w = seq_first(*(tfg.tensor(q.transpose(1, 0, 2)),) * 3)
    np.testing.assert_allclose(_numpy(out).transpose(1, 0, 2), _numpy(batched), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(_numpy(w), _numpy(weights), rtol=1e-12, atol=1e-12)
    cross = nn.MultiheadAttention(8, 4, kdim=3, vdim=5, batch_first=True)
    assert [n for n, _ in cross.named_parameters()] == [
        "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "out_proj.weight",
        "out_proj.bias"]
    out, w = cross(tfg.randn(2, 4, 8), tfg.randn(2, 7, 3), tfg.randn(2, 7, 5))
    assert out.shape == (2, 4, 8) and w.shape == (2, 4, 7)


def test_initialisation_and_bad_arguments():
    tfg.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2)
    assert np.all(_numpy(mha.in_proj_bias) == 0) and np.all(_numpy(mha.out_proj.bias) == 0)
    assert np.abs(_numpy(mha.in_proj_weight)).max() <= np.sqrt(6 / 32)
    assert [n for n, _ in nn.MultiheadAttention(8, 2, bias=False).named_parameters()] == \
        ["in_proj_weight", "out_proj.weight"]
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(8, 3)
    x = tfg.randn(5, 2, 8)
    with pytest.raises(ValueError, match="attn_mask"):
        mha(x, x, x, attn_mask=tfg.zeros(5, 4))
    with pytest.raises(ValueError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=tfg.zeros(5, 2))
    with pytest.raises(TypeError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=np.zeros((2, 5), bool))
    with pytest.raises(ValueError, match="features"):
        mha(x, x, tfg.randn(5, 2, 4))
    with pytest.raises(ValueError, match="activation"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")


def test_dropout_applies_only_in_training():
    tfg.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5, batch_first=True)
    x = tfg.randn(2, 5, 8)
    layer.eval()
    evaluated = _numpy(layer(x))
    np.testing.assert_array_equal(evaluated, _numpy(layer(x)))
    layer.train()
    tfg.manual_seed(3)
    trained = _numpy(layer(x))
    tfg.manual_seed(3)
    np.testing.assert_array_equal(trained, _numpy(layer(x)))
    assert not np.allclose(trained, evaluated)
    mha = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)
    _, weights = mha(x, x, x, average_attn_weights=False)
    assert np.any(_numpy(weights) == 0)


# ------------------------------------------------------------ gradient checks
@pytest.mark.parametrize("need_weights", [True, False])
def test_attention_gradients(need_weights):
    tfg.manual_seed(0)
    mha = nn.MultiheadAttention(4, 2, batch_first=True)
    rng = np.random.default_rng(4)
    q, kv = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 2, 4))
    padding = tfg.tensor(np.array([[False, False], [False, True]]))
    _check_module_gradients(
        mha, [q, kv], lambda m, q, kv: m(q, kv, kv, key_padding_mask=padding,
                                         need_weights=need_weights))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_gradients(norm_first):
    tfg.manual_seed(0)
    layer = nn.TransformerEncoderLayer(4, 2, 3, batch_first=True, norm_first=norm_first).eval()
    x = np.random.default_rng(5).standard_normal((1, 3, 4))
    _check_module_gradients(layer, [x], lambda m, x: m(x, is_causal=True))


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_gradients(norm_first):
    tfg.manual_seed(0)
    layer = nn.TransformerDecoderLayer(2, 2, 3, activation="gelu", norm_first=norm_first).eval()
    rng = np.random.default_rng(6)
    tgt, memory = rng.standard_normal((3, 1, 2)), rng.standard_normal((2, 1, 2))
    mask = generate_square_subsequent_mask(3, dtype=tfg.float64)
    _check_module_gradients(layer, [tgt, memory],
                            lambda m, t, mem: m(t, mem, tgt_mask=mask, tgt_is_causal=True))


# ----------------------------------------------------------------- PyTorch
MASK_CASES = ["none", "bool", "float", "padding", "bool+padding", "float+padding", "per-head",
              "causal"]


def _torch_masks(case, rng, torch, batch, heads, target, source):
    attn, padding = _masks(rng, batch, target, source)
    masks = {}
    if case in ("bool", "bool+padding"):
        masks["attn_mask"] = attn
    if case in ("float", "float+padding"):
        masks["attn_mask"] = rng.standard_normal((target, source))
    if "padding" in case:
        masks["key_padding_mask"] = padding if case != "float+padding" else \
            np.where(padding, -np.inf, 0.0)
    if case == "per-head":
        masks["attn_mask"] = rng.standard_normal((batch * heads, target, source))
    if case == "causal":
        masks["attn_mask"] = np.triu(np.ones((target, source), bool), 1)
        masks["is_causal"] = True
    ours = {k: tfg.tensor(v) if isinstance(v, np.ndarray) else v for k, v in masks.items()}
    theirs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in masks.items()}
    return ours, theirs


@pytest.mark.parametrize("need_weights,average", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("case", MASK_CASES)
def test_attention_matches_pytorch(case, need_weights, average):
    torch = pytest.importorskip("torch")
    batch_first = case in ("bool", "padding", "causal")
    ours = _mha(batch_first=batch_first)
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first).double()
    _to_torch(ours, theirs, torch)
    rng = np.random.default_rng(7)
    target = source = 5
    shape = (2, target, 8) if batch_first else (target, 2, 8)
    x = rng.standard_normal(shape)
    our_masks, their_masks = _torch_masks(case, rng, torch, 2, 2, target, source)
    our_x, their_x = tfg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, weights = ours(our_x, our_x, our_x, need_weights=need_weights,
                        average_attn_weights=average, **our_masks)
    ref, ref_weights = theirs(their_x, their_x, their_x, need_weights=need_weights,
                              average_attn_weights=average, **their_masks)
    np.testing.assert_allclose(_numpy(out), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    if need_weights:
        np.testing.assert_allclose(_numpy(weights), ref_weights.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
    else:
        assert weights is None and ref_weights is None
    grad = rng.standard_normal(out.shape)
    (out * tfg.tensor(grad)).sum().backward()
    (ref * torch.tensor(grad)).sum().backward()
    np.testing.assert_allclose(_numpy(our_x.grad), their_x.grad.numpy(), rtol=1e-9, atol=1e-11)
    _compare_grads(ours, theirs, rtol=1e-9, atol=1e-11)


def test_cross_attention_kdim_vdim_unbatched_matches_pytorch():
    torch = pytest.importorskip("torch")
    tfg.manual_seed(0)
    ours = nn.MultiheadAttention(8, 4, kdim=3, vdim=5, dtype=tfg.float64)
    theirs = torch.nn.MultiheadAttention(8, 4, kdim=3, vdim=5).double()
    _to_torch(ours, theirs, torch)
    rng = np.random.default_rng(8)
    q, k, v = rng.standard_normal((4, 8)), rng.standard_normal((6, 3)), rng.standard_normal((6, 5))
    padding = np.array([False] * 5 + [True])
    for need_weights in (True, False):
        out, w = ours(tfg.tensor(q), tfg.tensor(k), tfg.tensor(v),
                      key_padding_mask=tfg.tensor(padding), need_weights=need_weights)
        ref, ref_w = theirs(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                            key_padding_mask=torch.tensor(padding), need_weights=need_weights)
        np.testing.assert_allclose(_numpy(out), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
        if need_weights:
            np.testing.assert_allclose(_numpy(w), ref_w.detach().numpy(), rtol=1e-10, atol=1e-12)


LAYER_CONFIGS = [dict(), dict(norm_first=True, activation="gelu"),
                 dict(batch_first=True, bias=False), dict(batch_first=True, activation="callable")]


def _layer_kwargs(config, torch, ours):
    kwargs = dict(config)
    if kwargs.get("activation") == "callable":
        kwargs["activation"] = (lambda x: x.sigmoid() * x) if ours else torch.nn.functional.silu
    return kwargs


def _run_pair(ours, theirs, torch, arrays, call_ours, call_theirs, float32=False):
    dtype = np.float32 if float32 else np.float64
    our_in = [tfg.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    their_in = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    out, ref = call_ours(ours, *our_in), call_theirs(theirs, *their_in)
    rtol, atol = (1e-4, 1e-5) if float32 else (1e-9, 1e-11)
    np.testing.assert_allclose(_numpy(out), ref.detach().numpy(), rtol=rtol, atol=atol)
    grad = np.random.default_rng(9).standard_normal(out.shape).astype(dtype)
    (out * tfg.tensor(grad)).sum().backward()
    (ref * torch.tensor(grad)).sum().backward()
    for a, b in zip(our_in, their_in):
        np.testing.assert_allclose(_numpy(a.grad), b.grad.numpy(), rtol=rtol * 10, atol=atol * 10)
    _compare_grads(ours, theirs, rtol=rtol * 10, atol=atol * 10)


@pytest.mark.parametrize("config", LAYER_CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in
                                                                         c.items()) or "default")
def test_encoder_layer_matches_pytorch(config):
    torch = pytest.importorskip("torch")
    tfg.manual_seed(0)
    ours = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.2, dtype=tfg.float64,
                                      **_layer_kwargs(config, torch, True)).eval()
    theirs = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.2,
                                              **_layer_kwargs(config, torch, False)).double().eval()
    _to_torch(ours, theirs, torch)
    rng = np.random.default_rng(10)
    shape = (2, 5, 8) if config.get("batch_first") else (5, 2, 8)
    padding = np.zeros((2, 5), bool)
    padding[1, 3:] = True
    padding_float = np.where(padding, -np.inf, 0.0)
    causal = generate_square_subsequent_mask(5, dtype=tfg.float64)
    _run_pair(ours, theirs, torch, [rng.standard_normal(shape)],
              lambda m, x: m(x, src_mask=causal, src_key_padding_mask=tfg.tensor(padding_float)),
              lambda m, x: m(x, src_mask=torch.tensor(_numpy(causal)),
                             src_key_padding_mask=torch.tensor(padding_float)))


@pytest.mark.parametrize("config", LAYER_CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in
                                                                         c.items()) or "default")
def test_decoder_layer_matches_pytorch(config):
    torch = pytest.importorskip("torch")
    tfg.manual_seed(0)
    ours = nn.TransformerDecoderLayer(8, 2, 16, dtype=tfg.float64,
                                      **_layer_kwargs(config, torch, True)).eval()
    theirs = torch.nn.TransformerDecoderLayer(8, 2, 16,
                                              **_layer_kwargs(config, torch, False)).double().eval()
    _to_torch(ours, theirs, torch)
    rng = np.random.default_rng(11)
    batch_first = config.get("batch_first")
    tgt = rng.standard_normal((2, 5, 8) if batch_first else (5, 2, 8))
    memory = rng.standard_normal((2, 4, 8) if batch_first else (4, 2, 8))
    memory_padding = np.zeros((2, 4), bool)
    memory_padding[0, -1] = True
    causal = generate_square_subsequent_mask(5, dtype=tfg.float64)
    _run_pair(ours, theirs, torch, [tgt, memory],
              lambda m, t, mem: m(t, mem, tgt_mask=causal, tgt_is_causal=True,
                                  memory_key_padding_mask=tfg.tensor(memory_padding)),
              lambda m, t, mem: m(t, mem, tgt_mask=torch.tensor(_numpy(causal)),
                                  tgt_is_causal=True,
                                  memory_key_padding_mask=torch.tensor(memory_padding)))


def test_stacks_match_pytorch_in_float32():
    torch = pytest.importorskip("torch")
    tfg.manual_seed(0)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2,
                                    norm=nn.LayerNorm(8))
    decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, batch_first=True), 2,
                                    norm=nn.LayerNorm(8))
    our_model = nn.ModuleList([encoder, decoder]).eval()
    assert "layers.1.linear2.weight" in encoder.state_dict()
    assert not np.shares_memory(_numpy(encoder.layers[0].linear1.weight),
                                _numpy(encoder.layers[1].linear1.weight))
    their_model = torch.nn.ModuleList([
        torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True),
                                    2, norm=torch.nn.LayerNorm(8), enable_nested_tensor=False),
        torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(8, 2, 16, batch_first=True),
                                    2, norm=torch.nn.LayerNorm(8))]).eval()
    _to_torch(our_model, their_model, torch)
    rng = np.random.default_rng(12)
    causal = generate_square_subsequent_mask(4)

    def run(model, src, tgt, mask):
        return model[1](tgt, model[0](src), tgt_mask=mask, tgt_is_causal=True)

    _run_pair(our_model, their_model, torch,
              [rng.standard_normal((2, 6, 8)), rng.standard_normal((2, 4, 8))],
              lambda m, s, t: run(m, s, t, causal),
              lambda m, s, t: run(m, s, t, torch.tensor(_numpy(causal))), float32=True)


def test_check_gradients_of_the_mask_free_kernel_path():
    tfg.manual_seed(0)
    mha = nn.MultiheadAttention(4, 1, bias=False, dtype=tfg.float64)
    x = np.random.default_rng(13).standard_normal((3, 4))
    check_gradients(lambda x: mha(x, x, x, need_weights=False, is_causal=True)[0], x)


def test_transformer_matches_pytorch():
    torch = pytest.importorskip("torch")
    tfg.manual_seed(0)
    ours = nn.Transformer(8, 2, 2, 1, 16, batch_first=True, dtype=tfg.float64).eval()
    theirs = torch.nn.Transformer(8, 2, 2, 1, 16, batch_first=True).double().eval()
    _to_torch(ours, theirs, torch)
    assert np.abs(_numpy(ours.encoder.layers[0].linear1.weight)).max() <= np.sqrt(6 / 24)
    causal = nn.Transformer.generate_square_subsequent_mask(4, dtype=tfg.float64)
    rng = np.random.default_rng(14)
    _run_pair(ours, theirs, torch, [rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 4, 8))],
              lambda m, s, t: m(s, t, tgt_mask=causal),
              lambda m, s, t: m(s, t, tgt_mask=torch.tensor(_numpy(causal))))
