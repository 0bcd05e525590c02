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
from ..core.shape import as_shape
from ..dispatch import OPS, defop

__all__ = ["sort_result", "topk_result", "kthvalue_result"]

_ALL = ("cpu", "cuda")

# torch.return_types.sort / topk / kthvalue
sort_result = namedtuple("sort", ["values", "indices"])
topk_result = namedtuple("topk", ["values", "indices"])
kthvalue_result = namedtuple("kthvalue", ["values", "indices"])


def _declare():
    defop("cat(Tensor[] tensors, int dim=0) -> Tensor")
    defop("concat(Tensor[] tensors, int dim=0) -> Tensor")
    defop("concatenate(Tensor[] tensors, int axis=0) -> Tensor")
    defop("stack(Tensor[] tensors, int dim=0) -> Tensor")
    defop("hstack(Tensor[] tensors) -> Tensor")
    defop("vstack(Tensor[] tensors) -> Tensor")
    defop("dstack(Tensor[] tensors) -> Tensor")
    defop("repeat(Tensor self, int[]... repeats) -> Tensor", method=True)
    defop("tile(Tensor self, int[]... dims) -> Tensor", method=True)
    defop("flip(Tensor self, int[]... dims) -> Tensor", method=True)
    defop("fliplr(Tensor self) -> Tensor", method=True)
    defop("flipud(Tensor self) -> Tensor", method=True)
    defop("roll(Tensor self, int[] shifts, int[]? dims=None) -> Tensor", method=True)
    defop("tril(Tensor self, int diagonal=0) -> Tensor", method=True)
    defop("triu(Tensor self, int diagonal=0) -> Tensor", method=True)
    defop("tril_(Tensor(a!) self, int diagonal=0) -> Tensor(a!)", method=True)
    defop("triu_(Tensor(a!) self, int diagonal=0) -> Tensor(a!)", method=True)
    defop("sort(Tensor self, int dim=-1, bool descending=False, *, bool? stable=False) -> (Tensor, Tensor)",
          method=True)
    defop("argsort(Tensor self, int dim=-1, bool descending=False, *, bool stable=False) -> Tensor", method=True)
    defop("topk(Tensor self, int k, int dim=-1, bool largest=True, bool sorted=True) -> (Tensor, Tensor)",
          method=True)
    defop("kthvalue(Tensor self, int k, int dim=-1, bool keepdim=False) -> (Tensor, Tensor)", method=True)
    defop("unique(Tensor self, bool sorted=True, bool return_inverse=False, bool return_counts=False, "
          "int? dim=None) -> Any", method=True)
    defop("diag(Tensor self, int diagonal=0) -> Tensor", method=True)
    defop("diag_embed(Tensor self, int offset=0, int dim1=-2, int dim2=-1) -> Tensor", method=True)
    defop("meshgrid(Tensor[] tensors, *, str? indexing=None) -> Tensor[]")


_declare()


def _front(name, kwname):
    """Lets a variadic `int[]...` op also take its list by keyword: flip(x, dims=(0,)) as well as x.flip(0, 1)."""
    op = OPS[name]
    inner = op.fn

    def front(self, *args, **kwargs):
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


def concat(tensors, dim=0):
    """Alias of cat."""
    return _fn("cat")(tensors, dim)


def concatenate(tensors, axis=0):
    """Alias of cat (NumPy's spelling)."""
    return _fn("cat")(tensors, axis)


def _atleast(t, n):
    """The tensor viewed with at least n dims, as numpy's atleast_1d/2d/3d place them."""
    s = t._shape
    if len(s) >= n:
        return t
    if n == 3 and len(s) == 2:
        return _fn("reshape")(t, s[0], s[1], 1)
    if n == 3 and len(s) == 1:
        return _fn("reshape")(t, 1, s[0], 1)
    return _fn("reshape")(t, *((1,) * (n - len(s)) + s))


def _as_list(name, tensors):
    if isinstance(tensors, Tensor):
        raise TypeError(f"{name}(): argument 'tensors' must be a sequence of Tensors, not Tensor")
    tensors = list(tensors)
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): argument 'tensors' must contain only Tensors, got {type(t).__name__}")
    if not tensors:
        raise RuntimeError(f"{name} expects a non-empty TensorList")
    return tensors


def hstack(tensors):
    """Concatenates along dim 0 if every tensor is (at most) 1-D, else along dim 1."""
    ts = [_atleast(t, 1) for t in _as_list("hstack", tensors)]
    return _fn("cat")(ts, 0 if all(len(t._shape) == 1 for t in ts) else 1)


def vstack(tensors):
    """Concatenates the tensors viewed as at least 2-D along dim 0."""
    return _fn("cat")([_atleast(t, 2) for t in _as_list("vstack", tensors)], 0)


def dstack(tensors):
    """Concatenates the tensors viewed as at least 3-D along dim 2."""
    return _fn("cat")([_atleast(t, 3) for t in _as_list("dstack", tensors)], 2)


def _tile_kernel(self, dims):
    n = len(self._shape)
    if any(d < 0 for d in dims):
        raise RuntimeError(f"tile: Trying to create tensor with negative dimension: dims must be non-negative, "
                           f"got {list(dims)}")
    dims = (1,) * (n - len(dims)) + tuple(dims)
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
    if len(self._shape) < 2:
        raise RuntimeError(f"fliplr: Input must be >= 2-d, got a {len(self._shape)}-d tensor")
    return _fn("flip")(self, 1)


def flipud(self):
    """Flips dim 0 (the rows) of a tensor with at least 1 dim."""
    if len(self._shape) < 1:
        raise RuntimeError("flipud: Input must be >= 1-d, got a 0-d tensor")
    return _fn("flip")(self, 0)


def _meshgrid_kernel(tensors, indexing=None):
    ts = _as_list("meshgrid", tensors)
    if indexing is None:
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be one of 'ij' or 'xy', got {indexing!r}")
    dt = ts[0]._dtype
    for i, t in enumerate(ts):
        if len(t._shape) > 1:
            raise RuntimeError(f"meshgrid: Expected 0D or 1D tensor in the tensor list but got a {len(t._shape)}-D "
                               f"tensor at position {i}")
        if t._dtype is not dt:
            raise RuntimeError(f"meshgrid expects all tensors to have the same dtype, got {dt} (position 0) and "
                               f"{t._dtype} (position {i})")
    sizes = [t._shape[0] if t._shape else 1 for t in ts]
    pos = list(range(len(ts)))
    if indexing == "xy" and len(ts) >= 2:
        pos[0], pos[1] = 1, 0
    out_shape = [0] * len(ts)
    for i, p in enumerate(pos):
        out_shape[p] = sizes[i]
    reshape, expand = _fn("reshape"), _fn("expand")
    out = []
    for i, t in enumerate(ts):
        shape = [1] * len(ts)
        shape[pos[i]] = sizes[i]
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
    from ..autograd.derivatives import derivative as d, nondifferentiable
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
