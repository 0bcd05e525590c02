"""Grad modes: `no_grad`, `enable_grad`, `set_grad_enabled`, `inference_mode` (thread-local).

The dispatcher reads `state.enabled` on every call that has an input requiring grad, so the
flag is a plain attribute of a `threading.local` (one dict lookup).
"""
from __future__ import annotations

import functools
import threading

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled"]


class _State(threading.local):
    enabled = True      # class attributes are each thread's defaults
    inference = False
    anomaly = False
    anomaly_nan = True


state = _State()


def is_grad_enabled() -> bool:
    return state.enabled


def is_inference_mode_enabled() -> bool:
    return state.inference


class _Mode:
    """Base of the grad-mode context managers; also usable as decorators."""

    def __call__(self, fn):
        if isinstance(fn, type):
            raise TypeError(f"{type(self).__name__} can decorate functions, not classes")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)
        return wrapper

    def clone(self):
        return type(self)()

    def __enter__(self):
        self._prev = state.enabled
        state.enabled = self._target()
        return self

    def __exit__(self, *exc):
        state.enabled = self._prev
        return False


class no_grad(_Mode):  # noqa: N801 - PyTorch's name
    """Disables gradient recording: results of ops don't require grad."""

    def _target(self):
        return False


class enable_grad(_Mode):  # noqa: N801
    def _target(self):
        return True


class set_grad_enabled(_Mode):  # noqa: N801
    """`set_grad_enabled(False)` as a function call sets the mode; as a context manager it restores it."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = state.enabled
        state.enabled = self.mode

    def clone(self):
        return set_grad_enabled(self.mode)

    def _target(self):
        return self.mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        state.enabled = self._prev
        return False


class inference_mode(_Mode):  # noqa: N801
    """Like `no_grad` (ember keeps no extra per-tensor bookkeeping to skip, so this is the same speed)."""

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)

    def clone(self):
        return inference_mode(self.mode)

    def _target(self):
        return not self.mode and self._prev

    def __enter__(self):
        self._prev_inf = state.inference
        state.inference = self.mode
        return super().__enter__()

    def __exit__(self, *exc):
        state.inference = self._prev_inf
        return super().__exit__(*exc)
