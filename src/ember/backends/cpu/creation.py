"""CPU kernels of the factory ops."""
from __future__ import annotations

import math

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.shape import numel
from ...core.device import CPU
from ...core.storage import Storage
from ._common import impl

_from_numpy = Tensor._from_numpy


def _dt(dtype):
    if dtype is None:
        return D.get_default_dtype()
    if not isinstance(dtype, D.dtype):
        raise TypeError(f"dtype must be an ember.dtype such as ember.float32, got {dtype!r}")
    return dtype


def _check_size(size):
    for s in size:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")


@impl("empty")
def _empty(size, dtype=None, device=None):
    _check_size(size)
    dt = _dt(dtype)
    return _from_numpy(np.empty(size, dt.np), dt)


@impl("zeros")
def _zeros(size, dtype=None, device=None):
    _check_size(size)
    dt = _dt(dtype)
    return _from_numpy(np.zeros(size, dt.np), dt)


@impl("ones")
def _ones(size, dtype=None, device=None):
    _check_size(size)
    dt = _dt(dtype)
    return _from_numpy(np.ones(size, dt.np), dt)


@impl("full")
def _full(size, fill_value, dtype=None, device=None):
    _check_size(size)
    dt = _dt(dtype)
    return _from_numpy(np.full(size, fill_value, dt.np), dt)


@impl("empty_strided")
def _empty_strided(size, stride, dtype=None, device=None):
    _check_size(size)
    if len(size) != len(stride):
        raise RuntimeError(f"empty_strided: size {list(size)} and stride {list(stride)} differ in length")
    dt = _dt(dtype)
    span = 1 + sum((n - 1) * s for n, s in zip(size, stride)) if numel(size) else 0
    st = Storage(np.empty(span * dt.itemsize, np.uint8), CPU, span * dt.itemsize)
    return Tensor._make(st, tuple(size), tuple(stride), 0, dt)


def _num(x):
    return x.item() if isinstance(x, Tensor) else x


@impl("arange")
def _arange(start, end=None, step=1, dtype=None, device=None):
    start, end, step = _num(start), _num(end), _num(step)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and larger bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    if dtype is None:
        dtype = D.get_default_dtype() if any(isinstance(v, float) for v in (start, end, step)) else D.int64
    n = max(0, math.ceil((end - start) / step))
    if dtype.category == 2:
        a = (start + np.arange(n, dtype=np.float64) * step).astype(dtype.np)
    else:
        a = (start + np.arange(n, dtype=np.int64) * int(step)).astype(dtype.np)
    return _from_numpy(a, dtype)


@impl("linspace")
def _linspace(start, end, steps, dtype=None, device=None):
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    dt = _dt(dtype)
    start, end = _num(start), _num(end)
    if steps == 1:
        a = np.array([start], np.float64)
    else:
        # PyTorch fills the first half from start and the second half from end (symmetric rounding)
        step = (end - start) / (steps - 1)
        i = np.arange(steps, dtype=np.float64)
        half = steps // 2
        a = np.where(i < half, start + step * i, end - step * (steps - 1 - i))
    if dt.category != 2:
        a = np.trunc(a)
    return _from_numpy(a.astype(dt.np), dt)


@impl("eye")
def _eye(n, m=None, dtype=None, device=None):
    if n < 0 or (m is not None and m < 0):
        raise RuntimeError(f"eye: n and m must be non-negative, got n={n}, m={m}")
    dt = _dt(dtype)
    return _from_numpy(np.eye(n, n if m is None else m, dtype=dt.np), dt)


@impl("scalar_tensor")
def _scalar_tensor(s, dtype=None, device=None):
    dt = _dt(dtype)
    return _from_numpy(np.array(_num(s), dt.np), dt)
