"""bf16 and fp32 matrix products on CUDA: ember (cuBLAS via nvmath-python) vs torch, one process.

    python benchmarks/cuda_matmul.py [--write]
"""
from __future__ import annotations

import argparse

from _common import append, gpu_ms, header

import ember


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    import torch
    rows = []
    for n, edt, tdt in ((8192, ember.bfloat16, torch.bfloat16), (4096, ember.float32, torch.float32)):
        a = ember.ones(n, n, dtype=edt, device="cuda")
        b = ember.ones(n, n, dtype=edt, device="cuda")
        ta, tb = torch.ones(n, n, dtype=tdt, device="cuda"), torch.ones(n, n, dtype=tdt, device="cuda")
        e_ms, t_ms = gpu_ms(lambda: a @ b), gpu_ms(lambda: ta @ tb)
        flop = 2 * n ** 3
        rows.append((f"{edt.name} {n}^3", flop / e_ms / 1e9, flop / t_ms / 1e9, t_ms / e_ms))
        del a, b, ta, tb
    text = header("Matrix products (TFLOP/s)", "cuda (" + ember.cuda.get_device_name() + ")")
    text += ("| case | ember TFLOP/s | torch TFLOP/s | ember speed vs torch |\n|---|---:|---:|---:|\n"
             + "".join(f"| {c} | {e:.0f} | {t:.0f} | {r:.2f}x |\n" for c, e, t, r in rows))
    print(text)
    if args.write:
        append(text)


if __name__ == "__main__":
    main()
