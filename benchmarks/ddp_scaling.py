"""Data-parallel training of the GPT and ViT seed workloads: ember's DistributedDataParallel against torch's, in
the same processes, at a fixed per-rank batch: step time, global throughput, scaling efficiency over a 1-rank
run; a check that ember's DDP trains as one process does on the global batch; a DDP step in a CUDA graph.

    # on N GPUs (ember 'nccl', torch 'nccl'): first the 1-rank baseline, then N ranks against it
    python -m ember.distributed.run --nproc-per-node 1 benchmarks/ddp_scaling.py --save-json ddp1.json
    python -m ember.distributed.run --nproc-per-node N benchmarks/ddp_scaling.py --baseline-json ddp1.json
        [--workloads gpt vit] [--batch-per-rank B] [--steps 20] [--warmup 5] [--rounds 3] [--graph]
        [--check-losses 50] [--loss-rtol 1e-5] [--tiny] [--save-json PATH] [--write]
    # on the CPU (ember 'mpi', torch 'gloo'): dry runs and CI; ember's 'mpi' backend takes its ranks from MPI
    mpiexec -n 2 python benchmarks/ddp_scaling.py --device cpu --tiny --steps 2 --warmup 1 --check-losses 3

Every rank builds each workload's model (benchmarks/seed_workloads.py, written once for both frameworks) from
seed 0, wraps it in its framework's DistributedDataParallel and trains on its own slice (rank r: rows
r*B .. (r+1)*B - 1) of one global batch of N*B samples (B = --batch-per-rank, default the workload's batch in
seed_workloads.FULL, or TINY with --tiny), with the workload's optimizer; after building the model each rank
reseeds with a seed of its own, so the ranks draw different dropout masks. After --warmup steps (on a side
stream on CUDA, as seed_workloads does), each round times --steps steps of each runner in turn (ember, torch,
and with --graph ember's DDP step captured whole in one CUDA graph and replayed), from a barrier to the
framework's synchronize (cuda.synchronize; nothing on the CPU). A runner's step time is the median over
--rounds rounds, taken on the slowest rank (the one the others wait for at the next all-reduce); throughput
is N*B samples per step time. Scaling efficiency is throughput_N / (N * throughput_1), throughput_1 from the
--baseline-json of an earlier 1-rank run with the same sizes and batch (--save-json writes one); ember/torch
is the ratio of step times (lower is better), each ember runner against torch's eager DDP step.

--check-losses K trains ember's DDP over the N ranks for K steps with dropout 0 (the global batch's loss each
step: the mean of the ranks' slice losses, an all_reduce) and, inside rank 0 on the same device, the same model
(same seed) alone on the whole global batch, and compares the two loss curves: the run fails (exit 1, after
the table) if their largest relative difference exceeds --loss-rtol. The ranks compute the single process's
sums in N parts and average the gradients with an all-reduce, so the curves part by float32 rounding only.

Rank 0 prints the table (and appends it to BENCHMARKS.md with --write). torch.distributed meets on
MASTER_PORT + 1 (the launcher's port is ember's store), or on the CPU without a launcher's port on a free port
that rank 0 picks and broadcasts. Keep NVLink multicast off on the lent machines: NCCL_NVLS_ENABLE=0 (set here
if unset).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import socket
import statistics
import sys
import time

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import seed_workloads as sw  # noqa: E402
from _common import append, commit, header  # noqa: E402

WORKLOADS = ("gpt", "vit")
FRAMEWORKS = ("ember", "torch")
TIMEOUT = datetime.timedelta(minutes=10)
# the rank and the number of ranks, as each launcher tells them: ember.distributed.run / torchrun, MPICH's
# hydra, Open MPI's mpiexec
RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK")
WORLD_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
RANK_SEED = 1_000_003       # rank r's dropout stream: seed 1 + r * RANK_SEED, once the model is built


def _env_int(names, default):
    return next((int(os.environ[k]) for k in names if os.environ.get(k)), default)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (the flag, the value, what is allowed), printed by rank 0 only."""

    def error(self, message):
        fail(f"{message}", code=2)


def fail(message: str, code: int = 1):
    """Ends the run with one line on stderr (from rank 0 alone, where a launcher tells the rank). The other ranks
    leave a second later: a launcher stops every rank when the first one ends, which must be rank 0, its line
    printed."""
    if _env_int(RANK_VARS, 0) == 0:
        print(f"ddp_scaling: {message}", file=sys.stderr, flush=True)
    else:
        time.sleep(1.0)
    raise SystemExit(code)


def parse(argv):
    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    p.add_argument("--device", default="cuda", help="cuda (default: cuda:LOCAL_RANK, 'nccl') or cpu ('mpi' and "
                                                     "'gloo', for dry runs and CI)")
    p.add_argument("--tiny", action="store_true", help="seed_workloads' tiny sizes (d 32, 1 layer, batch 4)")
    p.add_argument("--batch-per-rank", type=int, default=None, metavar="B",
                   help="samples per rank and step (default: the workload's batch, 64 for gpt and 256 for vit)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per round (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default 3)")
    p.add_argument("--graph", action="store_true", help="also time ember's DDP step captured in a CUDA graph")
    p.add_argument("--check-losses", type=int, default=0, metavar="K",
                   help="compare K steps of ember DDP (dropout 0) with one process on the global batch (0: off)")
    p.add_argument("--loss-rtol", type=float, default=1e-5,
                   help="largest relative loss difference the check allows (default 1e-5, float32)")
    p.add_argument("--save-json", metavar="PATH", help="rank 0 writes this run's figures (a baseline when 1 rank)")
    p.add_argument("--baseline-json", metavar="PATH", help="a 1-rank run's --save-json: the scaling efficiency")
    p.add_argument("--write", action="store_true", help="rank 0 appends the table to BENCHMARKS.md")
    a = p.parse_args(argv)
    if a.device not in ("cuda", "cpu"):
        fail(f"--device {a.device}: expected cuda (each rank on cuda:LOCAL_RANK) or cpu")
    for flag, value, least in (("--steps", a.steps, 1), ("--warmup", a.warmup, 0), ("--rounds", a.rounds, 1),
                               ("--check-losses", a.check_losses, 0)):
        if value < least:
            fail(f"{flag} {value}: must be at least {least}")
    if a.batch_per_rank is not None and a.batch_per_rank < 1:
        fail(f"--batch-per-rank {a.batch_per_rank}: must be at least 1")
    if not (a.loss_rtol > 0 and math.isfinite(a.loss_rtol)):
        fail(f"--loss-rtol {a.loss_rtol}: must be a positive finite number")
    if a.graph and a.device == "cpu":
        fail("--graph: CUDA graphs need CUDA; run with --device cuda (the default), or without --graph on the CPU")
    if a.graph and a.warmup < 1:
        fail(f"--warmup {a.warmup}: --graph needs at least 1 warm-up step before the capture (optimizer state)")
    if a.save_json and not os.path.isdir(os.path.dirname(os.path.abspath(a.save_json))):
        fail(f"--save-json {a.save_json}: its folder does not exist")
    a.baseline = None
    if a.baseline_json:
        try:
            with open(a.baseline_json) as f:
                a.baseline = json.load(f)
            assert isinstance(a.baseline, dict) and isinstance(a.baseline.get("results"), dict)
        except OSError as e:
            fail(f"--baseline-json {a.baseline_json}: cannot read it ({e.strerror})")
        except (ValueError, AssertionError):
            fail(f"--baseline-json {a.baseline_json}: not a file written by ddp_scaling.py --save-json")
        if a.baseline.get("world") != 1:
            fail(f"--baseline-json {a.baseline_json}: written by a run on {a.baseline.get('world')} ranks; the "
                 f"baseline must be a 1-rank run")
        if a.baseline.get("device") != a.device:
            fail(f"--baseline-json {a.baseline_json}: measured on {a.baseline.get('device')}, this run is on "
                 f"{a.device}")
    return a


# ---- process groups ---------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init(a):
    """(rank, world size, device): ember's process group and torch's, on this rank's device."""
    import torch
    import torch.distributed as tdist

    import ember
    import ember.distributed as edist
    if a.device == "cuda":
        if _env_int(WORLD_VARS, 1) == 1 and "MASTER_PORT" not in os.environ:   # started alone: a world of one
            os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), RANK="0", WORLD_SIZE="1",
                              LOCAL_RANK="0")
        for var in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
            if var not in os.environ:
                fail(f"{var} is not set: on CUDA start the ranks with python -m ember.distributed.run "
                     f"--nproc-per-node N benchmarks/ddp_scaling.py")
        local = int(os.environ["LOCAL_RANK"])
        n = ember.cuda.device_count() if ember.cuda.is_available() else 0
        if not n or not torch.cuda.is_available():
            fail(f"--device cuda: {'ember' if not n else 'torch'} finds no CUDA device here; use --device cpu for a "
                 f"dry run on the CPU (with mpiexec -n N for several ranks)")
        if local >= n:
            fail(f"LOCAL_RANK {local}: this host has {n} GPU(s); start at most {n} ranks per node")
        torch.cuda.set_device(local)
        edist.init_process_group("nccl", timeout=TIMEOUT)
        device = f"cuda:{local}"
        addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]) + 1
        backend = "nccl"
    else:
        try:
            edist.init_process_group("mpi", timeout=TIMEOUT)
        except ValueError as e:     # e.g. ember.distributed.run's N processes: N MPI worlds of one
            n = _env_int(WORLD_VARS, 1)
            fail(f"{e}. On the CPU ember's 'mpi' backend takes its ranks from MPI: start them with mpiexec -n {n} "
                 f"python benchmarks/ddp_scaling.py --device cpu ...")
        device = "cpu"
        if "MASTER_PORT" in os.environ:
            addr, port = os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ["MASTER_PORT"]) + 1
        else:                       # mpiexec sets no rendezvous port: rank 0 picks one and tells the others
            addr = "127.0.0.1"
            t = ember.tensor([_free_port() if edist.get_rank() == 0 else 0])
            edist.broadcast(t, src=0)
            port = int(t.item())
        backend = "gloo"
    rank, world = edist.get_rank(), edist.get_world_size()
    tdist.init_process_group(backend, init_method=f"tcp://{addr}:{port}", rank=rank, world_size=world,
                             timeout=TIMEOUT, **(dict(device_id=torch.device(device)) if backend == "nccl" else {}))
    return rank, world, device


# ---- runners ----------------------------------------------------------------------------------------------------

def _ddp(lib, model, device):
    kw = dict(device_ids=[int(device.split(":")[1])]) if device.startswith("cuda") else {}
    return lib.nn.parallel.DistributedDataParallel(model, **kw)


def _shard(t, rank, b):
    return t[rank * b:(rank + 1) * b]


def make_runner(fw, name, cfg, b, rank, world, device, warmup, graphed):
    """As seed_workloads.make_runner, with the model in DDP and this rank's slice of the global batch: a dict
    with `run` (one step, or the graph's replay), `sync`, `loss` (the graph's static loss, or None) and `keep`."""
    lib = sw._lib(fw)
    lib.manual_seed(0)
    model = _ddp(lib, sw.build(lib, name, cfg).to(device), device)
    lib.manual_seed(1 + rank * RANK_SEED)
    opt = sw.make_optimizer(lib, model, cfg, capturable=graphed)
    gx, gy = sw.make_batch(lib, name, dict(cfg, batch=b * world), device)
    x, y = _shard(gx, rank, b), _shard(gy, rank, b)
    step = sw.make_step(lib, model, opt, x, y, device.split(":")[0], amp=False)
    # (the warm-up runs DDP's first steps too: its buckets and streams; a graph captures its all-reduces)
    return sw.warm_runner(lib, step, device, warmup, graphed, (model, opt, gx, gy, x, y))


def _barrier(device):
    import torch.distributed as tdist

    import ember.distributed as edist
    edist.barrier()
    tdist.barrier(**(dict(device_ids=[int(device.split(":")[1])]) if device.startswith("cuda") else {}))


def _over_ranks(values, device, op):
    """values (floats, one per runner) reduced over the ranks with ember's all_reduce."""
    import ember
    import ember.distributed as edist
    t = ember.tensor(values, dtype=ember.float64, device=device)
    edist.all_reduce(t, op=op)
    return [float(v) for v in t.cpu().tolist()]


def time_workload(name, cfg, b, a, rank, world, device):
    """{(framework, mode): (ms per step on the slowest rank, that rank's loss after the timing)}."""
    import ember.distributed as edist
    keys = [(fw, "eager") for fw in FRAMEWORKS] + ([("ember", "graphed")] if a.graph else [])
    runners = {}
    for fw, mode in keys:
        t0 = time.perf_counter()
        runners[(fw, mode)] = make_runner(fw, name, cfg, b, rank, world, device, a.warmup, mode == "graphed")
        say(rank, f"ready: {name} {fw} {mode} ({time.perf_counter() - t0:.1f} s to build and warm up)")
    times = {k: [] for k in keys}
    for _ in range(a.rounds):           # interleaved rounds, medians: the host's speed drifts over seconds
        for k in keys:
            r = runners[k]
            r["sync"]()
            _barrier(device)
            t0 = time.perf_counter()
            for _ in range(a.steps):
                r["run"]()
            r["sync"]()
            times[k].append((time.perf_counter() - t0) / a.steps * 1e3)
    losses = []
    for k in keys:
        r = runners[k]
        losses.append(float((r["run"]() if r["loss"] is None else r["loss"]).detach().float()))
        r["sync"]()
    slowest = _over_ranks([statistics.median(times[k]) for k in keys], device, edist.ReduceOp.MAX)
    runners.clear()
    sw._free(device, FRAMEWORKS)
    out = {}
    for k, ms, loss in zip(keys, slowest, losses):
        if not math.isfinite(loss):
            raise RuntimeError(f"ddp_scaling: {name} {k[0]} {k[1]}: loss {loss} after the timing on rank {rank}")
        out[k] = (ms, loss)
        say(rank, f"{name} {k[0]} {k[1]}: {ms:.2f} ms/step on the slowest rank, loss {loss:.4f} (rank 0)")
    return out


def check_losses(name, cfg, b, a, rank, world, device):
    """(largest relative difference, step where it is, DDP losses, single-process losses): K steps of ember's DDP
    over the ranks (dropout 0) against one process on the global batch, inside rank 0."""
    import ember
    import ember.distributed as edist
    cfg = dict(cfg, dropout=0.0)
    dev_type = device.split(":")[0]
    gx, gy = sw.make_batch(ember, name, dict(cfg, batch=b * world), device)
    ember.manual_seed(0)
    model = _ddp(ember, sw.build(ember, name, cfg).to(device), device)
    step = sw.make_step(ember, model, sw.make_optimizer(ember, model, cfg), _shard(gx, rank, b), _shard(gy, rank, b),
                        dev_type, amp=False)
    ddp = []
    for _ in range(a.check_losses):
        loss = step().detach().float().reshape(1).clone()
        edist.all_reduce(loss, op=edist.ReduceOp.AVG)       # equal slices: the mean of their means is the batch's
        ddp.append(loss)
    ddp = [float(v) for v in ddp]
    del model, step
    worst = [0.0, -1.0]
    one = []
    if rank == 0:
        ember.manual_seed(0)
        ref = sw.build(ember, name, cfg).to(device)
        step = sw.make_step(ember, ref, sw.make_optimizer(ember, ref, cfg), gx, gy, dev_type, amp=False)
        one = [float(step()) for _ in range(a.check_losses)]
        rel = [abs(d - o) / abs(o) if o else abs(d) for d, o in zip(ddp, one)]
        worst = [max(rel), float(rel.index(max(rel)))]
        if not all(math.isfinite(v) for v in ddp + one):
            worst[0] = math.inf
        del ref, step
    worst = _over_ranks(worst, device, edist.ReduceOp.MAX)   # every rank learns the verdict
    sw._free(device, ("ember",))
    return worst[0], int(worst[1]), ddp, one


# ---- the report -------------------------------------------------------------------------------------------------

def say(rank, *msg):
    if rank == 0:
        print("[ddp_scaling]", *msg, flush=True)


def _baseline_sps(a, name, fw, mode):
    """The 1-rank throughput of this runner from --baseline-json, or None (not measured there)."""
    got = None if a.baseline is None else a.baseline["results"].get(f"{name}/{fw}/{mode}")
    return None if got is None else got["samples_per_s"]


def check_baseline(a, plan) -> None:
    """--baseline-json must have measured the same sizes and batch per rank (checked before any rank starts)."""
    if a.baseline is None:
        return
    for name, (cfg, b) in plan.items():
        for key, got in a.baseline["results"].items():
            if key.split("/")[0] == name and (got.get("batch_per_rank") != b or got.get("cfg") != cfg):
                fail(f"--baseline-json {a.baseline_json}: its {name} run had batch/rank {got.get('batch_per_rank')} "
                     f"and sizes {got.get('cfg')}, this run has batch/rank {b} and sizes {cfg}: rerun the 1-rank "
                     f"baseline with the same --tiny / --batch-per-rank")


def report(a, world, device, figures, checks):
    import ember
    if device == "cpu":
        dev_name = f"cpu, {world} rank(s) (ember 'mpi', torch 'gloo')"
    else:
        dev_name = f"cuda ({ember.cuda.get_device_name()} x {world}; ember 'nccl', torch 'nccl')"
    title = f"DDP scaling: ember vs torch DistributedDataParallel on {world} rank(s)" + \
        (" (tiny sizes)" if a.tiny else "")
    text = header(title, dev_name)
    text += ("| workload | framework | mode | ranks | batch/rank | ms/step | samples/s | 1-rank samples/s | "
             "scaling efficiency | ember/torch ms |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
    saved = {}
    for name, (cfg, b, res) in figures.items():
        torch_ms = res[("torch", "eager")][0]
        for (fw, mode), (ms, _) in res.items():
            sps = world * b / (ms / 1e3)
            saved[f"{name}/{fw}/{mode}"] = dict(batch_per_rank=b, cfg=cfg, ms=ms, samples_per_s=sps)
            base = _baseline_sps(a, name, fw, mode)
            eff = "-" if base is None else f"{sps / (world * base):.1%}"
            ratio = f"{ms / torch_ms:.2f}" if fw == "ember" else "-"
            text += (f"| {name} | {fw} | {mode} | {world} | {b} | {ms:.2f} | {sps:,.1f} | "
                     f"{'-' if base is None else f'{base:,.1f}'} | {eff} | {ratio} |\n")
    text += (f"\nms per training step (forward, cross-entropy, backward with DDP's gradient all-reduce, optimizer "
             f"step) on the slowest rank, median of {a.rounds} interleaved round(s) of {a.steps} steps after "
             f"{a.warmup} warm-up steps; samples/s = ranks x batch/rank / step time; scaling efficiency = "
             f"samples/s / (ranks x the 1-rank samples/s)")
    if a.baseline is not None:
        text += (f" of {a.baseline_json} (commit {a.baseline.get('commit')}, {a.baseline.get('date')}, "
                 f"{a.baseline.get('device_name')})")
    text += "; ember/torch: step time of the ember runner over torch's eager DDP step (lower is better)"
    if a.graph:
        text += "; graphed: ember's whole DDP step (all-reduces included) captured in one CUDA graph and replayed"
    text += (". float32. Sizes (batch: per rank): " +
             "; ".join(f"{n}: {sw.describe(n, dict(cfg, batch=b))}" for n, (cfg, b, _) in figures.items()) + ".\n")
    for name, (worst, at, ddp, one) in checks.items():
        ok = worst <= a.loss_rtol
        text += (f"\nloss check {name}: ember DDP over {world} rank(s) vs one process on the global batch, "
                 f"{len(ddp)} steps (dropout 0): max relative difference {worst:.2e} (step {at + 1}), rtol "
                 f"{a.loss_rtol:g}: {'passed' if ok else 'FAILED'}; losses step 1 {ddp[0]:.6f} / {one[0]:.6f}, "
                 f"step {len(ddp)} {ddp[-1]:.6f} / {one[-1]:.6f}\n")
    return text, dict(script="ddp_scaling", world=world, device=a.device, device_name=dev_name, tiny=a.tiny,
                      steps=a.steps, warmup=a.warmup, rounds=a.rounds, commit=commit(),
                      date=str(datetime.date.today()), results=saved)


def main(argv=None) -> int:
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    a = parse(argv)
    import torch.distributed as tdist

    import ember.distributed as edist
    sizes = sw.TINY if a.tiny else sw.FULL
    plan = {}                   # workload: (the model's sizes, batch per rank)
    for name in a.workloads:
        cfg = {k: v for k, v in sizes[name].items() if k != "batch"}
        plan[name] = (cfg, a.batch_per_rank or sizes[name]["batch"])
    check_baseline(a, plan)
    rank, world, device = init(a)
    say(rank, f"{world} rank(s) on {device}: workloads {' '.join(a.workloads)}")
    figures, checks = {}, {}
    for name, (cfg, b) in plan.items():
        figures[name] = (cfg, b, time_workload(name, dict(cfg, batch=b), b, a, rank, world, device))
        if a.check_losses:
            checks[name] = check_losses(name, dict(cfg, batch=b), b, a, rank, world, device)
            say(rank, f"loss check {name}: max relative difference {checks[name][0]:.2e} over "
                      f"{a.check_losses} steps")
    failed = [n for n, c in checks.items() if not c[0] <= a.loss_rtol]
    if rank == 0:
        text, saved = report(a, world, device, figures, checks)
        print(text, flush=True)
        if a.write:
            append(text)
        if a.save_json:
            with open(a.save_json, "w") as f:
                json.dump(saved, f, indent=1)
            say(rank, f"wrote {a.save_json}")
        for name in checks:
            worst = checks[name][0]
            if name in failed:
                print(f"ddp_scaling: loss check FAILED for {name}: ember DDP over {world} rank(s) departs from one "
                      f"process on the global batch by {worst:.2e} relative, above --loss-rtol {a.loss_rtol:g}",
                      file=sys.stderr, flush=True)
            else:
                print(f"loss check passed: {name}, {a.check_losses} steps over {world} rank(s), max relative "
                      f"difference {worst:.2e} <= {a.loss_rtol:g}", flush=True)
    _barrier(device)
    tdist.destroy_process_group()
    edist.destroy_process_group()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
