"""Adamax (Adam with the infinity norm), PyTorch's single-tensor numerics."""
from __future__ import annotations

from ._single import AdamLikeOptimizer, _check_adam_like

__all__ = ["Adamax"]


class Adamax(AdamLikeOptimizer):
    """Adamax, as `torch.optim.Adamax`.

    Per parameter with gradient g (negated when maximize), weight decay added as L2, at step t:
        m = lerp(m, g, 1 - beta1);  u = max(beta2 * u, |g| + eps)
        p -= lr / (1 - beta1^t) * m / u
    ember runs torch's single-tensor loop (`foreach` is accepted and ignored).
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        _check_adam_like(lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay),
                         foreach=foreach, maximize=maximize, differentiable=differentiable, capturable=capturable)

    _SECOND_MOMENT = "exp_inf"

    def _update(self, p, g, st, lr, hp):
        beta1, beta2, eps = hp
        exp_avg, exp_inf = st["exp_avg"], st["exp_inf"]
        exp_avg.lerp_(g, 1 - beta1)
        exp_inf.mul_(beta2).clamp_(min=g.abs().add_(eps))   # in-place maximum(beta2 * u, |g| + eps)
        clr = lr / (1 - beta1 ** st["step"].item())
        p.addcdiv_(exp_avg, exp_inf, value=-clr)
