"""NAdam (Adam with Nesterov momentum and momentum decay), PyTorch's single-tensor numerics."""
from __future__ import annotations

from ..ops.creation import zeros_like
from .optimizer import Optimizer, _to_scalar
from .rmsprop import _check_betas, _check_lr, _scalar_state, _tensorize_state
from .sgd import _check_impl_flags

__all__ = ["NAdam"]


class NAdam(Optimizer):
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
        _check_lr(lr)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        _check_betas(betas)
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        _check_impl_flags("NAdam", foreach, False, differentiable, capturable)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    _SETSTATE_DEFAULTS = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                          "decoupled_weight_decay": False}

    def __setstate__(self, state):
        super().__setstate__(state)
        _tensorize_state(self, ("step", "mu_product"))

    def step(self, closure=None):
        """Performs one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            beta1, beta2 = (_to_scalar(b) for b in group["betas"])
            eps, weight_decay, maximize = group["eps"], group["weight_decay"], group["maximize"]
            momentum_decay, decoupled = group["momentum_decay"], group["decoupled_weight_decay"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                st = self.state[p]
                if len(st) == 0:
                    st["step"] = _scalar_state(0.0)
                    st["mu_product"] = _scalar_state(1.0)
                    st["exp_avg"] = zeros_like(p)
                    st["exp_avg_sq"] = zeros_like(p)
                if maximize:
                    g = -g
                exp_avg, exp_avg_sq, mu_product, step_t = st["exp_avg"], st["exp_avg_sq"], st["mu_product"], st["step"]
                step_t.add_(1)
                step = step_t.item()
                bias_correction2 = 1 - beta2 ** step
                if weight_decay != 0:
                    if decoupled:
                        p.mul_(1 - lr * weight_decay)
                    else:
                        g = g.add(p, alpha=weight_decay)
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
        return loss
