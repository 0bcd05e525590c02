"""What the example jobs share: the Transformer block of the GPT and the ViT, finding the data, option checks,
resuming from a checkpoint's options and state, autocast, data parallelism under a launcher, the progress bar
and matplotlib (optional)."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import ember
import ember.distributed as dist
import ember.nn as nn
import ember.nn.functional as F
from ember.nn.parallel import DistributedDataParallel


class Block(nn.Module):
    """A pre-norm Transformer block: a fused qkv projection and `scaled_dot_product_attention` (`causal`: with
    is_causal=True), then a GELU MLP ending in dropout (`inner_dropout`: dropout after the GELU too)."""

    def __init__(self, d: int, h: int, dropout: float, causal: bool = False, inner_dropout: bool = False):
        super().__init__()
        self.h, self.dropout, self.causal = h, dropout, causal
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        inner = [nn.Dropout(dropout)] if inner_dropout else []
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), *inner, nn.Linear(4 * d, d), nn.Dropout(dropout))

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.ln2(x))


def find_data(job: str, data, paths, exists, what: str, hint: str) -> str:
    """The first of `paths(base)` for the bases --data and $EMBER_DATA for which `exists` holds; else exits
    with one line naming what was looked for, then `hint`."""
    cands = []
    for base in ([data] if data else []) + ([os.environ["EMBER_DATA"]] if os.environ.get("EMBER_DATA") else []):
        cands += paths(base)
    for c in cands:
        if exists(c):
            return c
    where = ", ".join(cands) if cands else "nowhere (neither --data nor EMBER_DATA is set)"
    raise SystemExit(f"{job}: {what} not found: looked for {where}. {hint}")


def parser(job: str, doc: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"python -m ember.examples.{job}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def default_device() -> str:
    cuda = getattr(ember, "cuda", None)
    return "cuda" if cuda is not None and cuda.is_available() else "cpu"


def add_run_options(p: argparse.ArgumentParser, job: str) -> None:
    """The options every job takes beside its own: seed, output folder, resume, autocast, progress bar."""
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--out", default=f"runs/{job}", help=f"folder of the checkpoint and the plots (default runs/{job})")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue from DIR's checkpoint (its options)")
    p.add_argument("--amp", choices=("bf16", "fp16", "off"), default="off", help="autocast (default off)")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="on CUDA, capture the whole training step (forward, backward, clipping, AdamW) as a CUDA graph "
                        "and replay it (default: on for CUDA)")


def use_cuda_graph(args, device: str) -> bool:
    """Whether the training step runs as a CUDA graph: on CUDA unless --no-cuda-graph; --cuda-graph elsewhere, or
    with --amp fp16 (its GradScaler reads the inf flag on the host), is refused."""
    asked = getattr(args, "cuda_graph", None)       # None: not given (or a checkpoint from before the option)
    graphed = device.startswith("cuda") and asked is not False
    if asked and not graphed:
        raise ValueError(f"--cuda-graph needs a CUDA device, got --device {device}")
    if args.amp == "fp16" and graphed:
        if asked:
            raise ValueError("--amp fp16 needs a GradScaler, whose step reads the inf flag on the host and so can't "
                             "be captured; use --amp bf16, or --no-cuda-graph")
        graphed = False
    return graphed


def set_lr(opt, lr: float) -> None:
    """Sets every group's learning rate: in place where it is a tensor (a graphed step reads it from the device)."""
    for g in opt.param_groups:
        if isinstance(g["lr"], ember.Tensor):
            g["lr"].fill_(lr)
        else:
            g["lr"] = lr


def add_model_options(p: argparse.ArgumentParser, cpu_d_model: int, cpu_layers: int, dropout: float) -> tuple:
    """The Block stack's options --d-model, --heads, --layers (256, 8 and 6 on CUDA; `cpu_d_model`, 4 and
    `cpu_layers` on the CPU) and --dropout; returns their size_defaults rows."""
    rows = (("d_model", 256, cpu_d_model), ("heads", 8, 4), ("layers", 6, cpu_layers))
    for (name, gpu_default, cpu_default), what in zip(rows, ("width", "attention heads", "blocks")):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                       help=f"{what} (default {gpu_default}; {cpu_default} on the CPU)")
    p.add_argument("--dropout", type=float, default=dropout, help=f"dropout (default {dropout:g})")
    return rows


def size_defaults(args, table) -> None:
    """Fills the options left at None from table rows (name, CUDA default, CPU default) by the device."""
    cpu = (args.device or default_device()) == "cpu"
    for name, gpu_default, cpu_default in table:
        if getattr(args, name) is None:
            setattr(args, name, cpu_default if cpu else gpu_default)


def check_options(p: argparse.ArgumentParser, args, checks) -> None:
    """checks: (flag, ok, what is allowed); the first failing one exits with one line naming the flag and value.
    A CUDA device asked for where there is none is refused the same way."""
    for flag, ok, allowed in checks:
        if not ok:
            p.error(f"--{flag} {getattr(args, flag.replace('-', '_'))}: must be {allowed}")
    if args.device is not None and args.device.startswith("cuda") and not ember.cuda.is_available():
        p.error(f"--device {args.device}: no CUDA device is available here; use --device cpu")
    if getattr(args, "cuda_graph", None):
        device = args.device or default_device()
        if not device.startswith("cuda"):
            p.error(f"--cuda-graph: needs a CUDA device, and the run's device is {device}")
        if getattr(args, "amp", None) == "fp16":
            p.error("--cuda-graph: not with --amp fp16, whose GradScaler reads the inf flag on the host (use --amp "
                    "bf16, or --no-cuda-graph)")


def resume(job: str, args, argv, may_change):
    """(args, checkpoint state) for `--resume DIR`: the run's own options from its checkpoint, except those in
    `may_change` that were given on this command line; `--out` defaults to DIR."""
    ck = os.path.join(args.resume, "checkpoint.safetensors")
    if not os.path.isfile(ck):
        raise SystemExit(f"{job}: --resume {args.resume}: no checkpoint.safetensors there")
    state = ember.load(ck)
    saved = json.loads(state["args"])
    argv = sys.argv[1:] if argv is None else argv
    given = {a.lstrip("-").split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
    for k in may_change:
        if k in given:
            saved[k] = getattr(args, k)
    if "out" not in given:
        saved["out"] = args.resume
    return argparse.Namespace(**{**saved, "resume": args.resume}), state


def restore(state, model, opt) -> dict:
    """Loads a checkpoint's model and optimizer state; returns its history."""
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    return json.loads(state["history"])


def amp(args, device: str):
    """(device type, autocast dtype or None, GradScaler) for `--amp`."""
    dev_type = device.split(":")[0]
    return (dev_type, {"bf16": ember.bfloat16, "fp16": ember.float16}.get(args.amp),
            ember.amp.GradScaler(dev_type, enabled=args.amp == "fp16"))


def update(loss, opt, scaler, params, max_norm: float = 1.0) -> None:
    """The optimizer half of a training step, as a torch AMP loop writes it: backward through the (scaled) loss,
    unscale, clip the gradients' total norm to `max_norm`, step (skipped by the scaler after an overflow)."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    nn.utils.clip_grad_norm_(params, max_norm)
    scaler.step(opt)
    scaler.update()


def lr_at(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, p)))


def make_step(model, loss_fn, opt, scaler, dev_type: str, amp_dtype, graphed: bool):
    """The training step (x, y) -> loss: loss_fn(x, y) under autocast (when amp_dtype is set), then the
    optimizer update of model's parameters; captured as a CUDA graph by ember.cuda.graphed_step when graphed."""
    def train_step(x, y):
        with ember.autocast(dev_type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_fn(x, y)
        update(loss, opt, scaler, model.parameters())
        return loss
    return ember.cuda.graphed_step(train_step) if graphed else train_step


# ---- data parallelism -----------------------------------------------------------------------------

# the number of ranks, as each launcher tells it: torch's (ember.distributed.run), MPICH's hydra, Open MPI's mpiexec
WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
LOCAL_RANK_VARS = ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK")
RANK_SEED = 1_000_003       # rank r's own random stream (dropout) is seeded with seed + r * RANK_SEED


def launched_world_size() -> int:
    """How many ranks a launcher started, from its environment; 1 without one. Reads no MPI, so a
    single-process run never initialises it."""
    return max((int(os.environ[k]) for k in WORLD_SIZE_VARS if os.environ.get(k)), default=1)


def setup_distributed(job: str, device: str, batch_size: int) -> tuple:
    """(rank, world size, device) of this process. Alone: (0, 1, device), nothing initialised. Started as
    several ranks: checks that the global batch `batch_size` splits evenly over them, then initialises
    ember.distributed, "mpi" on the CPU (ranks from mpiexec) or "nccl" on CUDA (ranks from ember.distributed.run
    or torchrun), on the device cuda:LOCAL_RANK. From then on, an exception that ends one rank ends the job
    (ember.distributed aborts it under mpiexec; the launcher stops the other ranks)."""
    world = launched_world_size()
    if world == 1:
        return 0, 1, device
    if batch_size % world:
        raise SystemExit(f"{job}: --batch-size {batch_size} does not split over {world} ranks: the global batch "
                         f"must be a multiple of the number of ranks, each rank training on an equal slice")
    cuda = device.startswith("cuda")
    try:
        dist.init_process_group("nccl" if cuda else "mpi")
    except ValueError as e:         # e.g. torch's launcher on the CPU, or mpiexec on CUDA
        how = (f"the CUDA 'nccl' backend meets the ranks through the launcher's environment: start them with "
               f"python -m ember.distributed.run --nproc-per-node {world} -m ember.examples.{job} ..." if cuda else
               f"the CPU's 'mpi' backend takes its ranks from MPI: start them with mpiexec -n {world} python -m "
               f"ember.examples.{job} ...")
        raise SystemExit(f"{job}: {e}. {how[0].upper()}{how[1:]}") from None
    if cuda:
        local = next((os.environ[k] for k in LOCAL_RANK_VARS if os.environ.get(k)), "0")
        device = f"cuda:{int(local)}"
    return dist.get_rank(), dist.get_world_size(), device


def data_parallel(model, world: int):
    """`model` wrapped in DistributedDataParallel (its replicas start from rank 0's weights) when there are
    several ranks; else `model` itself. Keep `model` for evaluation and checkpoints: its state_dict has the
    keys of a single-process run (no "module." prefix)."""
    return DistributedDataParallel(model) if world > 1 else model


def seed_rank(seed: int, rank: int, world: int) -> None:
    """With several ranks, once every rank has built the same model from `seed`: a random stream of the rank's
    own, so that the ranks do not draw the same dropout masks for their different slices."""
    if world > 1:
        ember.manual_seed(seed + rank * RANK_SEED)


def shard(batch, rank: int, world: int):
    """The rank's rows (slice `rank` of `world` equal slices) of a global batch (an array or a tensor); alone,
    the batch itself."""
    if world == 1:
        return batch
    n = len(batch) // world
    return batch[rank * n:(rank + 1) * n]


def mean_over_ranks(loss, world: int) -> float:
    """The global batch's loss from each rank's loss on its slice: their mean (an all_reduce)."""
    if world == 1:
        return loss.item()
    t = loss.detach().float().reshape(1).clone()
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    return t.item()


def say(rank: int):
    """print on rank 0; a no-op on the others (so that a message shows once)."""
    return print if rank == 0 else (lambda *a, **k: None)


def wait_for_rank0(world: int) -> None:
    """A barrier with several ranks: the others wait while rank 0 evaluates, samples or writes files."""
    if world > 1:
        dist.barrier()


def teardown(world: int) -> None:
    """The end of a data-parallel run: every rank waits for the others, then the process group goes."""
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


def progress(total: int, enabled: bool):
    """A tqdm bar, or None (disabled, nothing to do, or tqdm missing: the jobs print log lines then)."""
    if not enabled or total <= 0:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="step", dynamic_ncols=True)


def log_step(bar, history: dict, step: int, loss: float, rate: float, unit: str) -> None:
    """Records a step's loss in `history` and shows it with the throughput (`rate` `unit`/s): on the bar, or
    as a log line every 50 steps."""
    history["step"].append(step)
    history["loss"].append(loss)
    if bar is not None:
        bar.set_postfix(loss=f"{loss:.4f}", **{f"{unit}_s": f"{rate:,.0f}"})
        bar.update(1)
    elif step % 50 == 0:
        print(f"step {step:6d}  loss {loss:.4f}  {rate:,.0f} {unit}/s", flush=True)


def write_history(out: str, history: dict, result: dict) -> None:
    """history.json: the curves and the result (without its per-step losses, which the curves hold)."""
    with open(os.path.join(out, "history.json"), "w") as f:
        json.dump({"history": history, "result": {k: v for k, v in result.items() if k != "losses"}}, f)


def pyplot():
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is not installed (no PNGs then)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot(path: str, draw, size=(6, 4)) -> bool:
    """A PNG of one figure: `draw(ax)` fills its axes. False (and no file) without matplotlib."""
    plt = pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=size)
    draw(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
