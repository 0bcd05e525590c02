"""Elementwise ops on permuted views, ember vs torch in one process: what keeping the input's layout saves.

    python benchmarks/permuted_elementwise.py [--device cpu|cuda] [--write]

x and y are `(64, 256, 128)` float32 tensors viewed as `.permute(0, 2, 1)` (a transposed activation, 8 MiB). torch
gives `x * 2.5`, `x + y`, `x.exp()` and `gelu(x)` x's layout (TensorIterator); so does ember since bb644fb, where
before it wrote a contiguous result (on the CPU: NumPy computed in x's layout, then a transposing copy). On CUDA the
time is GPU time from CUDA events; on the CPU, host time (torch at 1 thread, as ember's NumPy kernels run).
The "layout" column says whether ember's result has torch's strides.
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
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    import torch

    import ember
    if args.device == "cpu":
        torch.set_num_threads(1)
    ec, tc = cases(ember, args.device), cases(torch, args.device)
    unit = "GPU ms" if args.device == "cuda" else "ms"
    rows = []
    for k in ec:
        if args.device == "cuda":
            te, tt = gpu_ms(ec[k], 50), gpu_ms(tc[k], 50, lib=torch)
        else:
            te, tt = time_us(ec[k], reps=5, inner=10) / 1e3, time_us(tc[k], reps=5, inner=10) / 1e3
        same = tuple(ec[k]().stride()) == tuple(tc[k]().stride())
        rows.append(f"| `{k}` | {te:.3f} | {tt:.3f} | {te / tt:.2f} | {'torch' if same else 'differs'} |")
    name = ember.cuda.get_device_name() if args.device == "cuda" else "cpu"
    text = header(f"Elementwise ops on permuted (64, 128, 256) float32 views ({name})", args.device)
    text += (f"| op | ember {unit} | torch {unit} | ember/torch | layout |\n|---|---:|---:|---:|---|\n"
             + "\n".join(rows) + "\n")
    print(text)
    if args.write:
        append(text)


if __name__ == "__main__":
    main()
