"""Adadelta, PyTorch's single-tensor numerics."""
from __future__ import annotations

from ..ops.creation import zeros_like
from ._single import SingleTensorOptimizer, _check_lr, _check_nonneg, _scalar_state

__all__ = ["Adadelta"]


class Adadelta(SingleTensorOptimizer):
    """Adadelta, as `torch.optim.Adadelta`.

    Per parameter with gradient g (negated when maximize), weight decay added as L2:
        v = rho * v + (1 - rho) * g^2
        delta = sqrt(u + eps) / sqrt(v + eps) * g;  u = rho * u + (1 - rho) * delta^2
        p -= lr * delta
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        _check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        _check_nonneg(eps=eps, weight_decay=weight_decay)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay),
                         foreach=foreach, maximize=maximize, differentiable=differentiable, capturable=capturable)

    def _init_state(self, p, g, group, st):
        st["step"] = _scalar_state(0.0)
        st["square_avg"] = zeros_like(p)
        st["acc_delta"] = zeros_like(p)

    def _hparams(self, group):
        return group["rho"], group["eps"]

    def _update(self, p, g, st, lr, hp):
        rho, eps = hp
        square_avg, acc_delta = st["square_avg"], st["acc_delta"]
        square_avg.mul_(rho).addcmul_(g, g, value=1 - rho)
        std = square_avg.add(eps).sqrt_()
        delta = acc_delta.add(eps).sqrt_()
        delta.div_(std).mul_(g)
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        p.add_(delta, alpha=-lr)
