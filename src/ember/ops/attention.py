"""Fused scaled-dot-product attention: `_fused_attention` (forward, giving the output and the per-row
logsumexp of the scaled, masked scores) and `_fused_attention_backward`. `nn.functional.
scaled_dot_product_attention` goes through them when there is no dropout: one kernel forward and two
backward on CUDA, instead of the eight and fifteen ops of the composite. The derivative is one joint
formula for query, key and value (the mask gets none: a float mask that requires grad takes the
composite); under `create_graph=True` it recomputes the composite so double backward is exact.

Shapes: query (*B, L, E), key (*B, S, E), value (*B, S, Ev) with the same batch dims *B; the mask
broadcasts to (*B, L, S), bool (True = may attend) or float (added to the scores). Rows where every
position is masked give zeros (lse -inf), as the composite does.
"""
from __future__ import annotations

from ..autograd.derivatives import derivative
from ..dispatch import defop

defop("_fused_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_mask, bool is_causal, float scale) "
      "-> (Tensor, Tensor)")
defop("_fused_attention_backward(Tensor grad_out, Tensor query, Tensor key, Tensor value, Tensor? attn_mask, "
      "Tensor out, Tensor lse, bool is_causal, float scale, bool need_query, bool need_key, bool need_value) "
      "-> (Tensor, Tensor, Tensor)")

derivative("_fused_attention", **{
    "query, key, value": "attention_backward(grad, query, key, value, attn_mask, result0, result1, is_causal, "
                         "scale, grad_input_mask)"})

# Self-attention on one packed in-projection (what nn.MultiheadAttention computes): qkv (B, L, 3E) holds
# q, k, v side by side, each split into num_heads heads of E // num_heads; out (B, L, E) holds the heads'
# outputs side by side again, lse (B, H, L). One node instead of the unflatten/select/reshape/transpose
# chain around _fused_attention, and on CUDA no copies: the kernels read the heads in place and write
# the output and qkv's grad in place.
defop("_packed_self_attention(Tensor qkv, int num_heads, Tensor? attn_mask, bool is_causal, float scale) "
      "-> (Tensor, Tensor)")
defop("_packed_self_attention_backward(Tensor grad_out, Tensor qkv, int num_heads, Tensor? attn_mask, Tensor out, "
      "Tensor lse, bool is_causal, float scale) -> Tensor")
derivative("_packed_self_attention",
           qkv="packed_attention_backward(grad, qkv, num_heads, attn_mask, result0, result1, is_causal, scale)")


def check_attention(query, key, value, attn_mask, is_causal, fn="_fused_attention") -> tuple:
    """(batch shape, L, S, E, Ev) after checking the shapes and dtypes the fused op takes."""
    if query.ndim < 2 or key.ndim != query.ndim or value.ndim != query.ndim:
        raise RuntimeError(f"{fn}: expected query, key and value with the same number (>= 2) of dimensions, got "
                           f"shapes {list(query.shape)}, {list(key.shape)} and {list(value.shape)}")
    batch = tuple(query._shape[:-2])
    L, E = query._shape[-2:]
    S, Ev = value._shape[-2:]
    if tuple(key._shape) != batch + (S, E) or tuple(value._shape[:-2]) != batch:
        raise RuntimeError(f"{fn}: expected key of shape {list(batch + (S, E))} and value of shape "
                           f"{list(batch) + [S, '*']} for query of shape {list(query.shape)}, got "
                           f"{list(key.shape)} and {list(value.shape)}")
    dt = query._dtype
    if dt.category != 2 or key._dtype is not dt or value._dtype is not dt:
        raise RuntimeError(f"{fn}: expected query, key and value of the same floating dtype, got {query._dtype}, "
                           f"{key._dtype} and {value._dtype}")
    if attn_mask is not None:
        if is_causal:
            raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when "
                               "is_causal=True")
        full = batch + (L, S)
        ms = tuple(attn_mask._shape)
        if attn_mask._dtype.category == 1 or len(ms) > len(full) or \
                any(m not in (1, f) for m, f in zip(ms[::-1], full[::-1])):
            raise RuntimeError(f"{fn}: expected a bool or floating attn_mask broadcastable to {list(full)}, got "
                               f"{attn_mask._dtype} of shape {list(ms)}")
    return batch, L, S, E, Ev


def check_packed(qkv, num_heads, fn="_packed_self_attention") -> tuple:
    """(B, L, E, head dim) of a packed (B, L, 3E) projection for num_heads heads."""
    if qkv.ndim != 3 or qkv._shape[2] % 3 or num_heads <= 0 or (qkv._shape[2] // 3) % num_heads:
        raise RuntimeError(f"{fn}: expected qkv of shape (B, L, 3 * E) with E divisible by num_heads, got shape "
                           f"{list(qkv.shape)} and num_heads={num_heads}")
    B, L, E3 = qkv._shape
    return B, L, E3 // 3, E3 // 3 // num_heads


def heads(t, num_heads: int, width: int, column: int = 0):
    """The (B, H, L, width // H) view (no autograd: for kernels) of columns [column, column + width)
    of a (B, L, C) tensor `t`, whose last dim must be contiguous."""
    B, L, _ = t._shape
    sb, sl, sc = t._stride
    if sc != 1 and t._shape[2] != 1:
        t = t.contiguous()
        sb, sl, sc = t._stride
    hd = width // num_heads
    return t._as_view((B, num_heads, L, hd), (sb, hd, sl, 1), t._offset + column)


def packed_views(qkv, num_heads: int) -> tuple:
    """q, k, v as (B, H, L, head dim) views of a packed (B, L, 3E) projection (no autograd)."""
    E = qkv._shape[2] // 3
    return tuple(heads(qkv, num_heads, E, j * E) for j in range(3))
