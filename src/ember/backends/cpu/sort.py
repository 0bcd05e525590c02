"""CPU kernels for sorting and selection: sort, argsort, topk, kthvalue, unique.

Results are always fresh arrays (never views of an input). Sorting is stable and orders NaN as the
largest value, like PyTorch's CPU sort; float16 and bfloat16 keys are compared as float32 (exact),
then the values are gathered from the input. The ops' metas (ops/shape.py) have checked the
arguments before a kernel runs.
"""
from __future__ import annotations

import numpy as np

from ...core import dtype as D
from ...core.shape import normalize_dim
from ...ops.shape import kthvalue_result, kthvalue_shape, sort_result, topk_result
from ._common import F32, arr, impl, wrap

_I64 = np.dtype(np.int64)
_HALF = (D.float16.np, D.bfloat16.np)


# ---- sorting and selection ---------------------------------------------------------------------

def _key(a):
    """Sort keys: float16/bfloat16 as float32 (NumPy's half sort and ml_dtypes' bfloat16 compare NaN badly)."""
    if a.dtype in _HALF:
        return a.astype(F32)
    return a


def _argsort(a, axis, descending):
    """Stable argsort along axis; descending keeps equal elements in input order; NaN is the largest."""
    key = _key(a)
    if not descending:
        return np.argsort(key, axis=axis, kind="stable")
    n = key.shape[axis]
    idx = np.argsort(np.flip(key, axis), axis=axis, kind="stable")
    return (n - 1) - np.flip(idx, axis)


def _as_index(idx):
    return idx if idx.dtype == _I64 else idx.astype(_I64)


def _sort_impl(self, dim, descending):
    n = len(self._shape)
    d = normalize_dim(dim, n)
    a = arr(self)
    if n == 0:
        return wrap(a.copy(), self._dtype), wrap(np.zeros((), _I64), D.int64)
    idx = _argsort(a, d, descending)
    return wrap(np.take_along_axis(a, idx, d), self._dtype), wrap(_as_index(idx), D.int64)


@impl("sort")
def _sort(self, dim=-1, descending=False, stable=False):
    return sort_result(*_sort_impl(self, dim, descending))


@impl("argsort")
def _argsort_kernel(self, dim=-1, descending=False, stable=False):
    n = len(self._shape)
    d = normalize_dim(dim, n)
    if n == 0:
        return wrap(np.zeros((), _I64), D.int64)
    return wrap(_as_index(_argsort(arr(self), d, descending)), D.int64)


def _take(a, start, stop, axis):
    sl = [slice(None)] * a.ndim
    sl[axis] = slice(start, stop)
    return a[tuple(sl)]


@impl("topk")
def _topk(self, k, dim=-1, largest=True, sorted=True):
    n = len(self._shape)
    d = normalize_dim(dim, n)
    a = arr(self)
    if n == 0:
        return topk_result(wrap(a.copy(), self._dtype), wrap(np.zeros((), _I64), D.int64))
    size = self._shape[d]
    if 0 < k and size > 64 and k * 8 < size:
        # Select the k candidates in O(n), then sort only those.
        key = _key(a)
        if largest:
            cand = _take(np.argpartition(key, size - k, axis=d), size - k, size, d)
        else:
            cand = _take(np.argpartition(key, k - 1, axis=d), 0, k, d)
        order = _argsort(np.take_along_axis(key, cand, d), d, largest)
        idx = np.take_along_axis(cand, order, d)
    else:
        idx = _take(_argsort(a, d, largest), 0, k, d)
    return topk_result(wrap(np.take_along_axis(a, idx, d), self._dtype), wrap(_as_index(idx), D.int64))


@impl("kthvalue")
def _kthvalue(self, k, dim=-1, keepdim=False):
    n = len(self._shape)
    d = normalize_dim(dim, n)
    a = arr(self)
    if n == 0:
        return kthvalue_result(wrap(a.copy(), self._dtype), wrap(np.zeros((), _I64), D.int64))
    if a.size == 0:
        shape = kthvalue_shape(self._shape, d, keepdim)
        return kthvalue_result(wrap(np.empty(shape, a.dtype), self._dtype), wrap(np.empty(shape, _I64), D.int64))
    idx = _take(np.argpartition(_key(a), k - 1, axis=d), k - 1, k, d)
    vals = np.take_along_axis(a, idx, d)
    if not keepdim:
        vals, idx = np.squeeze(vals, d), np.squeeze(idx, d)
    return kthvalue_result(wrap(vals, self._dtype), wrap(_as_index(idx), D.int64))


@impl("unique")
def _unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
    a = arr(self)
    key = _key(a)
    if dim is None:
        res = np.unique(key.reshape(-1), return_inverse=return_inverse, return_counts=return_counts,
                        equal_nan=False)
    else:
        d = normalize_dim(dim, len(self._shape))
        res = np.unique(key, return_inverse=return_inverse, return_counts=return_counts, axis=d, equal_nan=False)
    if not (return_inverse or return_counts):
        return wrap(res.astype(a.dtype, copy=False), self._dtype)
    out = [wrap(res[0].astype(a.dtype, copy=False), self._dtype)]
    i = 1
    if return_inverse:
        inv = res[i].reshape(self._shape if dim is None else -1)
        out.append(wrap(_as_index(inv), D.int64))
        i += 1
    if return_counts:
        out.append(wrap(_as_index(res[i]), D.int64))
    return tuple(out)
