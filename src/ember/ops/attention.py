"""Fused scaled-dot-product attention: `_fused_attention` (forward, giving the output and the per-row
logsumexp of the scaled, masked scores) and `_fused_attention_backward`. `nn.functional.
scaled_dot_product_attention` goes through them when there is no dropout: one kernel forward and two
backward on CUDA, instead of the eight and fifteen ops of the composite. The derivative is one joint
formula for query, key and value (the mask gets none: a float mask that requires grad takes the
composite); under `create_graph=True` it recomputes the composite so double backward is exact.

Shapes: query (*B, L, E), key (*B, S, E), value (*B, S, Ev) with the same batch dims *B; the mask
broadcasts to (*B, L, S), bool (True = may attend) or float (added to the scores). Rows where every
position is masked give zeros (lse -inf), as the composite does. The logsumexp rows are float32
(float64 for float64 inputs) on every device.
"""
from __future__ import annotations

from ..autograd.derivatives import derivative
from ..core import dtype as D
from ..dispatch import defop


def _check_mask(fn, attn_mask, is_causal, full):
    """attn_mask must broadcast to `full` (*B, L, S), be bool or floating, and not go with is_causal."""
    if attn_mask is None:
        return
    if is_causal:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when "
                           "is_causal=True")
    ms = attn_mask._shape
    if not (attn_mask._dtype is D.bool or attn_mask._dtype.is_floating_point) or len(ms) > len(full) or \
            any(m not in (1, f) for m, f in zip(ms[::-1], full[::-1])):
        raise RuntimeError(f"{fn}: expected a bool or floating attn_mask broadcastable to {list(full)}, got "
                           f"{attn_mask._dtype} of shape {list(ms)}")


def lse_dtype(dt):
    """The dtype of the logsumexp rows for inputs of dtype `dt`: float32, float64 for float64 inputs."""
    return D.float64 if dt is D.float64 else D.float32


def attention_dims(query, value) -> tuple:
    """(batch shape, L, S, E, Ev) of query (*B, L, E) and value (*B, S, Ev)."""
    *batch, L, E = query._shape
    S, Ev = value._shape[-2:]
    return tuple(batch), L, S, E, Ev


def packed_dims(qkv, num_heads) -> tuple:
    """(B, L, E, head dim) of a packed (B, L, 3E) projection for num_heads heads."""
    B, L, E3 = qkv._shape
    return B, L, E3 // 3, E3 // 3 // num_heads


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
    if not dt.is_floating_point or key._dtype is not dt or value._dtype is not dt:
        raise RuntimeError(f"{fn}: expected query, key and value of the same floating dtype, got {query._dtype}, "
                           f"{key._dtype} and {value._dtype}")
    _check_mask(fn, attn_mask, is_causal, batch + (L, S))
    return batch, L, S, E, Ev


def check_packed(qkv, num_heads, attn_mask, is_causal, fn="_packed_self_attention") -> tuple:
    """(B, L, E, head dim) of a packed (B, L, 3E) projection for num_heads heads, after checking it and
    the mask (which broadcasts to (B, num_heads, L, L))."""
    if qkv.ndim != 3 or qkv._shape[2] % 3 or num_heads <= 0 or (qkv._shape[2] // 3) % num_heads:
        raise RuntimeError(f"{fn}: expected qkv of shape (B, L, 3 * E) with E divisible by num_heads, got shape "
                           f"{list(qkv.shape)} and num_heads={num_heads}")
    if not qkv._dtype.is_floating_point:
        raise RuntimeError(f"{fn}: expected qkv of a floating dtype, got {qkv._dtype}")
    B, L, E3 = qkv._shape
    _check_mask(fn, attn_mask, is_causal, (B, num_heads, L, L))
    return packed_dims(qkv, num_heads)


def _check_saved(fn, pairs):
    """Each (name, tensor, expected shape) of a backward's grad and saved forward results."""
    for name, t, shape in pairs:
        if t._shape != shape:
            raise RuntimeError(f"{fn}: expected {name} of shape {list(shape)}, got {list(t._shape)}")


def fused_attention_meta(query, key, value, attn_mask, is_causal, scale):
    batch, L, S, E, Ev = check_attention(query, key, value, attn_mask, is_causal)
    dt = query._dtype
    return (batch + (L, Ev), dt), (batch + (L,), lse_dtype(dt))


def fused_attention_backward_meta(grad_out, query, key, value, attn_mask, out, lse, is_causal, scale, need_query,
                                  need_key, need_value, fn="_fused_attention_backward"):
    batch, L, S, E, Ev = check_attention(query, key, value, attn_mask, is_causal, fn)
    _check_saved(fn, (("grad_out", grad_out, batch + (L, Ev)), ("out", out, batch + (L, Ev)),
                      ("lse", lse, batch + (L,))))
    return tuple((t._shape, t._dtype) if need else None
                 for t, need in ((query, need_query), (key, need_key), (value, need_value)))


def packed_self_attention_meta(qkv, num_heads, attn_mask, is_causal, scale):
    B, L, E, _ = check_packed(qkv, num_heads, attn_mask, is_causal)
    return ((B, L, E), qkv._dtype), ((B, num_heads, L), lse_dtype(qkv._dtype))


def packed_self_attention_backward_meta(grad_out, qkv, num_heads, attn_mask, out, lse, is_causal, scale):
    fn = "_packed_self_attention_backward"
    B, L, E, _ = check_packed(qkv, num_heads, attn_mask, is_causal, fn)
    _check_saved(fn, (("grad_out", grad_out, (B, L, E)), ("out", out, (B, L, E)), ("lse", lse, (B, num_heads, L))))
    return qkv._shape, qkv._dtype


defop("_fused_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_mask, bool is_causal, float scale) "
      "-> (Tensor, Tensor)", meta=fused_attention_meta)
defop("_fused_attention_backward(Tensor grad_out, Tensor query, Tensor key, Tensor value, Tensor? attn_mask, "
      "Tensor out, Tensor lse, bool is_causal, float scale, bool need_query, bool need_key, bool need_value) "
      "-> (Tensor, Tensor, Tensor)", meta=fused_attention_backward_meta)

derivative("_fused_attention", **{
    "query, key, value": "attention_backward(grad, query, key, value, attn_mask, result0, result1, is_causal, "
                         "scale, grad_input_mask)"})

# With dropout on the attention probabilities (dropout_p in (0, 1)): the same, plus `rng`, an int64 (2,) tensor
# holding the random stream's (seed, base counter) the forward drew the mask from; the backward regenerates the
# mask from it, so nothing of size L x S is kept (torch's _scaled_dot_product_efficient_attention returns its
# philox seed and offset for the same reason). Score (b, l, s) of the flattened batch keeps its probability where
# word s % 4 of Philox-4x32-10 at counter base + (b * L + l) * ceil(S / 4) + s // 4, as a 24-bit uniform, is
# below 1 - dropout_p: the same mask on every device for the same generator state.

def _check_dropout(fn, dropout_p):
    if not 0.0 < dropout_p < 1.0:
        raise RuntimeError(f"{fn}: dropout_p must be in (0, 1), got {dropout_p} (0 takes _fused_attention; "
                           f"1 drops everything)")


def fused_attention_dropout_meta(query, key, value, attn_mask, is_causal, scale, dropout_p):
    _check_dropout("_fused_attention_dropout", dropout_p)
    (o, lse) = fused_attention_meta(query, key, value, attn_mask, is_causal, scale)
    return o, lse, ((2,), D.int64)


def fused_attention_dropout_backward_meta(grad_out, query, key, value, attn_mask, out, lse, rng, is_causal, scale,
                                          dropout_p, need_query, need_key, need_value):
    fn = "_fused_attention_dropout_backward"
    _check_dropout(fn, dropout_p)
    if rng._shape != (2,) or rng._dtype is not D.int64:
        raise RuntimeError(f"{fn}: expected rng, the forward's int64 (seed, offset) pair, got {rng._dtype} of shape "
                           f"{list(rng._shape)}")
    return fused_attention_backward_meta(grad_out, query, key, value, attn_mask, out, lse, is_causal, scale,
                                         need_query, need_key, need_value, fn)


defop("_fused_attention_dropout(Tensor query, Tensor key, Tensor value, Tensor? attn_mask, bool is_causal, "
      "float scale, float dropout_p) -> (Tensor, Tensor, Tensor)", meta=fused_attention_dropout_meta)
defop("_fused_attention_dropout_backward(Tensor grad_out, Tensor query, Tensor key, Tensor value, Tensor? attn_mask, "
      "Tensor out, Tensor lse, Tensor rng, bool is_causal, float scale, float dropout_p, bool need_query, "
      "bool need_key, bool need_value) -> (Tensor, Tensor, Tensor)", meta=fused_attention_dropout_backward_meta)
derivative("_fused_attention_dropout", **{
    "query, key, value": "attention_dropout_backward(grad, query, key, value, attn_mask, result0, result1, result2, "
                         "is_causal, scale, dropout_p, grad_input_mask)"})

# Self-attention on one packed in-projection (what nn.MultiheadAttention computes): qkv (B, L, 3E) holds
# q, k, v side by side, each split into num_heads heads of E // num_heads; out (B, L, E) holds the heads'
# outputs side by side again, lse (B, H, L). One node instead of the unflatten/select/reshape/transpose
# chain around _fused_attention, and on CUDA no copies: the kernels read the heads in place and write
# the output and qkv's grad in place.
defop("_packed_self_attention(Tensor qkv, int num_heads, Tensor? attn_mask, bool is_causal, float scale) "
      "-> (Tensor, Tensor)", meta=packed_self_attention_meta)
defop("_packed_self_attention_backward(Tensor grad_out, Tensor qkv, int num_heads, Tensor? attn_mask, Tensor out, "
      "Tensor lse, bool is_causal, float scale) -> Tensor", meta=packed_self_attention_backward_meta)
derivative("_packed_self_attention",
           qkv="packed_attention_backward(grad, qkv, num_heads, attn_mask, result0, result1, is_causal, scale)")


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
