"""CUDA kernels of the fused attention (`ops/attention.py`): one launch forward (flash-attention style,
online softmax over key tiles, causal tiles past the diagonal skipped), two backward (dq with the
per-row delta = rowsum(do * o), then dk/dv per key tile). Inputs are used in place when their last dim
is contiguous and their batch dims but the last collapse to one stride (else copied): heads packed in
one projection need no copy. Outputs are written through the same two batch strides, so
`_packed_self_attention` writes into, and reads its grads from, [B, L, H, E] layouts. The mask is used in
place when its batch dims collapse to two strides (else expanded and copied). float64 and head dims over MAX_HEAD_DIM
are not implemented here (`nn.functional.scaled_dot_product_attention` takes the composite for them).

`_fused_attention_dropout` is the same three kernels with dropout on the probabilities (`DROP`): the
forward draws from the CUDA generator's Philox stream (N * L * ceil(S / 4) counters, four draws each) and
records the (seed, base counter) it used in a 2-element int64 tensor, which the backward kernels read to
regenerate the mask, so nothing of size L * S is stored, and a CUDA graph's replays draw anew.
"""
from __future__ import annotations

from functools import lru_cache
from math import prod
from typing import NamedTuple

from ...core import dtype as D
from ...core.shape import stacked_spacing
from ...dispatch import OPS
from ...ops import attention as rules
from ...ops.attention import heads, packed_views
from .compiler import LazyKernels, next_power_of_2, pointer_arg, run
from .memory import new_tensor
from .opcodes import Mask
from .random import _philox, set_philox_state
from ...random import get_generator

MAX_HEAD_DIM = 128
K = LazyKernels("attention")


def fused_ok(query, key, value) -> bool:
    return query._dtype in (D.float32, D.float16, D.bfloat16) and max(key._shape[-1], value._shape[-1]) <= MAX_HEAD_DIM


def _strides2(t, nb: int):
    """(s1, s2, row stride) of a (*batch, rows, cols) tensor as the kernels address it (entry b at
    (b // NB2) * s1 + (b % NB2) * s2, NB2 the last batch dim), or None when its columns are not
    contiguous or its leading batch dims do not collapse to one stride."""
    shape, stride = t._shape, t._stride
    if 0 in shape:          # nothing to address
        return 0, 0, 0
    if shape[-1] != 1 and stride[-1] != 1:
        return None
    if not nb:
        return 0, 0, stride[-2]
    lead = [(n, st) for n, st in zip(shape[:nb - 1], stride[:nb - 1]) if n != 1]
    if any(lead[i][1] != lead[i + 1][0] * lead[i + 1][1] for i in range(len(lead) - 1)):
        return None
    return (lead[-1][1] if lead else 0), (stride[nb - 1] if shape[nb - 1] != 1 else 0), stride[-2]


def _rows(t, nb: int, name: str):
    """An input: (tensor, [its three stride arguments]), a contiguous copy where the kernels can't
    address it in place."""
    st = _strides2(t, nb)
    if st is None:
        t = t.contiguous()
        st = _strides2(t, nb)
    return t, [(f"{name}b1", st[0], "i64"), (f"{name}b2", st[1], "i64"), (f"{name}r", st[2], "i64")]


def _into(t, nb: int, name: str):
    """An output the caller allocated (any layout the kernels address: checked); None: one not written."""
    st = (0, 0, 0) if t is None else _strides2(t, nb)
    if st is None:
        raise RuntimeError(f"fused attention: output {name} of shape {list(t._shape)} and strides {list(t._stride)} "
                           f"is not addressable by the kernels")
    return [(f"{name}b1", st[0], "i64"), (f"{name}b2", st[1], "i64"), (f"{name}r", st[2], "i64")]


def _mask(attn_mask, batch, L, S):
    """(tensor, MASK kind, [(name, value, type)] of its strides smb1, smb2, smr, smc, MB2) for a mask
    broadcast to (*batch, L, S): batch index b = b1 * MB2 + b2."""
    if attn_mask is None:
        return None, 0, [(n, 0, "i64") for n in ("smb1", "smb2", "smr", "smc")] + [("MB2", 1, "i64")]
    full = tuple(batch) + (L, S)
    pad = len(full) - attn_mask.ndim
    strides = [0] * pad + [0 if n == 1 else s for n, s in zip(attn_mask._shape, attn_mask._stride)]
    dims = []   # collapsed batch dims (size, stride), size-1 dims dropped
    for n, s in zip(full[:-2], strides[:-2]):
        if n == 1:
            continue
        if dims and dims[-1][1] == n * s:
            dims[-1] = (dims[-1][0] * n, s)
        else:
            dims.append((n, s))
    m = attn_mask
    if len(dims) > 2:
        m = attn_mask.expand(*full).contiguous()
        dims, strides = [(prod(batch), L * S)], [0] * len(batch) + [S, 1]
    dims = [(1, 0)] * (2 - len(dims)) + dims
    kind = Mask.BOOL if m._dtype is D.bool else Mask.FLOAT
    return m, kind, [("smb1", dims[0][1], "i64"), ("smb2", dims[1][1], "i64"), ("smr", strides[-2], "i64"),
                     ("smc", strides[-1], "i64"), ("MB2", dims[1][0], "i64")]


class Config(NamedTuple):
    """Tiles of the three kernels: the forward's query tile `fwd_m` and key step `fwd_n`; backward dq takes
    `large` queries and `small` key steps, dk/dv `large` keys and `small` query steps; `warps` and `stages`
    (None: Triton's default) for all three; `d`, `dv`: the head dims padded for tl.dot."""
    fwd_m: int
    fwd_n: int
    small: int
    large: int
    warps: int
    d: int
    dv: int
    stages: int | None = None


@lru_cache(maxsize=256)
def _config(dtype, E: int, Ev: int, L: int, S: int, mask_and_dropout: bool = False) -> Config:
    """Tiles by dtype, head dims and sequence lengths, from `benchmarks/attention_sweep.py` on an H100 (2026-12-07):
    float32 (IEEE products on CUDA cores): 32 x 32 tiles. 16-bit: short sequences (queries and keys <= 96, ViT's 80)
    16 x 16 tiles on one warp (no padded rows to compute); up to 511, 32 x 32; longer, 128 x 64 forward tiles
    (measured at L = S; a long key sequence takes the larger tiles even for few queries).
    Head dims are padded for tl.dot to a power of two of at least 16, but to at least 64 for 16-bit inputs where
    a tile dim reaches 64: Triton then uses Hopper's wgmma, which reads shared-memory tiles of 128-byte rows, and
    with 32-wide 16-bit tiles (64-byte swizzle) Triton 3.6 gave wrong outputs and then CUDA_ERROR_ILLEGAL_ADDRESS
    on an H200 (Ev=32; cf. triton-lang/triton#10573, #11366). Tiles under 64 take mma.sync, and the sweep's
    32-wide ones matched torch there.
    16-bit with both an attn_mask and dropout takes 32 x 32 tiles throughout (never 16-wide steps): with 16-wide
    key tiles that combination gave wrong outputs on an H100 (Triton 3.6, 2026-12-07; the same kernels without the
    mask or without dropout, in float32, and through the interpreter were right: `.device/dropdiag.py`)."""
    pad = lambda n, least: max(least, next_power_of_2(n))     # noqa: E731
    if dtype is D.float32:
        dp, dvp = pad(E, 16), pad(Ev, 16)
        return Config(32, 32, 32, 32, (4 if max(dp, dvp) <= 64 else 8), dp, dvp)
    if mask_and_dropout and max(L, S) < 512:
        return Config(32, 32, 32, 32, 4, pad(E, 16), pad(Ev, 16))
    if max(L, S) <= 96:
        return Config(16, 16, 16, 16, 1, pad(E, 16), pad(Ev, 16))
    if max(L, S) < 512:
        return Config(32, 32, 16, 32, 4, pad(E, 16), pad(Ev, 16))
    dp, dvp = pad(E, 64), pad(Ev, 64)
    return Config(128, 64, 32, 64, (4 if max(dp, dvp) <= 64 else 8), dp, dvp)


def _check_dims(query, key, value, E, Ev):
    if not fused_ok(query, key, value):
        raise NotImplementedError(f"_fused_attention on CUDA is for float16/bfloat16/float32 inputs with head dims "
                                  f"of at most {MAX_HEAD_DIM} (got {query._dtype}, {E} and {Ev}); "
                                  f"nn.functional.scaled_dot_product_attention takes the composite there")


def _output(query, batch, L, Ev):
    """The attention output (*B, L, Ev); for (B, H, L, Ev) laid out as (B, L, H, Ev), as torch's flash and
    cuDNN kernels lay theirs out, so that the usual `out.transpose(1, 2).reshape(B, L, H * Ev)` is a view,
    not a copy (the kernels write through the output's strides)."""
    if len(batch) != 2:
        return new_tensor(batch + (L, Ev), query._dtype, query.device)
    B, H = batch
    t = new_tensor((B, L, H, Ev), query._dtype, query.device)
    return t._as_view((B, H, L, Ev), (L * H * Ev, Ev, H * Ev, 1), 0)


def fused_attention(query, key, value, attn_mask, is_causal, scale):
    batch, L, S, E, Ev = rules.attention_dims(query, value)
    out = _output(query, batch, L, Ev)
    lse = new_tensor(batch + (L,), rules.lse_dtype(query._dtype), query.device)
    _forward_into(out, lse, query, key, value, attn_mask, is_causal, scale, batch, L, S, E, Ev)
    return out, lse


def fused_attention_dropout(query, key, value, attn_mask, is_causal, scale, dropout_p):
    batch, L, S, E, Ev = rules.attention_dims(query, value)
    out = _output(query, batch, L, Ev)
    lse = new_tensor(batch + (L,), rules.lse_dtype(query._dtype), query.device)
    rng = new_tensor((2,), D.int64, query.device)
    _forward_into(out, lse, query, key, value, attn_mask, is_causal, scale, batch, L, S, E, Ev, dropout_p, rng)
    return out, lse, rng


def _no_drop(dummy):
    """The dropout arguments of a launch without dropout (DROP = 0: unread)."""
    return [pointer_arg("rng_ptr", dummy), pointer_arg("state_ptr", dummy), ("seed", 0, "i64"), ("offset", 0, "i64"),
            ("graph", 0, "i32"), ("keep", 1.0, "fp32")]


def _forward_into(out, lse, query, key, value, attn_mask, is_causal, scale, batch, L, S, E, Ev, dropout_p=0.0,
                  rng=None):
    """Writes the attention of (query, key, value) into `out` (any layout `_into` takes) and its
    logsumexp rows into `lse` (contiguous); with dropout_p > 0, the Philox (seed, base) used into `rng`."""
    _check_dims(query, key, value, E, Ev)
    nb = len(batch)
    N = prod(batch)
    drop = dropout_p > 0.0
    if not (N and L):
        if drop:        # nothing drawn: the generator's state, as the CPU kernel gives
            set_philox_state(rng, *get_generator(None, query.device)._philox_advance(0))
        return
    q, sq = _rows(query, nb, "sq")
    k, sk = _rows(key, nb, "sk")
    v, sv = _rows(value, nb, "sv")
    m, kind, mstrides = _mask(attn_mask, batch, L, S)
    c = _config(query._dtype, E, Ev, L, S, m is not None and drop)
    T = (L + c.fwd_m - 1) // c.fwd_m
    if drop:
        dargs = [pointer_arg("rng_ptr", rng), *_philox(None, query.device, N * L * ((S + 3) // 4), rng),
                 ("keep", 1.0 - float(dropout_p), "fp32")]
    else:
        dargs = _no_drop(lse)
    args = [pointer_arg("q_ptr", q), pointer_arg("k_ptr", k), pointer_arg("v_ptr", v),
            pointer_arg("m_ptr", m if m is not None else q), pointer_arg("o_ptr", out), pointer_arg("lse_ptr", lse),
            *dargs, *sq, *sk, *sv, *_into(out, nb, "so"),
            ("NB2", batch[-1] if nb else 1, "i64"), *mstrides, ("L", L, "i64"), ("S", S, "i64"), ("E", E, "i64"),
            ("EV", Ev, "i64"), ("T", T, "i64"), ("scale", float(scale), "fp32")]
    run(K.attn_fwd_kernel, (T * N,), args,
        {"MASK": kind, "CAUSAL": int(bool(is_causal)), "IEEE": int(query._dtype is D.float32), "DROP": int(drop),
         "INTERP": 0, "BLOCK_M": c.fwd_m, "BLOCK_N": c.fwd_n, "D": c.d, "DV": c.dv}, query.device.index or 0, c.warps,
        c.stages)


def fused_attention_backward(grad_out, query, key, value, attn_mask, out, lse, is_causal, scale, need_query,
                             need_key, need_value, dropout_p=0.0, rng=None):
    batch, L, S, E, Ev = rules.attention_dims(query, value)
    dev = query.device
    packed = need_query and need_key and need_value and _packed_grads(query, key, value)
    if packed:      # the unbind of a permuted fused qkv: the grads in the same layout of one buffer
        dq, dk, dv = packed
    else:
        dq = new_tensor(query._shape, query._dtype, dev) if need_query else None
        dk = new_tensor(key._shape, key._dtype, dev) if need_key else None
        dv = new_tensor(value._shape, value._dtype, dev) if need_value else None
    _backward_into(dq, dk, dv, grad_out, query, key, value, attn_mask, out, lse, is_causal, scale, batch, L, S, E,
                   Ev, dropout_p, rng)
    return dq, dk, dv


def _packed_grads(q, k, v):
    """(dq, dk, dv) as views of one new buffer with the strides of q, k and v, when those are equally spaced views
    of one storage (q, k, v = qkv.view(B, T, 3, H, D).permute(2, 0, 3, 1, 4), say) that together cover a dense
    block: unbind's backward then finds its three grads stacked already (`unbind_backward`), and the permutes
    and view back to the projection's (B, T, 3 * H * D) grad need no copy. None otherwise."""
    sp = stacked_spacing((q, k, v))
    if not sp:
        return None
    st, shape = q._stride, q._shape
    buf = new_tensor((3 * prod(shape),), q._dtype, q.device)
    return tuple(buf._as_view(shape, st, i * sp) for i in range(3))


def fused_attention_dropout_backward(grad_out, query, key, value, attn_mask, out, lse, rng, is_causal, scale,
                                     dropout_p, need_query, need_key, need_value):
    return fused_attention_backward(grad_out, query, key, value, attn_mask, out, lse, is_causal, scale, need_query,
                                    need_key, need_value, dropout_p, rng)


def _backward_into(dq, dk, dv, grad_out, query, key, value, attn_mask, out, lse, is_causal, scale, batch, L, S, E,
                   Ev, dropout_p=0.0, rng=None):
    """Writes the grads of the inputs into dq, dk, dv (those not needed None; any layout `_into` takes);
    with dropout_p > 0, the forward's mask regenerated from `rng`."""
    _check_dims(query, key, value, E, Ev)
    nb = len(batch)
    N = prod(batch)
    dev = query.device
    if not N or (dq is None and dk is None and dv is None):
        return
    if not S:       # nothing attended: dq is zero, dk and dv are empty
        if dq is not None:
            OPS["zero_"].fn(dq)
        return
    q, sq = _rows(query, nb, "sq")
    k, sk = _rows(key, nb, "sk")
    v, sv = _rows(value, nb, "sv")
    do, sd = _rows(grad_out, nb, "sd")
    o, so = _rows(out, nb, "so")
    m, kind, mstrides = _mask(attn_mask, batch, L, S)
    drop = dropout_p > 0.0
    c = _config(query._dtype, E, Ev, L, S, m is not None and drop)
    small, large = c.small, c.large
    delta = new_tensor((N, L), D.float32, dev)
    const = {"MASK": kind, "CAUSAL": int(bool(is_causal)), "IEEE": int(query._dtype is D.float32),
             "DROP": int(drop), "INTERP": 0, "D": c.d, "DV": c.dv}
    dargs = [pointer_arg("rng_ptr", rng if drop else delta), ("keep", 1.0 - float(dropout_p), "fp32")]
    common = [("L", L, "i64"), ("S", S, "i64"), ("E", E, "i64"), ("EV", Ev, "i64")]
    nb2 = ("NB2", batch[-1] if nb else 1, "i64")
    mp = pointer_arg("m_ptr", m if m is not None else q)
    idx = dev.index or 0
    if L and (dq is not None or dk is not None):
        T = (L + large - 1) // large
        args = [pointer_arg("q_ptr", q), pointer_arg("k_ptr", k), pointer_arg("v_ptr", v), mp, pointer_arg("o_ptr", o),
                pointer_arg("do_ptr", do), pointer_arg("lse_ptr", lse), pointer_arg("delta_ptr", delta),
                pointer_arg("dq_ptr", dq if dq is not None else q), *dargs,
                *sq, *sk, *sv, *so, *sd, *_into(dq, nb, "sg"), nb2, *mstrides, *common,
                ("T", T, "i64"), ("scale", float(scale), "fp32")]
        run(K.attn_bwd_dq_kernel, (T * N,), args,
            {**const, "NEED_DQ": int(dq is not None), "BLOCK_M": large, "BLOCK_N": small}, idx, c.warps, c.stages)
    if dk is not None or dv is not None:
        T = (S + large - 1) // large
        args = [pointer_arg("q_ptr", q), pointer_arg("k_ptr", k), pointer_arg("v_ptr", v), mp,
                pointer_arg("do_ptr", do), pointer_arg("lse_ptr", lse), pointer_arg("delta_ptr", delta),
                pointer_arg("dk_ptr", dk if dk is not None else k), pointer_arg("dv_ptr", dv if dv is not None else v),
                *dargs, *sq, *sk, *sv, *sd,
                *_into(dk, nb, "skg"), *_into(dv, nb, "svg"),
                nb2, *mstrides, *common, ("T", T, "i64"), ("scale", float(scale), "fp32")]
        run(K.attn_bwd_dkdv_kernel, (T * N,), args,
            {**const, "NEED_DK": int(dk is not None), "NEED_DV": int(dv is not None), "BLOCK_M": small,
             "BLOCK_N": large}, idx, c.warps, c.stages)


def packed_self_attention(qkv, num_heads, attn_mask, is_causal, scale):
    B, L, E, hd = rules.packed_dims(qkv, num_heads)
    q, k, v = packed_views(qkv, num_heads)
    out = new_tensor((B, L, E), qkv._dtype, qkv.device)
    lse = new_tensor((B, num_heads, L), rules.lse_dtype(qkv._dtype), qkv.device)
    _forward_into(heads(out, num_heads, E), lse, q, k, v, attn_mask, is_causal, scale, (B, num_heads), L, L, hd, hd)
    return out, lse


def packed_self_attention_backward(grad_out, qkv, num_heads, attn_mask, out, lse, is_causal, scale):
    B, L, E, hd = rules.packed_dims(qkv, num_heads)
    dqkv = new_tensor((B, L, 3 * E), qkv._dtype, qkv.device)
    _backward_into(*packed_views(dqkv, num_heads), heads(grad_out, num_heads, E), *packed_views(qkv, num_heads),
                   attn_mask, heads(out, num_heads, E), lse, is_causal, scale, (B, num_heads), L, L, hd, hd)
    return dqkv


OPS["_packed_self_attention"].register("cuda")(packed_self_attention)
OPS["_packed_self_attention_backward"].register("cuda")(packed_self_attention_backward)
OPS["_fused_attention"].register("cuda")(fused_attention)
OPS["_fused_attention_backward"].register("cuda")(fused_attention_backward)
OPS["_fused_attention_dropout"].register("cuda")(fused_attention_dropout)
OPS["_fused_attention_dropout_backward"].register("cuda")(fused_attention_dropout_backward)
