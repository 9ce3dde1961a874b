"""``nn.MultiheadAttention`` with PyTorch's parameters (``in_proj_weight``,
``in_proj_bias``, ``out_proj``; ``q/k/v_proj_weight`` when key or value width
differs), masks and outputs.

Without attention weights to return (and no attention dropout to apply) the
heads go through the fused scaled-dot-product-attention kernel; otherwise the
weights are computed explicitly as softmax(q k^T / sqrt(d) + mask), returned,
and applied to v.
"""
import math

from .. import differentiable as D
from ..tensor import Tensor, arange, empty, zeros
from . import functional as F
from . import init
from .linear import Linear
from .module import Module, Parameter


def _additive_mask(mask, what, dtype):
    """``mask`` as a float tensor of ``dtype`` to add to attention scores: bool True
    (masked out) becomes -inf, a float mask is taken as is."""
    if mask.dtype.name == "bool":
        return zeros(*mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, -math.inf)
    if not mask.dtype.is_floating_point:
        raise TypeError(f"MultiheadAttention: {what} must be bool or floating point, got "
                        f"{mask.dtype}")
    return mask if mask.dtype == dtype else mask.to(dtype=dtype)


class MultiheadAttention(Module):
    """``torch.nn.MultiheadAttention``: ``forward(query, key, value, key_padding_mask=None,
    need_weights=True, attn_mask=None, average_attn_weights=True, is_causal=False) ->
    (output, weights or None)``.

    Inputs are (L, N, E) (or (N, L, E) with ``batch_first``, or (L, E) unbatched).
    Masks follow PyTorch's convention: bool True means "do not attend"; a float mask is
    added to the scores. ``key_padding_mask`` is (N, S); ``attn_mask`` (L, S) or
    (N * num_heads, L, S). ``is_causal`` without ``attn_mask`` applies the causal mask
    (PyTorch requires the mask to be passed as well)."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        for arg, value in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"MultiheadAttention: {arg} must be a positive integer, got "
                                 f"{value!r}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} must be divisible by "
                             f"num_heads {num_heads}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1], got {dropout!r}")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are "
                                      "not supported")
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        self.head_dim = embed_dim // num_heads
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, dtype=dtype,
                                                  device=device))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, dtype=dtype,
                                                 device=device))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, dtype=dtype,
                                                 device=device))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, dtype=dtype,
                                                 device=device))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, dtype=dtype, device=device))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
        if self.out_proj.bias is not None:
            init.zeros_(self.out_proj.bias)

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")

    # ------------------------------------------------------------------ forward
    def _projections(self, query, key, value):
        """q, k, v projected, each (N, len, E)."""
        if self._qkv_same_embed_dim:
            weights = D.chunk(self.in_proj_weight, 3, 0)
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        biases = (None,) * 3 if self.in_proj_bias is None else D.chunk(self.in_proj_bias, 3, 0)
        if self._qkv_same_embed_dim and query is key and key is value:
            return D.chunk(D.linear(query, self.in_proj_weight, self.in_proj_bias), 3, -1)
        return tuple(D.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))

    def _check_inputs(self, query, key, value, key_padding_mask, attn_mask):
        for what, x in (("query", query), ("key", key), ("value", value)):
            if not isinstance(x, Tensor):
                raise TypeError(f"MultiheadAttention: {what} must be a Tensor, got "
                                f"{type(x).__name__}")
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"MultiheadAttention: query, key and value must all be 2-D "
                             f"(unbatched) or 3-D (batched), got shapes {list(query.shape)}, "
                             f"{list(key.shape)}, {list(value.shape)}")
        for what, x, width in (("query", query, self.embed_dim), ("key", key, self.kdim),
                               ("value", value, self.vdim)):
            if x.shape[-1] != width:
                raise ValueError(f"MultiheadAttention: {what} must have {width} features in "
                                 f"its last dimension, got shape {list(x.shape)}")
        for what, mask in (("key_padding_mask", key_padding_mask), ("attn_mask", attn_mask)):
            if mask is not None and not isinstance(mask, Tensor):
                raise TypeError(f"MultiheadAttention: {what} must be a Tensor or None, got "
                                f"{type(mask).__name__}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"MultiheadAttention: key and value shapes {list(key.shape)} and "
                             f"{list(value.shape)} differ outside the feature dimension")

    def _merged_mask(self, attn_mask, key_padding_mask, is_causal, batch, target, source, dtype):
        """attn_mask (or the causal mask) and key_padding_mask as one additive float mask
        broadcastable to (N, heads, L, S), or None."""
        heads = self.num_heads
        if attn_mask is None and is_causal:
            device = self.out_proj.weight.device
            attn_mask = arange(source, device=device) > arange(target, device=device).unsqueeze(1)
        mask = None
        if attn_mask is not None:
            mask = _additive_mask(attn_mask, "attn_mask", dtype)
            if mask.shape == (batch * heads, target, source):
                mask = mask.reshape(batch, heads, target, source)
            elif mask.shape != (target, source):
                raise ValueError(f"MultiheadAttention: attn_mask must be of shape "
                                 f"{[target, source]} or {[batch * heads, target, source]}, "
                                 f"got {list(attn_mask.shape)}")
        if key_padding_mask is not None:
            padding = _additive_mask(key_padding_mask, "key_padding_mask", dtype)
            if padding.shape != (batch, source):
                raise ValueError(f"MultiheadAttention: key_padding_mask must be of shape "
                                 f"{[batch, source]}, got {list(key_padding_mask.shape)}")
            padding = padding.reshape(batch, 1, 1, source)
            mask = padding if mask is None else D.add(mask, padding)
        return mask

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        self._check_inputs(query, key, value, key_padding_mask, attn_mask)
        batched = query.ndim == 3
        same = query is key and key is value
        if not batched:
            query, key, value = (x.unsqueeze(0) for x in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        if query.shape[0] != key.shape[0]:
            raise ValueError(f"MultiheadAttention: query batch {query.shape[0]} and key batch "
                             f"{key.shape[0]} differ")
        if same:
            key = value = query
        batch, target, source = query.shape[0], query.shape[1], key.shape[1]
        heads, head_dim = self.num_heads, self.head_dim

        q, k, v = self._projections(query, key, value)
        q, k, v = (x.reshape(batch, x.shape[1], heads, head_dim).permute(0, 2, 1, 3)
                   for x in (q, k, v))
        dropout = self.dropout if self.training else 0.0
        explicit = need_weights or dropout > 0
        kernel_causal = is_causal and attn_mask is None and key_padding_mask is None \
            and not explicit
        mask = self._merged_mask(attn_mask, key_padding_mask, is_causal and not kernel_causal,
                                 batch, target, source, query.dtype)
        weights = None
        if explicit:
            scores = D.matmul(D.mul(q, 1.0 / math.sqrt(head_dim)), k.transpose(-2, -1))
            if mask is not None:
                scores = D.add(scores, mask)
            weights = D.softmax(scores, -1)
            if dropout > 0:
                weights = F.dropout(weights, dropout, True)
            out = D.matmul(weights, v)
        else:
            out = D.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=kernel_causal)
        out = self.out_proj(out.permute(0, 2, 1, 3).reshape(batch, target, self.embed_dim))
        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        return out, (weights if batched else weights.squeeze(0))


__all__ = ["MultiheadAttention"]
