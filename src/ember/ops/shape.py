"""Shape and data-movement ops: cat/stack, repeat/tile, flip/roll, tril/triu, sorting and selection
(sort, argsort, topk, kthvalue, unique), diag/diag_embed and meshgrid.

Ops returning several tensors return namedtuples with `.values` / `.indices`, like
`torch.return_types`. Pure compositions (hstack, vstack, dstack, fliplr, flipud, tile, meshgrid
and the aliases concat/concatenate) are Python functions over other ops: `ember.hstack` runs the
composition directly (so autograd records the inner ops), and the same code is registered as
the op's kernel for every backend.
"""
from __future__ import annotations

from collections import namedtuple

from .._tensor import Tensor
from ..core import dtype as D
from ..core.shape import as_shape, normalize_dim, normalize_dims
from ..dispatch import OPS, defop
from ..autograd.derivatives import derivative, nondifferentiable

__all__ = ["sort_result", "topk_result", "kthvalue_result", "is_legacy_empty", "cat_dtype", "cat_shape", "stack_shape",
           "repeat_shape", "roll_args", "topk_shape", "kthvalue_shape", "diag_embed_shape",
           "meshgrid_layout"]

_ALL = ("cpu", "cuda")

# torch.return_types.sort / topk / kthvalue
sort_result = namedtuple("sort", ["values", "indices"])
topk_result = namedtuple("topk", ["values", "indices"])
kthvalue_result = namedtuple("kthvalue", ["values", "indices"])


# ---- the rules, shared by the metas, the compositions and both backends' kernels ----------------

def is_legacy_empty(t: Tensor) -> bool:
    """cat skips 1-D empty tensors whatever the other shapes (a legacy rule torch keeps)."""
    return len(t._shape) == 1 and t._shape[0] == 0


def cat_dtype(tensors) -> "D.dtype":
    """cat/stack's result dtype: the tensors' dtypes promoted (the skipped empty ones count too)."""
    dt = tensors[0]._dtype
    for t in tensors:
        if t._dtype is not dt:
            dt = D.promote_types(dt, t._dtype)
    return dt


def cat_shape(tensors, dim) -> tuple:
    """cat's checks and result shape (the 1-D empty tensors skipped, see `is_legacy_empty`)."""
    ref = None
    for i, t in enumerate(tensors):
        s = t._shape
        if not s:
            raise RuntimeError(f"cat: zero-dimensional tensor (at position {i}) cannot be concatenated; "
                               f"use stack() or reshape it to 1-D first")
        if len(s) == 1 and s[0] == 0:
            continue
        if ref is None:
            ref, first, n = s, i, len(s)
            d = normalize_dim(dim, n)
            total = s[d]
            continue
        if len(s) != n:
            raise RuntimeError(f"cat: Tensors must have same number of dimensions: got {n} and {len(s)} "
                               f"(tensor number {first} has shape {list(ref)}, tensor number {i} has shape {list(s)})")
        if s[:d] != ref[:d] or s[d + 1:] != ref[d + 1:]:
            j = next(j for j in range(n) if j != d and s[j] != ref[j])
            raise RuntimeError(f"cat: Sizes of tensors must match except in dimension {d}. Expected size {ref[j]} "
                               f"but got size {s[j]} for tensor number {i} in the list "
                               f"(shapes {list(ref)} and {list(s)})")
        total += s[d]
    return (0,) if ref is None else ref[:d] + (total,) + ref[d + 1:]


def _tensor_list(name, tensors) -> list:
    if isinstance(tensors, Tensor):
        raise TypeError(f"{name}(): argument 'tensors' must be a sequence of Tensors, not Tensor")
    tensors = list(tensors)
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): argument 'tensors' must contain only Tensors, got {type(t).__name__}")
    if not tensors:
        raise RuntimeError(f"{name} expects a non-empty TensorList")
    return tensors


def stack_shape(tensors, dim) -> tuple:
    s0 = tensors[0]._shape
    for i, t in enumerate(tensors):
        if t._shape != s0:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(s0)} at entry 0 and "
                               f"{list(t._shape)} at entry {i}")
    d = normalize_dim(dim, len(s0) + 1)
    return s0[:d] + (len(tensors),) + s0[d:]


def repeat_shape(shape: tuple, repeats: tuple) -> tuple:
    """repeat's checks and result shape (`shape` padded with leading ones to len(repeats))."""
    if len(repeats) < len(shape):
        raise RuntimeError(f"repeat: Number of dimensions of repeat dims can not be smaller than number of "
                           f"dimensions of tensor (got {len(repeats)} repeat dims {list(repeats)} for a tensor of "
                           f"shape {list(shape)})")
    if any(r < 0 for r in repeats):
        raise RuntimeError(f"repeat: Trying to create tensor with negative dimension: repeats must be "
                           f"non-negative, got {list(repeats)}")
    shape = (1,) * (len(repeats) - len(shape)) + tuple(shape)
    return tuple(r * s for r, s in zip(repeats, shape))


def _ints(x) -> tuple:
    """An `int[]` argument given as None, an int or a sequence, as a tuple."""
    return () if x is None else (x,) if isinstance(x, int) else tuple(x)


def roll_args(shifts, dims, ndim: int):
    """roll's (shifts, dims) as tuples, the dims wrapped: what the kernels take."""
    return _ints(shifts), tuple(normalize_dim(d, ndim) for d in _ints(dims))


def topk_shape(shape: tuple, k: int, dim: int) -> tuple:
    """topk's result shape: k along the (wrapped) dim."""
    return shape[:dim] + (k,) + shape[dim + 1:] if shape else ()


def kthvalue_shape(shape: tuple, dim: int, keepdim: bool) -> tuple:
    """kthvalue's result shape: the (wrapped) dim dropped, or kept as 1."""
    return shape[:dim] + ((1,) if keepdim else ()) + shape[dim + 1:] if shape else ()


def diag_embed_shape(shape: tuple, offset: int, dim1: int, dim2: int) -> tuple:
    """diag_embed's result shape: the last dim becomes a square (dim1, dim2) of side size + |offset|."""
    n = len(shape) + 1
    d1, d2 = normalize_dim(dim1, n), normalize_dim(dim2, n)
    m = shape[-1] + abs(offset)
    rest = iter(shape[:-1])
    return tuple(m if k in (d1, d2) else next(rest) for k in range(n))


def meshgrid_layout(tensors, indexing):
    """meshgrid's checks; (output shape, the output dim of each input) for indexing 'ij' or 'xy'."""
    ts = _tensor_list("meshgrid", tensors)
    if indexing is None:
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}')
    dt = ts[0]._dtype
    for i, t in enumerate(ts):
        if len(t._shape) > 1:
            raise RuntimeError(f"meshgrid: Expected 0D or 1D tensor in the tensor list but got a {len(t._shape)}-D "
                               f"tensor at position {i}")
        if t._dtype is not dt:
            raise RuntimeError(f"meshgrid expects all tensors to have the same dtype, got {dt} (position 0) and "
                               f"{t._dtype} (position {i})")
    pos = list(range(len(ts)))
    if indexing == "xy" and len(ts) >= 2:
        pos[0], pos[1] = 1, 0
    out_shape = [0] * len(ts)
    for t, p in zip(ts, pos):
        out_shape[p] = t._shape[0] if t._shape else 1
    return ts, tuple(out_shape), pos


def _atleast_shape(shape: tuple, n: int) -> tuple:
    """The shape numpy's atleast_1d/2d/3d give."""
    if len(shape) >= n:
        return shape
    if n == 3 and len(shape) == 2:
        return shape + (1,)
    if n == 3 and len(shape) == 1:
        return (1,) + shape + (1,)
    return (1,) * (n - len(shape)) + shape


# ---- metas ------------------------------------------------------------------------------------------

def _with_index(shape, dtype):
    return (shape, dtype), (shape, D.int64)


def _not_a_tensor(name, tensors):
    """The entry point has checked the list's items and that it is not empty; a lone tensor would
    pass as the list of its rows."""
    if isinstance(tensors, Tensor):
        raise TypeError(f"{name}(): argument 'tensors' must be a sequence of Tensors, not Tensor")


def _cat_meta(tensors, dim=0):
    _not_a_tensor("cat", tensors)
    return cat_shape(tensors, dim), cat_dtype(tensors)


def _stack_meta(tensors, dim=0):
    _not_a_tensor("stack", tensors)
    return stack_shape(tensors, dim), cat_dtype(tensors)


def _stack_like_meta(name, n, dim):
    def meta(tensors):
        ts = _tensor_list(name, tensors)
        shapes = [_atleast_shape(t._shape, n) for t in ts]
        d = (0 if all(len(s) == 1 for s in shapes) else 1) if dim is None else dim
        views = [_ShapeOnly(s, t._dtype) for s, t in zip(shapes, ts)]
        return cat_shape(views, d), cat_dtype(ts)
    return meta


class _ShapeOnly:
    """A tensor's shape and dtype, for `cat_shape` over the views a composition would make."""
    __slots__ = ("_shape", "_dtype")

    def __init__(self, shape, dtype):
        self._shape, self._dtype = shape, dtype


def _repeat_meta(self, repeats):
    return repeat_shape(self._shape, repeats), self._dtype


def _tile_meta(self, dims):
    if any(d < 0 for d in dims):
        raise RuntimeError(f"tile: Trying to create tensor with negative dimension: dims must be non-negative, "
                           f"got {list(dims)}")
    dims = (1,) * (len(self._shape) - len(dims)) + tuple(dims)
    return (repeat_shape(self._shape, dims) if dims else ()), self._dtype


def _flip_meta(self, dims):
    normalize_dims(dims, len(self._shape))
    return self._shape, self._dtype


def _at_least(name, n):
    def meta(self):
        if len(self._shape) < n:
            raise RuntimeError(f"{name}: Input must be >= {n}-d, got a {len(self._shape)}-d tensor")
        return self._shape, self._dtype
    return meta


_fliplr_meta = _at_least("fliplr", 2)
_flipud_meta = _at_least("flipud", 1)


def _roll_meta(self, shifts, dims=None):
    shifts, dims = _ints(shifts), _ints(dims)
    if not shifts:
        raise RuntimeError("roll: `shifts` required")
    if not dims and len(shifts) != 1:
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:0 "
                           f"(without dims, roll takes one shift over the flattened tensor)")
    if dims and len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    if dims and not self._shape:
        raise IndexError(f"roll: Dimension specified as {dims[0]} but tensor has no dimensions")
    roll_args(shifts, dims, len(self._shape))
    return self._shape, self._dtype


def _tri_meta(name):
    def meta(self, diagonal=0):
        if len(self._shape) < 2:
            raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions, got shape "
                               f"{list(self._shape)}")
        return self._shape, self._dtype
    return meta


def _sort_meta(self, dim=-1, descending=False, stable=False):
    normalize_dim(dim, len(self._shape))
    return _with_index(self._shape, self._dtype)


def _argsort_meta(self, dim=-1, descending=False, stable=False):
    normalize_dim(dim, len(self._shape))
    return self._shape, D.int64


def _topk_meta(self, k, dim=-1, largest=True, sorted=True):
    n = len(self._shape)
    d = normalize_dim(dim, n)
    if self._dtype is D.bool:
        raise RuntimeError("topk does not support bool dtypes; convert the tensor to an integer dtype first")
    size = self._shape[d] if n else 1
    if k < 0 or k > size:
        raise RuntimeError(f"topk: selected index k out of range (k={k}, but dimension {d} has size {size})")
    return _with_index(topk_shape(self._shape, k, d), self._dtype)


def _kthvalue_meta(self, k, dim=-1, keepdim=False):
    n = len(self._shape)
    d = normalize_dim(dim, n)
    if self._dtype is D.bool:
        raise NotImplementedError("kthvalue: not implemented for 'Bool' tensors; convert to an integer dtype first")
    size = self._shape[d] if n else 1
    if size == 0:
        raise IndexError(f"kthvalue(): Expected reduction dim {d} to have non-zero size (shape {list(self._shape)})")
    if not 1 <= k <= size:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d} (k={k}, size {size})")
    return _with_index(kthvalue_shape(self._shape, d, keepdim), self._dtype)


def _unique_meta(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The number of distinct values is data: None in the shapes."""
    if dim is None:
        out, inverse = (None,), self._shape
    else:
        if not self._shape:
            raise IndexError(f"unique: Dimension specified as {dim} but tensor has no dimensions")
        d = normalize_dim(dim, len(self._shape))
        out, inverse = self._shape[:d] + (None,) + self._shape[d + 1:], (self._shape[d],)
    res = ((out, self._dtype),) + (((inverse, D.int64),) if return_inverse else ()) + \
        (((None,), D.int64),) * bool(return_counts)
    return res[0] if len(res) == 1 else res


def _diag_meta(self, diagonal=0):
    n = len(self._shape)
    if n == 1:
        m = self._shape[0] + abs(diagonal)
        return (m, m), self._dtype
    if n == 2:
        rows, cols = self._shape
        return (max(0, min(rows, cols - diagonal) if diagonal >= 0 else min(rows + diagonal, cols)),), self._dtype
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {n}D (shape {list(self._shape)})")


def _diag_embed_meta(self, offset=0, dim1=-2, dim2=-1):
    n = len(self._shape) + 1
    if normalize_dim(dim1, n) == normalize_dim(dim2, n):
        raise RuntimeError(f"diag_embed: diagonal dimensions cannot be identical {dim1}, {dim2}")
    return diag_embed_shape(self._shape, offset, dim1, dim2), self._dtype


def _meshgrid_meta(tensors, indexing=None):
    ts, shape, _ = meshgrid_layout(tensors, indexing)
    return [(shape, t._dtype) for t in ts]


def _declare():
    defop("cat(Tensor[] tensors, int dim=0) -> Tensor", meta=_cat_meta, out="cast")
    defop("concat(Tensor[] tensors, int dim=0) -> Tensor", meta=_cat_meta, out="cast")
    defop("concatenate(Tensor[] tensors, int axis=0) -> Tensor", meta=_cat_meta, out="cast")
    defop("stack(Tensor[] tensors, int dim=0) -> Tensor", meta=_stack_meta, out="cast")
    defop("hstack(Tensor[] tensors) -> Tensor", meta=_stack_like_meta("hstack", 1, None), out="cast")
    defop("vstack(Tensor[] tensors) -> Tensor", meta=_stack_like_meta("vstack", 2, 0), out="cast")
    defop("dstack(Tensor[] tensors) -> Tensor", meta=_stack_like_meta("dstack", 3, 2), out="cast")
    defop("repeat(Tensor self, int[]... repeats) -> Tensor", meta=_repeat_meta, method=True)
    defop("tile(Tensor self, int[]... dims) -> Tensor", meta=_tile_meta, method=True)
    defop("flip(Tensor self, int[]... dims) -> Tensor", meta=_flip_meta, method=True)
    defop("fliplr(Tensor self) -> Tensor", meta=_fliplr_meta, method=True)
    defop("flipud(Tensor self) -> Tensor", meta=_flipud_meta, method=True)
    defop("roll(Tensor self, int[] shifts, int[]? dims=None) -> Tensor", meta=_roll_meta, method=True)
    for name in ("tril", "triu", "tril_", "triu_"):
        ret = "Tensor(a!)" if name.endswith("_") else "Tensor"
        defop(f"{name}({ret} self, int diagonal=0) -> {ret}", meta=_tri_meta(name), method=True,
              out=None if name.endswith("_") else "exact")
    defop("sort(Tensor self, int dim=-1, bool descending=False, *, bool? stable=False) -> (Tensor, Tensor)",
          meta=_sort_meta, method=True)
    defop("argsort(Tensor self, int dim=-1, bool descending=False, *, bool stable=False) -> Tensor",
          meta=_argsort_meta, method=True)
    defop("topk(Tensor self, int k, int dim=-1, bool largest=True, bool sorted=True) -> (Tensor, Tensor)",
          meta=_topk_meta, method=True)
    defop("kthvalue(Tensor self, int k, int dim=-1, bool keepdim=False) -> (Tensor, Tensor)", meta=_kthvalue_meta,
          method=True)
    defop("unique(Tensor self, bool sorted=True, bool return_inverse=False, bool return_counts=False, "
          "int? dim=None) -> Any", meta=_unique_meta, method=True)
    defop("diag(Tensor self, int diagonal=0) -> Tensor", meta=_diag_meta, method=True, out="exact")
    defop("diag_embed(Tensor self, int offset=0, int dim1=-2, int dim2=-1) -> Tensor", meta=_diag_embed_meta,
          method=True)
    defop("meshgrid(Tensor[] tensors, *, str? indexing=None) -> Tensor[]", meta=_meshgrid_meta)


_declare()


def _front(name, kwname):
    """Lets a variadic `int[]...` op also take its list by keyword: flip(x, dims=(0,)) as well as x.flip(0, 1)."""
    op = OPS[name]
    inner = op.fn

    def front(self, *args, **kwargs):
        if not args and not kwargs:
            raise TypeError(f"{name}() missing 1 required positional arguments: \"{kwname}\"")
        if kwargs:
            if args or set(kwargs) != {kwname}:
                raise TypeError(f"{name}() takes the tensor and '{kwname}' (positionally or as {kwname}=...), "
                                f"got positional {args!r} and keywords {sorted(kwargs)}")
            args = (kwargs[kwname],)
        return inner(self, *args)
    _publish(name, front, inner)


def _publish(name, public, dispatch=None):
    """Makes `public` the op's user-facing function (`ember.<name>`, `ember.ops.<name>`, the method)."""
    op = OPS[name]
    public.__name__ = public.__qualname__ = name.split("::")[-1]
    public.__doc__ = public.__doc__ or op.fn.__doc__
    public._op = op
    public._dispatch = op.fn if dispatch is None else dispatch
    op.fn = public
    if op.method:
        setattr(Tensor, op.method, public)


def _composite(name, kernel, public=None):
    """An op that is a composition of other ops (PyTorch's CompositeImplicitAutograd).

    The user-facing function runs the composition directly, so each inner op dispatches (and is
    recorded by autograd) on its own; the kernel registered for every backend serves calls that
    come through the op table.
    """
    OPS[name].register(*_ALL)(kernel)
    _publish(name, public or kernel)


_front("flip", "dims")
_front("repeat", "repeats")


# ---- compositions ------------------------------------------------------------------------------

def _fn(name):
    return OPS[name].fn


def concat(tensors, dim=0, *, out=None):
    """Alias of cat."""
    return _fn("cat")(tensors, dim, out=out)


def concatenate(tensors, axis=0, *, out=None):
    """Alias of cat (NumPy's spelling)."""
    return _fn("cat")(tensors, axis, out=out)


def _atleast(t, n):
    """The tensor viewed with at least n dims, as numpy's atleast_1d/2d/3d place them."""
    shape = _atleast_shape(t._shape, n)
    return t if shape is t._shape else _fn("reshape")(t, *shape)


def hstack(tensors, *, out=None):
    """Concatenates along dim 0 if every tensor is (at most) 1-D, else along dim 1."""
    ts = [_atleast(t, 1) for t in _tensor_list("hstack", tensors)]
    return _fn("cat")(ts, 0 if all(len(t._shape) == 1 for t in ts) else 1, out=out)


def vstack(tensors, *, out=None):
    """Concatenates the tensors viewed as at least 2-D along dim 0."""
    return _fn("cat")([_atleast(t, 2) for t in _tensor_list("vstack", tensors)], 0, out=out)


def dstack(tensors, *, out=None):
    """Concatenates the tensors viewed as at least 3-D along dim 2."""
    return _fn("cat")([_atleast(t, 3) for t in _tensor_list("dstack", tensors)], 2, out=out)


# A composition's public function runs without the entry point, so it runs its op's meta itself.

def _tile_kernel(self, dims):
    _tile_meta(self, dims)
    dims = (1,) * (len(self._shape) - len(dims)) + tuple(dims)
    if not dims:  # a 0-dim tensor tiled by ()
        return _fn("clone")(self)
    return _fn("repeat")(self, *dims)


def tile(self, *dims, **kwargs):
    """tile(x, dims) / x.tile(*dims): repeat with dims padded by leading ones to x's rank."""
    if kwargs:
        if dims or set(kwargs) != {"dims"}:
            raise TypeError(f"tile() takes the tensor and 'dims', got keywords {sorted(kwargs)}")
        dims = (kwargs["dims"],)
    if not isinstance(self, Tensor):
        raise TypeError(f"tile(): argument 'self' must be Tensor, not {type(self).__name__}")
    return _tile_kernel(self, as_shape(dims, "tile dims"))


def fliplr(self):
    """Flips dim 1 (the columns) of a tensor with at least 2 dims."""
    _fliplr_meta(self)
    return _fn("flip")(self, 1)


def flipud(self):
    """Flips dim 0 (the rows) of a tensor with at least 1 dim."""
    _flipud_meta(self)
    return _fn("flip")(self, 0)


def _meshgrid_kernel(tensors, indexing=None):
    ts, out_shape, pos = meshgrid_layout(tensors, indexing)
    reshape, expand = _fn("reshape"), _fn("expand")
    out = []
    for t, p in zip(ts, pos):
        shape = [1] * len(ts)
        shape[p] = out_shape[p]
        out.append(expand(reshape(t, *shape), *out_shape))
    return tuple(out)


def meshgrid(*tensors, indexing=None):
    """meshgrid(a, b, ...) or meshgrid([a, b, ...]); indexing 'ij' (the default) or 'xy'. Returns views."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tensors[0]
    return _meshgrid_kernel(tensors, indexing)


_composite("concat", concat)
_composite("concatenate", concatenate)
_composite("hstack", hstack)
_composite("vstack", vstack)
_composite("dstack", dstack)
_composite("tile", _tile_kernel, tile)
_composite("fliplr", fliplr)
_composite("flipud", flipud)
_composite("meshgrid", _meshgrid_kernel, meshgrid)


# ---- derivatives ----------------------------------------------------------------------------------

def _derivatives():
    d = derivative
    d("cat", tensors="cat_backward(grad, tensors_shapes, dim)")
    d("stack", tensors="list(grad.unbind(dim))")
    d("repeat", self="repeat_backward(grad, self_shape, repeats)")
    d("flip", self="grad.flip(*dims)")
    d("roll", self="roll_backward(grad, shifts, dims)")
    d("tril", self="grad.tril(diagonal)")
    d("triu", self="grad.triu(diagonal)")
    d("sort", self="value_selecting_backward(grad, dim, result1, self_shape, True)")
    d("topk", self="value_selecting_backward(grad, dim, result1, self_shape, True)")
    d("kthvalue", self="value_selecting_backward(grad, dim, result1, self_shape, keepdim)")
    d("diag", self="diag_backward(grad, self_shape, diagonal)")
    d("diag_embed", self="grad.diagonal(offset, dim1, dim2)")
    nondifferentiable("argsort", "unique")


_derivatives()
