"""ASGD (averaged stochastic gradient descent), PyTorch's single-tensor numerics."""
from __future__ import annotations

from ..ops.creation import zeros_like
from .optimizer import Optimizer, _to_scalar
from .rmsprop import _check_lr, _scalar_state, _tensorize_state
from .sgd import _check_impl_flags

__all__ = ["ASGD"]


class ASGD(Optimizer):
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
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _check_impl_flags("ASGD", foreach, False, differentiable, capturable)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    _SETSTATE_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False}

    def __setstate__(self, state):
        super().__setstate__(state)
        _tensorize_state(self, ("step", "eta", "mu"))

    def step(self, closure=None):
        """Performs one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            lambd, alpha, t0 = group["lambd"], group["alpha"], group["t0"]
            weight_decay, maximize = group["weight_decay"], group["maximize"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                st = self.state[p]
                if len(st) == 0:
                    st["step"] = _scalar_state(0.0)
                    st["eta"] = _scalar_state(lr)
                    st["mu"] = _scalar_state(1.0)
                    st["ax"] = zeros_like(p)
                if maximize:
                    g = -g
                mu, ax, eta, step_t = st["mu"], st["ax"], st["eta"], st["step"]
                step_t.add_(1)
                if weight_decay != 0:
                    g = g.add(p, alpha=weight_decay)
                eta_value = eta.item()
                p.mul_(1 - lambd * eta_value)
                p.add_(g, alpha=-eta_value)
                if mu.item() != 1:
                    ax.add_(p.sub(ax).mul_(mu))
                else:
                    ax.copy_(p)
                step = step_t.item()
                eta.fill_(lr / ((1 + lambd * lr * step) ** alpha))
                mu.fill_(1 / max(1, step - t0))
        return loss
