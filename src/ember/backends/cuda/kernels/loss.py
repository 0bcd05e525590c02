"""Triton kernels of the fused NLL loss: per-row picked log-probabilities (times the class weight),
reduced in one program (a fixed order: deterministic), and the one-hot-shaped backward. A class
index outside [0, C) that is not ignore_index is never dereferenced (its row counts as ignored)
and is reported into the error word `err_ptr` as op `code` (`kernels/indexing.report`)."""
import triton
import triton.language as tl

from .. import opcodes
from .indexing import report


@triton.jit
def _add(a, b):     # tl.sum is a jit function of triton.language: unusable under the CI interpreter
    return a + b


@triton.jit
def _target(t_ptr, w_ptr, err_ptr, code, r, rm, C, ignore_index, HAS_W: tl.constexpr):
    """(t, ok, w_t) per row: the class index, whether it counts (not ignored, in range) and its weight (1
    without HAS_W), 0 where it does not count. Out-of-range classes are reported by the programs of
    program_id(1) == 0 (all of them on a 1-D grid)."""
    t = tl.load(t_ptr + r, mask=rm, other=0).to(tl.int64)
    valid = rm & (t != ignore_index)
    outside = (t < 0) | (t >= C)
    if tl.program_id(1) == 0:
        report(err_ptr, valid & outside, t, C, code)
    ok = valid & (outside == 0)
    if HAS_W:
        w = tl.load(w_ptr + t, mask=ok, other=0.0).to(tl.float32)
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
