"""Memory formats (torch.memory_format): how a new tensor's dims are laid out in memory.

    ember.preserve_format     the source's layout where it is dense, else its dim order made dense (`clone`, `*_like`
                              and `to` default to it, as in torch)
    ember.contiguous_format   row-major
    ember.channels_last       4-d (N, C, H, W) stored as N, H, W, C
    ember.channels_last_3d    5-d (N, C, D, H, W) stored as N, D, H, W, C
"""
from __future__ import annotations

from .shape import CHANNELS_LAST_ORDER, contiguous_strides, dense_in_order, elementwise_strides, is_dense

__all__ = ["memory_format", "preserve_format", "contiguous_format", "channels_last", "channels_last_3d",
           "layout_strides", "is_contiguous_in", "check_memory_format", "suggest_memory_format", "dense_strides",
           "is_one_block"]


class memory_format:    # noqa: N801 - torch's name
    """One of ember's four memory formats (compared by identity, as torch's)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return "ember." + self.name

    def __reduce__(self):
        return self.name          # pickled by name: this module holds each format under it


preserve_format = memory_format("preserve_format")
contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")

_RANK = {channels_last: 4, channels_last_3d: 5}


def _channels_last_strides(shape) -> tuple:
    """Dense strides with the channel dim (1) fastest, then the spatial dims, then the batch, as torch's
    get_channels_last_strides_2d/3d (sizes taken as they are)."""
    st = [0] * len(shape)
    st[1] = acc = 1
    acc *= shape[1]
    for d in range(len(shape) - 1, 1, -1):
        st[d] = acc
        acc *= shape[d]
    st[0] = acc
    return tuple(st)


def check_memory_format(fmt, op: str) -> memory_format:
    """fmt (None: preserve_format) as a memory format, or a TypeError naming op and what was passed."""
    if fmt is None:
        return preserve_format
    if fmt.__class__ is not memory_format:
        raise TypeError(f"{op}(): memory_format must be an ember.memory_format (ember.preserve_format, "
                        f"ember.contiguous_format, ember.channels_last or ember.channels_last_3d), got {fmt!r}")
    return fmt


def layout_strides(t, fmt, op: str):
    """The strides of a new tensor of t's shape made from t in memory format `fmt` (None: preserve), or None for
    the contiguous layout. preserve keeps a dense t's strides as they are and gives a strided or expanded t its
    dim order, dense (torch's infer_dense_strides: the rule of `core.shape.elementwise_strides` for one operand)."""
    fmt = check_memory_format(fmt, op)
    shape = t._shape
    if fmt is preserve_format:
        st = t._stride
        if st == contiguous_strides(shape):
            return None
        if 0 in shape or is_dense(shape, st):     # (torch counts an empty tensor as dense: its strides are kept)
            return st
        return elementwise_strides(shape, (t,))
    if fmt is contiguous_format:
        return None
    rank = _RANK[fmt]
    if len(shape) != rank:
        raise RuntimeError(f"{op}(): required rank {rank} tensor to use {fmt.name} format, got a tensor of shape "
                           f"{list(shape)}")
    st = _channels_last_strides(shape)
    return None if st == contiguous_strides(shape) else st


def dense_strides(t):
    """t's strides where t is one dense block that is not row-major (transposed, channels-last), else None: the
    layout a leaf's .grad takes (torch's layout contract for gradients), and one a kernel may walk flat."""
    st, cs = t._stride, contiguous_strides(t._shape)
    if st is cs or st == cs or not is_dense(t._shape, st) or 0 in t._shape:
        return None
    return st


def is_one_block(t) -> bool:
    """Is t one dense block in some dim order (row-major, transposed, channels-last), which a kernel may walk flat
    and update in place (the fused optimizer steps and gradient clipping)?"""
    return t.is_contiguous() or is_dense(t._shape, t._stride)


def suggest_memory_format(shape, strides) -> memory_format:
    """torch's suggest_memory_format: channels_last(_3d) for a 4-d (5-d) tensor whose strides order its dims as
    that format does (ambiguous cases, a size-1 channel dim with tied strides, count as contiguous), else
    contiguous_format. `to(memory_format=f)` copies only where this is not f."""
    order = CHANNELS_LAST_ORDER.get(len(shape))
    if order is None or strides[1] == 0:
        return contiguous_format
    low = 0
    for d in order:
        if shape[d] == 0 or strides[d] < low or (d == 0 and low == strides[1]):
            return contiguous_format
        low = strides[d] * (shape[d] if shape[d] > 1 else 1)
    return channels_last if len(shape) == 4 else channels_last_3d


def is_contiguous_in(shape, strides, fmt) -> bool:
    """Tensor.is_contiguous(memory_format=fmt): dense in fmt's dim order, size-1 dims' strides aside, as torch's
    (which takes preserve_format as row-major, counts every empty tensor as row-major contiguous, and checks an
    empty one's strides in the channels-last orders; a tensor of the wrong rank is in no channels-last one)."""
    fmt = check_memory_format(fmt, "is_contiguous") if fmt is not None else contiguous_format
    if fmt is contiguous_format or fmt is preserve_format:
        return 0 in shape or dense_in_order(shape, strides, range(len(shape) - 1, -1, -1))
    return len(shape) == _RANK[fmt] and dense_in_order(shape, strides, CHANNELS_LAST_ORDER[len(shape)])
