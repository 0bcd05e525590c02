"""The current CUDA device per thread, device properties and memory info."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from .capture import refuse_during_capture
from .checks import raise_pending
from .driver import capability, check, device_attribute, device_count, device_name, driver, ensure_context, \
    total_memory

__all__ = ["current_device", "set_device", "index_of", "device", "get_device_properties", "mem_get_info",
           "synchronize"]

_tls = threading.local()


def current_device() -> int:
    return getattr(_tls, "index", 0)


def set_device(d) -> None:
    i = index_of(d)
    n = device_count()
    if not 0 <= i < n:
        raise RuntimeError(f"set_device: CUDA device {i} does not exist (this machine has {n})")
    _tls.index = i
    ensure_context(i)


def index_of(d) -> int:
    """A device index from None (current), an int, 'cuda', 'cuda:1' or an ember.device."""
    if d is None:
        return current_device()
    if isinstance(d, int):
        return d
    from ...core.device import canonical
    dev = canonical(d)
    if dev.type != "cuda":
        raise ValueError(f"expected a CUDA device, got {dev}")
    return current_device() if dev.index is None else dev.index


class device:  # noqa: N801 - PyTorch's name
    """`with ember.cuda.device(1):` makes device 1 current inside."""

    def __init__(self, d):
        self.idx = index_of(d) if d is not None and d != -1 else None

    def __enter__(self):
        self.prev = current_device()
        if self.idx is not None:
            set_device(self.idx)
        return self

    def __exit__(self, *exc):
        if self.idx is not None:
            set_device(self.prev)
        return False


@dataclass(frozen=True)
class CudaDeviceProperties:
    name: str
    major: int
    minor: int
    total_memory: int
    multi_processor_count: int
    warp_size: int
    max_threads_per_block: int
    max_shared_memory_per_block_optin: int
    l2_cache_size: int

    def __repr__(self) -> str:
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor}, "
                f"total_memory={self.total_memory // (1 << 20)}MB, multi_processor_count="
                f"{self.multi_processor_count})")


_props = {}


def get_device_properties(d=None) -> CudaDeviceProperties:
    i = index_of(d)
    p = _props.get(i)
    if p is None:
        major, minor = capability(i)
        a = lambda n: device_attribute(i, "CU_DEVICE_ATTRIBUTE_" + n)  # noqa: E731
        p = _props[i] = CudaDeviceProperties(
            device_name(i), major, minor, total_memory(i), a("MULTIPROCESSOR_COUNT"), a("WARP_SIZE"),
            a("MAX_THREADS_PER_BLOCK"), a("MAX_SHARED_MEMORY_PER_BLOCK_OPTIN"), a("L2_CACHE_SIZE"))
    return p


def get_device_name(d=None) -> str:
    return get_device_properties(d).name


def get_device_capability(d=None) -> tuple:
    p = get_device_properties(d)
    return (p.major, p.minor)


def mem_get_info(d=None) -> tuple:
    """(free, total) bytes of the device, as the driver reports them."""
    i = index_of(d)
    ensure_context(i)
    free, total = check(driver().cuMemGetInfo(), "cuMemGetInfo")
    return int(free), int(total)


def synchronize(d=None) -> None:
    """Waits for all work on the device to finish (then raises an index error its kernels found)."""
    refuse_during_capture("ember.cuda.synchronize()")
    i = index_of(d)
    ensure_context(i)
    check(driver().cuCtxSynchronize(), "cuCtxSynchronize")
    raise_pending(i)    # device-side index checks (checks.py)
