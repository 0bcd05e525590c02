"""Backends: kernels per device type (`cpu` on NumPy; `cuda` on Triton and cuBLASLt)."""
