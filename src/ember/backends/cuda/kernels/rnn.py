"""Triton kernels of the fused LSTM and GRU cells (`ops/rnn.py`): one forward and one backward kernel per cell, a
program computing BLOCK_B rows by BLOCK_H hidden units (all the gates of those units). Every input is read through
its (row, column) strides, a bias with row stride 0; the outputs are contiguous. Arithmetic in float32 (float64
with F64), results rounded once to the output dtype. sigmoid and tanh go through exp, as the elementwise
kernels' (Triton's interpreter cannot call libdevice)."""
import triton
import triton.language as tl


@triton.jit
def _load(ptr, r, c, sr, sc, m, F64: tl.constexpr):
    x = tl.load(ptr + r[:, None] * sr + c[None, :] * sc, mask=m, other=0.0)
    if F64:
        x = x.to(tl.float64)
    else:
        x = x.to(tl.float32)
    return x


@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _tanh(x):   # through exp, stable at both ends
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -t, t)


@triton.jit
def _store(ptr, r, c, width, v, m):
    tl.store(ptr + r[:, None] * width + c[None, :], v.to(ptr.dtype.element_ty), mask=m)


@triton.jit
def _preact(ig_ptr, hg_ptr, bi_ptr, bh_ptr, r, c, ig_r, ig_c, hg_r, hg_c, bi_s, bh_s, m,
            HAS_BIAS: tl.constexpr, F64: tl.constexpr):
    """input_gates + hidden_gates (+ both biases) at columns c."""
    x = _load(ig_ptr, r, c, ig_r, ig_c, m, F64) + _load(hg_ptr, r, c, hg_r, hg_c, m, F64)
    if HAS_BIAS:
        x += _load(bi_ptr, r, c, 0, bi_s, m, F64) + _load(bh_ptr, r, c, 0, bh_s, m, F64)
    return x


@triton.jit
def _tile(B, H, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    r = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    j = tl.program_id(1).to(tl.int64) * BLOCK_H + tl.arange(0, BLOCK_H)
    return r, j, (r < B)[:, None] & (j < H)[None, :]


@triton.jit
def lstm_fwd_kernel(ig_ptr, hg_ptr, cx_ptr, bi_ptr, bh_ptr, hy_ptr, cy_ptr, ws_ptr, B, H,
                    ig_r, ig_c, hg_r, hg_c, cx_r, cx_c, bi_s, bh_s,
                    HAS_BIAS: tl.constexpr, F64: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """hy, cy (B, H) and the workspace (B, 4H) of the activated gates i, f, g, o."""
    r, j, m = _tile(B, H, BLOCK_B, BLOCK_H)
    i = _sigmoid(_preact(ig_ptr, hg_ptr, bi_ptr, bh_ptr, r, j, ig_r, ig_c, hg_r, hg_c, bi_s, bh_s, m, HAS_BIAS, F64))
    f = _sigmoid(_preact(ig_ptr, hg_ptr, bi_ptr, bh_ptr, r, j + H, ig_r, ig_c, hg_r, hg_c, bi_s, bh_s, m, HAS_BIAS,
                         F64))
    g = _tanh(_preact(ig_ptr, hg_ptr, bi_ptr, bh_ptr, r, j + 2 * H, ig_r, ig_c, hg_r, hg_c, bi_s, bh_s, m, HAS_BIAS,
                      F64))
    o = _sigmoid(_preact(ig_ptr, hg_ptr, bi_ptr, bh_ptr, r, j + 3 * H, ig_r, ig_c, hg_r, hg_c, bi_s, bh_s, m,
                         HAS_BIAS, F64))
    cy = f * _load(cx_ptr, r, j, cx_r, cx_c, m, F64) + i * g
    _store(hy_ptr, r, j, H, o * _tanh(cy), m)
    _store(cy_ptr, r, j, H, cy, m)
    _store(ws_ptr, r, j, 4 * H, i, m)
    _store(ws_ptr, r, j + H, 4 * H, f, m)
    _store(ws_ptr, r, j + 2 * H, 4 * H, g, m)
    _store(ws_ptr, r, j + 3 * H, 4 * H, o, m)


@triton.jit
def lstm_bwd_kernel(ghy_ptr, gcy_ptr, cx_ptr, cy_ptr, ws_ptr, gg_ptr, gcx_ptr, B, H,
                    ghy_r, ghy_c, gcy_r, gcy_c, cx_r, cx_c, cy_r, cy_c, ws_r, ws_c,
                    F64: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """The gates' grad (B, 4H) (of the pre-activations i, f, g, o) and cx's grad (B, H)."""
    r, j, m = _tile(B, H, BLOCK_B, BLOCK_H)
    i = _load(ws_ptr, r, j, ws_r, ws_c, m, F64)
    f = _load(ws_ptr, r, j + H, ws_r, ws_c, m, F64)
    g = _load(ws_ptr, r, j + 2 * H, ws_r, ws_c, m, F64)
    o = _load(ws_ptr, r, j + 3 * H, ws_r, ws_c, m, F64)
    gh = _load(ghy_ptr, r, j, ghy_r, ghy_c, m, F64)
    tc = _tanh(_load(cy_ptr, r, j, cy_r, cy_c, m, F64))
    gc = gh * o * (1.0 - tc * tc) + _load(gcy_ptr, r, j, gcy_r, gcy_c, m, F64)
    _store(gg_ptr, r, j, 4 * H, gc * g * i * (1.0 - i), m)
    _store(gg_ptr, r, j + H, 4 * H, gc * _load(cx_ptr, r, j, cx_r, cx_c, m, F64) * f * (1.0 - f), m)
    _store(gg_ptr, r, j + 2 * H, 4 * H, gc * i * (1.0 - g * g), m)
    _store(gg_ptr, r, j + 3 * H, 4 * H, gh * tc * o * (1.0 - o), m)
    _store(gcx_ptr, r, j, H, gc * f, m)


@triton.jit
def gru_fwd_kernel(ig_ptr, hg_ptr, hx_ptr, bi_ptr, bh_ptr, hy_ptr, ws_ptr, B, H,
                   ig_r, ig_c, hg_r, hg_c, hx_r, hx_c, bi_s, bh_s,
                   HAS_BIAS: tl.constexpr, F64: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """hy (B, H) and the workspace (B, 5H) = [r, z, n, hx, h_n], h_n the hidden gates' n part (+ its bias)."""
    r, j, m = _tile(B, H, BLOCK_B, BLOCK_H)
    rg = _sigmoid(_preact(ig_ptr, hg_ptr, bi_ptr, bh_ptr, r, j, ig_r, ig_c, hg_r, hg_c, bi_s, bh_s, m, HAS_BIAS,
                          F64))
    zg = _sigmoid(_preact(ig_ptr, hg_ptr, bi_ptr, bh_ptr, r, j + H, ig_r, ig_c, hg_r, hg_c, bi_s, bh_s, m,
                          HAS_BIAS, F64))
    i_n = _load(ig_ptr, r, j + 2 * H, ig_r, ig_c, m, F64)
    h_n = _load(hg_ptr, r, j + 2 * H, hg_r, hg_c, m, F64)
    if HAS_BIAS:
        i_n += _load(bi_ptr, r, j + 2 * H, 0, bi_s, m, F64)
        h_n += _load(bh_ptr, r, j + 2 * H, 0, bh_s, m, F64)
    n = _tanh(i_n + rg * h_n)
    h = _load(hx_ptr, r, j, hx_r, hx_c, m, F64)
    _store(hy_ptr, r, j, H, n + zg * (h - n), m)
    _store(ws_ptr, r, j, 5 * H, rg, m)
    _store(ws_ptr, r, j + H, 5 * H, zg, m)
    _store(ws_ptr, r, j + 2 * H, 5 * H, n, m)
    _store(ws_ptr, r, j + 3 * H, 5 * H, h, m)
    _store(ws_ptr, r, j + 4 * H, 5 * H, h_n, m)


@triton.jit
def gru_bwd_kernel(ghy_ptr, ws_ptr, gi_ptr, gh_ptr, ghx_ptr, B, H, ghy_r, ghy_c, ws_r, ws_c,
                   F64: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """The grads of input_gates and hidden_gates (B, 3H) (r, z, n pre-activations; they differ in n) and hx's."""
    r, j, m = _tile(B, H, BLOCK_B, BLOCK_H)
    rg = _load(ws_ptr, r, j, ws_r, ws_c, m, F64)
    zg = _load(ws_ptr, r, j + H, ws_r, ws_c, m, F64)
    n = _load(ws_ptr, r, j + 2 * H, ws_r, ws_c, m, F64)
    h = _load(ws_ptr, r, j + 3 * H, ws_r, ws_c, m, F64)
    h_n = _load(ws_ptr, r, j + 4 * H, ws_r, ws_c, m, F64)
    go = _load(ghy_ptr, r, j, ghy_r, ghy_c, m, F64)
    gn = go * (1.0 - zg) * (1.0 - n * n)
    gr = gn * h_n * rg * (1.0 - rg)
    gz = go * (h - n) * zg * (1.0 - zg)
    _store(gi_ptr, r, j, 3 * H, gr, m)
    _store(gi_ptr, r, j + H, 3 * H, gz, m)
    _store(gi_ptr, r, j + 2 * H, 3 * H, gn, m)
    _store(gh_ptr, r, j, 3 * H, gr, m)
    _store(gh_ptr, r, j + H, 3 * H, gz, m)
    _store(gh_ptr, r, j + 2 * H, 3 * H, gn * rg, m)
    _store(ghx_ptr, r, j, H, go * zg, m)
