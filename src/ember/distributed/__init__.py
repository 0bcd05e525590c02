"""ember.distributed: process groups and collectives with torch.distributed's names and semantics.

Two backends. "mpi", for CPU tensors, through mpi4py (the dev extra installs mpi4py and MPICH's wheel, so that
the tests run several ranks on one CPU machine): launch with `mpiexec -n N python script.py`, then
`ember.distributed.init_process_group("mpi")`. "nccl", for CUDA tensors, through nccl4py's low-level bindings
(`pip install 'nccl4py[cu12]'`; imported only when the backend is initialised): launch with
`python -m ember.distributed.run --nproc-per-node N script.py` (or torchrun), then
`init_process_group("nccl")`. Its rendezvous is init_method "env://" (MASTER_ADDR, MASTER_PORT, RANK,
WORLD_SIZE, which the launcher sets) or "tcp://host:port" with rank= and world_size=: rank 0 serves a small
TCP store (`TCPStore`, _store.py) through which its NCCL unique id reaches the others; the data moves through
NCCL. Each rank's communicator is on cuda:LOCAL_RANK (or device_id=, or the current device), which becomes
the current device.

What works: init_process_group / destroy_process_group / is_initialized / is_available / get_rank /
get_world_size / get_backend / new_group / barrier, and the collectives all_reduce (SUM, AVG, PRODUCT,
MIN, MAX), broadcast, reduce, all_gather, all_gather_into_tensor, reduce_scatter_tensor, gather, scatter,
all_to_all_single, send / recv / isend / irecv, batch_isend_irecv. `async_op=True` returns a `Work` with wait()
and is_completed(). Tensors are used in place (their version counter moves, as after any in-place op); they
must be contiguous. Ranks given to src/dst arguments are global ranks, as in torch, also for a subgroup.

On "mpi", every collective is started non-blocking and waited on with the group's timeout, so a rank that
never joins makes the others raise a RuntimeError naming the collective, the group and the timeout, instead of
hanging (MPI then has an operation in flight: the job should end, as torch's does after a timeout). An exception
that nothing catches ends the whole job at once (MPI_Abort after its traceback, as `python -m mpi4py` does):
otherwise its rank's exit would wait in MPI's finalisation for the others, which wait for it in their next
collective, until the timeout. float16/bfloat16 travel as float32 (MPI has no such types) and are rounded
back once.

On "nccl", tensors are CUDA tensors on the communicator's device, and every collective is enqueued on ember's
current CUDA stream of that device: it is ordered with the work around it without the host waiting (a result
is ready for whatever is enqueued next on that stream), and a CUDA graph capturing the stream captures it.
`Work.wait()` makes the current stream wait for the collective; `is_completed()` asks its CUDA event. barrier()
alone waits on the host, up to the group's timeout (then the group's communicator is aborted and a
RuntimeError names the barrier, the group and the timeout). gather, scatter, all_gather into a list and
all_to_all_single are NCCL groups of sends, receives or broadcasts; data that is only moved travels as bytes
(any dtype), reductions take NCCL's types (bool as logical or/and). NCCL has no tags and no receive from any
rank: irecv needs src, and sends and receives that cross between two ranks belong in one batch_isend_irecv
(each send waits on the GPU for its receive). new_group splits the default group's communicator
(ncclCommSplit); destroy_process_group destroys the communicators and closes the store. The launcher ends the
other ranks when one fails.
"""
from __future__ import annotations

import datetime
import os
import sys
import time

import numpy as np

from .._tensor import Tensor
from ..core import dtype as D
from . import _mpi, _nccl, _store
from ._store import TCPStore

__all__ = ["ReduceOp", "Work", "ProcessGroup", "GroupMember", "group", "TCPStore", "P2POp", "is_available",
           "is_mpi_available", "is_nccl_available", "is_initialized", "init_process_group", "destroy_process_group",
           "get_rank", "get_world_size", "get_backend", "new_group", "barrier", "all_reduce", "broadcast", "reduce",
           "all_gather", "all_gather_into_tensor", "reduce_scatter_tensor", "gather", "scatter",
           "all_to_all_single", "send", "recv", "isend", "irecv", "batch_isend_irecv"]

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)     # torch's default for non-NCCL backends
NCCL_DEFAULT_TIMEOUT = datetime.timedelta(minutes=10)  # and for NCCL


class ReduceOp:
    """The reduction of all_reduce / reduce / reduce_scatter_tensor (torch.distributed.ReduceOp)."""
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    _ALL = ("sum", "avg", "product", "min", "max")


class ProcessGroup:
    """A group of ranks with its communicator (mpi4py's, or an _nccl.Comm); `rank()` and `size()` as in torch."""

    def __init__(self, comm, backend: str, ranks: list, timeout: datetime.timedelta, name: str, rank: int,
                 size: int):
        self._comm = comm
        self._backend = backend
        self._ranks = ranks             # global rank of each group rank
        self._timeout = timeout
        self._rank, self._size = rank, size
        self._store = None              # the rendezvous store this group owns ("nccl" default group)
        self._one = None                # "nccl": the byte a barrier all-reduces
        self.group_name = name

    def rank(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size

    def _group_rank(self, global_rank: int, what: str) -> int:
        try:
            return self._ranks.index(global_rank)
        except ValueError:
            raise ValueError(f"ember.distributed: {what} rank {global_rank} is not in group {self.group_name!r} "
                             f"(global ranks {self._ranks})") from None

    def _free(self) -> None:
        if self._backend == "nccl":
            self._comm.destroy()
        else:
            _mpi.free(self._comm)
        if self._store is not None:
            self._store.close()
            self._store = None

    def __repr__(self) -> str:
        return f"<ProcessGroup {self.group_name!r} backend={self._backend} ranks={self._ranks}>"


class _NonMember:
    def __repr__(self):
        return "GroupMember.NON_GROUP_MEMBER"


class GroupMember:
    WORLD = None                    # the default group once initialised
    NON_GROUP_MEMBER = _NonMember()


class group:  # noqa: N801 - torch's name
    WORLD = None


class Work:
    """A started collective: `wait()` blocks until it is done (or the group's timeout passes: RuntimeError),
    `is_completed()` tests without blocking. After wait(), the output tensors hold the result."""

    def __init__(self, requests, finish, what: str, pg: ProcessGroup):
        self._requests = requests
        self._finish = finish           # post-processing once the requests are done (copies, AVG's division)
        self._what = what
        self._pg = pg
        self._done = False

    def is_completed(self) -> bool:
        if self._done:
            return True
        if all(_mpi.test(r) for r in self._requests):
            self._complete()
        return self._done

    def wait(self, timeout: datetime.timedelta | None = None) -> bool:
        if not self._done:
            limit = timeout if timeout is not None else self._pg._timeout
            if not _mpi.wait_all(self._requests, limit.total_seconds()):
                raise RuntimeError(_timed_out(self._what, self._pg, limit))
            self._complete()
        return True

    def _complete(self):
        if self._finish is not None:
            self._finish()
        self._done = True

    def result(self):
        return []


class _CudaWork(Work):
    """A collective of the "nccl" backend, enqueued on the current CUDA stream with an event recorded after it:
    wait() makes the current stream wait for that event (on the GPU: the host goes on, and what is enqueued next
    sees the result; capturable in a CUDA graph); is_completed() asks the event (not during a capture)."""

    def __init__(self, pg: ProcessGroup, what: str):
        super().__init__([], None, what, pg)
        self._event = _nccl.record_event(pg._comm)

    def is_completed(self) -> bool:
        return _nccl.query(self._pg._comm, self._event, self._what)

    def wait(self, timeout: datetime.timedelta | None = None) -> bool:
        _nccl.stream_wait(self._pg._comm, self._event)
        return True


def _timed_out(what: str, pg: ProcessGroup, limit, extra: str = "") -> str:
    return (f"ember.distributed: {what} on group {pg.group_name!r} (rank {get_rank()} of {get_world_size()}) did "
            f"not complete within {limit}: a rank did not join it (stopped, or waiting on another collective)"
            f"{extra}")


_default: ProcessGroup | None = None
_groups: list = []
_inits = 0          # default groups initialised by this process: keys the unique id in a store reused across them


def is_available() -> bool:
    return True


def is_mpi_available() -> bool:
    return _mpi.available()


def is_nccl_available() -> bool:
    """Whether nccl4py is installed (found without importing it)."""
    return _nccl.available()


def is_initialized() -> bool:
    return _default is not None


def _world(fn: str) -> ProcessGroup:
    if _default is None:
        raise RuntimeError(f"ember.distributed.{fn}: Default process group has not been initialized, please make "
                           f"sure to call init_process_group.")
    return _default


def _pg(group, fn: str) -> ProcessGroup | None:
    """The process group `group` stands for (None: the default); None for a rank outside it."""
    world = _world(fn)
    if group is None:
        return world
    if group is GroupMember.NON_GROUP_MEMBER:
        return None
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"ember.distributed.{fn}: group must be a ProcessGroup from new_group() or None, got "
                        f"{type(group).__name__}")
    return group


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: datetime.timedelta | None = None, world_size: int = -1, rank: int = -1,
                       store=None, group_name: str = "", pg_options=None, device_id=None) -> None:
    """Initialises the default process group. backend "mpi" (the default) takes its ranks from the MPI launcher
    (`mpiexec -n N`); world_size and rank, or the RANK and WORLD_SIZE environment variables, if given, must
    agree with it. backend "nccl" meets the other ranks through init_method ("env://", the default, or
    "tcp://host:port"), or through `store` (a TCPStore, with rank= and world_size=), and puts its communicator on
    device_id (default: cuda:LOCAL_RANK, else the current device)."""
    global _default, _inits
    if _default is not None:
        raise RuntimeError("ember.distributed.init_process_group: trying to initialize the default process group "
                           "twice!")
    name = (backend or "mpi").lower()
    if name not in ("mpi", "nccl"):
        raise ValueError(f"ember.distributed.init_process_group: unknown backend {backend!r}; expected 'mpi' (CPU "
                         f"tensors) or 'nccl' (CUDA tensors)")
    if timeout is not None and not isinstance(timeout, datetime.timedelta):
        raise TypeError(f"ember.distributed.init_process_group: timeout must be a datetime.timedelta, got "
                        f"{type(timeout).__name__}")
    if name == "nccl":
        _default = _init_nccl(init_method, timeout or NCCL_DEFAULT_TIMEOUT, world_size, rank, store,
                              group_name or "default_pg", device_id)
        _inits += 1
        GroupMember.WORLD = group.WORLD = _default
        return
    if init_method not in (None, "env://"):
        raise ValueError(f"ember.distributed.init_process_group: the 'mpi' backend takes its rendezvous from the MPI "
                         f"launcher; init_method must be None or 'env://', got {init_method!r}")
    comm = _mpi.world()
    size, me = comm.Get_size(), comm.Get_rank()
    for what, given, env in (("world_size", world_size, "WORLD_SIZE"), ("rank", rank, "RANK")):
        want = size if what == "world_size" else me
        if given is not None and given >= 0 and given != want:
            raise ValueError(f"ember.distributed.init_process_group: {what}={given} but the MPI launcher started "
                             f"this process as {what} {want}")
        if env in os.environ and int(os.environ[env]) != want:
            raise ValueError(f"ember.distributed.init_process_group: {env}={os.environ[env]} but the MPI launcher "
                             f"started this process as {what} {want}")
    _default = ProcessGroup(comm, "mpi", list(range(size)), timeout or DEFAULT_TIMEOUT, group_name or "default_pg",
                            me, size)
    GroupMember.WORLD = group.WORLD = _default
    if size > 1 and sys.excepthook is not _abort_on_uncaught:
        _abort_on_uncaught.previous = sys.excepthook
        sys.excepthook = _abort_on_uncaught


def _init_nccl(init_method, timeout, world_size, rank, store, name, device_id) -> ProcessGroup:
    """The "nccl" default group: the rendezvous is checked first, then nccl4py and the device; rank 0 makes an
    NCCL unique id and hands it to the others through the store; every rank joins the communicator with it."""
    if store is None:
        host, port, rank, world_size = _store.rendezvous(init_method, rank, world_size)
    elif world_size is None or rank is None or world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"ember.distributed.init_process_group: store= needs rank= in [0, world_size) and "
                         f"world_size= >= 1, got rank={rank} and world_size={world_size}")
    _nccl.lib()                 # nccl4py is there (a clear error otherwise) before a store starts
    device = _nccl.device_for(device_id)
    own = store is None
    if own:
        store = TCPStore(host, port, world_size, is_master=rank == 0, timeout=timeout)
    try:
        key = f"ember/nccl/{_inits}/default"
        if rank == 0:
            uid = _nccl.unique_id()
            store.set(key, uid)
        else:
            uid = store.get(key)
        comm = _nccl.init(uid, rank, world_size, device)
    except BaseException:
        if own:
            store.close()
        raise
    pg = ProcessGroup(comm, "nccl", list(range(world_size)), timeout, name, rank, world_size)
    pg._store = store if own else None
    return pg


def _abort_on_uncaught(kind, error, tb) -> None:
    """sys.excepthook while a process group of several ranks exists: the error in one line, the traceback (the
    hook before it), then MPI_Abort, so that mpiexec ends every rank now rather than after the others'
    collective timeout. The line comes first and the abort a moment after the flush: mpiexec may drop output
    still in flight when it tears the job down."""
    try:
        sys.stderr.write(f"ember.distributed: rank {get_rank()} failed: {kind.__name__}: {error}\n")
    except Exception:  # noqa: BLE001 - the traceback below still tells
        pass
    _abort_on_uncaught.previous(kind, error, tb)
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(0.5)
    _mpi.abort(1)


def destroy_process_group(group=None) -> None:
    """Destroys `group`, or (None) every group and the default one."""
    global _default
    if group is None or group is _default:
        for pg in _groups:
            pg._free()
        _groups.clear()
        if _default is not None:
            _default._free()                # "mpi": the world communicator stays (MPI owns it)
        _default = None
        GroupMember.WORLD = globals()["group"].WORLD = None
        if sys.excepthook is _abort_on_uncaught:
            sys.excepthook = _abort_on_uncaught.previous
        return
    if isinstance(group, ProcessGroup) and group in _groups:
        _groups.remove(group)
        group._free()


def get_rank(group=None) -> int:
    """This process's rank in `group` (default: the world); -1 outside the group, as torch."""
    pg = _pg(group, "get_rank")
    return -1 if pg is None else pg.rank()


def get_world_size(group=None) -> int:
    pg = _pg(group, "get_world_size")
    return -1 if pg is None else pg.size()


def get_backend(group=None) -> str:
    pg = _pg(group, "get_backend")
    if pg is None:
        raise ValueError("ember.distributed.get_backend: this rank is not in the group")
    return pg._backend


def new_group(ranks=None, timeout: datetime.timedelta | None = None, backend: str | None = None, pg_options=None,
              use_local_synchronization: bool = False, group_desc: str | None = None):
    """A group of the given global ranks (default: all), on the default group's backend. Every rank of the world
    must call it, in the same order, as in torch; ranks outside get GroupMember.NON_GROUP_MEMBER."""
    world = _world("new_group")
    n = world.size()
    ranks = list(range(n)) if ranks is None else sorted(int(r) for r in ranks)
    if len(set(ranks)) != len(ranks) or any(not 0 <= r < n for r in ranks):
        raise ValueError(f"ember.distributed.new_group: ranks must be distinct ranks of the world [0, {n}), got "
                         f"{ranks}")
    if backend is not None and backend.lower() != world._backend:
        raise ValueError(f"ember.distributed.new_group: backend {backend!r}, but the default group's backend is "
                         f"{world._backend!r}, which every group uses")
    if world._backend == "nccl":
        me = world.rank()
        comm = world._comm.split(0 if me in ranks else -1, me)
        if comm is None:
            return GroupMember.NON_GROUP_MEMBER
        rank, size = comm.rank, comm.size
    else:
        comm = _mpi.subgroup(world._comm, ranks)
        if comm is None:
            return GroupMember.NON_GROUP_MEMBER
        rank, size = comm.Get_rank(), comm.Get_size()
    pg = ProcessGroup(comm, world._backend, ranks, timeout or world._timeout,
                      group_desc or f"group{len(_groups) + 1}", rank, size)
    _groups.append(pg)
    return pg


# ---- tensors ----------------------------------------------------------------------------------------------

def _buffer(t, fn: str, name: str = "tensor"):
    """(array MPI reads and writes, write-back or None) for CPU tensor t: its own memory, or a float32 copy for
    float16/bfloat16 (written back, rounded once, by the returned function)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"ember.distributed.{fn}: {name} must be a Tensor, got {type(t).__name__}")
    if t._storage.device.type != "cpu":
        raise RuntimeError(f"ember.distributed.{fn}: {name} is on {t.device}; the 'mpi' backend takes CPU tensors "
                           f"(CUDA tensors take the 'nccl' backend)")
    _contiguous(t, fn, name)
    a = t._array
    if t._dtype in (D.float16, D.bfloat16):
        wide = a.astype("float32")

        def back():
            a[...] = wide.astype(a.dtype)
            t._storage.version += 1
        return wide, back
    return a, lambda: _bump(t)


def _contiguous(t, fn: str, name: str) -> None:
    if not t.is_contiguous():
        raise ValueError(f"ember.distributed.{fn}: Tensors must be contiguous ({name} has shape {list(t._shape)} "
                         f"and strides {list(t._stride)})")


def _cuda(t, pg: ProcessGroup, fn: str, name: str = "tensor"):
    """t, checked for the "nccl" backend: a contiguous tensor on the device of the group's communicator."""
    if not isinstance(t, Tensor):
        raise TypeError(f"ember.distributed.{fn}: {name} must be a Tensor, got {type(t).__name__}")
    want = pg._comm.device
    if t._storage.device != want:
        hint = " (CPU tensors take the 'mpi' backend)" if t._storage.device.type == "cpu" else ""
        raise RuntimeError(f"ember.distributed.{fn}: {name} is on {t.device}; the 'nccl' backend of group "
                           f"{pg.group_name!r} takes tensors on its communicator's device, {want}: move it with "
                           f".to('{want}'){hint}")
    _contiguous(t, fn, name)
    return t


def _bump(t):
    t._storage.version += 1


def _check_op(op, fn, dt):
    if op not in ReduceOp._ALL:
        raise ValueError(f"ember.distributed.{fn}: op must be a ReduceOp (SUM, AVG, PRODUCT, MIN, MAX), got {op!r}")
    if op == ReduceOp.AVG and not dt.is_floating_point:
        raise ValueError(f"ember.distributed.{fn}: ReduceOp.AVG needs a floating tensor, got {dt}")


def _run(pg, what, requests, finish, async_op):
    w = Work(requests, finish, what, pg)
    if async_op:
        return w
    w.wait()
    return None


def _enqueued(pg, what, async_op, *written):
    """The end of a "nccl" collective, enqueued on the current stream: the tensors it writes count as written
    (now, as for any op enqueued there); a Work for async_op."""
    for t in written:
        _bump(t)
    return _CudaWork(pg, what) if async_op else None


def _then(*fns):
    def run():
        for f in fns:
            if f is not None:
                f()
    return run


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    pg = _pg(group, "all_reduce")
    if pg is None:
        return None
    _check_op(op, "all_reduce", tensor._dtype)
    if pg._backend == "nccl":
        _nccl.all_reduce(pg._comm, _cuda(tensor, pg, "all_reduce"), op)
        return _enqueued(pg, "all_reduce", async_op, tensor)
    buf, back = _buffer(tensor, "all_reduce")
    req = _mpi.iallreduce(pg._comm, buf, op)
    scale = (lambda: buf.__itruediv__(pg.size())) if op == ReduceOp.AVG else None
    return _run(pg, "all_reduce", [req], _then(scale, back), async_op)


def broadcast(tensor, src: int, group=None, async_op: bool = False):
    pg = _pg(group, "broadcast")
    if pg is None:
        return None
    root = pg._group_rank(src, "broadcast's src")
    if pg._backend == "nccl":
        _nccl.broadcast(pg._comm, _cuda(tensor, pg, "broadcast"), root)
        return _enqueued(pg, "broadcast", async_op, tensor)
    buf, back = _buffer(tensor, "broadcast")
    return _run(pg, "broadcast", [_mpi.ibcast(pg._comm, buf, root)], back, async_op)


def reduce(tensor, dst: int, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """The reduction lands in `tensor` on rank dst; other ranks' tensors are left as they were (torch leaves
    them unspecified)."""
    pg = _pg(group, "reduce")
    if pg is None:
        return None
    _check_op(op, "reduce", tensor._dtype)
    root = pg._group_rank(dst, "reduce's dst")
    mine = pg.rank() == root
    if pg._backend == "nccl":
        _nccl.reduce(pg._comm, _cuda(tensor, pg, "reduce"), op, root)
        return _enqueued(pg, "reduce", async_op, *([tensor] if mine else []))
    buf, back = _buffer(tensor, "reduce")
    req = _mpi.ireduce(pg._comm, buf, op, root)
    scale = (lambda: buf.__itruediv__(pg.size())) if op == ReduceOp.AVG and mine else None
    return _run(pg, "reduce", [req], _then(scale, back if mine else None), async_op)


def _same(t, ref, fn, name):
    if t._shape != ref._shape or t._dtype is not ref._dtype:
        raise ValueError(f"ember.distributed.{fn}: {name} must have the input's shape {list(ref._shape)} and dtype "
                         f"{ref._dtype}, got {list(t._shape)} and {t._dtype}")


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """output (world * n, ...) or (world, n, ...) = every rank's input, in rank order."""
    fn = "all_gather_into_tensor"
    pg = _pg(group, fn)
    if pg is None:
        return None
    if output_tensor.numel() != input_tensor.numel() * pg.size() or output_tensor._dtype is not input_tensor._dtype:
        raise ValueError(f"ember.distributed.all_gather_into_tensor: output must hold world_size ({pg.size()}) x "
                         f"the input's {input_tensor.numel()} elements of {input_tensor._dtype}, got "
                         f"{list(output_tensor._shape)} of {output_tensor._dtype}")
    if pg._backend == "nccl":
        _nccl.all_gather(pg._comm, _cuda(output_tensor, pg, fn, "output_tensor"),
                         _cuda(input_tensor, pg, fn, "input_tensor"))
        return _enqueued(pg, fn, async_op, output_tensor)
    ib, _ = _buffer(input_tensor, fn, "input_tensor")
    ob, back = _buffer(output_tensor, fn, "output_tensor")
    return _run(pg, fn, [_mpi.iallgather(pg._comm, ib, ob)], back, async_op)


def all_gather(tensor_list, tensor, group=None, async_op: bool = False):
    """tensor_list[r] = rank r's tensor."""
    pg = _pg(group, "all_gather")
    if pg is None:
        return None
    if len(tensor_list) != pg.size():
        raise ValueError(f"ember.distributed.all_gather: tensor_list must hold world_size ({pg.size()}) tensors, "
                         f"got {len(tensor_list)}")
    for t in tensor_list:
        _same(t, tensor, "all_gather", "each tensor of tensor_list")
    if pg._backend == "nccl":       # rank k broadcasts its tensor into everyone's tensor_list[k], in one group
        src = _cuda(tensor, pg, "all_gather")
        outs = [_cuda(t, pg, "all_gather", "tensor_list's tensor") for t in tensor_list]
        _nccl.grouped(pg._comm, "all_gather", broadcasts=[(src, out, k) for k, out in enumerate(outs)])
        return _enqueued(pg, "all_gather", async_op, *outs)
    ib, _ = _buffer(tensor, "all_gather")
    out = np.empty((pg.size(),) + ib.shape, ib.dtype)
    outs = [_buffer(t, "all_gather", "tensor_list's tensor") for t in tensor_list]
    return _run(pg, "all_gather", [_mpi.iallgather(pg._comm, ib, out)], _copy_out(out, outs), async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """output = block r (of world_size equal blocks) of the reduction of every rank's input, on rank r."""
    fn = "reduce_scatter_tensor"
    pg = _pg(group, fn)
    if pg is None:
        return None
    _check_op(op, fn, input._dtype)
    if input.numel() != output.numel() * pg.size() or output._dtype is not input._dtype:
        raise ValueError(f"ember.distributed.reduce_scatter_tensor: input must hold world_size ({pg.size()}) x the "
                         f"output's {output.numel()} elements of {output._dtype}, got {list(input._shape)} of "
                         f"{input._dtype}")
    if pg._backend == "nccl":
        _nccl.reduce_scatter(pg._comm, _cuda(output, pg, fn, "output"), _cuda(input, pg, fn, "input"), op)
        return _enqueued(pg, fn, async_op, output)
    ib, _ = _buffer(input, fn, "input")
    ob, back = _buffer(output, fn, "output")
    scale = (lambda: ob.__itruediv__(pg.size())) if op == ReduceOp.AVG else None
    return _run(pg, fn, [_mpi.ireduce_scatter_block(pg._comm, ib, ob, op)], _then(scale, back), async_op)


def _root_list(pg, root: int, lst, tensor, fn: str, role: str, who: int, name: str) -> bool:
    """Checks `lst` (gather_list / scatter_list): world_size tensors like `tensor` on the root, None or empty
    elsewhere; whether this rank is the root."""
    if pg.rank() != root:
        if lst:
            raise ValueError(f"ember.distributed.{fn}: {name} must be None or empty on ranks other than {role} "
                             f"({who})")
        return False
    if lst is None or len(lst) != pg.size():
        raise ValueError(f"ember.distributed.{fn}: rank {who} ({role}) needs {name} of world_size ({pg.size()}) "
                         f"tensors")
    for t in lst:
        _same(t, tensor, fn, f"each tensor of {name}")
    return True


def _copy_out(stacked, outs):
    """The finish of all_gather / gather: row k of `stacked` into the k-th output tensor."""
    def finish():
        for k, (b, back) in enumerate(outs):
            b[...] = stacked[k]
            back()
    return finish


def _p2p(t):
    """(pointer, bytes) of a contiguous tensor: a send or receive of an NCCL group."""
    return t.data_ptr(), t.nbytes


def gather(tensor, gather_list=None, dst: int = 0, group=None, async_op: bool = False):
    """On rank dst, gather_list[r] = rank r's tensor; other ranks pass gather_list None."""
    pg = _pg(group, "gather")
    if pg is None:
        return None
    root = pg._group_rank(dst, "gather's dst")
    mine = _root_list(pg, root, gather_list, tensor, "gather", "dst", dst, "gather_list")
    if pg._backend == "nccl":       # every rank sends to dst, which receives from each
        outs = [_cuda(t, pg, "gather", "gather_list's tensor") for t in gather_list] if mine else []
        _nccl.grouped(pg._comm, "gather", sends=[(*_p2p(_cuda(tensor, pg, "gather")), root)],
                      recvs=[(*_p2p(t), k) for k, t in enumerate(outs)])
        return _enqueued(pg, "gather", async_op, *outs)
    ib, _ = _buffer(tensor, "gather")
    out, outs = None, []
    if mine:
        out = np.empty((pg.size(),) + ib.shape, ib.dtype)
        outs = [_buffer(t, "gather", "gather_list's tensor") for t in gather_list]
    return _run(pg, "gather", [_mpi.igather(pg._comm, ib, out, root)], _copy_out(out, outs), async_op)


def scatter(tensor, scatter_list=None, src: int = 0, group=None, async_op: bool = False):
    """tensor = scatter_list[r] of rank src, on rank r; other ranks pass scatter_list None."""
    pg = _pg(group, "scatter")
    if pg is None:
        return None
    root = pg._group_rank(src, "scatter's src")
    mine = _root_list(pg, root, scatter_list, tensor, "scatter", "src", src, "scatter_list")
    if pg._backend == "nccl":       # src sends block r to rank r; every rank receives from src
        ins = [_cuda(t, pg, "scatter", "scatter_list's tensor") for t in scatter_list] if mine else []
        _nccl.grouped(pg._comm, "scatter", sends=[(*_p2p(t), k) for k, t in enumerate(ins)],
                      recvs=[(*_p2p(_cuda(tensor, pg, "scatter")), root)])
        return _enqueued(pg, "scatter", async_op, tensor)
    ob, back = _buffer(tensor, "scatter")
    send = None
    if mine:
        send = np.stack([_buffer(t, "scatter", "scatter_list's tensor")[0] for t in scatter_list])
    return _run(pg, "scatter", [_mpi.iscatter(pg._comm, send, ob, root)], back, async_op)


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None, group=None,
                      async_op: bool = False):
    """Rank r sends block j of its input (dim 0, split by input_split_sizes or evenly) to rank j, and receives
    into block j of its output rank j's block r."""
    fn = "all_to_all_single"
    pg = _pg(group, fn)
    if pg is None:
        return None
    n = pg.size()
    if output._dtype is not input._dtype:
        raise ValueError(f"ember.distributed.all_to_all_single: output and input must share a dtype, got "
                         f"{output._dtype} and {input._dtype}")

    def counts(splits, t, what):
        """Elements of each rank's block of t along dim 0."""
        rows = t._shape[0] if t.ndim else 0
        row = int(np.prod(t._shape[1:])) if t.ndim else 0
        if splits is None:
            if rows % n:
                raise ValueError(f"ember.distributed.all_to_all_single: {what}'s dim 0 ({rows}) must divide evenly "
                                 f"by world_size ({n}) without split sizes")
            return [rows // n * row] * n
        splits = [int(s) for s in splits]
        if len(splits) != n or sum(splits) != rows:
            raise ValueError(f"ember.distributed.all_to_all_single: {what}_split_sizes must be world_size ({n}) "
                             f"sizes summing to {what}'s dim 0 ({rows}), got {splits}")
        return [s * row for s in splits]
    send = counts(input_split_sizes, input, "input")
    recv = counts(output_split_sizes, output, "output")
    if pg._backend == "nccl":       # one NCCL group: block j of input to rank j, rank j's into block j of output
        def blocks(t, name, sizes):
            ptr, item = _cuda(t, pg, fn, name).data_ptr(), t.element_size()
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            return [(ptr + int(s) * item, c * item, k) for k, (s, c) in enumerate(zip(starts, sizes))]
        _nccl.grouped(pg._comm, fn, sends=blocks(input, "input", send), recvs=blocks(output, "output", recv))
        return _enqueued(pg, fn, async_op, output)
    ib, _ = _buffer(input, fn, "input")
    ob, back = _buffer(output, fn, "output")
    return _run(pg, fn, [_mpi.ialltoallv(pg._comm, ib, send, ob, recv)], back, async_op)


def isend(tensor, dst: int, group=None, tag: int = 0):
    pg = _pg(group, "isend")
    if pg is None:
        return None
    peer = pg._group_rank(dst, "isend's dst")
    if pg._backend == "nccl":
        _nccl.grouped(pg._comm, "isend", sends=[(*_p2p(_cuda(tensor, pg, "isend")), peer)])
        return _CudaWork(pg, f"isend to rank {dst}")
    buf, _ = _buffer(tensor, "isend")
    return Work([_mpi.isend(pg._comm, buf, peer, tag)], None, f"isend to rank {dst}", pg)


def irecv(tensor, src: int | None = None, group=None, tag: int = 0):
    """Receives into `tensor` from global rank src (None: any rank, on "mpi"; `Work.source` then tells which)."""
    pg = _pg(group, "irecv")
    if pg is None:
        return None
    if pg._backend == "nccl":
        if src is None:
            raise ValueError("ember.distributed.irecv: the 'nccl' backend receives from a given rank: pass src "
                             "(NCCL has no receive from any rank)")
        peer = pg._group_rank(src, "irecv's src")
        _nccl.grouped(pg._comm, "irecv", recvs=[(*_p2p(_cuda(tensor, pg, "irecv")), peer)])
        w = _enqueued(pg, f"irecv from rank {src}", True, tensor)
        w.source = lambda: src
        return w
    peer = None if src is None else pg._group_rank(src, "irecv's src")
    buf, back = _buffer(tensor, "irecv")
    req, status = _mpi.irecv(pg._comm, buf, peer, tag)
    w = Work([req], back, f"irecv from rank {'any' if src is None else src}", pg)
    w.source = lambda: pg._ranks[status.Get_source()]
    return w


def send(tensor, dst: int, group=None, tag: int = 0) -> None:
    w = isend(tensor, dst, group, tag)
    if w is not None:
        w.wait()


def recv(tensor, src: int | None = None, group=None, tag: int = 0) -> int:
    """Receives into `tensor`; returns the sender's global rank (-1 outside the group), as torch."""
    w = irecv(tensor, src, group, tag)
    if w is None:
        return -1
    w.wait()
    return w.source()


class P2POp:
    """One send or receive of batch_isend_irecv: `P2POp(ember.distributed.isend or irecv, tensor, peer, group=None,
    tag=0)`, peer a global rank (as torch)."""

    def __init__(self, op, tensor, peer: int, group=None, tag: int = 0):
        if op not in (isend, irecv):
            raise ValueError(f"ember.distributed.P2POp: op must be ember.distributed.isend or irecv, got {op!r}")
        self.op, self.tensor, self.peer, self.group, self.tag = op, tensor, peer, group, tag


def batch_isend_irecv(p2p_op_list) -> list:
    """Starts every send and receive of p2p_op_list (P2POps of one group) together and returns their Works. On
    "nccl" they form one NCCL group, so that sends and receives crossing between ranks cannot deadlock."""
    ops = list(p2p_op_list)
    if not ops or not all(isinstance(p, P2POp) for p in ops):
        raise ValueError("ember.distributed.batch_isend_irecv: expects a non-empty list of P2POp")
    if any(p.group is not ops[0].group for p in ops):
        raise ValueError("ember.distributed.batch_isend_irecv: every P2POp must use the same group")
    pg = _pg(ops[0].group, "batch_isend_irecv")
    if pg is None:
        return []
    if pg._backend != "nccl":
        return [p.op(p.tensor, p.peer, p.group, p.tag) for p in ops]
    fn = "batch_isend_irecv"
    sends = [(*_p2p(_cuda(p.tensor, pg, fn)), pg._group_rank(p.peer, "batch_isend_irecv's peer"))
             for p in ops if p.op is isend]
    recvs = [(*_p2p(_cuda(p.tensor, pg, fn)), pg._group_rank(p.peer, "batch_isend_irecv's peer"))
             for p in ops if p.op is irecv]
    _nccl.grouped(pg._comm, fn, sends=sends, recvs=recvs)
    w = _enqueued(pg, fn, True, *(p.tensor for p in ops if p.op is irecv))
    return [w] * len(ops)


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Returns once every rank of the group has called it (or the group's timeout passes: RuntimeError). On
    "nccl": an all_reduce of one byte on the current stream, waited for on the host (not inside a CUDA graph)."""
    pg = _pg(group, "barrier")
    if pg is None:
        return None
    if pg._backend != "nccl":
        return _run(pg, "barrier", [_mpi.ibarrier(pg._comm)], None, async_op)
    if not async_op:
        _nccl.refuse_during_capture("barrier")      # before anything is enqueued into the capture
    if pg._one is None:
        from ..ops.creation import zeros
        pg._one = zeros(1, dtype=D.uint8, device=pg._comm.device)
    _nccl.all_reduce(pg._comm, pg._one, ReduceOp.MAX, "barrier")
    w = _CudaWork(pg, "barrier")
    if async_op:
        return w
    if not _nccl.host_wait(pg._comm, w._event, pg._timeout.total_seconds(), "barrier"):
        pg._comm.abort()
        raise RuntimeError(_timed_out("barrier", pg, pg._timeout, "; its NCCL communicator was aborted"))
    return None
