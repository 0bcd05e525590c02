"""Triton kernels of the fused attention, flash-attention style: the scores never reach memory.

Every kernel runs on a 1-D grid of (tile, batch) pairs, tile fastest (programs of one batch entry
share its keys and values in L2). q, k, v, o, do and the grads dq, dk, dv are (batch, rows, head dim)
with unit column stride, a row stride and two batch strides: batch entry b sits at
(b // NB2) * s1 + (b % NB2) * s2, so that heads packed in one projection ([B, L, 3, H, E]: batch
(B, H)) are read and written in place. The mask is (b1, b2, L, S) with any strides (b = b1 * MB2 + b2);
the logsumexp and delta rows are contiguous (b * L + row).
Products in `tl.dot` with float32 accumulation (float32 inputs: IEEE, not TF32); softmax in float32.
The tile loops are `for` loops over runtime bounds when compiled (Triton software-pipelines their
loads) and `while` loops under the CI interpreter (`INTERP`), which cannot take program-dependent
range() bounds; both call the same step function.

Dropout (`DROP`): the probabilities that multiply v are kept where a uniform draw is below `keep`
and scaled by 1 / keep; the row sums (and so lse) are taken before dropout, as in FlashAttention.
Score (b, r, c) draws word c % 4 of Philox counter base + (b * L + r) * ceil(S / 4) + c // 4
(`rng._randint4x`, `_keep_scale`): the forward takes (seed, base) from the generator (`rng._state`, so
that CUDA-graph replays draw anew) and writes them to `rng_ptr`; the backward kernels read them from
there and regenerate the same mask.
With o = (p * z / keep) @ v the gradients are dv = (p * z / keep)^T @ do and
ds = p * ((do @ v^T) * z / keep - delta), delta = rowsum(do * o) as without dropout.
"""
import triton
import triton.language as tl

from .. import opcodes
from .rng import _randint4x, _state, _u32


# Row sums and maxima: tl.reduce with triton.language's own combine functions (what tl.sum and tl.max
# use), which the CI interpreter recognises and runs in NumPy; tl.sum / tl.max themselves are unusable
# there when triton was imported before TRITON_INTERPRET was set, and a local combine function makes
# the interpreter reduce element by element in Python.
_SUM = tl.standard._sum_combine
_MAX = tl.standard._elementwise_max


@triton.jit
def _dot(a, b, IEEE: tl.constexpr):
    if IEEE:
        r = tl.dot(a, b, input_precision="ieee")
    else:
        r = tl.dot(a, b)
    return r


@triton.jit
def _boff(b, NB2, s1, s2):
    """Offset of batch entry b of a tensor with batch strides (s1, s2)."""
    return (b // NB2) * s1 + (b % NB2) * s2


@triton.jit
def _tile(T, N, BLOCK: tl.constexpr):
    """(batch entry b, first row, rows, rows < N) of this program's tile of BLOCK rows (T tiles an entry)."""
    pid = tl.program_id(0).to(tl.int64)
    b = pid // T
    start = (pid % T) * BLOCK
    rows = start + tl.arange(0, BLOCK)
    return b, start, rows, rows < N


@triton.jit
def _load_rows(ptr, rows, stride, rmask, lanes, n):
    """The [rows, lanes] tile ptr[rows * stride + lanes] where rmask and lanes < n, 0 elsewhere."""
    return tl.load(ptr + rows[:, None] * stride + lanes[None, :], mask=rmask[:, None] & (lanes < n)[None, :],
                   other=0.0)


@triton.jit
def _key_range(b, S, start_m, BLOCK_M: tl.constexpr, CAUSAL: tl.constexpr):
    """(0, end) of the key columns the query tile from start_m sees (causal: up to its last row's diagonal);
    the 0 is an int64 tensor like b, the type the tile loop's counter keeps."""
    hi = S
    if CAUSAL:
        hi = tl.minimum(S, start_m + BLOCK_M)
    return b * 0, hi


@triton.jit
def _lse(lse_ptr, rows, rmask):
    """The rows' logsumexp, +inf for the fully masked ones (stored -inf) so that exp(s - lse) = 0 there."""
    lse = tl.load(lse_ptr + rows, mask=rmask, other=float("inf"))
    return tl.where(lse == float("-inf"), float("inf"), lse)


@triton.jit
def _masked(s, r, c, m_ptr, smr, smc, L, S, MASK: tl.constexpr, CAUSAL: tl.constexpr):
    """Scores `s` (float32) at query rows `r` and key columns `c` (broadcasting index tensors) with
    the mask applied: -inf outside [0, S), where the bool mask is False or, causal, where c > r."""
    ok = c < S
    if MASK == opcodes.Mask.BOOL:
        keep = tl.load(m_ptr + r * smr + c * smc, mask=ok & (r < L), other=0)
        ok = ok & (keep != 0)
    if MASK == opcodes.Mask.FLOAT:
        s = s + tl.load(m_ptr + r * smr + c * smc, mask=ok & (r < L), other=0.0).to(tl.float32)
    if CAUSAL:
        ok = ok & (c <= r)
    return tl.where(ok, s, float("-inf"))


@triton.jit
def _keep_scale(seed, base, b, rows, kstart, L, S, keep, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """The [BLOCK_M queries, BLOCK_N keys from kstart (a multiple of 4)] tile of the dropout mask, as 1 / keep
    where the score is kept and 0 where dropped. Keys 4j..4j+3 of query row r take the four words of one
    Philox call, counter base + (b * L + r) * ceil(S / 4) + j (word m for key 4j + m): a quarter of the
    rounds one call per score would cost."""
    j = kstart // 4 + tl.arange(0, BLOCK_N // 4)
    w0, w1, w2, w3 = _randint4x(seed, base + (b * L + rows[:, None]) * ((S + 3) // 4) + j[None, :])
    w = tl.reshape(tl.join(tl.join(w0, w2), tl.join(w1, w3)), [BLOCK_M, BLOCK_N])    # key 4j + m: word m
    return tl.where(_u32(w, 24) < keep, 1.0 / keep, 0.0)


@triton.jit
def _rng(rng_ptr, b, DROP: tl.constexpr):
    """(seed, base) the forward stored (DROP), else zeros."""
    if DROP:
        return tl.load(rng_ptr + b * 0), tl.load(rng_ptr + 1 + b * 0)
    return b * 0, b * 0


@triton.jit
def _fwd_step(acc, m_i, l_i, q, start, k_ptr, v_ptr, mb, b, rows, skr, svr, smr, smc, L, S, E, EV, scale,
              seed, base, keep, MASK: tl.constexpr, CAUSAL: tl.constexpr, IEEE: tl.constexpr, DROP: tl.constexpr,
              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D: tl.constexpr, DV: tl.constexpr):
    """One key tile of the online softmax: (acc, m_i, l_i) updated with keys [start, start + BLOCK_N)."""
    cols = start + tl.arange(0, BLOCK_N)
    k = _load_rows(k_ptr, cols, skr, cols < S, tl.arange(0, D), E)
    s = _masked(_dot(q, tl.trans(k), IEEE) * scale, rows[:, None], cols[None, :], mb, smr, smc, L, S, MASK, CAUSAL)
    m_new = tl.maximum(m_i, tl.reduce(s, 1, _MAX))
    m_use = tl.where(m_new == float("-inf"), 0.0, m_new)    # all masked so far: p = 0, no NaN
    alpha = tl.exp(m_i - m_use)
    p = tl.exp(s - m_use[:, None])
    l_i = l_i * alpha + tl.reduce(p, 1, _SUM)
    v = _load_rows(v_ptr, cols, svr, cols < S, tl.arange(0, DV), EV)
    if DROP:
        p = p * _keep_scale(seed, base, b, rows, start, L, S, keep, BLOCK_M, BLOCK_N)
    acc = acc * alpha[:, None] + _dot(p.to(v.dtype), v, IEEE)
    return acc, m_new, l_i


@triton.jit
def attn_fwd_kernel(q_ptr, k_ptr, v_ptr, m_ptr, o_ptr, lse_ptr, rng_ptr, state_ptr, seed, offset, graph, keep,
                    sqb1, sqb2, sqr, skb1, skb2, skr, svb1, svb2, svr,
                    sob1, sob2, sor, NB2, smb1, smb2, smr, smc, MB2, L, S, E, EV, T, scale,
                    MASK: tl.constexpr, CAUSAL: tl.constexpr, IEEE: tl.constexpr, DROP: tl.constexpr,
                    INTERP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D: tl.constexpr,
                    DV: tl.constexpr):
    """One tile of BLOCK_M queries: online softmax over key tiles (causal: only up to the diagonal);
    o = softmax(s) @ v (dropout applied to the probabilities with DROP) and lse = logsumexp(s) per row
    (rows with every key masked: 0 and -inf)."""
    b, start_m, rows, rm = _tile(T, L, BLOCK_M)
    base = b * 0
    if DROP:
        seed, base = _state(state_ptr, seed, offset, graph)
        if tl.program_id(0) == 0:
            tl.store(rng_ptr, seed)
            tl.store(rng_ptr + 1, base)
    d = tl.arange(0, D)
    dv = tl.arange(0, DV)
    q_ptr += _boff(b, NB2, sqb1, sqb2)
    k_ptr += _boff(b, NB2, skb1, skb2)
    v_ptr += _boff(b, NB2, svb1, svb2)
    q = _load_rows(q_ptr, rows, sqr, rm, d, E)
    mb = m_ptr + _boff(b, MB2, smb1, smb2)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.full([BLOCK_M], 0.0, tl.float32)
    acc = tl.full([BLOCK_M, DV], 0.0, tl.float32)
    start, hi = _key_range(b, S, start_m, BLOCK_M, CAUSAL)
    if INTERP:
        while start < hi:
            acc, m_i, l_i = _fwd_step(acc, m_i, l_i, q, start, k_ptr, v_ptr, mb, b, rows, skr, svr, smr, smc, L, S,
                                      E, EV, scale, seed, base, keep, MASK, CAUSAL, IEEE, DROP, BLOCK_M, BLOCK_N, D,
                                      DV)
            start += BLOCK_N
    else:
        for start in range(0, hi, BLOCK_N):
            acc, m_i, l_i = _fwd_step(acc, m_i, l_i, q, start, k_ptr, v_ptr, mb, b, rows, skr, svr, smr, smc, L, S,
                                      E, EV, scale, seed, base, keep, MASK, CAUSAL, IEEE, DROP, BLOCK_M, BLOCK_N, D,
                                      DV)
    live = l_i > 0.0
    o = acc * tl.where(live, 1.0 / l_i, 0.0)[:, None]
    tl.store(o_ptr + _boff(b, NB2, sob1, sob2) + rows[:, None] * sor + dv[None, :], o.to(o_ptr.dtype.element_ty),
             mask=rm[:, None] & (dv < EV)[None, :])
    tl.store(lse_ptr + b * L + rows, tl.where(live, m_i + tl.log(l_i), float("-inf")), mask=rm)


@triton.jit
def _dq_step(dq, q, do, lse, delta, start, k_ptr, v_ptr, mb, b, rows, skr, svr, smr, smc, L, S, E, EV, scale,
             seed, base, keep, MASK: tl.constexpr, CAUSAL: tl.constexpr, IEEE: tl.constexpr, DROP: tl.constexpr,
             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D: tl.constexpr, DV: tl.constexpr):
    cols = start + tl.arange(0, BLOCK_N)
    k = _load_rows(k_ptr, cols, skr, cols < S, tl.arange(0, D), E)
    v = _load_rows(v_ptr, cols, svr, cols < S, tl.arange(0, DV), EV)
    s = _masked(_dot(q, tl.trans(k), IEEE) * scale, rows[:, None], cols[None, :], mb, smr, smc, L, S, MASK, CAUSAL)
    p = tl.exp(s - lse[:, None])
    dp = _dot(do, tl.trans(v), IEEE)
    if DROP:
        dp = dp * _keep_scale(seed, base, b, rows, start, L, S, keep, BLOCK_M, BLOCK_N)
    ds = p * (dp - delta[:, None])
    return dq + _dot(ds.to(k.dtype), k, IEEE)


@triton.jit
def attn_bwd_dq_kernel(q_ptr, k_ptr, v_ptr, m_ptr, o_ptr, do_ptr, lse_ptr, delta_ptr, dq_ptr, rng_ptr, keep,
                       sqb1, sqb2, sqr, skb1, skb2, skr, svb1, svb2, svr, sob1, sob2, sor, sdb1, sdb2, sdr,
                       sgb1, sgb2, sgr, NB2, smb1, smb2, smr, smc, MB2,
                       L, S, E, EV, T, scale,
                       MASK: tl.constexpr, CAUSAL: tl.constexpr, IEEE: tl.constexpr, NEED_DQ: tl.constexpr,
                       DROP: tl.constexpr, INTERP: tl.constexpr,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D: tl.constexpr, DV: tl.constexpr):
    """One tile of BLOCK_M queries: delta = rowsum(do * o) (stored for the dk/dv kernel) and, if
    NEED_DQ, dq = scale * sum over key tiles of (p * (do @ v^T - delta)) @ k."""
    b, start_m, rows, rm = _tile(T, L, BLOCK_M)
    d = tl.arange(0, D)
    dv = tl.arange(0, DV)
    do = _load_rows(do_ptr + _boff(b, NB2, sdb1, sdb2), rows, sdr, rm, dv, EV)
    o = _load_rows(o_ptr + _boff(b, NB2, sob1, sob2), rows, sor, rm, dv, EV)
    delta = tl.reduce(do.to(tl.float32) * o.to(tl.float32), 1, _SUM)
    tl.store(delta_ptr + b * L + rows, delta, mask=rm)
    if NEED_DQ:
        seed, base = _rng(rng_ptr, b, DROP)
        k_ptr += _boff(b, NB2, skb1, skb2)
        v_ptr += _boff(b, NB2, svb1, svb2)
        q = _load_rows(q_ptr + _boff(b, NB2, sqb1, sqb2), rows, sqr, rm, d, E)
        lse = _lse(lse_ptr + b * L, rows, rm)
        mb = m_ptr + _boff(b, MB2, smb1, smb2)
        dq = tl.full([BLOCK_M, D], 0.0, tl.float32)
        start, hi = _key_range(b, S, start_m, BLOCK_M, CAUSAL)
        if INTERP:
            while start < hi:
                dq = _dq_step(dq, q, do, lse, delta, start, k_ptr, v_ptr, mb, b, rows, skr, svr, smr, smc, L, S, E,
                              EV, scale, seed, base, keep, MASK, CAUSAL, IEEE, DROP, BLOCK_M, BLOCK_N, D, DV)
                start += BLOCK_N
        else:
            for start in range(0, hi, BLOCK_N):
                dq = _dq_step(dq, q, do, lse, delta, start, k_ptr, v_ptr, mb, b, rows, skr, svr, smr, smc, L, S, E,
                              EV, scale, seed, base, keep, MASK, CAUSAL, IEEE, DROP, BLOCK_M, BLOCK_N, D, DV)
        tl.store(dq_ptr + _boff(b, NB2, sgb1, sgb2) + rows[:, None] * sgr + d[None, :],
                 (dq * scale).to(dq_ptr.dtype.element_ty), mask=rm[:, None] & (d < E)[None, :])


@triton.jit
def _dkdv_step(dk, dvacc, k, v, start, q_ptr, do_ptr, lse_ptr, delta_ptr, mb, b, cols, start_n, sqr, sdr, smr, smc,
               L, S, E, EV, scale, seed, base, keep, MASK: tl.constexpr, CAUSAL: tl.constexpr, IEEE: tl.constexpr,
               NEED_DK: tl.constexpr, NEED_DV: tl.constexpr, DROP: tl.constexpr, BLOCK_M: tl.constexpr,
               BLOCK_N: tl.constexpr, D: tl.constexpr, DV: tl.constexpr):
    rows = start + tl.arange(0, BLOCK_M)
    rm = rows < L
    q = _load_rows(q_ptr, rows, sqr, rm, tl.arange(0, D), E)
    do = _load_rows(do_ptr, rows, sdr, rm, tl.arange(0, DV), EV)
    lse = _lse(lse_ptr + b * L, rows, rm)
    sT = _masked(_dot(k, tl.trans(q), IEEE) * scale, rows[None, :], cols[:, None], mb, smr, smc, L, S, MASK, CAUSAL)
    pT = tl.exp(sT - lse[None, :])
    zT = pT     # DROP: 1 / keep where the score is kept, else 0 (one draw per score, for both grads)
    if DROP:
        zT = tl.trans(_keep_scale(seed, base, b, rows, start_n, L, S, keep, BLOCK_M, BLOCK_N))
    if NEED_DV:
        pz = pT
        if DROP:
            pz = pT * zT
        dvacc += _dot(pz.to(do.dtype), do, IEEE)
    if NEED_DK:
        delta = tl.load(delta_ptr + b * L + rows, mask=rm, other=0.0)
        dpT = _dot(v, tl.trans(do), IEEE)
        if DROP:
            dpT = dpT * zT
        dsT = pT * (dpT - delta[None, :])
        dk += _dot(dsT.to(q.dtype), q, IEEE)
    return dk, dvacc


@triton.jit
def attn_bwd_dkdv_kernel(q_ptr, k_ptr, v_ptr, m_ptr, do_ptr, lse_ptr, delta_ptr, dk_ptr, dv_ptr, rng_ptr, keep,
                         sqb1, sqb2, sqr, skb1, skb2, skr, svb1, svb2, svr, sdb1, sdb2, sdr,
                         skgb1, skgb2, skgr, svgb1, svgb2, svgr, NB2, smb1, smb2, smr, smc, MB2,
                         L, S, E, EV, T, scale,
                         MASK: tl.constexpr, CAUSAL: tl.constexpr, IEEE: tl.constexpr, NEED_DK: tl.constexpr,
                         NEED_DV: tl.constexpr, DROP: tl.constexpr, INTERP: tl.constexpr, BLOCK_M: tl.constexpr,
                         BLOCK_N: tl.constexpr, D: tl.constexpr, DV: tl.constexpr):
    """One tile of BLOCK_N keys, looping over query tiles (causal: from the diagonal on), in the
    transposed orientation (keys on rows): dv = p^T @ do, dk = scale * (p * (do @ v^T - delta))^T @ q."""
    b, start_n, cols, cm = _tile(T, S, BLOCK_N)
    seed, base = _rng(rng_ptr, b, DROP)
    d = tl.arange(0, D)
    dv = tl.arange(0, DV)
    k = _load_rows(k_ptr + _boff(b, NB2, skb1, skb2), cols, skr, cm, d, E)
    v = _load_rows(v_ptr + _boff(b, NB2, svb1, svb2), cols, svr, cm, dv, EV)
    q_ptr += _boff(b, NB2, sqb1, sqb2)
    do_ptr += _boff(b, NB2, sdb1, sdb2)
    mb = m_ptr + _boff(b, MB2, smb1, smb2)
    dk = tl.full([BLOCK_N, D], 0.0, tl.float32)
    dvacc = tl.full([BLOCK_N, DV], 0.0, tl.float32)
    start = start_n * CAUSAL     # causal: queries before this key tile see none of it
    if INTERP:
        while start < L:
            dk, dvacc = _dkdv_step(dk, dvacc, k, v, start, q_ptr, do_ptr, lse_ptr, delta_ptr, mb, b, cols, start_n,
                                   sqr, sdr, smr, smc, L, S, E, EV, scale, seed, base, keep, MASK, CAUSAL, IEEE,
                                   NEED_DK, NEED_DV, DROP, BLOCK_M, BLOCK_N, D, DV)
            start += BLOCK_M
    else:
        for it in range(start, L, BLOCK_M):
            dk, dvacc = _dkdv_step(dk, dvacc, k, v, it, q_ptr, do_ptr, lse_ptr, delta_ptr, mb, b, cols, start_n,
                                   sqr, sdr, smr, smc, L, S, E, EV, scale, seed, base, keep, MASK, CAUSAL, IEEE,
                                   NEED_DK, NEED_DV, DROP, BLOCK_M, BLOCK_N, D, DV)
    if NEED_DK:
        tl.store(dk_ptr + _boff(b, NB2, skgb1, skgb2) + cols[:, None] * skgr + d[None, :],
                 (dk * scale).to(dk_ptr.dtype.element_ty), mask=cm[:, None] & (d < E)[None, :])
    if NEED_DV:
        tl.store(dv_ptr + _boff(b, NB2, svgb1, svgb2) + cols[:, None] * svgr + dv[None, :],
                 dvacc.to(dv_ptr.dtype.element_ty), mask=cm[:, None] & (dv < EV)[None, :])
