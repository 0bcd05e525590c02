"""ember.distributed: process groups and collectives with torch.distributed's names and semantics.

This first slice is the "mpi" backend for CPU tensors, through mpi4py (the dev extra installs mpi4py and
MPICH's wheel, so that the tests run several ranks on one CPU machine): launch with
`mpiexec -n N python script.py`, then `ember.distributed.init_process_group("mpi")`. The "nccl" backend
for CUDA tensors is not built yet and says so.

What works: init_process_group / destroy_process_group / is_initialized / is_available / get_rank /
get_world_size / get_backend / new_group / barrier, and the collectives all_reduce (SUM, AVG, PRODUCT,
MIN, MAX), broadcast, reduce, all_gather, all_gather_into_tensor, reduce_scatter_tensor, gather, scatter,
all_to_all_single, send / recv / isend / irecv. `async_op=True` returns a `Work` with wait() and
is_completed(). Every collective is started non-blocking and waited on with the group's timeout, so a
rank that never joins makes the others raise a RuntimeError naming the collective, the group and the
timeout, instead of hanging (MPI then has an operation in flight: the job should end, as torch's does
after a timeout). An exception that nothing catches ends the whole job at once (MPI_Abort after its traceback,
as `python -m mpi4py` does): otherwise its rank's exit would wait in MPI's finalisation for the others, which
wait for it in their next collective, until the timeout.

Tensors are used in place (their version counter moves, as after any in-place op); they must be
contiguous CPU tensors. float16/bfloat16 travel as float32 (MPI has no such types) and are rounded back
once. Ranks given to src/dst arguments are global ranks, as in torch, also for a subgroup.
"""
from __future__ import annotations

import datetime
import os
import sys

import numpy as np

from .._tensor import Tensor
from ..core import dtype as D
from . import _mpi

__all__ = ["ReduceOp", "Work", "ProcessGroup", "GroupMember", "group", "is_available", "is_mpi_available",
           "is_nccl_available", "is_initialized", "init_process_group", "destroy_process_group", "get_rank",
           "get_world_size", "get_backend", "new_group", "barrier", "all_reduce", "broadcast", "reduce",
           "all_gather", "all_gather_into_tensor", "reduce_scatter_tensor", "gather", "scatter",
           "all_to_all_single", "send", "recv", "isend", "irecv"]

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)     # torch's default for non-NCCL backends


class ReduceOp:
    """The reduction of all_reduce / reduce / reduce_scatter_tensor (torch.distributed.ReduceOp)."""
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    _ALL = ("sum", "avg", "product", "min", "max")


class ProcessGroup:
    """A group of ranks with its communicator; `rank()` and `size()` as in torch."""

    def __init__(self, comm, backend: str, ranks: list, timeout: datetime.timedelta, name: str):
        self._comm = comm
        self._backend = backend
        self._ranks = ranks             # global rank of each group rank
        self._timeout = timeout
        self.group_name = name

    def rank(self) -> int:
        return self._comm.Get_rank()

    def size(self) -> int:
        return self._comm.Get_size()

    def _group_rank(self, global_rank: int, what: str) -> int:
        try:
            return self._ranks.index(global_rank)
        except ValueError:
            raise ValueError(f"ember.distributed: {what} rank {global_rank} is not in group {self.group_name!r} "
                             f"(global ranks {self._ranks})") from None

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
                raise RuntimeError(f"ember.distributed: {self._what} on group {self._pg.group_name!r} (rank "
                                   f"{get_rank()} of {get_world_size()}) did not complete within {limit}: a rank "
                                   f"did not join it (stopped, or waiting on another collective)")
            self._complete()
        return True

    def _complete(self):
        if self._finish is not None:
            self._finish()
        self._done = True

    def result(self):
        return []


_default: ProcessGroup | None = None
_groups: list = []


def is_available() -> bool:
    return True


def is_mpi_available() -> bool:
    return _mpi.available()


def is_nccl_available() -> bool:
    return False


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
    agree with it."""
    global _default
    if _default is not None:
        raise RuntimeError("ember.distributed.init_process_group: trying to initialize the default process group "
                           "twice!")
    name = (backend or "mpi").lower()
    if name == "nccl":
        raise NotImplementedError("ember.distributed: the 'nccl' backend (CUDA tensors) is not built yet; CPU "
                                  "tensors take backend='mpi' under mpiexec")
    if name != "mpi":
        raise ValueError(f"ember.distributed.init_process_group: unknown backend {backend!r}; expected 'mpi' "
                         f"(or 'nccl', not built yet)")
    if init_method not in (None, "env://"):
        raise ValueError(f"ember.distributed.init_process_group: the 'mpi' backend takes its rendezvous from the MPI "
                         f"launcher; init_method must be None or 'env://', got {init_method!r}")
    if timeout is not None and not isinstance(timeout, datetime.timedelta):
        raise TypeError(f"ember.distributed.init_process_group: timeout must be a datetime.timedelta, got "
                        f"{type(timeout).__name__}")
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
    _default = ProcessGroup(comm, "mpi", list(range(size)), timeout or DEFAULT_TIMEOUT, group_name or "default_pg")
    GroupMember.WORLD = group.WORLD = _default
    if size > 1 and sys.excepthook is not _abort_on_uncaught:
        _abort_on_uncaught.previous = sys.excepthook
        sys.excepthook = _abort_on_uncaught


def _abort_on_uncaught(kind, error, tb) -> None:
    """sys.excepthook while a process group of several ranks exists: the traceback (the hook before it), then
    MPI_Abort, so that mpiexec ends every rank now rather than after the others' collective timeout."""
    _abort_on_uncaught.previous(kind, error, tb)
    sys.stdout.flush()
    sys.stderr.flush()
    _mpi.abort(1)


def destroy_process_group(group=None) -> None:
    """Destroys `group`, or (None) every group and the default one."""
    global _default
    if group is None or group is _default:
        for pg in _groups:
            _mpi.free(pg._comm)
        _groups.clear()
        _default = None
        GroupMember.WORLD = globals()["group"].WORLD = None
        if sys.excepthook is _abort_on_uncaught:
            sys.excepthook = _abort_on_uncaught.previous
        return
    if isinstance(group, ProcessGroup) and group in _groups:
        _groups.remove(group)
        _mpi.free(group._comm)


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
    """A group of the given global ranks (default: all). Every rank of the world must call it, as in torch;
    ranks outside get GroupMember.NON_GROUP_MEMBER."""
    world = _world("new_group")
    n = world.size()
    ranks = list(range(n)) if ranks is None else sorted(int(r) for r in ranks)
    if len(set(ranks)) != len(ranks) or any(not 0 <= r < n for r in ranks):
        raise ValueError(f"ember.distributed.new_group: ranks must be distinct ranks of the world [0, {n}), got "
                         f"{ranks}")
    if backend not in (None, "mpi"):
        raise ValueError(f"ember.distributed.new_group: backend {backend!r}; only 'mpi' is built")
    comm = _mpi.subgroup(world._comm, ranks)
    if comm is None:
        return GroupMember.NON_GROUP_MEMBER
    pg = ProcessGroup(comm, "mpi", ranks, timeout or world._timeout, group_desc or f"group{len(_groups) + 1}")
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
                           f"(CUDA tensors need the 'nccl' backend, not built yet)")
    if not t.is_contiguous():
        raise ValueError(f"ember.distributed.{fn}: Tensors must be contiguous ({name} has shape {list(t._shape)} "
                         f"and strides {list(t._stride)})")
    a = t._array
    if t._dtype in (D.float16, D.bfloat16):
        wide = a.astype("float32")

        def back():
            a[...] = wide.astype(a.dtype)
            t._storage.version += 1
        return wide, back
    return a, lambda: _bump(t)


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
    buf, back = _buffer(tensor, "all_reduce")
    req = _mpi.iallreduce(pg._comm, buf, op)
    scale = (lambda: buf.__itruediv__(pg.size())) if op == ReduceOp.AVG else None
    return _run(pg, "all_reduce", [req], _then(scale, back), async_op)


def broadcast(tensor, src: int, group=None, async_op: bool = False):
    pg = _pg(group, "broadcast")
    if pg is None:
        return None
    root = pg._group_rank(src, "broadcast's src")
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
    buf, back = _buffer(tensor, "reduce")
    mine = pg.rank() == root
    req = _mpi.ireduce(pg._comm, buf, op, root)
    scale = (lambda: buf.__itruediv__(pg.size())) if op == ReduceOp.AVG and mine else None
    return _run(pg, "reduce", [req], _then(scale, back if mine else None), async_op)


def _same(t, ref, fn, name):
    if t._shape != ref._shape or t._dtype is not ref._dtype:
        raise ValueError(f"ember.distributed.{fn}: {name} must have the input's shape {list(ref._shape)} and dtype "
                         f"{ref._dtype}, got {list(t._shape)} and {t._dtype}")


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """output (world * n, ...) or (world, n, ...) = every rank's input, in rank order."""
    pg = _pg(group, "all_gather_into_tensor")
    if pg is None:
        return None
    if output_tensor.numel() != input_tensor.numel() * pg.size() or output_tensor._dtype is not input_tensor._dtype:
        raise ValueError(f"ember.distributed.all_gather_into_tensor: output must hold world_size ({pg.size()}) x "
                         f"the input's {input_tensor.numel()} elements of {input_tensor._dtype}, got "
                         f"{list(output_tensor._shape)} of {output_tensor._dtype}")
    ib, _ = _buffer(input_tensor, "all_gather_into_tensor", "input_tensor")
    ob, back = _buffer(output_tensor, "all_gather_into_tensor", "output_tensor")
    return _run(pg, "all_gather_into_tensor", [_mpi.iallgather(pg._comm, ib, ob)], back, async_op)


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
    ib, _ = _buffer(tensor, "all_gather")
    out = np.empty((pg.size(),) + ib.shape, ib.dtype)
    outs = [_buffer(t, "all_gather", "tensor_list's tensor") for t in tensor_list]
    return _run(pg, "all_gather", [_mpi.iallgather(pg._comm, ib, out)], _copy_out(out, outs), async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """output = block r (of world_size equal blocks) of the reduction of every rank's input, on rank r."""
    pg = _pg(group, "reduce_scatter_tensor")
    if pg is None:
        return None
    _check_op(op, "reduce_scatter_tensor", input._dtype)
    if input.numel() != output.numel() * pg.size() or output._dtype is not input._dtype:
        raise ValueError(f"ember.distributed.reduce_scatter_tensor: input must hold world_size ({pg.size()}) x the "
                         f"output's {output.numel()} elements of {output._dtype}, got {list(input._shape)} of "
                         f"{input._dtype}")
    ib, _ = _buffer(input, "reduce_scatter_tensor", "input")
    ob, back = _buffer(output, "reduce_scatter_tensor", "output")
    scale = (lambda: ob.__itruediv__(pg.size())) if op == ReduceOp.AVG else None
    return _run(pg, "reduce_scatter_tensor", [_mpi.ireduce_scatter_block(pg._comm, ib, ob, op)],
                _then(scale, back), async_op)


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


def gather(tensor, gather_list=None, dst: int = 0, group=None, async_op: bool = False):
    """On rank dst, gather_list[r] = rank r's tensor; other ranks pass gather_list None."""
    pg = _pg(group, "gather")
    if pg is None:
        return None
    root = pg._group_rank(dst, "gather's dst")
    ib, _ = _buffer(tensor, "gather")
    out, outs = None, []
    if _root_list(pg, root, gather_list, tensor, "gather", "dst", dst, "gather_list"):
        out = np.empty((pg.size(),) + ib.shape, ib.dtype)
        outs = [_buffer(t, "gather", "gather_list's tensor") for t in gather_list]
    return _run(pg, "gather", [_mpi.igather(pg._comm, ib, out, root)], _copy_out(out, outs), async_op)


def scatter(tensor, scatter_list=None, src: int = 0, group=None, async_op: bool = False):
    """tensor = scatter_list[r] of rank src, on rank r; other ranks pass scatter_list None."""
    pg = _pg(group, "scatter")
    if pg is None:
        return None
    root = pg._group_rank(src, "scatter's src")
    ob, back = _buffer(tensor, "scatter")
    send = None
    if _root_list(pg, root, scatter_list, tensor, "scatter", "src", src, "scatter_list"):
        send = np.stack([_buffer(t, "scatter", "scatter_list's tensor")[0] for t in scatter_list])
    return _run(pg, "scatter", [_mpi.iscatter(pg._comm, send, ob, root)], back, async_op)


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None, group=None,
                      async_op: bool = False):
    """Rank r sends block j of its input (dim 0, split by input_split_sizes or evenly) to rank j, and receives
    into block j of its output rank j's block r."""
    pg = _pg(group, "all_to_all_single")
    if pg is None:
        return None
    n = pg.size()
    if output._dtype is not input._dtype:
        raise ValueError(f"ember.distributed.all_to_all_single: output and input must share a dtype, got "
                         f"{output._dtype} and {input._dtype}")
    ib, _ = _buffer(input, "all_to_all_single", "input")
    ob, back = _buffer(output, "all_to_all_single", "output")
    row_in = ib[0].size if ib.ndim and ib.shape[0] else 0
    row_out = ob[0].size if ob.ndim and ob.shape[0] else 0

    def counts(splits, t, what):
        rows = t._shape[0] if t.ndim else 0
        if splits is None:
            if rows % n:
                raise ValueError(f"ember.distributed.all_to_all_single: {what}'s dim 0 ({rows}) must divide evenly "
                                 f"by world_size ({n}) without split sizes")
            return [rows // n] * n
        splits = [int(s) for s in splits]
        if len(splits) != n or sum(splits) != rows:
            raise ValueError(f"ember.distributed.all_to_all_single: {what}_split_sizes must be world_size ({n}) "
                             f"sizes summing to {what}'s dim 0 ({rows}), got {splits}")
        return splits
    send = [c * row_in for c in counts(input_split_sizes, input, "input")]
    recv = [c * row_out for c in counts(output_split_sizes, output, "output")]
    return _run(pg, "all_to_all_single", [_mpi.ialltoallv(pg._comm, ib, send, ob, recv)], back, async_op)


def isend(tensor, dst: int, group=None, tag: int = 0):
    pg = _pg(group, "isend")
    if pg is None:
        return None
    peer = pg._group_rank(dst, "isend's dst")
    buf, _ = _buffer(tensor, "isend")
    return Work([_mpi.isend(pg._comm, buf, peer, tag)], None, f"isend to rank {dst}", pg)


def irecv(tensor, src: int | None = None, group=None, tag: int = 0):
    """Receives into `tensor` from global rank src (None: any rank; `Work.source` then tells which)."""
    pg = _pg(group, "irecv")
    if pg is None:
        return None
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


def barrier(group=None, async_op: bool = False, device_ids=None):
    pg = _pg(group, "barrier")
    if pg is None:
        return None
    return _run(pg, "barrier", [_mpi.ibarrier(pg._comm)], None, async_op)
