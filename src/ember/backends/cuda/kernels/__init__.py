"""Triton kernel sources (imported only when a CUDA op or an interpreter test needs them)."""
