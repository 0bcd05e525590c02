"""CPU kernels for shape and data-movement ops (cat, stack, repeat, flip, roll, tril/triu,
diag, diag_embed); sorting and selection (sort, topk, unique, ...) are in `sort.py`.

Results are always fresh arrays (never views of an input), since these ops return new tensors.
The ops' metas (ops/shape.py) have checked the arguments before a kernel runs.
"""
from __future__ import annotations

import numpy as np

from ...core.layout import layout_strides
from ...core.shape import normalize_dim, normalize_dims
from ...ops.shape import cat_dtype, is_legacy_empty, roll_args
from ._common import arr, impl, wrap, wrap_strided


# ---- cat / stack -------------------------------------------------------------------------------

@impl("cat")
def _cat(tensors, dim=0):
    dt = cat_dtype(tensors)
    kept = [t for t in tensors if not is_legacy_empty(t)]
    if not kept:
        return wrap(np.empty((0,), dt.np), dt)
    d = normalize_dim(dim, len(kept[0]._shape))
    arrays = [arr(t) for t in kept]
    if all(t._dtype is dt for t in kept):
        return wrap(np.concatenate(arrays, axis=d), dt)
    return wrap(np.concatenate(arrays, axis=d, dtype=dt.np, casting="unsafe"), dt)


@impl("stack")
def _stack(tensors, dim=0):
    dt = cat_dtype(tensors)
    d = normalize_dim(dim, len(tensors[0]._shape) + 1)
    arrays = [arr(t) for t in tensors]
    if all(t._dtype is dt for t in tensors):
        return wrap(np.stack(arrays, axis=d), dt)
    return wrap(np.stack(arrays, axis=d, dtype=dt.np, casting="unsafe"), dt)


# ---- repeat / flip / roll ----------------------------------------------------------------------

@impl("repeat")
def _repeat(self, repeats):
    return wrap(np.tile(arr(self), repeats), self._dtype)


@impl("flip")
def _flip(self, dims):
    axes = normalize_dims(dims, len(self._shape))
    a = arr(self)
    st = layout_strides(self, None, "flip")     # in self's layout, as torch's flip
    if not self._shape or not axes:
        r = a
    else:
        r = np.flip(a, axes)
    if st is None:
        return wrap(r.copy(), self._dtype)
    return wrap_strided(np.array(r, order="K"), self._dtype, st)


@impl("roll")
def _roll(self, shifts, dims=None):
    shifts, dims = roll_args(shifts, dims, len(self._shape))
    if not dims:
        return wrap(np.roll(arr(self), shifts[0]), self._dtype)
    return wrap(np.roll(arr(self), shifts, dims), self._dtype)


# ---- tril / triu -------------------------------------------------------------------------------

@impl("tril")
def _tril(self, diagonal=0):
    return wrap(np.tril(arr(self), diagonal), self._dtype)


@impl("triu")
def _triu(self, diagonal=0):
    return wrap(np.triu(arr(self), diagonal), self._dtype)


@impl("tril_")
def _tril_(self, diagonal=0):
    m, n = self._shape[-2:]
    a = arr(self)
    np.copyto(a, np.zeros((), a.dtype), where=~np.tri(m, n, diagonal, dtype=bool))
    return self


@impl("triu_")
def _triu_(self, diagonal=0):
    m, n = self._shape[-2:]
    a = arr(self)
    np.copyto(a, np.zeros((), a.dtype), where=np.tri(m, n, diagonal - 1, dtype=bool))
    return self


# ---- diag / diag_embed -------------------------------------------------------------------------

@impl("diag")
def _diag(self, diagonal=0):
    a = arr(self)
    if len(self._shape) == 2:
        return wrap(np.diagonal(a, diagonal).copy(), self._dtype)
    m = a.shape[0] + abs(diagonal)
    r = np.zeros((m, m), a.dtype)
    i = np.arange(a.shape[0])
    r[i + max(-diagonal, 0), i + max(diagonal, 0)] = a
    return wrap(r, self._dtype)


@impl("diag_embed")
def _diag_embed(self, offset=0, dim1=-2, dim2=-1):
    n = len(self._shape) + 1
    d1, d2 = normalize_dim(dim1, n), normalize_dim(dim2, n)
    a = arr(self)
    last = a.shape[-1]
    m = last + abs(offset)
    r = np.zeros(a.shape[:-1] + (m, m), a.dtype)
    i = np.arange(last)
    r[..., i + max(-offset, 0), i + max(offset, 0)] = a
    if (d1, d2) != (n - 2, n - 1):
        r = np.moveaxis(r, (-2, -1), (d1, d2))
    return wrap(r, self._dtype)
