"""Host time per small op: ember vs PyTorch eager on the same device, in one process.

    python benchmarks/overhead.py [--device cpu|cuda] [--n 1000] [--write]

Each case runs the same expression on 1,000-element float32 inputs (the size where the time is
all dispatch and bookkeeping) and reports the median of several repeats in microseconds, and the
ratio ember/torch (lower is better; 1.0 = as fast as torch). `--write` appends the table to
BENCHMARKS.md with the device, date and commit.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

import ember

CASES = {
    "a + b": lambda m, a, b: a + b,
    "a * 2.5": lambda m, a, b: a * 2.5,
    "a.add_(b)": lambda m, a, b: a.add_(b),
    "a.exp()": lambda m, a, b: a.exp(),
    "a.sum()": lambda m, a, b: a.sum(),
    "a.sum(dim=1)": lambda m, a, b: a.sum(dim=1),
    "a[1:3]": lambda m, a, b: a[1:3],
    "a.view(-1)": lambda m, a, b: a.view(-1),
    "a.t()": lambda m, a, b: a.t(),
    "a @ b.t()": lambda m, a, b: a @ b.t(),
    "softmax(a, -1)": lambda m, a, b: a.softmax(-1),
    "zeros(40, 25)": lambda m, a, b: m.zeros(40, 25),
}


def _time(fn, reps: int, inner: int) -> float:
    for _ in range(inner):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times) * 1e6


def _sync(m, device):
    if device == "cuda":
        m.cuda.synchronize()


def run(device: str, n: int, reps: int = 7, inner: int = 2000):
    import torch
    rows = []
    x = np.random.default_rng(0).standard_normal((40, n // 40)).astype(np.float32)
    for name, case in CASES.items():
        res = {}
        for m in (ember, torch):
            a = m.tensor(x, device=device)
            b = m.tensor(x, device=device)
            res[m.__name__] = _time(lambda: case(m, a, b), reps, inner)
            _sync(m, device)
        rows.append((name, res["ember"], res["torch"], res["ember"] / res["torch"]))
    return rows, torch.__version__


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args(argv)
    rows, tv = run(args.device, args.n)
    cpu = platform.processor() or platform.machine()
    head = (f"### Host time per op, {args.n} float32 elements, device {args.device} ({cpu}), "
            f"{datetime.date.today()}, commit {_commit()}, torch {tv}, Python {sys.version.split()[0]}\n\n"
            "| op | ember µs | torch µs | ember/torch |\n|---|---:|---:|---:|\n")
    table = head + "".join(f"| `{n}` | {e:.2f} | {t:.2f} | {r:.2f} |\n" for n, e, t, r in rows)
    gm = float(np.exp(np.mean([np.log(r) for *_, r in rows])))
    table += f"\nGeometric mean of ember/torch: {gm:.2f}\n"
    print(table)
    if args.write:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "BENCHMARKS.md")
        new = not os.path.exists(path)
        with open(path, "a") as f:
            if new:
                f.write("# ember benchmarks\n\nMeasured by the scripts in `benchmarks/`; ratios are ember/torch "
                        "in the same process on the same device (lower is better).\n\n")
            f.write(table + "\n")


if __name__ == "__main__":
    main()
