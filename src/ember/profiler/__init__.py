"""`ember.profiler`, with torch.profiler's shape: where a program's time and memory go, op by op.

    with ember.profiler.profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
                                record_shapes=True, profile_memory=True) as prof:
        with ember.profiler.record_function("step"):
            loss = model(x).sum(); loss.backward()
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")      # opens in ui.perfetto.dev and chrome://tracing

What is recorded:
- every op call (each entry point of `ember.dispatch.OPS`) as a CPU range with its name and, with
  `record_shapes`, its inputs' shapes and dtypes; ranges nest (a composite's inner ops, user ranges);
- every autograd node run by backward as a range named after the node (`MulBackward0`), carrying the
  sequence number of the forward op that created it, with a flow arrow from that op in the trace;
- `record_function(name)` ranges (a context manager or a decorator);
- with `profile_memory`, each tensor storage an op created (bytes, device) and its release;
- with `ProfilerActivity.CUDA` on a machine with a GPU, the kernels (`ember.profiler._cuda`).

Off by default and free when off: while a profiler records, every entry point's code is swapped for a
hand-over to `_Session.call` here (`dispatch.push_op_hook`), so nothing is tested per op call when none
does; the autograd engine tests one flag per node.
"""
from __future__ import annotations

import enum
import functools
import json
import os
import tempfile
import threading
import time
import warnings
import weakref

from .._tensor import Tensor
from ..backends.cuda import alloc_context as _ac
from ..dispatch import PROFILER, pop_op_hook, push_op_hook

__all__ = ["profile", "record_function", "ProfilerActivity", "ProfilerAction", "schedule",
           "tensorboard_trace_handler", "FunctionEvent", "EventList", "supported_activities"]

_now = time.perf_counter_ns


class ProfilerActivity(enum.Enum):
    CPU = 0
    CUDA = 1


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def supported_activities() -> set:
    """CPU always; CUDA where a GPU is present."""
    out = {ProfilerActivity.CPU}
    try:
        from .. import cuda
        if cuda.is_available():
            out.add(ProfilerActivity.CUDA)
    except Exception:  # noqa: BLE001 - no CUDA stack at all
        pass
    return out


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0):
    """torch.profiler.schedule: after `skip_first` steps, cycles of `wait` idle steps, `warmup` steps
    recorded and discarded, and `active` recorded steps, the last of which saves (`on_trace_ready`);
    `repeat` cycles (0: for ever)."""
    for name, v in (("wait", wait), ("warmup", warmup), ("active", active), ("repeat", repeat),
                    ("skip_first", skip_first)):
        if not isinstance(v, int) or v < 0:
            raise ValueError(f"schedule: {name} must be a non-negative int, got {v!r}")
    if active < 1:
        raise ValueError(f"schedule: active must be at least 1, got {active}")
    cycle = wait + warmup + active

    def action(step: int) -> ProfilerAction:
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if repeat and step // cycle >= repeat:
            return ProfilerAction.NONE
        k = step % cycle
        if k < wait:
            return ProfilerAction.NONE
        if k < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD_AND_SAVE if k == cycle - 1 else ProfilerAction.RECORD
    return action


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None, use_gzip: bool = False):
    """An `on_trace_ready` that writes each saved trace as `<worker>.<time>.pt.trace.json` into dir_name."""
    def handler(prof):
        os.makedirs(dir_name, exist_ok=True)
        worker = worker_name or f"{os.uname().nodename}_{os.getpid()}"
        path = os.path.join(dir_name, f"{worker}.{time.time_ns() // 1000000}.pt.trace.json" + (".gz" if use_gzip
                                                                                              else ""))
        prof.export_chrome_trace(path)
    return handler


# ---- events ---------------------------------------------------------------------------------------

class FunctionEvent:
    """One range: an op call, an autograd node, or a user range. Times in ns (perf_counter)."""
    __slots__ = ("name", "kind", "start", "end", "tid", "parent", "children", "shapes", "dtypes", "seq",
                 "cpu_mem", "cuda_mem", "self_cpu_mem", "self_cuda_mem", "kernels", "ident", "__weakref__")

    def __init__(self, name, kind, start, tid, parent, ident):
        self.name = name
        self.kind = kind        # "op", "backward", "user"
        self.start = start
        self.end = start
        self.tid = tid
        self.parent = parent
        self.children = []
        self.shapes = None
        self.dtypes = None
        self.seq = None
        self.cpu_mem = self.cuda_mem = self.self_cpu_mem = self.self_cuda_mem = 0
        self.kernels = []       # (name, start_ns, end_ns) of GPU kernels correlated with this range
        self.ident = ident

    @property
    def cpu_time_total(self) -> float:
        """µs."""
        return (self.end - self.start) / 1000.0

    @property
    def self_cpu_time_total(self) -> float:
        return self.cpu_time_total - sum(c.cpu_time_total for c in self.children)

    @property
    def device_time_total(self) -> float:
        """µs of GPU kernels launched within this range, its children's included."""
        return self.self_device_time_total + sum(c.device_time_total for c in self.children)

    @property
    def self_device_time_total(self) -> float:
        return sum(e - s for _, s, e in self.kernels) / 1000.0

    cuda_time_total = device_time_total
    self_cuda_time_total = self_device_time_total

    def __repr__(self) -> str:
        return (f"<FunctionEvent {self.name} ({self.kind}) cpu {self.cpu_time_total:.1f}us"
                f"{'' if not self.kernels else f', gpu {self.self_device_time_total:.1f}us'}>")


class _Average:
    __slots__ = ("key", "count", "cpu_time_total", "self_cpu_time_total", "device_time_total",
                 "self_device_time_total", "cpu_memory_usage", "self_cpu_memory_usage", "device_memory_usage",
                 "self_device_memory_usage", "input_shapes")

    def __init__(self, key, shapes):
        self.key = key
        self.input_shapes = shapes
        self.count = 0
        self.cpu_time_total = self.self_cpu_time_total = 0.0
        self.device_time_total = self.self_device_time_total = 0.0
        self.cpu_memory_usage = self.self_cpu_memory_usage = 0
        self.device_memory_usage = self.self_device_memory_usage = 0

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / self.count if self.count else 0.0

    @property
    def device_time(self) -> float:
        return self.device_time_total / self.count if self.count else 0.0

    cuda_time_total = property(lambda self: self.device_time_total)
    self_cuda_time_total = property(lambda self: self.self_device_time_total)

    def __repr__(self) -> str:
        return f"<FunctionEventAvg {self.key}: {self.count} calls, cpu total {self.cpu_time_total:.1f}us>"


def _fmt_time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _fmt_mem(b: int) -> str:
    a = abs(b)
    for unit, div in (("Gb", 1 << 30), ("Mb", 1 << 20), ("Kb", 1 << 10)):
        if a >= div:
            return f"{b / div:.2f} {unit}"
    return f"{b} b"


_SORT_KEYS = ("cpu_time_total", "self_cpu_time_total", "cpu_time", "count", "device_time_total",
              "self_device_time_total", "cuda_time_total", "self_cuda_time_total", "cpu_memory_usage",
              "self_cpu_memory_usage", "device_memory_usage", "self_device_memory_usage")


class EventList(list):
    """A list of FunctionEvent, or (from key_averages) of averages with `.table()`."""

    def __init__(self, items=(), *, profiler=None, averages=False):
        super().__init__(items)
        self._profiler = profiler
        self._averages = averages

    def key_averages(self, group_by_input_shape: bool = False) -> "EventList":
        groups = {}
        for ev in self:
            shapes = str(ev.shapes) if group_by_input_shape and ev.shapes is not None else ""
            key = (ev.name, shapes)
            a = groups.get(key)
            if a is None:
                a = groups[key] = _Average(ev.name, shapes)
            a.count += 1
            a.cpu_time_total += ev.cpu_time_total
            a.self_cpu_time_total += ev.self_cpu_time_total
            a.device_time_total += ev.device_time_total
            a.self_device_time_total += ev.self_device_time_total
            a.cpu_memory_usage += ev.cpu_mem
            a.self_cpu_memory_usage += ev.self_cpu_mem
            a.device_memory_usage += ev.cuda_mem
            a.self_device_memory_usage += ev.self_cuda_mem
        out = EventList(groups.values(), profiler=self._profiler, averages=True)
        out._by_shape = group_by_input_shape
        return out

    def table(self, sort_by: str | None = None, row_limit: int = 100, max_name_column_width: int = 55,
              header: str | None = None) -> str:
        """torch's table: Name, Self CPU %, Self CPU, CPU total %, CPU total, CPU time avg (and the device
        columns when GPU time was recorded, the memory ones with profile_memory), # of Calls."""
        rows = self if self._averages else self.key_averages()
        if sort_by is not None:
            if sort_by not in _SORT_KEYS:
                raise ValueError(f"table(): sort_by must be one of {_SORT_KEYS}, got {sort_by!r}")
            rows = sorted(rows, key=lambda a: getattr(a, sort_by), reverse=True)
        if row_limit is not None and row_limit > 0:
            rows = rows[:row_limit]
        every = list(self if self._averages else self.key_averages())
        self_total = sum(a.self_cpu_time_total for a in every) or 1.0
        dev_total = sum(a.self_device_time_total for a in every)
        with_dev = dev_total > 0
        with_mem = self._profiler is not None and self._profiler.profile_memory
        mem_dev = with_mem and ProfilerActivity.CUDA in self._profiler.activities
        shapes = getattr(self, "_by_shape", False)
        width = min(max_name_column_width, max([len(a.key) for a in rows] + [4]))
        cols = [("Name", width)] + [(c, 12) for c in ("Self CPU %", "Self CPU", "CPU total %", "CPU total",
                                                     "CPU time avg")]
        if with_dev:
            cols += [(c, 12) for c in ("Self CUDA", "Self CUDA %", "CUDA total", "CUDA time avg")]
        if with_mem:
            cols += [(c, 12) for c in ("CPU Mem", "Self CPU Mem") + (("CUDA Mem", "Self CUDA Mem") if mem_dev else ())]
        cols.append(("# of Calls", 12))
        if shapes:
            cols.append(("Input Shapes", 40))
        line = "  ".join("-" * w for _, w in cols)
        out = [line] if header is None else [header, line]
        out.append("  ".join(n.rjust(w) for n, w in cols))
        out.append(line)
        for a in rows:
            name = a.key if len(a.key) <= width else a.key[:width - 3] + "..."
            vals = [name.ljust(width), f"{100 * a.self_cpu_time_total / self_total:.2f}%",
                    _fmt_time(a.self_cpu_time_total), f"{100 * a.cpu_time_total / self_total:.2f}%",
                    _fmt_time(a.cpu_time_total), _fmt_time(a.cpu_time)]
            if with_dev:
                vals += [_fmt_time(a.self_device_time_total), f"{100 * a.self_device_time_total / dev_total:.2f}%",
                         _fmt_time(a.device_time_total), _fmt_time(a.device_time)]
            if with_mem:
                vals += [_fmt_mem(a.cpu_memory_usage), _fmt_mem(a.self_cpu_memory_usage)]
            if mem_dev:
                vals += [_fmt_mem(a.device_memory_usage), _fmt_mem(a.self_device_memory_usage)]
            vals.append(str(a.count))
            if shapes:
                vals.append(a.input_shapes)
            out.append(vals[0] + "  " + "  ".join(v.rjust(w) for v, (_, w) in zip(vals[1:], cols[1:])))
        out.append(line)
        out.append(f"Self CPU time total: {_fmt_time(sum(a.self_cpu_time_total for a in every))}")
        if with_dev:
            out.append(f"Self CUDA time total: {_fmt_time(dev_total)}")
        return "\n".join(out) + "\n"

    def __str__(self) -> str:
        return self.table()


# ---- recording ------------------------------------------------------------------------------------

def _describe(v):
    """(shape, dtype) of an argument for record_shapes: a tensor's, a list of tensors' as lists, [] else."""
    if isinstance(v, Tensor):
        return list(v._shape), str(v._dtype).replace("ember.", "")
    if isinstance(v, (list, tuple)) and v and all(isinstance(t, Tensor) for t in v):
        return [list(t._shape) for t in v], "TensorList"
    if v is None:
        return [], ""
    return [], "Scalar" if isinstance(v, (int, float, bool)) else type(v).__name__


class _Session:
    """What one profile() records while it is active."""

    def __init__(self, prof):
        self.prof = prof
        self.events = []
        self.memory = []          # (ts_ns, bytes (negative: freed), device str, total after, owner name)
        self.local = threading.local()
        self.ident = 0
        self.totals = {}          # device str -> bytes held by storages this session saw allocated
        self.gpu = None

    def _stack(self):
        st = getattr(self.local, "stack", None)
        if st is None:
            st = self.local.stack = []
        return st

    def begin(self, name, kind):
        st = self._stack()
        parent = st[-1] if st else None
        self.ident += 1
        ev = FunctionEvent(name, kind, _now(), threading.get_ident(), parent, self.ident)
        if parent is not None:
            parent.children.append(ev)
        st.append(ev)
        self.events.append(ev)
        if self.gpu is not None:
            self.gpu.push(ev)
        return ev

    def end(self, ev):
        ev.end = _now()
        st = self._stack()
        if st and st[-1] is ev:
            st.pop()
        elif ev in st:
            st.remove(ev)
        if self.gpu is not None:
            self.gpu.pop(ev)

    def call(self, op, plain, pos, kw):
        ev = self.begin(op.name, "op")
        if _ac.recording:           # the allocator's memory history attributes allocations to this op
            prev, _ac.current_op = _ac.current_op, op
        try:
            r = plain(*pos, **kw)
        finally:
            self.end(ev)
            if _ac.recording:
                _ac.current_op = prev
        if self.prof.record_shapes:
            vals = list(pos) + [v for k, v in kw.items() if k not in ("out",)]
            d = [_describe(v) for v in vals]
            ev.shapes = [s for s, _ in d]
            ev.dtypes = [t for _, t in d]
        g = getattr(r, "_grad_fn", None) if isinstance(r, Tensor) else None
        if g is not None:
            ev.seq = g._seq
        if self.prof.profile_memory:
            self._new_storages(ev, r)
        return r

    def node(self, node, grads):
        ev = self.begin(node.name(), "backward")
        ev.seq = node._seq
        try:
            return node.apply(grads)
        finally:
            self.end(ev)

    # -- memory: the storages an op's results bring into being, and their release ------------------
    def _new_storages(self, ev, r):
        seen = getattr(self.local, "seen", None)
        if seen is None:
            seen = self.local.seen = weakref.WeakSet()
        for t in (r if isinstance(r, (tuple, list)) else (r,)):
            if not isinstance(t, Tensor):
                continue
            st = t._storage
            if st in seen or t._base is not None:
                continue
            seen.add(st)
            dev = str(st.device)
            n = st.nbytes
            self._mem(n, dev, ev.name)
            if dev == "cpu":
                ev.cpu_mem += n
                ev.self_cpu_mem += n
            else:
                ev.cuda_mem += n
                ev.self_cuda_mem += n
            p = ev.parent
            while p is not None:
                if dev == "cpu":
                    p.cpu_mem += n
                else:
                    p.cuda_mem += n
                p = p.parent
            weakref.finalize(st, self._freed, n, dev, weakref.ref(self))

    def _mem(self, n, dev, owner):
        tot = self.totals.get(dev, 0) + n
        self.totals[dev] = tot
        self.memory.append((_now(), n, dev, tot, owner))

    @staticmethod
    def _freed(n, dev, ref):
        s = ref()
        if s is not None and s.prof._recording:
            s._mem(-n, dev, "")


_active = []      # the profiles recording now (one at a time: the dispatcher has one slot)


def _install(session):
    if _active:
        raise RuntimeError("ember.profiler: another profiler is already recording; profilers do not nest")
    push_op_hook(session.call, session.node)


def _uninstall(session):
    pop_op_hook(session.call)


class profile:
    """torch.profiler.profile. As a context manager (`with profile(...) as prof:`) or through
    `start()`/`step()`/`stop()`; with a `schedule`, `step()` moves through its actions and each saved
    cycle calls `on_trace_ready(prof)`."""

    def __init__(self, *, activities=None, schedule=None, on_trace_ready=None, record_shapes: bool = False,
                 profile_memory: bool = False, with_stack: bool = False, with_flops: bool = False,
                 with_modules: bool = False, experimental_config=None, execution_trace_observer=None,
                 acc_events: bool = False, use_cuda=None):
        acts = set(activities) if activities is not None else {ProfilerActivity.CPU, ProfilerActivity.CUDA}
        for a in acts:
            if not isinstance(a, ProfilerActivity):
                raise TypeError(f"profile(): activities must be ProfilerActivity values, got {a!r}")
        if use_cuda:
            acts.add(ProfilerActivity.CUDA)
        if ProfilerActivity.CUDA in acts and ProfilerActivity.CUDA not in supported_activities():
            if activities is not None:
                warnings.warn("ember.profiler: CUDA activity requested, but no GPU is available; recording CPU "
                              "ranges only", UserWarning, stacklevel=2)
            acts.discard(ProfilerActivity.CUDA)
        self.activities = acts
        self.schedule = schedule
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.acc_events = acc_events
        self.step_num = 0
        self._session = None
        self._recording = False
        self._saved = None        # the session of the last finished recording
        self._action = ProfilerAction.RECORD if schedule is None else schedule(0)

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self._apply(self._action)

    def stop(self):
        if self._recording:
            self._finish(save=self.schedule is None or self._action is ProfilerAction.RECORD_AND_SAVE
                         or self._action is ProfilerAction.RECORD)

    def step(self):
        """Marks the end of a training step: the schedule's next action starts."""
        prev = self._action
        self.step_num += 1
        if self.schedule is None:
            return
        nxt = self.schedule(self.step_num)
        if self._recording and prev is ProfilerAction.RECORD_AND_SAVE:
            self._finish(save=True)
        elif self._recording and prev is ProfilerAction.WARMUP and nxt not in (ProfilerAction.RECORD,
                                                                               ProfilerAction.RECORD_AND_SAVE):
            self._finish(save=False)
        elif self._recording and prev is ProfilerAction.WARMUP:
            self._session.events.clear()       # warm-up steps are recorded and thrown away
            self._session.memory.clear()
        self._action = nxt
        self._apply(nxt)

    def _apply(self, action):
        if action is ProfilerAction.NONE or self._recording:
            return
        self._session = _Session(self)
        if ProfilerActivity.CUDA in self.activities:
            from ._cuda import GpuRecorder
            self._session.gpu = GpuRecorder()
        _install(self._session)
        self._recording = True
        _active.append(self)

    def _finish(self, save: bool):
        s = self._session
        _uninstall(s)
        if s.gpu is not None:
            s.gpu.finish(s)
        self._recording = False
        if self in _active:
            _active.remove(self)
        if save:
            self._saved = s
            if self.on_trace_ready is not None:
                self.on_trace_ready(self)

    # -- results ----------------------------------------------------------------------------------
    def _events_session(self):
        s = self._saved if self._saved is not None else self._session
        if s is None:
            raise RuntimeError("ember.profiler: nothing was recorded yet (use profile() as a context manager or "
                               "call start()/stop())")
        return s

    def events(self) -> EventList:
        return EventList(self._events_session().events, profiler=self)

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0) -> EventList:
        if group_by_input_shape and not self.record_shapes:
            raise RuntimeError("key_averages(group_by_input_shape=True) needs profile(record_shapes=True)")
        return self.events().key_averages(group_by_input_shape)

    def export_chrome_trace(self, path: str) -> None:
        """Writes the trace in the Chrome trace-event format (ui.perfetto.dev, chrome://tracing),
        atomically (a temporary file in the same folder, then a rename)."""
        data = _chrome_trace(self._events_session(), self)
        d = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".ember-trace-", suffix=".json")
        try:
            if path.endswith(".gz"):
                import gzip
                os.close(fd)
                with gzip.open(tmp, "wt") as f:
                    json.dump(data, f)
            else:
                with os.fdopen(fd, "w") as f:
                    json.dump(data, f)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def _chrome_trace(s: _Session, prof) -> dict:
    pid = os.getpid()
    t0 = min([e.start for e in s.events] + [m[0] for m in s.memory] + [_now()])
    us = lambda ns: (ns - t0) / 1000.0   # noqa: E731
    cat = {"op": "cpu_op", "backward": "cpu_op", "user": "user_annotation"}
    out = []
    fwd = {}
    for e in s.events:
        args = {"External id": e.ident}
        if e.seq is not None:
            args["Sequence number"] = e.seq
        if e.shapes is not None:
            args["Input Dims"] = e.shapes
            args["Input type"] = e.dtypes
        out.append({"ph": "X", "cat": cat[e.kind], "name": e.name, "pid": pid, "tid": e.tid, "ts": us(e.start),
                    "dur": (e.end - e.start) / 1000.0, "args": args})
        if e.seq is not None and e.kind == "op":
            fwd.setdefault(e.seq, e)
    for e in s.events:      # forward -> backward arrows
        if e.kind == "backward" and e.seq in fwd:
            f = fwd[e.seq]
            out.append({"ph": "s", "id": e.seq, "pid": pid, "tid": f.tid, "ts": us(f.start), "cat": "fwdbwd",
                        "name": "fwdbwd"})
            out.append({"ph": "f", "id": e.seq, "pid": pid, "tid": e.tid, "ts": us(e.start), "cat": "fwdbwd",
                        "name": "fwdbwd", "bp": "e"})
    for ts, n, dev, tot, owner in s.memory:
        out.append({"ph": "i", "cat": "cpu_instant_event", "s": "t", "name": "[memory]", "pid": pid, "tid": 0,
                    "ts": us(ts), "args": {"Device Type": 0 if dev == "cpu" else 1,
                                           "Device Id": -1 if dev == "cpu" else int(dev.split(":")[-1] or 0),
                                           "Bytes": n, "Total Allocated": tot, "Op": owner}})
    if s.gpu is not None:
        out += s.gpu.trace_events(s, t0, pid)
    out.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": "ember (CPU)"}})
    return {"schemaVersion": 1, "deviceProperties": [], "traceName": "ember", "displayTimeUnit": "ms",
            "traceEvents": out}


class record_function:
    """A named range around a block (`with record_function("step"):`) or a function (as a decorator).
    Costs one flag test while no profiler records."""

    def __init__(self, name: str, args: str | None = None):
        if not isinstance(name, str):
            raise TypeError(f"record_function(): name must be a str, got {type(name).__name__}")
        self.name = name
        self.args = args
        self._ev = None
        self._session = None

    def __enter__(self):
        if PROFILER.on and _active:
            self._session = _active[-1]._session
            self._ev = self._session.begin(self.name, "user")
        return self

    def __exit__(self, *exc):
        if self._ev is not None:
            self._session.end(self._ev)
            self._ev = self._session = None
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*a, **k):
            with record_function(self.name, self.args):
                return fn(*a, **k)
        return wrapped
