"""CUDA runtime overheads on the GPU machine: ember vs the driver and PyTorch, one process.

    python benchmarks/cuda_runtime.py [--write]

- a cached allocate + free pair: ember's caching allocator (`ember.empty` + delete, and the raw
  policy call pair), `cuMemAllocAsync` + `cuMemFreeAsync` through cuda-bindings, and
  `torch.empty` + delete on the same device;
- the host time to launch an empty Triton kernel: ember's launcher vs Triton's own JIT launch
  through torch tensors.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from _common import append, header, time_us  # noqa: E402

import ember  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    import torch
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from _triton_kernels import empty_kernel
    from ember.backends.cuda.driver import check, driver
    from ember.backends.cuda.launch import launch_triton
    from ember.backends.cuda.memory import allocator_for

    gc.disable()
    rows = []
    ember.empty(1024, device="cuda")  # init
    rows.append(("alloc+free 4 KiB: ember.empty + del", time_us(lambda: ember.empty(1024, device="cuda"), inner=5000)))
    alloc = allocator_for(0)
    s = ember.cuda.current_stream()
    rows.append(("alloc+free 4 KiB: caching allocator policy (malloc/free)",
                 time_us(lambda: alloc.free(alloc.malloc(4096, s)), inner=5000)))
    d = driver()
    hs = s.handle

    def driver_pair():
        ptr = check(d.cuMemAllocAsync(4096, hs), "cuMemAllocAsync")
        check(d.cuMemFreeAsync(ptr, hs), "cuMemFreeAsync")
    rows.append(("alloc+free 4 KiB: cuMemAllocAsync + cuMemFreeAsync", time_us(driver_pair, inner=2000)))
    torch.empty(1024, device="cuda")
    rows.append(("alloc+free 4 KiB: torch.empty + del", time_us(lambda: torch.empty(1024, device="cuda"), inner=5000)))

    major, minor = ember.cuda.get_device_capability()
    k = triton.compile(ASTSource(fn=empty_kernel, signature={"x_ptr": "*fp32"}, constexprs={}),
                       target=GPUTarget("cuda", major * 10 + minor, 32))
    x = ember.empty(1, device="cuda")
    ptr = x.data_ptr()
    launch_triton(k, (1,), [ptr])
    rows.append(("launch empty kernel: ember launch_triton", time_us(lambda: launch_triton(k, (1,), [ptr]),
                                                                      inner=5000)))
    tx = torch.empty(1, device="cuda")
    empty_kernel[(1,)](tx)
    rows.append(("launch empty kernel: Triton JIT launch (torch tensors)",
                 time_us(lambda: empty_kernel[(1,)](tx), inner=5000)))
    ember.cuda.synchronize()
    torch.cuda.synchronize()
    gc.enable()
    name = ember.cuda.get_device_name()
    text = header("CUDA runtime overheads (host µs per call)", f"cuda ({name})")
    text += "| case | host µs |\n|---|---:|\n" + "".join(f"| {n} | {v:.2f} |\n" for n, v in rows)
    print(text)
    if args.write:
        append(text)


if __name__ == "__main__":
    main()
