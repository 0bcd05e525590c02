"""NumPy kernels of the fused NLL loss (float16/bfloat16 computed in float32)."""
from __future__ import annotations

import numpy as np

from ._common import arr, compute_np, impl, wrap


def _picked(self, target, weight, ignore_index):
    C = self._shape[1]
    t = arr(target).astype(np.int64)
    ignore = t == ignore_index
    safe = np.where(ignore, 0, t)
    bad = (safe < 0) | (safe >= C)
    if bad.any():
        raise IndexError(f"nll_loss: Target out of bounds: got class index {int(t[bad][0])}; class indices must be "
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
