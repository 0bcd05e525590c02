"""Triton kernels for gather-style reads and scatter-add writes along one dim (64-bit indexing).

Positions run over the index's shape (up to 6 collapsed dims, sizes s1..s5). The element read
(gather) or written (scatter-add) is the position's own coordinates with the one along `dim`
replaced by the index value; `xt_dim_zeroed` are the strides of the indexed tensor with the
indexed dim's stride set to 0, and `xdim` that stride.
"""
import triton
import triton.language as tl

from .elementwise import _cast, _offset


@triton.jit
def gather_kernel(out_ptr, x_ptr, idx_ptr, n, xdim,
                  s1, s2, s3, s4, s5,
                  ot0, ot1, ot2, ot3, ot4, ot5,
                  xt0, xt1, xt2, xt3, xt4, xt5,
                  it0, it1, it2, it3, it4, it5,
                  NDIM: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    idx = tl.load(idx_ptr + _offset(i, s1, s2, s3, s4, s5, it0, it1, it2, it3, it4, it5, NDIM), mask=mask, other=0)
    xo = _offset(i, s1, s2, s3, s4, s5, xt0, xt1, xt2, xt3, xt4, xt5, NDIM) + idx.to(tl.int64) * xdim
    v = tl.load(x_ptr + xo, mask=mask)
    tl.store(out_ptr + _offset(i, s1, s2, s3, s4, s5, ot0, ot1, ot2, ot3, ot4, ot5, NDIM), v, mask=mask)


@triton.jit
def scatter_add_kernel(out_ptr, src_ptr, idx_ptr, n, odim, alpha,
                       s1, s2, s3, s4, s5,
                       ot0, ot1, ot2, ot3, ot4, ot5,
                       st0, st1, st2, st3, st4, st5,
                       it0, it1, it2, it3, it4, it5,
                       NDIM: tl.constexpr, CK: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    idx = tl.load(idx_ptr + _offset(i, s1, s2, s3, s4, s5, it0, it1, it2, it3, it4, it5, NDIM), mask=mask, other=0)
    oo = _offset(i, s1, s2, s3, s4, s5, ot0, ot1, ot2, ot3, ot4, ot5, NDIM) + idx.to(tl.int64) * odim
    v = _cast(tl.load(src_ptr + _offset(i, s1, s2, s3, s4, s5, st0, st1, st2, st3, st4, st5, NDIM), mask=mask), CK)
    tl.atomic_add(out_ptr + oo, (v * alpha).to(out_ptr.dtype.element_ty), mask=mask)
