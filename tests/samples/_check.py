"""Checks shared by the four suites: the meta's (shape, dtype) against a result, and one result
against another (ember against torch, or the CUDA kernel against the CPU kernel)."""
from __future__ import annotations

import numpy as np
import torch
from helpers import E2T, assert_same, to_torch

import ember

__all__ = ["KNOWN", "is_known", "check_meta", "compare", "describe", "failures_of"]

KNOWN = "KNOWN:"


def is_known(sample) -> bool:
    """A sample marked as a known divergence (`desc="KNOWN: <what>"`): the CPU suite expects it to fail."""
    return sample.desc.startswith(KNOWN)


def describe(i, sample) -> str:
    return f"sample {i}" + (f" ({sample.desc})" if sample.desc else "")


def check_meta(meta_out, result, path="result"):
    """The meta's `(shape, dtype)` (or tuple/list of them) describes `result` (ember or torch tensors);
    a `None` size in the meta's shape matches any size, and a `None` result (an output left out) is `None`
    in the meta."""
    if result is None:   # an output the op was asked not to compute (a backward's output mask)
        assert meta_out is None, f"{path}: the op returned None, but the meta describes {meta_out!r}"
        return
    if isinstance(result, (ember.Tensor, torch.Tensor)):
        assert isinstance(meta_out, tuple) and len(meta_out) == 2 and isinstance(meta_out[1], ember.dtype), \
            f"{path}: the meta returned {meta_out!r}, expected a (shape, dtype) pair for a Tensor result"
        shape, dtype = meta_out
        got_shape = tuple(result.shape)
        assert len(shape) == len(got_shape) and all(m is None or m == g for m, g in zip(shape, got_shape)), \
            f"{path}: the meta's shape {tuple(shape)} != the result's {got_shape}"
        got_dtype = result.dtype
        want = dtype if isinstance(result, ember.Tensor) else E2T[dtype]
        assert got_dtype == want, f"{path}: the meta's dtype {dtype} != the result's {got_dtype}"
        return
    if isinstance(result, (tuple, list)):
        assert isinstance(meta_out, (tuple, list)) and len(meta_out) == len(result), \
            f"{path}: the meta returned {meta_out!r} for {len(result)} results"
        for k, (m, r) in enumerate(zip(meta_out, result)):
            check_meta(m, r, f"{path}[{k}]")
        return
    raise AssertionError(f"{path}: a meta describes tensor results, but the op returned {type(result).__name__}")


def _tol(info, dtype):
    name = dtype.name if isinstance(dtype, ember.dtype) else str(dtype).replace("torch.", "")
    return info.tol.get(name, (None, None))


def _same_shape_dtype(e, t, path):
    """Shape and dtype only (random or uninitialised values)."""
    if isinstance(t, (tuple, list)):
        assert isinstance(e, (tuple, list)) and len(e) == len(t), f"{path}: {type(e).__name__} vs {type(t).__name__}"
        for k, (x, y) in enumerate(zip(e, t)):
            _same_shape_dtype(x, y, f"{path}[{k}]")
        return
    assert tuple(e.shape) == tuple(t.shape), f"{path}: shape {tuple(e.shape)} != {tuple(t.shape)}"
    assert E2T[e.dtype] == t.dtype, f"{path}: dtype {e.dtype} != {t.dtype}"


def _same(info, e, t, path):
    if isinstance(t, (tuple, list)):
        assert isinstance(e, (tuple, list)) and len(e) == len(t), f"{path}: {type(e).__name__} vs {type(t).__name__}"
        for k, (x, y) in enumerate(zip(e, t)):
            _same(info, x, y, f"{path}[{k}]")
        return
    rtol, atol = _tol(info, t.dtype) if isinstance(t, torch.Tensor) else (None, None)
    try:
        assert_same(e, t, rtol, atol)
    except AssertionError as err:
        raise AssertionError(f"{path}: {err}") from None


def compare(info, e, t, path="result"):
    """ember result `e` (on the CPU) against the reference `t`: a torch result, or an ember one (the
    interpreter suite compares the CUDA kernel with the CPU kernel). `info.compare` overrides, and
    `info.values=False` compares shapes and dtypes only."""
    t = _as_torch(t)
    if info.compare is not None:
        info.compare(e, t)
    elif not info.values:
        _same_shape_dtype(e, t, path)
    else:
        _same(info, e, t, path)


def _as_torch(x):
    if isinstance(x, ember.Tensor):
        return to_torch(x.detach())
    if isinstance(x, (tuple, list)):
        return [_as_torch(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _short(exc) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 600 else text[:600] + " ..."


def failures_of(info, run_sample, run_error) -> list:
    """Runs `run_sample(sample)` on every sample and `run_error(error_sample)` on every error sample of
    `info` (KNOWN ones left out) and returns one line per failure, so that a test reports them all."""
    failures = []
    for i, s in enumerate(info.samples()):
        if is_known(s):
            continue
        try:
            run_sample(s)
        except Exception as exc:  # noqa: BLE001 - every failing sample is reported
            failures.append(f"{describe(i, s)}: {_short(exc)}")
    for i, e in enumerate(info.errors() if info.errors else ()):
        if is_known(e):
            continue
        try:
            run_error(e)
        except BaseException as exc:  # noqa: BLE001 - pytest.raises fails with an outcome exception
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            failures.append(f"error {describe(i, e)}: {_short(exc)}")
    return failures
