"""`detect_anomaly()`: forward stack traces on graph nodes and a NaN check of backward outputs."""
from __future__ import annotations

from .grad_mode import state

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled"]


def is_anomaly_enabled() -> bool:
    return state.anomaly


class detect_anomaly:  # noqa: N801 - PyTorch's name
    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = (state.anomaly, state.anomaly_nan)
        state.anomaly, state.anomaly_nan = True, self.check_nan
        return self

    def __exit__(self, *exc):
        state.anomaly, state.anomaly_nan = self._prev
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with detect_anomaly(self.check_nan):
                return fn(*a, **k)
        return wrapper


class set_detect_anomaly(detect_anomaly):  # noqa: N801
    def __init__(self, mode: bool, check_nan: bool = True):
        self._prev = (state.anomaly, state.anomaly_nan)
        self.check_nan = check_nan
        state.anomaly, state.anomaly_nan = bool(mode), check_nan

    def __enter__(self):
        return self
