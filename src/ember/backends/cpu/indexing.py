"""CPU kernels for the indexing ops, on NumPy fancy indexing and `ufunc.at`.

Every kernel reads its inputs through `arr()` (zero-copy strided views, so non-contiguous inputs
cost nothing extra) and in-place kernels write straight into `arr(self)`, a view of the storage.
Out-of-place forms run the in-place body on a C-contiguous copy of `self`.

Accumulating ops (index_put_(accumulate=True), scatter_add, scatter_reduce, index_add, put_) use
`ufunc.at`, which applies duplicates one after another in the storage dtype, as PyTorch's CPU
kernels do (float16/bfloat16 included).
"""
from __future__ import annotations

import math

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.shape import broadcast_shapes, normalize_dim
from ._common import arr, compute_np, impl, operand, wrap

_ALL = slice(None)
_UNSIGNED = {8: np.uint64, 4: np.uint32, 2: np.uint16, 1: np.uint8}
_np_take = np.take


# ---- shared checks -------------------------------------------------------------------------

def _oob(idx: np.ndarray, n: int) -> bool:
    """Whether some index lies outside [0, n): one pass, since negatives look huge as unsigned."""
    return idx.size != 0 and int(idx.view(_UNSIGNED[idx.dtype.itemsize]).max()) >= n


def _first_bad(idx: np.ndarray, lo: int, n: int) -> int:
    """The first index outside [lo, n) (error path only)."""
    return int(idx[(idx < lo) | (idx >= n)].flat[0])


def _int_index(op: str, index: Tensor, exc=RuntimeError, msg=None) -> np.ndarray:
    dt = index._dtype
    if dt is not D.int64 and dt is not D.int32:
        raise exc(msg or f"{op}(): Expected dtype int32/int64 for index, but got {dt}")
    return arr(index)


def _long_index(op: str, index: Tensor, exc=RuntimeError) -> np.ndarray:
    if index._dtype is not D.int64:
        raise exc(f"{op}(): Expected a long (int64) tensor for index, but got {index._dtype}")
    return arr(index)


def _vector_index(op: str, idx: np.ndarray, exc=IndexError) -> np.ndarray:
    if idx.ndim > 1:
        raise exc(f"{op}(): Index is supposed to be a vector (0-D or 1-D), but got a tensor of shape {list(idx.shape)}")
    return idx.reshape(-1)


def _same_dtype(op: str, self: Tensor, other: Tensor, what: str = "source") -> None:
    if other._dtype is not self._dtype:
        raise RuntimeError(f"{op}(): self and {what} must have the same dtype, but got self.dtype = {self._dtype} "
                           f"and {what}.dtype = {other._dtype}")


def _scalar_to(op: str, value, dt) -> np.generic:
    """A Python scalar (or 0-dim tensor) as a NumPy scalar of ember dtype `dt`; like PyTorch, an
    integer destination refuses values it cannot represent instead of wrapping them."""
    if isinstance(value, Tensor):
        if value._shape:
            raise RuntimeError(f"{op} only supports a 0-dimensional value tensor, but got tensor with "
                               f"{len(value._shape)} dimension(s)")
        return arr(value).astype(dt.np)[()]
    if dt.category == 1 and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise RuntimeError(f"{op}: value {value} cannot be converted to type {dt} without overflow")
        v = int(value)
        info = np.iinfo(dt.np)
        low = info.min if dt.is_signed else -info.max  # unsigned: small negatives wrap, as in c10
        if v < low or v > info.max:
            raise RuntimeError(f"{op}: value {value} cannot be converted to type {dt} without overflow")
        return dt.np.type(v % (info.max + 1) if v < 0 and not dt.is_signed else v)
    return operand(value, dt.np)


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


def _inplace_pair(name: str, body):
    """Registers `name` (runs `body` on a C-contiguous copy of self) and `name_` (on self's storage)."""
    @impl(name)
    def out_of_place(self, *args):
        out = np.array(arr(self), order="C")
        body(name, out, self, *args)
        return wrap(out, self._dtype)

    @impl(name + "_")
    def in_place(self, *args):
        body(name + "_", arr(self), self, *args)
        return self
    return body


# ---- advanced indexing: index, index_put_ --------------------------------------------------

def _adv_key(op: str, self: Tensor, indices) -> tuple:
    """The NumPy index tuple for an aten-style index list, and whether it holds any tensor."""
    shape = self._shape
    nd = len(shape)
    key = []
    dim = 0
    has_tensor = False
    for t in indices:
        if t is None:
            key.append(_ALL)
            dim += 1
            continue
        dt = t._dtype
        try:
            a = arr(t)
        except ValueError:  # an empty view past the end of its storage (e.g. nonzero(mask).unbind(1))
            if 0 not in t._shape:
                raise
            a = np.empty(t._shape, dt.np)
        if dt is D.int64 or dt is D.int32:
            dim += 1
        elif dt is D.bool or dt is D.uint8:
            if dt is D.uint8:
                a = a != 0
            for j in range(a.ndim):
                if dim + j >= nd or a.shape[j] != shape[dim + j]:
                    raise IndexError(f"{op}(): the shape of the mask {list(a.shape)} at index {j} does not match "
                                     f"the shape of the indexed tensor {list(shape)} at index {dim + j}")
            dim += a.ndim
        else:
            raise IndexError(f"{op}(): tensors used as indices must be long, int, byte or bool tensors, got {dt}")
        key.append(a)
        has_tensor = True
    if dim > nd:
        raise IndexError(f"{op}(): too many indices for tensor of dimension {nd} (got {dim})")
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
    key, has_tensor = _adv_key("index", self, indices)
    a = arr(self)
    try:
        r = a[key]
    except IndexError as e:
        _adv_error("index", self, key, e)
    if not has_tensor:  # only full dims: NumPy returned a view, the op returns a copy
        r = np.array(r, order="C")
    return wrap(r, self._dtype)


def _index_put_body(op, a, self, indices, values, accumulate=False):
    if values._dtype is not self._dtype:
        raise RuntimeError(f"{op}(): Index put requires the source and destination dtypes match, got "
                           f"{self._dtype} for the destination and {values._dtype} for the source")
    key, _ = _adv_key(op, self, indices)
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


_inplace_pair("index_put", _index_put_body)


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
    idx = _vector_index("index_select", _int_index("index_select", index))
    d = normalize_dim(dim, len(self._shape))
    a = arr(self)
    if a.ndim == 0:
        if idx.size != 1:
            raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {idx.size} value(s)")
        a = a.reshape(1)
    n = a.shape[d]
    if _oob(idx, n):
        raise IndexError(f"index_select(): index {_first_bad(idx, 0, n)} is out of range for dimension {d} "
                         f"with size {n}")
    r = _np_take(a, idx, axis=d)
    return wrap(r.reshape(()) if self._shape == () else r, self._dtype)


@impl("gather")
def _gather(self, dim, index, sparse_grad=False):
    idx = _int_index("gather", index)
    nd = len(self._shape)
    d = normalize_dim(dim, nd)
    if max(nd, 1) != max(idx.ndim, 1):
        raise RuntimeError(f"gather(): Index tensor must have the same number of dimensions as input tensor "
                           f"(index shape {list(idx.shape)}, input shape {list(self._shape)})")
    out_shape = idx.shape
    a, idx = _as_1d(arr(self)), _as_1d(idx)
    if idx.size == 0:
        return wrap(np.empty(out_shape, a.dtype), self._dtype)
    for k in range(a.ndim):
        if k != d and idx.shape[k] > a.shape[k]:
            raise RuntimeError(f"gather(): Size does not match at dimension {k} expected index {list(idx.shape)} "
                               f"to be no larger than self {list(a.shape)} apart from dimension {d}")
    n = a.shape[d]
    if _oob(idx, n):
        raise RuntimeError(f"gather(): index {_first_bad(idx, 0, n)} is out of bounds for dimension {d} "
                           f"with size {n}")
    r = a[_dim_key(idx, d)]
    return wrap(r.reshape(out_shape) if r.shape != out_shape else r, self._dtype)


@impl("take")
def _take(self, index):
    idx = _long_index("take", index)
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
    if len(weight._shape) != 2:
        raise RuntimeError(f"embedding(): 'weight' must be 2-D, got shape {list(weight._shape)}")
    idx = _int_index("embedding", indices, msg=f"embedding(): Expected tensor for argument 'indices' to have one "
                     f"of the following scalar types: Long, Int; but got {indices._dtype} instead")
    w = arr(weight)
    n = w.shape[0]
    if _oob(idx, n):
        raise IndexError(f"embedding(): index {_first_bad(idx, 0, n)} out of range in self "
                         f"(weight has {n} rows)")
    return wrap(_np_take(w, idx, axis=0), weight._dtype)


@impl("one_hot")
def _one_hot(self, num_classes=-1):
    if self._dtype is not D.int64:
        raise RuntimeError(f"one_hot is only applicable to index tensor of type int64 (LongTensor), got {self._dtype}")
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
    elif num_classes <= 0:
        raise RuntimeError("one_hot(): Can not infer total number of classes from empty tensor.")
    if num_classes < 0:
        raise RuntimeError(f"one_hot(): num_classes should be -1 or positive, got {num_classes}")
    return wrap((a[..., None] == np.arange(num_classes)).astype(np.int64), D.int64)


# ---- scatter family --------------------------------------------------------------------------

def _scatter_key(op: str, self: Tensor, dim, index: Tensor, src):
    """Checks a scatter-family call; returns (NumPy index tuple, src block), or (None, None) when
    `index` is empty. The tuple addresses self[..., index[i][j], ...] for every position of index."""
    idx = _int_index(op, index)
    nd = len(self._shape)
    d = normalize_dim(dim, nd)
    ndi = max(idx.ndim, 1)
    if ndi != max(nd, 1):
        raise RuntimeError(f"{op}(): Index tensor must have the same number of dimensions as self tensor "
                           f"(index shape {list(idx.shape)}, self shape {list(self._shape)})")
    s = None
    if src is not None:
        if src._dtype is not self._dtype:
            raise RuntimeError(f"{op}(): Expected self.dtype to be equal to src.dtype, but got {self._dtype} "
                               f"and {src._dtype}")
        s = _as_1d(arr(src))
        if s.ndim != ndi:
            raise RuntimeError(f"{op}(): Index tensor must have the same number of dimensions as src tensor "
                               f"(index shape {list(idx.shape)}, src shape {list(src._shape)})")
    if idx.size == 0:
        return None, None
    idx = _as_1d(idx)
    shape = self._shape or (1,)
    for k in range(ndi):
        if (k != d and idx.shape[k] > shape[k]) or (s is not None and idx.shape[k] > s.shape[k]):
            raise RuntimeError(f"{op}(): Expected index {list(idx.shape)} to be no larger than self {list(shape)} "
                               f"apart from dimension {d}" +
                               (f" and to be no larger size than src {list(s.shape)}" if s is not None else ""))
    n = shape[d]
    if _oob(idx, n):
        raise RuntimeError(f"{op}(): index {_first_bad(idx, 0, n)} is out of bounds for dimension {d} with size {n}")
    key = _dim_key(idx, d)
    if s is not None and s.shape != idx.shape:
        s = s[tuple(slice(0, m) for m in idx.shape)]
    return key, s


_SCATTER_UFUNC = {"add": np.add, "multiply": np.multiply}


def _scatter_body(op, a, self, dim, index, src=None, value=None, reduce=None):
    if src is None:
        if value is None:
            raise TypeError(f"{op}(): expected a `src` tensor or a scalar `value`")
        src = value
    elif value is not None:
        raise TypeError(f"{op}(): got both `src` and `value`; pass one of them")
    ufunc = None
    if reduce is not None:
        ufunc = _SCATTER_UFUNC.get(reduce)
        if ufunc is None:
            raise RuntimeError(f"{op}(): reduce argument must be either 'add' or 'multiply', got {reduce!r}")
    is_tensor = isinstance(src, Tensor)
    key, s = _scatter_key(op, self, dim, index, src if is_tensor else None)
    if key is None:
        return
    v = s if is_tensor else _scalar_to(op, src, self._dtype)
    a = _as_1d(a)
    if ufunc is None:
        a[key] = v
    else:
        ufunc.at(a, key, v)


def _scatter_add_body(op, a, self, dim, index, src):
    key, s = _scatter_key(op, self, dim, index, src)
    if key is not None:
        np.add.at(_as_1d(a), key, s)


_REDUCE = {"sum": np.add, "prod": np.multiply, "mean": np.add, "amax": np.maximum, "amin": np.minimum}


def _reduce_identity(reduce: str, dt):
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    low = reduce == "amax"
    if dt.category == 2:
        return -np.inf if low else np.inf
    if dt is D.bool:
        return not low
    info = np.iinfo(dt.np)
    return info.min if low else info.max


def _scatter_reduce_body(op, a, self, dim, index, src, reduce, include_self=True):
    ufunc = _REDUCE.get(reduce)
    if ufunc is None:
        raise RuntimeError(f"{op}(): reduce argument must be either sum, prod, mean, amax or amin, got {reduce!r}")
    if reduce == "mean" and self._dtype is D.bool:
        raise RuntimeError(f"{op}(): reduce='mean' is not implemented for bool tensors")
    key, s = _scatter_key(op, self, dim, index, src)
    if key is None:
        return
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
        if self._dtype.category == 2:
            np.divide(a, count.astype(a.dtype), out=a)
        else:  # PyTorch floors integer means
            np.floor_divide(a, count.astype(a.dtype), out=a)


_inplace_pair("scatter", _scatter_body)
_inplace_pair("scatter_add", _scatter_add_body)
_inplace_pair("scatter_reduce", _scatter_reduce_body)


# ---- index_add / index_copy / index_fill -----------------------------------------------------

def _dim_source(op: str, self: Tensor, dim, idx: np.ndarray, source: Tensor, strict: bool):
    """Shared checks of index_add/index_copy: source is self with dim `d` resized to len(index).
    `strict`: the dims must agree exactly (index_add); else a 0-dim side counts as 1-D (index_copy)."""
    _same_dtype(op, self, source)
    d = normalize_dim(dim, len(self._shape))
    s = _as_1d(arr(source))
    shape = self._shape or (1,)
    if s.ndim != len(shape) or (strict and len(source._shape) != len(self._shape)):
        raise RuntimeError(f"{op}(): source must have as many dimensions as self, got source shape "
                           f"{list(source._shape)} and self shape {list(self._shape)}")
    if s.shape[d] != idx.size:
        raise RuntimeError(f"{op}(): Number of indices ({idx.size}) should be equal to source.size(dim) "
                           f"({s.shape[d]}), for dim: {d}")
    for k in range(s.ndim):
        if k != d and s.shape[k] != shape[k]:
            raise RuntimeError(f"{op}(): source tensor shape must match self tensor shape, excluding the specified "
                               f"dimension {d}. Got self.shape = {list(self._shape)} "
                               f"source.shape = {list(source._shape)}")
    n = shape[d]
    return d, n, s


def _index_add_body(op, a, self, dim, index, source, alpha=1):
    idx = _vector_index(op, _int_index(op, index))
    d, n, s = _dim_source(op, self, dim, idx, source, True)
    if _oob(idx, n):
        raise RuntimeError(f"{op}(): index {_first_bad(idx, 0, n)} is out of bounds for dimension {d} with size {n}")
    if alpha != 1:
        cnp = compute_np(self._dtype)
        s = (s.astype(cnp, copy=False) * operand(alpha, cnp)).astype(a.dtype, copy=False)
    np.add.at(_as_1d(a), (_ALL,) * d + (idx,), s)


def _index_copy_body(op, a, self, dim, index, source):
    idx = _vector_index(op, _long_index(op, index))
    d, n, s = _dim_source(op, self, dim, idx, source, False)
    if _oob(idx, n):
        raise IndexError(f"{op}(): index {_first_bad(idx, 0, n)} is out of bounds for dimension {d} with size {n}")
    _as_1d(a)[(_ALL,) * d + (idx,)] = s


def _index_fill_body(op, a, self, dim, index, value):
    idx = _vector_index(op, _long_index(op, index, IndexError), RuntimeError)
    d = normalize_dim(dim, len(self._shape))
    v = _scalar_to(op, value, self._dtype)
    a = _as_1d(a)
    n = a.shape[d]
    if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):  # negative indices wrap here
        raise IndexError(f"{op}(): index {_first_bad(idx, -n, n)} is out of bounds for dimension {d} with size {n}")
    a[(_ALL,) * d + (idx,)] = v


_inplace_pair("index_add", _index_add_body)
_inplace_pair("index_copy", _index_copy_body)
_inplace_pair("index_fill", _index_fill_body)


# ---- put_ ----------------------------------------------------------------------------------

def _put_body(op, a, self, index, source, accumulate=False):
    idx = _long_index(op, index).reshape(-1)
    _same_dtype(op, self, source)
    if idx.size != source.numel():
        raise IndexError(f"{op}(): Expected source and index to have the same number of elements, but got "
                         f"source.numel() = {source.numel()}, index.numel() = {idx.size}")
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


_inplace_pair("put", _put_body)


# ---- masked ops ----------------------------------------------------------------------------

def _bool_mask(op: str, mask: Tensor) -> np.ndarray:
    if mask._dtype is not D.bool:
        raise RuntimeError(f"{op} only supports boolean masks, but got mask with dtype {mask._dtype}")
    return arr(mask)


def _bcast_error(op: str, *shapes):
    broadcast_shapes(*shapes)  # raises the readable RuntimeError
    raise RuntimeError(f"{op}: shapes {' and '.join(str(list(s)) for s in shapes)} cannot be broadcast together")


@impl("masked_fill")
def _masked_fill(self, mask, value):
    m = _bool_mask("masked_fill", mask)
    v = _scalar_to("masked_fill", value, self._dtype)
    try:
        r = np.where(m, v, arr(self))
    except ValueError:
        _bcast_error("masked_fill", self._shape, mask._shape)
    return wrap(r, self._dtype)


@impl("masked_fill_")
def _masked_fill_(self, mask, value):
    m = _bool_mask("masked_fill_", mask)
    v = _scalar_to("masked_fill_", value, self._dtype)
    try:
        np.copyto(arr(self), v, where=m)
    except ValueError:
        raise RuntimeError(f"masked_fill_: the mask of shape {list(mask._shape)} cannot be broadcast to self's "
                           f"shape {list(self._shape)}") from None
    return self


@impl("masked_select")
def _masked_select(self, mask):
    m = _bool_mask("masked_select", mask)
    a = arr(self)
    if a.shape != m.shape:
        try:
            a, m = np.broadcast_arrays(a, m)
        except ValueError:
            _bcast_error("masked_select", self._shape, mask._shape)
    return wrap(a[m], self._dtype)


def _masked_scatter_into(op, a, self, m, source):
    _same_dtype(op, self, source)
    if m.shape != a.shape:
        try:
            m = np.broadcast_to(m, a.shape)
        except ValueError:
            raise RuntimeError(f"{op}: the mask of shape {list(m.shape)} cannot be broadcast to self's shape "
                               f"{list(a.shape)}") from None
    count = int(np.count_nonzero(m))
    s = arr(source)
    if s.size < count:
        raise RuntimeError(f"{op}: number of elements of source ({s.size}) < number of ones in mask ({count})")
    a[m] = s.reshape(-1)[:count]


@impl("masked_scatter")
def _masked_scatter(self, mask, source):
    m = _bool_mask("masked_scatter", mask)
    a = arr(self)
    if a.shape != m.shape:
        try:
            a = np.broadcast_to(a, np.broadcast_shapes(a.shape, m.shape))
        except ValueError:
            _bcast_error("masked_scatter", self._shape, mask._shape)
    out = np.array(a, order="C")
    _masked_scatter_into("masked_scatter", out, self, m, source)
    return wrap(out, self._dtype)


@impl("masked_scatter_")
def _masked_scatter_(self, mask, source):
    _masked_scatter_into("masked_scatter_", arr(self), self, _bool_mask("masked_scatter_", mask), source)
    return self
