"""CPU kernels of the factory ops. The ops' metas (ops/creation.py) have checked the arguments."""
from __future__ import annotations

import numpy as np

from ..._tensor import Tensor
from ...core.shape import numel
from ...core.device import CPU
from ...core.storage import Storage
from ...dispatch import OPS
from ...ops.creation import arange_args, factory_dtype, full_dtype, scalar_value
from ._common import impl

_from_numpy = Tensor._from_numpy


def _filled(name, make):
    def kernel(size, dtype=None, device=None):
        dt = factory_dtype(dtype)
        return _from_numpy(make(size, dt.np), dt)
    kernel.__name__ = name
    OPS[name].register("cpu")(kernel)


_filled("empty", np.empty)
_filled("zeros", np.zeros)
_filled("ones", np.ones)


@impl("full")
def _full(size, fill_value, dtype=None, device=None):
    dt = full_dtype(fill_value, dtype)
    return _from_numpy(np.full(size, fill_value, dt.np), dt)


@impl("empty_strided")
def _empty_strided(size, stride, dtype=None, device=None):
    dt = factory_dtype(dtype)
    span = 1 + sum((n - 1) * s for n, s in zip(size, stride)) if numel(size) else 0
    st = Storage(np.empty(span * dt.itemsize, np.uint8), CPU, span * dt.itemsize)
    return Tensor._make(st, tuple(size), tuple(stride), 0, dt)


@impl("arange")
def _arange(start, end=None, step=1, dtype=None, device=None):
    start, step, n, dtype = arange_args(start, end, step, dtype)
    if dtype.is_floating_point:
        a = (start + np.arange(n, dtype=np.float64) * step).astype(dtype.np)
    else:
        a = (start + np.arange(n, dtype=np.int64) * step).astype(dtype.np)
    return _from_numpy(a, dtype)


@impl("linspace")
def _linspace(start, end, steps, dtype=None, device=None):
    dt = factory_dtype(dtype)
    start, end = scalar_value(start), scalar_value(end)
    if steps == 1:
        a = np.array([start], np.float64)
    else:
        # PyTorch fills the first half from start and the second half from end (symmetric rounding)
        step = (end - start) / (steps - 1)
        i = np.arange(steps, dtype=np.float64)
        half = steps // 2
        a = np.where(i < half, start + step * i, end - step * (steps - 1 - i))
    if not dt.is_floating_point:
        a = np.trunc(a)
    return _from_numpy(a.astype(dt.np), dt)


@impl("eye")
def _eye(n, m=None, dtype=None, device=None):
    dt = factory_dtype(dtype)
    return _from_numpy(np.eye(n, n if m is None else m, dtype=dt.np), dt)


@impl("scalar_tensor")
def _scalar_tensor(s, dtype=None, device=None):
    dt = factory_dtype(dtype)
    return _from_numpy(np.array(scalar_value(s), dt.np), dt)
