"""Tuning sweep for the one-pass CUDA softmax over 16384 x 16384 float32 rows: the warp cap per
program, against torch in the same process. Run on the GPU machine; prints a table."""
from __future__ import annotations

from _common import gpu_ms

import ember
from ember.backends.cuda import reduction as RED


def main():
    import torch
    x = ember.randn(16384, 16384, device="cuda")
    tx = torch.randn(16384, 16384, device="cuda")
    for f in (lambda: ember.softmax(x, 1), lambda: torch.softmax(tx, 1)):
        f()
    t_ms = gpu_ms(lambda: torch.softmax(tx, 1))
    print("| warps cap | ember ms | torch ms | speed vs torch |\n|---:|---:|---:|---:|")
    for cap in (8, 16, 32):
        RED.SOFTMAX_MAX_WARPS = cap
        ember.softmax(x, 1)
        e_ms = gpu_ms(lambda: ember.softmax(x, 1))
        t2 = gpu_ms(lambda: torch.softmax(tx, 1))
        print(f"| {cap} | {e_ms:.3f} | {t2:.3f} | {t2 / e_ms:.2f}x |")
    print(f"(torch first timing {t_ms:.3f} ms)")


if __name__ == "__main__":
    main()
