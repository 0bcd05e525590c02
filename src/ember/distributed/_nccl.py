"""The NCCL transport of ember.distributed: communicators, and the collectives on CUDA tensors, through
nccl4py's low-level bindings (`nccl.bindings.nccl`, imported when the backend is initialised: `import ember`
never needs them). nccl4py's high-level layer (nccl.core) is not used: its buffer resolution imports torch.

Every operation is enqueued on ember's current CUDA stream of the communicator's device, so it is ordered
with the work before and after it on that stream without the host waiting, and a CUDA graph capturing that
stream captures it. Reductions use NCCL's types (bool as bytes, SUM/PRODUCT as logical or/and, as torch);
operations that only move data move bytes, so they take every dtype.
"""
from __future__ import annotations

import importlib.util
import os
import time

_NCCL = None

# ncclDataType_t and ncclRedOp_t of nccl.h (C enum values: fixed by NCCL's ABI)
_TYPES = {"int8": 0, "uint8": 1, "int32": 2, "int64": 4, "float16": 6, "float32": 7, "float64": 8, "bfloat16": 9}
_BYTES = 1      # ncclUint8
_OPS = {"sum": 0, "product": 1, "max": 2, "min": 3, "avg": 4}
_BOOL_OPS = {"sum": 2, "max": 2, "product": 3, "min": 3}        # 0/1 bytes: or = max, and = min
_IN_PROGRESS = 7    # ncclInProgress


def lib():
    """nccl4py's low-level bindings, imported on first use."""
    global _NCCL
    if _NCCL is None:
        try:
            from nccl.bindings import nccl
        except ImportError as e:
            raise RuntimeError("ember.distributed: backend 'nccl' needs nccl4py, NVIDIA's Python bindings of NCCL, "
                               "with an NCCL library: pip install 'nccl4py[cu12]' (or [cu13], to match your CUDA; "
                               "from a wheel file: pip install nccl4py-*.whl nvidia-nccl-cu12) "
                               f"({type(e).__name__}: {e})") from None
        _NCCL = nccl
    return _NCCL


def available() -> bool:
    """Whether nccl4py's bindings are installed (found, not imported)."""
    if _NCCL is not None:
        return True
    try:
        spec = importlib.util.find_spec("nccl")
    except (ImportError, ValueError):
        return False
    return spec is not None and any(os.path.isdir(os.path.join(p, "bindings"))
                                    for p in (spec.submodule_search_locations or ()))


def device_for(device_id):
    """The CUDA device of this rank's communicators: device_id, else cuda:LOCAL_RANK, else the current device.
    It becomes the current device (as `ember.cuda.set_device`), so that tensors and events default to it."""
    from .. import cuda
    from ..core.device import canonical, device as _device
    if not cuda.is_available():
        raise RuntimeError("ember.distributed: backend 'nccl' needs a CUDA device (ember.cuda.is_available() is "
                           "False); CPU tensors take backend 'mpi'")
    if device_id is not None:
        where, dev = f"device_id={device_id!r}", canonical(device_id)
        if dev.type != "cuda":
            raise ValueError(f"ember.distributed.init_process_group: device_id must be a CUDA device, got "
                             f"{device_id!r}")
        index = dev.index
    elif os.environ.get("LOCAL_RANK"):
        where, index = f"LOCAL_RANK={os.environ['LOCAL_RANK']}", int(os.environ["LOCAL_RANK"])
    else:
        where, index = "the current device", cuda.current_device()
    n = cuda.device_count()
    if not 0 <= index < n:
        raise RuntimeError(f"ember.distributed: backend 'nccl' puts this rank on cuda:{index} ({where}), but this "
                           f"machine has {n} CUDA device(s): start at most {n} ranks per node")
    cuda.set_device(index)
    return _device("cuda", index)


class Comm:
    """An NCCL communicator: the bindings' handle, its device (an ember.device), this rank and the size."""

    def __init__(self, handle, device, rank: int, size: int):
        self._handle, self.device, self.rank, self.size = handle, device, rank, size

    @property
    def handle(self):
        if self._handle is None:
            raise RuntimeError("ember.distributed: this process group's NCCL communicator was aborted (after a "
                               "timeout) or destroyed; create a new process group")
        return self._handle

    def split(self, color: int, key: int):
        """ncclCommSplit (collective over this communicator): the ranks of the same color form a communicator,
        ordered by key; None for color -1 (NCCL_SPLIT_NOCOLOR)."""
        handle = _call(self, "comm_split", "comm_split", self.handle, color, key, 0)
        if color < 0:
            return None
        return Comm(handle, self.device, int(lib().comm_user_rank(handle)), int(lib().comm_count(handle)))

    def destroy(self) -> None:
        if self._handle is not None:
            h, self._handle = self._handle, None
            lib().comm_destroy(h)

    def abort(self) -> None:
        if self._handle is not None:
            h, self._handle = self._handle, None
            lib().comm_abort(h)

    def check(self, what: str) -> None:
        """Raises NCCL's asynchronous error of this communicator, if any."""
        err = int(lib().comm_get_async_error(self.handle))
        if err not in (0, _IN_PROGRESS):
            raise RuntimeError(f"ember.distributed: NCCL reported an error during {what} on {self.device}: "
                               f"{lib().get_error_string(err)} ({_last_error(self)})")


def _last_error(comm) -> str:
    try:
        return lib().get_last_error(comm._handle) or "no detail"
    except Exception:  # noqa: BLE001 - best effort, for the message
        return "no detail"


def _call(comm, what: str, name: str, *args):
    """lib().name(*args), with NCCL's errors raised as RuntimeErrors naming `what` and the device."""
    L = lib()
    try:
        return getattr(L, name)(*args)
    except L.NCCLError as e:
        raise RuntimeError(f"ember.distributed: NCCL's {name} failed during {what} on {comm.device}: {e} "
                           f"({_last_error(comm)})") from None


def unique_id() -> bytes:
    """A new ncclUniqueId (128 bytes), for rank 0 to hand to the others through the store."""
    return bytes(lib().get_unique_id())


def init(uid: bytes, rank: int, size: int, device) -> Comm:
    """This rank's communicator of `size` ranks from rank 0's unique id (blocks until every rank joins); on the
    current CUDA device, which device_for() made `device`."""
    try:
        handle = lib().comm_init_rank_scalable(size, rank, 1, bytearray(uid), 0)     # as nccl.core passes it
    except lib().NCCLError as e:
        raise RuntimeError(f"ember.distributed: NCCL could not create the communicator of rank {rank} of {size} on "
                           f"{device}: {e}") from None
    return Comm(handle, device, rank, size)


def _stream(comm) -> int:
    from ..backends.cuda.stream import current_stream
    return current_stream(comm.device.index).ptr


def _reduction(t, op: str, fn: str) -> tuple:
    """(ncclDataType_t, ncclRedOp_t) of reducing t with op."""
    name = t.dtype.name
    if name == "bool":
        return _BYTES, _BOOL_OPS[op]
    if name not in _TYPES:
        raise TypeError(f"ember.distributed.{fn}: NCCL cannot reduce {name} tensors; it reduces "
                        f"{', '.join(sorted(_TYPES))} and bool")
    return _TYPES[name], _OPS[op]


def all_reduce(comm, t, op: str, fn: str = "all_reduce") -> None:
    dt, code = _reduction(t, op, fn)
    p = t.data_ptr()
    _call(comm, fn, "all_reduce", p, p, t.numel(), dt, code, comm.handle, _stream(comm))


def broadcast(comm, t, root: int) -> None:
    p = t.data_ptr()
    _call(comm, "broadcast", "broadcast", p, p, t.nbytes, _BYTES, root, comm.handle, _stream(comm))


def reduce(comm, t, op: str, root: int) -> None:
    dt, code = _reduction(t, op, "reduce")
    p = t.data_ptr()
    _call(comm, "reduce", "reduce", p, p, t.numel(), dt, code, root, comm.handle, _stream(comm))


def all_gather(comm, out, inp) -> None:
    """out (contiguous, size x inp's bytes) = every rank's inp, in rank order."""
    _call(comm, "all_gather", "all_gather", inp.data_ptr(), out.data_ptr(), inp.nbytes, _BYTES, comm.handle,
          _stream(comm))


def reduce_scatter(comm, out, inp, op: str) -> None:
    dt, code = _reduction(inp, op, "reduce_scatter_tensor")
    _call(comm, "reduce_scatter_tensor", "reduce_scatter", inp.data_ptr(), out.data_ptr(), out.numel(), dt, code,
          comm.handle, _stream(comm))


def grouped(comm, what: str, broadcasts=(), sends=(), recvs=()) -> None:
    """One NCCL group (ncclGroupStart/End) of broadcasts [(tensor, out tensor, root)], sends and receives
    [(pointer, bytes, peer)]: the building block of all_gather into a list, gather, scatter, all_to_all_single and
    batch_isend_irecv. Empty transfers are left out (both sides of one skip it alike)."""
    L, h, s = lib(), comm.handle, _stream(comm)
    _call(comm, what, "group_start")
    try:
        for t, out, root in broadcasts:
            _call(comm, what, "broadcast", t.data_ptr(), out.data_ptr(), out.nbytes, _BYTES, root, h, s)
        for ptr, n, peer in sends:
            if n:
                _call(comm, what, "send", ptr, n, _BYTES, peer, h, s)
        for ptr, n, peer in recvs:
            if n:
                _call(comm, what, "recv", ptr, n, _BYTES, peer, h, s)
    except BaseException:
        try:
            L.group_end()           # NCCL's group depth must come back to 0
        except L.NCCLError:
            pass
        raise
    _call(comm, what, "group_end")


# ---- completion ---------------------------------------------------------------------------------------------

def record_event(comm):
    """An event recorded on the current stream of comm's device, after what was enqueued there."""
    from ..backends.cuda.device import device as on_device
    from ..backends.cuda.stream import Event, current_stream
    with on_device(comm.device.index):
        ev = Event()
        ev.record(current_stream(comm.device.index))
    return ev


def stream_wait(comm, event) -> None:
    """The current stream of comm's device waits (on the GPU) for `event`."""
    from ..backends.cuda.stream import current_stream
    current_stream(comm.device.index).wait_event(event)


def refuse_during_capture(what: str, why: str = "synchronises the host with the GPU") -> None:
    """Raises (CaptureError) naming `what` while a CUDA graph captures: a host wait cannot be captured."""
    from ..backends.cuda.capture import refuse_during_capture as refuse
    refuse(what, why)


def query(comm, event, what: str) -> bool:
    """Whether the work before `event` is done (raises NCCL's asynchronous error, if any). Not while a CUDA graph
    captures: the event would be a node of the graph."""
    refuse_during_capture(f"{what}: Work.is_completed()", "asks the GPU whether an event has passed")
    comm.check(what)
    return event.query()


def host_wait(comm, event, seconds: float, what: str) -> bool:
    """Polls `event` until it has passed (True) or `seconds` pass (False), raising NCCL's asynchronous errors;
    backs off from spinning to 1 ms sleeps."""
    refuse_during_capture(what)
    deadline = time.monotonic() + seconds
    spins = 0
    while not event.query():
        comm.check(what)
        if time.monotonic() > deadline:
            return False
        spins += 1
        time.sleep(0 if spins < 200 else 0.001)
    return True
