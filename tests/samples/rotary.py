"""Samples of the rotary embedding (src/ember/ops/rotary.py): _rotary_embedding against a reference built
from torch ops (torch has no rotary op), computed in float32 for float16/bfloat16 as ember's kernels do.
Strided samples (a permuted view of a fused qkv projection, a transposed cos, tables broadcast over the
batch) are the ones the interpreter suite runs besides the first three.
"""
import torch
from helpers import make_pair

import ember

from ._core import ErrorSample, OpInfo, Sample, register

TOL = {"float16": (2e-3, 2e-3), "bfloat16": (1e-2, 1e-2)}


def T(shape, dtype="float32", layout="contiguous", seed=0):
    return make_pair(shape, dtype, low=-2, high=2, seed=seed, layout=layout)[0]


def rotary_reference(x, cos, sin, interleaved=False):
    """y_a = x_a cos - x_b sin, y_b = x_b cos + x_a sin over pairs (i, i + D/2), or (2i, 2i + 1) interleaved."""
    dt = x.dtype
    if dt in (torch.float16, torch.bfloat16):
        x, cos, sin = x.float(), cos.float(), sin.float()
    h = x.shape[-1] // 2
    xa, xb = (x[..., 0::2], x[..., 1::2]) if interleaved else (x[..., :h], x[..., h:])
    ya, yb = xa * cos - xb * sin, xb * cos + xa * sin
    y = torch.stack((ya, yb), -1).flatten(-2) if interleaved else torch.cat((ya, yb), -1)
    return y.to(dt)


def _tables(T_, h, dtype="float32", base=10000.0):
    """cos and sin (T, h) of the angles t * base^(-i/h): what nn.RotaryEmbedding tabulates."""
    t = ember.arange(T_, dtype=ember.float64).unsqueeze(1) * base ** -(ember.arange(h, dtype=ember.float64) / h)
    return t.cos().to(getattr(ember, dtype)), t.sin().to(getattr(ember, dtype))


def _qkv_view(B, T_, H, E, dtype="float32"):
    """q of a fused (B, T, 3 * H * E) projection viewed as (B, H, T, E): T is not the last-but-one dim in memory."""
    return T((B, T_, 3 * H * E), dtype, seed=3).view(B, T_, 3, H, E).permute(2, 0, 3, 1, 4)[0]


def rotary_samples():
    cos, sin = _tables(5, 4)
    c16, s16 = _tables(5, 4, "bfloat16")
    ct, st = _tables(6, 3)
    c64, s64 = _tables(5, 4, "float64")
    return [
        Sample((T((2, 3, 5, 8)), cos, sin), desc="float32 (B, H, T, D), half rotation"),
        Sample((T((2, 3, 5, 8)), cos, sin, True), desc="float32, interleaved"),
        Sample((T((2, 5, 8), "bfloat16"), cos, sin), desc="bfloat16 input, float32 tables"),
        Sample((_qkv_view(2, 5, 3, 8), cos, sin), desc="q of a fused qkv projection (B, H, T, E) view"),
        Sample((_qkv_view(2, 5, 3, 8, "float16"), cos.half(), sin.half(), True),
               desc="float16 qkv view, float16 tables, interleaved"),
        Sample((T((2, 3, 5, 8), "bfloat16"), c16, s16), desc="bfloat16 input and tables"),
        Sample((T((4, 6, 6)), ct.t().contiguous().t(), st.t().contiguous().t()),
               desc="transposed (column-major) tables"),
        Sample((T((2, 3, 5, 8)), T((2, 1, 5, 4), seed=1), T((2, 1, 5, 4), seed=2)),
               desc="per-sequence tables (B, 1, T, D/2)"),
        Sample((T((2, 0, 8)), cos[:0], sin[:0]), desc="no positions"),
        Sample((T((2, 5, 8), "float64"), c64, s64), desc="float64"),
        Sample((T((2, 5, 8), "float64", layout="transposed"), c64, s64, True),
               desc="float64, interleaved, the input's last two dims transposed in memory"),
        Sample((T((3, 5, 8), "float64", layout="sliced"), c64, s64), desc="float64, every other element of a row"),
    ]


def rotary_errors():
    # torch_raises=False: the reference is the composite above, which checks nothing
    cos, sin = _tables(5, 4)
    return [
        ErrorSample((T((2, 5, 7)), cos, sin), {}, RuntimeError, r"rotary_embedding: expected an input \(\.\.\., T, D\) "
                    r"with an even last dim D .* got shape \[2, 5, 7\]", desc="odd D", torch_raises=False),
        ErrorSample((T((2, 5, 8)), T((5, 8)), T((5, 8))), {}, RuntimeError, r"expected cos and sin of shape \(T, D/2\) "
                    r"= \(5, 4\) .* \[2, 5, 4\]\) for an input of shape \[2, 5, 8\], got \[5, 8\]",
                    desc="tables (T, D)", torch_raises=False),
        ErrorSample((T((2, 5, 8)), T((3, 4)), T((3, 4))), {}, RuntimeError, r"got \[3, 4\]",
                    desc="tables of 3 positions", torch_raises=False),
        ErrorSample((T((2, 5, 8)), cos, sin[:4]), {}, RuntimeError, r"expected cos and sin of the same shape, got "
                    r"cos \[5, 4\] and sin \[4, 4\]", desc="cos and sin differ", torch_raises=False),
        ErrorSample((T((2, 5, 8), "int64"), cos, sin), {}, RuntimeError, r"expected a floating point input, got "
                    r"ember.int64", desc="int64 input", torch_raises=False),
        ErrorSample((T((2, 5, 8)), cos.double(), sin.double()), {}, RuntimeError, r"expected cos and sin of the "
                    r"input's dtype ember.float32 \(or float32 for a float16/bfloat16 input\), got ember.float64",
                    desc="float64 tables, float32 input", torch_raises=False),
    ]


register(OpInfo("_rotary_embedding", rotary_samples, rotary_errors, ref=rotary_reference, tol=TOL))
