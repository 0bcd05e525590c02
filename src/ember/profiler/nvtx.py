"""NVTX ranges, so that Nsight Systems (`nsys profile python train.py`) shows ember's ops on its
timeline above the kernels they launch.

    with ember.profiler.nvtx.emit_nvtx():      # every op call and autograd node becomes an NVTX range
        train_step()
    with ember.profiler.nvtx.range("data"):    # a range of your own
        batch = next(loader)

Needs the `nvtx` package (`pip install nvtx`); without it `range_push`/`range_pop`/`range`/`mark` do
nothing and `emit_nvtx()` raises, naming the package. Inside a `profile()`, the profiler's ranges take
over until it stops (the dispatcher runs the last hook pushed).
"""
from __future__ import annotations

import contextlib

from ..dispatch import pop_op_hook, push_op_hook

__all__ = ["range_push", "range_pop", "range", "mark", "emit_nvtx", "available"]

try:
    import nvtx as _nvtx
except Exception:  # noqa: BLE001 - the package is optional
    _nvtx = None

_DOMAIN = "ember"


def available() -> bool:
    return _nvtx is not None


def range_push(msg: str) -> None:
    if _nvtx is not None:
        _nvtx.push_range(msg, domain=_DOMAIN)


def range_pop() -> None:
    if _nvtx is not None:
        _nvtx.pop_range(domain=_DOMAIN)


def mark(msg: str) -> None:
    if _nvtx is not None:
        _nvtx.mark(msg, domain=_DOMAIN)


@contextlib.contextmanager
def range(msg: str):  # noqa: A001 - torch.cuda.nvtx.range's name
    range_push(msg)
    try:
        yield
    finally:
        range_pop()


def _call(op, plain, pos, kw):
    _nvtx.push_range(op.name, domain=_DOMAIN)
    try:
        return plain(*pos, **kw)
    finally:
        _nvtx.pop_range(domain=_DOMAIN)


def _node(node, grads):
    _nvtx.push_range(node.name(), domain=_DOMAIN)
    try:
        return node.apply(grads)
    finally:
        _nvtx.pop_range(domain=_DOMAIN)


@contextlib.contextmanager
def emit_nvtx(enabled: bool = True):
    """Every op call and autograd node inside becomes an NVTX range named after it."""
    if not enabled:
        yield
        return
    if _nvtx is None:
        raise RuntimeError("ember.profiler.nvtx.emit_nvtx needs the 'nvtx' package (pip install nvtx)")
    push_op_hook(_call, _node)
    try:
        yield
    finally:
        pop_op_hook(_call)
