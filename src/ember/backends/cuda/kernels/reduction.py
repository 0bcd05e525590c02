"""Triton kernels for reductions (sum/mean/amax/amin/prod/nansum/counts, the passes of logsumexp
and nanmean, Welford's var/std, argmax/argmin and max/min over a dim) and softmax/log_softmax.

The host (`backends/cuda/reduction.py`) reduces every problem to rows x cols over the last axis:
a row's offset is `(r // RIN) * rs0 + (r % RIN) * rs1` (two collapsed kept dims, `ROW2`), a
column's `(c // CIN) * cs0 + (c % CIN) * cs1` (two collapsed reduced dims, `COL2`), else one
stride each. A program owns BLOCK_R rows and walks the columns in BLOCK_C chunks, keeping a
[BLOCK_R, BLOCK_C] tile of partial results that is reduced across lanes at the end. `CK` is the
accumulation type (`opcodes.Compute` F32, F64 or I64).

`reduce_kernel`'s `OP` (`opcodes.Reduce`) picks what is accumulated: a sum, amax, amin, prod, a sum
with NaNs as 0, a count of nonzeros or of non-NaNs, or `EXP_SUM`, the sum of exp(x - c), where c is
a per-row value read from `c_ptr` (the row max for logsumexp, made 0 where it is not finite).
`POST` (`opcodes.Post`) finishes the row: `LOG_ADD` log(s) + c (logsumexp), `DIV_INTO` c / s
(nanmean: the row's NaN-free sum over its count of non-NaNs).

`welford_kernel` is var/std in one pass: each lane keeps (count, mean, M2) of its columns (Welford's
update, on the data less the row's first element so that a large common offset costs no precision),
and the lanes are merged by Chan's parallel combine (`_welford_fn`, through `tl.reduce` over the three
tensors). The row's result is M2 / divisor (the host's max(n - correction, 0), so 0 / 0 gives
NaN as in PyTorch), then sqrt for std (`Post.SQRT`). Split over the columns, the first pass writes the
(count, mean, M2) partials as three planes (`Post.WELFORD_PARTS`) and the second (`Merge.PARTIALS`)
combines them the same way.

`softmax_row_kernel` is the one-pass (log_)softmax over whole rows held in registers: unit column
strides are built in (so Triton sees contiguous addresses), and `VEC` adds the alignment hints
(`tl.multiple_of` on the pointers, `tl.max_constancy` on the column mask) that the host has
checked, without which Triton can't prove 16-byte alignment and emits 4-byte accesses.
`softmax_kernel` is the two-pass fallback for longer or strided rows.

The column loop is a `for` over a runtime trip count when compiled; under Triton's interpreter
(`INTERP`) it is a `while` loop, because the interpreter can't use a scalar argument as a
`range` bound with NumPy 2 (both loops call the same step function).
"""
import triton
import triton.language as tl

from .. import opcodes
from .elementwise import _cast, _extreme


# Lane reductions through `tl.reduce` with local combine functions (rather than tl.sum/tl.max, which
# are jit functions of triton.language and break under the interpreter when Triton was imported
# before TRITON_INTERPRET was set, as in the test suite). NaNs are handled by the callers.
@triton.jit
def _add_fn(a, b):
    return a + b


@triton.jit
def _max_fn(a, b):
    return tl.where(a > b, a, b)


@triton.jit
def _min_fn(a, b):
    return tl.where(a < b, a, b)


@triton.jit
def _mul_fn(a, b):
    return a * b


@triton.jit
def _welford_fn(n_a, mean_a, m2_a, n_b, mean_b, m2_b):
    # Chan et al.'s combine of two (count, mean, M2) summaries; an empty one (n = 0, mean = M2 = 0) is the identity
    n = n_a + n_b
    w = n_b / tl.where(n == 0, 1.0, n)
    d = mean_b - mean_a
    return n, mean_a + d * w, m2_a + m2_b + d * d * n_a * w


@triton.jit
def _rreduce(x, OP: tl.constexpr):
    """x reduced along axis 1 (a row's lanes) by the `opcodes.Reduce` OP: AMAX, AMIN, PROD, else a sum."""
    if OP == opcodes.Reduce.AMAX:
        return tl.reduce(x, 1, _max_fn)
    elif OP == opcodes.Reduce.AMIN:
        return tl.reduce(x, 1, _min_fn)
    elif OP == opcodes.Reduce.PROD:
        return tl.reduce(x, 1, _mul_fn)
    else:
        return tl.reduce(x, 1, _add_fn)


@triton.jit
def _offset2(i, INNER, s0, s1, TWO: tl.constexpr):
    """The offset of row (column) i: over two collapsed dims, the inner of size INNER (TWO: `ROW2`, `COL2`),
    else one of stride s1."""
    if TWO:
        return (i // INNER) * s0 + (i % INNER) * s1
    else:
        return i * s1


@triton.jit
def _init(OP: tl.constexpr, CK: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    # the identity of each OP in the accumulation type: 1 for prod, -inf/+inf (or the int64
    # bounds) for amax/amin, 0 for the sums and counts
    if OP == opcodes.Reduce.PROD:
        return _cast(tl.full([BLOCK_R, BLOCK_C], 1, tl.int32), CK)
    elif OP != opcodes.Reduce.AMAX and OP != opcodes.Reduce.AMIN:
        return _cast(tl.full([BLOCK_R, BLOCK_C], 0, tl.int32), CK)
    else:
        return _extreme(OP == opcodes.Reduce.AMAX, CK, BLOCK_R, BLOCK_C)


@triton.jit
def _centre(c_ptr, r, rmask, OP: tl.constexpr, POST: tl.constexpr, BLOCK_R: tl.constexpr):
    """The per-row value c of EXP_SUM, LOG_ADD and DIV_INTO (0 where unused); for logsumexp, 0 where not
    finite."""
    if OP == opcodes.Reduce.EXP_SUM or POST == opcodes.Post.LOG_ADD or POST == opcodes.Post.DIV_INTO:
        c = tl.load(c_ptr + r, mask=rmask, other=0)
        if OP == opcodes.Reduce.EXP_SUM or POST == opcodes.Post.LOG_ADD:
            c = tl.where(tl.abs(c) < float("inf"), c, 0.0)
        return c
    else:
        return tl.full([BLOCK_R], 0.0, tl.float32)


@triton.jit
def _reduce_step(acc, x_ptr, ctr, roff, rmask, c0, end, CIN, cs0, cs1,
                 OP: tl.constexpr, CK: tl.constexpr, COL2: tl.constexpr, BLOCK_R: tl.constexpr,
                 BLOCK_C: tl.constexpr):
    c = c0 + tl.arange(0, BLOCK_C).to(tl.int64)
    m = rmask[:, None] & (c < end)[None, :]
    raw = tl.load(x_ptr + roff[:, None] + _offset2(c, CIN, cs0, cs1, COL2)[None, :], mask=m, other=0)
    x = _cast(raw, CK)
    if OP == opcodes.Reduce.SUM:
        acc = acc + x
    elif OP == opcodes.Reduce.AMAX:    # NaN propagates
        acc = tl.where(m & ((x != x) | (x > acc)), x, acc)
    elif OP == opcodes.Reduce.AMIN:
        acc = tl.where(m & ((x != x) | (x < acc)), x, acc)
    elif OP == opcodes.Reduce.PROD:
        acc = tl.where(m, acc * x, acc)
    elif OP == opcodes.Reduce.NANSUM:
        acc = acc + tl.where(x != x, 0, x)
    elif OP == opcodes.Reduce.COUNT_NONZERO or OP == opcodes.Reduce.COUNT_NONNAN:
        # compared as floats (so bfloat16 too); float32 keeps every int's zeroness
        if raw.dtype == tl.float64:
            f = raw
        else:
            f = raw.to(tl.float32)
        if OP == opcodes.Reduce.COUNT_NONZERO:
            acc = acc + (f != 0).to(tl.int64)
        else:
            acc = acc + ((f == f) & m).to(tl.int64)
    else:
        acc = acc + tl.where(m, tl.exp(x - ctr[:, None]), 0.0)
    return acc


@triton.jit
def reduce_kernel(out_ptr, x_ptr, c_ptr, R, C, RIN, rs0, rs1, CIN, cs0, cs1, chunk, nblk, nsplit, divisor,
                  OP: tl.constexpr, CK: tl.constexpr, POST: tl.constexpr, ROW2: tl.constexpr, COL2: tl.constexpr,
                  HAS_DIV: tl.constexpr, INTERP: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """out[r * nsplit + s] = OP over columns [s * chunk, min((s + 1) * chunk, C)) of row r (s: program_id(1)),
    divided by `divisor` (HAS_DIV), then POST."""
    pid_s = tl.program_id(1).to(tl.int64)
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    rmask = r < R
    roff = _offset2(r, RIN, rs0, rs1, ROW2)
    ctr = _centre(c_ptr, r, rmask, OP, POST, BLOCK_R)
    start = pid_s * chunk
    end = tl.minimum(start + chunk, C)
    acc = _init(OP, CK, BLOCK_R, BLOCK_C)
    if INTERP:
        k = 0
        while k < nblk:
            acc = _reduce_step(acc, x_ptr, ctr, roff, rmask, start + k * BLOCK_C, end, CIN, cs0, cs1,
                               OP, CK, COL2, BLOCK_R, BLOCK_C)
            k += 1
    else:
        for k in range(0, nblk):
            acc = _reduce_step(acc, x_ptr, ctr, roff, rmask, start + k * BLOCK_C, end, CIN, cs0, cs1,
                               OP, CK, COL2, BLOCK_R, BLOCK_C)
    res = _rreduce(acc, OP)
    if OP == opcodes.Reduce.AMAX or OP == opcodes.Reduce.AMIN:
        if CK != opcodes.Compute.I64:
            nan = _rreduce((acc != acc).to(tl.int32), opcodes.Reduce.AMAX)
            res = tl.where(nan > 0, float("nan"), res)
    if HAS_DIV:
        res = res / divisor
    if POST == opcodes.Post.LOG_ADD:
        res = tl.log(res) + ctr
    elif POST == opcodes.Post.DIV_INTO:
        res = ctr / res.to(ctr.dtype)
    tl.store(out_ptr + r * nsplit + pid_s, res.to(out_ptr.dtype.element_ty), mask=rmask)


@triton.jit
def _welford_step(n, mean, m2, x_ptr, roff, rmask, piv, start, c0, end, CIN, cs0, cs1, plane,
                  MERGE: tl.constexpr, CK: tl.constexpr, COL2: tl.constexpr, BLOCK_C: tl.constexpr):
    c = c0 + tl.arange(0, BLOCK_C).to(tl.int64)
    m = rmask[:, None] & (c < end)[None, :]
    p = x_ptr + roff[:, None] + _offset2(c, CIN, cs0, cs1, COL2)[None, :]
    if MERGE:   # x holds (count, mean, M2) partials in three planes; masked lanes load the identity
        n, mean, m2 = _welford_fn(n, mean, m2, tl.load(p, mask=m, other=0), tl.load(p + plane, mask=m, other=0),
                                  tl.load(p + 2 * plane, mask=m, other=0))
    else:
        # only a program's last tile is partial, so every lane with a column in this tile (its k-th, from 1)
        # has had one in each earlier tile: this is its k-th element, and 1 / k is the same for all lanes
        x = _cast(tl.load(p, mask=m, other=0), CK) - piv[:, None]
        inv = 1.0 / _cast((c0 - start) // BLOCK_C + 1, CK)
        d = x - mean
        mean = tl.where(m, mean + d * inv, mean)
        m2 = tl.where(m, m2 + d * (x - mean), m2)
    return n, mean, m2


@triton.jit
def welford_kernel(out_ptr, x_ptr, R, C, RIN, rs0, rs1, CIN, cs0, cs1, chunk, nblk, nsplit, divisor,
                   MERGE: tl.constexpr, CK: tl.constexpr, POST: tl.constexpr, ROW2: tl.constexpr,
                   COL2: tl.constexpr, INTERP: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """Over columns [s * chunk, min((s + 1) * chunk, C)) of row r (s: program_id(1)): out[r * nsplit + s] =
    M2 / divisor (Post.NONE), its sqrt (SQRT), or (WELFORD_PARTS) the (count, mean, M2) summary in three planes of
    R * nsplit. With Merge.PARTIALS, x is such partials (planes of R * C) rather than the data."""
    pid_s = tl.program_id(1).to(tl.int64)
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    rmask = r < R
    roff = _offset2(r, RIN, rs0, rs1, ROW2)
    start = pid_s * chunk
    end = tl.minimum(start + chunk, C)
    plane = R * C
    if MERGE:
        piv = _cast(tl.full([BLOCK_R], 0, tl.int32), CK)
    else:   # Welford on x - (the row's first element): the same M2, but running means near 0, so a large
        # common offset costs no precision (shifted data, as in Chan, Golub and LeVeque)
        piv = _cast(tl.load(x_ptr + roff, mask=rmask & (C > 0), other=0), CK)
    n = _cast(tl.full([BLOCK_R, BLOCK_C], 0, tl.int32), CK)
    mean = n
    m2 = n
    if INTERP:
        k = 0
        while k < nblk:
            n, mean, m2 = _welford_step(n, mean, m2, x_ptr, roff, rmask, piv, start, start + k * BLOCK_C, end, CIN,
                                        cs0, cs1, plane, MERGE, CK, COL2, BLOCK_C)
            k += 1
    else:
        for k in range(0, nblk):
            n, mean, m2 = _welford_step(n, mean, m2, x_ptr, roff, rmask, piv, start, start + k * BLOCK_C, end, CIN,
                                        cs0, cs1, plane, MERGE, CK, COL2, BLOCK_C)
    if not MERGE:   # each lane's count: the tiles in which it had a column
        j = tl.arange(0, BLOCK_C).to(tl.int64)
        n = tl.broadcast_to(_cast((tl.maximum(end - start - j, 0) + BLOCK_C - 1) // BLOCK_C, CK)[None, :],
                            [BLOCK_R, BLOCK_C])
    n, mean, m2 = tl.reduce((n, mean, m2), 1, _welford_fn)
    o = out_ptr + r * nsplit + pid_s
    if POST == opcodes.Post.WELFORD_PARTS:
        part = R * nsplit
        tl.store(o, n.to(out_ptr.dtype.element_ty), mask=rmask)
        tl.store(o + part, mean.to(out_ptr.dtype.element_ty), mask=rmask)
        tl.store(o + 2 * part, m2.to(out_ptr.dtype.element_ty), mask=rmask)
    else:
        res = m2 / divisor
        if POST == opcodes.Post.SQRT:
            res = tl.sqrt(res)
        tl.store(o, res.to(out_ptr.dtype.element_ty), mask=rmask)


@triton.jit
def _arg_step(bv, bi, x_ptr, roff, rmask, c0, C, CIN, cs0, cs1, BIG,
              IS_MIN: tl.constexpr, CK: tl.constexpr, COL2: tl.constexpr, BLOCK_C: tl.constexpr):
    c = c0 + tl.arange(0, BLOCK_C).to(tl.int64)
    m = rmask[:, None] & (c < C)[None, :]
    x = _cast(tl.load(x_ptr + roff[:, None] + _offset2(c, CIN, cs0, cs1, COL2)[None, :], mask=m, other=0), CK)
    if IS_MIN:
        better = x < bv
    else:
        better = x > bv
    if CK != opcodes.Compute.I64:
        better = better | ((x != x) & (bv == bv))
    # columns arrive in increasing order, so a strict improvement keeps the first index on ties
    upd = m & ((bi == BIG) | better)
    cc = bi * 0 + c[None, :]
    return tl.where(upd, x, bv), tl.where(upd, cc, bi)


@triton.jit
def arg_kernel(out_ptr, val_ptr, x_ptr, R, C, RIN, rs0, rs1, CIN, cs0, cs1, nblk,
               IS_MIN: tl.constexpr, CK: tl.constexpr, ROW2: tl.constexpr, COL2: tl.constexpr,
               WRITE_VAL: tl.constexpr, INTERP: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """out[r] = the first column index of the max (min) of row r; the first NaN wins (C >= 1).
    With WRITE_VAL, val[r] = that max (min), NaN if the row has one (max/min over a dim)."""
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    rmask = r < R
    roff = _offset2(r, RIN, rs0, rs1, ROW2)
    BIG = C  # "no index yet" (a valid index is < C)
    bv = _cast(tl.full([BLOCK_R, BLOCK_C], 0, tl.int32), CK)
    bi = tl.full([BLOCK_R, BLOCK_C], 0, tl.int64) + BIG
    if INTERP:
        k = 0
        while k < nblk:
            bv, bi = _arg_step(bv, bi, x_ptr, roff, rmask, k * BLOCK_C, C, CIN, cs0, cs1, BIG,
                               IS_MIN, CK, COL2, BLOCK_C)
            k += 1
    else:
        for k in range(0, nblk):
            bv, bi = _arg_step(bv, bi, x_ptr, roff, rmask, k * BLOCK_C, C, CIN, cs0, cs1, BIG,
                               IS_MIN, CK, COL2, BLOCK_C)
    valid = bi != BIG
    if IS_MIN:
        best = _rreduce(tl.where(valid, bv, _rreduce(bv, opcodes.Reduce.AMAX)[:, None]), opcodes.Reduce.AMIN)
    else:
        best = _rreduce(tl.where(valid, bv, _rreduce(bv, opcodes.Reduce.AMIN)[:, None]), opcodes.Reduce.AMAX)
    cand = valid & (bv == best[:, None])
    if CK != opcodes.Compute.I64:
        isnan = valid & (bv != bv)
        anynan = _rreduce(isnan.to(tl.int32), opcodes.Reduce.AMAX)
        cand = tl.where(anynan[:, None] > 0, isnan, cand)
    idx = _rreduce(tl.where(cand, bi, BIG), opcodes.Reduce.AMIN)
    tl.store(out_ptr + r, idx, mask=rmask)
    if WRITE_VAL:
        if CK != opcodes.Compute.I64:
            best = tl.where(anynan > 0, float("nan"), best)
        tl.store(val_ptr + r, best.to(val_ptr.dtype.element_ty), mask=rmask)


@triton.jit
def _sm_stats_step(m, s, x_ptr, roff, rmask, c0, C, cs, CK: tl.constexpr, BLOCK_C: tl.constexpr):
    c = c0 + tl.arange(0, BLOCK_C).to(tl.int64)
    msk = rmask[:, None] & (c < C)[None, :]
    x = _cast(tl.load(x_ptr + roff[:, None] + c[None, :] * cs, mask=msk, other=0), CK)
    x = tl.where(msk, x, float("-inf"))
    mn = tl.maximum(m, x)
    safe = tl.where(mn == float("-inf"), 0.0, mn)
    s = s * tl.exp(m - safe) + tl.exp(x - safe)
    return mn, s


@triton.jit
def _sm_write_step(out_ptr, x_ptr, roff, ooff, rmask, c0, C, cs, ocs, M, L, LOG: tl.constexpr,
                   CK: tl.constexpr, BLOCK_C: tl.constexpr):
    c = c0 + tl.arange(0, BLOCK_C).to(tl.int64)
    msk = rmask[:, None] & (c < C)[None, :]
    x = _cast(tl.load(x_ptr + roff[:, None] + c[None, :] * cs, mask=msk, other=0), CK)
    z = x - M[:, None]
    if LOG:
        y = z - L[:, None]
    else:
        y = tl.exp(z) / L[:, None]
    tl.store(out_ptr + ooff[:, None] + c[None, :] * ocs, y.to(out_ptr.dtype.element_ty), mask=msk)


@triton.jit
def softmax_kernel(out_ptr, x_ptr, R, C, RIN, rs0, rs1, cs, ors0, ors1, ocs, nblk,
                   LOG: tl.constexpr, CK: tl.constexpr, ROW2: tl.constexpr, INTERP: tl.constexpr,
                   BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """(log_)softmax of each row: online max/sum-of-exp per lane, combined, then a second pass writes.
    A row of all -inf, or with +inf or NaN, gives NaN (as in PyTorch)."""
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    rmask = r < R
    roff = _offset2(r, RIN, rs0, rs1, ROW2)
    ooff = _offset2(r, RIN, ors0, ors1, ROW2)
    m = _cast(tl.full([BLOCK_R, BLOCK_C], float("-inf"), tl.float32), CK)
    s = _cast(tl.full([BLOCK_R, BLOCK_C], 0, tl.float32), CK)
    if INTERP:
        k = 0
        while k < nblk:
            m, s = _sm_stats_step(m, s, x_ptr, roff, rmask, k * BLOCK_C, C, cs, CK, BLOCK_C)
            k += 1
    else:
        for k in range(0, nblk):
            m, s = _sm_stats_step(m, s, x_ptr, roff, rmask, k * BLOCK_C, C, cs, CK, BLOCK_C)
    M = _rreduce(m, opcodes.Reduce.AMAX)
    nan = _rreduce((m != m).to(tl.int32), opcodes.Reduce.AMAX)
    M = tl.where(nan > 0, float("nan"), M)
    safe = tl.where(M == float("-inf"), 0.0, M)
    S = _rreduce(s * tl.exp(m - safe[:, None]), opcodes.Reduce.SUM)
    if LOG:
        L = tl.log(S)
    else:
        L = S
    if INTERP:
        k = 0
        while k < nblk:
            _sm_write_step(out_ptr, x_ptr, roff, ooff, rmask, k * BLOCK_C, C, cs, ocs, M, L, LOG, CK, BLOCK_C)
            k += 1
    else:
        for k in range(0, nblk):
            _sm_write_step(out_ptr, x_ptr, roff, ooff, rmask, k * BLOCK_C, C, cs, ocs, M, L, LOG, CK, BLOCK_C)


@triton.jit
def softmax_row_kernel(out_ptr, x_ptr, R, C, RIN, rs0, rs1, ors0, ors1,
                       LOG: tl.constexpr, CK: tl.constexpr, ROW2: tl.constexpr, VEC: tl.constexpr,
                       XALIGN: tl.constexpr, OALIGN: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """(log_)softmax in one pass over rows of unit stride (in x and out) that fit one tile (C <= BLOCK_C):
    each element is loaded once into registers (max, exp, sum from there) and stored once.
    VEC > 1 promises that C is a multiple of VEC and that every row of x (out) starts at a multiple of
    XALIGN (OALIGN) bytes: the hints that let Triton use 16-byte loads and stores."""
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    rmask = r < R
    roff = _offset2(r, RIN, rs0, rs1, ROW2)
    ooff = _offset2(r, RIN, ors0, ors1, ROW2)
    c = tl.arange(0, BLOCK_C)
    cmask = c < C
    xp = x_ptr + roff[:, None] + c[None, :]
    op = out_ptr + ooff[:, None] + c[None, :]
    if VEC > 1:
        cmask = tl.max_constancy(cmask, [VEC])
        xp = tl.multiple_of(xp, [XALIGN, XALIGN])
        op = tl.multiple_of(op, [OALIGN, OALIGN])
    m = rmask[:, None] & cmask[None, :]
    x = tl.where(m, _cast(tl.load(xp, mask=m, other=0), CK), float("-inf"))
    z = x - _rreduce(x, opcodes.Reduce.AMAX)[:, None]
    e = tl.exp(z)
    s = _rreduce(e, opcodes.Reduce.SUM)
    if LOG:
        y = z - tl.log(s)[:, None]
    else:
        y = e * (1.0 / s)[:, None]      # one division a row
    tl.store(op, y.to(out_ptr.dtype.element_ty), mask=m)
