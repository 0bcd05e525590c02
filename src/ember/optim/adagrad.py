"""Adagrad (with lr decay, initial accumulator value, weight decay and maximize), PyTorch's numerics."""
from __future__ import annotations

from ..ops.creation import full_like
from .optimizer import Optimizer, _to_scalar
from .rmsprop import _check_lr, _scalar_state, _tensorize_state
from .sgd import _check_impl_flags

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad, as `torch.optim.Adagrad`.

    Per parameter with gradient g (negated when maximize), weight decay added as L2, at step t:
        clr = lr / (1 + (t - 1) * lr_decay)
        sum += g^2;  p -= clr * g / (sqrt(sum) + eps)
    As torch, the state (`step`, `sum` filled with `initial_accumulator_value`) is created in the
    constructor. ember runs torch's single-tensor loop (`foreach` is accepted and ignored).
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_lr(lr)
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        _check_impl_flags("Adagrad", foreach, fused, differentiable)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(self.state[p], p)

    _SETSTATE_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False, "fused": None}

    def __setstate__(self, state):
        super().__setstate__(state)
        _tensorize_state(self)

    def _init_state(self, st: dict, p) -> None:
        st["step"] = _scalar_state(0.0)
        st["sum"] = full_like(p, self.defaults["initial_accumulator_value"])

    def step(self, closure=None):
        """Performs one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            weight_decay, lr_decay, eps = group["weight_decay"], group["lr_decay"], group["eps"]
            maximize = group["maximize"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                st = self.state[p]
                if len(st) == 0:
                    self._init_state(st, p)
                step_t = st["step"]
                step_t.add_(1)
                step = step_t.item()
                if maximize:
                    g = -g
                if weight_decay != 0:
                    g = g.add(p, alpha=weight_decay)
                clr = lr / (1 + (step - 1) * lr_decay)
                state_sum = st["sum"]
                state_sum.addcmul_(g, g, value=1)
                std = state_sum.sqrt().add_(eps)
                p.addcdiv_(g, std, value=-clr)
        return loss
