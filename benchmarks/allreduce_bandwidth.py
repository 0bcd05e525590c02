"""All-reduce time and bus bandwidth, ember's NCCL backend against torch.distributed (NCCL), in the same processes.

    python -m ember.distributed.run --nproc-per-node N benchmarks/allreduce_bandwidth.py [--min-mib 1]
        [--max-mib 1024] [--dtype float32] [--iters 20] [--write]

Every rank runs both frameworks on its own GPU (cuda:LOCAL_RANK): ember's process group meets through env://
(MASTER_ADDR / MASTER_PORT, as the launcher sets them), torch's through tcp:// on MASTER_PORT + 1, so that the two
rendezvous stores do not collide. For each size (powers of two from --min-mib to --max-mib) each framework runs
a warm-up all-reduce, then --iters all-reduces (SUM) timed with its own CUDA events; frameworks alternate per
size. Reported as nccl-tests does: algorithm bandwidth = bytes / time and bus bandwidth = algbw * 2 (N - 1) / N
(the bytes each rank's link carries in a ring all-reduce), with ember's share of torch's bus bandwidth (the
issue's target: >= 95%). With one rank the bus bandwidth is 0 by that definition and only the times compare.
Rank 0 prints the table (and appends it to BENCHMARKS.md with --write).

Keep NVLink multicast off on the lent machines: NCCL_NVLS_ENABLE=0 (set here if unset).
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys


def main(argv=None):
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--min-mib", type=int, default=1)
    p.add_argument("--max-mib", type=int, default=1024)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--write", action="store_true", help="rank 0 appends the table to BENCHMARKS.md")
    a = p.parse_args(argv)
    for var in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        if var not in os.environ:
            raise SystemExit(f"allreduce_bandwidth: {var} is not set; start it with python -m ember.distributed.run "
                             f"--nproc-per-node N benchmarks/allreduce_bandwidth.py")
    import torch
    import torch.distributed as tdist
    from _common import append, gpu_ms, header

    import ember
    import ember.distributed as edist
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    torch.cuda.set_device(local)
    edist.init_process_group("nccl", timeout=datetime.timedelta(minutes=5))
    tdist.init_process_group("nccl", init_method=f"tcp://{os.environ['MASTER_ADDR']}:"
                                                 f"{int(os.environ['MASTER_PORT']) + 1}",
                             rank=rank, world_size=world, timeout=datetime.timedelta(minutes=5))
    edt, tdt = getattr(ember, a.dtype), getattr(torch, a.dtype)
    item = torch.empty((), dtype=tdt).element_size()
    rows = []
    mib = a.min_mib
    while mib <= a.max_mib:
        n = (mib << 20) // item
        et = ember.ones(n, dtype=edt, device=f"cuda:{local}")
        tt = torch.ones(n, dtype=tdt, device=f"cuda:{local}")
        e_ms = gpu_ms(lambda: edist.all_reduce(et), a.iters, ember)
        t_ms = gpu_ms(lambda: tdist.all_reduce(tt), a.iters, torch)
        rows.append((mib, e_ms, t_ms))
        del et, tt
        mib *= 2
    if rank == 0:
        factor = 2 * (world - 1) / world
        text = header(f"All-reduce (SUM, {a.dtype}) on {world} GPU(s): ember's NCCL backend vs torch.distributed",
                      f"cuda ({ember.cuda.get_device_name()} x {world})")
        text += ("| size MiB | ember ms | torch ms | ember algbw GB/s | ember busbw GB/s | torch busbw GB/s | "
                 "ember / torch busbw |\n|---:|---:|---:|---:|---:|---:|---:|\n")
        for mib, e_ms, t_ms in rows:
            nbytes = mib << 20
            e_alg, t_alg = nbytes / e_ms / 1e6, nbytes / t_ms / 1e6
            share = f"{e_alg / t_alg:.0%}" if world > 1 else f"(times: {t_ms / e_ms:.2f}x)"
            text += (f"| {mib} | {e_ms:.3f} | {t_ms:.3f} | {e_alg:,.1f} | {e_alg * factor:,.1f} | "
                     f"{t_alg * factor:,.1f} | {share} |\n")
        text += (f"\nmean of {a.iters} all-reduces per size after one warm-up, each framework timed by its own CUDA "
                 f"events\n")
        print(text)
        if a.write:
            append(text)
    tdist.destroy_process_group()
    edist.destroy_process_group()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
