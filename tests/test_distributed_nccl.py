"""ember.distributed's "nccl" backend on the CPU: its rendezvous (the TCP store, env:// and tcp:// parsing), its
errors when nccl4py is missing, and its Python side over a stand-in for nccl4py's bindings that moves bytes in
host memory as NCCL would at world size 1, with CPU tensors standing in for CUDA ones. That stand-in runs the
same checks (tests/dist/nccl_worker.py) that tests/test_cuda_distributed.py runs on a GPU through real NCCL.
"""
import ctypes
import datetime
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import ember
import ember.distributed as dist
from ember.distributed import _nccl, _store

sys.path.insert(0, str(Path(__file__).parent / "dist"))
import nccl_worker  # noqa: E402

SHORT = datetime.timedelta(seconds=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(monkeypatch):
    """The launcher's variables for a world of one, on a free port."""
    for k in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    port = free_port()
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    yield port
    if dist.is_initialized():
        dist.destroy_process_group()


# ---- the store ------------------------------------------------------------------------------------------------

def test_store_rank0_serves_the_others_set_and_get():
    server = dist.TCPStore("127.0.0.1", 0, 3, is_master=True, timeout=SHORT)
    got = {}

    def rank(k):
        c = dist.TCPStore("127.0.0.1", server.port, 3, timeout=SHORT)
        got[k] = c.get("id")                    # waits until rank 0 sets it
        c.set(f"from{k}", f"hello {k}")
        c.close()
    threads = [threading.Thread(target=rank, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    server.set("id", bytes(range(128)))
    for t in threads:
        t.join(10)
    assert got == {1: bytes(range(128)), 2: bytes(range(128))}
    assert server.get("from1") == b"hello 1" and server.get("from2") == b"hello 2"
    server.close()


def test_store_client_in_another_process():
    server = dist.TCPStore("127.0.0.1", 0, 2, is_master=True, timeout=SHORT)
    code = (f"import datetime, ember.distributed as d; s = d.TCPStore('127.0.0.1', {server.port}, "
            f"timeout=datetime.timedelta(seconds=10)); s.set('k', s.get('q') + b'!')")
    p = subprocess.Popen([sys.executable, "-c", code])
    server.set("q", b"x" * 100_000)
    assert server.get("k") == b"x" * 100_000 + b"!"
    assert p.wait(30) == 0
    server.close()


def test_store_client_that_cannot_connect_times_out_clearly():
    port = free_port()                  # nothing listens there
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=rf"could not connect to the rendezvous store at 127.0.0.1:{port} "
                                           r"\(rank 0's MASTER_ADDR:MASTER_PORT\) within 0:00:00.500000"):
        dist.TCPStore("127.0.0.1", port, timeout=datetime.timedelta(seconds=0.5))
    assert time.monotonic() - start < 5


def test_store_get_of_a_key_never_set_times_out_clearly():
    server = dist.TCPStore("127.0.0.1", 0, is_master=True, timeout=datetime.timedelta(seconds=0.3))
    client = dist.TCPStore("127.0.0.1", server.port, timeout=datetime.timedelta(seconds=0.3))
    for s in (server, client):
        with pytest.raises(RuntimeError, match=r"key 'nope' of the rendezvous store at .* was not set within "
                                               r"0:00:00.300000"):
            s.get("nope")
    server.close()


def test_store_port_in_use_and_reconnection_to_a_new_server():
    server = dist.TCPStore("127.0.0.1", 0, is_master=True, timeout=SHORT)
    with pytest.raises(RuntimeError, match=f"could not serve the rendezvous store on port {server.port}"):
        dist.TCPStore("127.0.0.1", server.port, is_master=True, timeout=SHORT)
    client = dist.TCPStore("127.0.0.1", server.port, timeout=SHORT)
    got = []
    waiting = threading.Thread(target=lambda: got.append(client.get("later")))
    waiting.start()
    time.sleep(0.2)
    server.close()                      # rank 0's store goes; its next one (same port) has the key
    again = dist.TCPStore("127.0.0.1", server.port, is_master=True, timeout=SHORT)
    again.set("later", b"v")
    waiting.join(10)
    assert got == [b"v"]
    again.close()


# ---- the rendezvous -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", ["MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"])
def test_env_rendezvous_names_the_missing_variable(env, monkeypatch, missing):
    monkeypatch.delenv(missing)
    with pytest.raises(ValueError, match=f"init_method 'env://' needs the environment variable {missing} .*"
                                         f"python -m ember.distributed.run"):
        dist.init_process_group("nccl")
    assert not dist.is_initialized()


def test_rendezvous_arguments(env, monkeypatch):
    assert _store.rendezvous(None, -1, -1) == ("127.0.0.1", env, 0, 1)
    assert _store.rendezvous("env://", 2, 4) == ("127.0.0.1", env, 2, 4)        # arguments win over RANK, WORLD_SIZE
    assert _store.rendezvous("tcp://10.0.0.1:1234", 1, 2) == ("10.0.0.1", 1234, 1, 2)
    with pytest.raises(ValueError, match="needs rank= and world_size="):
        _store.rendezvous("tcp://10.0.0.1:1234", -1, 2)
    with pytest.raises(ValueError, match="must be 'tcp://host:port', got 'tcp://nohost'"):
        _store.rendezvous("tcp://nohost", 0, 1)
    with pytest.raises(ValueError, match="init_method must be 'env://' .* got 'file:///tmp/x'"):
        _store.rendezvous("file:///tmp/x", 0, 1)
    with pytest.raises(ValueError, match="rank must be in \\[0, world_size\\) .* got rank=3 and world_size=2"):
        _store.rendezvous("env://", 3, 2)
    monkeypatch.setenv("MASTER_PORT", "http")
    with pytest.raises(ValueError, match="MASTER_PORT must be an integer, got 'http'"):
        _store.rendezvous("env://", -1, -1)


def test_missing_nccl4py_is_named_with_how_to_install_it(env, monkeypatch):
    monkeypatch.setattr(_nccl, "_NCCL", None)
    monkeypatch.setitem(sys.modules, "nccl.bindings", None)        # as if nccl4py were not installed
    with pytest.raises(RuntimeError, match=r"backend 'nccl' needs nccl4py.*pip install 'nccl4py\[cu12\]'"):
        dist.init_process_group("nccl")
    assert not dist.is_initialized()


def test_importing_ember_distributed_imports_neither_nccl_nor_torch():
    code = ("import sys, ember, ember.distributed as d, ember.nn.parallel; d.is_nccl_available(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'mpi4py') or m.startswith('nccl.')]; "
            "assert not bad, bad; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


# ---- the backend over a stand-in for NCCL -----------------------------------------------------------------------

_SIZES = {0: 1, 1: 1, 2: 4, 4: 8, 6: 2, 7: 4, 8: 8, 9: 2}     # ncclDataType_t -> bytes


class FakeNccl:
    """nccl4py's low-level functions at world size 1, on host memory: what NCCL does with the pointers and counts
    it is given (a rank's collective with itself copies its send buffer to its receive buffer; sends and receives
    pair up at the end of their group). It checks the arguments' types and that groups balance."""

    class NCCLError(Exception):
        pass

    def __init__(self):
        self.depth, self.sends, self.recvs, self.calls = 0, [], [], []

    def _ints(self, name, *args):
        assert all(isinstance(a, int) and not isinstance(a, bool) for a in args), (name, args)
        self.calls.append(name)
        self.last = (name,) + args

    def get_unique_id(self):
        return bytearray(range(128))

    def comm_init_rank_scalable(self, nranks, rank, n_id, ids, config):
        self._ints("comm_init_rank_scalable", nranks, rank, n_id, config)
        assert (nranks, rank, n_id, config) == (1, 0, 1, 0) and bytes(ids) == bytes(range(128))
        return "world-comm"

    def comm_split(self, comm, color, key, config):
        self._ints("comm_split", color, key, config)
        return f"{comm}/split" if color >= 0 else None

    def comm_user_rank(self, comm):
        return 0

    def comm_count(self, comm):
        return 1

    def comm_get_async_error(self, comm):
        return 0

    def comm_destroy(self, comm):
        self.calls.append("comm_destroy")

    def comm_abort(self, comm):
        self.calls.append("comm_abort")

    def _copy(self, name, s, r, nbytes):
        assert self.depth == 0 or name == "broadcast", f"{name} inside a group"
        if s != r:
            ctypes.memmove(r, s, nbytes)

    def all_reduce(self, s, r, count, dt, op, comm, stream):
        self._ints("all_reduce", s, r, count, dt, op, stream)
        assert op in range(5)
        self._copy("all_reduce", s, r, count * _SIZES[dt])

    def broadcast(self, s, r, count, dt, root, comm, stream):
        self._ints("broadcast", s, r, count, dt, root, stream)
        assert root == 0
        self._copy("broadcast", s, r, count * _SIZES[dt])

    def reduce(self, s, r, count, dt, op, root, comm, stream):
        self._ints("reduce", s, r, count, dt, op, root, stream)
        self._copy("reduce", s, r, count * _SIZES[dt])

    def all_gather(self, s, r, count, dt, comm, stream):
        self._ints("all_gather", s, r, count, dt, stream)
        self._copy("all_gather", s, r, count * _SIZES[dt])

    def reduce_scatter(self, s, r, count, dt, op, comm, stream):
        self._ints("reduce_scatter", s, r, count, dt, op, stream)
        self._copy("reduce_scatter", s, r, count * _SIZES[dt])

    def group_start(self):
        self.depth += 1

    def send(self, ptr, count, dt, peer, comm, stream):
        self._ints("send", ptr, count, dt, peer, stream)
        assert self.depth and peer == 0 and count > 0
        self.sends.append((ptr, count * _SIZES[dt]))

    def recv(self, ptr, count, dt, peer, comm, stream):
        self._ints("recv", ptr, count, dt, peer, stream)
        assert self.depth and peer == 0 and count > 0
        self.recvs.append((ptr, count * _SIZES[dt]))

    def group_end(self):
        assert self.depth > 0
        self.depth -= 1
        if self.depth == 0:
            assert len(self.sends) == len(self.recvs), ("unmatched sends and receives", self.sends, self.recvs)
            for (s, n), (r, m) in zip(self.sends, self.recvs):
                assert n == m, ("a send and its receive differ in size", n, m)
                ctypes.memmove(r, s, n)
            self.sends, self.recvs = [], []


class _Passed:
    def query(self):
        return True


@pytest.fixture
def fake_nccl(env, monkeypatch):
    """init_process_group("nccl") over FakeNccl, its communicator "on" the CPU (streams and events stubbed)."""
    fake = FakeNccl()
    monkeypatch.setattr(_nccl, "_NCCL", fake)
    monkeypatch.setattr(_nccl, "device_for", lambda device_id: ember.device("cpu"))
    monkeypatch.setattr(_nccl, "_stream", lambda comm: 0)
    monkeypatch.setattr(_nccl, "record_event", lambda comm: _Passed())
    monkeypatch.setattr(_nccl, "stream_wait", lambda comm, event: None)
    return fake


def test_every_collective_through_the_stand_in(fake_nccl):
    dist.init_process_group("nccl", timeout=SHORT)
    assert dist.get_backend() == "nccl" and dist.get_rank() == 0 and dist.get_world_size() == 1
    failures = nccl_worker.check_collectives("cpu")
    assert not failures, f"failed checks (their tracebacks are in the captured stdout): {failures}"
    assert fake_nccl.depth == 0
    assert {"all_reduce", "broadcast", "reduce", "all_gather", "reduce_scatter", "send", "recv",
            "comm_split"} <= set(fake_nccl.calls)
    dist.destroy_process_group()
    assert fake_nccl.calls.count("comm_destroy") >= 1 and not dist.is_initialized()


def test_tcp_init_method_and_a_second_group_in_the_same_process(fake_nccl, env):
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{env}", rank=0, world_size=1, timeout=SHORT)
    assert dist.get_world_size() == 1
    dist.destroy_process_group()
    dist.init_process_group("nccl", timeout=SHORT)      # rank 0 serves again on the same port
    dist.barrier()
    dist.destroy_process_group()
    store = dist.TCPStore("127.0.0.1", 0, 1, is_master=True, timeout=SHORT)
    with pytest.raises(ValueError, match="store= needs rank= in \\[0, world_size\\) and world_size= >= 1"):
        dist.init_process_group("nccl", store=store)
    for _ in range(2):                                  # the caller's store, reused: a new key each time
        dist.init_process_group("nccl", store=store, rank=0, world_size=1, timeout=SHORT)
        dist.destroy_process_group()
    assert len(store._data) == 2, store._data
    store.close()


def test_barrier_timeout_aborts_the_communicator_and_says_so(fake_nccl, monkeypatch):
    class Never:
        def query(self):
            return False
    dist.init_process_group("nccl", timeout=datetime.timedelta(seconds=0.3))
    monkeypatch.setattr(_nccl, "record_event", lambda comm: Never())
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"barrier on group 'default_pg' \(rank 0 of 1\) did not complete within "
                                           r"0:00:00.300000: .* its NCCL communicator was aborted"):
        dist.barrier()
    assert 0.25 < time.monotonic() - start < 3 and "comm_abort" in fake_nccl.calls
    with pytest.raises(RuntimeError, match="communicator was aborted"):
        dist.all_reduce(ember.ones(2))


def test_nccl_errors_name_the_call(fake_nccl):
    dist.init_process_group("nccl", timeout=SHORT)

    def fails(*args):
        raise FakeNccl.NCCLError("ncclInvalidUsage")
    fake_nccl.all_reduce = fails
    with pytest.raises(RuntimeError, match="NCCL's all_reduce failed during all_reduce on cpu: ncclInvalidUsage"):
        dist.all_reduce(ember.ones(2))
    fake_nccl.send = fails
    with pytest.raises(RuntimeError, match="NCCL's send failed during gather"):
        dist.gather(ember.ones(2), [ember.zeros(2)], dst=0)
    assert fake_nccl.depth == 0, "the group was left open"


def test_ddp_on_the_nccl_path_through_the_stand_in(fake_nccl):
    """DDP's bucketed all_reduce on the "nccl" path (here over the stand-in, on the CPU) trains as the plain model
    does at world size 1: the worker's DDP check, as the GPU runs it."""
    dist.init_process_group("nccl", timeout=SHORT)
    failures = nccl_worker.check_ddp("cpu")
    assert not failures, f"failed checks (their tracebacks are in the captured stdout): {failures}"
    assert fake_nccl.calls.count("all_reduce") >= 5 * 2         # 5 steps of several buckets


def test_nccl_types_counts_and_ops(fake_nccl):
    """What reaches NCCL: reductions in the tensor's NCCL type and element count (bool as bytes, SUM as max,
    PRODUCT as min), moves in bytes; pointers at the tensors' first element (a view's offset included)."""
    dist.init_process_group("nccl", timeout=SHORT)
    x = ember.zeros(8)
    view = x[2:]
    cases = [(view, "sum", (6, 7, 0)),                                        # ncclFloat32, ncclSum
             (ember.zeros(6, dtype=ember.bfloat16), "avg", (6, 9, 4)),           # ncclBfloat16, ncclAvg
             (ember.zeros(3, dtype=ember.int64), "max", (3, 4, 2)),              # ncclInt64, ncclMax
             (ember.zeros(5, dtype=ember.bool), "sum", (5, 1, 2)),               # ncclUint8, or = ncclMax
             (ember.zeros(5, dtype=ember.bool), "product", (5, 1, 3))]           # and = ncclMin
    for t, op, want in cases:
        dist.all_reduce(t, op=op)
        name, s, r, count, dt, code, _ = fake_nccl.last
        assert (name, s, r) == ("all_reduce", t.data_ptr(), t.data_ptr()) and (count, dt, code) == want, \
            (fake_nccl.last, want)
    assert view.data_ptr() == x.data_ptr() + 8
    dist.broadcast(ember.zeros(6, dtype=ember.float64), src=0)
    assert fake_nccl.last[3:6] == (48, 1, 0), fake_nccl.last           # 48 bytes as ncclUint8, root 0
    out = ember.zeros(3, dtype=ember.float16)
    dist.reduce_scatter_tensor(out, ember.ones(3, dtype=ember.float16), op=dist.ReduceOp.MIN)
    assert fake_nccl.last[3:6] == (3, 6, 3), fake_nccl.last             # recvcount 3 of ncclFloat16, ncclMin
