"""Memory statistics and controls of the caching allocator, with PyTorch's names."""
from __future__ import annotations

import json
import os
import sys
import tempfile

from ..backends.cuda import alloc_context as _ac
from ..backends.cuda.device import index_of, mem_get_info
from ..dispatch import pop_op_hook, push_op_hook


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


def _record_memory_history(enabled="all", context="all", stacks="python", max_entries: int = sys.maxsize,
                           device=None, *, max_frames: int = 8) -> None:
    """Start or stop recording the caching allocator's history (torch.cuda.memory._record_memory_history).

    - `enabled`: "all" (or True) records a trace entry per allocator event, at most `max_entries`
      (the oldest are dropped); "state" records only the context of blocks allocated from now on
      (what `_snapshot()["segments"]` shows); None (or False) stops recording and drops the trace.
    - `context`: which events record a Python stack of up to `max_frames` frames: "all"
      (allocations and frees), "alloc" (allocations), "state" (allocated blocks only, not the
      trace) or None. Every event records the ember op running when it happened (set by the
      dispatcher in `ember.backends.cuda.alloc_context.current_op`).
    - `stacks`: "python" or "all"; ember has only Python frames, so both record those.
    - `device`: the device to record (default: the current one).
    """
    if stacks not in ("python", "all"):
        raise ValueError(f"_record_memory_history: stacks must be 'python' or 'all', got {stacks!r}")
    _alloc(device).record_history(enabled, max_entries=max_entries, max_frames=max_frames, context=context)


_hooked = [False]


def _op_scope(op, plain, pos, kw):
    """The dispatcher's op hook while history records: each op call sets the op that allocations are
    attributed to (a profiler recording at the same time does the same in its own hook)."""
    prev = _ac.current_op
    _ac.current_op = op
    try:
        return plain(*pos, **kw)
    finally:
        _ac.current_op = prev


def _hook_ops(on: bool) -> None:
    """Called by alloc_context when recording starts or stops on any allocator."""
    if on and not _hooked[0]:
        push_op_hook(_op_scope)
        _hooked[0] = True
    elif not on and _hooked[0]:
        pop_op_hook(_op_scope)
        _hooked[0] = False


_ac.on_change = _hook_ops


def _stream_id(s):
    """A stream as JSON: the default stream (None) as 0, an ember Stream as its CUstream value."""
    if s is None:
        return 0
    if isinstance(s, (int, str)):
        return s
    ptr = getattr(s, "ptr", None)
    return ptr if isinstance(ptr, int) else str(s)


def _jsonable(x):
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return str(x)


def _snapshot(device=None) -> dict:
    """torch.cuda.memory._snapshot(): the allocator state and history of every device in use
    (only `device`'s, if given), as plain JSON-ready data:

        {"segments": [{"device", "address", "total_size", "allocated_size", "active_size",
                       "requested_size", "stream", "segment_type": "small"|"large",
                       "segment_pool_id", "is_expandable", ["frames", "op"],
                       "blocks": [{"address", "size", "requested_size",
                                   "state": "active_allocated"|"active_pending_free"|"inactive",
                                   ["frames", "op"]}]}],
         "device_traces": [[{"action": "alloc"|"free_requested"|"free_completed"|"segment_alloc"|
                                       "segment_free"|"oom",
                             "addr", "size", "stream", "op", "frames": [{"filename", "line", "name"}],
                             "time_us", "seq"}]]}

    `device_traces[i]` is device i's trace, oldest first. Streams are integers (the CUstream
    handle; 0 for the default stream); "op" is the ember op that was running, or null; "frames" is
    innermost first. Blocks and segments carry "frames" and "op" when they were allocated while
    history was recorded.
    """
    from ..backends.cuda.memory import _allocators
    if device is None:
        allocs = sorted(_allocators.items())
    else:
        allocs = [(index_of(device), _alloc(device))]
    segments = []
    traces = [[] for _ in range(max((i for i, _ in allocs), default=-1) + 1)]
    for i, a in allocs:
        full = a.full_snapshot()
        for seg in full["segments"]:
            seg = dict(seg, stream=_stream_id(seg["stream"]))
            segments.append(seg)
        traces[i] = [dict(e, stream=_stream_id(e["stream"])) for e in full["device_traces"][0]]
    return _jsonable({"segments": segments, "device_traces": traces})


def _dump_snapshot(filename: str = "dump_snapshot.json", device=None) -> str:
    """Write `_snapshot(device)` to `filename` as JSON (torch writes a pickle; ember writes JSON),
    atomically: to a temporary file in the same folder, then renamed over `filename`. Returns
    `filename`. Draw it with `python -m ember.cuda.memory_viz FILENAME`."""
    snap = _snapshot(device)
    filename = os.fspath(filename)
    folder = os.path.dirname(os.path.abspath(filename))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(filename) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(snap, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)        # mkstemp made it private; a dump is an ordinary file
        os.replace(tmp, filename)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return filename


__all__ = ["memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved",
           "reset_peak_memory_stats", "reset_max_memory_allocated", "reset_accumulated_memory_stats",
           "memory_stats", "memory_summary", "memory_snapshot", "empty_cache", "set_per_process_memory_fraction",
           "_record_memory_history", "_snapshot", "_dump_snapshot", "mem_get_info"]
