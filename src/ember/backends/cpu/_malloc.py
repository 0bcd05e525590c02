"""Keep freed memory in the process (glibc): the CPU backend's caching allocator, in effect.

NumPy takes every array from malloc, and glibc serves requests over its mmap threshold (at most 32 MiB)
with fresh mappings that it unmaps again on free. A training step makes many such arrays (an (8192, 4096)
float32 logits array is 128 MiB), so each one starts on fresh pages that the kernel zeroes on first touch:
on the 2-core CI-class machine that costs more than the arithmetic (the miniGPT step at batch 64: 4.85 s,
3.33 s with freed memory kept; a first-touched 128 MiB array 14 ms against 5 ms for a reused one). So at
import, where the C library is glibc, ember sets M_MMAP_MAX = 0 (large blocks come from the heap too)
and a trim threshold of 2 GiB (freed heap memory is kept for reuse instead of returned to the system):
what torch's CUDA caching allocator does for device memory. The price is a resident size that stays at its
peak. Set EMBER_CPU_KEEP_MEMORY=0 to leave glibc's defaults alone. This setting is process-wide.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_BYTES = 2**31 - 1       # mallopt takes an int

applied = False


def keep_freed_memory() -> bool:
    """Applies the setting (once); whether it is in effect."""
    global applied
    if applied:
        return True
    if os.environ.get("EMBER_CPU_KEEP_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):      # not glibc (musl has no mallopt): nothing to tune
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_BYTES))
    return applied
