"""What ember.profiler costs per op call: host time per op with no profiler, with one recording CPU
ranges, with record_shapes, and with profile_memory (CPU; with --device cuda also the CUDA activity).

    python benchmarks/profiler_overhead.py [--device cpu|cuda] [--write]

Each case is timed in alternation between the settings (the best of 3 x 2,000 calls, 7 rounds, median),
on 1,000-element float32 inputs; a profiler's events are dropped after each batch so memory stays flat.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from _common import append, header

import ember
from ember.profiler import ProfilerActivity, profile

CASES = {
    "a + b": lambda a, b: a + b,
    "a.exp()": lambda a, b: a.exp(),
    "a.sum()": lambda a, b: a.sum(),
    "a[1:3]": lambda a, b: a[1:3],
    "a @ b.t()": lambda a, b: a @ b.t(),
}


def _time(fn, inner=2000):
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best * 1e6


def run(device: str, rounds: int = 7):
    x = np.random.default_rng(0).standard_normal((40, 25)).astype(np.float32)
    a, b = ember.tensor(x, device=device), ember.tensor(x, device=device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    settings = {"off": None, "CPU ranges": dict(activities=[ProfilerActivity.CPU]),
                "+ record_shapes": dict(activities=[ProfilerActivity.CPU], record_shapes=True),
                "+ profile_memory": dict(activities=[ProfilerActivity.CPU], record_shapes=True, profile_memory=True)}
    if device == "cuda":
        settings["+ CUDA activity"] = dict(activities=acts)
    rows = []
    for name, case in CASES.items():
        fn = lambda: case(a, b)  # noqa: E731
        res = {k: [] for k in settings}
        for _ in range(rounds):
            for k, kw in settings.items():
                if kw is None:
                    res[k].append(_time(fn))
                else:
                    with profile(**kw):
                        res[k].append(_time(fn))
            if device == "cuda":
                ember.cuda.synchronize()
        rows.append((name, {k: statistics.median(v) for k, v in res.items()}))
    return list(settings), rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    names, rows = run(args.device)
    lines = ["| op | " + " | ".join(f"{n} µs" for n in names) + " | CPU ranges - off |",
             "|---|" + "---:|" * (len(names) + 1)]
    for op, r in rows:
        lines.append(f"| `{op}` | " + " | ".join(f"{r[n]:.2f}" for n in names)
                     + f" | +{r['CPU ranges'] - r['off']:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        append(header("ember.profiler cost per op call (`benchmarks/profiler_overhead.py`)", args.device)
               + table + "\n")


if __name__ == "__main__":
    main()
