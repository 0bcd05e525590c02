"""ASGD (averaged stochastic gradient descent), PyTorch's single-tensor numerics."""
from __future__ import annotations

from ..ops.creation import zeros_like
from ._single import SingleTensorOptimizer, _check_lr, _check_nonneg, _scalar_state
from .optimizer import _to_scalar

__all__ = ["ASGD"]


class ASGD(SingleTensorOptimizer):
    """ASGD, as `torch.optim.ASGD`.

    Per parameter with gradient g (negated when maximize), weight decay added as L2, at step t:
        p = p * (1 - lambd * eta) - eta * g
        ax = p (mu == 1) or ax + mu * (p - ax)
        eta = lr / (1 + lambd * lr * t)^alpha;  mu = 1 / max(1, t - t0)
    The per-parameter state holds `step`, `eta` and `mu` as 0-d tensors (torch's scalar dtype) and `ax`.
    """

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        _check_lr(lr)
        _check_nonneg(weight_decay=weight_decay)
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay),
                         foreach=foreach, maximize=maximize, differentiable=differentiable, capturable=capturable)

    _STATE_SCALARS = ("step", "eta", "mu")

    def _init_state(self, p, g, group, st):
        st["step"] = _scalar_state(0.0)
        st["eta"] = _scalar_state(_to_scalar(group["lr"]))
        st["mu"] = _scalar_state(1.0)
        st["ax"] = zeros_like(p)

    def _hparams(self, group):
        return group["lambd"], group["alpha"], group["t0"]

    def _update(self, p, g, st, lr, hp):
        lambd, alpha, t0 = hp
        mu, ax, eta = st["mu"], st["ax"], st["eta"]
        eta_value = eta.item()
        p.mul_(1 - lambd * eta_value)
        p.add_(g, alpha=-eta_value)
        if mu.item() != 1:
            ax.add_(p.sub(ax).mul_(mu))
        else:
            ax.copy_(p)
        step = st["step"].item()
        eta.fill_(lr / ((1 + lambd * lr * step) ** alpha))
        mu.fill_(1 / max(1, step - t0))
