"""What the example jobs share: option checks, resuming from a checkpoint's options, the progress bar and
matplotlib (optional)."""
from __future__ import annotations

import argparse
import json
import os
import sys

import ember


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
