"""Elementwise ops on permuted views, ember vs torch in one process: what keeping the input's layout saves.

    python benchmarks/permuted_elementwise.py [--device cpu|cuda] [--against REV] [--write]

x and y are `(64, 256, 128)` float32 tensors viewed as `.permute(0, 2, 1)` (a transposed activation, 8 MiB). torch
gives `x * 2.5`, `x + y`, `x.exp()` and `gelu(x)` x's layout (TensorIterator); so does ember since bb644fb, where
before it wrote a contiguous result (on the CPU: NumPy computed in x's layout, then a transposing copy). On CUDA the
time is GPU time from CUDA events; on the CPU, host time (torch at 1 thread, as ember's NumPy kernels run).
The "layout" column says whether ember's result has torch's strides. `--against REV` adds a column for ember as of
commit REV, imported beside this tree in the same process (`host_ab.load_other`; `--tree DIR` where there is no git).
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import append, gpu_ms, header, time_us

SHAPE = (64, 256, 128)


def cases(lib, device):
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal(SHAPE).astype(np.float32)).to(device).permute(0, 2, 1)
    y = lib.tensor(rng.standard_normal(SHAPE).astype(np.float32)).to(device).permute(0, 2, 1)
    gelu = lib.nn.functional.gelu
    return {"x * 2.5": lambda: x * 2.5, "x + y": lambda: x + y, "x.exp()": lambda: x.exp(),
            "gelu(x)": lambda: gelu(x)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--against", metavar="REV", default=None, help="also time ember as of commit REV")
    p.add_argument("--tree", default=None, help="REV's sources from DIR/src/ember (with --against)")
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    import torch

    import ember
    if args.device == "cpu":
        torch.set_num_threads(1)
    libs = {"ember": ember, "torch": torch}
    if args.against:
        from host_ab import load_other
        libs["old"] = load_other(args.against, args.tree)
    all_cases = {k: cases(m, args.device) for k, m in libs.items()}
    unit = "GPU ms" if args.device == "cuda" else "ms"

    def timed(k, fn):
        if args.device == "cuda":
            return gpu_ms(fn, 50, lib=torch if k == "torch" else libs[k])
        return time_us(fn, reps=5, inner=10) / 1e3
    rows = []
    for op in all_cases["ember"]:
        t = {k: timed(k, c[op]) for k, c in all_cases.items()}
        same = tuple(all_cases["ember"][op]().stride()) == tuple(all_cases["torch"][op]().stride())
        old = f" {t['old']:.3f} |" if "old" in t else ""
        rows.append(f"| `{op}` |{old} {t['ember']:.3f} | {t['torch']:.3f} | {t['ember'] / t['torch']:.2f} | "
                    f"{'torch' if same else 'differs'} |")
    name = ember.cuda.get_device_name() if args.device == "cuda" else "cpu"
    text = header(f"Elementwise ops on permuted (64, 128, 256) float32 views ({name})", args.device)
    old = f" ember {args.against} {unit} |" if args.against else ""
    text += (f"| op |{old} ember {unit} | torch {unit} | ember/torch | layout |\n|---|"
             + "---:|" * (3 + bool(args.against)) + "---|\n" + "\n".join(rows) + "\n")
    print(text)
    if args.write:
        append(text)


if __name__ == "__main__":
    main()
