"""CUDA tensors: storage on the GPU, host<->device copies, fill_/zero_/clone/copy_.

The factories (empty, zeros, arange, linspace, eye, full, ...) are in `creation.py`.
"""
from __future__ import annotations

import numpy as np

from ..._tensor import Tensor
from ...core.device import CPU
from ...core.layout import dense_strides, layout_strides
from ...core.storage import Storage
from ...dispatch import OPS
from ...ops.elementwise import check_internal_overlap
from .checks import raise_pending
from .driver import check, driver
from .elementwise import copy_cast
from .capture import refuse_during_capture
from .memory import empty_cuda, keep_alive, new_tensor, pinned_empty
from .creation import fill_contiguous
from .stream import current_stream

_make = Tensor._make


def _index(t: Tensor) -> int:
    return t._storage.device.index or 0


def _span(t: Tensor):
    """(first element offset, number of elements) of the storage region a tensor touches."""
    if 0 in t._shape:
        return t._offset, 0
    lo = t._offset + sum((n - 1) * s for n, s in zip(t._shape, t._stride) if s < 0)
    hi = t._offset + sum((n - 1) * s for n, s in zip(t._shape, t._stride) if s > 0)
    return lo, hi - lo + 1


def h2d(dst: Tensor, host: np.ndarray, non_blocking: bool = False) -> None:
    """Copies a C-contiguous host array into a CUDA tensor's dense block (row-major, or the memory order of a
    transposed or channels-last one) on the current stream."""
    n = host.nbytes
    if n == 0:
        return
    # a captured copy would read `host` again at every replay, long after it is gone: refuse it
    refuse_during_capture("copying CPU data to a CUDA tensor (.cuda(), .to('cuda'), copy_ from the CPU, "
                          "ember.tensor(..., device='cuda'), factories computed on the host)",
                          "would be replayed from host memory that is gone by then")
    s = current_stream(_index(dst))
    d = driver()
    check(d.cuMemcpyHtoDAsync(dst.data_ptr(), host.__array_interface__["data"][0], n, s.handle), "cuMemcpyHtoDAsync")
    if non_blocking:
        keep_alive(host, s)  # the copy reads `host` later: hold it until the stream passes this point


def d2h(src: Tensor, non_blocking: bool = False) -> Tensor:
    """A CPU tensor with the values of a CUDA tensor (same shape and strides, minimal bytes copied)."""
    lo, count = _span(src)
    it = src._dtype.itemsize
    nbytes = count * it
    if non_blocking:
        raw = pinned_empty(nbytes)
    else:
        refuse_during_capture("copying a CUDA tensor to the CPU (.cpu(), .item(), .tolist(), printing)")
        raw = np.empty(nbytes, np.uint8)
    s = current_stream(_index(src))
    if nbytes:
        d = driver()
        check(d.cuMemcpyDtoHAsync(raw.__array_interface__["data"][0], src._storage.data.ptr + lo * it, nbytes,
                                  s.handle), "cuMemcpyDtoHAsync")
        if not non_blocking:
            check(d.cuStreamSynchronize(s.handle), "cuStreamSynchronize")
            raise_pending(_index(src))    # device-side index checks (checks.py)
    st = Storage(raw, CPU, nbytes)
    st.pinned = non_blocking
    return _make(st, src._shape, src._stride, src._offset - lo, src._dtype)


def _host_contiguous(t: Tensor, dtype=None) -> np.ndarray:
    a = t._host_array()
    if dtype is not None and a.dtype != dtype.np:
        a = a.astype(dtype.np)
    return np.ascontiguousarray(a)


def to_device(self: Tensor, device, non_blocking: bool = False) -> Tensor:
    src_dev = self._storage.device
    if device.type == "cpu":
        return d2h(self, non_blocking)
    index = device.index or 0
    if src_dev is CPU:
        st = dense_strides(self)    # a transposed or channels-last tensor moves as its dense block, layout kept
        if st is None:
            host = _host_contiguous(self)
        else:
            order = sorted(range(len(st)), key=st.__getitem__, reverse=True)     # the dims in memory order
            host = np.ascontiguousarray(self._host_array().transpose(order))     # (a view of the block: no copy)
        out = new_tensor(self._shape, self._dtype, device, st)
        h2d(out, host, non_blocking and getattr(self._storage, "pinned", False))
        return out
    # device to device (same or another GPU): copy the touched span, keep the geometry
    lo, count = _span(self)
    it = self._dtype.itemsize
    buf_t = empty_cuda((count,), self._dtype, index)
    if count:
        _d2d(buf_t.data_ptr(), index, self._storage.data.ptr + lo * it, src_dev.index or 0, count * it)
    return _make(buf_t._storage, self._shape, self._stride, self._offset - lo, self._dtype)


def _d2d(dst: int, dst_index: int, src: int, src_index: int, nbytes: int) -> None:
    """Copies nbytes on the destination device's current stream. Between two GPUs (as torch does) that stream
    first waits for the source device's current stream (whose work may still be writing the source), and the
    source's stream then waits for the copy, so that its allocator does not hand the source's memory out again
    while the copy still reads it."""
    s = current_stream(dst_index)
    if src_index != dst_index:
        src_s = current_stream(src_index)
        s.wait_stream(src_s)
        check(driver().cuMemcpyDtoDAsync(dst, src, nbytes, s.handle), "cuMemcpyDtoDAsync")
        src_s.wait_stream(s)
    else:
        check(driver().cuMemcpyDtoDAsync(dst, src, nbytes, s.handle), "cuMemcpyDtoDAsync")


def copy_(self: Tensor, src: Tensor, non_blocking: bool = False) -> Tensor:
    if 0 in self._stride:   # (the meta reads no strides)
        check_internal_overlap("copy_", self)
    sd, dd = src._storage.device, self._storage.device
    if dd.type == "cpu":  # device -> host
        host = d2h(src)
        return OPS["copy_"].kernels["cpu"](self, host, False)
    if sd.type == "cpu":
        a = src._host_array()
        if a.shape == self._shape and src._dtype is self._dtype and self.is_contiguous():
            h2d(self, np.ascontiguousarray(a), non_blocking and getattr(src._storage, "pinned", False))
            return self
        tmp = empty_cuda(a.shape, src._dtype, _index(self))   # host -> device as is, then cast/broadcast there
        h2d(tmp, np.ascontiguousarray(a), non_blocking and getattr(src._storage, "pinned", False))
        return copy_cast(self, tmp)
    if src._dtype is self._dtype and src._shape == self._shape and src.is_contiguous() and self.is_contiguous():
        n = self.nbytes
        if n:
            _d2d(self.data_ptr(), _index(self), src.data_ptr(), _index(src), n)
        return self
    if _index(src) != _index(self):     # a kernel reads one device's memory only: bring src over first
        src = to_device(src, dd)
    return copy_cast(self, src)


# ---- factories ----------------------------------------------------------------------------------

def _memset(t: Tensor, pattern_bytes: bytes) -> None:
    """Fills a contiguous CUDA tensor's bytes with a repeated pattern of 1, 2 or 4 bytes (or a longer one
    made of one repeated byte). The pattern repeats over all of t's bytes, whatever its dtype: a 1-byte
    pattern on an int64 tensor of 4 elements sets 32 bytes."""
    nbytes = t.numel() * t._dtype.itemsize
    if not nbytes:
        return
    k = len(pattern_bytes)
    if k == 0 or nbytes % k:
        raise ValueError(f"_memset: a {k}-byte pattern does not tile a tensor of {nbytes} bytes")
    d = driver()
    s = current_stream(_index(t)).handle
    if k == 1 or len(set(pattern_bytes)) == 1:
        check(d.cuMemsetD8Async(t.data_ptr(), pattern_bytes[0], nbytes, s), "cuMemsetD8Async")
    elif k == 2:
        check(d.cuMemsetD16Async(t.data_ptr(), int.from_bytes(pattern_bytes, "little"), nbytes // 2, s),
              "cuMemsetD16Async")
    elif k == 4:
        check(d.cuMemsetD32Async(t.data_ptr(), int.from_bytes(pattern_bytes, "little"), nbytes // 4, s),
              "cuMemsetD32Async")
    else:
        raise ValueError(f"_memset: a {k}-byte pattern that does not repeat every 4 bytes (use creation.fill_contiguous)")


_fill = fill_contiguous


def _register_factories():
    reg = lambda name: OPS[name].register("cuda")  # noqa: E731

    def _strided_fill(self, value):
        v = _fill(empty_cuda((), self._dtype, _index(self)), value)
        return copy_cast(self, v)

    @reg("zero_")
    def _zero_(self):
        return _fill(self, 0) if self.is_contiguous() else _strided_fill(self, 0)

    @reg("fill_")
    def _fill_(self, value):
        if isinstance(value, Tensor):
            if value._storage.device.type == "cuda":
                return copy_cast(self, value)
            value = value.item()
        return _fill(self, value) if self.is_contiguous() else _strided_fill(self, value)

    @reg("clone")
    def _clone(self, memory_format=None):
        out = new_tensor(self._shape, self._dtype, self.device, layout_strides(self, memory_format, "clone"))
        return copy_(out, self)

    OPS["_to_device"].register("cpu", "cuda")(lambda self, device, non_blocking=False:
                                              to_device(self, device, non_blocking))
    OPS["copy_"].register("cuda")(copy_)


_register_factories()
