"""Triton kernels of the fused layer norm and RMS norm: rows of N contiguous elements, BLOCK_R rows a
program, statistics and arithmetic in float32. RMS norm is layer norm without the centring (CENTER=0):
no mean, no bias, and the backward loses the mean of the grad."""
import triton
import triton.language as tl


@triton.jit
def _add(a, b):     # tl.sum is a jit function of triton.language: unusable under the CI interpreter
    return a + b


@triton.jit
def norm_fwd_kernel(x_ptr, w_ptr, b_ptr, y_ptr, mean_ptr, rstd_ptr, R, N, eps,
                    CENTER: tl.constexpr, HAS_W: tl.constexpr, HAS_B: tl.constexpr, BLOCK_R: tl.constexpr,
                    BLOCK_N: tl.constexpr):
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    c = tl.arange(0, BLOCK_N)
    rm = r < R
    cm = c < N
    m2 = rm[:, None] & cm[None, :]
    off = r[:, None] * N + c[None, :]
    x = tl.load(x_ptr + off, mask=m2, other=0.0).to(tl.float32)
    if CENTER:
        mean = tl.reduce(x, 1, _add) / N
        x = tl.where(m2, x - mean[:, None], 0.0)
        tl.store(mean_ptr + r, mean, mask=rm)
    rstd = 1.0 / tl.sqrt(tl.reduce(x * x, 1, _add) / N + eps)
    y = x * rstd[:, None]
    if HAS_W:
        y = y * tl.load(w_ptr + c, mask=cm, other=0.0).to(tl.float32)[None, :]
    if HAS_B:
        y = y + tl.load(b_ptr + c, mask=cm, other=0.0).to(tl.float32)[None, :]
    tl.store(y_ptr + off, y.to(y_ptr.dtype.element_ty), mask=m2)
    tl.store(rstd_ptr + r, rstd, mask=rm)


@triton.jit
def norm_bwd_kernel(dy_ptr, x_ptr, w_ptr, mean_ptr, rstd_ptr, dx_ptr, dwp_ptr, dbp_ptr, R, N, rows_per_prog,
                    CENTER: tl.constexpr, HAS_W: tl.constexpr, NEED_DX: tl.constexpr, NEED_DWB: tl.constexpr,
                    BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr):
    """dx for rows [pid * rows_per_prog, ...) and this program's partial sums of dy * xhat (dw) and
    dy (db, with CENTER) over those rows, written to row `pid` of dwp / dbp."""
    pid = tl.program_id(0)
    c = tl.arange(0, BLOCK_N)
    cm = c < N
    if HAS_W:
        w = tl.load(w_ptr + c, mask=cm, other=0.0).to(tl.float32)
    dw = tl.full([BLOCK_N], 0.0, tl.float32)
    db = tl.full([BLOCK_N], 0.0, tl.float32)
    start = pid.to(tl.int64) * rows_per_prog
    end = tl.minimum(start + rows_per_prog, R)
    while start < end:      # a while loop: the CI interpreter needs Python ints for range()
        r = start + tl.arange(0, BLOCK_R)
        rm = r < end
        m2 = rm[:, None] & cm[None, :]
        off = r[:, None] * N + c[None, :]
        x = tl.load(x_ptr + off, mask=m2, other=0.0).to(tl.float32)
        dy = tl.load(dy_ptr + off, mask=m2, other=0.0).to(tl.float32)
        rstd = tl.load(rstd_ptr + r, mask=rm, other=0.0).to(tl.float32)    # float32 (16-bit statistics allowed)
        if CENTER:
            x = x - tl.load(mean_ptr + r, mask=rm, other=0.0).to(tl.float32)[:, None]
        xhat = tl.where(m2, x * rstd[:, None], 0.0)
        if NEED_DX:
            wdy = dy * w[None, :] if HAS_W else dy
            c1 = tl.reduce(xhat * wdy, 1, _add) / N
            if CENTER:
                dx = (wdy - (xhat * c1[:, None] + (tl.reduce(wdy, 1, _add) / N)[:, None])) * rstd[:, None]
            else:
                dx = (wdy - xhat * c1[:, None]) * rstd[:, None]
            tl.store(dx_ptr + off, dx.to(dx_ptr.dtype.element_ty), mask=m2)
        if NEED_DWB:
            dw += tl.reduce(dy * xhat, 0, _add)
            if CENTER:
                db += tl.reduce(dy, 0, _add)
        start += BLOCK_R
    if NEED_DWB:
        tl.store(dwp_ptr + pid * N + c, dw, mask=cm)
        if CENTER:
            tl.store(dbp_ptr + pid * N + c, db, mask=cm)


@triton.jit
def norm_wb_sum_kernel(dwp_ptr, dbp_ptr, gw_ptr, gb_ptr, P, N, NEED_DW: tl.constexpr, NEED_DB: tl.constexpr,
                       BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """Columns [pid * BLOCK_C, ...) of the weight and bias grads: the sums over the P rows of the backward's
    partials (float32, in a fixed order: deterministic), stored in gw's and gb's dtypes. One launch for both."""
    c = tl.program_id(0).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)
    cm = c < N
    aw = tl.full([BLOCK_P, BLOCK_C], 0.0, tl.float32)
    ab = tl.full([BLOCK_P, BLOCK_C], 0.0, tl.float32)
    start = 0
    while start < P:        # a while loop: the CI interpreter needs Python ints for range()
        p = start + tl.arange(0, BLOCK_P).to(tl.int64)
        m2 = (p < P)[:, None] & cm[None, :]
        off = p[:, None] * N + c[None, :]
        if NEED_DW:
            aw += tl.load(dwp_ptr + off, mask=m2, other=0.0)
        if NEED_DB:
            ab += tl.load(dbp_ptr + off, mask=m2, other=0.0)
        start += BLOCK_P
    if NEED_DW:
        tl.store(gw_ptr + c, tl.reduce(aw, 0, _add).to(gw_ptr.dtype.element_ty), mask=cm)
    if NEED_DB:
        tl.store(gb_ptr + c, tl.reduce(ab, 0, _add).to(gb_ptr.dtype.element_ty), mask=cm)
