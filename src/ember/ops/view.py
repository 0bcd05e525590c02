"""View ops: new sizes/strides/offset over the same storage, never a copy.

The geometry is backend-independent, so one kernel serves every device. Each view shares its
base's Storage, hence its version counter, and records `_base`.
"""
from __future__ import annotations

import functools
import operator

from .._tensor import Tensor
from ..core import dtype as D
from ..core.layout import contiguous_format, preserve_format
from ..core.shape import contiguous_strides, normalize_dim, normalize_dims, numel
from ..dispatch import OPS, defop
from ..autograd.derivatives import derivative

_ALL = ("cpu", "cuda")


def infer_size(shape: tuple, n: int) -> tuple:
    """Resolves one -1 in `shape` for a tensor of `n` elements."""
    known, neg = 1, -1
    for i, s in enumerate(shape):
        if s >= 0:
            known *= s
        elif s != -1:
            raise RuntimeError(f"invalid shape dimension {s} at index {i} of shape {list(shape)}")
        elif neg >= 0:
            raise RuntimeError(f"only one dimension can be inferred, got shape {list(shape)}")
        else:
            neg = i
    if neg >= 0:
        if known == 0:
            raise RuntimeError(f"cannot reshape tensor of {n} elements into shape {list(shape)} because the "
                               f"unspecified dimension size -1 can be any value and is ambiguous")
        if n % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {n}")
        return shape[:neg] + (n // known,) + shape[neg + 1:]
    if known != n:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {n}")
    return shape


def view_strides(old_shape, old_stride, new_shape):
    """Strides that let `new_shape` view memory laid out as (old_shape, old_stride), or None.

    ATen's computeStride: walk both shapes from the right, matching each run of dimensions that
    is contiguous in the old layout ("chunk") against new dimensions of the same total size.
    """
    if not old_shape:
        return contiguous_strides(new_shape)
    if numel(old_shape) == 0:
        return tuple(old_stride) if tuple(old_shape) == tuple(new_shape) else contiguous_strides(new_shape)
    if old_stride == contiguous_strides(old_shape):  # contiguous: the common case
        return contiguous_strides(new_shape)
    new_stride = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base = old_stride[-1]
    tensor_numel = view_numel = 1
    for d in range(len(old_shape) - 1, -1, -1):
        tensor_numel *= old_shape[d]
        if d == 0 or (old_shape[d - 1] != 1 and old_stride[d - 1] != tensor_numel * chunk_base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_stride[view_d] = view_numel * chunk_base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                chunk_base = old_stride[d - 1]
                tensor_numel = view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_stride)


def _view_impl(self, size):
    shape = infer_size(size, numel(self._shape))
    stride = view_strides(self._shape, self._stride, shape)
    if stride is None:
        raise RuntimeError(
            f"view size is not compatible with input tensor's size and stride (at least one dimension spans "
            f"across two contiguous subspaces): size {list(self._shape)} with stride {list(self._stride)} can't be "
            f"viewed as {list(shape)}; use .reshape(...) instead, or call .contiguous() before .view()")
    return self._as_view(shape, stride, self._offset)


def view_dtype_geometry(self, dtype):
    """ATen's view(dtype): equal element sizes keep the geometry; otherwise the last dim (stride 1)
    is split into, or merged from, elements of the new size, and the other strides scale."""
    old, new = self._dtype.itemsize, dtype.itemsize
    if old == new:
        return self._shape, self._stride, self._offset
    what = f"to view {self._dtype} as {dtype} (different element sizes)"
    if not self._shape:
        raise RuntimeError(f"self.dim() cannot be 0 {what}")
    if self._stride[-1] != 1:
        raise RuntimeError(f"self.stride(-1) must be 1 {what}, but got {self._stride[-1]}")
    if old > new:
        r = old // new
        return (self._shape[:-1] + (self._shape[-1] * r,), tuple(s * r for s in self._stride[:-1]) + (1,),
                self._offset * r)
    r = new // old
    if self._shape[-1] % r:
        raise RuntimeError(f"self.size(-1) must be divisible by {r} {what}, but got {self._shape[-1]}")
    if self._offset % r:
        raise RuntimeError(f"self.storage_offset() must be divisible by {r} {what}, but got {self._offset}")
    for i, st in enumerate(self._stride[:-1]):
        if st % r:
            raise RuntimeError(f"self.stride({i}) must be divisible by {r} {what}, but got {st}")
    return (self._shape[:-1] + (self._shape[-1] // r,), tuple(st // r for st in self._stride[:-1]) + (1,),
            self._offset // r)


def _view_dtype_impl(self, dtype):
    t = self._as_view(*view_dtype_geometry(self, dtype))
    t._dtype = dtype
    return t


def _reshape_impl(self, shape):
    shape = infer_size(shape, numel(self._shape))
    stride = view_strides(self._shape, self._stride, shape)
    if stride is not None:
        return self._as_view(shape, stride, self._offset)
    c = OPS["clone"].fn(self, memory_format=contiguous_format)  # a fresh C-contiguous copy: not a view of anything
    r = c._as_view(shape, contiguous_strides(shape), 0)
    r._base = None
    return r


def _as_strided_impl(self, size, stride, storage_offset=None):
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise RuntimeError(f"as_strided: mismatch in length of strides and shape: size {list(size)} has "
                           f"{len(size)} dims, stride {list(stride)} has {len(stride)}")
    if any(s < 0 for s in size):
        raise RuntimeError(f"as_strided: Trying to create tensor with negative dimension: size {list(size)}")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"as_strided: Negative strides are not supported at the moment, got strides: "
                           f"{list(stride)}")
    off = self._offset if storage_offset is None else storage_offset
    if off < 0:
        raise RuntimeError(f"as_strided: invalid storage offset {off} (must be >= 0)")
    if numel(size):
        last = off + sum((n - 1) * s for n, s in zip(size, stride))
        if last * self._dtype.itemsize + self._dtype.itemsize > self._storage.nbytes:
            raise RuntimeError(f"as_strided: size {list(size)}, stride {list(stride)} and storage offset {off} "
                               f"reach element {last}, out of bounds for the storage of "
                               f"{self._storage.nbytes // self._dtype.itemsize} elements")
    return self._as_view(size, stride, off)


# The kernels below that take dims wrap them without checking (`dim % n`): their checks are the
# `_*_check` functions, which the op's meta runs (the dispatcher caches it per shape and arguments).

def _transpose_check(self, dim0, dim1):
    n = len(self._shape)
    normalize_dim(dim0, n), normalize_dim(dim1, n)


def _transpose_impl(self, dim0, dim1):
    n = len(self._shape)
    if n == 0:
        return self._as_view((), (), self._offset)
    d0, d1 = dim0 % n, dim1 % n
    shape, stride = list(self._shape), list(self._stride)
    shape[d0], shape[d1] = shape[d1], shape[d0]
    stride[d0], stride[d1] = stride[d1], stride[d0]
    return self._as_view(tuple(shape), tuple(stride), self._offset)


def _permute_check(self, dims):
    n = len(self._shape)
    if len(dims) != n:
        raise RuntimeError(f"permute: number of dims {len(dims)} doesn't match the tensor's {n} dimensions "
                           f"(dims={list(dims)}, shape={list(self._shape)})")
    normalize_dims(dims, n)


def _permute_impl(self, dims):
    n = len(self._shape)
    dims = [d % n for d in dims]
    return self._as_view(tuple(self._shape[d] for d in dims), tuple(self._stride[d] for d in dims), self._offset)


def _expand_impl(self, size):
    n, m = len(size), len(self._shape)
    if n < m:
        raise RuntimeError(f"expand: the number of sizes provided ({n}) must be greater or equal to the number "
                           f"of dimensions in the tensor ({m})")
    shape, stride = [0] * n, [0] * n
    # ATen's inferExpandGeometry: walk from the right; a new leading dim of size 1 gets the stride
    # that would make it contiguous with the dims after it, an expanded dim gets stride 0
    for i in range(n - 1, -1, -1):
        s = size[i]
        j = i - (n - m)
        if j >= 0:
            cur, cur_stride = self._shape[j], self._stride[j]
        else:
            cur, cur_stride = 1, (shape[i + 1] * stride[i + 1] if i + 1 < n and m else 0)
        if s == -1:
            if j < 0:
                raise RuntimeError(f"expand: the expanded size -1 isn't allowed in a leading, non-existing "
                                   f"dimension {i} (sizes {list(size)})")
            s = cur
        elif s < 0:
            raise RuntimeError(f"expand: invalid size {s} at dimension {i} (sizes {list(size)})")
        if cur != s:
            if cur != 1:
                raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing size ({cur}) at "
                                   f"non-singleton dimension {i}. Target sizes: {list(size)}. "
                                   f"Tensor sizes: {list(self._shape)}")
            cur_stride = 0
        shape[i] = s
        stride[i] = cur_stride
    return self._as_view(tuple(shape), tuple(stride), self._offset)


def _squeeze_check(self, dim=None):
    if dim is not None:
        normalize_dims(dim, len(self._shape))


def _squeeze_impl(self, dim=None):
    n = len(self._shape)
    if dim is None:
        keep = [i for i in range(n) if self._shape[i] != 1]
    else:
        dims = {d % n for d in ((dim,) if isinstance(dim, int) else dim)} if n else ()
        keep = [i for i in range(n) if not (i in dims and self._shape[i] == 1)]
    return self._as_view(tuple(self._shape[i] for i in keep), tuple(self._stride[i] for i in keep), self._offset)


def _unsqueeze_check(self, dim):
    normalize_dim(dim, len(self._shape) + 1)


def _unsqueeze_impl(self, dim):
    n = len(self._shape)
    d = dim % (n + 1)
    shape, stride = list(self._shape), list(self._stride)
    new_stride = shape[d] * stride[d] if d < n else 1
    shape.insert(d, 1)
    stride.insert(d, new_stride)
    return self._as_view(tuple(shape), tuple(stride), self._offset)


def _index_error(index, dim, size):
    raise IndexError(f"index {index} is out of bounds for dimension {dim} with size {size}")


def _select_check(self, dim, index):
    n = len(self._shape)
    if n == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor")
    d = normalize_dim(dim, n)
    size = self._shape[d]
    i = operator.index(index)
    if i < -size or i >= size:
        _index_error(index, d, size)


def _select_impl(self, dim, index):
    d = dim % len(self._shape)
    return (self._as_view(self._shape[:d] + self._shape[d + 1:], self._stride[:d] + self._stride[d + 1:],
                          self._offset + index % self._shape[d] * self._stride[d]))


def _unbind_check(self, dim=0):
    if not self._shape:
        raise IndexError(f"unbind: dimension specified as {dim} but tensor has no dimensions")
    normalize_dim(dim, len(self._shape))


def _unbind_impl(self, dim=0):
    """One view per index along `dim`, made at once: iterating a tensor (`q, k, v = qkv`) is one op whose
    backward stacks the gradients, instead of a select each and a zero-filled copy each in the backward."""
    d = dim % len(self._shape)
    shape, stride, step = self._shape[:d] + self._shape[d + 1:], self._stride[:d] + self._stride[d + 1:], \
        self._stride[d]
    return tuple(self._as_view(shape, stride, self._offset + i * step) for i in range(self._shape[d]))


def _unbind_meta(self, dim=0):
    _unbind_check(self, dim)
    d = dim % len(self._shape)
    return [(self._shape[:d] + self._shape[d + 1:], self._dtype)] * self._shape[d]


def _split_check(self, split_sizes, dim=0):
    if not self._shape:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = normalize_dim(dim, len(self._shape))
    sections = [operator.index(n) for n in split_sizes]
    if any(n < 0 for n in sections):
        raise RuntimeError(f"split_with_sizes expects split_sizes have only non-negative entries, but got "
                           f"split_sizes={sections}")
    if sum(sections) != self._shape[d]:
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {self._shape[d]} (input "
                           f"tensor's size at dimension {d}), but got split_sizes={sections}")


def _split_impl(self, split_sizes, dim=0):
    """Consecutive views along `dim` of the given sizes, made at once: `q, k, v = qkv.split(d, -1)` is one op
    whose backward concatenates the gradients, instead of a slice each and a zero-filled copy each."""
    d = dim % len(self._shape)
    out, start, step = [], self._offset, self._stride[d]
    for n in split_sizes:
        out.append(self._as_view(self._shape[:d] + (n,) + self._shape[d + 1:], self._stride, start))
        start += n * step
    return tuple(out)


def _split_meta(self, split_sizes, dim=0):
    _split_check(self, split_sizes, dim)
    d = dim % len(self._shape)
    return [(self._shape[:d] + (n,) + self._shape[d + 1:], self._dtype) for n in split_sizes]


def _slice_geometry(size, start, end, step):
    if step <= 0:
        raise ValueError(f"slice step must be positive, got {step}")
    start, end, _ = slice(start, end).indices(size)
    length = max(0, (end - start + step - 1) // step)
    return start, length


def _slice_check(self, dim=0, start=None, end=None, step=1):
    normalize_dim(dim, len(self._shape))
    if not self._shape:
        raise IndexError("slice() cannot be applied to a 0-dim tensor")
    if step <= 0:
        raise RuntimeError(f"slice step must be positive, got {step}")


def _slice_impl(self, dim=0, start=None, end=None, step=1):
    d = dim % len(self._shape)
    start, length = _slice_geometry(self._shape[d], start, end, step)
    shape, stride = list(self._shape), list(self._stride)
    shape[d] = length
    stride[d] *= step
    return self._as_view(tuple(shape), tuple(stride), self._offset + start * self._stride[d])


def _diagonal_check(self, offset=0, dim1=0, dim2=1):
    n = len(self._shape)
    if normalize_dim(dim1, n) == normalize_dim(dim2, n):
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")


def _diagonal_impl(self, offset=0, dim1=0, dim2=1):
    n = len(self._shape)
    d1, d2 = dim1 % n, dim2 % n
    off = self._offset
    if offset >= 0:
        length = max(0, min(self._shape[d1], self._shape[d2] - offset))
        off += offset * self._stride[d2] if length else 0
    else:
        length = max(0, min(self._shape[d1] + offset, self._shape[d2]))
        off -= offset * self._stride[d1] if length else 0
    keep = [i for i in range(n) if i != d1 and i != d2]
    shape = tuple(self._shape[i] for i in keep) + (length,)
    stride = tuple(self._stride[i] for i in keep) + (self._stride[d1] + self._stride[d2],)
    return self._as_view(shape, stride, off)


def _unfold_check(self, dimension, size, step):
    n = len(self._shape)
    d = normalize_dim(dimension, n)
    cur = self._shape[d] if n else 1
    if size < 0:
        raise RuntimeError(f"unfold: size is {size} but must be >= 0")
    if size > cur:
        raise RuntimeError(f"unfold: maximum size for tensor at dimension {d} is {cur} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"unfold: step is {step} but must be > 0")


def _unfold_impl(self, dimension, size, step):
    n = len(self._shape)
    if n == 0:
        return self._as_view((size,), (1,), self._offset)
    d = dimension % n
    shape, stride = list(self._shape), list(self._stride)
    shape[d] = (self._shape[d] - size) // step + 1
    stride[d] = self._stride[d] * step
    return self._as_view(tuple(shape) + (size,), tuple(stride) + (self._stride[d],), self._offset)


def _index_view_impl(self, index):
    """Basic indexing (ints, slices, None, Ellipsis) as one view; `index` is already a tuple."""
    shape, stride, off = [], [], self._offset
    dim = 0
    ndim = len(self._shape)
    n_real = sum(1 for x in index if x is not None and x is not Ellipsis)
    if n_real > ndim:
        if ndim == 0:
            raise IndexError("invalid index of a 0-dim tensor; use tensor.item() to convert a 0-dim tensor "
                             "to a Python number")
        raise IndexError(f"too many indices for tensor of dimension {ndim} (got {n_real})")
    for x in index:
        if x is None:  # like unsqueeze at this position
            shape.append(1)
            stride.append(self._shape[dim] * self._stride[dim] if dim < ndim else 1)
        elif x is Ellipsis:
            k = len(self._shape) - n_real
            shape.extend(self._shape[dim:dim + k])
            stride.extend(self._stride[dim:dim + k])
            dim += k
        elif isinstance(x, slice):
            size = self._shape[dim]
            step = 1 if x.step is None else operator.index(x.step)
            start, length = _slice_geometry(size, x.start, x.stop, step)
            shape.append(length)
            stride.append(self._stride[dim] * step)
            off += start * self._stride[dim]
            dim += 1
        else:
            try:
                i = operator.index(x)
            except TypeError:
                raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), None and long or byte tensors "
                                 f"are valid indices (got {type(x).__name__})") from None
            size = self._shape[dim]
            if i < -size or i >= size:
                _index_error(i, dim, size)
            off += (i + size if i < 0 else i) * self._stride[dim]
            dim += 1
    shape.extend(self._shape[dim:])
    stride.extend(self._stride[dim:])
    return self._as_view(tuple(shape), tuple(stride), off)


class _MetaSelf:
    """What a view kernel gets as `self` when it runs as its op's meta: the tensor's metadata and no
    data, like a tensor on PyTorch's meta device; `_as_view` hands back the view's shape instead of
    making a tensor. So each view's rules (checks and geometry) are written once, in its kernel."""

    __slots__ = ("_shape", "_stride", "_offset", "_dtype", "_storage")

    def __init__(self, t: Tensor):
        self._shape, self._stride, self._offset, self._dtype, self._storage = \
            t._shape, t._stride, t._offset, t._dtype, t._storage

    def _as_view(self, shape, stride, offset):
        return shape


def _meta_of(kernel, check=None):
    """A view op's meta: its checks (`check`, for a kernel that makes none of its own), then its
    kernel run on the metadata of `self` for the shape. The shape depends only on shapes and argument
    values; a check that reads strides or the storage stays in the kernel, which runs on every call.
    Without `check` the kernel makes every check itself, and it is the one kernel of every device: the
    meta is then that rule (`in_kernel`), which the entry point does not run a second time."""
    @functools.wraps(kernel)
    def meta(self, *args, **kwargs):
        if check is not None:
            check(self, *args, **kwargs)
        return kernel(_MetaSelf(self), *args, **kwargs), self._dtype
    meta.in_kernel = check is None
    return meta


def _index_view_meta(self, index):
    """Basic indexing (`x[1:3, None, 2]`): the view kernel on the metadata of `self`. Its index holds
    slices, which no cache can key on before Python 3.12, and the one kernel that serves every device
    is this rule itself, so the entry point leaves it to the kernel (`in_kernel`) instead of running it
    twice on every `x[...]`; the sample table calls it to check the kernel's shapes."""
    return _index_view_impl(_MetaSelf(self), index), self._dtype


_index_view_meta.in_kernel = True


def _reshape_meta(self, shape):
    return infer_size(shape, numel(self._shape)), self._dtype


_reshape_meta.in_kernel = True    # reshape's kernel infers the same size (and refuses what this refuses)


def _view_dtype_meta(self, dtype):
    return view_dtype_geometry(self, dtype)[0], dtype


_view_dtype_meta.in_kernel = True   # the kernel asks view_dtype_geometry too (and it reads strides)


def _declare():
    """Each view op with its meta; its one kernel serves every device."""
    for schema, kernel, method, check, meta in (
        ("_view(Tensor self, int[]... size) -> Tensor", _view_impl, False, None, None),
        ("view_dtype(Tensor self, ScalarType dtype) -> Tensor", _view_dtype_impl, False, None, _view_dtype_meta),
        ("reshape(Tensor self, int[]... shape) -> Tensor", _reshape_impl, False, None, _reshape_meta),
        ("as_strided(Tensor self, int[] size, int[] stride, int? storage_offset=None) -> Tensor", _as_strided_impl,
         True, None, None),
        ("transpose(Tensor self, int dim0, int dim1) -> Tensor", _transpose_impl, True, _transpose_check, None),
        ("permute(Tensor self, int[]... dims) -> Tensor", _permute_impl, True, _permute_check, None),
        ("expand(Tensor self, int[]... size) -> Tensor", _expand_impl, True, None, None),
        ("squeeze(Tensor self, int[]? dim=None) -> Tensor", _squeeze_impl, True, _squeeze_check, None),
        ("unsqueeze(Tensor self, int dim) -> Tensor", _unsqueeze_impl, True, _unsqueeze_check, None),
        ("select(Tensor self, int dim, int index) -> Tensor", _select_impl, True, _select_check, None),
        ("unbind(Tensor self, int dim=0) -> Tensor[]", _unbind_impl, True, _unbind_check, _unbind_meta),
        ("split_with_sizes(Tensor self, int[] split_sizes, int dim=0) -> Tensor[]", _split_impl, True, _split_check,
         _split_meta),
        ("slice(Tensor self, int dim=0, int? start=None, int? end=None, int step=1) -> Tensor", _slice_impl, False,
         _slice_check, None),
        ("diagonal(Tensor self, int offset=0, int dim1=0, int dim2=1) -> Tensor", _diagonal_impl, True,
         _diagonal_check, None),
        ("unfold(Tensor self, int dimension, int size, int step) -> Tensor", _unfold_impl, True, _unfold_check,
         None),
        ("_index_view(Tensor self, Any index) -> Tensor", _index_view_impl, False, None, _index_view_meta),
    ):
        op = defop(schema, meta=meta or _meta_of(kernel, check), method=method)
        op.register(*_ALL)(kernel)


_declare()
view = OPS["_view"].fn
view_dtype = OPS["view_dtype"].fn
reshape_op = OPS["reshape"].fn
transpose = OPS["transpose"].fn
permute = OPS["permute"].fn
expand = OPS["expand"].fn
squeeze = OPS["squeeze"].fn
unsqueeze = OPS["unsqueeze"].fn
select = OPS["select"].fn
unbind = OPS["unbind"].fn
split_with_sizes = OPS["split_with_sizes"].fn
slice_ = OPS["slice"].fn
as_strided = OPS["as_strided"].fn
diagonal = OPS["diagonal"].fn


# ---- composite views (Python over the ops above) -------------------------------------------

def t(self: Tensor) -> Tensor:
    n = len(self._shape)
    if n > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {n}D; use transpose(dim0, dim1)")
    return transpose(self, 0, 1) if n == 2 else view(self, self._shape)


def tensor_view(self: Tensor, *shape):
    if len(shape) == 1 and isinstance(shape[0], D.dtype):
        return view_dtype(self, shape[0])
    return view(self, *shape)


def reshape(self: Tensor, *shape) -> Tensor:
    return reshape_op(self, *shape)


def view_as(self: Tensor, other: Tensor) -> Tensor:
    return view(self, other._shape)


def reshape_as(self: Tensor, other: Tensor) -> Tensor:
    return reshape_op(self, other._shape)


def expand_as(self: Tensor, other: Tensor) -> Tensor:
    return expand(self, other._shape)


def broadcast_to(self: Tensor, shape) -> Tensor:
    return expand(self, tuple(shape))


def flatten(self: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    n = len(self._shape)
    s, e = normalize_dim(start_dim, n), normalize_dim(end_dim, n)
    if n == 0:
        return reshape_op(self, 1)
    if s > e:
        raise RuntimeError(f"flatten() has invalid args: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
    if s == e:
        return self
    return reshape_op(self, *self._shape[:s], numel(self._shape[s:e + 1]), *self._shape[e + 1:])


def unflatten(self: Tensor, dim: int, sizes) -> Tensor:
    d = normalize_dim(dim, len(self._shape))
    if not self._shape:
        raise RuntimeError(f"unflatten: dimension specified as {dim} but tensor has no dimensions")
    if not len(sizes):
        raise RuntimeError("unflatten: sizes must be non-empty")
    sizes = infer_size(tuple(sizes), self._shape[d])
    return view(self, *self._shape[:d], *sizes, *self._shape[d + 1:])


def narrow(self: Tensor, dim: int, start: int, length: int) -> Tensor:
    if not self._shape:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = normalize_dim(dim, len(self._shape))
    size = self._shape[d]
    start = operator.index(start)
    if start < -size or start > size:
        raise IndexError(f"narrow: start out of range (expected to be in range of [{-size}, {size}], but got {start})")
    if start < 0:
        start += size
    if length < 0:
        raise RuntimeError(f"narrow(): length must be non-negative, got {length}")
    if start + length > size:
        raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds dimension size ({size}) of dim {d}")
    return slice_(self, d, start, start + length, 1)


def movedim(self: Tensor, source, destination) -> Tensor:
    n = len(self._shape)
    source = (source,) if isinstance(source, int) else tuple(source)
    destination = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(source) != len(destination):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({list(source)} dims) should "
                           f"contain the same number of dims as destination ({list(destination)} dims)")
    src = [normalize_dim(d, n) for d in source]
    dst = [normalize_dim(d, n) for d in destination]
    for name, ds, given in (("source", src, source), ("destination", dst, destination)):
        if len(set(ds)) != len(ds):
            raise RuntimeError(f"movedim: repeated dim in `{name}` ({list(given)})")
    if n == 0:
        return permute(self, ())
    order = [None] * n
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(i for i in range(n) if i not in src)
    order = [o if o is not None else next(rest) for o in order]
    return permute(self, tuple(order))


def split(self: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    if not self._shape:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = normalize_dim(dim, len(self._shape))
    size = self._shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step < 0:
            raise RuntimeError(f"split expects split_size be non-negative, but got split_size={step}")
        if step == 0 and size:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}")
        bounds = [(i, min(step, size - i)) for i in range(0, size, step)] if size else [(0, 0)]
    else:
        return split_with_sizes(self, list(split_size_or_sections), d)
    return split_with_sizes(self, [n for _, n in bounds], d)


def chunk(self: Tensor, chunks: int, dim: int = 0) -> tuple:
    if not self._shape:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = normalize_dim(dim, len(self._shape))
    size = self._shape[d]
    if size == 0:  # torch gives `chunks` empty pieces
        return split_with_sizes(self, [0] * chunks, d)
    return split(self, -(-size // chunks), d)


def contiguous(self: Tensor, memory_format=contiguous_format) -> Tensor:
    """self if it is contiguous in `memory_format` (row-major, or ember.channels_last(_3d)), else such a copy."""
    if memory_format is contiguous_format or memory_format is None:
        return self if self.is_contiguous() else OPS["clone"].fn(self, memory_format=contiguous_format)
    if memory_format is preserve_format:    # as torch: a contiguous self is returned, anything else refused
        if self.is_contiguous():
            return self
        raise RuntimeError("contiguous(): preserve memory format is unsupported by the contiguous operator; pass "
                           "ember.contiguous_format, ember.channels_last or ember.channels_last_3d")
    return self if self.is_contiguous(memory_format) else OPS["clone"].fn(self, memory_format=memory_format)


def mT(self: Tensor) -> Tensor:  # noqa: N802 - PyTorch's name
    if not self._shape:
        return self  # torch: the identity on 0-dim tensors (deprecated there)
    if len(self._shape) < 2:
        raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices, got {len(self._shape)}-D")
    return transpose(self, -2, -1)


def T(self: Tensor) -> Tensor:  # noqa: N802 - PyTorch's name
    return permute(self, tuple(range(len(self._shape) - 1, -1, -1)))


_METHODS = {
    "t": t, "view": tensor_view, "reshape": reshape, "view_as": view_as, "reshape_as": reshape_as,
    "expand_as": expand_as, "broadcast_to": broadcast_to, "flatten": flatten, "unflatten": unflatten,
    "narrow": narrow, "movedim": movedim, "moveaxis": movedim, "unbind": unbind, "split": split,
    "chunk": chunk, "contiguous": contiguous, "swapaxes": transpose, "swapdims": transpose,
}
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
Tensor.mT = property(mT)
Tensor.T = property(T)


# ---- derivatives (formulas over ember ops; see ember.autograd.derivatives) ----------------------

def _derivatives():
    _d = derivative
    _d("_view", self="grad.reshape(self_shape)")
    _d("reshape", self="grad.reshape(self_shape)")
    _d("as_strided", self="as_strided_backward(grad, self, size, stride, storage_offset)")
    _d("transpose", self="grad.transpose(dim0, dim1)")
    _d("permute", self="grad.permute(inverse_permutation(dims))")
    _d("expand", self="grad")
    _d("squeeze", self="grad.reshape(self_shape)")
    _d("unsqueeze", self="grad.reshape(self_shape)")
    _d("select", self="select_backward(grad, self_shape, dim, index)")
    _d("unbind", self="unbind_backward(grads, dim)")
    _d("split_with_sizes", self="split_backward(grads, dim)")
    _d("slice", self="slice_backward(grad, self_shape, dim, start, end, step)")
    _d("diagonal", self="diagonal_backward(grad, self_shape, offset, dim1, dim2)")
    _d("unfold", self="unfold_backward(grad, self_shape, dimension, size, step)")
    _d("_index_view", self="index_view_backward(grad, self_shape, index)")


_derivatives()
