"""Triton kernels used by the CUDA runtime tests (Triton reads kernel source from a file)."""
import triton
import triton.language as tl


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


@triton.jit
def slow_scale_kernel(x_ptr, out_ptr, n, scale, ITERS: tl.constexpr, BLOCK: tl.constexpr):
    """out = x * scale, after a long dependent loop (a kernel that takes a while)."""
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    acc = x
    for _ in range(ITERS):
        acc = acc * 1.0000001 + 0.0
        acc = acc / 1.0000001
    tl.store(out_ptr + offs, acc * scale, mask=mask)


@triton.jit
def empty_kernel(x_ptr):
    pass
