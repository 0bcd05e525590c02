"""Host time per small op: ember vs PyTorch eager on the same device, in one process.

    python benchmarks/overhead.py [--device cpu|cuda] [--n 1000] [--write]

Each case runs the same expression on 1,000-element float32 inputs (a size where the time is
mostly dispatch and bookkeeping) and reports the median time in microseconds and the ratio
ember/torch. `--write` appends the table to BENCHMARKS.md with the device, date and commit.
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import append, header, time_us

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
    "a.softmax(-1)": lambda m, a, b: a.softmax(-1),
    "zeros(40, 25)": lambda m, a, b: m.zeros(40, 25),
    "a + b (a requires grad)": lambda m, a, b: a.requires_grad_() + b,
}


def run(device: str, n: int):
    import torch
    rows = []
    x = np.random.default_rng(0).standard_normal((40, n // 40)).astype(np.float32)
    for name, case in CASES.items():
        res = {}
        for m in (ember, torch):
            a = m.tensor(x, device=device)
            b = m.tensor(x, device=device)
            res[m.__name__] = time_us(lambda: case(m, a, b), inner=2000)
            if device == "cuda":
                m.cuda.synchronize()
        rows.append((name, res["ember"], res["torch"], res["ember"] / res["torch"]))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (ember's CPU path uses one)")
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    rows = run(args.device, args.n)
    table = header(f"Host time per op, {args.n} float32 elements", args.device)
    table += "| op | ember µs | torch µs | ember/torch |\n|---|---:|---:|---:|\n"
    table += "".join(f"| `{n}` | {e:.2f} | {t:.2f} | {r:.2f} |\n" for n, e, t, r in rows)
    gm = float(np.exp(np.mean([np.log(r) for *_, r in rows])))
    table += f"\nGeometric mean of ember/torch: {gm:.2f}\n"
    print(table)
    if args.write:
        append(table)


if __name__ == "__main__":
    main()
