"""Adadelta, PyTorch's single-tensor numerics."""
from __future__ import annotations

from ..ops.creation import zeros_like
from .optimizer import Optimizer, _to_scalar
from .rmsprop import _check_lr, _scalar_state, _tensorize_state
from .sgd import _check_impl_flags

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
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
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _check_impl_flags("Adadelta", foreach, False, differentiable, capturable)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize, capturable=capturable,
                        foreach=foreach, differentiable=differentiable)
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
            rho, eps, weight_decay, maximize = group["rho"], group["eps"], group["weight_decay"], group["maximize"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                st = self.state[p]
                if len(st) == 0:
                    st["step"] = _scalar_state(0.0)
                    st["square_avg"] = zeros_like(p)
                    st["acc_delta"] = zeros_like(p)
                square_avg, acc_delta = st["square_avg"], st["acc_delta"]
                st["step"].add_(1)
                if maximize:
                    g = -g
                if weight_decay != 0:
                    g = g.add(p, alpha=weight_decay)
                square_avg.mul_(rho).addcmul_(g, g, value=1 - rho)
                std = square_avg.add(eps).sqrt_()
                delta = acc_delta.add(eps).sqrt_()
                delta.div_(std).mul_(g)
                acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
                p.add_(delta, alpha=-lr)
        return loss
