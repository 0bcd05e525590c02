"""CPU kernels for the scans (cumsum, cumprod, cummax, cummin, logcumsumexp), on NumPy ufunc accumulate.

The argument rules (dims, output dtypes) live in ember.ops.reduction and are shared with the metas;
these kernels only compute. float16/bfloat16 accumulate in float32 and cast back (PyTorch's
opmath); integer and bool cumsum/cumprod accumulate in int64.
"""
from __future__ import annotations

import numpy as np

from ...core import dtype as D
from ...ops.reduction import one_dim, return_types, softmax_dtype, sum_dtype
from ._common import arr, compute_np, impl, wrap
from .reduction import _as

_INT64 = D.int64
_NP_I64 = np.dtype(np.int64)


# ---- scans -----------------------------------------------------------------------------------------

def _accumulate(ufunc, a, d, acc):
    try:
        return ufunc.accumulate(a, axis=d, dtype=acc)
    except TypeError:
        return ufunc.accumulate(a.astype(acc), axis=d, dtype=acc)


def _scan_kernel(name, ufunc):
    def kernel(self, dim, dtype=None):
        out = sum_dtype(self, dtype)
        acc = compute_np(out)
        a = arr(self)
        d = one_dim(name, dim, a.ndim)
        if a.ndim == 0:
            return wrap(a.astype(acc), out)  # astype copies
        return wrap(_accumulate(ufunc, a, d, acc), out)
    return kernel


impl("cumsum")(_scan_kernel("cumsum", np.add))
impl("cumprod")(_scan_kernel("cumprod", np.multiply))


def _cummax_kernel(name, ufunc, result):
    def kernel(self, dim):
        a = arr(self)
        d = one_dim(name, dim, a.ndim)
        dt = self._dtype
        if a.ndim == 0:
            return result(wrap(a.copy(), dt), wrap(np.zeros((), _NP_I64), _INT64))
        v = ufunc.accumulate(a, axis=d)
        # PyTorch updates the running index where x >= running max (x <= for min) or x is NaN, so
        # ties take the latest index and a NaN sticks with the index of the last NaN seen.
        upd = a == v
        if dt.is_floating_point:
            upd |= np.isnan(a)
        pos = np.arange(a.shape[d], dtype=_NP_I64).reshape((-1,) + (1,) * (a.ndim - 1 - d))
        idx = np.where(upd, pos, 0)
        np.maximum.accumulate(idx, axis=d, out=idx)
        return result(wrap(v, dt), wrap(idx, _INT64))
    return kernel


impl("cummax")(_cummax_kernel("cummax", np.maximum, return_types.cummax))
impl("cummin")(_cummax_kernel("cummin", np.minimum, return_types.cummin))


@impl("logcumsumexp")
def _logcumsumexp(self, dim):
    out = softmax_dtype("logcumsumexp", self, None)
    acc = compute_np(out)
    a = arr(self)
    d = one_dim("logcumsumexp", dim, a.ndim)
    if a.ndim == 0:
        return wrap(a.astype(acc), out)
    return wrap(np.logaddexp.accumulate(_as(a, acc), axis=d), out)
