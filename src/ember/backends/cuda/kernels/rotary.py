"""Triton kernel of the fused rotary embedding: BLOCK_R rows (every dim of x but the last, read through
its strides: sizes s1..s5, strides xt/ct/st for x, cos and sin, 0 where cos and sin broadcast) by
BLOCK_H pairs a program. Pair i is the elements (i * STEP, i * STEP + gap) of a row: (i, i + D/2), or
(2i, 2i + 1) when interleaved (STEP 2). Arithmetic in float32 (float64 with F64); the output is contiguous."""
import triton
import triton.language as tl

from .elementwise import _offset


@triton.jit
def rope_kernel(x_ptr, cos_ptr, sin_ptr, y_ptr, R, H, gap, x_col, c_col, s_col,
                s1, s2, s3, s4, s5, xt0, xt1, xt2, xt3, xt4, xt5, ct0, ct1, ct2, ct3, ct4, ct5,
                st0, st1, st2, st3, st4, st5,
                NDIM: tl.constexpr, F64: tl.constexpr, UNIT_COLS: tl.constexpr, STEP: tl.constexpr,
                BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr):
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    i = tl.program_id(1).to(tl.int64) * BLOCK_H + tl.arange(0, BLOCK_H)
    m = (r < R)[:, None] & (i < H)[None, :]
    a = i * STEP        # a compile-time step: the pairs' first elements are known contiguous (STEP 1)
    xo = _offset(r, s1, s2, s3, s4, s5, xt0, xt1, xt2, xt3, xt4, xt5, NDIM)[:, None]
    if UNIT_COLS:       # unit column strides known at compile time: contiguous, vectorizable loads
        ci, si, xa_c, xb_c = i, i, a, a + gap
    else:
        ci, si, xa_c, xb_c = i * c_col, i * s_col, a * x_col, (a + gap) * x_col
    co = _offset(r, s1, s2, s3, s4, s5, ct0, ct1, ct2, ct3, ct4, ct5, NDIM)[:, None] + ci[None, :]
    so = _offset(r, s1, s2, s3, s4, s5, st0, st1, st2, st3, st4, st5, NDIM)[:, None] + si[None, :]
    xa = tl.load(x_ptr + xo + xa_c[None, :], mask=m, other=0.0)
    xb = tl.load(x_ptr + xo + xb_c[None, :], mask=m, other=0.0)
    c = tl.load(cos_ptr + co, mask=m, other=0.0)
    s = tl.load(sin_ptr + so, mask=m, other=0.0)
    if F64:
        xa, xb, c, s = xa.to(tl.float64), xb.to(tl.float64), c.to(tl.float64), s.to(tl.float64)
    else:
        xa, xb, c, s = xa.to(tl.float32), xb.to(tl.float32), c.to(tl.float32), s.to(tl.float32)
    yo = y_ptr + r[:, None] * (2 * H) + a[None, :]
    tl.store(yo, (xa * c - xb * s).to(y_ptr.dtype.element_ty), mask=m)
    tl.store(yo + gap, (xb * c + xa * s).to(y_ptr.dtype.element_ty), mask=m)
