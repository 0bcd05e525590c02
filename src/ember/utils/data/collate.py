"""Collation: merging a list of samples into a batch (`default_collate`) and converting
NumPy data to tensors without batching (`default_convert`).

`collate` looks the first sample's type up in `collate_fn_map` (exact type first, then
`isinstance` over the map's keys) and recurses into mappings and sequences, as PyTorch does;
extend the map to teach it new types.
"""
from __future__ import annotations

import collections.abc
import copy

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...ops.creation import as_tensor, from_numpy, tensor
from ...dispatch import OPS

__all__ = ["collate", "default_collate", "default_convert", "default_collate_fn_map"]

_stack = OPS["stack"].fn

default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}")


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _like_mapping(like, values: dict):
    """`values` in a mapping of `like`'s type: a copy of `like` updated (mutable mappings), else
    `type(like)(values)`, else the dict itself."""
    if isinstance(like, collections.abc.MutableMapping):
        clone = copy.copy(like)
        clone.update(values)
        return clone
    try:
        return type(like)(values)
    except TypeError:
        return values


def _like_sequence(like, items: list):
    """`items` in a sequence of `like`'s type: a copy of `like` with its items replaced (mutable sequences;
    the list where that fails), else `type(like)(items)`, else the list itself."""
    if isinstance(like, collections.abc.MutableSequence):
        try:
            clone = copy.copy(like)
            clone[:] = items
            return clone
        except TypeError:
            return items
    try:
        return type(like)(items)
    except TypeError:
        return items


def collate(batch, *, collate_fn_map: dict | None = None):
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        fn = collate_fn_map.get(elem_type)
        if fn is not None:
            return fn(batch, collate_fn_map=collate_fn_map)
        for key, fn in collate_fn_map.items():
            if isinstance(elem, key):
                return fn(batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, collections.abc.Mapping):
        return _like_mapping(elem, {key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map)
                                    for key in elem})
    if _is_namedtuple(elem):
        return elem_type(*(collate(s, collate_fn_map=collate_fn_map) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError(f"each element in list of batch should be of equal size; got sizes "
                               f"{sorted({len(e) for e in batch})}")
        transposed = [collate(s, collate_fn_map=collate_fn_map) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return transposed  # a list, as PyTorch returns for tuples
        return _like_sequence(elem, transposed)
    raise TypeError(default_collate_err_msg_format.format(elem_type))


def _collate_tensor(batch, *, collate_fn_map=None):
    return _stack(batch, 0)


def _check_numeric(elem):
    if elem.dtype.kind in "SaUO":
        raise TypeError(default_collate_err_msg_format.format(elem.dtype))


def _collate_numpy_array(batch, *, collate_fn_map=None):
    _check_numeric(batch[0])
    try:
        return from_numpy(np.stack(batch))
    except ValueError:
        shapes = [tuple(np.shape(b)) for b in batch]
        raise RuntimeError(f"stack expects each array to be equal size, but got shapes {shapes}") from None


def _collate_numpy_scalar(batch, *, collate_fn_map=None):
    _check_numeric(batch[0])
    return from_numpy(np.array(batch))


def _collate_float(batch, *, collate_fn_map=None):
    return tensor(batch, dtype=D.float64)


def _collate_int(batch, *, collate_fn_map=None):
    return tensor(batch)


def _collate_str(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map = {
    Tensor: _collate_tensor,
    np.ndarray: _collate_numpy_array,
    np.bool_: _collate_numpy_scalar,
    np.number: _collate_numpy_scalar,
    float: _collate_float,
    int: _collate_int,
    str: _collate_str,
    bytes: _collate_str,
}


def default_collate(batch):
    """Merges a list of samples into a batch, recursively:

    tensors -> `ember.stack(batch, 0)`; NumPy arrays and scalars -> stacked tensors of their
    dtype; Python floats -> float64, ints -> int64 (bools -> bool); strings and bytes -> the list
    unchanged; dicts -> a dict of collated values; namedtuples -> the same namedtuple;
    other sequences -> a list (tuples too) of collated positions.
    """
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data):
    """NumPy arrays and scalars (also inside dicts and sequences) -> tensors; everything else unchanged.
    The collate function when batching is off (`batch_size=None`)."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, (np.ndarray, np.bool_, np.number)):
        if data.dtype.kind in "SaUO":
            return data
        return as_tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return _like_mapping(data, {key: default_convert(v) for key, v in data.items()})
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _like_sequence(data, [default_convert(d) for d in data])
    return data
