"""Run by tests/test_distributed.py under `mpiexec -n N`: each rank checks ember.distributed's collectives
against the values they must give, then prints "rank R ok". Usage: worker.py collectives|timeout|errors"""
import datetime
import sys

import numpy as np

import ember
import ember.distributed as dist


def eq(got, want, what):
    got = got.detach().double().numpy() if isinstance(got, ember.Tensor) else np.asarray(got)
    np.testing.assert_allclose(got, np.asarray(want, dtype=got.dtype), rtol=1e-6, atol=1e-6, err_msg=what)


def collectives():
    dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=60))
    r, n = dist.get_rank(), dist.get_world_size()
    assert dist.is_initialized() and dist.get_backend() == "mpi" and n >= 2
    base = np.arange(6, dtype=np.float32)
    for dt in (ember.float32, ember.float64, ember.int64, ember.bfloat16):
        t = ember.tensor(base * (r + 1)).to(dt)
        v = t._version
        dist.all_reduce(t)
        eq(t, base * sum(k + 1 for k in range(n)), f"all_reduce SUM {dt}")
        assert t._version > v, "all_reduce must count as an in-place write"
    for op, want in ((dist.ReduceOp.MAX, base * n), (dist.ReduceOp.MIN, base), (dist.ReduceOp.AVG, base * (n + 1) / 2),
                     (dist.ReduceOp.PRODUCT, base ** n * np.prod(np.arange(1, n + 1)))):
        t = ember.tensor(base * (r + 1))
        dist.all_reduce(t, op=op)
        eq(t, want, f"all_reduce {op}")
    w = dist.all_reduce(ember.ones(3) * r, async_op=True)
    w.wait()
    assert w.is_completed()
    t = ember.tensor(base * (r + 1))
    dist.broadcast(t, src=n - 1)
    eq(t, base * n, "broadcast")
    t = ember.tensor(base * (r + 1))
    dist.reduce(t, dst=0)
    if r == 0:
        eq(t, base * sum(k + 1 for k in range(n)), "reduce")
    outs = [ember.zeros(2, 3) for _ in range(n)]
    dist.all_gather(outs, ember.full((2, 3), float(r)))
    for k in range(n):
        eq(outs[k], np.full((2, 3), k), "all_gather")
    big = ember.zeros(n * 2, 3)
    dist.all_gather_into_tensor(big, ember.full((2, 3), float(r)))
    eq(big, np.repeat(np.arange(n), 6).reshape(n * 2, 3), "all_gather_into_tensor")
    out = ember.zeros(2)
    dist.reduce_scatter_tensor(out, ember.arange(2 * n, dtype=ember.float32) * (r + 1))
    eq(out, np.arange(2 * r, 2 * r + 2) * sum(k + 1 for k in range(n)), "reduce_scatter_tensor")
    gl = [ember.zeros(3) for _ in range(n)] if r == 0 else None
    dist.gather(ember.full((3,), float(r)), gl, dst=0)
    if r == 0:
        for k in range(n):
            eq(gl[k], np.full(3, k), "gather")
    t = ember.zeros(4)
    sl = [ember.full((4,), float(k * 10)) for k in range(n)] if r == 1 else None
    dist.scatter(t, sl, src=1)
    eq(t, np.full(4, r * 10), "scatter")
    inp = ember.arange(n * 2, dtype=ember.float32) + 100 * r
    out = ember.zeros(n * 2)
    dist.all_to_all_single(out, inp)
    eq(out, np.concatenate([np.arange(2 * r, 2 * r + 2) + 100 * k for k in range(n)]), "all_to_all_single")
    if r == 0:
        dist.send(ember.full((5,), 7.0), dst=1, tag=3)
    elif r == 1:
        got = ember.zeros(5)
        assert dist.recv(got, tag=3) == 0
        eq(got, np.full(5, 7.0), "send/recv")
    sub = dist.new_group([0, n - 1])
    t = ember.ones(2)
    if r in (0, n - 1):
        assert dist.get_rank(sub) == (0 if r == 0 else 1) and dist.get_world_size(sub) == 2
        dist.all_reduce(t, group=sub)
        eq(t, np.full(2, 2.0), "all_reduce on a subgroup")
        t = ember.full((2,), float(r))
        dist.broadcast(t, src=n - 1, group=sub)          # src is a global rank, as in torch
        eq(t, np.full(2, n - 1), "broadcast on a subgroup")
    else:
        assert sub is dist.GroupMember.NON_GROUP_MEMBER and dist.get_rank(sub) == -1
    dist.barrier()
    dist.destroy_process_group()
    assert not dist.is_initialized()
    print(f"rank {r} ok", flush=True)


def timeout():
    """Rank 0 joins the collective late: the others' wait raises a clear error at the 2 s timeout; then they
    wait again, rank 0 joins, and the job ends cleanly."""
    import time
    dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=2))
    r = dist.get_rank()
    t = ember.ones(4)
    if r == 0:
        time.sleep(4.0)
        dist.all_reduce(t)
    else:
        w = dist.all_reduce(t, async_op=True)
        start = time.monotonic()
        try:
            w.wait()
        except RuntimeError as e:
            took = time.monotonic() - start
            assert "all_reduce" in str(e) and "did not complete within 0:00:02" in str(e), str(e)
            assert 1.9 < took < 3.5, took
        else:
            raise AssertionError("no timeout error")
        w.wait(datetime.timedelta(seconds=60))
    eq(t, np.full(4, float(dist.get_world_size())), "all_reduce after the timeout")
    dist.destroy_process_group()
    print(f"rank {r} ok", flush=True)


def errors():
    import pytest
    with pytest.raises(RuntimeError, match="Default process group has not been initialized"):
        dist.get_rank()
    with pytest.raises(ValueError, match="unknown backend 'gloo2'"):
        dist.init_process_group("gloo2")
    import os
    os.environ.pop("MASTER_ADDR", None)
    with pytest.raises(ValueError, match="needs the environment variable MASTER_ADDR"):
        dist.init_process_group("nccl")         # its rendezvous comes first: mpiexec sets no MASTER_ADDR
    assert not dist.is_initialized()
    dist.init_process_group()
    r = dist.get_rank()
    with pytest.raises(RuntimeError, match="initialize the default process group twice"):
        dist.init_process_group("mpi")
    with pytest.raises(ValueError, match="Tensors must be contiguous"):
        dist.all_reduce(ember.ones(4, 3).t())
    with pytest.raises(ValueError, match="op must be a ReduceOp"):
        dist.all_reduce(ember.ones(3), op="mean")
    with pytest.raises(ValueError, match="ReduceOp.AVG needs a floating tensor"):
        dist.all_reduce(ember.ones(3, dtype=ember.int64), op=dist.ReduceOp.AVG)
    with pytest.raises(ValueError, match="all_gather: tensor_list must hold world_size"):
        dist.all_gather([ember.zeros(3)], ember.zeros(3))
    with pytest.raises(ValueError, match="rank 9 is not in group"):
        dist.broadcast(ember.zeros(3), src=9)
    dist.barrier()
    dist.destroy_process_group()
    print(f"rank {r} ok", flush=True)


def _model(seed):
    ember.manual_seed(seed)
    return ember.nn.Sequential(ember.nn.Linear(6, 16), ember.nn.Tanh(), ember.nn.Linear(16, 16), ember.nn.Tanh(),
                               ember.nn.Linear(16, 3)).double()


def ddp():
    """DDP over n ranks, each with 1/n of the batch, trains exactly as one process on the whole batch (float64,
    SGD with momentum, 5 steps); with several buckets, no_sync accumulation, and the sampler's defaults."""
    from ember.nn.parallel import DistributedDataParallel as DDP
    from ember.utils.data import DistributedSampler
    dist.init_process_group("mpi")
    r, n = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(0)
    X = ember.tensor(rng.standard_normal((8 * n, 6)))
    Y = ember.tensor(rng.integers(0, 3, 8 * n))
    ref = _model(0)                                      # the single-process twin, whole batch
    model = DDP(_model(100 + r), bucket_cap_mb=0.001)      # replicas start different: DDP broadcasts rank 0's
    assert len(model._buckets) > 1
    for a, b in zip(model.module.parameters(), _model(100).parameters()):
        eq(a, b.detach().numpy(), "parameters broadcast from rank 0")
    ref.load_state_dict({k[len("module."):]: v for k, v in model.state_dict().items()})
    opt, ropt = (ember.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (model, ref))
    F = ember.nn.functional
    for step in range(5):
        mine = slice(r * 8, (r + 1) * 8)
        opt.zero_grad()
        F.cross_entropy(model(X[mine]), Y[mine]).backward()
        opt.step()
        ropt.zero_grad()
        F.cross_entropy(ref(X), Y).backward()
        ropt.step()
        for a, b in zip(model.module.parameters(), ref.parameters()):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"step {step}")
    # no_sync: two half-batches accumulated locally, reduced at the second backward = one whole-batch step
    opt.zero_grad()
    ropt.zero_grad()
    halves = (slice(r * 8, r * 8 + 4), slice(r * 8 + 4, (r + 1) * 8))
    with model.no_sync():
        (F.cross_entropy(model(X[halves[0]]), Y[halves[0]]) / 2).backward()
    (F.cross_entropy(model(X[halves[1]]), Y[halves[1]]) / 2).backward()
    F.cross_entropy(ref(X), Y).backward()
    for a, b in zip(model.module.parameters(), ref.parameters()):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg="no_sync")
    # find_unused_parameters: rank 0 leaves the second head out; its grad is the other ranks' contribution / n
    class Two(ember.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = ember.nn.Linear(6, 3).double(), ember.nn.Linear(6, 3).double()

        def forward(self, x, use_b):
            return self.a(x) + self.b(x) if use_b else self.a(x)
    ember.manual_seed(1)
    two = DDP(Two(), find_unused_parameters=True)
    x = X[r * 8:(r + 1) * 8]
    two(x, r != 0).sum().backward()               # every bucket is reduced by the end of this backward
    want_b = sum(X[k * 8:(k + 1) * 8].sum(0).numpy() for k in range(1, n)) / n
    np.testing.assert_allclose(two.module.b.weight.grad.numpy(), np.tile(want_b, (3, 1)), rtol=1e-12,
                               err_msg="find_unused_parameters")
    np.testing.assert_allclose(two.module.a.weight.grad.numpy(), np.tile(X.sum(0).numpy() / n, (3, 1)),
                               rtol=1e-12, err_msg="find_unused_parameters, the used head")
    strict = DDP(Two())
    strict(x, False).sum().backward()
    try:
        strict(x, False)
    except RuntimeError as e:
        assert "did not produce grads for 2 parameter(s)" in str(e) and "find_unused_parameters=True" in str(e), e
    else:
        raise AssertionError("an incomplete bucket was not reported")
    # a strided parameter and buffer (made by ops on transposed tensors, in torch's layout) are broadcast too
    lin = ember.nn.Linear(3, 4).double()
    lin.weight = ember.nn.Parameter(ember.tensor(np.full((3, 4), float(r))).t() * 1.0)
    lin.register_buffer("scale", ember.tensor(np.full((2, 3), float(r) + 1)).t() + 0.0)
    assert not lin.weight.is_contiguous() and not lin.scale.is_contiguous()
    wrapped = DDP(lin)
    eq(lin.weight, np.zeros((4, 3)), "a strided parameter broadcast from rank 0")
    wrapped(X[:2, :3])                                  # broadcast_buffers: rank 0's buffers, again, each forward
    eq(lin.scale, np.ones((3, 2)), "a strided buffer broadcast from rank 0")
    s = DistributedSampler(list(range(10)), shuffle=False)
    order = list(range(10)) + list(range(10))[:(-10) % n]          # padded by repeating the start, as torch
    assert (s.num_replicas, s.rank) == (n, r) and list(s) == order[r::n], (list(s), order[r::n])
    dist.destroy_process_group()
    print(f"rank {r} ok", flush=True)


def crash():
    """Rank 1 raises an exception nothing catches while rank 0 waits in a barrier (timeout: 10 minutes)."""
    dist.init_process_group("mpi", timeout=datetime.timedelta(minutes=10))
    if dist.get_rank() == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.barrier()


if __name__ == "__main__":
    {"collectives": collectives, "timeout": timeout, "errors": errors, "ddp": ddp, "crash": crash}[sys.argv[1]]()
