"""Memory statistics and controls of the caching allocator, with PyTorch's names."""
from __future__ import annotations

from ..backends.cuda.device import index_of, mem_get_info


def _alloc(device=None):
    from ..backends.cuda.memory import allocator_for
    return allocator_for(index_of(device))


def memory_allocated(device=None) -> int:
    return _alloc(device).memory_allocated()


def max_memory_allocated(device=None) -> int:
    return _alloc(device).max_memory_allocated()


def memory_reserved(device=None) -> int:
    return _alloc(device).memory_reserved()


def max_memory_reserved(device=None) -> int:
    return _alloc(device).max_memory_reserved()


def reset_peak_memory_stats(device=None) -> None:
    _alloc(device).reset_peak_stats()


reset_max_memory_allocated = reset_peak_memory_stats


def reset_accumulated_memory_stats(device=None) -> None:
    _alloc(device).reset_accumulated_stats()


def memory_stats(device=None) -> dict:
    return _alloc(device).memory_stats()


def memory_summary(device=None, abbreviated: bool = False) -> str:
    return _alloc(device).memory_summary(abbreviated)


def memory_snapshot(device=None):
    return _alloc(device).snapshot()


def empty_cache() -> None:
    from ..backends.cuda.memory import _allocators
    for a in list(_allocators.values()):
        a.empty_cache()


def set_per_process_memory_fraction(fraction: float, device=None) -> None:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"set_per_process_memory_fraction: fraction must be in [0, 1], got {fraction}")
    _alloc(device).set_memory_fraction(fraction)


def _record_memory_history(enabled="all", context="all", stacks="python", max_entries: int = 100000,
                           device=None) -> None:
    _alloc(device).record_history(bool(enabled), max_entries=max_entries)


__all__ = ["memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved",
           "reset_peak_memory_stats", "reset_max_memory_allocated", "reset_accumulated_memory_stats",
           "memory_stats", "memory_summary", "memory_snapshot", "empty_cache", "set_per_process_memory_fraction",
           "_record_memory_history", "mem_get_info"]
