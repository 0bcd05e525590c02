"""NumPy kernels of the fused scaled-dot-product attention (float16/bfloat16 computed in float32;
the logsumexp is float32, float64 for float64 inputs). The backward recomputes the probabilities
from the saved logsumexp, as the CUDA kernels do.

With dropout (`_fused_attention_dropout`), the mask comes from the generator's Philox counters as on
CUDA (`philox4` is Philox-4x32-10 in NumPy, the words `kernels/rng._randint4x` gives), so the same
generator state gives the same mask on both devices. It costs ten rounds of 64-bit multiplies per
score: `nn.functional.scaled_dot_product_attention` takes it on CUDA only, the composite on the CPU."""
from __future__ import annotations

import numpy as np

from ...core import dtype as D
from ...core.device import CPU
from ...ops import attention as rules
from ...ops.attention import heads, packed_views
from ...random import get_generator
from ._common import arr, compute_np, impl, wrap, wrap_strided


def philox4(seed: int, counters: np.ndarray) -> tuple:
    """The four uint32 words of Philox-4x32-10 with the 64-bit key `seed` at each uint64 counter (lo, hi, 0, 0)."""
    m32 = np.uint64(0xFFFFFFFF)
    k0, k1 = np.uint64(seed & 0xFFFFFFFF), np.uint64((seed >> 32) & 0xFFFFFFFF)
    c0, c1 = counters & m32, counters >> np.uint64(32)
    c2 = np.zeros_like(c0)
    c3 = c2
    for _ in range(10):
        p0 = c0 * np.uint64(0xD2511F53)         # < 2^64: 32-bit by 32-bit products
        p2 = c2 * np.uint64(0xCD9E8D57)
        c0, c1, c2, c3 = (p2 >> np.uint64(32)) ^ c1 ^ k0, p2 & m32, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & m32
        k0 = (k0 + np.uint64(0x9E3779B9)) & m32
        k1 = (k1 + np.uint64(0xBB67AE85)) & m32
    return tuple(c.astype(np.uint32) for c in (c0, c1, c2, c3))


def dropout_counters(shape) -> int:
    """Philox counters one call with scores of `shape` (*B, L, S) takes: one per 4 keys of each query row."""
    *batch, L, S = shape
    return int(np.prod(batch, dtype=np.int64)) * L * ((S + 3) // 4)


def _dropout_scale(rng, shape, dropout_p, cnp):
    """z / keep for scores of `shape` (*B, L, S): the mask the CUDA kernels draw from rng = (seed, base) (key c
    of a query row takes word c % 4 of counter c // 4 of that row's ceil(S / 4))."""
    seed, base = (int(v) for v in arr(rng))
    S = shape[-1]
    S4 = (S + 3) // 4
    rows = dropout_counters(shape) // S4
    ctr = (np.arange(rows, dtype=np.uint64)[:, None] * np.uint64(S4) + np.arange(S4, dtype=np.uint64)[None, :]
           + np.uint64(base))
    words = np.stack(philox4(seed & ((1 << 64) - 1), ctr), axis=-1).reshape(rows, 4 * S4)[:, :S]
    keep = 1.0 - dropout_p
    kept = (words >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24)) < np.float32(keep)
    return (kept.reshape(shape) * cnp.type(1.0 / keep)).astype(cnp, copy=False)


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


def _probs(q, k, attn_mask, is_causal, scale, cnp):
    """(softmax probabilities, lse) of the scaled, masked scores; fully masked rows: p = 0, lse = -inf."""
    return _softmax_rows(_scores(q, k, attn_mask, is_causal, scale, cnp), cnp)


def _softmax_rows(p, cnp):
    """(softmax of the masked scores p over the last axis, in place; their logsumexp); fully masked rows give
    p = 0 and lse = -inf."""
    m = np.maximum.reduce(p, axis=-1, keepdims=True)
    m[np.isneginf(m)] = 0
    p -= m
    np.exp(p, out=p)
    den = np.add.reduce(p, axis=-1, keepdims=True)
    p *= np.where(den > 0, 1 / den, 0).astype(cnp, copy=False)
    return p, (m + np.log(den))[..., 0]


def _causal_blocks(L: int, S: int):
    """Causal attention by query-row blocks [r0, r1), each against keys [0, min(r1, S)) only (row i sees keys
    <= i): up to four blocks, so the scores computed are 10/16 of L x S (GPT's T 128: attention 25-35% faster on
    the CPU). Short sequences take one block."""
    nb = min(4, L // 32)
    if nb < 2:
        return [(0, L, S)]
    edges = [L * i // nb for i in range(nb + 1)]
    return [(r0, r1, min(r1, S)) for r0, r1 in zip(edges[:-1], edges[1:])]


def _causal_forward(q, k, v, scale, cnp):
    """(out, lse) of causal attention without a mask or dropout, block by block (`_causal_blocks`)."""
    L, S = q.shape[-2], k.shape[-2]
    out = np.empty(q.shape[:-1] + (v.shape[-1],), cnp)
    lse = np.empty(q.shape[:-1], cnp)
    for r0, r1, ke in _causal_blocks(L, S):
        p = np.matmul(q[..., r0:r1, :] * cnp.type(scale), np.swapaxes(k[..., :ke, :], -1, -2))
        p += np.triu(np.full((r1 - r0, ke), -np.inf, cnp), r0 + 1)
        p, lse[..., r0:r1] = _softmax_rows(p, cnp)
        np.matmul(p, v[..., :ke, :], out=out[..., r0:r1, :])
    return out, lse


def _causal_backward(q, k, v, do, o, lse, scale, cnp, need_query, need_key, need_value):
    """(dq, dk, dv) of causal attention without a mask or dropout, block by block; dk and dv accumulate over
    the blocks that see each key."""
    L, S = q.shape[-2], k.shape[-2]
    gq = np.empty(q.shape, cnp) if need_query else None
    gk = np.zeros(k.shape, cnp) if need_key else None
    gv = np.zeros(v.shape, cnp) if need_value else None
    sc = cnp.type(scale)
    delta = np.add.reduce(do * o, axis=-1, keepdims=True)
    for r0, r1, ke in _causal_blocks(L, S):
        qb, dob = q[..., r0:r1, :], do[..., r0:r1, :]
        p = np.matmul(qb * sc, np.swapaxes(k[..., :ke, :], -1, -2))
        p += np.triu(np.full((r1 - r0, ke), -np.inf, cnp), r0 + 1)
        p -= np.where(np.isneginf(lse[..., r0:r1, :]), np.inf, lse[..., r0:r1, :]).astype(cnp, copy=False)
        np.exp(p, out=p)
        if need_value:
            gv[..., :ke, :] += np.matmul(np.swapaxes(p, -1, -2), dob)
        if need_query or need_key:
            ds = np.matmul(dob, np.swapaxes(v[..., :ke, :], -1, -2))
            ds -= delta[..., r0:r1, :]
            ds *= p
            if need_query:
                gq[..., r0:r1, :] = np.matmul(ds, k[..., :ke, :]) * sc
            if need_key:
                gk[..., :ke, :] += np.matmul(np.swapaxes(ds, -1, -2), qb) * sc
    return gq, gk, gv


_CHUNK_BYTES = 1 << 21     # scores of one chunk of batch entries: the passes over them stay in the caches


def _chunk(batch, L, S, attn_mask, cnp) -> int:
    """Batch entries a chunk of the flattened batch takes (0: run unchunked): the score passes (scale, mask,
    max, exp, sum, normalise, two products) of a chunk of about 2 MiB run in cache rather than from memory
    (GPT-size causal attention: forward 7%, backward 12% faster on a 2-core machine). Only without a mask that varies over the batch (dropout keeps
    its whole-batch counters too)."""
    N = int(np.prod(batch, dtype=np.int64))
    if N < 2 or L * S == 0 or (attn_mask is not None and attn_mask.ndim > 2):
        return 0
    n = max(1, _CHUNK_BYTES // (L * S * np.dtype(cnp).itemsize))
    return n if n < N else 0


def _forward(query, key, value, attn_mask, is_causal, scale, dropout_p=0.0, rng=None):
    batch, L, S, E, Ev = rules.attention_dims(query, value)
    cnp = compute_np(query._dtype)
    q, k, v = (arr(t).astype(cnp, copy=False) for t in (query, key, value))
    n = 0 if dropout_p > 0.0 else _chunk(batch, L, S, attn_mask, cnp)
    if n:
        N = int(np.prod(batch, dtype=np.int64))
        qf, kf, vf = q.reshape(N, L, E), k.reshape(N, S, E), v.reshape(N, S, Ev)
        out, lse = np.empty((N, L, Ev), cnp), np.empty((N, L), cnp)
        blocked = is_causal and len(_causal_blocks(L, S)) > 1
        for i in range(0, N, n):
            if blocked:
                out[i:i + n], lse[i:i + n] = _causal_forward(qf[i:i + n], kf[i:i + n], vf[i:i + n], scale, cnp)
                continue
            p, lse[i:i + n] = _probs(qf[i:i + n], kf[i:i + n], attn_mask, is_causal, scale, cnp)
            np.matmul(p, vf[i:i + n], out=out[i:i + n])
        return _output(out.reshape(batch + (L, Ev)), query, S), wrap(lse.reshape(batch + (L,)),
                                                                   rules.lse_dtype(query._dtype))
    if S == 0:
        out = np.zeros(batch + (L, Ev), cnp)
        lse = np.full(batch + (L,), -np.inf, cnp)
    elif is_causal and dropout_p == 0.0 and len(_causal_blocks(L, S)) > 1:
        out, lse = _causal_forward(q, k, v, scale, cnp)
    else:
        p, lse = _probs(q, k, attn_mask, is_causal, scale, cnp)
        if dropout_p > 0.0:
            p *= _dropout_scale(rng, p.shape, dropout_p, cnp)
        out = np.matmul(p, v)
    return _output(out, query, S), wrap(lse, rules.lse_dtype(query._dtype))


def _output(out, query, S):
    """The attention output as a tensor laid out as torch's CPU flash kernel lays it out: (B, H, L, Ev) with the
    memory order (B, L, H, Ev) where the query has it (heads sliced from a fused qkv projection, say), so that the
    usual `out.transpose(1, 2).reshape(B, L, H * Ev)` is a view, not a second copy held for backward. Contiguous
    otherwise, and where torch takes its math path (value's head dim unlike the query's, no keys, a broadcast
    query)."""
    st = query._stride
    if out.ndim != 4 or st[3] != 1 or st[2] <= st[1] or out.size == 0 or S == 0 or \
            out.shape[3] != query._shape[3] or any(s == 0 and n > 1 for s, n in zip(st, query._shape)):
        return wrap(out, query._dtype)
    B, H, L, Ev = out.shape
    return wrap_strided(out, query._dtype, (L * H * Ev, Ev, H * Ev, 1))


@impl("_fused_attention")
def fused_attention(query, key, value, attn_mask, is_causal, scale):
    return _forward(query, key, value, attn_mask, is_causal, scale)


@impl("_fused_attention_dropout")
def fused_attention_dropout(query, key, value, attn_mask, is_causal, scale, dropout_p):
    batch, L, S, _, _ = rules.attention_dims(query, value)
    seed, base = get_generator(None, CPU)._philox_advance(dropout_counters(batch + (L, S)))
    seed = seed - (1 << 64) if seed >= 1 << 63 else seed        # the bits of the uint64 seed, as an int64
    rng = wrap(np.array([seed, base], np.int64), D.int64)
    return (*_forward(query, key, value, attn_mask, is_causal, scale, dropout_p, rng), rng)


@impl("_fused_attention_backward")
def fused_attention_backward(grad_out, query, key, value, attn_mask, out, lse, is_causal, scale, need_query,
                             need_key, need_value, dropout_p=0.0, rng=None):
    batch, L, S, E, Ev = rules.attention_dims(query, value)
    cnp = compute_np(query._dtype)
    q, k, v, do, o = (arr(t).astype(cnp, copy=False) for t in (query, key, value, grad_out, out))
    lse = arr(lse).astype(cnp, copy=False)[..., None]
    n = 0 if dropout_p > 0.0 else _chunk(batch, L, S, attn_mask, cnp)
    if not n:
        z = None
        if dropout_p > 0.0:
            z = _dropout_scale(rng, batch + (L, S), dropout_p, cnp)
        grads = _backward(q, k, v, do, o, lse, z, attn_mask, is_causal, scale, cnp, need_query, need_key,
                          need_value)
    else:
        N = int(np.prod(batch, dtype=np.int64))
        qf, kf, vf, dof, of, lf = (a.reshape((N,) + a.shape[len(batch):]) for a in (q, k, v, do, o, lse))
        grads = [np.empty((N,) + a.shape[1:], cnp) if need else None
                 for a, need in ((qf, need_query), (kf, need_key), (vf, need_value))]
        for i in range(0, N, n):
            c = slice(i, i + n)
            for g, part in zip(grads, _backward(qf[c], kf[c], vf[c], dof[c], of[c], lf[c], None, attn_mask,
                                                is_causal, scale, cnp, need_query, need_key, need_value)):
                if g is not None:
                    g[c] = part
        grads = [g.reshape(batch + g.shape[1:]) if g is not None else None for g in grads]
    return tuple(wrap(g, t._dtype) if g is not None else None for g, t in zip(grads, (query, key, value)))


def _backward(q, k, v, do, o, lse, z, attn_mask, is_causal, scale, cnp, need_query, need_key, need_value):
    """(dq, dk, dv) as arrays (None where not needed) from the probabilities recomputed from lse; z: the
    dropout's scale (kept / keep, or None)."""
    if is_causal and z is None and len(_causal_blocks(q.shape[-2], k.shape[-2])) > 1:
        return _causal_backward(q, k, v, do, o, lse, scale, cnp, need_query, need_key, need_value)
    p = _scores(q, k, attn_mask, is_causal, scale, cnp)
    p -= np.where(np.isneginf(lse), np.inf, lse).astype(cnp, copy=False)    # fully masked rows: p = 0
    np.exp(p, out=p)
    gq = gk = gv = None
    if need_value:
        gv = np.matmul(np.swapaxes(p * z if z is not None else p, -1, -2), do)
    if need_query or need_key:
        ds = np.matmul(do, np.swapaxes(v, -1, -2))
        if z is not None:
            ds *= z
        ds -= np.add.reduce(do * o, axis=-1, keepdims=True)
        ds *= p
        if need_query:
            gq = np.matmul(ds, k) * cnp.type(scale)
        if need_key:
            gk = np.matmul(np.swapaxes(ds, -1, -2), q) * cnp.type(scale)
    return gq, gk, gv


@impl("_fused_attention_dropout_backward")
def fused_attention_dropout_backward(grad_out, query, key, value, attn_mask, out, lse, rng, is_causal, scale,
                                     dropout_p, need_query, need_key, need_value):
    return fused_attention_backward(grad_out, query, key, value, attn_mask, out, lse, is_causal, scale, need_query,
                                    need_key, need_value, dropout_p, rng)


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
