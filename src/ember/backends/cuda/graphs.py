"""CUDA graphs: capture a stream's work once, replay it with one launch.

Allocations made during capture come from a private pool of the caching allocator owned by the
graph (shareable between graphs via `pool()` / `graph_pool_handle()`), and stay valid until the
graph is reset. As in PyTorch, a graph does not keep alive the tensors it reads and writes that
were made before the capture (parameters, optimizer state, static inputs): a replay after they
were freed works on whatever memory took their place, so keep them referenced while replaying.
Host synchronisation is illegal while a stream captures; ember's own sync points
call `refuse_during_capture(what)`, which raises naming the operation instead of letting the
driver invalidate the capture.
"""
from __future__ import annotations

import itertools

from .capture import CaptureError, capturing as _capturing, lock as _lock, refuse_during_capture
from .checks import err_tensor, mark
from .device import current_device, synchronize
from .driver import check, driver
from .memory import allocator_for
from .stream import Stream, current_stream, stream as stream_ctx

__all__ = ["CUDAGraph", "graph", "graph_pool_handle", "is_current_stream_capturing", "CaptureError",
           "refuse_during_capture"]

_pool_ids = itertools.count(1)


def is_current_stream_capturing() -> bool:
    return current_device() in _capturing


def graph_pool_handle():
    """A new memory-pool id that several graphs can share (`graph(g, pool=handle)`)."""
    return (0, next(_pool_ids))


class CUDAGraph:
    def __init__(self, keep_graph: bool = False):
        self._graph = None
        self._exec = None
        self._pool = None
        self._stream = None
        self._device = None
        self.keep_graph = keep_graph
        self._before_replay = []  # callables run before each launch (random ops: the new Philox state)
        self._checked = False     # a kernel with device-side index checks was captured (checks.py)

    def capture_begin(self, pool=None, capture_error_mode: str = "global"):
        if self._exec is not None:
            raise RuntimeError("this CUDAGraph already holds a captured graph; call reset() before capturing again")
        d = driver()
        self._device = current_device()
        self._stream = current_stream()
        if int(self._stream.handle) == 0:
            raise RuntimeError("cannot capture on the default (legacy) stream; capture inside "
                               "`with ember.cuda.stream(ember.cuda.Stream()):` or use ember.cuda.graph(g), "
                               "which does that for you")
        self._before_replay = []
        self._checked = False
        err_tensor(self._device)  # the error word of index checks: created outside the graph's pool
        self._pool = pool if pool is not None else graph_pool_handle()
        allocator_for(self._device).begin_allocate_to_pool(self._pool, self._stream)
        mode = {"global": d.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_GLOBAL,
                "thread_local": d.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
                "relaxed": d.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED}[capture_error_mode]
        with _lock:
            if self._device in _capturing:
                self._abandon_pool()
                raise RuntimeError(f"another CUDA graph is already being captured on cuda:{self._device}")
            _capturing[self._device] = self
        try:
            check(d.cuStreamBeginCapture(self._stream.handle, mode), "cuStreamBeginCapture")
        except BaseException:
            _capturing.pop(self._device, None)
            self._abandon_pool()
            raise

    def _abandon_pool(self):
        a = allocator_for(self._device)
        a.end_allocate_to_pool(self._pool)
        a.release_pool(self._pool)
        self._pool = None

    def capture_end(self):
        d = driver()
        try:
            self._graph = check(d.cuStreamEndCapture(self._stream.handle), "cuStreamEndCapture")
        finally:
            _capturing.pop(self._device, None)
            allocator_for(self._device).end_allocate_to_pool(self._pool)
        self._exec = check(d.cuGraphInstantiate(self._graph, 0), "cuGraphInstantiate")
        if not self.keep_graph:
            check(d.cuGraphDestroy(self._graph), "cuGraphDestroy")
            self._graph = None

    def replay(self):
        if self._exec is None:
            raise RuntimeError("CUDAGraph.replay() called before a successful capture")
        for f in self._before_replay:
            f()
        check(driver().cuGraphLaunch(self._exec, current_stream(self._device).handle), "cuGraphLaunch")
        if self._checked:   # its index checks write the error word: read it at the next synchronisation
            mark(self._device)

    def reset(self):
        d = driver()
        self._before_replay = []
        if self._exec is not None:
            check(d.cuGraphExecDestroy(self._exec), "cuGraphExecDestroy")
            self._exec = None
        if self._graph is not None:
            check(d.cuGraphDestroy(self._graph), "cuGraphDestroy")
            self._graph = None
        if self._pool is not None:
            allocator_for(self._device).release_pool(self._pool)
            self._pool = None

    def pool(self):
        """This graph's memory-pool id, to share with another graph's capture."""
        return self._pool

    def __del__(self):
        try:
            self.reset()
        except Exception:  # noqa: BLE001
            pass


class graph:  # noqa: N801 - PyTorch's name
    """`with ember.cuda.graph(g, pool=None, stream=None):` captures the block into `g`."""

    def __init__(self, cuda_graph: CUDAGraph, pool=None, stream=None, capture_error_mode: str = "global"):
        self.g = cuda_graph
        self.pool = pool
        self.side = stream if stream is not None else Stream()
        self.mode = capture_error_mode

    def __enter__(self):
        synchronize()
        self.ctx = stream_ctx(self.side)
        self.ctx.__enter__()
        self.g.capture_begin(self.pool, self.mode)
        return self.g

    def __exit__(self, *exc):
        try:
            self.g.capture_end()
        finally:
            self.ctx.__exit__(*exc)
        return False
