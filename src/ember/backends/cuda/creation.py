"""CUDA device-side factories on a Triton kernel (`fill_kernel` of `kernels/movement.py`).

empty, zeros and empty_strided allocate (zeros through `fill_contiguous`: cuMemset or fill_kernel,
which also fills zero_/fill_ for `tensor.py`). arange, linspace, eye, full/ones (where cuMemset
cannot write the value's bytes) and scalar_tensor compute their values on the device from the flat
index. Nothing here copies between host and device or waits for the device.
"""
from __future__ import annotations

import math

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...dispatch import OPS
from ...ops.creation import arange_args, factory_dtype, full_dtype, scalar_value
from .compiler import pointer_arg, run
from .elementwise import BLOCK
from .memory import empty_cuda, new_tensor
from .opcodes import Fill, FillOut

__all__ = ["fill_contiguous"]



def _kernels():
    from .kernels import movement
    return movement


def _numel(shape):
    return math.prod(shape)


# ---- factories -----------------------------------------------------------------------------------

def _fill(mode, out, ps, f64, k=0):
    """Launches fill_kernel over out (contiguous); ps: p0..p3 (float64 when f64, else int64)."""
    n = _numel(out._shape)
    if n == 0:
        return out
    dt = out._dtype
    kind = (FillOut.F64 if dt is D.float64 else FillOut.FLOAT if dt.is_floating_point else FillOut.BOOL
            if dt is D.bool else FillOut.INT)
    ty = "fp64" if f64 else "i64"
    args = [pointer_arg("out_ptr", out), ("n", n, "i64")]
    args += [(f"p{j}", float(v) if f64 else int(v), ty) for j, v in enumerate(ps)] + [("k", k, "i64")]
    run(_kernels().fill_kernel, ((n + BLOCK - 1) // BLOCK,), args,
        {"MODE": mode, "F64": int(f64), "OUT": kind, "BLOCK": BLOCK}, out.device.index or 0)
    return out


def fill_contiguous(t, value):
    """t[...] = value for a contiguous tensor: cuMemset where the value's bytes repeat with a period
    of at most 4 bytes, else fill_kernel (8-byte values such as int64 or float64 ones)."""
    v = np.array(scalar_value(value)).astype(t._dtype.np)
    pattern = v.tobytes()
    if t._storage.device.type == "cuda" and (len(pattern) <= 4 or len(set(pattern)) == 1):
        from .tensor import _memset
        _memset(t, pattern)
        return t
    f64 = t._dtype.is_floating_point
    return _fill(Fill.FILL, t, (float(v) if f64 else int(v), 0, 0, 0), f64)


def full(size, fill_value, dtype=None, device=None):
    return fill_contiguous(new_tensor(tuple(size), full_dtype(fill_value, dtype), device), fill_value)


def ones(size, dtype=None, device=None):
    return fill_contiguous(new_tensor(size, factory_dtype(dtype), device), 1)


def scalar_tensor(s, dtype=None, device=None):
    return fill_contiguous(new_tensor((), factory_dtype(dtype), device), s)


def arange(start, end=None, step=1, dtype=None, device=None):
    start, step, n, dtype = arange_args(start, end, step, dtype)
    out = new_tensor((n,), dtype, device)
    if dtype.is_floating_point:   # start + i * step in float64, as the CPU kernel
        return _fill(Fill.ARANGE, out, (start, step, 0, 0), True)
    return _fill(Fill.ARANGE, out, (start, step, 0, 0), False)   # integers: int64 start and step


def linspace(start, end, steps, dtype=None, device=None):
    start, end = scalar_value(start), scalar_value(end)
    out = new_tensor((steps,), factory_dtype(dtype), device)
    if steps == 1:
        return _fill(Fill.LINSPACE, out, (start, start, 0, 0), True)
    step = (end - start) / (steps - 1) if steps else 0
    return _fill(Fill.LINSPACE, out, (start, end, step, steps - 1), True, k=steps // 2)


def eye(n, m=None, dtype=None, device=None):
    m = n if m is None else m
    return _fill(Fill.EYE, new_tensor((n, m), factory_dtype(dtype), device), (0, 0, 0, 0), False, k=m)


def _dt(dtype):
    return D.get_default_dtype() if dtype is None else dtype


def empty(size, dtype=None, device=None):
    return empty_cuda(size, _dt(dtype), device.index or 0)


def zeros(size, dtype=None, device=None):
    return fill_contiguous(empty_cuda(size, _dt(dtype), device.index or 0), 0)


def empty_strided(size, stride, dtype=None, device=None):
    dt = _dt(dtype)
    span = 1 + sum((n - 1) * s for n, s in zip(size, stride)) if _numel(size) else 0
    base = empty_cuda((span,), dt, device.index or 0)
    return Tensor._make(base._storage, tuple(size), tuple(stride), 0, dt)


def _register():
    reg = lambda name: OPS[name].register("cuda")  # noqa: E731
    reg("empty")(empty)
    reg("zeros")(zeros)
    reg("empty_strided")(empty_strided)
    reg("full")(full)
    reg("ones")(ones)
    reg("scalar_tensor")(scalar_tensor)
    reg("arange")(arange)
    reg("linspace")(linspace)
    reg("eye")(eye)


_register()
