"""CUDA-related Tensor methods: pin_memory, is_pinned, record_stream."""
from __future__ import annotations

import numpy as np

from ..._tensor import Tensor
from ...core.device import CPU
from ...core.storage import Storage
from ...utils.data.pin_memory import register_pin_memory
from .driver import is_available


def pin_memory(self, device=None) -> Tensor:
    """A copy of this CPU tensor in page-locked memory (for non_blocking host-to-device copies)."""
    if self._storage.device is not CPU:
        raise RuntimeError(f"cannot pin a tensor on {self.device}: only CPU tensors can be pinned")
    if self._storage.pinned:
        return self
    from .memory import pinned_empty
    a = np.ascontiguousarray(self._array)
    raw = pinned_empty(a.nbytes)
    view = np.ndarray(a.shape, a.dtype, raw, 0)
    np.copyto(view, a)
    st = Storage(raw, CPU, a.nbytes)
    st.pinned = True
    t = Tensor._make(st, self._shape, tuple(s // a.itemsize for s in view.strides) if a.itemsize else self._stride,
                     0, self._dtype)
    return t


def is_pinned(self, device=None) -> bool:
    return bool(self._storage.pinned)


def record_stream(self, stream) -> None:
    """Marks this CUDA tensor's memory as used by `stream`: when freed, it is reused on other streams
    only after the work queued on `stream` so far has finished."""
    st = self._storage
    if st.device.type != "cuda":
        raise RuntimeError(f"record_stream expects a CUDA tensor, got a tensor on {st.device}")
    buf = st.data
    if buf.block is not None:
        buf.alloc.record_stream(buf.block, stream)


Tensor.pin_memory = pin_memory
Tensor.is_pinned = is_pinned
Tensor.record_stream = record_stream
register_pin_memory("cuda", pin_memory, is_available)   # DataLoader(pin_memory=True) pins batches this way
