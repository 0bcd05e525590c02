"""CUDA kernel of the fused rotary embedding (`ops/rotary.py`): one launch, x, cos and sin read through
their strides (cos and sin broadcast over x's leading dims with stride 0), the output contiguous."""
from __future__ import annotations

from math import prod

from ...core import dtype as D
from ...dispatch import OPS
from .compiler import LazyKernels, next_power_of_2, pointer_arg, run
from .elementwise import MAXDIM, _collapse, _strides_for
from .memory import new_tensor

K = LazyKernels("rotary")


def rotary_embedding(input, cos, sin, interleaved):
    shape = input._shape
    h = shape[-1] // 2
    y = new_tensor(shape, input._dtype, input.device)
    rows = prod(shape[:-1])
    if not rows or not h:
        return y
    half = shape[:-1] + (h,)
    cs, ss = _strides_for(cos, half), _strides_for(sin, half)
    sizes, (xt, ct, st) = _collapse(shape[:-1], [list(input._stride[:-1]), cs[:-1], ss[:-1]])
    if len(sizes) > MAXDIM:
        raise NotImplementedError(f"rotary_embedding on CUDA over {len(sizes)} non-mergeable leading dims (at most "
                                  f"{MAXDIM}); make the input contiguous")
    # the last collapsed dim is walked per element, the others (at most MAXDIM - 1) per program
    outer, s_in = sizes[:-1], sizes[-1]
    pad = lambda v, n=MAXDIM - 1: list(v) + [0] * (n - len(v))  # noqa: E731
    block_h = min(128, next_power_of_2(h))
    block_r = max(1, min(2048 // block_h, next_power_of_2(s_in)))
    nb = (s_in + block_r - 1) // block_r
    args = [pointer_arg("x_ptr", input), pointer_arg("cos_ptr", cos), pointer_arg("sin_ptr", sin),
            pointer_arg("y_ptr", y), ("S_IN", s_in, "i64"), ("NB", nb, "i64"), ("H", h, "i64"),
            ("gap", 1 if interleaved else h, "i64"), ("x_col", input._stride[-1], "i64"), ("c_col", cs[-1], "i64"),
            ("s_col", ss[-1], "i64"), ("x_in", xt[-1], "i64"), ("c_in", ct[-1], "i64"), ("s_in", st[-1], "i64")]
    args += [(f"s{k}", n, "i64") for k, n in enumerate(pad(outer[1:], MAXDIM - 2), 1)]
    for name, t in (("xt", xt), ("ct", ct), ("st", st)):
        args += [(f"{name}{k}", v, "i64") for k, v in enumerate(pad(t[:-1]))]
    run(K.rope_kernel, (prod(outer) * nb, (h + block_h - 1) // block_h), args,
        {"NOUT": len(outer), "F64": int(input._dtype is D.float64),
         "UNIT_COLS": int(input._stride[-1] == 1 and cs[-1] == 1 and ss[-1] == 1), "STEP": 2 if interleaved else 1,
         "BLOCK_R": block_r, "BLOCK_H": block_h},
        input.device.index or 0)
    return y


OPS["_rotary_embedding"].register("cuda")(rotary_embedding)
