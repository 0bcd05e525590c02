"""Indexing ops: advanced indexing, gather/scatter, index_*, masked_*, take/put, embedding, one_hot.

`index(self, indices)` is aten::index: `indices` holds one entry per leading dim of `self`, an
integer (int64/int32) tensor or None for "the whole dim" (a bool/uint8 mask consumes as many dims
as it has). The index tensors broadcast together; as in NumPy/PyTorch, the indexed dims stay in
place when they are adjacent and move to the front when a full dim separates them.
`Tensor.__getitem__`/`__setitem__` (ops/operators.py) reduce a Python index to one view plus such a
list and call `index` / `index_put_`.

Index dtypes follow PyTorch op by op: `index`/`index_put_` take int64/int32 and bool/uint8 masks;
`index_select`, `gather`, `scatter*`, `index_add`, `embedding` take int64/int32; `index_copy`,
`index_fill`, `take`, `put_` and `one_hot` take int64 only.

The op's rules live here, once: the `meta=` functions, which the entry point runs before any
kernel, check the arguments (with PyTorch's exception types) and give the result's shape and dtype;
the public helpers are the rules several metas share, and the ones the kernels need too
(`fill_scalar`, `index_entries`). Index *values* are data: an index out of range is found by the
kernels (the CPU raises, CUDA records it in the device's error word), never here. Results whose size
depends on the data (nonzero, argwhere, masked_select, a boolean-mask index, one_hot with
num_classes=-1) have None in their shape.
"""
from __future__ import annotations

from functools import partial

from .._tensor import Tensor
from ..core import dtype as D
from ..core.shape import broadcast_shapes, normalize_dim, numel
from ..dispatch import OPS, defop
from ..autograd.derivatives import derivative, nondifferentiable

__all__ = ["nonzero", "argwhere"]


# ---- rules shared by several metas (and, for values and index lists, by the kernels) -----------------

def check_index_dtype(op: str, index: Tensor, long_only: bool = False, exc: type = RuntimeError) -> None:
    """`index` must be int64, or int64/int32 unless `long_only` (PyTorch's choice op by op)."""
    dt = index._dtype
    if dt is D.int64 or (dt is D.int32 and not long_only):
        return
    if long_only:
        raise exc(f"{op}(): Expected a long (int64) tensor for index, but got {dt}")
    raise exc(f"{op}(): Expected dtype int32/int64 for index, but got {dt}")


def check_vector_index(op: str, index: Tensor, exc: type = IndexError) -> None:
    if len(index._shape) > 1:
        raise exc(f"{op}(): Index is supposed to be a vector (0-D or 1-D), but got a tensor of shape "
                  f"{list(index._shape)}")


def check_same_dtype(op: str, self: Tensor, other: Tensor, what: str = "source") -> None:
    if other._dtype is not self._dtype:
        raise RuntimeError(f"{op}(): self and {what} must have the same dtype, but got self.dtype = {self._dtype} "
                           f"and {what}.dtype = {other._dtype}")


def check_mask(op: str, mask: Tensor) -> None:
    if mask._dtype is not D.bool:
        raise RuntimeError(f"{op} only supports boolean masks, but got mask with dtype {mask._dtype}")


def masked_shape(op: str, self: Tensor, mask: Tensor, inplace: bool = False) -> tuple:
    """The result shape of a masked op: self and mask broadcast together; in place, the mask must
    broadcast to self's shape (self does not grow)."""
    try:
        shape = broadcast_shapes(self._shape, mask._shape)
    except RuntimeError as e:
        raise RuntimeError(f"{op}: {e}") from None
    if inplace and shape != self._shape:
        raise RuntimeError(f"{op}: the mask of shape {list(mask._shape)} cannot be broadcast to self's shape "
                           f"{list(self._shape)}")
    return shape


def fill_scalar(op: str, value, dt):
    """A Python scalar as a Python value of dtype `dt`, converted as c10 does (`core.dtype.checked_scalar`)."""
    return D.checked_scalar(op, value, dt)


def check_fill_value(op: str, value, dt) -> None:
    """index_fill/masked_fill/scatter's value: a 0-dim tensor or a Python scalar that `dt` holds
    (a tensor's value is data: the kernels convert it with fill_scalar)."""
    if isinstance(value, Tensor):
        if value._shape:
            raise RuntimeError(f"{op} only supports a 0-dimensional value tensor, but got tensor with "
                               f"{len(value._shape)} dimension(s)")
    else:
        fill_scalar(op, value, dt)


def index_entries(op: str, self: Tensor, indices) -> list:
    """Checks an aten index list against self; returns its tensors as (position in the list, first
    dim they index, number of dims they consume, tensor, is a mask)."""
    shape = self._shape
    nd = len(shape)
    entries = []
    dim = 0
    for k, t in enumerate(indices):
        if t is None:
            dim += 1
            continue
        dt = t._dtype
        if dt is D.int64 or dt is D.int32:
            entries.append((k, dim, 1, t, False))
            dim += 1
        elif dt is D.bool or dt is D.uint8:
            m = len(t._shape)
            for j in range(m):
                if dim + j >= nd or t._shape[j] != shape[dim + j]:
                    raise IndexError(f"{op}(): The shape of the mask {list(t._shape)} at index {j} does not match "
                                     f"the shape of the indexed tensor {list(shape)} at index {dim + j}")
            entries.append((k, dim, m, t, True))
            dim += m
        else:
            raise IndexError(f"{op}(): tensors used as indices must be long, int, byte or bool tensors, got {dt}")
    if dim > nd:
        raise IndexError(f"{op}(): too many indices for tensor of dimension {nd} (got {dim})")
    return entries


def index_shape(op: str, self: Tensor, entries) -> tuple:
    """The shape of self[indices] (NumPy's rule): the index tensors' broadcast shape replaces the
    indexed dims where the index tensors are adjacent in the list, else it comes first. A mask
    stands for the 1-D index of its true elements, of unknown length: None, which agrees with any
    size (a count that does not is the kernel's to find)."""
    shape = self._shape
    if len(entries) <= 1:  # the common x[i] / x[mask]: nothing to broadcast, and adjacent
        if not entries:
            return shape
        _, d0, m, t, is_mask = entries[0]
        return shape[:d0] + ((None,) if is_mask else t._shape) + shape[d0 + m:]
    try:
        batch = broadcast_shapes((), *[t._shape for _, _, _, t, is_mask in entries if not is_mask])
    except RuntimeError:
        raise IndexError(f"{op}(): shape mismatch: indexing tensors could not be broadcast together with "
                         f"shapes {', '.join(str(list(t._shape)) for _, _, _, t, _ in entries)}") from None
    if any(is_mask for *_, is_mask in entries) and (not batch or batch[-1] == 1):
        batch = batch[:-1] + (None,)
    first, last = entries[0], entries[-1]
    if last[0] - first[0] == len(entries) - 1:
        return shape[:first[1]] + batch + shape[last[1] + last[2]:]
    taken = {d for _, d0, m, _, _ in entries for d in range(d0, d0 + m)}
    return batch + tuple(n for d, n in enumerate(shape) if d not in taken)


def scatter_dim(op: str, self: Tensor, dim: int, index: Tensor, src) -> int:
    """The scatter family's rules (scatter, scatter_add, scatter_reduce; `src` a tensor or None for
    a scalar); the normalised dim. index fits in self (but for dim `d`) and in src; an empty index
    is not measured, as in PyTorch."""
    check_index_dtype(op, index)
    nd = len(self._shape)
    d = normalize_dim(dim, nd)
    ndi = max(len(index._shape), 1)
    if ndi != max(nd, 1):
        raise RuntimeError(f"{op}(): Index tensor must have the same number of dimensions as self tensor "
                           f"(index shape {list(index._shape)}, self shape {list(self._shape)})")
    if src is not None:
        if src._dtype is not self._dtype:
            raise RuntimeError(f"{op}(): Expected self.dtype to be equal to src.dtype, but got {self._dtype} "
                               f"and {src._dtype}")
        if max(len(src._shape), 1) != ndi:
            raise RuntimeError(f"{op}(): Index tensor must have the same number of dimensions as src tensor "
                               f"(index shape {list(index._shape)}, src shape {list(src._shape)})")
    if not numel(index._shape):
        return d
    shape, ishape = self._shape or (1,), index._shape or (1,)
    sshape = (src._shape or (1,)) if src is not None else None
    for k in range(ndi):
        if (k != d and ishape[k] > shape[k]) or (sshape is not None and ishape[k] > sshape[k]):
            raise RuntimeError(f"{op}(): Expected index {list(ishape)} to be no larger than self {list(shape)} "
                               f"apart from dimension {d}" +
                               (f" and to be no larger size than src {list(sshape)}" if sshape is not None else ""))
    return d


# ---- metas: advanced indexing, nonzero ---------------------------------------------------------------
# Each returns the result's (shape, dtype); an in-place form returns self's. The metas of ops with an
# out-of-place and an in-place form take the op's name first (bound with partial at declaration).

def _meta_index(self, indices):
    return index_shape("index", self, index_entries("index", self, indices)), self._dtype


def _meta_index_put(op, self, indices, values, accumulate=False):
    if values._dtype is not self._dtype:
        raise RuntimeError(f"{op}(): Index put requires the source and destination dtypes match, got "
                           f"{self._dtype} for the destination and {values._dtype} for the source")
    res = index_shape(op, self, index_entries(op, self, indices))
    vshape = values._shape
    if not vshape or vshape == res:
        return self._shape, self._dtype
    while len(vshape) > len(res) and vshape[0] == 1:  # leading ones go, as `x[i] = v` drops them
        vshape = vshape[1:]
    off = len(res) - len(vshape)
    if off < 0 or any(a != 1 and b is not None and a != b for a, b in zip(vshape, res[off:])):
        raise RuntimeError(f"{op}(): shape mismatch: value tensor of shape {list(values._shape)} cannot be broadcast "
                           f"to indexing result of shape {list(res)}")
    return self._shape, self._dtype


def _meta_nonzero(self):
    return (None, len(self._shape)), D.int64


# ---- metas: gather, scatter ----------------------------------------------------------------------------

def _meta_index_select(self, dim, index):
    check_index_dtype("index_select", index)
    check_vector_index("index_select", index)
    d = normalize_dim(dim, len(self._shape))
    n = numel(index._shape)
    if not self._shape:
        if n != 1:
            raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {n} value(s)")
        return (), self._dtype
    return self._shape[:d] + (n,) + self._shape[d + 1:], self._dtype


def _meta_gather(self, dim, index, sparse_grad=False):
    check_index_dtype("gather", index)
    nd = len(self._shape)
    d = normalize_dim(dim, nd)
    if max(nd, 1) != max(len(index._shape), 1):
        raise RuntimeError(f"gather(): Index tensor must have the same number of dimensions as input tensor "
                           f"(index shape {list(index._shape)}, input shape {list(self._shape)})")
    if numel(index._shape):
        shape, ishape = self._shape or (1,), index._shape or (1,)
        for k in range(len(shape)):
            if k != d and ishape[k] > shape[k]:
                raise RuntimeError(f"gather(): Size does not match at dimension {k} expected index {list(ishape)} "
                                   f"to be no larger than self {list(shape)} apart from dimension {d}")
    return index._shape, self._dtype


def _meta_scatter(op, self, dim, index, src=None, value=None, reduce=None):
    if src is None:
        if value is None:
            raise TypeError(f"{op}(): expected a `src` tensor or a scalar `value`")
        src = value
    elif value is not None:
        raise TypeError(f"{op}(): got both `src` and `value`; pass one of them")
    if reduce is not None and reduce not in ("add", "multiply"):
        raise RuntimeError(f"{op}(): reduce argument must be either 'add' or 'multiply', got {reduce!r}")
    if isinstance(src, Tensor):
        scatter_dim(op, self, dim, index, src)
    else:
        fill_scalar(op, src, self._dtype)
        scatter_dim(op, self, dim, index, None)
    return self._shape, self._dtype


def _meta_scatter_add(op, self, dim, index, src):
    scatter_dim(op, self, dim, index, src)
    return self._shape, self._dtype


def _meta_scatter_reduce(op, self, dim, index, src, reduce, include_self=True):
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise RuntimeError(f"{op}(): reduce argument must be either sum, prod, mean, amax or amin, got {reduce!r}")
    if reduce == "mean" and self._dtype is D.bool:
        raise NotImplementedError(f"{op}(): reduce='mean' is not implemented for bool tensors")
    scatter_dim(op, self, dim, index, src)
    return self._shape, self._dtype


# ---- metas: index_add / index_copy / index_fill ---------------------------------------------------------

def _meta_index_add(op, self, dim, index, source, alpha=1):
    """index_add(_) and index_copy(_): a vector index and a source shaped like self but for dim d, of
    size len(index). index_add wants equal dims; index_copy lets a 0-dim side act as 1-D and raises
    IndexError where PyTorch does."""
    copy = op.startswith("index_copy")
    check_index_dtype(op, index, long_only=copy)
    check_vector_index(op, index)
    check_same_dtype(op, self, source)
    d = normalize_dim(dim, len(self._shape))
    n = numel(index._shape)
    sshape, shape = source._shape or (1,), self._shape or (1,)
    if len(sshape) != len(shape) or (not copy and len(source._shape) != len(self._shape)):
        raise (IndexError if copy else RuntimeError)(
            f"{op}(): source must have as many dimensions as self, got source shape {list(source._shape)} and "
            f"self shape {list(self._shape)}")
    if sshape[d] != n:
        raise (IndexError if copy else RuntimeError)(
            f"{op}(): Number of indices ({n}) should be equal to source.size(dim) ({sshape[d]}), for dim: {d}")
    for k in range(len(sshape)):
        if k != d and sshape[k] != shape[k]:
            raise RuntimeError(f"{op}(): source tensor shape must match self tensor shape, excluding the specified "
                               f"dimension {d}. Got self.shape = {list(self._shape)} "
                               f"source.shape = {list(source._shape)}")
    return self._shape, self._dtype


def _meta_index_copy(op, self, dim, index, source):
    return _meta_index_add(op, self, dim, index, source)


def _meta_index_fill(op, self, dim, index, value):
    check_index_dtype(op, index, long_only=True, exc=IndexError)
    check_vector_index(op, index, RuntimeError)
    normalize_dim(dim, len(self._shape))
    check_fill_value(op, value, self._dtype)
    return self._shape, self._dtype


# ---- metas: masked ops ----------------------------------------------------------------------------------

def _meta_masked_fill(op, self, mask, value):
    check_mask(op, mask)
    check_fill_value(op, value, self._dtype)
    return masked_shape(op, self, mask, op.endswith("_")), self._dtype


def _meta_masked_scatter(op, self, mask, source):
    check_mask(op, mask)
    check_same_dtype(op, self, source)
    return masked_shape(op, self, mask, op.endswith("_")), self._dtype


def _meta_masked_select(self, mask):
    check_mask("masked_select", mask)
    masked_shape("masked_select", self, mask)
    return (None,), self._dtype


# ---- metas: take / put / embedding / one_hot ----------------------------------------------------------------

def _meta_put(op, self, index, source, accumulate=False):
    check_index_dtype(op, index, long_only=True)
    check_same_dtype(op, self, source)
    n = numel(index._shape)
    if n != numel(source._shape):
        raise IndexError(f"{op}(): Expected source and index to have the same number of elements, but got "
                         f"source.numel() = {numel(source._shape)}, index.numel() = {n}")
    if n and not numel(self._shape):
        raise IndexError(f"{op}(): Tried to put elements into an empty tensor")
    return self._shape, self._dtype


def _meta_take(self, index):
    check_index_dtype("take", index, long_only=True)
    if numel(index._shape) and not numel(self._shape):
        raise IndexError("take(): tried to take from an empty tensor")
    return index._shape, self._dtype


def _meta_embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    if len(weight._shape) != 2:
        raise RuntimeError(f"embedding(): 'weight' must be 2-D, got shape {list(weight._shape)}")
    if indices._dtype is not D.int64 and indices._dtype is not D.int32:
        raise RuntimeError(f"embedding(): Expected tensor for argument 'indices' to have one of the following "
                           f"scalar types: Long, Int; but got {indices._dtype} instead")
    return indices._shape + weight._shape[1:], weight._dtype


def _meta_one_hot(self, num_classes=-1):
    """An int64 input and a usable num_classes (-1: inferred from the data, so the last size is None;
    an empty input cannot infer it). The class values themselves are the kernels' to check."""
    if self._dtype is not D.int64:
        raise RuntimeError(f"one_hot is only applicable to index tensor of type int64 (LongTensor), got {self._dtype}")
    if not numel(self._shape):
        if num_classes <= 0:
            raise RuntimeError("one_hot(): Can not infer total number of classes from empty tensor.")
    elif num_classes < -1 or num_classes == 0:
        raise RuntimeError(f"one_hot(): Class values must be smaller than num_classes ({num_classes}); "
                           f"num_classes must be -1 (inferred) or positive")
    return self._shape + (None if num_classes == -1 else num_classes,), D.int64


# (name, arguments after self, meta): ops declared with an out-of-place and an in-place form
_PAIRS = (
    ("index_put", "Tensor?[] indices, Tensor values, bool accumulate=False", _meta_index_put),
    ("scatter", "int dim, Tensor index, Tensor|Scalar? src=None, *, Scalar? value=None, str? reduce=None",
     _meta_scatter),
    ("scatter_add", "int dim, Tensor index, Tensor src", _meta_scatter_add),
    ("scatter_reduce", "int dim, Tensor index, Tensor src, str reduce, *, bool include_self=True",
     _meta_scatter_reduce),
    ("index_add", "int dim, Tensor index, Tensor source, *, Scalar alpha=1", _meta_index_add),
    ("index_copy", "int dim, Tensor index, Tensor source", _meta_index_copy),
    ("index_fill", "int dim, Tensor index, Tensor|Scalar value", _meta_index_fill),
    ("masked_fill", "Tensor mask, Tensor|Scalar value", _meta_masked_fill),
    ("masked_scatter", "Tensor mask, Tensor source", _meta_masked_scatter),
    ("put", "Tensor index, Tensor source, bool accumulate=False", _meta_put),
)


def _declare():
    defop("index(Tensor self, Tensor?[] indices) -> Tensor", meta=_meta_index)
    # Out-of-place and in-place forms; scatter(dim, index, src) also takes a Python scalar `src`
    # or `value=`, as torch.scatter's two overloads do.
    for name, params, meta in _PAIRS:
        defop(f"{name}(Tensor self, {params}) -> Tensor", meta=partial(meta, name), method=True)
        defop(f"{name}_(Tensor(a!) self, {params}) -> Tensor(a!)", meta=partial(meta, name + "_"), method=True)
    # Tensor.nonzero / as_tuple: the composite below
    defop("nonzero(Tensor self) -> Tensor", meta=_meta_nonzero, out="exact")
    defop("argwhere(Tensor self) -> Tensor", meta=_meta_nonzero, method=True)
    defop("index_select(Tensor self, int dim, Tensor index) -> Tensor", meta=_meta_index_select, method=True,
          out="exact")
    defop("gather(Tensor self, int dim, Tensor index, *, bool sparse_grad=False) -> Tensor", meta=_meta_gather,
          method=True, out="exact")
    defop("masked_select(Tensor self, Tensor mask) -> Tensor", meta=_meta_masked_select, method=True, out="exact")
    defop("take(Tensor self, Tensor index) -> Tensor", meta=_meta_take, method=True, out="exact")
    defop("embedding(Tensor weight, Tensor indices, int padding_idx=-1, bool scale_grad_by_freq=False, "
          "bool sparse=False) -> Tensor", meta=_meta_embedding)
    defop("one_hot(Tensor self, int num_classes=-1) -> Tensor", meta=_meta_one_hot)

_declare()
_nonzero = OPS["nonzero"].fn
_empty = OPS["empty"].fn
argwhere = OPS["argwhere"].fn


def nonzero(input: Tensor, *, as_tuple: bool = False, out=None):
    """Indices of the non-zero elements: an int64 tensor [n, ndim], or with as_tuple=True one
    1-D index tensor per dim (a 0-d input counts as 1-D, as in PyTorch)."""
    if not as_tuple:
        return _nonzero(input, out=out)
    if out is not None:
        raise RuntimeError("nonzero(): as_tuple=True does not take out= (as in PyTorch)")
    if not input._shape:
        input = input.reshape(1)
    r = _nonzero(input)
    if not r._shape[0]:  # fresh empties: views of an empty result would point past its storage
        return tuple(_empty(0, dtype=D.int64, device=input.device) for _ in range(r._shape[1]))
    return r.unbind(1)


Tensor.nonzero = nonzero


# ---- derivatives ----------------------------------------------------------------------------------

def _derivatives():
    d = derivative
    d("index", self="index_backward(grad, self_shape, indices)")
    for name in ("index_put", "index_put_"):
        d(name, self="grad if accumulate else index_put(grad, indices, zeros_for(grad, ()), False)",
          values="index(grad, indices)")
    d("index_select", self="index_add(zeros_for(grad, self_shape), dim, index, grad)")
    d("gather", self="scatter_add(zeros_for(grad, self_shape), dim, index, grad)")
    d("scatter", self="scatter(grad, dim, index, 0.0)", src="grad.gather(dim, index)")
    d("scatter_add", self="grad", src="grad.gather(dim, index)")
    d("scatter_reduce", self="scatter_reduce_backward(grad, self, index, dim, reduce, include_self, True)",
      src="scatter_reduce_backward(grad, self, index, dim, reduce, include_self, False)")
    d("index_add", self="grad", source="grad.index_select(dim, index) * alpha")
    d("index_copy", self="grad.index_fill(dim, index, 0.0)", source="grad.index_select(dim, index)")
    d("index_fill", self="grad.index_fill(dim, index, 0.0)", value="grad.index_select(dim, index).sum()")
    d("masked_fill", self="grad.masked_fill(mask, 0.0)", value="where(mask, grad, 0.0).sum()")
    d("masked_scatter", self="grad.masked_fill(mask, 0.0)", source="masked_scatter_backward(grad, mask, source_shape)")
    d("put", self="grad if accumulate else grad.put(index, zeros_for(grad, index.shape), False)",
      source="grad.take(index)")
    d("masked_select", self="masked_select_backward(grad, self_shape, mask)")
    d("take", self="put(zeros_for(grad, self_shape), index, grad, True)")
    d("embedding", weight="embedding_backward(grad, weight_shape, indices, padding_idx, scale_grad_by_freq)")
    nondifferentiable("nonzero", "argwhere", "one_hot")


_derivatives()
