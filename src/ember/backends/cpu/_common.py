"""Helpers every CPU kernel uses: NumPy views of tensors, operands, wrapping results."""
from __future__ import annotations

import warnings

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.shape import any_strided, elementwise_strides
from ...dispatch import OPS

# NumPy warns on overflow, division by zero and invalid casts; PyTorch returns inf/nan silently.
# A module filter costs nothing per call, unlike np.errstate.
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"ember\.backends\.cpu")

LOWP = (D.float16, D.bfloat16)
F32 = np.dtype(np.float32)

_from_numpy = Tensor._from_numpy


def arr(t: Tensor) -> np.ndarray:
    a = t._np
    return a if a is not None else t._array


def compute_np(dt) -> np.dtype:
    """The NumPy dtype a kernel computes in: float32 for float16/bfloat16 (PyTorch's opmath)."""
    return F32 if dt is D.float16 or dt is D.bfloat16 else dt.np


def operand(v, cnp: np.dtype):
    """A tensor as an array of dtype `cnp`, or a Python scalar as a NumPy scalar of it (wrapping like C)."""
    if isinstance(v, Tensor):
        a = v._np
        if a is None:
            a = v._array
        return a if a.dtype == cnp else a.astype(cnp)
    try:
        return cnp.type(v)
    except (OverflowError, ValueError):
        return np.array(v).astype(cnp)[()]


def wrap(r, dt) -> Tensor:
    """A kernel's NumPy result as a tensor of ember dtype `dt` (cast if it was computed wider)."""
    if type(r) is not np.ndarray:
        r = np.asarray(r)
    if r.dtype != dt.np:
        r = r.astype(dt.np)
    return _from_numpy(r, dt)


def wrap_ew(r, dt, operands) -> Tensor:
    """An elementwise kernel's result `r` over `operands` (see `core.shape.elementwise_strides`) as a tensor of
    dtype `dt` laid out as torch lays out that op's output: contiguous when every tensor operand is, else in the
    operands' dim order (NumPy's ufuncs mostly computed it in that order already, so no copy is made then)."""
    if not any_strided(operands):
        return wrap(r, dt)
    if type(r) is not np.ndarray:
        r = np.asarray(r)
    st = elementwise_strides(r.shape, operands)
    if st is None:
        return wrap(r, dt)
    return wrap_strided(r, dt, st)


def wrap_strided(r: np.ndarray, dt, st: tuple) -> Tensor:
    """`r` as a tensor of dtype `dt` with the dense strides `st` (elements), copied only if r is laid out otherwise."""
    if r.dtype != dt.np:
        r = r.astype(dt.np)                 # (keeps r's layout)
    order = sorted(range(r.ndim), key=st.__getitem__, reverse=True)     # the dims in memory order
    buf = r.transpose(order)
    if not buf.flags.c_contiguous:
        buf = np.ascontiguousarray(buf)
    inv = [0] * len(order)
    for i, d in enumerate(order):
        inv[d] = i
    t = _from_numpy(buf, dt)
    t._shape = r.shape
    t._stride = st
    t._np = buf.transpose(inv)
    return t


def impl(name: str):
    """Registers the decorated function as op `name`'s CPU kernel."""
    return OPS[name].register("cpu")


def impl_out(name: str):
    """Registers the decorated `kernel(out, *args)` as op `name`'s CPU out= kernel (see `Op.register_out`)."""
    return OPS[name].register_out("cpu")


def plan(name: str):
    """Registers the decorated `plan(meta_result, *args) -> kernel` as op `name`'s CPU planner (see
    `Op.planner`): the kernel for one input signature, with what the signature fixes worked out once."""
    return OPS[name].planner("cpu")


def unsupported(op: str, dt, supported: str):
    raise NotImplementedError(f"{op}: not implemented for dtype {dt}; supported: {supported}")
