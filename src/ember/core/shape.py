"""Shape and stride arithmetic shared by views, kernels and op metadata."""
from __future__ import annotations

import operator

__all__ = ["contiguous_strides", "broadcast_shapes", "normalize_dim", "normalize_dims", "numel", "as_shape",
           "is_dense", "stacked_spacing", "elementwise_strides", "dense_in_order", "any_strided"]

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


def dense_in_order(shape, strides, order) -> bool:
    """Are the dims, taken fastest first in `order`, laid out densely, as torch's is_contiguous(memory_format=...)
    asks (row-major: order n-1, ..., 0; channels_last: 1, 3, 2, 0)? Any stride on a size-1 dim (torch counts every
    empty tensor as row-major contiguous; callers say so)."""
    expect = 1
    for d in order:
        n = shape[d]
        if n != 1:
            if strides[d] != expect:
                return False
            expect *= n
    return True


CHANNELS_LAST_ORDER = {4: (1, 3, 2, 0), 5: (1, 4, 3, 2, 0)}   # fastest first: C, then W, (D,) H, N


_SCALARS = (int, float, bool, complex)
_EW_LAYOUTS: dict = {}


def any_strided(operands) -> bool:
    """Is some tensor among `operands` (Python scalars and None are skipped) not row-major? An op's result holds the
    memoised contiguous strides tuple itself, so the identity test answers most calls."""
    for v in operands:
        st = getattr(v, "_stride", None)
        if st is not None:
            cs = contiguous_strides(v._shape)
            if st is not cs and st != cs:
                return True
    return False


def elementwise_strides(shape, operands):
    """The strides of an elementwise op's output of shape `shape` over `operands` (in the op's argument order:
    tensors, and Python scalars where torch makes them 0-dim operands (a binary op's `other`, where's values; not
    clamp's bounds or lerp's weight); None is skipped), as torch's TensorIterator lays it out; None for the
    contiguous layout.

    Contiguous operands give a contiguous output. Operands all of the output's shape that are all contiguous,
    all channels-last (4-d), or all non-overlapping and dense with one set of strides give that layout. Otherwise
    the dims are ordered by the operands' strides: for each pair of dims, the first operand whose strides there
    are both non-zero (not broadcast) and differ decides, equal strides put the smaller dim first, and an
    undecided pair keeps row-major order; the output is dense in that order. So `x.permute(2, 0, 1) + 1` keeps
    x's layout, and `x.t() + y` takes x.t()'s where y does not decide otherwise first. Answers are memoised by
    geometry (the same ones recur step after step: an expanded gradient in every backward)."""
    if shape.__class__ is not tuple:
        shape = tuple(shape)
    key = [shape]
    for v in operands:
        if v is None:                       # an absent optional operand (clamp's max=None)
            continue
        if v.__class__ in _SCALARS:         # a Python scalar: a 0-dim operand
            key.append(((), ()))
            continue
        st = getattr(v, "_stride", None)
        key.append(((), ()) if st is None else (v._shape, st))
    key = tuple(key)
    r = _EW_LAYOUTS.get(key, key)
    if r is key:
        r = _elementwise_strides(shape, key[1:])
        if len(_EW_LAYOUTS) >= 4096:
            _EW_LAYOUTS.clear()
        _EW_LAYOUTS[key] = r
    return r


def _elementwise_strides(shape, geo):
    if all(st == contiguous_strides(sh) for sh, st in geo):
        return None
    nd = len(shape)
    if nd <= 1 or 0 in shape:
        return None
    same = all(sh == shape for sh, st in geo)   # torch's fast setup: every operand of the output's shape
    if same:
        if all(0 in sh or dense_in_order(sh, st, range(len(sh) - 1, -1, -1)) for sh, st in geo):
            return None
        if nd == 4 and all(len(sh) == 4 and dense_in_order(sh, st, CHANNELS_LAST_ORDER[4]) for sh, st in geo):
            c, h, w = shape[1], shape[2], shape[3]
            return (c * h * w, 1, c * w, c)
        st0 = geo[-1][1]
        if all(st == st0 and is_dense(sh, st) for sh, st in geo):
            return tuple(st0)
    # the strides of each operand broadcast to the output (0 where it is broadcast)
    bst = []
    for sh, st in geo:
        off = nd - len(sh)
        b = [0] * nd
        for i, n in enumerate(sh):
            if n != 1 or shape[off + i] == 1:
                b[off + i] = st[i]
        bst.append(b)

    def order(d0, d1):          # 1: d0 goes after d1 (is slower); -1: before; 0: undecided
        for b in bst:
            s0, s1 = b[d0], b[d1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 < s1:
                return -1
            if s0 > s1:
                return 1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    perm = list(range(nd - 1, -1, -1))     # fastest dim first; an insertion sort that stops at a decided pair
    for i in range(1, nd):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = order(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    out = [0] * nd
    acc = 1
    for d in perm:
        out[d] = acc
        acc *= shape[d]
    out = tuple(out)
    return None if out == contiguous_strides(shape) else out


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
