"""NumPy kernels of the fused scaled-dot-product attention (float16/bfloat16 computed in float32;
the logsumexp is float32, float64 for float64 inputs). The backward recomputes the probabilities
from the saved logsumexp, as the CUDA kernels do."""
from __future__ import annotations

import numpy as np

from ...ops import attention as rules
from ...ops.attention import heads, packed_views
from ._common import arr, compute_np, impl, wrap


def _scores(q, k, attn_mask, is_causal, scale, cnp):
    """The scaled scores with the mask applied (-inf where a position may not be attended): a new
    array the caller may overwrite."""
    s = np.matmul(q * cnp.type(scale), np.swapaxes(k, -1, -2))
    L, S = s.shape[-2:]
    if is_causal:
        s += np.triu(np.full((L, S), -np.inf, cnp), 1)
    elif attn_mask is not None:
        m = arr(attn_mask)
        if m.dtype == np.bool_:
            s = np.where(m, s, cnp.type(-np.inf))
        else:
            s += m.astype(cnp, copy=False)     # the mask broadcasts to the batch dims s has
    return s


@impl("_fused_attention")
def fused_attention(query, key, value, attn_mask, is_causal, scale):
    batch, L, S, E, Ev = rules.attention_dims(query, value)
    cnp = compute_np(query._dtype)
    q, k, v = (arr(t).astype(cnp, copy=False) for t in (query, key, value))
    if S == 0:
        out = np.zeros(batch + (L, Ev), cnp)
        lse = np.full(batch + (L,), -np.inf, cnp)
    else:
        p = _scores(q, k, attn_mask, is_causal, scale, cnp)
        m = np.maximum.reduce(p, axis=-1, keepdims=True)
        m[np.isneginf(m)] = 0      # fully masked rows: p = 0, lse = -inf, output 0
        p -= m
        np.exp(p, out=p)
        den = np.add.reduce(p, axis=-1, keepdims=True)
        out = np.matmul(p, v) * np.where(den > 0, 1 / den, 0).astype(cnp, copy=False)
        lse = (m + np.log(den))[..., 0]
    return wrap(out, query._dtype), wrap(lse, rules.lse_dtype(query._dtype))


@impl("_fused_attention_backward")
def fused_attention_backward(grad_out, query, key, value, attn_mask, out, lse, is_causal, scale, need_query,
                             need_key, need_value):
    cnp = compute_np(query._dtype)
    q, k, v, do, o = (arr(t).astype(cnp, copy=False) for t in (query, key, value, grad_out, out))
    lse = arr(lse).astype(cnp, copy=False)[..., None]
    p = _scores(q, k, attn_mask, is_causal, scale, cnp)
    p -= np.where(np.isneginf(lse), np.inf, lse).astype(cnp, copy=False)    # fully masked rows: p = 0
    np.exp(p, out=p)
    gq = gk = gv = None
    if need_value:
        gv = wrap(np.matmul(np.swapaxes(p, -1, -2), do), value._dtype)
    if need_query or need_key:
        ds = np.matmul(do, np.swapaxes(v, -1, -2))
        ds -= np.add.reduce(do * o, axis=-1, keepdims=True)
        ds *= p
        if need_query:
            gq = wrap(np.matmul(ds, k) * cnp.type(scale), query._dtype)
        if need_key:
            gk = wrap(np.matmul(np.swapaxes(ds, -1, -2), q) * cnp.type(scale), key._dtype)
    return gq, gk, gv


@impl("_packed_self_attention")
def packed_self_attention(qkv, num_heads, attn_mask, is_causal, scale):
    B, L, E, _ = rules.packed_dims(qkv, num_heads)
    out, lse = fused_attention(*packed_views(qkv, num_heads), attn_mask, is_causal, scale)
    return wrap(arr(out).transpose(0, 2, 1, 3).reshape(B, L, E), qkv._dtype), lse


@impl("_packed_self_attention_backward")
def packed_self_attention_backward(grad_out, qkv, num_heads, attn_mask, out, lse, is_causal, scale):
    B, L, E, _ = rules.packed_dims(qkv, num_heads)
    grads = fused_attention_backward(heads(grad_out, num_heads, E), *packed_views(qkv, num_heads), attn_mask,
                                     heads(out, num_heads, E), lse, is_causal, scale, True, True, True)
    d = np.stack([arr(g) for g in grads], axis=1)      # (B, 3, H, L, head dim)
    return wrap(d.transpose(0, 3, 1, 2, 4).reshape(B, L, 3 * E), qkv._dtype)
