"""CPU kernels for the indexing ops, on NumPy fancy indexing and `ufunc.at`.

Every kernel reads its inputs through `arr()` (zero-copy strided views, so non-contiguous inputs
cost nothing extra) and in-place kernels write straight into `arr(self)`, a view of the storage.
Out-of-place forms run the in-place body on a C-contiguous copy of `self`.

Accumulating ops (index_put_(accumulate=True), scatter_add, scatter_reduce, index_add, put_) use
`ufunc.at`, which applies duplicates one after another in the storage dtype, as PyTorch's CPU
kernels do (float16/bfloat16 included).

The argument checks (dtypes, dims, shapes) are the ops' metas (ops/indexing.py), which the entry
point runs before these kernels; the kernels check what only the data tells: index values out of
range, a mask's count, a 0-dim value tensor that the destination dtype cannot hold.
"""
from __future__ import annotations

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.layout import layout_strides
from ...core.shape import normalize_dim
from ...ops.indexing import fill_scalar
from ._common import arr, compute_np, impl, operand, wrap, wrap_strided

_ALL = slice(None)
_UNSIGNED = {8: np.uint64, 4: np.uint32, 2: np.uint16, 1: np.uint8}
_np_take = np.take


# ---- index values --------------------------------------------------------------------------

def _oob(idx: np.ndarray, n: int) -> bool:
    """Whether some index lies outside [0, n): one pass, since negatives look huge as unsigned."""
    return idx.size != 0 and int(idx.view(_UNSIGNED[idx.dtype.itemsize]).max()) >= n


def _first_bad(idx: np.ndarray, lo: int, n: int) -> int:
    """The first index outside [lo, n) (error path only)."""
    return int(idx[(idx < lo) | (idx >= n)].flat[0])


def _value(op: str, value, dt) -> np.generic:
    """A fill value (a Python scalar or a 0-dim tensor) as a NumPy scalar of ember dtype `dt`,
    converted as PyTorch converts it (see ops.indexing.fill_scalar)."""
    if isinstance(value, Tensor):
        value = arr(value)[()].item()
    v = fill_scalar(op, value, dt)
    if dt is D.float16 or dt is D.bfloat16:  # double -> float -> half, as c10 converts
        v = np.float32(v)
    return dt.np.type(v)


_RANGES: dict = {}


def _dim_key(idx: np.ndarray, d: int) -> tuple:
    """The NumPy index addressing self[i0, ..., idx[i0, ..., ik], ..., ik] for every position of idx
    (gather/scatter): idx along dim `d`, broadcast aranges along the others."""
    nd = idx.ndim
    key = []
    for k, m in enumerate(idx.shape):
        if k == d:
            key.append(idx)
            continue
        r = _RANGES.get((m, nd - 1 - k))
        if r is None:
            r = np.arange(m).reshape((m,) + (1,) * (nd - 1 - k))
            r.flags.writeable = False
            if len(_RANGES) < 1024:
                _RANGES[(m, nd - 1 - k)] = r
        key.append(r)
    return tuple(key)


def _as_1d(a: np.ndarray) -> np.ndarray:
    """0-dim tensors act as 1-element vectors in the dim-based ops (a view, so writes go through)."""
    return a.reshape(1) if a.ndim == 0 else a


def _inplace_pair(name: str, body, preserve: bool = False):
    """Registers `name` (runs `body` on a copy of self: row-major, or with `preserve` in self's layout, as torch's
    index_fill/index_put/put clone self with preserve_format) and `name_` (on self's storage)."""
    @impl(name)
    def out_of_place(self, *args):
        st = layout_strides(self, None, name) if preserve else None
        if st is None:
            out = np.array(arr(self), order="C")
            body(name, out, self, *args)
            return wrap(out, self._dtype)
        t = wrap_strided(np.array(arr(self), order="K"), self._dtype, st)    # (a fresh array: never self's)
        body(name, t._np, self, *args)
        return t

    @impl(name + "_")
    def in_place(self, *args):
        body(name + "_", arr(self), self, *args)
        return self
    return body


# ---- advanced indexing: index, index_put_ --------------------------------------------------

def _adv_key(indices) -> tuple:
    """The NumPy index tuple for an aten-style index list, and whether it holds any tensor."""
    key = []
    has_tensor = False
    for t in indices:
        if t is None:
            key.append(_ALL)
            continue
        try:
            a = arr(t)
        except ValueError:  # an empty view past the end of its storage (e.g. nonzero(mask).unbind(1))
            if 0 not in t._shape:
                raise
            a = np.empty(t._shape, t._dtype.np)
        key.append(a != 0 if t._dtype is D.uint8 else a)
        has_tensor = True
    while key and key[-1] is _ALL:
        key.pop()
    return tuple(key), has_tensor


def _adv_error(op: str, self: Tensor, key: tuple, exc: Exception):
    """Turns NumPy's IndexError into PyTorch's wording (error path only)."""
    dim = 0
    for k in key:
        if k is _ALL:
            dim += 1
        elif k.dtype == np.bool_:
            dim += k.ndim
        else:
            n = self._shape[dim]
            if k.size and (int(k.min()) < -n or int(k.max()) >= n):
                raise IndexError(f"{op}(): index {_first_bad(k, -n, n)} is out of bounds for dimension {dim} "
                                 f"with size {n}") from None
            dim += 1
    if "shape mismatch" in str(exc):
        shapes = ", ".join(str(list(k.shape)) for k in key if k is not _ALL)
        raise IndexError(f"{op}(): shape mismatch: indexing tensors could not be broadcast together with "
                         f"shapes {shapes}") from None
    raise IndexError(f"{op}(): {exc}") from None


@impl("index")
def _index(self, indices):
    key, has_tensor = _adv_key(indices)
    a = arr(self)
    try:
        r = a[key]
    except IndexError as e:
        _adv_error("index", self, key, e)
    if not has_tensor:  # only full dims: NumPy returned a view, the op returns a copy
        r = np.array(r, order="C")
    return wrap(r, self._dtype)


def _index_put_body(op, a, self, indices, values, accumulate=False):
    key, _ = _adv_key(indices)
    v = arr(values)
    try:
        if accumulate:
            np.add.at(a, key, v)
        else:
            a[key] = v
    except IndexError as e:
        _adv_error(op, self, key, e)
    except ValueError:
        raise RuntimeError(f"{op}(): shape mismatch: value tensor of shape {list(v.shape)} cannot be broadcast "
                           f"to indexing result of shape {list(a[key].shape)}") from None


_inplace_pair("index_put", _index_put_body, preserve=True)


# ---- nonzero / argwhere --------------------------------------------------------------------

@impl("nonzero")
def _nonzero(self):
    a = arr(self)
    if a.ndim == 0:
        return wrap(np.zeros((1 if a != 0 else 0, 0), np.int64), D.int64)
    nz = np.nonzero(a)
    r = nz[0].reshape(-1, 1) if len(nz) == 1 else np.stack(nz, axis=1)
    return wrap(r, D.int64)


impl("argwhere")(_nonzero)


# ---- index_select, gather, take, embedding ---------------------------------------------------

@impl("index_select")
def _index_select(self, dim, index):
    d = normalize_dim(dim, len(self._shape))
    idx = arr(index).reshape(-1)
    a = _as_1d(arr(self))
    n = a.shape[d]
    if _oob(idx, n):
        raise IndexError(f"index_select(): index {_first_bad(idx, 0, n)} is out of range for dimension {d} "
                         f"with size {n}")
    r = _np_take(a, idx, axis=d)
    return wrap(r.reshape(()) if self._shape == () else r, self._dtype)


@impl("gather")
def _gather(self, dim, index, sparse_grad=False):
    d = normalize_dim(dim, len(self._shape))
    idx = arr(index)
    out_shape = idx.shape
    a, idx = _as_1d(arr(self)), _as_1d(idx)
    if idx.size == 0:
        return wrap(np.empty(out_shape, a.dtype), self._dtype)
    n = a.shape[d]
    if _oob(idx, n):
        raise RuntimeError(f"gather(): index {_first_bad(idx, 0, n)} is out of bounds for dimension {d} "
                           f"with size {n}")
    r = a[_dim_key(idx, d)]
    return wrap(r.reshape(out_shape) if r.shape != out_shape else r, self._dtype)


@impl("take")
def _take(self, index):
    idx = arr(index)
    a = arr(self)
    n = a.size
    if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):
        raise IndexError(f"take(): out of range: tried to access index {_first_bad(idx, -n, n)} on a tensor "
                         f"of {n} elements")
    if a.flags.c_contiguous:
        r = _np_take(a.reshape(-1), idx)
    else:  # gather the few elements asked for instead of flattening (copying) all of self
        r = a[np.unravel_index(np.where(idx < 0, idx + n, idx), a.shape)]
    return wrap(r, self._dtype)


@impl("embedding")
def _embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    idx = arr(indices)
    w = arr(weight)
    n = w.shape[0]
    if _oob(idx, n):
        raise IndexError(f"embedding(): index {_first_bad(idx, 0, n)} out of range in self "
                         f"(weight has {n} rows)")
    return wrap(_np_take(w, idx, axis=0), weight._dtype)


@impl("one_hot")
def _one_hot(self, num_classes=-1):
    a = arr(self)
    if a.size:
        if int(a.min()) < 0:
            raise RuntimeError("one_hot(): Class values must be non-negative.")
        top = int(a.max())
        if num_classes == -1:
            num_classes = top + 1
        elif top >= num_classes:
            raise RuntimeError(f"one_hot(): Class values must be smaller than num_classes ({num_classes}), "
                               f"got {top}.")
    return wrap((a[..., None] == np.arange(num_classes)).astype(np.int64), D.int64)


# ---- scatter family --------------------------------------------------------------------------

def _scatter_key(op: str, self: Tensor, d: int, index: Tensor, src):
    """(NumPy index tuple, src block) of a checked scatter-family call along dim d, or (None, None)
    when `index` is empty. The tuple addresses self[..., index[i][j], ...] for every position of index."""
    idx = arr(index)
    if idx.size == 0:
        return None, None
    idx = _as_1d(idx)
    n = (self._shape or (1,))[d]
    if _oob(idx, n):
        raise RuntimeError(f"{op}(): index {_first_bad(idx, 0, n)} is out of bounds for dimension {d} with size {n}")
    key = _dim_key(idx, d)
    s = None
    if src is not None:
        s = _as_1d(arr(src))
        if s.shape != idx.shape:
            s = s[tuple(slice(0, m) for m in idx.shape)]
    return key, s


_SCATTER_UFUNC = {"add": np.add, "multiply": np.multiply}


def _scatter_body(op, a, self, dim, index, src=None, value=None, reduce=None):
    d = normalize_dim(dim, len(self._shape))
    if src is None:
        src = value
    is_tensor = isinstance(src, Tensor)
    key, s = _scatter_key(op, self, d, index, src if is_tensor else None)
    if key is None:
        return
    v = s if is_tensor else _value(op, src, self._dtype)
    a = _as_1d(a)
    if reduce is None:
        a[key] = v
    else:
        _SCATTER_UFUNC[reduce].at(a, key, v)


def _scatter_add_body(op, a, self, dim, index, src):
    key, s = _scatter_key(op, self, normalize_dim(dim, len(self._shape)), index, src)
    if key is not None:
        np.add.at(_as_1d(a), key, s)


_REDUCE = {"sum": np.add, "prod": np.multiply, "mean": np.add, "amax": np.maximum, "amin": np.minimum}


def _reduce_identity(reduce: str, dt):
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    low = reduce == "amax"
    if dt.is_floating_point:
        return -np.inf if low else np.inf
    if dt is D.bool:
        return not low
    info = np.iinfo(dt.np)
    return info.min if low else info.max


def _scatter_reduce_body(op, a, self, dim, index, src, reduce, include_self=True):
    d = normalize_dim(dim, len(self._shape))
    key, s = _scatter_key(op, self, d, index, src)
    if key is None:
        return
    ufunc = _REDUCE[reduce]
    a = _as_1d(a)
    if not include_self:
        a[key] = _reduce_identity(reduce, self._dtype)
    if reduce == "amax" or reduce == "amin":
        with np.errstate(invalid="ignore"):  # NaN propagates silently, as in PyTorch
            ufunc.at(a, key, s)
    else:
        ufunc.at(a, key, s)
    if reduce == "mean":
        count = np.ones(a.shape, np.int64) if include_self else np.zeros(a.shape, np.int64)
        np.add.at(count, key, 1)
        np.maximum(count, 1, out=count)
        if self._dtype.is_floating_point:
            np.divide(a, count.astype(a.dtype), out=a)
        else:  # PyTorch floors integer means
            np.floor_divide(a, count.astype(a.dtype), out=a)


_inplace_pair("scatter", _scatter_body)
_inplace_pair("scatter_add", _scatter_add_body)
_inplace_pair("scatter_reduce", _scatter_reduce_body)


# ---- index_add / index_copy / index_fill -----------------------------------------------------

def _along(op: str, exc: type, self: Tensor, d: int, index: Tensor) -> np.ndarray:
    """index_add/index_copy's index as a 1-D array, its values checked against dim d of self."""
    idx = arr(index).reshape(-1)
    n = (self._shape or (1,))[d]
    if _oob(idx, n):
        raise exc(f"{op}(): index {_first_bad(idx, 0, n)} is out of bounds for dimension {d} with size {n}")
    return idx


def _index_add_body(op, a, self, dim, index, source, alpha=1):
    d = normalize_dim(dim, len(self._shape))
    idx = _along(op, RuntimeError, self, d, index)
    s = _as_1d(arr(source))
    if alpha != 1:
        cnp = compute_np(self._dtype)
        s = (s.astype(cnp, copy=False) * operand(alpha, cnp)).astype(a.dtype, copy=False)
    np.add.at(_as_1d(a), (_ALL,) * d + (idx,), s)


def _index_copy_body(op, a, self, dim, index, source):
    d = normalize_dim(dim, len(self._shape))
    idx = _along(op, IndexError, self, d, index)
    _as_1d(a)[(_ALL,) * d + (idx,)] = _as_1d(arr(source))


def _index_fill_body(op, a, self, dim, index, value):
    d = normalize_dim(dim, len(self._shape))
    idx = arr(index).reshape(-1)
    v = _value(op, value, self._dtype)
    a = _as_1d(a)
    n = a.shape[d]
    if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):  # negative indices wrap here
        raise IndexError(f"{op}(): index {_first_bad(idx, -n, n)} is out of bounds for dimension {d} with size {n}")
    a[(_ALL,) * d + (idx,)] = v


_inplace_pair("index_add", _index_add_body)
_inplace_pair("index_copy", _index_copy_body)
_inplace_pair("index_fill", _index_fill_body, preserve=True)


# ---- put_ ----------------------------------------------------------------------------------

def _put_body(op, a, self, index, source, accumulate=False):
    idx = arr(index).reshape(-1)
    n = a.size
    if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):
        raise IndexError(f"{op}(): out of range: tried to access index {_first_bad(idx, -n, n)} on a tensor "
                         f"of {n} elements")
    a = _as_1d(a)
    key = np.unravel_index(np.where(idx < 0, idx + n, idx), a.shape)
    s = arr(source).reshape(-1)
    if accumulate:
        np.add.at(a, key, s)
    else:
        a[key] = s


_inplace_pair("put", _put_body, preserve=True)


# ---- masked ops ----------------------------------------------------------------------------

@impl("masked_fill")
def _masked_fill(self, mask, value):
    return wrap(np.where(arr(mask), _value("masked_fill", value, self._dtype), arr(self)), self._dtype)


@impl("masked_fill_")
def _masked_fill_(self, mask, value):
    np.copyto(arr(self), _value("masked_fill_", value, self._dtype), where=arr(mask))
    return self


@impl("masked_select")
def _masked_select(self, mask):
    a, m = arr(self), arr(mask)
    if a.shape != m.shape:
        a, m = np.broadcast_arrays(a, m)
    return wrap(a[m], self._dtype)


def _masked_scatter_into(op, a, m, source):
    """a[m] = the first elements of source, in order (m broadcast to a's shape)."""
    if m.shape != a.shape:
        m = np.broadcast_to(m, a.shape)
    count = int(np.count_nonzero(m))
    s = arr(source)
    if s.size < count:
        raise RuntimeError(f"{op}: Number of elements of source ({s.size}) < number of ones in mask ({count})")
    a[m] = s.reshape(-1)[:count]


@impl("masked_scatter")
def _masked_scatter(self, mask, source):
    a, m = arr(self), arr(mask)
    if a.shape != m.shape:
        a = np.broadcast_to(a, np.broadcast_shapes(a.shape, m.shape))
    out = np.array(a, order="C")
    _masked_scatter_into("masked_scatter", out, m, source)
    return wrap(out, self._dtype)


@impl("masked_scatter_")
def _masked_scatter_(self, mask, source):
    _masked_scatter_into("masked_scatter_", arr(self), arr(mask), source)
    return self
