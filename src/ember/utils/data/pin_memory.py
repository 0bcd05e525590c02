"""Pinning a DataLoader's batches (`pin_memory=True`): every CPU tensor of a batch is replaced by a
page-locked copy, so that its copy to an accelerator can run asynchronously
(`.to(device, non_blocking=True)`), as `torch.utils.data._utils.pin_memory`.

Page-locking is a backend's business: a backend that can do it registers at import, with
`register_pin_memory(device_type, pin, is_available)`. A DataLoader pins for the backend named by
its `pin_memory_device`, or else for the first registered one that is available; with none, its
batches are left as they are.
"""
from __future__ import annotations

from typing import Callable, Optional

from ..._tensor import Tensor
from ...core.device import CPU

__all__ = ["register_pin_memory", "pinner", "pin_memory"]

_PINNERS: dict = {}     # device type -> (pin, is_available), in registration order


def register_pin_memory(device_type: str, pin: Callable[[Tensor], Tensor], is_available: Callable[[], bool]) -> None:
    """Registers how to pin memory for `device_type`'s devices: `pin(t)` returns a page-locked copy of
    the CPU tensor `t`; `is_available()` says whether the backend can run here."""
    _PINNERS[device_type] = (pin, is_available)


def pinner(device: str = "") -> Optional[Callable[[Tensor], Tensor]]:
    """The `pin` function for `device` (a device string such as 'cuda' or 'cuda:1'; '' for the first
    available backend), or None when that backend is unavailable or none is registered."""
    if device:
        kind = str(device).partition(":")[0]
        entry = _PINNERS.get(kind)
        if entry is None:
            raise ValueError(f"pin_memory_device={device!r}: no backend pins memory for '{kind}' devices "
                             f"(registered: {sorted(_PINNERS) or 'none'})")
        entries = [entry]
    else:
        entries = list(_PINNERS.values())
    for pin, is_available in entries:
        if is_available():
            return pin
    return None


def pin_memory(data, pin: Callable[[Tensor], Tensor]):
    """`data` with `pin(t)` in place of every CPU tensor `t`, through nested dicts, lists, tuples and
    named tuples; anything else is kept."""
    if isinstance(data, Tensor):
        return pin(data) if data._storage.device is CPU else data
    if isinstance(data, dict):
        return type(data)({k: pin_memory(v, pin) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(pin_memory(v, pin) for v in data))
    if isinstance(data, (list, tuple)):
        return type(data)(pin_memory(v, pin) for v in data)
    return data
