"""Host time per small op, this tree against another commit, in one process (same-process A/B).

    python benchmarks/host_ab.py REV [--rounds 30] [--device cpu|cuda] [--tree DIR] [--cases "a + b" ...]

REV's `src/ember` is extracted with `git archive` and imported under another package name beside this
tree's `ember`, so both run in one process and each case is timed in alternation: `--rounds` paired rounds,
each the best of 3 x 1,000 calls, and the median of the paired ratios is reported. The lent and CI machines
drift by several percent between separate runs; paired rounds cancel that, which a 3% target needs.
Tensors of 1,000 float32 elements on `--device` (the cases of `benchmarks/overhead.py` and a few views); on
CUDA the queue is drained between timings, so what is timed is the host's side of each call. `--tree DIR` takes
REV's sources from DIR/src/ember instead (a machine without the git history, such as the GPU machine).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import timeit

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_other(rev: str, tree: str | None = None):
    """`ember` as of `rev` (from git, or from TREE/src/ember), imported as the package `ember_<short rev>`."""
    tmp = tempfile.mkdtemp(prefix="ember-ab-")
    name = "ember_" + rev.replace("-", "_").replace("~", "_").replace("^", "_")[:12]
    if tree is not None:
        shutil.copytree(os.path.join(tree, "src", "ember"), os.path.join(tmp, name))
        sys.path.insert(0, tmp)
        return __import__(name)
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev, "src/ember"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
    shutil.move(os.path.join(tmp, "src", "ember"), os.path.join(tmp, name))
    sys.path.insert(0, tmp)
    return __import__(name)


def cases(m, device="cpu"):
    x = np.random.default_rng(0).standard_normal((40, 25)).astype(np.float32)
    a, b, c = (m.from_numpy(x.copy()).to(device) for _ in range(3))
    ar = m.from_numpy(x.copy()).to(device).requires_grad_()
    return {"a + b": lambda: a + b, "a * 2.5": lambda: a * 2.5, "a.add_(b)": lambda: c.add_(b),
            "a.exp()": lambda: a.exp(), "a.sum()": lambda: a.sum(), "a.sum(dim=1)": lambda: a.sum(dim=1),
            "a[1:3]": lambda: a[1:3], "a.view(-1)": lambda: a.view(-1), "a.t()": lambda: a.t(),
            "a @ b.t()": lambda: a @ b.t(), "a.softmax(-1)": lambda: a.softmax(-1),
            "zeros(40, 25)": lambda: m.zeros(40, 25, device=device), "a + b (a requires grad)": lambda: ar + b,
            "cat([a, b])": lambda: m.cat([a, b]), "a.transpose(0, 1)": lambda: a.transpose(0, 1),
            "a.reshape(25, 40)": lambda: a.reshape(25, 40)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rev", help="the commit to compare against (e.g. the commit before a change)")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--cases", nargs="*", default=None)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--tree", default=None, help="a directory holding REV's src/ember (instead of git archive)")
    args = p.parse_args(argv)
    sys.path.insert(0, os.path.join(ROOT, "src"))
    import ember
    other = load_other(args.rev, args.tree)
    new, old = cases(ember, args.device), cases(other, args.device)
    sync = ember.cuda.synchronize if args.device == "cuda" else (lambda: None)
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip() or "this tree"
    except OSError:
        head = "this tree"
    print(f"device {args.device}" + (f" ({ember.cuda.get_device_name()})" if args.device == "cuda" else ""))
    print(f"| op | {args.rev} µs | {head} µs | {head} / {args.rev} (median of {args.rounds} paired rounds) |")
    print("|---|---:|---:|---:|")
    for k in new:
        if args.cases and k not in args.cases:
            continue
        fn, fo = new[k], old[k]
        fn(), fo()
        tn, to, r = [], [], []
        for _ in range(args.rounds):
            sync()
            o = min(timeit.repeat(fo, number=1000, repeat=3))
            sync()
            n = min(timeit.repeat(fn, number=1000, repeat=3))
            to.append(o)
            tn.append(n)
            r.append(n / o)
        print(f"| `{k}` | {min(to) * 1e3:.2f} | {min(tn) * 1e3:.2f} | {statistics.median(r):.3f} |", flush=True)


if __name__ == "__main__":
    main()
