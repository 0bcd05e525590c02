"""The MPI transport of ember.distributed (mpi4py): communicators, and the non-blocking collectives on NumPy
buffers that the public functions wait on. mpi4py is imported on first use (`import ember` never needs it)."""
from __future__ import annotations

import time

import numpy as np

_MPI = None


def _lib():
    global _MPI
    if _MPI is None:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise RuntimeError("ember.distributed: backend 'mpi' needs mpi4py and an MPI library: "
                               "pip install mpi4py mpich (the dev extra installs both), then launch with "
                               f"mpiexec -n N python script.py ({e})") from None
        _MPI = MPI
    return _MPI


def available() -> bool:
    """Whether mpi4py is installed (found, not imported: importing mpi4py.MPI initialises MPI)."""
    import importlib.util
    return _MPI is not None or importlib.util.find_spec("mpi4py") is not None


def world():
    return _lib().COMM_WORLD


def abort(code: int = 1) -> None:
    """Ends every rank of the MPI job (MPI_Abort on the world), as mpiexec's own failure handling would."""
    _lib().COMM_WORLD.Abort(code)


def subgroup(comm, ranks):
    """A communicator over `ranks` of comm (collective over comm); None on the ranks outside."""
    MPI = _lib()
    sub = comm.Create_group(comm.Get_group().Incl(ranks))
    return None if sub == MPI.COMM_NULL else sub


def free(comm):
    MPI = _lib()
    if comm not in (None, MPI.COMM_NULL, MPI.COMM_WORLD):
        comm.Free()


def _op(op):
    MPI = _lib()
    return {"sum": MPI.SUM, "avg": MPI.SUM, "product": MPI.PROD, "min": MPI.MIN, "max": MPI.MAX}[op]


def _buf(a):
    """An MPI buffer spec for array a: bool travels as uint8 (MPI's C bool has no reduction for NumPy's)."""
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    return a


def iallreduce(comm, a, op):
    return comm.Iallreduce(_lib().IN_PLACE, _buf(a), _op(op))


def ibcast(comm, a, root):
    return comm.Ibcast(_buf(a), root)


def ireduce(comm, a, op, root):
    MPI = _lib()
    if comm.Get_rank() == root:
        return comm.Ireduce(MPI.IN_PLACE, _buf(a), _op(op), root)
    return comm.Ireduce(_buf(a), None, _op(op), root)


def iallgather(comm, a, out):
    return comm.Iallgather(_buf(a), _buf(out))


def ireduce_scatter_block(comm, a, out, op):
    return comm.Ireduce_scatter_block(_buf(a), _buf(out), _op(op))


def igather(comm, a, out, root):
    return comm.Igather(_buf(a), None if out is None else _buf(out), root)


def iscatter(comm, send, out, root):
    return comm.Iscatter(None if send is None else _buf(send), _buf(out), root)


def ialltoallv(comm, a, send_counts, out, recv_counts):
    def displ(counts):
        return [int(x) for x in np.concatenate([[0], np.cumsum(counts)[:-1]])]
    return comm.Ialltoallv([_buf(a).reshape(-1), (send_counts, displ(send_counts))],
                           [_buf(out).reshape(-1), (recv_counts, displ(recv_counts))])


def isend(comm, a, peer, tag):
    return comm.Isend(_buf(a), peer, tag)


def irecv(comm, a, peer, tag):
    """(request, status): the status tells the source once the request is done."""
    MPI = _lib()
    status = MPI.Status()
    req = comm.Irecv(_buf(a), MPI.ANY_SOURCE if peer is None else peer, tag)
    return _StatusRequest(req, status), status


class _StatusRequest:
    """A request whose completion fills `status` (mpi4py's Request.Test takes it)."""

    def __init__(self, req, status):
        self.req, self.status = req, status

    def Test(self):  # noqa: N802 - mpi4py's name
        return self.req.Test(self.status)


def ibarrier(comm):
    return comm.Ibarrier()


def test(req) -> bool:
    return req.Test()


def wait_all(requests, seconds: float) -> bool:
    """Polls the requests until all are done (True) or `seconds` pass (False); backs off from spinning to
    1 ms sleeps so that a long wait does not hold a core."""
    deadline = time.monotonic() + seconds
    pending = [r for r in requests if not r.Test()]
    spins = 0
    while pending:
        if time.monotonic() > deadline:
            return False
        spins += 1
        if spins > 200:
            time.sleep(0.001 if spins > 2000 else 0)
        pending = [r for r in pending if not r.Test()]
    return True
