"""NAdam (Adam with Nesterov momentum and momentum decay), PyTorch's single-tensor numerics."""
from __future__ import annotations

from ..ops.creation import zeros_like
from ._single import AdamLikeOptimizer, SingleTensorOptimizer, _check_adam_like, _check_nonneg, _scalar_state

__all__ = ["NAdam"]


class NAdam(AdamLikeOptimizer):
    """NAdam, as `torch.optim.NAdam`.

    Per parameter with gradient g (negated when maximize), at step t:
        mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay));  mu_product *= mu_t
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g^2
        denom = sqrt(v / (1 - beta2^t)) + eps
        p -= lr * (1 - mu_t) / (1 - mu_product) * g / denom + lr * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / denom
    Weight decay is L2 (added to g) or, with `decoupled_weight_decay`, AdamW-style. The per-parameter
    state holds `step` and `mu_product` as 0-d tensors (torch's scalar dtype), `exp_avg`, `exp_avg_sq`.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check_adam_like(lr, eps, betas, weight_decay)
        _check_nonneg(momentum_decay=momentum_decay)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay),
                         foreach=foreach, maximize=maximize, differentiable=differentiable, capturable=capturable)

    _SETSTATE_DEFAULTS = {**SingleTensorOptimizer._SETSTATE_DEFAULTS, "decoupled_weight_decay": False}
    _STATE_SCALARS = ("step", "mu_product")

    def _init_state(self, p, g, group, st):
        st["step"] = _scalar_state(0.0)
        st["mu_product"] = _scalar_state(1.0)
        st["exp_avg"] = zeros_like(p)
        st["exp_avg_sq"] = zeros_like(p)

    def _hparams(self, group):
        return super()._hparams(group) + (group["momentum_decay"],)

    def _update(self, p, g, st, lr, hp):
        beta1, beta2, eps, momentum_decay = hp
        exp_avg, exp_avg_sq, mu_product = st["exp_avg"], st["exp_avg_sq"], st["mu_product"]
        step = st["step"].item()
        bias_correction2 = 1 - beta2 ** step
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        mu_product.mul_(mu)
        exp_avg.lerp_(g, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = exp_avg_sq.div(bias_correction2).sqrt()
        mu_prod = mu_product.item()
        mu_product_next = mu_prod * mu_next
        denom.add_(eps)
        p.addcdiv_(g, denom, value=-lr * (1.0 - mu) / (1.0 - mu_prod))
        p.addcdiv_(exp_avg, denom, value=(-lr * mu_next) / (1.0 - mu_product_next))
