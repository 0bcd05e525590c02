"""CUDA kernels: (being written)."""
from __future__ import annotations
