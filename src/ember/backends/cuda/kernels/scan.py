"""Triton kernels: (being written)."""
import triton  # noqa: F401
import triton.language as tl  # noqa: F401
