"""Devices: `ember.device('cpu')`, `ember.device('cuda', 1)`, `ember.device('cuda:1')`.

Instances are interned, so `a.device is b.device` is the fast same-device test the dispatcher uses.
"""
from __future__ import annotations

__all__ = ["device"]

_TYPES = ("cpu", "cuda")
_INTERNED: dict = {}


class device:
    __slots__ = ("type", "index")

    def __new__(cls, type_or_spec, index: int | None = None):
        if isinstance(type_or_spec, device):
            if index is not None:
                raise ValueError(f"device({type_or_spec!r}, {index}) passes an index twice")
            return type_or_spec
        if isinstance(type_or_spec, int) and not isinstance(type_or_spec, bool):
            type_, index = "cuda", type_or_spec
        elif isinstance(type_or_spec, str):
            type_ = type_or_spec
            if ":" in type_:
                if index is not None:
                    raise ValueError(f"device({type_or_spec!r}, {index}) passes an index twice")
                type_, _, idx = type_.partition(":")
                if not idx.isdigit():
                    raise ValueError(f"invalid device string {type_or_spec!r}: expected 'cpu', 'cuda' or 'cuda:N'")
                index = int(idx)
        else:
            raise TypeError(f"device expects a string like 'cuda:0', an int or a device, got {type(type_or_spec).__name__}")
        if type_ not in _TYPES:
            raise ValueError(f"unknown device type {type_!r} in {type_or_spec!r}; expected one of {_TYPES}")
        if index is not None and (not isinstance(index, int) or index < 0):
            raise ValueError(f"device index must be a non-negative int, got {index!r}")
        key = (type_, index)
        d = _INTERNED.get(key)
        if d is None:
            d = object.__new__(cls)
            object.__setattr__(d, "type", type_)
            object.__setattr__(d, "index", index)
            _INTERNED[key] = d
        return d

    def __setattr__(self, name, value):
        raise AttributeError("ember.device is immutable")

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (ValueError, TypeError):
                return False
        return self is other

    # devices are interned (one object per (type, index)), so identity is equality among them and the
    # C-level identity hash serves: device-keyed dicts (the dispatcher's meta cache) hash in C
    __hash__ = object.__hash__

    def __reduce__(self):
        return (device, (self.type, self.index))


CPU = device("cpu")


def canonical(d) -> device:
    """The device a tensor lives on: 'cuda' becomes 'cuda:<current>'."""
    d = device(d) if not isinstance(d, device) else d
    if d.type == "cuda" and d.index is None:
        return device("cuda", 0)
    return d
