"""Shape and stride arithmetic shared by views, kernels and op metadata."""
from __future__ import annotations

import operator

__all__ = ["contiguous_strides", "broadcast_shapes", "normalize_dim", "normalize_dims", "numel", "as_shape",
           "is_dense", "stacked_spacing"]

_CONTIG: dict = {}


def contiguous_strides(shape: tuple) -> tuple:
    """Row-major strides in elements, memoised since the same shapes recur op after op."""
    s = _CONTIG.get(shape)
    if s is None:
        acc, out = 1, []
        for n in reversed(shape):
            out.append(acc)
            acc *= n if n > 1 else 1
        s = tuple(reversed(out))
        if len(_CONTIG) < 4096:
            _CONTIG[shape] = s
    return s


def is_dense(shape, strides) -> bool:
    """Does the geometry (non-negative strides) lay out each element of a block of numel(shape) elements exactly
    once, in some order of its dims (a permutation of a contiguous layout)?"""
    expect = 1
    for stride, n in sorted(zip(strides, shape)):     # smallest stride first; size-1 dims place nothing
        if n != 1 and stride != expect:
            return False
        expect *= n
    return True


def stacked_spacing(tensors) -> int:
    """The spacing sp > 0 when the tensors (two or more) are views of one storage with one shape, dtype and strides
    at offsets t0 + i * sp that together lay out a dense block (tensors[i] is that block's slice i: the unbind of
    a permuted fused qkv, say); else 0."""
    t0 = tensors[0]
    if len(tensors) < 2:
        return 0
    st, shape, storage, dt = t0._stride, t0._shape, t0._storage, t0._dtype
    sp = tensors[1]._offset - t0._offset
    if sp <= 0:
        return 0
    for i, t in enumerate(tensors):
        if (t._storage is not storage or t._stride != st or t._shape != shape or t._dtype is not dt
                or t._offset != t0._offset + i * sp):
            return 0
    return sp if is_dense((len(tensors),) + shape, (sp,) + st) else 0


def numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def as_shape(size, what: str = "size") -> tuple:
    """Accepts f(2, 3), f((2, 3)), f([2, 3]) and f(torch.Size) spellings; returns a tuple of ints."""
    if len(size) == 1 and not isinstance(size[0], int):
        size = size[0]
    try:
        shape = tuple(operator.index(s) for s in size)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of ints, got {size!r}") from None
    return shape


def broadcast_shapes(*shapes) -> tuple:
    """NumPy/PyTorch broadcasting; the error names every shape involved."""
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for s in shapes:
        off = ndim - len(s)
        for i, n in enumerate(s):
            o = out[off + i]
            if n != o:
                if o == 1:
                    out[off + i] = n
                elif n != 1:
                    names = " and ".join(str(list(x)) for x in shapes)
                    raise RuntimeError(
                        f"shapes {names} cannot be broadcast together: size {n} vs {o} "
                        f"at dimension {off + i - ndim} (sizes must match or one of them must be 1)")
    return tuple(out)


def normalize_dim(dim: int, ndim: int, what: str = "dimension") -> int:
    """Wraps a negative dim; IndexError naming the valid range otherwise (0-d tensors accept -1 and 0)."""
    n = ndim if ndim > 0 else 1
    try:
        d = operator.index(dim)
    except TypeError:
        raise TypeError(f"{what} must be an int, got {type(dim).__name__}") from None
    if d < -n or d >= n:
        raise IndexError(f"{what} out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return d + n if d < 0 else d


def normalize_dims(dims, ndim: int) -> tuple:
    """dims=None means all; a single int or a sequence; repeats raise."""
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, int):
        dims = (dims,)
    out = tuple(normalize_dim(d, ndim) for d in dims)
    if len(set(out)) != len(out):
        raise RuntimeError(f"dim {list(dims)} appears multiple times in the list of dims")
    return out
