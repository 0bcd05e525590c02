"""Where the host time of one small CUDA op goes: each layer of `a + b` (1,000 float32) timed alone.

Run on the GPU machine: `python benchmarks/cuda_host_breakdown.py [--profile-step]`. Prints a table
(and with --profile-step the top functions of a cProfile of the reversal model's training step).
"""
from __future__ import annotations

import argparse
import ctypes

from _common import time_us

import ember
from ember.backends.cuda import elementwise as EW
from ember.backends.cuda.driver import driver
from ember.backends.cuda.memory import allocator_for
from ember.backends.cuda.stream import current_stream
from ember.backends.cuda.memory import empty_cuda
from ember.dispatch import OPS


def rows():
    import torch
    a = ember.randn(1000, device="cuda")
    b = ember.randn(1000, device="cuda")
    ta, tb = torch.randn(1000, device="cuda"), torch.randn(1000, device="cuda")
    out = a + b
    add_cuda = OPS["add"].kernels["cuda"]
    alloc = allocator_for(0)
    s = current_stream(0)
    ck = EW._CK["float32"]
    key = next(k for k in EW._plans if k[0] == 0)
    plan = EW._plans[key]
    d = driver()
    lib = ctypes.CDLL("libcuda.so.1")
    lib.cuLaunchKernel.restype = ctypes.c_int
    lib.cuLaunchKernel.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 7 + [ctypes.c_void_p] * 3
    fh, sh = int(plan.handle), int(s.handle)
    raw = ctypes.CDLL("libcuda.so.1").cuLaunchKernel   # no argtypes: arguments prebuilt as C objects
    raw.restype = ctypes.c_int
    cf, cs, ca = ctypes.c_void_p(fh), ctypes.c_void_p(sh), ctypes.c_void_p(plan.addr)

    def noop_launch():                  # everything but the driver call
        real = plan._launch
        plan._launch = lambda *a: (0,)
        try:
            return time_us(lambda: a + b)
        finally:
            plan._launch = real

    cases = [
        ("torch: a + b", lambda: ta + tb),
        ("torch: torch.empty(1000) + del", lambda: torch.empty(1000, device="cuda")),
        ("ember: a + b", lambda: a + b),
        ("ember: add kernel fn (no dispatch)", lambda: add_cuda(a, b)),
        ("ember: launch_ew into existing out", lambda: EW.launch_ew(0, 2, out, a, b, ck)),
        ("ember: empty_cuda + del", lambda: empty_cuda((1000,), ember.float32, 0)),
        ("ember: allocator malloc + free", lambda: alloc.free(alloc.malloc(4000, s))),
        ("ember: current_stream(0)", lambda: current_stream(0)),
        ("ember: a.data_ptr()", lambda: a.data_ptr()),
        ("driver: cuLaunchKernel via cuda-bindings", lambda: d.cuLaunchKernel(plan.handle, 1, 1, 1, 128, 1, 1, 0,
                                                                             s.handle, plan.addr, 0)),
        ("driver: cuLaunchKernel via ctypes", lambda: lib.cuLaunchKernel(fh, 1, 1, 1, 128, 1, 1, 0, sh,
                                                                        plan.addr, None)),
        ("driver: cuLaunchKernel via ctypes, prebuilt C arguments", lambda: raw(cf, 1, 1, 1, 128, 1, 1, 0, cs, ca,
                                                                                 None)),
        ("driver: cuLaunchKernel via cuda-bindings, int handles", lambda: d.cuLaunchKernel(fh, 1, 1, 1, 128, 1, 1, 0,
                                                                                         sh, plan.addr, 0)),
    ]
    out_rows = []
    for name, fn in cases:
        us = time_us(fn)
        out_rows.append((name, us))
    out_rows.append(("ember: a + b with cuLaunchKernel replaced by a no-op", noop_launch()))
    return out_rows


def profile_op():
    """cProfile of 20,000 `a + b` (1,000 float32): which Python functions the host time goes to."""
    import cProfile
    import pstats
    a = ember.randn(1000, device="cuda")
    b = ember.randn(1000, device="cuda")
    for _ in range(100):
        a + b
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(20000):
        a + b
    pr.disable()
    ember.cuda.synchronize()
    pstats.Stats(pr).sort_stats("tottime").print_stats(15)


def profile_step(dump=None):
    import cProfile
    import pstats
    import ember.nn.functional as F
    from ember.datasets import ReversalDataset
    from ember.examples.reverse import ReversalTransformer
    data = ReversalDataset(64, 16, 2, 10, seed=0)
    x, y = data.batch(range(64))
    m = ReversalTransformer(data.vocab_size, data.seq_len).to("cuda")
    opt = ember.optim.AdamW(m.parameters(), lr=1e-3)
    xx, yy = x.cuda(), y.cuda()

    def step():
        logits = m(xx)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yy.reshape(-1))
        opt.zero_grad()
        loss.backward()
        ember.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
    for _ in range(5):
        step()
    ember.cuda.synchronize()
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(10):
        step()
    ember.cuda.synchronize()
    pr.disable()
    if dump:
        pr.dump_stats(dump)     # for pstats elsewhere (callers, cumulative views)
    st = pstats.Stats(pr)
    st.sort_stats("tottime").print_stats(35)
    st.print_callers("copy_|_bootstrap>:645|_reshape_impl")
    # can the whole step be captured into a CUDA graph today?
    s = ember.cuda.Stream()
    s.wait_stream(ember.cuda.current_stream())
    g = ember.cuda.CUDAGraph()
    try:
        with ember.cuda.stream(s):
            step()
        ember.cuda.synchronize()
        with ember.cuda.graph(g, stream=s):
            step()
        g.replay()
        ember.cuda.synchronize()
        print("CUDA graph capture of the step: ok")
    except Exception as e:  # noqa: BLE001 - a probe
        import traceback
        traceback.print_exc()
        print("CUDA graph capture of the step failed:", type(e).__name__, e)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--profile-step", action="store_true")
    p.add_argument("--profile-op", action="store_true")
    p.add_argument("--dump", help="with --profile-step: write the cProfile stats to this file")
    args = p.parse_args()
    print("| layer | host µs |\n|---|---:|")
    for name, us in rows():
        print(f"| {name} | {us:.2f} |")
    if args.profile_op:
        profile_op()
    if args.profile_step:
        profile_step(args.dump)
