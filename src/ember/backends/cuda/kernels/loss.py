"""Triton kernels of the fused losses over class indices.

The NLL loss: per-row picked log-probabilities (times the class weight), reduced in one program (a
fixed order: deterministic), and the one-hot-shaped backward. Cross-entropy from logits: one pass
computes each row's logsumexp (online, over column tiles), loss and target weight, a one-program
kernel reduces them, and the backward writes the logits' gradient in one pass from the saved lse.

A class index outside [0, C) that is not ignore_index is never dereferenced (its row counts as
ignored) and is reported into the error word `err_ptr` as op `code` (`kernels/indexing.report`)."""
import triton
import triton.language as tl

from .. import opcodes
from .elementwise import _cast
from .indexing import report


@triton.jit
def _add(a, b):     # tl.sum is a jit function of triton.language: unusable under the CI interpreter
    return a + b


@triton.jit
def _target(t_ptr, w_ptr, err_ptr, code, r, rm, C, ignore_index, HAS_W: tl.constexpr):
    """(t, ok, w_t) per row: the class index, whether it counts (not ignored, in range) and its weight (1
    without HAS_W; float32, or float64 for float64 weights), 0 where it does not count. Out-of-range classes are reported by the programs of
    program_id(1) == 0 (all of them on a 1-D grid)."""
    t = tl.load(t_ptr + r, mask=rm, other=0).to(tl.int64)
    valid = rm & (t != ignore_index)
    outside = (t < 0) | (t >= C)
    if tl.program_id(1) == 0:
        report(err_ptr, valid & outside, t, C, code)
    ok = valid & (outside == 0)
    if HAS_W:
        w = tl.load(w_ptr + t, mask=ok, other=0.0)
        if w.dtype != tl.float64:
            w = w.to(tl.float32)
    else:
        w = tl.where(ok, 1.0, 0.0)
    return t, ok, w


@triton.jit
def _pick(x_ptr, t_ptr, w_ptr, err_ptr, code, r, rm, C, ignore_index, HAS_W: tl.constexpr):
    """(-x[r, t] * w_t, w_t) per row; 0 for ignored rows and (reported) out-of-range classes."""
    t, ok, w = _target(t_ptr, w_ptr, err_ptr, code, r, rm, C, ignore_index, HAS_W)
    v = -tl.load(x_ptr + r * C + t, mask=ok, other=0.0).to(tl.float32) * w
    return v, w


@triton.jit
def nll_fwd_kernel(x_ptr, t_ptr, w_ptr, out_ptr, tw_ptr, N, C, ignore_index, err_ptr, code,
                   RED: tl.constexpr, HAS_W: tl.constexpr, BLOCK: tl.constexpr):
    if RED == opcodes.Reduction.NONE:        # per row; the total weight output is 0
        r = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        rm = r < N
        v, w = _pick(x_ptr, t_ptr, w_ptr, err_ptr, code, r, rm, C, ignore_index, HAS_W)
        tl.store(out_ptr + r, v.to(out_ptr.dtype.element_ty), mask=rm)
        if tl.program_id(0) == 0:
            tl.store(tw_ptr, 0.0)
    else:               # one program sums every row
        acc = tl.full([BLOCK], 0.0, tl.float32)
        accw = tl.full([BLOCK], 0.0, tl.float32)
        start = 0
        while start < N:    # a while loop: the CI interpreter needs Python ints for range()
            r = start + tl.arange(0, BLOCK).to(tl.int64)
            v, w = _pick(x_ptr, t_ptr, w_ptr, err_ptr, code, r, r < N, C, ignore_index, HAS_W)
            acc += v
            accw += w
            start += BLOCK
        total = tl.reduce(acc, 0, _add)
        tw = tl.reduce(accw, 0, _add)
        if RED == opcodes.Reduction.MEAN:
            total = total / tw
        tl.store(out_ptr, total.to(out_ptr.dtype.element_ty))
        tl.store(tw_ptr, tw.to(tw_ptr.dtype.element_ty))


@triton.jit
def nll_bwd_kernel(g_ptr, t_ptr, w_ptr, tw_ptr, gi_ptr, N, C, ignore_index, err_ptr, code,
                   RED: tl.constexpr, HAS_W: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """gi[r, c] = -w_t * g (/ total weight for mean) where c == t[r], else 0: every element written."""
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    c = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)
    rm = r < N
    t, ok, w = _target(t_ptr, w_ptr, err_ptr, code, r, rm, C, ignore_index, HAS_W)     # reported by column 0
    if RED == opcodes.Reduction.NONE:
        g = tl.load(g_ptr + r, mask=rm, other=0.0).to(tl.float32)
    else:
        g = tl.load(g_ptr + r * 0).to(tl.float32)
        if RED == opcodes.Reduction.MEAN:
            g = g / tl.load(tw_ptr + r * 0).to(tl.float32)
    val = -w * g
    m2 = rm[:, None] & (c < C)[None, :]
    out = tl.where(c[None, :] == t[:, None], val[:, None], 0.0)
    tl.store(gi_ptr + r[:, None] * C + c[None, :], out.to(gi_ptr.dtype.element_ty), mask=m2)


# ---- cross-entropy from logits (`_cross_entropy`): log-softmax, NLL and label smoothing in one pass --------
# Per row r with class t (weight w_t; 0 where ignored), lse = logsumexp(x_r), W = sum_c w_c (C unweighted):
#   loss_r = (1 - ls) * w_t * (lse - x_rt) + ls / C * (W * lse - sum_c w_c x_rc)     (0 where ignored)
#   dloss_r / dx_rc = (1 - ls) * w_t * (p_c - [c == t]) + ls / C * (W * p_c - w_c),   p = softmax(x_r)
# The logits are read in their own dtype and strides; everything is computed in CK (float32, or float64).

@triton.jit
def _col(c, sc, SC1: tl.constexpr):
    """Column offsets: c itself for unit-stride logits (known contiguous at compile time: vectorized loads)."""
    if SC1:
        return c
    return c * sc


@triton.jit
def _max(a, b):
    return tl.where(a > b, a, b)


@triton.jit
def _class_weights(w_ptr, c, cm, HAS_W: tl.constexpr, CK: tl.constexpr):
    if HAS_W:
        return _cast(tl.load(w_ptr + c, mask=cm, other=0.0), CK)
    else:
        return _cast(tl.where(cm, 1.0, 0.0), CK)


@triton.jit
def _ce_step(mv, sv, sx, ws, x_ptr, w_ptr, r, rm, c0, C, sr, sc, CK: tl.constexpr, HAS_W: tl.constexpr,
             SMOOTH: tl.constexpr, BLOCK_C: tl.constexpr, SC1: tl.constexpr):
    """One column tile of the online logsumexp, kept per lane: mv and sv (BLOCK_R x BLOCK_C) are the running
    max and sum of exp(x - mv) of the columns each lane has seen, so a tile costs one exp per element and no
    reduction across the program (the row's max and sum are reduced once, after the last tile). For label
    smoothing, the weighted row sum sx and the weights' sum ws."""
    c = c0 + tl.arange(0, BLOCK_C).to(tl.int64)
    cm = c < C
    msk = rm[:, None] & cm[None, :]
    x = _cast(tl.load(x_ptr + r[:, None] * sr + _col(c, sc, SC1)[None, :], mask=msk, other=0.0), CK)
    xm = tl.where(msk, x, float("-inf"))
    up = xm > mv
    # exp(-|x - m|): the new term when x is not above the lane's max, the old sum's factor when it is;
    # a lane with nothing finite yet (both -inf) gets 1 here, and its -inf max makes it count 0 at the end
    e = tl.exp(-tl.abs(tl.where(xm == mv, 0.0, xm - mv)))
    sv = tl.where(up, sv * e + 1.0, sv + e)
    mv = tl.where(up, xm, mv)
    if SMOOTH:
        wc = _class_weights(w_ptr, c, cm, HAS_W, CK)
        sx += tl.reduce(tl.where(msk, x * wc[None, :], 0.0), 1, _add)
        ws += tl.reduce(wc, 0, _add)
    return mv, sv, sx, ws


@triton.jit
def ce_fwd_kernel(x_ptr, t_ptr, w_ptr, loss_ptr, wt_ptr, lse_ptr, N, C, sr, sc, ignore_index, smooth, nblk,
                  err_ptr, code, CK: tl.constexpr, HAS_W: tl.constexpr, SMOOTH: tl.constexpr,
                  INTERP: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, SC1: tl.constexpr):
    """Per row: lse, the loss (into loss_ptr, in its dtype) and the target's weight w_t (into wt_ptr, for the
    mean's divisor; 0 where ignored)."""
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    rm = r < N
    t, ok, wt = _target(t_ptr, w_ptr, err_ptr, code, r, rm, C, ignore_index, HAS_W)
    mv = _cast(tl.full([BLOCK_R, BLOCK_C], float("-inf"), tl.float32), CK)
    sv = _cast(tl.full([BLOCK_R, BLOCK_C], 0.0, tl.float32), CK)
    sx = _cast(tl.full([BLOCK_R], 0.0, tl.float32), CK)
    ws = _cast(tl.full([1], 0.0, tl.float32), CK)
    if INTERP:
        k = 0
        while k < nblk:
            mv, sv, sx, ws = _ce_step(mv, sv, sx, ws, x_ptr, w_ptr, r, rm, k * BLOCK_C, C, sr, sc, CK, HAS_W,
                                      SMOOTH, BLOCK_C, SC1)
            k += 1
    else:
        for k in range(0, nblk):
            mv, sv, sx, ws = _ce_step(mv, sv, sx, ws, x_ptr, w_ptr, r, rm, k * BLOCK_C, C, sr, sc, CK, HAS_W,
                                      SMOOTH, BLOCK_C, SC1)
    m = tl.reduce(mv, 1, _max)
    base = tl.where(m == float("-inf"), 0.0, m)     # rows with nothing finite: no inf - inf
    s = tl.reduce(sv * tl.exp(mv - base[:, None]), 1, _add)
    lse = m + tl.log(s)
    xt = _cast(tl.load(x_ptr + r * sr + t * sc, mask=ok, other=0.0), CK)
    wt = _cast(wt, CK)
    loss = (1.0 - smooth) * wt * (lse - xt)
    if SMOOTH:
        loss += tl.where(ok, smooth / C * (ws * lse - sx), 0.0)
    tl.store(lse_ptr + r, lse.to(lse_ptr.dtype.element_ty), mask=rm)
    tl.store(loss_ptr + r, loss.to(loss_ptr.dtype.element_ty), mask=rm)
    tl.store(wt_ptr + r, wt.to(wt_ptr.dtype.element_ty), mask=rm)


@triton.jit
def ce_total_kernel(loss_ptr, wt_ptr, out_ptr, tw_ptr, N, MEAN: tl.constexpr, CK: tl.constexpr, BLOCK: tl.constexpr):
    """One program: out = sum(loss) (/ sum(w_t) for the mean), tw = sum(w_t), in a fixed order (deterministic)."""
    acc = _cast(tl.full([BLOCK], 0.0, tl.float32), CK)
    accw = _cast(tl.full([BLOCK], 0.0, tl.float32), CK)
    start = 0
    while start < N:
        r = start + tl.arange(0, BLOCK).to(tl.int64)
        acc += _cast(tl.load(loss_ptr + r, mask=r < N, other=0.0), CK)
        accw += _cast(tl.load(wt_ptr + r, mask=r < N, other=0.0), CK)
        start += BLOCK
    total = tl.reduce(acc, 0, _add)
    tw = tl.reduce(accw, 0, _add)
    if MEAN:
        total = total / tw
    tl.store(out_ptr, total.to(out_ptr.dtype.element_ty))
    tl.store(tw_ptr, tw.to(tw_ptr.dtype.element_ty))


@triton.jit
def _ce_grad_step(gi_ptr, x_ptr, w_ptr, r, rm, t, lse, coef, sm, ws, c0, C, sr, sc, CK: tl.constexpr,
                  HAS_W: tl.constexpr, SMOOTH: tl.constexpr, BLOCK_C: tl.constexpr, SC1: tl.constexpr):
    c = c0 + tl.arange(0, BLOCK_C).to(tl.int64)
    cm = c < C
    msk = rm[:, None] & cm[None, :]
    x = _cast(tl.load(x_ptr + r[:, None] * sr + _col(c, sc, SC1)[None, :], mask=msk, other=0.0), CK)
    p = tl.exp(x - lse[:, None])
    g = coef[:, None] * (p - tl.where(c[None, :] == t[:, None], 1.0, 0.0))
    if SMOOTH:
        wc = _class_weights(w_ptr, c, cm, HAS_W, CK)
        g += sm[:, None] * (ws * p - wc[None, :])
    tl.store(gi_ptr + r[:, None] * C + c[None, :], g.to(gi_ptr.dtype.element_ty), mask=msk)


@triton.jit
def _weight_total(w_ptr, C, nblk, CK: tl.constexpr, HAS_W: tl.constexpr, INTERP: tl.constexpr,
                  BLOCK_C: tl.constexpr):
    ws = _cast(tl.full([1], 0.0, tl.float32), CK)
    if INTERP:
        k = 0
        while k < nblk:
            c = k * BLOCK_C + tl.arange(0, BLOCK_C).to(tl.int64)
            ws += tl.reduce(_class_weights(w_ptr, c, c < C, HAS_W, CK), 0, _add)
            k += 1
    else:
        for k in range(0, nblk):
            c = k * BLOCK_C + tl.arange(0, BLOCK_C).to(tl.int64)
            ws += tl.reduce(_class_weights(w_ptr, c, c < C, HAS_W, CK), 0, _add)
    return ws


@triton.jit
def ce_bwd_kernel(g_ptr, x_ptr, t_ptr, w_ptr, lse_ptr, tw_ptr, gi_ptr, N, C, sr, sc, ignore_index, smooth, nblk,
                  err_ptr, code, RED: tl.constexpr, CK: tl.constexpr, HAS_W: tl.constexpr, SMOOTH: tl.constexpr,
                  INTERP: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, SC1: tl.constexpr):
    """The logits' gradient (contiguous, in gi's dtype) in one pass over the logits: every element written."""
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    rm = r < N
    t, ok, wt = _target(t_ptr, w_ptr, err_ptr, code, r, rm, C, ignore_index, HAS_W)
    if RED == opcodes.Reduction.NONE:
        g = _cast(tl.load(g_ptr + r, mask=rm, other=0.0), CK)
    else:
        g = _cast(tl.load(g_ptr + r * 0), CK)
        if RED == opcodes.Reduction.MEAN:
            g = g / _cast(tl.load(tw_ptr + r * 0), CK)
    lse = _cast(tl.load(lse_ptr + r, mask=rm, other=0.0), CK)
    coef = g * (1.0 - smooth) * _cast(wt, CK)
    sm = tl.where(ok, g * (smooth / C), 0.0)
    ws = _cast(tl.full([1], 0.0, tl.float32), CK)
    if SMOOTH:
        ws = _weight_total(w_ptr, C, nblk, CK, HAS_W, INTERP, BLOCK_C)
    if INTERP:
        k = 0
        while k < nblk:
            _ce_grad_step(gi_ptr, x_ptr, w_ptr, r, rm, t, lse, coef, sm, ws, k * BLOCK_C, C, sr, sc, CK, HAS_W,
                          SMOOTH, BLOCK_C, SC1)
            k += 1
    else:
        for k in range(0, nblk):
            _ce_grad_step(gi_ptr, x_ptr, w_ptr, r, rm, t, lse, coef, sm, ws, k * BLOCK_C, C, sr, sc, CK, HAS_W,
                          SMOOTH, BLOCK_C, SC1)
