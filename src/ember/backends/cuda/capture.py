"""Which devices a CUDA graph is capturing on: the state that allocation, random numbers, index
checks and every host synchronisation consult. A leaf: it imports nothing from the backend, so
any layer may ask without importing graphs.py (which sits above memory, streams and checks).

`capturing` maps a device index to the CUDAGraph capturing there (ember captures one per device);
graphs.py alone adds and removes entries, under `lock`.
"""
from __future__ import annotations

import threading

__all__ = ["capturing", "lock", "CaptureError", "refuse_during_capture"]

capturing = {}
lock = threading.Lock()


class CaptureError(RuntimeError):
    pass


def refuse_during_capture(what: str, why: str = "synchronises the host with the GPU") -> None:
    """Raises naming `what` while a capture is under way (the driver would otherwise invalidate the
    capture); ember's own host synchronisation points call it."""
    if capturing:
        g = next(iter(capturing.values()))
        raise CaptureError(f"{what} {why}, which is not allowed while a CUDA graph is being captured (capture "
                           f"started on {g._stream!r}); move it out of the captured region")
