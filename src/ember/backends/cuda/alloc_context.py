"""The op the caching allocator's memory history attributes allocations to: a leaf module (it imports
nothing from ember), so the dispatcher or the profiler can set it without importing the CUDA runtime.

- `current_op`: the ember op running now (its name, or any object with a `name` attribute, e.g. the
  dispatcher's Op), or None outside ops. The allocator reads it only while it records history
  (`ember.cuda.memory._record_memory_history`), once per allocation and free; nothing reads it
  otherwise, so setting it costs a module attribute store and nothing more.
- `recording`: True while at least one device's allocator records history. A caller that wants to
  pay nothing when history is off tests it before setting `current_op`:

      from ember.backends.cuda import alloc_context as _ac
      ...
      if _ac.recording:
          prev = _ac.current_op
          _ac.current_op = op          # an Op (its .name is read) or a str
          try:
              return run(...)
          finally:
              _ac.current_op = prev
      return run(...)

  (`op_scope(name)` is the same as a context manager, for tests and rare callers.)

The slot is process-wide, not per thread: allocations of another thread running at the same time
are attributed to whatever op the last setter put there.
"""
from __future__ import annotations

__all__ = ["current_op", "recording", "op_scope", "op_name", "on_change"]

current_op = None
recording = False
_recorders = 0          # allocators recording history (they update `recording` through _set_recording)


def op_name(op):
    """The name recorded for a `current_op` value: None, a str as it is, else its `name`, else str()."""
    if op is None or isinstance(op, str):
        return op
    name = getattr(op, "name", None)
    return name if isinstance(name, str) else str(op)


on_change = None        # called with the new `recording` when it flips (ember.cuda.memory hooks the ops)


def _set_recording(delta: int) -> None:
    """An allocator started (+1) or stopped (-1) recording history."""
    global _recorders, recording
    was = recording
    _recorders = max(_recorders + delta, 0)
    recording = _recorders > 0
    if recording != was and on_change is not None:
        on_change(recording)


class op_scope:  # noqa: N801 - used like a function
    """`with op_scope("matmul"):` sets `current_op` inside and restores the previous value after."""

    __slots__ = ("op", "prev")

    def __init__(self, op):
        self.op = op

    def __enter__(self):
        global current_op
        self.prev = current_op
        current_op = self.op
        return self

    def __exit__(self, *exc):
        global current_op
        current_op = self.prev
        return False
