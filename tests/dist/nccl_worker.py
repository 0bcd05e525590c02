"""A rank of ember.distributed's "nccl" backend, run by tests/test_cuda_distributed.py on a GPU machine, through
`python -m ember.distributed.run --nproc-per-node N nccl_worker.py CASE` or alone with MASTER_ADDR, MASTER_PORT,
RANK and WORLD_SIZE set. CASE: collectives | ddp | graph | all; a second argument "tcp" initialises with
init_method="tcp://MASTER_ADDR:MASTER_PORT" and explicit rank/world_size instead of "env://".

Each check runs on its own and reports "FAIL <check>: <traceback>" without stopping the others, so one run
shows every failure; the rank prints "rank R ok" when all passed, else exits 1. torch is blocked from import
(ember never needs it). tests/test_distributed_nccl.py also runs check_collectives on the CPU, with a stand-in
for NCCL's bindings, so that the checks themselves are tested before a GPU runs them.
"""
if __name__ == "__main__":     # torch is blocked from import: ember must never need it
    import builtins
    _real_import = builtins.__import__

    def _no_torch(name, *a, **k):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test: ember must not import it")
        return _real_import(name, *a, **k)
    builtins.__import__ = _no_torch

import datetime  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import numpy as np  # noqa: E402

import ember  # noqa: E402
import ember.distributed as dist  # noqa: E402

TIMEOUT = datetime.timedelta(seconds=60)


def to_numpy(t):
    """t's values as float64 (int64 for integer and bool tensors), converted on the CPU."""
    t = t.detach().cpu()
    return (t.double() if t.dtype.is_floating_point else t.long()).numpy()


def eq(got, want, what, tol=1e-6):
    np.testing.assert_allclose(to_numpy(got), np.asarray(want, dtype=np.float64), rtol=tol, atol=tol, err_msg=what)


class Checks:
    """Runs named checks, each on its own, collecting failures with their tracebacks."""

    def __init__(self):
        self.failures = []

    def __call__(self, name):
        def run(fn):
            t0 = time.perf_counter()
            try:
                fn()
            except Exception:  # noqa: BLE001 - reported, then the next check runs
                self.failures.append(name)
                print(f"FAIL {name} (rank {os.environ.get('RANK', '?')}):\n{traceback.format_exc()}", flush=True)
            else:
                print(f"  {name}: {time.perf_counter() - t0:.2f} s", flush=True)
        return run


def sync(device):
    if ember.device(device).type == "cuda":
        ember.cuda.synchronize()


def check_collectives(device) -> list:
    """Every collective of the public API, for float32, bfloat16 and int64 (and more dtypes for all_reduce),
    against NumPy, for any world size; returns the names of the failed checks."""
    r, n = dist.get_rank(), dist.get_world_size()
    check = Checks()
    base = np.arange(6, dtype=np.float32)
    total = sum(k + 1 for k in range(n))

    def T(a, dt=ember.float32):          # noqa: N802 - built on the CPU, then copied to the device
        return ember.tensor(np.asarray(a)).to(dt).to(device)

    @check("backend and ranks")
    def _():
        assert dist.is_initialized() and dist.get_backend() == "nccl", dist.get_backend()
        assert 0 <= r < n and n == int(os.environ.get("WORLD_SIZE", n))

    for dt in (ember.float32, ember.bfloat16, ember.int64):
        @check(f"all_reduce SUM/MAX/MIN/PRODUCT {dt}")
        def _():
            t = T(base * (r + 1), dt)
            v = t._version
            assert dist.all_reduce(t) is None
            eq(t, base * total, f"all_reduce SUM {dt}")
            assert t._version > v, "all_reduce must count as an in-place write"
            for op, want in ((dist.ReduceOp.MAX, base * n), (dist.ReduceOp.MIN, base),
                             (dist.ReduceOp.PRODUCT, base ** n * math.factorial(n))):
                t = T(base * (r + 1), dt)
                dist.all_reduce(t, op=op)
                eq(t, want, f"all_reduce {op} {dt}")

        if dt.is_floating_point:
            @check(f"all_reduce AVG {dt}")
            def _():
                t = T(base * (r + 1), dt)
                dist.all_reduce(t, op=dist.ReduceOp.AVG)
                eq(t, base * (n + 1) / 2, f"all_reduce AVG {dt}")

        @check(f"broadcast {dt}")
        def _():
            t = T(base * (r + 1), dt)
            dist.broadcast(t, src=n - 1)
            eq(t, base * n, f"broadcast {dt}")

        @check(f"reduce {dt}")
        def _():
            t = T(base * (r + 1), dt)
            dist.reduce(t, dst=0)
            eq(t, base * total if r == 0 else base * (r + 1), f"reduce {dt} (others unchanged)")

        @check(f"all_gather {dt}")
        def _():
            outs = [T(np.zeros((2, 3)), dt) for _ in range(n)]
            dist.all_gather(outs, T(np.full((2, 3), r), dt))
            for k in range(n):
                eq(outs[k], np.full((2, 3), k), f"all_gather {dt}, block {k}")

        @check(f"all_gather_into_tensor {dt}")
        def _():
            big = T(np.zeros((n * 2, 3)), dt)
            dist.all_gather_into_tensor(big, T(np.full((2, 3), r), dt))
            eq(big, np.repeat(np.arange(n), 6).reshape(n * 2, 3), f"all_gather_into_tensor {dt}")

        @check(f"reduce_scatter_tensor {dt}")
        def _():
            out = T(np.zeros(2), dt)
            dist.reduce_scatter_tensor(out, T(np.arange(2 * n) * (r + 1), dt))
            eq(out, np.arange(2 * r, 2 * r + 2) * total, f"reduce_scatter_tensor SUM {dt}")
            if dt.is_floating_point:
                dist.reduce_scatter_tensor(out, T(np.arange(2 * n) * (r + 1), dt), op=dist.ReduceOp.AVG)
                eq(out, np.arange(2 * r, 2 * r + 2) * total / n, f"reduce_scatter_tensor AVG {dt}")

        @check(f"gather {dt}")
        def _():
            gl = [T(np.zeros(3), dt) for _ in range(n)] if r == 0 else None
            dist.gather(T(np.full(3, r), dt), gl, dst=0)
            if r == 0:
                for k in range(n):
                    eq(gl[k], np.full(3, k), f"gather {dt}, from rank {k}")

        @check(f"scatter {dt}")
        def _():
            t = T(np.zeros(4), dt)
            sl = [T(np.full(4, k * 10), dt) for k in range(n)] if r == n - 1 else None
            dist.scatter(t, sl, src=n - 1)
            eq(t, np.full(4, r * 10), f"scatter {dt}")

        @check(f"all_to_all_single {dt}")
        def _():
            out = T(np.zeros(n * 2), dt)
            dist.all_to_all_single(out, T(np.arange(n * 2) + 10 * r, dt))
            eq(out, np.concatenate([np.arange(2 * r, 2 * r + 2) + 10 * k for k in range(n)]), f"all_to_all {dt}")
            # uneven: rank r sends k + 1 rows of 2 to rank k, and receives r + 1 rows from each
            inp = T(np.concatenate([np.full((k + 1, 2), 10 * r + k) for k in range(n)]), dt)
            out = T(np.zeros(((r + 1) * n, 2)), dt)
            dist.all_to_all_single(out, inp, output_split_sizes=[r + 1] * n,
                                   input_split_sizes=[k + 1 for k in range(n)])
            eq(out, np.concatenate([np.full((r + 1, 2), 10 * k + r) for k in range(n)]), f"all_to_all uneven {dt}")

        @check(f"batch_isend_irecv ring {dt}")
        def _():
            got = T(np.zeros(5), dt)
            works = dist.batch_isend_irecv([dist.P2POp(dist.isend, T(np.full(5, r), dt), (r + 1) % n),
                                            dist.P2POp(dist.irecv, got, (r - 1) % n)])
            for w in works:
                w.wait()
            eq(got, np.full(5, (r - 1) % n), f"batch_isend_irecv {dt}")

    @check("all_reduce of the other NCCL types, and bool as logical or/and")
    def _():
        for dt in (ember.float64, ember.float16, ember.int8, ember.uint8, ember.int32):
            t = T(base * (r + 1), dt)
            dist.all_reduce(t)
            eq(t, base * total, f"all_reduce SUM {dt}")
        t = T([r == 0, False, True], ember.bool)
        dist.all_reduce(t)                                   # SUM: or
        assert t.dtype is ember.bool and to_numpy(t).tolist() == [1, 0, 1], to_numpy(t)
        t = T([r == 0, False, True], ember.bool)
        dist.all_reduce(t, op=dist.ReduceOp.PRODUCT)         # and
        assert to_numpy(t).tolist() == [int(n == 1), 0, 1], to_numpy(t)
        t = T(np.arange(4) + 100 * r, ember.int16)           # moved as bytes: any dtype
        dist.broadcast(t, src=0)
        eq(t, np.arange(4), "broadcast int16")

    if n > 1:
        @check("send / recv / isend / irecv")
        def _():
            if r == 0:
                dist.send(T(np.full(5, 7.0)), dst=1)
                dist.isend(T(np.full(3, 8.0)), dst=1).wait()
            elif r == 1:
                got = T(np.zeros(5))
                assert dist.recv(got, src=0) == 0
                eq(got, np.full(5, 7.0), "send/recv")
                got = T(np.zeros(3))
                w = dist.irecv(got, src=0)
                w.wait()
                eq(got, np.full(3, 8.0), "isend/irecv")

    @check("async_op: Work.wait() and is_completed()")
    def _():
        t = T(base * (r + 1))
        w = dist.all_reduce(t, async_op=True)
        assert isinstance(w, dist.Work), type(w)
        assert w.wait() is True
        eq(t, base * total, "async all_reduce after wait()")       # the copy to the CPU follows the wait
        sync(device)
        assert w.is_completed()
        ws = [dist.broadcast(T(base), src=0, async_op=True), dist.all_gather_into_tensor(
            T(np.zeros(6 * n)), T(base), async_op=True), dist.barrier(async_op=True)]
        for w in ws:
            w.wait()
        sync(device)
        assert all(w.is_completed() for w in ws)

    @check("new_group: a subgroup of rank 0, and one of every rank")
    def _():
        sub = dist.new_group([0])
        if r == 0:
            assert dist.get_rank(sub) == 0 and dist.get_world_size(sub) == 1 and dist.get_backend(sub) == "nccl"
            t = T(base)
            dist.all_reduce(t, group=sub)
            eq(t, base, "all_reduce on [0]")
        else:
            assert sub is dist.GroupMember.NON_GROUP_MEMBER and dist.get_rank(sub) == -1
        everyone = dist.new_group(list(range(n))[::-1])
        assert dist.get_rank(everyone) == r and dist.get_world_size(everyone) == n
        t = T(base * (r + 1))
        dist.all_reduce(t, group=everyone)
        eq(t, base * total, "all_reduce on a group of every rank")
        t = T(np.full(2, r))
        dist.broadcast(t, src=n - 1, group=everyone)          # src is a global rank, as in torch
        eq(t, np.full(2, n - 1), "broadcast on a group")
        dist.barrier(group=everyone)
        dist.destroy_process_group(everyone)
        if r == 0:
            dist.destroy_process_group(sub)

    @check("barrier")
    def _():
        assert dist.barrier() is None
        dist.barrier()

    @check("clear errors")
    def _():
        import pytest
        if ember.device(device).type == "cuda":
            with pytest.raises(RuntimeError, match=r"tensor is on cpu; the 'nccl' backend .* takes tensors on its "
                                                   r"communicator's device, cuda:\d"):
                dist.all_reduce(ember.ones(3))
        with pytest.raises(ValueError, match="Tensors must be contiguous"):
            dist.all_reduce(T(np.ones((4, 3))).t())
        with pytest.raises(ValueError, match="ReduceOp.AVG needs a floating tensor"):
            dist.all_reduce(T(np.ones(3), ember.int64), op=dist.ReduceOp.AVG)
        with pytest.raises(TypeError, match="NCCL cannot reduce int16"):
            dist.all_reduce(T(np.ones(3), ember.int16))
        with pytest.raises(ValueError, match="pass src"):
            dist.irecv(T(np.ones(3)))
        with pytest.raises(ValueError, match="rank 9 is not in group"):
            dist.broadcast(T(np.ones(3)), src=9)
    return check.failures


# ---- DDP ------------------------------------------------------------------------------------------------------

def _model(seed, device):
    ember.manual_seed(seed)
    return ember.nn.Sequential(ember.nn.Linear(6, 16), ember.nn.Tanh(), ember.nn.Linear(16, 3)).to(device)


def _data(n, device, steps=6):
    g = np.random.default_rng(0)
    return [(ember.tensor(g.standard_normal((4 * n, 6)).astype(np.float32)).to(device),
             ember.tensor(g.integers(0, 3, 4 * n)).to(device)) for _ in range(steps)]


def check_ddp(device) -> list:
    """DDP (several buckets, replicas started apart) trains as one process on the whole batch, 5 SGD steps."""
    from ember.nn.parallel import DistributedDataParallel as DDP
    F = ember.nn.functional
    r, n = dist.get_rank(), dist.get_world_size()
    check = Checks()

    @check("DDP equals plain training on the whole batch, 5 steps")
    def _():
        model = DDP(_model(100 + r, device), bucket_cap_mb=0.0002)        # rank 0's weights are broadcast
        assert len(model._buckets) > 1, len(model._buckets)
        ref = _model(100, device)
        for a, b in zip(model.module.parameters(), ref.parameters()):
            eq(a, to_numpy(b), "parameters broadcast from rank 0")
        opt, ropt = (ember.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (model, ref))
        for step, (x, y) in enumerate(_data(n, device)[:5]):
            mine = slice(r * 4, (r + 1) * 4)
            opt.zero_grad()
            F.cross_entropy(model(x[mine]), y[mine]).backward()
            opt.step()
            ropt.zero_grad()
            F.cross_entropy(ref(x), y).backward()
            ropt.step()
            for (name, a), b in zip(model.module.named_parameters(), ref.parameters()):
                eq(a, to_numpy(b), f"step {step}, {name}", tol=1e-5)
        if model._buckets[0].buffer.is_cuda:    # reduced on DDP's communication stream, joined back before the step
            assert model._comm is not None and model._comm != ember.cuda.current_stream(device), model._comm
            assert not model._comm_used
    return check.failures


def check_graph(device) -> list:
    """A DDP training step captured by ember.cuda.graphed_step gives the eager DDP step's losses and weights."""
    from ember.nn.parallel import DistributedDataParallel as DDP
    F = ember.nn.functional
    r, n = dist.get_rank(), dist.get_world_size()
    check = Checks()

    def trainer(model, opt):
        def step(x, y):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.detach()
        return step

    @check("DDP step captured in a CUDA graph equals the eager DDP step")
    def _():
        mine = slice(r * 4, (r + 1) * 4)
        data = [(x[mine], y[mine]) for x, y in _data(n, device)]
        runs = []
        for graphed in (False, True):
            model = DDP(_model(7, device), bucket_cap_mb=0.0002)
            opt = ember.optim.AdamW(model.parameters(), lr=1e-2, capturable=True)
            step = trainer(model, opt)
            if graphed:
                step = ember.cuda.graphed_step(step, warmup=2)
            losses = [float(step(x, y)) for x, y in data]
            if graphed:
                assert step.eager_reason is None, f"the capture was abandoned: {step.eager_reason}"
                assert len(step._graphs) == 1 and next(iter(step._graphs.values())).graph is not None
            runs.append((losses, [to_numpy(p) for p in model.module.parameters()]))
        (eager, pe), (graph, pg) = runs
        np.testing.assert_allclose(graph, eager, rtol=1e-5, atol=1e-6, err_msg="losses, graphed vs eager")
        for a, b in zip(pg, pe):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg="weights after the steps")
    return check.failures


# ---- the process ----------------------------------------------------------------------------------------------

def init(how: str) -> None:
    if how == "tcp":
        dist.init_process_group("nccl", init_method=f"tcp://{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}",
                                rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]),
                                timeout=TIMEOUT)
    else:
        dist.init_process_group("nccl", timeout=TIMEOUT)


def main(case: str, how: str) -> int:
    t0 = time.perf_counter()
    init(how)
    r = dist.get_rank()
    device = f"cuda:{ember.cuda.current_device()}"
    want = int(os.environ.get("LOCAL_RANK", 0))
    print(f"rank {r}: initialised ({how}) on {device} in {time.perf_counter() - t0:.2f} s", flush=True)
    failures = [] if device == f"cuda:{want}" else [f"device {device}, expected cuda:{want} (LOCAL_RANK)"]
    for name, fn in (("collectives", check_collectives), ("ddp", check_ddp), ("graph", check_graph)):
        if case in (name, "all"):
            failures += fn(device)
    dist.destroy_process_group()
    if case in ("collectives", "all"):
        try:        # a second default group in the same process: rank 0 serves the store again on the same port
            init(how)
            dist.barrier()
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001
            failures.append("init_process_group again after destroy_process_group")
            print(f"FAIL init again (rank {r}):\n{traceback.format_exc()}", flush=True)
    assert not dist.is_initialized()
    if "torch" in sys.modules:
        failures.append("torch was imported")
    if failures:
        print(f"rank {r} FAILED {len(failures)} check(s): {failures}", flush=True)
        return 1
    print(f"rank {r} ok ({time.perf_counter() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "env"))
