"""Index checks done on the device, reported at the next synchronisation (PyTorch's device-side
assert, without poisoning the CUDA context).

The indexing kernels (gather/scatter family, advanced indexing, take/put, embedding, one_hot and
the NLL loss) never touch memory at an index out of range; where they meet one they record it in
a per-device error word, an int64[4] tensor allocated once: [0] the code of the first failing op
(0: none), [1] its offending index, [2] the bound it broke, [3] the number of offending lanes so
far, by which the first one claims [0..2] (`kernels/indexing.report`: masked atomics, which cost
nothing while every index is in range).

A checked launch only marks its device as pending (`launch_args`: a set add, no device access).
The synchronisation points (ember.cuda.synchronize, Stream/Event.synchronize, copies to the CPU)
call `raise_pending` once they have waited: where marked, it reads the 32 bytes back, and on an
error zeroes the word again and raises a RuntimeError naming the op, the index and the bound.
A captured graph with checked kernels marks its device at each replay. Under the Triton
interpreter (CPU tensors, the CI tests) the word is a CPU tensor, under the key "cpu"; tests call
`raise_pending()` themselves.

Not covered: a kernel still running on a stream that the synchronisation did not wait for may
write its error after the word was read; it is then reported only at the next read, which needs a
later checked launch on that device to mark it again.
"""
from __future__ import annotations

import numpy as np

from ...core import dtype as D
from ...core.device import CPU
from .capture import capturing as _capturing
from .driver import check, driver, ensure_context

__all__ = ["err_tensor", "launch_args", "mark", "raise_pending", "CODES"]

_NAMES = ("embedding", "index_select", "gather", "take", "index", "index_put", "index_put_", "scatter", "scatter_",
          "scatter_add", "scatter_add_", "scatter_reduce", "scatter_reduce_", "index_add", "index_add_",
          "index_copy", "index_copy_", "index_fill", "index_fill_", "put", "put_", "nll_loss", "one_hot",
          "cross_entropy")
CODES = {name: k + 1 for k, name in enumerate(_NAMES)}
_BOUND = {"take": "a tensor of {} elements", "put": "a tensor of {} elements", "put_": "a tensor of {} elements",
          "nll_loss": "{} classes", "cross_entropy": "{} classes", "one_hot": "num_classes = {}"}

_words = {}      # device key (a CUDA device index, or "cpu" under the interpreter) -> its error word
_pending = set()  # keys whose word must be read at the next synchronisation
_args = {}       # (op, id(device)) -> (key, launch arguments); devices are interned, their hash is slow


def _key(device):
    if device.__class__ is int:
        return device
    return (device.index or 0) if device.type == "cuda" else "cpu"


def err_tensor(device):
    """The error word of `device` (an ember device or a CUDA device index), zeroed at creation.
    CUDAGraph.capture_begin creates it before a capture, so that it never comes from a graph's pool."""
    key = _key(device)
    w = _words.get(key)
    if w is None:
        from .memory import new_tensor      # (the memory layer imports streams, which import this module)
        if key == "cpu":
            w = new_tensor((4,), D.int64, CPU)
            w.numpy()[:] = 0
        else:
            from .tensor import _memset, empty_cuda
            w = empty_cuda((4,), D.int64, key)
            _memset(w, b"\0")
        _words[key] = w
    return w


def mark(key) -> None:
    """The word of device `key` must be read at its next synchronisation (a graph being captured
    there remembers to mark it at every replay)."""
    _pending.add(key)
    if _capturing:
        g = _capturing.get(key)
        if g is not None:
            g._checked = True


def launch_args(device, op):
    """[("err_ptr", word, "*i64"), ("code", op's code, "i64")] for a checked launch of `op` on
    `device`; marks the device. op=None: the arguments of a launch that checks nothing (no mark)."""
    a = _args.get((op, id(device)))
    if a is None:
        a = _args[(op, id(device))] = (_key(device), [("err_ptr", err_tensor(device), "*i64"),
                                                      ("code", CODES[op] if op else 0, "i64")])
    if op is not None:
        _pending.add(a[0])      # mark(), inlined: this runs at every checked launch
        if _capturing:
            mark(a[0])
    return a[1]


def _read(key, w) -> list:
    if key == "cpu":
        return w.numpy().tolist()
    ensure_context(key)
    host = np.empty(4, np.int64)
    check(driver().cuMemcpyDtoH(host.ctypes.data, w.data_ptr(), 32), "cuMemcpyDtoH")
    return host.tolist()


def _clear(key, w) -> None:
    if key == "cpu":
        w.numpy()[:] = 0
        return
    d = driver()
    check(d.cuMemsetD8(w.data_ptr(), 0, 32), "cuMemsetD8")
    check(d.cuCtxSynchronize(), "cuCtxSynchronize")   # the error path only: later kernels see the zeros


def raise_pending(device=None) -> None:
    """Called right after a synchronisation with `device` (all pending devices when None): reads
    the error word where a checked kernel ran since the last read, and raises what it holds."""
    if not _pending or _capturing:
        return
    keys = list(_pending) if device is None else [_key(device)]
    for key in keys:
        if key not in _pending:
            continue
        _pending.discard(key)
        w = _words[key]
        code, value, bound, _ = _read(key, w)
        if code:
            _clear(key, w)
            op = _NAMES[code - 1] if 0 < code <= len(_NAMES) else f"op code {code}"
            what = _BOUND.get(op, "a dimension of size {}").format(bound)
            raise RuntimeError(f"CUDA error: index out of range in {op}: got index {value} for {what} (found on "
                               f"the device; reported at the next synchronization, like PyTorch's device-side "
                               f"assert)")
