"""NumPy kernels of the fused NLL loss and cross-entropy from logits (float16/bfloat16 computed in float32)."""
from __future__ import annotations

import numpy as np

from ...core import dtype as D
from ._common import arr, compute_np, impl, wrap


def _picked(self, target, weight, ignore_index, fn="nll_loss"):
    C = self._shape[1]
    t = arr(target).astype(np.int64)
    ignore = t == ignore_index
    safe = np.where(ignore, 0, t)
    bad = (safe < 0) | (safe >= C)
    if bad.any():
        raise IndexError(f"{fn}: Target out of bounds: got class index {int(t[bad][0])}; class indices must be "
                         f"in [0, {C}) or equal ignore_index ({ignore_index})")
    cnp = compute_np(self._dtype)
    w = arr(weight).astype(cnp)[safe] if weight is not None else np.ones(t.shape, cnp)
    w[ignore] = 0
    return safe, w, cnp


@impl("nll_loss_forward")
def nll_loss_forward(self, target, weight, reduction, ignore_index):
    safe, w, cnp = _picked(self, target, weight, ignore_index)
    x = arr(self).astype(cnp, copy=False)
    losses = -x[np.arange(len(safe)), safe] * w
    tw = w.sum(dtype=cnp)
    if reduction == 0:
        return wrap(losses, self._dtype), wrap(np.zeros((), cnp), self._dtype)
    total = losses.sum(dtype=cnp)
    return wrap(total / tw if reduction == 1 else total, self._dtype), wrap(tw, self._dtype)


@impl("nll_loss_backward")
def nll_loss_backward(grad_output, self, target, weight, reduction, ignore_index, total_weight):
    safe, w, cnp = _picked(self, target, weight, ignore_index)
    g = arr(grad_output).astype(cnp)
    if reduction == 1:
        g = g / arr(total_weight).astype(cnp)
    gi = np.zeros(self._shape, cnp)
    gi[np.arange(len(safe)), safe] = -w * g
    return wrap(gi, self._dtype)


def _ce_parts(self, target, weight, ignore_index, label_smoothing):
    """(x, safe targets, w_t, per-class weights or None, W = their sum (C without), compute dtype)."""
    safe, w, cnp = _picked(self, target, weight, ignore_index, "cross_entropy")
    if self._dtype is not D.float64:
        cnp = np.dtype(np.float32)
    w = w.astype(cnp, copy=False)
    x = arr(self).astype(cnp, copy=False)
    wc = arr(weight).astype(cnp) if weight is not None else None
    W = wc.sum(dtype=cnp) if wc is not None else cnp.type(self._shape[1])
    return x, safe, w, wc, W, cnp


def _lse(x, cnp):
    """Row logsumexp, by blocks of rows (about 1M elements): the exp temporaries stay small and are reused
    instead of one array of the logits' size, whose fresh pages cost more than the exp itself."""
    N, C = x.shape
    out = np.empty((N,), cnp)
    step = max(1, (1 << 20) // max(C, 1))
    buf = np.empty((min(step, N), C), cnp)
    with np.errstate(over="ignore", invalid="ignore"):
        for r0 in range(0, N, step):
            xs = x[r0:r0 + step]
            t = buf[:len(xs)]
            m = xs.max(axis=1)
            base = np.where(np.isfinite(m), m, 0).astype(cnp, copy=False)
            np.subtract(xs, base[:, None], out=t)
            np.exp(t, out=t)
            out[r0:r0 + step] = base + np.log(t.sum(axis=1))
    return out


@impl("_cross_entropy")
def cross_entropy(self, target, weight, reduction, ignore_index, label_smoothing, dtype=None):
    x, safe, w, wc, W, cnp = _ce_parts(self, target, weight, ignore_index, label_smoothing)
    out_dt = dtype or self._dtype
    lse = _lse(x, cnp)
    rows = np.arange(len(safe))
    loss = (cnp.type(1.0 - label_smoothing) * w * (lse - x[rows, safe])).astype(cnp, copy=False)
    if label_smoothing > 0:
        sx = (x * wc).sum(axis=1, dtype=cnp) if wc is not None else x.sum(axis=1, dtype=cnp)
        smooth = cnp.type(label_smoothing / self._shape[1]) * (W * lse - sx)
        loss = loss + np.where(_counted(target, ignore_index), smooth, 0).astype(cnp)
    cdt = D.float64 if cnp == np.float64 else D.float32
    if reduction == 0:
        return wrap(loss, out_dt), wrap(lse, cdt), wrap(np.zeros((), cnp), out_dt)
    tw = w.sum(dtype=cnp)
    total = loss.sum(dtype=cnp)
    with np.errstate(invalid="ignore", divide="ignore"):
        res = total / tw if reduction == 1 else total
    return wrap(res, out_dt), wrap(lse, cdt), wrap(tw, out_dt)


def _counted(target, ignore_index):
    return arr(target).astype(np.int64) != ignore_index


@impl("_cross_entropy_backward")
def cross_entropy_backward(grad, self, target, weight, reduction, ignore_index, label_smoothing, lse,
                           total_weight):
    x, safe, w, wc, W, cnp = _ce_parts(self, target, weight, ignore_index, label_smoothing)
    g = arr(grad).astype(cnp)
    if reduction == 1:
        g = g / arr(total_weight).astype(cnp)
    g = np.broadcast_to(g.reshape(-1), (len(safe),)) if reduction else g
    with np.errstate(over="ignore", invalid="ignore"):
        p = np.exp(x - arr(lse).astype(cnp)[:, None])
    coef = (g * cnp.type(1.0 - label_smoothing) * w).astype(cnp)
    gi = coef[:, None] * p
    gi[np.arange(len(safe)), safe] -= coef
    if label_smoothing > 0:
        sm = g * cnp.type(label_smoothing / self._shape[1])
        sm = np.where(_counted(target, ignore_index), sm, 0).astype(cnp)
        gi += sm[:, None] * (W * p - (wc if wc is not None else cnp.type(1.0)))
    return wrap(gi, self._dtype)
