"""Triton kernels of the CUDA indexing ops (64-bit indexing throughout).

gather_kernel / scatter_kernel: positions run over an index-shaped grid of up to 6 collapsed dims
(sizes s1..s5, dim 0 unbounded). Each position reads one index value (through the index's
strides `it*`) and addresses the indexed tensor at the position's own offset (strides `xt*`/`ot*`,
0 on the indexed dims) plus either `index * xdim` or, with UNDIM > 0 (take/put), the offset of
the flat C-order element `index` of a tensor of collapsed sizes u1..u5 and strides `ut*`.
`WRAP` (`opcodes.Bounds`) PLAIN: an index must lie in [0, size); WRAP: in [-size, size), negatives
wrapped (as the CPU backend decides per op); LIN: pre-linearised offsets from lin_kernel, where a
negative value marks an index that lin_kernel found out of range (and reported). An index out of
range is never dereferenced (reads give 0, writes are skipped) and, except with LIN, is reported through `report`: the
first failing lane writes its op `code`, the index and the bound into the device's error word
`err_ptr` (see `backends/cuda/checks.py`), which the host reads at its next synchronisation.

scatter_kernel `MODE` (`opcodes.Scatter`): store, add (atomic), multiply, max, min. Integer max/min use
atomic_max/min, multiply and float max/min a compare-and-swap loop on the element's bits
(NaN propagates). The host only calls the atomic modes on 32/64-bit elements (float16 for add)
and accumulates narrower types in a wider copy.

count_kernel / scan_kernel / scan_add_kernel / compact_kernel: stream compaction. Each program
counts the non-zero mask elements of its BLOCK, an inclusive scan of those counts gives every
block its first output slot, and compact_kernel writes the kept elements' coordinates (nonzero),
values (masked_select) or reads consecutive source values (masked_scatter).
"""
import triton
import triton.language as tl

from .. import opcodes
from .elementwise import _offset


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def report(err_ptr, bad, value, bound, code):
    """Records an index out of range where `bad`: every such lane counts itself in err_ptr[3] (a
    masked atomic: nothing happens while no lane is bad), and the one that counts first since the
    host last cleared the word writes (code, its value, bound) into err_ptr[0..2]."""
    p = err_ptr + value.to(tl.int64) * 0
    first = bad & (tl.atomic_add(p + 3, 1, mask=bad) == 0)
    tl.store(p, code, mask=first)
    tl.store(p + 1, value.to(tl.int64), mask=first)
    tl.store(p + 2, bound, mask=first)


@triton.jit
def _index(idx, size, mask, err_ptr, code, WRAP: tl.constexpr):
    """(in range, wrapped index) of the index values loaded where `mask`; reports one out of range."""
    idx = idx.to(tl.int64)
    if WRAP == opcodes.Bounds.LIN:
        ok = idx >= 0
    else:
        if WRAP == opcodes.Bounds.WRAP:
            ok = (idx >= -size) & (idx < size)
        else:
            ok = (idx >= 0) & (idx < size)
        report(err_ptr, mask & (ok == 0), idx, size, code)
        idx = tl.where(idx < 0, idx + size, idx)
    return ok, idx


@triton.jit
def gather_kernel(out_ptr, x_ptr, idx_ptr, n, isize, xdim,
                  s1, s2, s3, s4, s5,
                  ot0, ot1, ot2, ot3, ot4, ot5,
                  xt0, xt1, xt2, xt3, xt4, xt5,
                  it0, it1, it2, it3, it4, it5,
                  u1, u2, u3, u4, u5,
                  ut0, ut1, ut2, ut3, ut4, ut5, err_ptr, code,
                  NDIM: tl.constexpr, UNDIM: tl.constexpr, WRAP: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    idx = tl.load(idx_ptr + _offset(i, s1, s2, s3, s4, s5, it0, it1, it2, it3, it4, it5, NDIM), mask=mask, other=0)
    ok, idx = _index(idx, isize, mask, err_ptr, code, WRAP)
    xo = _offset(i, s1, s2, s3, s4, s5, xt0, xt1, xt2, xt3, xt4, xt5, NDIM)
    if UNDIM > 0:
        xo += _offset(idx, u1, u2, u3, u4, u5, ut0, ut1, ut2, ut3, ut4, ut5, UNDIM)
    else:
        xo += idx * xdim
    v = tl.load(x_ptr + xo, mask=mask & ok, other=0)
    tl.store(out_ptr + _offset(i, s1, s2, s3, s4, s5, ot0, ot1, ot2, ot3, ot4, ot5, NDIM), v, mask=mask)


@triton.jit
def _combine(cur, v, MODE: tl.constexpr):
    if MODE == opcodes.Scatter.MUL:
        return cur * v
    elif MODE == opcodes.Scatter.MAX:
        return tl.where((v > cur) | (v != v), v, cur)
    else:
        return tl.where((v < cur) | (v != v), v, cur)


@triton.jit
def _cas_loop(p, v, todo, MODE: tl.constexpr, FLT: tl.constexpr, W64: tl.constexpr):
    """p[k] = combine(p[k], v[k]) where todo, by compare-and-swap on the element's bits. Lanes
    not in `todo` swap an element with itself (p points at a valid element for every lane)."""
    if FLT:
        if W64:
            pb = p.to(tl.pointer_type(tl.int64))
        else:
            pb = p.to(tl.pointer_type(tl.int32))
    else:
        pb = p
    bits = tl.load(pb)
    left = tl.reduce(todo.to(tl.int32), 0, _add)
    while left > 0:
        if FLT:
            cur = bits.to(v.dtype, bitcast=True)
            new = tl.where(todo, _combine(cur, v, MODE), cur).to(bits.dtype, bitcast=True)
        else:
            new = tl.where(todo, _combine(bits, v, MODE), bits)
        prev = tl.atomic_cas(pb, bits, new)
        todo = todo & (prev != bits)
        bits = prev
        left = tl.reduce(todo.to(tl.int32), 0, _add)


@triton.jit
def scatter_kernel(out_ptr, src_ptr, idx_ptr, n, osize, odim, value,
                   s1, s2, s3, s4, s5,
                   ot0, ot1, ot2, ot3, ot4, ot5,
                   st0, st1, st2, st3, st4, st5,
                   it0, it1, it2, it3, it4, it5,
                   u1, u2, u3, u4, u5,
                   ut0, ut1, ut2, ut3, ut4, ut5, err_ptr, code,
                   NDIM: tl.constexpr, UNDIM: tl.constexpr, WRAP: tl.constexpr, MODE: tl.constexpr,
                   SRC_SCALAR: tl.constexpr, SCALE: tl.constexpr, FLT: tl.constexpr, W64: tl.constexpr,
                   BLOCK: tl.constexpr):
    """out[target(i)] (op)= src[i], or the scalar `value` (SRC_SCALAR); SCALE multiplies src by `value`."""
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    idx = tl.load(idx_ptr + _offset(i, s1, s2, s3, s4, s5, it0, it1, it2, it3, it4, it5, NDIM), mask=mask, other=0)
    ok, idx = _index(idx, osize, mask, err_ptr, code, WRAP)
    mask = mask & ok
    oo = _offset(i, s1, s2, s3, s4, s5, ot0, ot1, ot2, ot3, ot4, ot5, NDIM)
    if UNDIM > 0:
        oo += _offset(idx, u1, u2, u3, u4, u5, ut0, ut1, ut2, ut3, ut4, ut5, UNDIM)
    else:
        oo += idx * odim
    oo = tl.where(mask, oo, 0)
    ty = out_ptr.dtype.element_ty
    if SRC_SCALAR:  # `value` is float64 for float64 outputs, float32 for other floats, else int64
        if FLT and W64:
            v = tl.full([BLOCK], value, tl.float64).to(ty)
        elif FLT:
            v = tl.full([BLOCK], value, tl.float32).to(ty)
        else:
            v = tl.full([BLOCK], value, tl.int64).to(ty)
    else:
        v = tl.load(src_ptr + _offset(i, s1, s2, s3, s4, s5, st0, st1, st2, st3, st4, st5, NDIM), mask=mask, other=0)
        v = v.to(ty)
        if SCALE:
            v = (v * value).to(ty)
    p = out_ptr + oo
    if MODE == opcodes.Scatter.STORE:
        tl.store(p, v, mask=mask)
    elif MODE == opcodes.Scatter.ADD:
        tl.atomic_add(p, v, mask=mask)
    elif MODE == opcodes.Scatter.MAX and FLT == 0:
        tl.atomic_max(p, v, mask=mask)
    elif MODE == opcodes.Scatter.MIN and FLT == 0:
        tl.atomic_min(p, v, mask=mask)
    else:
        _cas_loop(p, v, mask, MODE, FLT, W64)


@triton.jit
def lin_kernel(lin_ptr, idx_ptr, n, size, stride,
               s1, s2, s3, s4, s5,
               it0, it1, it2, it3, it4, it5, err_ptr, code,
               NDIM: tl.constexpr, FIRST: tl.constexpr, BLOCK: tl.constexpr):
    """lin[i] (+)= wrap(idx[i]) * stride over a contiguous lin; -1 once some index is out of range
    (reported here, so that the gather/scatter over lin with Bounds.LIN only skips it)."""
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    idx = tl.load(idx_ptr + _offset(i, s1, s2, s3, s4, s5, it0, it1, it2, it3, it4, it5, NDIM), mask=mask, other=0)
    ok, idx = _index(idx, size, mask, err_ptr, code, 1)
    r = idx * stride
    if not FIRST:
        prev = tl.load(lin_ptr + i, mask=mask, other=0)
        ok = ok & (prev >= 0)
        r += prev
    tl.store(lin_ptr + i, tl.where(ok, r, -1), mask=mask)


# ---- stream compaction ----------------------------------------------------------------------------

@triton.jit
def _nonzero(v, HALF: tl.constexpr):
    if HALF:
        return v.to(tl.float32) != 0
    else:
        return v != 0


@triton.jit
def count_kernel(cnt_ptr, m_ptr, n,
                 s1, s2, s3, s4, s5,
                 mt0, mt1, mt2, mt3, mt4, mt5,
                 NDIM: tl.constexpr, HALF: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    m = tl.load(m_ptr + _offset(i, s1, s2, s3, s4, s5, mt0, mt1, mt2, mt3, mt4, mt5, NDIM), mask=mask, other=0)
    keep = _nonzero(m, HALF) & mask
    tl.store(cnt_ptr + pid, tl.reduce(keep.to(tl.int64), 0, _add))


@triton.jit
def scan_kernel(x_ptr, out_ptr, sums_ptr, n, BLOCK: tl.constexpr):
    """Inclusive scan within each block of a contiguous int64 vector; sums[block] = its total."""
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    x = tl.load(x_ptr + i, mask=mask, other=0)
    tl.store(out_ptr + i, tl.associative_scan(x, 0, _add), mask=mask)
    tl.store(sums_ptr + pid, tl.reduce(x, 0, _add))


@triton.jit
def scan_add_kernel(out_ptr, offs_ptr, n, BLOCK: tl.constexpr):
    """out[block b] += offs[b - 1] for the blocks b >= 1 (offs: the inclusive scan of block sums)."""
    pid = tl.program_id(0).to(tl.int64) + 1
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    base = tl.load(offs_ptr + pid - 1)
    tl.store(out_ptr + i, tl.load(out_ptr + i, mask=mask, other=0) + base, mask=mask)


@triton.jit
def _store_coords(out_ptr, row, i, c1, c2, c3, c4, c5, keep, CNDIM: tl.constexpr):
    """out[row + k] = coordinate k of the C-order flat index i over sizes (.., c1, .., c5)."""
    r = i
    if CNDIM >= 6:
        tl.store(out_ptr + row + 5, r % c5, mask=keep)
        r = r // c5
    if CNDIM >= 5:
        tl.store(out_ptr + row + 4, r % c4, mask=keep)
        r = r // c4
    if CNDIM >= 4:
        tl.store(out_ptr + row + 3, r % c3, mask=keep)
        r = r // c3
    if CNDIM >= 3:
        tl.store(out_ptr + row + 2, r % c2, mask=keep)
        r = r // c2
    if CNDIM >= 2:
        tl.store(out_ptr + row + 1, r % c1, mask=keep)
        r = r // c1
    tl.store(out_ptr + row, r, mask=keep)


@triton.jit
def compact_kernel(out_ptr, a_ptr, m_ptr, incl_ptr, cnt_ptr, n, limit,
                   s1, s2, s3, s4, s5,
                   at0, at1, at2, at3, at4, at5,
                   mt0, mt1, mt2, mt3, mt4, mt5,
                   c1, c2, c3, c4, c5,
                   NDIM: tl.constexpr, CNDIM: tl.constexpr, MODE: tl.constexpr, HALF: tl.constexpr,
                   BLOCK: tl.constexpr):
    """MODE (`opcodes.Compact`) NONZERO: out[pos, :] = coordinates of i; MASKED_SELECT: out[pos] = a[i];
    MASKED_SCATTER: a[i] = out[pos] while pos < limit (masked_scatter: `out` is the flat source)."""
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    m = tl.load(m_ptr + _offset(i, s1, s2, s3, s4, s5, mt0, mt1, mt2, mt3, mt4, mt5, NDIM), mask=mask, other=0)
    keep = _nonzero(m, HALF) & mask
    k = keep.to(tl.int64)
    base = tl.load(incl_ptr + pid) - tl.load(cnt_ptr + pid)
    pos = base + tl.associative_scan(k, 0, _add) - 1
    if MODE == opcodes.Compact.NONZERO:
        _store_coords(out_ptr, pos * CNDIM, i, c1, c2, c3, c4, c5, keep, CNDIM)
    else:
        ao = _offset(i, s1, s2, s3, s4, s5, at0, at1, at2, at3, at4, at5, NDIM)
        if MODE == opcodes.Compact.MASKED_SELECT:
            tl.store(out_ptr + pos, tl.load(a_ptr + ao, mask=keep), mask=keep)
        else:
            ok = keep & (pos < limit)
            tl.store(a_ptr + ao, tl.load(out_ptr + pos, mask=ok), mask=ok)


@triton.jit
def mean_kernel(out_ptr, acc_ptr, cnt_ptr, n,
                s1, s2, s3, s4, s5,
                ot0, ot1, ot2, ot3, ot4, ot5,
                NDIM: tl.constexpr, FLT: tl.constexpr, BLOCK: tl.constexpr):
    """out = acc / max(count, 1) (floored for integers) over contiguous acc/count; out strided."""
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    a = tl.load(acc_ptr + i, mask=mask, other=0)
    c = tl.load(cnt_ptr + i, mask=mask, other=1)
    c = tl.where(c < 1, 1, c).to(a.dtype)
    if FLT:
        r = a / c
    else:
        q = a // c
        r = tl.where((a % c != 0) & (a < 0), q - 1, q)
    tl.store(out_ptr + _offset(i, s1, s2, s3, s4, s5, ot0, ot1, ot2, ot3, ot4, ot5, NDIM),
             r.to(out_ptr.dtype.element_ty), mask=mask)
