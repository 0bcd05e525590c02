"""Storage: a flat byte buffer on one device, with the version counter its views share."""
from __future__ import annotations

import numpy as np

_ndarray = np.ndarray

__all__ = ["Storage"]


class Storage:
    """`data` is a C-contiguous NumPy array on the CPU, used as raw bytes (a device allocation on CUDA).

    Every tensor viewing this storage shares `version`; in-place ops bump it so that autograd
    can tell a saved tensor was modified.
    """

    __slots__ = ("data", "device", "nbytes", "version", "pinned", "__weakref__")

    def __init__(self, data, device, nbytes: int):
        self.data = data
        self.device = device
        self.nbytes = nbytes
        self.version = 0
        self.pinned = False  # page-locked host memory (CUDA)

    def data_ptr(self) -> int:
        d = self.data
        if d.__class__ is not _ndarray and not isinstance(d, _ndarray):
            return d.ptr        # a device buffer's address (an int)
        return d.__array_interface__["data"][0]

    def __repr__(self) -> str:
        return f"Storage(device={self.device}, nbytes={self.nbytes})"
