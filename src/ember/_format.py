"""`repr(tensor)` in PyTorch's style: `tensor([1.5000, 2.0000], dtype=ember.float64)`."""
from __future__ import annotations

import numpy as np

from .core import dtype as D

_THRESHOLD, _EDGE, _LINE = 1000, 3, 80


def _float_formatter(a: np.ndarray):
    finite = a[np.isfinite(a)]
    nonzero = np.abs(finite[finite != 0])
    int_mode = bool(np.all(finite == np.round(finite)))
    sci = False
    if nonzero.size:
        mx, mn = float(nonzero.max()), float(nonzero.min())
        if int_mode:
            sci = mx / mn > 1000.0 or mx > 1e8
        else:
            sci = mx / mn > 1000.0 or mx > 1e8 or mn < 1e-4
    if sci:
        fmt = "{:.4e}".format
    elif int_mode:
        fmt = lambda v: f"{v:.0f}." if np.isfinite(v) else f"{v}"  # noqa: E731
    else:
        fmt = "{:.4f}".format
    sample = finite.reshape(-1)
    if sample.size > _THRESHOLD:
        sample = np.concatenate([sample[:_EDGE * 64], sample[-_EDGE * 64:]])
    width = max((len(_fix(fmt(float(v)))) for v in sample), default=1)
    return lambda v: _fix(fmt(float(v))).rjust(width)


def _fix(s: str) -> str:
    return {"nan": "nan", "inf": "inf", "-inf": "-inf", "nan.": "nan", "inf.": "inf", "-inf.": "-inf"}.get(s, s)


def _suffixes(t) -> list:
    out = []
    if t.device.type != "cpu":
        out.append(f"device='{t.device}'")
    dt = t._dtype
    if dt not in (D.get_default_dtype(), D.int64, D.bool):
        out.append(f"dtype=ember.{dt.name}")
    if t.grad_fn is not None:
        out.append(f"grad_fn=<{type(t.grad_fn).__name__}>")
    elif t.requires_grad:
        out.append("requires_grad=True")
    return out


def format_tensor(t, prefix: str = "tensor(") -> str:
    a = t._host_array()
    suffix = _suffixes(t)
    if a.size == 0:
        body = "[]"
        if a.ndim != 1:
            suffix.insert(0, f"size={tuple(a.shape)}")
    else:
        if t._dtype.is_floating_point:
            a = a.astype(np.float64)
            fmt = _float_formatter(a)
        elif t._dtype is D.bool:
            fmt = lambda v: ("True" if v else "False").rjust(5 if a.size > 1 and not a.all() else 4)  # noqa: E731
        else:
            w = max(len(str(a.min())), len(str(a.max())))
            fmt = lambda v: str(v).rjust(w)  # noqa: E731
        body = np.array2string(a, max_line_width=_LINE, separator=", ", prefix=prefix,
                               formatter={"all": fmt}, threshold=_THRESHOLD, edgeitems=_EDGE)
    body = body.replace(", ..., ", ",  ..., ")  # PyTorch pads the elision mark
    if suffix:
        # as PyTorch: each suffix goes on the last line unless that line would pass the width
        for s in suffix:
            last = (prefix + body).rsplit("\n", 1)[-1]
            body += (",\n" + " " * len(prefix) if len(last) + len(s) + 2 > _LINE else ", ") + s
    return prefix + body + ")"
