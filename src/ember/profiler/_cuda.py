"""GPU time for `ember.profiler`: each CUDA kernel, timed on the device and tied to the range (op,
autograd node or user range) that launched it, with no synchronisation per op.

With CUPTI (`cupti-python`): the activity API records every kernel, memcpy and memset with its device
start and end; before each range the recorder pushes the range's id as an external correlation id, so
CUPTI ties every launch inside it to that range. Records are read when the profiler stops (one
flush). CUPTI's clock is mapped onto `time.perf_counter_ns` by pairs of readings at the start and the end.

Without CUPTI (`import cupti` fails), a pair of CUDA events per op range times what the range queued
on the current stream; the events are read when the profiler stops. That gives each innermost op its
GPU time, not each kernel (`GpuRecorder.mode` says which is in use).
"""
from __future__ import annotations

import time

__all__ = ["GpuRecorder"]

# RUNTIME too: a library that launches through the CUDA runtime (cuBLASLt) gives its kernels the runtime call's
# correlation id, and CUPTI ties an external id only to the API records it was asked for
_KINDS = ("CONCURRENT_KERNEL", "MEMCPY", "MEMSET", "EXTERNAL_CORRELATION", "DRIVER", "RUNTIME")
_DRIVER_LAUNCHES = ("cuLaunchKernel", "cuLaunchKernelEx", "cuLaunchKernel_ptsz", "cuLaunchKernelEx_ptsz",
                    "cuLaunchCooperativeKernel", "cuLaunchCooperativeKernel_ptsz")
_RUNTIME_LAUNCHES = ("cudaLaunchKernel_v7000", "cudaLaunchKernel_ptsz_v7000", "cudaLaunchKernelExC_v11060",
                     "cudaLaunchKernelExC_ptsz_v11060", "cudaLaunchCooperativeKernel_v9000",
                     "cudaLaunchCooperativeKernel_ptsz_v9000")
_cupti = None
_records = []        # activity records delivered by CUPTI's buffer-completed callback


def _load_cupti():
    global _cupti
    if _cupti is None:
        try:
            from cupti import cupti as c
            _cupti = c
        except Exception:  # noqa: BLE001 - no CUPTI: the CUDA-event fallback
            _cupti = False
    return _cupti


def _buffer_requested():
    return 8 * 1024 * 1024, 0


def _buffer_completed(activities):
    _records.extend(activities)


class GpuRecorder:
    """Per-session GPU timing (CUPTI, else CUDA events); `push`/`pop` bracket each range."""

    def __init__(self):
        from .. import cuda
        cuda.synchronize()
        c = _load_cupti()
        self.mode = "cupti" if c else "events"
        self.kernels = []           # (name, start_ns, end_ns, stream, device, range id) on perf_counter's clock
        self.launches = None        # kernel launches seen by CUPTI's API records (cupti mode)
        self.launch_calls = None    # {"driver": n, "runtime": n, "both": n}: launch API records by kind
        self.unowned = []
        self._pairs = {}            # range id -> (start event, end event) in "events" mode
        if c:
            # every session: CUPTI's buffer callbacks are one per process, and another profiler (torch's Kineto)
            # may have put its own in place since ember's last session, which would then get ember's records
            c.activity_register_callbacks(_buffer_requested, _buffer_completed)
            _records.clear()
            for k in _KINDS:
                c.activity_enable(getattr(c.ActivityKind, k))
            self._kind = c.ExternalCorrelationKind.CUSTOM0
            self._clock0 = (c.get_timestamp(), time.perf_counter_ns())

    def _clock(self, c):
        """CUPTI's timestamps -> perf_counter nanoseconds, from readings of both clocks at the start and now.
        CUPTI's clock is nanoseconds until another profiler registers its own timestamp source: torch's Kineto
        leaves CUPTI reporting TSC ticks (H100 host: 2.0 per ns), which read as ns doubled every duration."""
        c0, p0 = self._clock0
        c1, p1 = c.get_timestamp(), time.perf_counter_ns()
        scale = (p1 - p0) / (c1 - c0) if c1 > c0 else 1.0
        if abs(scale - 1.0) < 0.02:     # nanoseconds: no rescaling, only the offset
            return lambda t: t - c0 + p0
        return lambda t: p0 + int((t - c0) * scale)

    def push(self, ev):
        if self.mode == "cupti":
            _cupti.activity_push_external_correlation_id(self._kind, ev.ident)
        elif ev.kind == "op":
            from .. import cuda
            start = cuda.Event(enable_timing=True)
            start.record()
            self._pairs[ev.ident] = (start, None, ev)

    def pop(self, ev):
        if self.mode == "cupti":
            _cupti.activity_pop_external_correlation_id(self._kind)
        elif ev.ident in self._pairs:
            from .. import cuda
            end = cuda.Event(enable_timing=True)
            end.record()
            start, _, e = self._pairs[ev.ident]
            self._pairs[ev.ident] = (start, end, e)

    def finish(self, session):
        from .. import cuda
        by_id = {e.ident: e for e in session.events}
        if self.mode == "cupti":
            from ..backends.cuda.driver import check, driver
            # the device's work, without ember.cuda.synchronize()'s read of the index checks' error word: that
            # copy is the profiler's, not the program's, so it comes after CUPTI stops recording
            check(driver().cuCtxSynchronize(), "cuCtxSynchronize")
            c = _cupti
            c.activity_flush_all(1)
            for k in _KINDS:
                c.activity_disable(getattr(c.ActivityKind, k))
            ext = {}
            work = []
            drv = {getattr(c.driver_api_trace_cbid, n) for n in _DRIVER_LAUNCHES
                   if hasattr(c.driver_api_trace_cbid, n)}
            rt = {getattr(c.runtime_api_trace_cbid, n) for n in _RUNTIME_LAUNCHES
                  if hasattr(c.runtime_api_trace_cbid, n)}
            by_driver, by_runtime = set(), set()
            api = {}                # correlation id -> (kind, cbid) of the API call
            for r in _records:
                kind = r.kind
                if kind == c.ActivityKind.DRIVER:
                    api[r.correlation_id] = ("driver", r.cbid)
                    if r.cbid in drv:
                        by_driver.add(r.correlation_id)
                elif kind == c.ActivityKind.RUNTIME:
                    api[r.correlation_id] = ("runtime", r.cbid)
                    if r.cbid in rt:
                        by_runtime.add(r.correlation_id)
                elif kind == c.ActivityKind.EXTERNAL_CORRELATION:
                    ext[r.correlation_id] = r.external_id
                elif kind in (c.ActivityKind.CONCURRENT_KERNEL, c.ActivityKind.KERNEL):
                    work.append((r.name, r.start, r.end, r.stream_id, r.device_id, r.correlation_id))
                elif kind == c.ActivityKind.MEMCPY:
                    what = c.ActivityMemcpyKind(r.copy_kind).name        # HTOD -> "Memcpy HtoD", as torch
                    work.append((f"Memcpy {what[0]}to{what[-1]}", r.start, r.end, r.stream_id, r.device_id,
                                 r.correlation_id))
                elif kind == c.ActivityKind.MEMSET:
                    work.append(("Memset", r.start, r.end, r.stream_id, r.device_id, r.correlation_id))
            # one launch per correlation id: a runtime launch and the driver call it makes share none or one
            self.launches = len(by_driver | by_runtime)
            self.launch_calls = {"driver": len(by_driver), "runtime": len(by_runtime),
                                 "both": len(by_driver & by_runtime)}
            _records.clear()
            to_ns = self._clock(c)
            self.unowned = []       # (name, correlation id, API call) of work tied to no range: a diagnosis
            for name, s, e, stream, dev, corr in work:
                rid = ext.get(corr)
                if rid is None:
                    how, cbid = api.get(corr, (None, None))
                    names = c.driver_api_trace_cbid if how == "driver" else c.runtime_api_trace_cbid
                    self.unowned.append((name, corr, how and f"{how} {names(cbid).name}"))
                s, e = to_ns(s), to_ns(e)
                self.kernels.append((name, s, e, stream, dev, rid))
                owner = by_id.get(rid)
                if owner is not None:
                    owner.kernels.append((name, s, e))
            cuda.synchronize()      # reports an index error the recorded kernels found, as any sync would
        else:
            cuda.synchronize()
            for start, end, ev in self._pairs.values():
                if end is None or ev.children:
                    continue        # innermost op ranges only: an outer range's events would count twice
                ms = start.elapsed_time(end)
                t = ev.start
                ev.kernels.append(("(GPU time, CUDA events)", t, t + int(ms * 1e6)))
                self.kernels.append(("(GPU time, CUDA events)", t, t + int(ms * 1e6), 0, 0, ev.ident))

    def trace_events(self, session, t0, pid):
        """Chrome-trace events: each kernel on the GPU's row, with a flow arrow from its launching range."""
        out = []
        by_id = {e.ident: e for e in session.events}
        for i, (name, s, e, stream, dev, rid) in enumerate(self.kernels):
            args = {"device": dev, "stream": stream, "External id": rid, "mode": self.mode}
            out.append({"ph": "X", "cat": "kernel", "name": name, "pid": f"GPU {dev}", "tid": f"stream {stream}",
                        "ts": (s - t0) / 1000.0, "dur": (e - s) / 1000.0, "args": args})
            owner = by_id.get(rid)
            if owner is not None:
                out.append({"ph": "s", "id": i, "pid": pid, "tid": owner.tid, "ts": (owner.start - t0) / 1000.0,
                            "cat": "ac2g", "name": "ac2g"})
                out.append({"ph": "f", "id": i, "pid": f"GPU {dev}", "tid": f"stream {stream}",
                            "ts": (s - t0) / 1000.0, "cat": "ac2g", "name": "ac2g", "bp": "e"})
        return out
