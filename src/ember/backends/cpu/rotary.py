"""NumPy kernel of the fused rotary embedding (`ops/rotary.py`): float16/bfloat16 computed in float32."""
from __future__ import annotations

import numpy as np

from ._common import arr, compute_np, impl, wrap


@impl("_rotary_embedding")
def rotary_embedding(input, cos, sin, interleaved):
    cnp = compute_np(input._dtype)
    x = arr(input).astype(cnp, copy=False)
    c, s = arr(cos).astype(cnp, copy=False), arr(sin).astype(cnp, copy=False)
    h = x.shape[-1] // 2
    a, b = (np.s_[..., 0::2], np.s_[..., 1::2]) if interleaved else (np.s_[..., :h], np.s_[..., h:])
    y = np.empty(x.shape, cnp)
    y[a] = x[a] * c - x[b] * s
    y[b] = x[b] * c + x[a] * s
    return wrap(y, input._dtype)
