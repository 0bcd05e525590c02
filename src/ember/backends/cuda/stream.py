"""Streams and events, and the current stream per device and thread."""
from __future__ import annotations

import threading

from . import device as _dev
from .capture import refuse_during_capture
from .checks import raise_pending
from .driver import check, driver, ensure_context

__all__ = ["Stream", "Event", "current_stream", "default_stream", "set_current_stream", "ExternalStream"]



class _Local(threading.local):
    def __init__(self):
        self.streams = {}   # device index -> this thread's current stream (absent: not asked yet, the default)


_tls = _Local()


def _done(query: str, handle) -> bool:
    """The driver's `query` (cuStreamQuery or cuEventQuery) of `handle`: True when the work is
    finished, False while it is not ready; any other result raises."""
    d = driver()
    err, = getattr(d, query)(handle)
    if err == d.CUresult.CUDA_SUCCESS:
        return True
    if err == d.CUresult.CUDA_ERROR_NOT_READY:
        return False
    check((err,), query)


def _synchronize(what: str, sync: str, handle, device_index: int) -> None:
    """Waits with the driver's `sync` on `handle`, then raises a device-side index error pending on
    the device (checks.py). Refused during a graph capture (`what` names the call)."""
    refuse_during_capture(what)
    check(getattr(driver(), sync)(handle), sync)
    raise_pending(device_index)


class Stream:
    """A CUDA stream on one device. `Stream()` creates a non-blocking stream on the current device."""

    __slots__ = ("handle", "ptr", "device_index", "priority", "_owned", "__weakref__")

    def __init__(self, device=None, priority: int = 0, *, _handle=None):
        self.device_index = _dev.index_of(device)
        ensure_context(self.device_index)
        d = driver()
        if _handle is not None:
            self.handle = _handle
            self.ptr = int(_handle)     # the handle as an int, for keys and C calls
            self._owned = False
            self.priority = 0
            return
        lo, hi = check(d.cuCtxGetStreamPriorityRange(), "cuCtxGetStreamPriorityRange")
        # PyTorch's convention: priority 0 is the default, negative numbers are higher priority
        prio = max(min(priority, lo), hi)
        self.handle = check(d.cuStreamCreateWithPriority(d.CUstream_flags.CU_STREAM_NON_BLOCKING, prio),
                            "cuStreamCreateWithPriority")
        self.ptr = int(self.handle)
        self._owned = True
        self.priority = prio

    @property
    def device(self):
        from ...core.device import device as _device
        return _device("cuda", self.device_index)

    @property
    def cuda_stream(self) -> int:
        return self.ptr

    def query(self) -> bool:
        """True when all work queued on this stream has finished."""
        return _done("cuStreamQuery", self.handle)

    def synchronize(self) -> None:
        _synchronize("Stream.synchronize()", "cuStreamSynchronize", self.handle, self.device_index)

    def wait_event(self, event: "Event") -> None:
        check(driver().cuStreamWaitEvent(self.handle, event.handle, 0), "cuStreamWaitEvent")

    def wait_stream(self, stream: "Stream") -> None:
        self.wait_event(stream.record_event())

    def record_event(self, event: "Event | None" = None) -> "Event":
        event = event or Event()
        event.record(self)
        return event

    def __eq__(self, other) -> bool:
        return isinstance(other, Stream) and self.ptr == other.ptr and \
            self.device_index == other.device_index

    def __hash__(self) -> int:
        return hash((self.ptr, self.device_index))

    def __repr__(self) -> str:
        return f"<ember.cuda.Stream device=cuda:{self.device_index} cuda_stream={hex(self.ptr)}>"

    def __del__(self):
        if getattr(self, "_owned", False):
            try:
                driver().cuStreamDestroy(self.handle)
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass


class ExternalStream(Stream):
    """Wraps a stream created elsewhere (a `CUstream` handle or its integer value); never destroyed here."""

    __slots__ = ()

    def __init__(self, stream_ptr, device=None):
        d = driver()
        super().__init__(device, _handle=d.CUstream(int(stream_ptr)))


class Event:
    """A CUDA event: record on a stream, wait on it from another, query, time."""

    __slots__ = ("handle", "enable_timing", "blocking", "device_index", "_recorded", "__weakref__")

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False):
        d = driver()
        flags = 0 if enable_timing else int(d.CUevent_flags.CU_EVENT_DISABLE_TIMING)
        if blocking:
            flags |= int(d.CUevent_flags.CU_EVENT_BLOCKING_SYNC)
        self.device_index = _dev.current_device()
        ensure_context(self.device_index)
        self.handle = check(d.cuEventCreate(flags), "cuEventCreate")
        self.enable_timing = enable_timing
        self.blocking = blocking
        self._recorded = False

    def record(self, stream: Stream | None = None) -> None:
        stream = stream or current_stream()
        check(driver().cuEventRecord(self.handle, stream.handle), "cuEventRecord")
        self._recorded = True

    def wait(self, stream: Stream | None = None) -> None:
        (stream or current_stream()).wait_event(self)

    def query(self) -> bool:
        """True when the work before this event's record has finished."""
        return _done("cuEventQuery", self.handle)

    def synchronize(self) -> None:
        _synchronize("Event.synchronize()", "cuEventSynchronize", self.handle, self.device_index)

    def elapsed_time(self, end_event: "Event") -> float:
        """Milliseconds between this event and `end_event` (both recorded, with enable_timing=True)."""
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("elapsed_time needs both events created with enable_timing=True")
        return check(driver().cuEventElapsedTime(self.handle, end_event.handle), "cuEventElapsedTime")

    def __repr__(self) -> str:
        return f"<ember.cuda.Event {hex(int(self.handle))}>"

    def __del__(self):
        try:
            driver().cuEventDestroy(self.handle)
        except Exception:  # noqa: BLE001
            pass


_default_streams = {}


def default_stream(device=None) -> Stream:
    """The device's default (legacy NULL) stream, as in PyTorch."""
    i = device if device.__class__ is int else _dev.index_of(device)
    s = _default_streams.get(i)
    if s is None:
        d = driver()
        s = _default_streams[i] = Stream(i, _handle=d.CUstream(0))
    return s


def current_stream(device=None) -> Stream:
    """This thread's current stream on `device` (the default stream unless `stream(s)` or set_current_stream)."""
    i = device if device.__class__ is int else _dev.index_of(device)
    streams = _tls.streams
    s = streams.get(i)
    if s is None:   # remembered, so that the launch path's `_tls.streams.get(i)` finds it next time
        s = streams[i] = _default_streams.get(i) or default_stream(i)
    return s


def set_current_stream(stream: Stream) -> None:
    _tls.streams[stream.device_index] = stream


class stream:  # noqa: N801 - PyTorch's name
    """`with ember.cuda.stream(s):` makes `s` the current stream (and its device current) inside."""

    def __init__(self, s: Stream | None):
        self.s = s

    def __enter__(self):
        if self.s is None:
            return self
        self._prev_dev = _dev.current_device()
        self._prev = current_stream(self.s.device_index)
        _dev.set_device(self.s.device_index)
        set_current_stream(self.s)
        return self.s

    def __exit__(self, *exc):
        if self.s is None:
            return False
        set_current_stream(self._prev)
        _dev.set_device(self._prev_dev)
        return False
