"""Triton kernel of the fused rotary embedding. The rows of x (every dim but the last) are collapsed to at most
MAXDIM dims; the last of them is the inner dim (S_IN rows, strides x_in/c_in/s_in for x, cos and sin), the others
the outer ones (sizes s1..s4, strides xt/ct/st, 0 where cos and sin broadcast). A program takes BLOCK_R inner rows
of one outer index by BLOCK_H pairs: its outer index and inner block come from one scalar division of its program
id, and the outer offsets from scalar arithmetic, so no element pays an index division (the kernel before
computed 64-bit divisions per row element for x, cos and sin and ran at 7% of copy bandwidth; that this was
the cause is not yet measured). Pair i is the elements (i * STEP, i * STEP + gap) of a row: (i, i + D/2), or
(2i, 2i + 1) when interleaved (STEP 2). Arithmetic in float32 (float64 with F64); the output is contiguous."""
import triton
import triton.language as tl

from .elementwise import _offset


@triton.jit
def rope_kernel(x_ptr, cos_ptr, sin_ptr, y_ptr, S_IN, NB, H, gap, x_col, c_col, s_col, x_in, c_in, s_in,
                s1, s2, s3, s4, xt0, xt1, xt2, xt3, xt4, ct0, ct1, ct2, ct3, ct4, st0, st1, st2, st3, st4,
                NOUT: tl.constexpr, F64: tl.constexpr, UNIT_COLS: tl.constexpr, STEP: tl.constexpr,
                BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    o = pid // NB                       # the outer index (a scalar)
    ri = (pid - o * NB) * BLOCK_R + tl.arange(0, BLOCK_R)
    i = tl.program_id(1).to(tl.int64) * BLOCK_H + tl.arange(0, BLOCK_H)
    m = (ri < S_IN)[:, None] & (i < H)[None, :]
    a = i * STEP        # a compile-time step: the pairs' first elements are known contiguous (STEP 1)
    if UNIT_COLS:       # unit column strides known at compile time: contiguous, vectorizable loads
        ci, si, xa_c, xb_c = i, i, a, a + gap
    else:
        ci, si, xa_c, xb_c = i * c_col, i * s_col, a * x_col, (a + gap) * x_col
    xo = (_offset(o, s1, s2, s3, s4, 1, xt0, xt1, xt2, xt3, xt4, 0, NOUT) + ri * x_in)[:, None]
    co = (_offset(o, s1, s2, s3, s4, 1, ct0, ct1, ct2, ct3, ct4, 0, NOUT) + ri * c_in)[:, None] + ci[None, :]
    so = (_offset(o, s1, s2, s3, s4, 1, st0, st1, st2, st3, st4, 0, NOUT) + ri * s_in)[:, None] + si[None, :]
    xa = tl.load(x_ptr + xo + xa_c[None, :], mask=m, other=0.0)
    xb = tl.load(x_ptr + xo + xb_c[None, :], mask=m, other=0.0)
    c = tl.load(cos_ptr + co, mask=m, other=0.0)
    s = tl.load(sin_ptr + so, mask=m, other=0.0)
    if F64:
        xa, xb, c, s = xa.to(tl.float64), xb.to(tl.float64), c.to(tl.float64), s.to(tl.float64)
    else:
        xa, xb, c, s = xa.to(tl.float32), xb.to(tl.float32), c.to(tl.float32), s.to(tl.float32)
    yo = y_ptr + (o * S_IN + ri)[:, None] * (2 * H) + a[None, :]
    tl.store(yo, (xa * c - xb * s).to(y_ptr.dtype.element_ty), mask=m)
    tl.store(yo + gap, (xb * c + xa * s).to(y_ptr.dtype.element_ty), mask=m)
