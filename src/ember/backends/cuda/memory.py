"""Device memory: the driver-backed raw allocator under the caching allocator, CUDA storage
buffers, pinned host memory, and the public statistics functions."""
from __future__ import annotations

import ctypes
import threading
import weakref
from collections import deque

import numpy as np

from math import prod

from ..._tensor import Tensor
from ...core.device import device as _device
from ...core.shape import contiguous_strides
from ...core.storage import Storage
from .allocator import CachingAllocator, OutOfMemoryError, RawAllocator, RawOutOfMemory
from .capture import capturing as _capturing
from .driver import CudaError, _tls as _ctx_tls, check, driver, ensure_context
from .stream import _tls as _stream_tls, current_stream

__all__ = ["allocator_for", "CudaBuffer", "alloc_buffer", "pinned_empty", "keep_alive", "OutOfMemoryError"]

_allocators = {}
_lock = threading.Lock()


class _DriverEvent:
    __slots__ = ("handle",)

    def __init__(self):
        d = driver()
        self.handle = check(d.cuEventCreate(int(d.CUevent_flags.CU_EVENT_DISABLE_TIMING)), "cuEventCreate")

    def record(self, stream) -> None:
        check(driver().cuEventRecord(self.handle, stream.handle), "cuEventRecord")

    def query(self) -> bool:
        d = driver()
        err, = d.cuEventQuery(self.handle)
        if err == d.CUresult.CUDA_ERROR_NOT_READY:
            return False
        check((err,), "cuEventQuery")
        return True

    def synchronize(self) -> None:
        check(driver().cuEventSynchronize(self.handle), "cuEventSynchronize")

    def __del__(self):
        try:
            driver().cuEventDestroy(self.handle)
        except Exception:  # noqa: BLE001
            pass


class DriverRawAllocator(RawAllocator):
    """cuMemAlloc / cuMemFree for one device. During a graph capture the calls run in relaxed
    capture mode (the driver would otherwise refuse them and invalidate the capture)."""

    def __init__(self, index: int):
        self.index = index

    def _relaxed(self, fn):
        if not _capturing:
            return fn()
        d = driver()
        prev = check(d.cuThreadExchangeStreamCaptureMode(d.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED),
                     "cuThreadExchangeStreamCaptureMode")
        try:
            return fn()
        finally:
            check(d.cuThreadExchangeStreamCaptureMode(prev), "cuThreadExchangeStreamCaptureMode")

    def malloc(self, nbytes: int) -> int:
        ensure_context(self.index)
        d = driver()

        def go():
            return d.cuMemAlloc(nbytes)
        res = self._relaxed(go)
        if res[0] == d.CUresult.CUDA_ERROR_OUT_OF_MEMORY:
            raise RawOutOfMemory(nbytes)
        return int(check(res, "cuMemAlloc"))

    def free(self, ptr: int) -> None:
        ensure_context(self.index)
        d = driver()
        self._relaxed(lambda: check(d.cuMemFree(d.CUdeviceptr(ptr)), "cuMemFree"))

    def mem_get_info(self) -> tuple:
        ensure_context(self.index)
        free, total = check(driver().cuMemGetInfo(), "cuMemGetInfo")
        return int(free), int(total)

    def new_event(self):
        ensure_context(self.index)
        return _DriverEvent()


def allocator_for(index: int) -> CachingAllocator:
    a = _allocators.get(index)
    if a is None:
        with _lock:
            a = _allocators.get(index)
            if a is None:
                a = _allocators[index] = CachingAllocator(DriverRawAllocator(index), device=index)
    return a


class CudaBuffer:
    """The `data` of a CUDA Storage: one block of the caching allocator, freed (to the cache, on
    its stream) when the last tensor using it goes away."""

    __slots__ = ("ptr", "nbytes", "block", "alloc", "__weakref__")

    def __init__(self, block, alloc, nbytes: int):
        self.block = block
        self.alloc = alloc
        self.ptr = block.ptr if block is not None else 0
        self.nbytes = nbytes

    def __del__(self):
        b = self.block
        if b is not None:
            self.block = None
            try:
                self.alloc.free(b)
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass


def alloc_buffer(nbytes: int, index: int, stream) -> CudaBuffer:
    if nbytes == 0:
        return CudaBuffer(None, None, 0)
    a = allocator_for(index)
    return CudaBuffer(a.malloc(nbytes, stream), a, nbytes)


# ---- pinned host memory -------------------------------------------------------------------------

def pinned_empty(nbytes: int) -> np.ndarray:
    """A uint8 host array in page-locked memory (freed with cuMemFreeHost when the array dies)."""
    d = driver()
    ensure_context(0)
    n = max(nbytes, 1)
    ptr = int(check(d.cuMemHostAlloc(n, 0), "cuMemHostAlloc"))
    buf = (ctypes.c_uint8 * n).from_address(ptr)
    arr = np.frombuffer(buf, dtype=np.uint8, count=nbytes)
    weakref.finalize(buf, _free_host, ptr)
    return arr


def _free_host(ptr):
    try:
        check(driver().cuMemFreeHost(ptr), "cuMemFreeHost")
    except Exception:  # noqa: BLE001
        pass


_pending = deque()


def keep_alive(obj, stream) -> None:
    """Holds `obj` (a host buffer an async copy reads) until the stream's work so far has finished."""
    ev = _DriverEvent()
    ev.record(stream)
    _pending.append((ev, obj))
    while _pending and _pending[0][0].query():
        _pending.popleft()


__all__ += ["CudaError"]


# ---- op outputs ---------------------------------------------------------------------------------

_make = Tensor._make


def empty_cuda(shape, dtype, index: int) -> Tensor:
    """A new contiguous CUDA tensor (the allocation every op output goes through: kept flat)."""
    if shape.__class__ is not tuple:
        shape = tuple(shape)
    nbytes = prod(shape) * dtype.itemsize
    if _ctx_tls.__dict__.get("ctx_index") != index:
        ensure_context(index)
    if nbytes:
        a = _allocators.get(index) or allocator_for(index)
        s = _stream_tls.streams.get(index) or current_stream(index)
        buf = CudaBuffer(a.malloc(nbytes, s), a, nbytes)
    else:
        buf = CudaBuffer(None, None, 0)
    dev = _devices.get(index) or _devices.setdefault(index, _device("cuda", index))
    return _make(Storage(buf, dev, nbytes), shape, contiguous_strides(shape), 0, dtype)


_devices = {}


def new_tensor(shape, dtype, device, strides=None) -> Tensor:
    """An op's new output on `device`: contiguous, or with `strides`, dense strides of `shape` (a permutation of
    the row-major layout: the same bytes). A CPU device is the CUDA host code running through Triton's
    interpreter on CPU tensors (the CI tests), which gets a NumPy-backed tensor."""
    if device.type == "cuda":
        t = empty_cuda(shape, dtype, device.index or 0)
    else:
        t = Tensor._from_numpy(np.empty(tuple(shape), dtype.np), dtype)
    if strides is not None:
        t._stride = strides
        t._np = None        # (a CPU tensor: its NumPy view follows the strides)
    return t
