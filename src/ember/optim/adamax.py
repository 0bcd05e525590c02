"""Adamax (Adam with the infinity norm), PyTorch's single-tensor numerics."""
from __future__ import annotations

from ..ops.creation import zeros_like
from .optimizer import Optimizer, _to_scalar
from .rmsprop import _check_betas, _check_lr, _scalar_state, _tensorize_state
from .sgd import _check_impl_flags

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax, as `torch.optim.Adamax`.

    Per parameter with gradient g (negated when maximize), weight decay added as L2, at step t:
        m = lerp(m, g, 1 - beta1);  u = max(beta2 * u, |g| + eps)
        p -= lr / (1 - beta1^t) * m / u
    ember runs torch's single-tensor loop (`foreach` is accepted and ignored).
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        _check_lr(lr)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        _check_betas(betas)
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _check_impl_flags("Adamax", foreach, False, differentiable, capturable)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    _SETSTATE_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False}

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
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                st = self.state[p]
                if len(st) == 0:
                    st["step"] = _scalar_state(0.0)
                    st["exp_avg"] = zeros_like(p)
                    st["exp_inf"] = zeros_like(p)
                if maximize:
                    g = -g
                exp_avg, exp_inf, step_t = st["exp_avg"], st["exp_inf"], st["step"]
                step_t.add_(1)
                if weight_decay != 0:
                    g = g.add(p, alpha=weight_decay)
                exp_avg.lerp_(g, 1 - beta1)
                exp_inf.mul_(beta2).clamp_(min=g.abs().add_(eps))   # in-place maximum(beta2 * u, |g| + eps)
                clr = lr / (1 - beta1 ** step_t.item())
                p.addcdiv_(exp_avg, exp_inf, value=-clr)
        return loss
