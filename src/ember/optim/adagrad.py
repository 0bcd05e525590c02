"""Adagrad (with lr decay, initial accumulator value, weight decay and maximize), PyTorch's numerics."""
from __future__ import annotations

from ..ops.creation import full_like
from ._single import SingleTensorOptimizer, _check_lr, _check_nonneg, _scalar_state

__all__ = ["Adagrad"]


class Adagrad(SingleTensorOptimizer):
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
        _check_nonneg(lr_decay=lr_decay, weight_decay=weight_decay,
                      initial_accumulator_value=initial_accumulator_value, eps=eps)
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value),
                         foreach=foreach, maximize=maximize, differentiable=differentiable, fused=fused)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, None, group, self.state[p])

    _SETSTATE_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False, "fused": None}

    def _init_state(self, p, g, group, st):
        st["step"] = _scalar_state(0.0)
        st["sum"] = full_like(p, self.defaults["initial_accumulator_value"])

    def _hparams(self, group):
        return group["lr_decay"], group["eps"]

    def _update(self, p, g, st, lr, hp):
        lr_decay, eps = hp
        clr = lr / (1 + (st["step"].item() - 1) * lr_decay)
        state_sum = st["sum"]
        state_sum.addcmul_(g, g, value=1)
        std = state_sum.sqrt().add_(eps)
        p.addcdiv_(g, std, value=-clr)
