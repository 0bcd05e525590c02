"""Triton kernels for data movement and device-side factories (64-bit indexing throughout).

`move_kernel` writes a contiguous output (in place: the input itself) element by element, reading
each one from a source offset computed from its flat index `i`. `MODE` (`opcodes.Move`) says how:

  GATHER     per output dim k (sizes s0..s5), source offset `p0 + sum c_k * t_k`; strides may be
             negative (flip: the host negates a flipped dim's stride and moves p0 to its end)
  ROLL       like GATHER with c_k replaced by (c_k + a_k) wrapped at s_k
  REPEAT     like GATHER with c_k replaced by c_k % a_k (a_k: the source's size along k)
  ROLL_FLAT  the flat index shifted by p0 (wrapping at n), read through the source's own
             (collapsed) geometry: roll without dims
  TRI        triu (UPPER) / tril over the last two dims (p0 columns, p1 rows, diagonal p2); the
             source is read through its collapsed geometry; INPLACE writes the zeros into it
  ONE_HOT    out[i] = (x[i // p0] == i % p0) with p0 classes; a value outside [0, p0) is reported
             into the error word `err_ptr` as op `code` (`kernels/indexing.report`)

ROLL_FLAT, TRI and ONE_HOT use `_offset` (sizes s1..s5, strides t0..t5) like the elementwise kernels.

`fill_kernel` writes a contiguous output from the flat index alone (`MODE`, `opcodes.Fill`): FILL
(p0), ARANGE (p0 + i * p1), LINSPACE (PyTorch's two-sided formula: from p0 for i < k, back from p1
otherwise, step p2, p3 = steps - 1), EYE (row == column, k columns). `F64` computes in float64
(else int64); `OUT` (`opcodes.FillOut`) is the stored kind: float64, another float (through
float32), an integer, or bool.
"""
import triton
import triton.language as tl

from .. import opcodes
from .elementwise import _offset
from .indexing import report


@triton.jit
def _dim(c, s, t, a, MODE: tl.constexpr):
    if MODE == opcodes.Move.ROLL:
        c = c + a
        c = tl.where(c >= s, c - s, c)
    elif MODE == opcodes.Move.REPEAT:
        c = c % a
    return c * t


@triton.jit
def _source(i, s0, s1, s2, s3, s4, s5, t0, t1, t2, t3, t4, t5, a0, a1, a2, a3, a4, a5,
            NDIM: tl.constexpr, MODE: tl.constexpr):
    r = i
    off = i * 0
    if NDIM >= 6:
        off += _dim(r % s5, s5, t5, a5, MODE)
        r = r // s5
    if NDIM >= 5:
        off += _dim(r % s4, s4, t4, a4, MODE)
        r = r // s4
    if NDIM >= 4:
        off += _dim(r % s3, s3, t3, a3, MODE)
        r = r // s3
    if NDIM >= 3:
        off += _dim(r % s2, s2, t2, a2, MODE)
        r = r // s2
    if NDIM >= 2:
        off += _dim(r % s1, s1, t1, a1, MODE)
        r = r // s1
    off += _dim(r, s0, t0, a0, MODE)
    return off


@triton.jit
def move_kernel(out_ptr, x_ptr, n, p0, p1, p2,
                s0, s1, s2, s3, s4, s5,
                t0, t1, t2, t3, t4, t5,
                a0, a1, a2, a3, a4, a5, err_ptr, code,
                MODE: tl.constexpr, NDIM: tl.constexpr, UPPER: tl.constexpr, INPLACE: tl.constexpr,
                BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    if MODE == opcodes.Move.TRI:
        xo = _offset(i, s1, s2, s3, s4, s5, t0, t1, t2, t3, t4, t5, NDIM)
        d = i % p0 - (i // p0) % p1
        if UPPER:
            keep = d >= p2
        else:
            keep = d <= p2
        if INPLACE:
            tl.store(x_ptr + xo, tl.full([BLOCK], 0, x_ptr.dtype.element_ty), mask=mask & (keep == 0))
        else:
            v = tl.load(x_ptr + xo, mask=mask & keep, other=0)
            tl.store(out_ptr + i, v, mask=mask)
    else:
        if MODE <= opcodes.Move.REPEAT:
            v = tl.load(x_ptr + (p0 + _source(i, s0, s1, s2, s3, s4, s5, t0, t1, t2, t3, t4, t5,
                                              a0, a1, a2, a3, a4, a5, NDIM, MODE)), mask=mask)
        elif MODE == opcodes.Move.ROLL_FLAT:
            j = i + p0
            j = tl.where(j >= n, j - n, j)
            v = tl.load(x_ptr + _offset(j, s1, s2, s3, s4, s5, t0, t1, t2, t3, t4, t5, NDIM), mask=mask)
        else:
            x = tl.load(x_ptr + _offset(i // p0, s1, s2, s3, s4, s5, t0, t1, t2, t3, t4, t5, NDIM), mask=mask,
                        other=-1)
            report(err_ptr, mask & ((x < 0) | (x >= p0)), x, p0, code)
            v = x == i % p0
        tl.store(out_ptr + i, v.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def fill_kernel(out_ptr, n, p0, p1, p2, p3, k,
                MODE: tl.constexpr, F64: tl.constexpr, OUT: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    if MODE == opcodes.Fill.FILL:
        if F64:
            v = tl.full([BLOCK], p0, tl.float64)
        else:
            v = tl.full([BLOCK], p0, tl.int64)
    elif MODE == opcodes.Fill.ARANGE:
        if F64:
            v = tl.full([BLOCK], p0, tl.float64) + i.to(tl.float64) * p1
        else:
            v = p0 + i * p1
    elif MODE == opcodes.Fill.LINSPACE:
        fi = i.to(tl.float64)
        first = tl.full([BLOCK], p0, tl.float64) + p2 * fi
        v = tl.where(i < k, first, tl.full([BLOCK], p1, tl.float64) - p2 * (p3 - fi))
        if OUT >= opcodes.FillOut.INT:  # integer outputs truncate first (then bool is "nonzero")
            v = tl.where(v < 0, tl.ceil(v), tl.floor(v))
    else:
        v = (i // k) == (i % k)
    if OUT == opcodes.FillOut.F64:
        r = v.to(tl.float64)
    elif OUT == opcodes.FillOut.FLOAT:
        r = v.to(tl.float32).to(out_ptr.dtype.element_ty)
    elif OUT == opcodes.FillOut.INT:
        r = v.to(out_ptr.dtype.element_ty)
    else:
        r = v != 0
    tl.store(out_ptr + i, r, mask=mask)
