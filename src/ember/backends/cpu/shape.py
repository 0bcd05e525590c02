"""CPU kernels for shape and data-movement ops (cat, stack, repeat, flip, roll, tril/triu,
sort/argsort/topk/kthvalue, unique, diag, diag_embed).

Results are always fresh arrays (never views of an input), since these ops return new tensors.
Sorting is stable and orders NaN as the largest value, like PyTorch's CPU sort; float16 and
bfloat16 keys are compared as float32 (exact), then the values are gathered from the input.
"""
from __future__ import annotations

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.shape import normalize_dim, normalize_dims
from ...ops.shape import kthvalue_result, sort_result, topk_result
from ._common import F32, arr, impl, wrap

_I64 = np.dtype(np.int64)
_HALF = (D.float16.np, D.bfloat16.np)
_promote = D.promote_types


# ---- cat / stack -------------------------------------------------------------------------------

def _tensor_list(name, tensors):
    if isinstance(tensors, Tensor):
        raise TypeError(f"{name}(): argument 'tensors' must be a sequence of Tensors, not Tensor")
    return tensors


@impl("cat")
def _cat(tensors, dim=0):
    tensors = _tensor_list("cat", tensors)
    dt = None
    kept = []
    for i, t in enumerate(tensors):
        s = t._shape
        if not s:
            raise RuntimeError(f"cat: zero-dimensional tensor (at position {i}) cannot be concatenated; "
                               f"use stack() or reshape it to 1-D first")
        d = t._dtype
        dt = d if dt is None else (dt if d is dt else _promote(dt, d))
        if len(s) == 1 and s[0] == 0:  # legacy: 1-D empty tensors are skipped whatever the other shapes
            continue
        kept.append(i)
    if not kept:
        return wrap(np.empty((0,), dt.np), dt)
    ref = tensors[kept[0]]
    rs = ref._shape
    n = len(rs)
    d = normalize_dim(dim, n)
    for i in kept[1:]:
        s = tensors[i]._shape
        if s is rs:
            continue
        if len(s) != n:
            raise RuntimeError(f"cat: Tensors must have same number of dimensions: got {n} and {len(s)} "
                               f"(tensor number {kept[0]} has shape {list(rs)}, tensor number {i} has shape {list(s)})")
        for j in range(n):
            if j != d and s[j] != rs[j]:
                raise RuntimeError(f"cat: Sizes of tensors must match except in dimension {d}. Expected size {rs[j]} "
                                   f"but got size {s[j]} for tensor number {i} in the list "
                                   f"(shapes {list(rs)} and {list(s)})")
    arrays = [arr(tensors[i]) for i in kept]
    if all(tensors[i]._dtype is dt for i in kept):
        r = np.concatenate(arrays, axis=d)
    else:
        r = np.concatenate(arrays, axis=d, dtype=dt.np, casting="unsafe")
    return wrap(r, dt)


@impl("stack")
def _stack(tensors, dim=0):
    tensors = _tensor_list("stack", tensors)
    t0 = tensors[0]
    s0 = t0._shape
    dt = t0._dtype
    same = True
    for i, t in enumerate(tensors):
        if t._shape != s0:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(s0)} at entry 0 and "
                               f"{list(t._shape)} at entry {i}")
        if t._dtype is not dt:
            dt = _promote(dt, t._dtype)
            same = False
    d = normalize_dim(dim, len(s0) + 1)
    arrays = [arr(t) for t in tensors]
    r = np.stack(arrays, axis=d) if same else np.stack(arrays, axis=d, dtype=dt.np, casting="unsafe")
    return wrap(r, dt)


# ---- repeat / flip / roll ----------------------------------------------------------------------

@impl("repeat")
def _repeat(self, repeats):
    n = len(self._shape)
    if not repeats:
        raise TypeError("repeat() missing 1 required positional arguments: \"repeats\"")
    if len(repeats) < n:
        raise RuntimeError(f"repeat: Number of dimensions of repeat dims can not be smaller than number of "
                           f"dimensions of tensor (got {len(repeats)} repeat dims {list(repeats)} for a tensor of "
                           f"shape {list(self._shape)})")
    if any(r < 0 for r in repeats):
        raise RuntimeError(f"repeat: Trying to create tensor with negative dimension: repeats must be "
                           f"non-negative, got {list(repeats)}")
    return wrap(np.tile(arr(self), repeats), self._dtype)


@impl("flip")
def _flip(self, dims):
    n = len(self._shape)
    axes = normalize_dims(dims, n)
    a = arr(self)
    if n == 0 or not axes:
        return wrap(a.copy(), self._dtype)
    return wrap(np.flip(a, axes).copy(), self._dtype)


@impl("roll")
def _roll(self, shifts, dims=None):
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = () if dims is None else ((dims,) if isinstance(dims, int) else tuple(dims))
    if not shifts:
        raise RuntimeError("roll: `shifts` required")
    a = arr(self)
    if not dims:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:0 "
                               f"(without dims, roll takes one shift over the flattened tensor)")
        return wrap(np.roll(a, shifts[0]), self._dtype)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    n = len(self._shape)
    if n == 0:
        raise IndexError(f"roll: Dimension specified as {dims[0]} but tensor has no dimensions")
    axes = tuple(normalize_dim(d, n) for d in dims)
    return wrap(np.roll(a, shifts, axes), self._dtype)


# ---- tril / triu -------------------------------------------------------------------------------

def _tri_check(name, self):
    if len(self._shape) < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions, got shape {list(self._shape)}")


@impl("tril")
def _tril(self, diagonal=0):
    _tri_check("tril", self)
    return wrap(np.tril(arr(self), diagonal), self._dtype)


@impl("triu")
def _triu(self, diagonal=0):
    _tri_check("triu", self)
    return wrap(np.triu(arr(self), diagonal), self._dtype)


@impl("tril_")
def _tril_(self, diagonal=0):
    _tri_check("tril_", self)
    m, n = self._shape[-2:]
    a = arr(self)
    np.copyto(a, np.zeros((), a.dtype), where=~np.tri(m, n, diagonal, dtype=bool))
    return self


@impl("triu_")
def _triu_(self, diagonal=0):
    _tri_check("triu_", self)
    m, n = self._shape[-2:]
    a = arr(self)
    np.copyto(a, np.zeros((), a.dtype), where=np.tri(m, n, diagonal - 1, dtype=bool))
    return self


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
    if self._dtype is D.bool:
        raise RuntimeError("topk does not support bool dtypes on CPU; convert the tensor to an integer dtype first")
    size = self._shape[d] if n else 1
    if k < 0 or k > size:
        raise RuntimeError(f"topk: selected index k out of range (k={k}, but dimension {d} has size {size})")
    a = arr(self)
    if n == 0:
        return topk_result(wrap(a.copy(), self._dtype), wrap(np.zeros((), _I64), D.int64))
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
    if self._dtype is D.bool:
        raise NotImplementedError("kthvalue: not implemented for 'Bool' tensors; convert to an integer dtype first")
    size = self._shape[d] if n else 1
    a = arr(self)
    if n == 0:
        if k != 1:
            raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d} (k={k}, size 1)")
        return kthvalue_result(wrap(a.copy(), self._dtype), wrap(np.zeros((), _I64), D.int64))
    if size == 0:
        raise IndexError(f"kthvalue(): Expected reduction dim {d} to have non-zero size (shape {list(self._shape)})")
    if not 1 <= k <= size:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d} (k={k}, size {size})")
    if a.size == 0:
        shape = self._shape[:d] + ((1,) if keepdim else ()) + self._shape[d + 1:]
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
        if not self._shape:
            raise IndexError(f"unique: dim {dim} given for a 0-dim tensor")
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


# ---- diag / diag_embed -------------------------------------------------------------------------

@impl("diag")
def _diag(self, diagonal=0):
    n = len(self._shape)
    a = arr(self)
    if n == 1:
        m = a.shape[0] + abs(diagonal)
        r = np.zeros((m, m), a.dtype)
        i = np.arange(a.shape[0])
        r[i + max(-diagonal, 0), i + max(diagonal, 0)] = a
        return wrap(r, self._dtype)
    if n == 2:
        return wrap(np.diagonal(a, diagonal).copy(), self._dtype)
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {n}D (shape {list(self._shape)})")


@impl("diag_embed")
def _diag_embed(self, offset=0, dim1=-2, dim2=-1):
    n = len(self._shape) + 1
    d1, d2 = normalize_dim(dim1, n), normalize_dim(dim2, n)
    if d1 == d2:
        raise RuntimeError(f"diag_embed: diagonal dimensions cannot be identical {dim1}, {dim2}")
    a = arr(self)
    last = a.shape[-1]
    m = last + abs(offset)
    r = np.zeros(a.shape[:-1] + (m, m), a.dtype)
    i = np.arange(last)
    r[..., i + max(-offset, 0), i + max(offset, 0)] = a
    if (d1, d2) != (n - 2, n - 1):
        r = np.moveaxis(r, (-2, -1), (d1, d2))
    return wrap(r, self._dtype)
