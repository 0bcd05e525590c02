"""RAdam (rectified Adam), PyTorch's single-tensor numerics."""
from __future__ import annotations

from ..ops.creation import zeros_like
from .optimizer import Optimizer, _to_scalar
from .rmsprop import _check_betas, _check_lr, _scalar_state, _tensorize_state
from .sgd import _check_impl_flags

__all__ = ["RAdam"]


class RAdam(Optimizer):
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
        _check_lr(lr)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        _check_betas(betas)
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _check_impl_flags("RAdam", foreach, False, differentiable, capturable)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    _SETSTATE_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False,
                          "decoupled_weight_decay": False}

    def __setstate__(self, state):
        super().__setstate__(state)
        _tensorize_state(self)

    def step(self, closure=None):
        """Performs one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            beta1, beta2 = (_to_scalar(b) for b in group["betas"])
            eps, weight_decay, maximize = group["eps"], group["weight_decay"], group["maximize"]
            decoupled = group["decoupled_weight_decay"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                st = self.state[p]
                if len(st) == 0:
                    st["step"] = _scalar_state(0.0)
                    st["exp_avg"] = zeros_like(p)
                    st["exp_avg_sq"] = zeros_like(p)
                if maximize:
                    g = -g
                exp_avg, exp_avg_sq, step_t = st["exp_avg"], st["exp_avg_sq"], st["step"]
                step_t.add_(1)
                step = step_t.item()
                if weight_decay != 0:
                    if decoupled:
                        p.mul_(1 - lr * weight_decay)
                    else:
                        g = g.add(p, alpha=weight_decay)
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
        return loss
