"""`ember.cuda`: devices, streams, events, memory statistics, CUDA graphs and the random generators' seeds.

Everything here imports without a GPU and without NVIDIA's `cuda-bindings`; `is_available()`
tells whether CUDA can be used, and any other call explains what is missing.
"""
from __future__ import annotations

from ..backends.cuda.allocator import OutOfMemoryError
from ..backends.cuda.device import (current_device, device, get_device_capability, get_device_name,
                                    get_device_properties, mem_get_info, set_device, synchronize)
from ..backends.cuda.driver import CudaError, CudaUnavailable, device_count, is_available
from ..backends.cuda.random import (get_rng_state, get_rng_state_all, initial_seed, manual_seed, manual_seed_all, seed,
                                 seed_all, set_rng_state, set_rng_state_all)
from ..backends.cuda.graphs import CaptureError, CUDAGraph, graph, graph_pool_handle, is_current_stream_capturing
from ..backends.cuda.stream import Event, ExternalStream, Stream, current_stream, default_stream, set_current_stream
from ..backends.cuda.stream import stream
from .graphs import graphed_step, make_graphed_callables
from .memory import (empty_cache, max_memory_allocated, max_memory_reserved, memory_allocated, memory_reserved,
                     memory_snapshot, memory_stats, memory_summary, reset_accumulated_memory_stats,
                     reset_max_memory_allocated, reset_peak_memory_stats, set_per_process_memory_fraction,
                     _record_memory_history)

__all__ = ["is_available", "device_count", "current_device", "set_device", "device", "synchronize",
           "get_device_properties", "get_device_name", "get_device_capability", "mem_get_info", "Stream", "Event",
           "ExternalStream", "stream", "current_stream", "default_stream", "set_current_stream", "CUDAGraph", "graph",
           "graph_pool_handle", "is_current_stream_capturing", "graphed_step", "make_graphed_callables",
           "OutOfMemoryError", "CudaError", "CudaUnavailable",
           "CaptureError", "empty_cache", "memory_allocated", "max_memory_allocated", "memory_reserved",
           "max_memory_reserved", "reset_peak_memory_stats", "reset_max_memory_allocated",
           "reset_accumulated_memory_stats", "memory_stats", "memory_summary", "memory_snapshot",
           "set_per_process_memory_fraction", "_record_memory_history", "is_initialized", "init", "compiled_kernels",
           "manual_seed", "manual_seed_all", "seed", "seed_all", "initial_seed", "get_rng_state", "set_rng_state",
           "get_rng_state_all", "set_rng_state_all"]


def is_initialized() -> bool:
    from ..backends.cuda import driver as _d
    return _d._drv is not None


def init() -> None:
    from ..backends.cuda.driver import driver
    driver()


def compiled_kernels() -> dict:
    """What ember's Triton kernel cache compiled in this process, for debugging:
    {"count": n, "seconds": total compile time, "kernels": [(kernel name, constexprs, seconds), ...]}.
    Works without a GPU (kernels run through Triton's interpreter are not compiled)."""
    from ..backends.cuda.compiler import stats
    return {"count": stats["compiled"], "seconds": stats["compile_seconds"], "kernels": list(stats["variants"])}
