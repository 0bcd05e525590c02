"""CUDA elementwise ops vs torch on the GPU machine, one process.

    python benchmarks/cuda_ops.py [--write]

- host time per small op (`a + b` etc. on 1,000 floats), ember vs torch eager (target: ember no slower);
- bandwidth of add/mul/exp/cast on 256 MB tensors as a share of the measured device copy
  bandwidth (target >= 85%), with torch's share beside it.
"""
from __future__ import annotations

import argparse
import statistics

from _common import append, gpu_ms, header, time_us

import ember


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    import torch

    rows = []
    a, b = ember.randn(1000, device="cuda"), ember.randn(1000, device="cuda")
    ta, tb = torch.randn(1000, device="cuda"), torch.randn(1000, device="cuda")
    for name, fe, ft in (("a + b", lambda: a + b, lambda: ta + tb), ("a * 2.5", lambda: a * 2.5, lambda: ta * 2.5),
                         ("a.exp()", lambda: a.exp(), lambda: ta.exp()), ("a.add_(b)", lambda: a.add_(b),
                                                                          lambda: ta.add_(tb))):
        es, ts = [], []
        for _ in range(5):      # interleaved, medians: the host's speed drifts on shared machines
            es.append(time_us(fe, reps=3, inner=2000))
            ts.append(time_us(ft, reps=3, inner=2000))
            ember.cuda.synchronize()
            torch.cuda.synchronize()
        e_us, t_us = statistics.median(es), statistics.median(ts)
        rows.append((name, e_us, t_us, e_us / t_us))
    text = header("CUDA elementwise ops: host time per small op (1,000 float32)", "cuda ("
                  + ember.cuda.get_device_name() + ")")
    text += "| op | ember µs | torch µs | ember/torch |\n|---|---:|---:|---:|\n"
    text += "".join(f"| `{n}` | {e:.2f} | {t:.2f} | {r:.2f} |\n" for n, e, t, r in rows)

    n = 64 << 20  # 64M float32 = 256 MB
    x, y = ember.empty(n, device="cuda"), ember.empty(n, device="cuda")
    x.fill_(1.0)
    y.fill_(2.0)
    out = ember.empty(n, device="cuda")
    tx, ty, tout = torch.ones(n, device="cuda"), torch.full((n,), 2.0, device="cuda"), torch.empty(n, device="cuda")
    copy_ms = gpu_ms(lambda: out.copy_(x))
    tcopy_ms = gpu_ms(lambda: tout.copy_(tx))
    nb = n * 4
    copy_bw = 2 * nb / copy_ms / 1e6  # GB/s, read + write
    brows = []
    for name, fe, ft, traffic in (
            ("add", lambda: ember.add(x, y), lambda: torch.add(tx, ty), 3 * nb),
            ("mul", lambda: ember.mul(x, y), lambda: torch.mul(tx, ty), 3 * nb),
            ("exp", lambda: x.exp(), lambda: tx.exp(), 2 * nb),
            ("cast f32->bf16", lambda: x.to(ember.bfloat16), lambda: tx.to(torch.bfloat16), nb + nb // 2)):
        e_ms, t_ms = gpu_ms(fe), gpu_ms(ft)
        e_bw, t_bw = traffic / e_ms / 1e6, traffic / t_ms / 1e6
        brows.append((name, e_bw, e_bw / copy_bw, t_bw, t_bw / copy_bw))
    text += (f"\nBandwidth on 256 MB float32 tensors (device copy: ember {copy_bw:.0f} GB/s, torch "
             f"{2 * nb / tcopy_ms / 1e6:.0f} GB/s, read + write):\n\n"
             "| op | ember GB/s | share of copy | torch GB/s | share of copy |\n|---|---:|---:|---:|---:|\n")
    text += "".join(f"| {n_} | {e:.0f} | {es:.0%} | {t:.0f} | {ts:.0%} |\n" for n_, e, es, t, ts in brows)
    del x, y, out, tx, ty, tout
    m = 16384
    X = ember.empty(m, m, device="cuda")
    X.fill_(0.5)
    TX = torch.zeros(m, m, device="cuda")
    rrows = []
    for name, fe, ft in (("sum over rows", lambda: X.sum(dim=1), lambda: TX.sum(dim=1)),
                         ("softmax over rows", lambda: X.softmax(-1), lambda: TX.softmax(-1))):
        e_ms, t_ms = gpu_ms(fe, reps=10), gpu_ms(ft, reps=10)
        rrows.append((name, e_ms, t_ms, t_ms / e_ms))
    text += ("\nReductions over the rows of a 16384 x 16384 float32 matrix (speed = torch time / ember time):\n\n"
             "| op | ember ms | torch ms | ember speed vs torch |\n|---|---:|---:|---:|\n")
    text += "".join(f"| {n_} | {e:.3f} | {t:.3f} | {r:.2f}x |\n" for n_, e, t, r in rrows)
    from ember.backends.cuda.compiler import stats
    text += f"\nKernels compiled in this run: {stats['compiled']} ({stats['compile_seconds']:.1f} s).\n"
    print(text)
    if args.write:
        append(text)


if __name__ == "__main__":
    main()
