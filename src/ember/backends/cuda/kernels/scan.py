"""Triton kernels for the scans along one dim: cumsum, cumprod, logcumsumexp, cummax/cummin.

The host (`backends/cuda/scan.py`) lays every problem out as rows x cols, the cols running along the
scanned dim (`reduction.Along`): row r starts at `(r // RIN) * rs0 + (r % RIN) * rs1` (two collapsed
kept dims, `ROW2`), column c is `c * cs` further; the output (and the indices of cummax/cummin)
use their own row strides and column stride `ocs`. A program owns BLOCK_R rows and walks their
columns in BLOCK_C tiles: each tile is scanned with `tl.associative_scan`, combined with the carry
of the tiles before it, and its last column becomes the next carry. Few long rows are split into
chunks over a second grid axis: `MODE` (`opcodes.ScanPass`) `TOTALS` writes each chunk's total,
`CARRY_IN` then scans each chunk starting from the combined totals of the chunks before it (`WHOLE`:
one chunk, one launch).
`XUNIT`/`OUNIT`/`RUNIT` mark unit column strides in x / out and a unit row stride in both
(constexprs, so that Triton sees contiguous addresses along the unit-stride side and lays its
threads along it).

`OP` (`opcodes.Scan`): sum, prod, logaddexp, max, min (these two carry (value, index) pairs). `CK` is
the accumulation type (`opcodes.Compute` F32, F64 or I64); each element is first converted to the output's
type (the `dtype=` of cumsum/cumprod) and then to CK. Masked lanes hold the identity of OP, so a
tile's last column is always the running total.

cummax/cummin follow PyTorch: the index moves to every later element >= the running max (<= the
running min), so ties take the last index, and once a NaN is seen the value stays NaN with the
index of the last NaN. As an associative combine of (value, index) pairs this is "the larger of
(is NaN, value, index)" ("(is NaN, -value, index)" for min), which is also commutative.
"""
import triton
import triton.language as tl

from .. import opcodes
from .elementwise import _cast, _extreme
from .reduction import _offset2


@triton.jit
def _add_fn(a, b):
    return a + b


@triton.jit
def _mul_fn(a, b):
    return a * b


@triton.jit
def _logaddexp_fn(a, b):
    # log(exp(a) + exp(b)); equal infinities return themselves, a NaN propagates
    mx = tl.where(a > b, a, b)
    mn = tl.where(a > b, b, a)
    return tl.where((mx == mn) & (tl.abs(mx) == float("inf")), mx, mx + tl.log(1.0 + tl.exp(mn - mx)))


@triton.jit
def _max_pair(v1, i1, v2, i2):
    n1 = v1 != v1
    n2 = v2 != v2
    take2 = (n2 & ~n1) | ((n1 == n2) & ((v2 > v1) | (((v2 == v1) | n2) & (i2 > i1))))
    return tl.where(take2, v2, v1), tl.where(take2, i2, i1)


@triton.jit
def _min_pair(v1, i1, v2, i2):
    n1 = v1 != v1
    n2 = v2 != v2
    take2 = (n2 & ~n1) | ((n1 == n2) & ((v2 < v1) | (((v2 == v1) | n2) & (i2 > i1))))
    return tl.where(take2, v2, v1), tl.where(take2, i2, i1)


@triton.jit
def _identity(OP: tl.constexpr, CK: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    if OP == opcodes.Scan.CUMSUM:
        return _cast(tl.full([BLOCK_R, BLOCK_C], 0, tl.int32), CK)
    elif OP == opcodes.Scan.CUMPROD:
        return _cast(tl.full([BLOCK_R, BLOCK_C], 1, tl.int32), CK)
    elif OP == opcodes.Scan.LOGCUMSUMEXP:
        return _cast(tl.full([BLOCK_R, BLOCK_C], float("-inf"), tl.float32), CK)
    else:
        return _extreme(OP == opcodes.Scan.CUMMAX, CK, BLOCK_R, BLOCK_C)


@triton.jit
def _load(out_ptr, x_ptr, roff, rmask, c0, end, cs, OP: tl.constexpr, CK: tl.constexpr, XUNIT: tl.constexpr,
          BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """Columns [c0, c0 + BLOCK_C) of the rows, in CK, the identity of OP past `end`: (cols, mask, x, identity)."""
    c = c0 + tl.arange(0, BLOCK_C).to(tl.int64)
    m = rmask[:, None] & (c < end)[None, :]
    if XUNIT:
        xc = c
    else:
        xc = c * cs
    raw = tl.load(x_ptr + roff[:, None] + xc[None, :], mask=m, other=0)
    ident = _identity(OP, CK, BLOCK_R, BLOCK_C)
    return c, m, tl.where(m, _cast(raw.to(out_ptr.dtype.element_ty), CK), ident), ident


@triton.jit
def _total_step(cv, ci, out_ptr, x_ptr, roff, rmask, c0, end, cs, OP: tl.constexpr, CK: tl.constexpr,
                XUNIT: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """The carry (cv, ci) combined with the whole tile (TOTALS: chunk totals, nothing stored)."""
    c, m, x, ident = _load(out_ptr, x_ptr, roff, rmask, c0, end, cs, OP, CK, XUNIT, BLOCK_R, BLOCK_C)
    if OP == opcodes.Scan.CUMSUM:
        cv = cv + tl.reduce(x, 1, _add_fn)
    elif OP == opcodes.Scan.CUMPROD:
        cv = cv * tl.reduce(x, 1, _mul_fn)
    elif OP == opcodes.Scan.LOGCUMSUMEXP:
        cv = _logaddexp_fn(cv, tl.reduce(x, 1, _logaddexp_fn))
    elif OP == opcodes.Scan.CUMMAX:
        v, i = tl.reduce((x, tl.where(m, c[None, :], -1)), 1, _max_pair)
        cv, ci = _max_pair(cv, ci, v, i)
    else:
        v, i = tl.reduce((x, tl.where(m, c[None, :], -1)), 1, _min_pair)
        cv, ci = _min_pair(cv, ci, v, i)
    return cv, ci


@triton.jit
def _scan_step(cv, ci, out_ptr, idx_ptr, x_ptr, roff, ooff, rmask, c0, end, cs, ocs,
               OP: tl.constexpr, CK: tl.constexpr, XUNIT: tl.constexpr, OUNIT: tl.constexpr,
               BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """Scans columns [c0, c0 + BLOCK_C) of the rows after the carry (cv, ci); returns the new carry."""
    c, m, x, ident = _load(out_ptr, x_ptr, roff, rmask, c0, end, cs, OP, CK, XUNIT, BLOCK_R, BLOCK_C)
    if OUNIT:
        oc = c
    else:
        oc = c * ocs
    last = (c == c0 + BLOCK_C - 1)[None, :]
    if OP == opcodes.Scan.CUMSUM:
        s = cv[:, None] + tl.associative_scan(x, 1, _add_fn)
        cv = tl.reduce(tl.where(last, s, ident), 1, _add_fn)
    elif OP == opcodes.Scan.CUMPROD:
        s = cv[:, None] * tl.associative_scan(x, 1, _mul_fn)
        cv = tl.reduce(tl.where(last, s, ident), 1, _mul_fn)
    elif OP == opcodes.Scan.LOGCUMSUMEXP:
        s = _logaddexp_fn(cv[:, None], tl.associative_scan(x, 1, _logaddexp_fn))
        cv = tl.reduce(tl.where(last, s, ident), 1, _logaddexp_fn)
    else:
        i = tl.where(m, c[None, :], -1)
        if OP == opcodes.Scan.CUMMAX:
            s, si = tl.associative_scan((x, i), 1, _max_pair)
            s, si = _max_pair(cv[:, None], ci[:, None], s, si)
            cv, ci = tl.reduce((tl.where(last, s, ident), tl.where(last, si, -1)), 1, _max_pair)
        else:
            s, si = tl.associative_scan((x, i), 1, _min_pair)
            s, si = _min_pair(cv[:, None], ci[:, None], s, si)
            cv, ci = tl.reduce((tl.where(last, s, ident), tl.where(last, si, -1)), 1, _min_pair)
        tl.store(idx_ptr + ooff[:, None] + oc[None, :], si, mask=m)
    tl.store(out_ptr + ooff[:, None] + oc[None, :], s.to(out_ptr.dtype.element_ty), mask=m)
    return cv, ci


@triton.jit
def _carry_in(tv_ptr, ti_ptr, r, rmask, s, nsplit, OP: tl.constexpr, CK: tl.constexpr, BLOCK_R: tl.constexpr,
              BLOCK_S: tl.constexpr):
    """CARRY_IN: the carry into chunk s, the combination of the totals of chunks 0..s-1 of each row."""
    j = tl.arange(0, BLOCK_S).to(tl.int64)
    m = rmask[:, None] & (j < s)[None, :]
    p = r[:, None] * nsplit + j[None, :]
    v = tl.where(m, tl.load(tv_ptr + p, mask=m, other=0), _identity(OP, CK, BLOCK_R, BLOCK_S))
    ci = tl.full([BLOCK_R], -1, tl.int64)
    if OP == opcodes.Scan.CUMSUM:
        cv = tl.reduce(v, 1, _add_fn)
    elif OP == opcodes.Scan.CUMPROD:
        cv = tl.reduce(v, 1, _mul_fn)
    elif OP == opcodes.Scan.LOGCUMSUMEXP:
        cv = tl.reduce(v, 1, _logaddexp_fn)
    elif OP == opcodes.Scan.CUMMAX:
        cv, ci = tl.reduce((v, tl.load(ti_ptr + p, mask=m, other=-1)), 1, _max_pair)
    else:
        cv, ci = tl.reduce((v, tl.load(ti_ptr + p, mask=m, other=-1)), 1, _min_pair)
    return cv, ci


@triton.jit
def scan_kernel(out_ptr, idx_ptr, x_ptr, tv_ptr, ti_ptr, R, C, RIN, rs0, rs1, cs, ors0, ors1, ocs, chunk, nblk,
                nsplit, OP: tl.constexpr, CK: tl.constexpr, MODE: tl.constexpr, ROW2: tl.constexpr,
                XUNIT: tl.constexpr, OUNIT: tl.constexpr, RUNIT: tl.constexpr, INTERP: tl.constexpr,
                BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr):
    """out[r, c] = OP over x[r, 0..c]; for max/min also idx[r, c] (see the module docstring).
    Program (i, s) owns rows [i * BLOCK_R, (i + 1) * BLOCK_R) and columns [s * chunk, (s + 1) * chunk).
    WHOLE: whole rows (one chunk). TOTALS: only the total of each chunk, into tv[r * nsplit + s]
    (ti for the indices of max/min). CARRY_IN: the scan of each chunk after the totals of those before it."""
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    s = tl.program_id(1).to(tl.int64)
    rmask = r < R
    if RUNIT:
        roff = r
        ooff = r
    else:
        roff = _offset2(r, RIN, rs0, rs1, ROW2)
        ooff = _offset2(r, RIN, ors0, ors1, ROW2)
    start = s * chunk
    end = tl.minimum(start + chunk, C)
    if MODE == opcodes.ScanPass.CARRY_IN:
        cv, ci = _carry_in(tv_ptr, ti_ptr, r, rmask, s, nsplit, OP, CK, BLOCK_R, BLOCK_S)
    else:
        cv = tl.reshape(_identity(OP, CK, BLOCK_R, 1), [BLOCK_R])
        ci = tl.full([BLOCK_R], -1, tl.int64)
    if MODE == opcodes.ScanPass.TOTALS:
        if INTERP:
            k = 0
            while k < nblk:
                cv, ci = _total_step(cv, ci, out_ptr, x_ptr, roff, rmask, start + k * BLOCK_C, end, cs,
                                     OP, CK, XUNIT, BLOCK_R, BLOCK_C)
                k += 1
        else:
            for k in range(0, nblk):
                cv, ci = _total_step(cv, ci, out_ptr, x_ptr, roff, rmask, start + k * BLOCK_C, end, cs,
                                     OP, CK, XUNIT, BLOCK_R, BLOCK_C)
        tl.store(tv_ptr + r * nsplit + s, cv, mask=rmask)
        if OP >= opcodes.Scan.CUMMAX:
            tl.store(ti_ptr + r * nsplit + s, ci, mask=rmask)
    else:
        if INTERP:
            k = 0
            while k < nblk:
                cv, ci = _scan_step(cv, ci, out_ptr, idx_ptr, x_ptr, roff, ooff, rmask, start + k * BLOCK_C, end,
                                    cs, ocs, OP, CK, XUNIT, OUNIT, BLOCK_R, BLOCK_C)
                k += 1
        else:
            for k in range(0, nblk):
                cv, ci = _scan_step(cv, ci, out_ptr, idx_ptr, x_ptr, roff, ooff, rmask, start + k * BLOCK_C, end,
                                    cs, ocs, OP, CK, XUNIT, OUNIT, BLOCK_R, BLOCK_C)
