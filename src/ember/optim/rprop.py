"""Rprop (resilient backpropagation), PyTorch's single-tensor numerics."""
from __future__ import annotations

from ..ops.creation import full_like, zeros_like
from .optimizer import Optimizer, _to_scalar
from .rmsprop import _check_lr, _scalar_state, _tensorize_state
from .sgd import _check_impl_flags

__all__ = ["Rprop"]


class Rprop(Optimizer):
    """Rprop, as `torch.optim.Rprop`.

    Per parameter with gradient g (negated when maximize), s = sign(g * prev):
        step_size = clamp(step_size * (etaplus if s > 0, etaminus if s < 0, 1 otherwise), *step_sizes)
        g = 0 where s < 0;  p -= sign(g) * step_size;  prev = g
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False, foreach=None,
                 maximize=False, differentiable=False):
        _check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        _check_impl_flags("Rprop", foreach, False, differentiable, capturable)
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
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
            etaminus, etaplus = group["etas"]
            step_size_min, step_size_max = group["step_sizes"]
            maximize = group["maximize"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                st = self.state[p]
                if len(st) == 0:
                    st["step"] = _scalar_state(0.0)
                    st["prev"] = zeros_like(p)
                    st["step_size"] = full_like(g, _to_scalar(group["lr"]))
                if maximize:
                    g = -g
                prev, step_size = st["prev"], st["step_size"]
                st["step"].add_(1)
                sign = g.mul(prev).sign()
                sign[sign.gt(0)] = etaplus
                sign[sign.lt(0)] = etaminus
                sign[sign.eq(0)] = 1
                step_size.mul_(sign).clamp_(step_size_min, step_size_max)
                g = g.clone()
                g[sign.eq(etaminus)] = 0
                p.addcmul_(g.sign(), step_size, value=-1)
                prev.copy_(g)
        return loss
