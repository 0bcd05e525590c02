"""RAdam (rectified Adam), PyTorch's single-tensor numerics."""
from __future__ import annotations

from ._single import AdamLikeOptimizer, SingleTensorOptimizer, _check_adam_like

__all__ = ["RAdam"]


class RAdam(AdamLikeOptimizer):
    """RAdam, as `torch.optim.RAdam`.

    Per parameter with gradient g (negated when maximize), at step t:
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g^2
        rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        p -= lr * m / (1 - beta1^t) * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r_t   (rho_t > 5, r_t the rectifier)
        p -= lr * m / (1 - beta1^t)                                              (otherwise)
    Weight decay is L2 (added to g) or, with `decoupled_weight_decay`, AdamW-style.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        _check_adam_like(lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay),
                         foreach=foreach, maximize=maximize, differentiable=differentiable, capturable=capturable)

    _SETSTATE_DEFAULTS = {**SingleTensorOptimizer._SETSTATE_DEFAULTS, "decoupled_weight_decay": False}

    def _update(self, p, g, st, lr, hp):
        beta1, beta2, eps = hp
        exp_avg, exp_avg_sq = st["exp_avg"], st["exp_avg_sq"]
        step = st["step"].item()
        exp_avg.lerp_(g, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        bias_corrected_exp_avg = exp_avg / bias_correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            # torch's `float / tensor` is `tensor.reciprocal() * float`
            adaptive_lr = exp_avg_sq.sqrt().add_(eps).reciprocal().mul(bias_correction2 ** 0.5)
            p.add_(bias_corrected_exp_avg.mul(lr).mul(adaptive_lr).mul(rect), alpha=-1.0)
        else:
            p.add_(bias_corrected_exp_avg.mul(lr), alpha=-1.0)
