"""Rprop (resilient backpropagation), PyTorch's single-tensor numerics."""
from __future__ import annotations

from ..ops.creation import full_like, zeros_like
from ._single import SingleTensorOptimizer, _check_lr, _scalar_state
from .optimizer import _to_scalar

__all__ = ["Rprop"]


class Rprop(SingleTensorOptimizer):
    """Rprop, as `torch.optim.Rprop` (no weight decay).

    Per parameter with gradient g (negated when maximize), s = sign(g * prev):
        step_size = clamp(step_size * (etaplus if s > 0, etaminus if s < 0, 1 otherwise), *step_sizes)
        g = 0 where s < 0;  p -= sign(g) * step_size;  prev = g
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False, foreach=None,
                 maximize=False, differentiable=False):
        _check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes),
                         foreach=foreach, maximize=maximize, differentiable=differentiable, capturable=capturable)

    def _init_state(self, p, g, group, st):
        st["step"] = _scalar_state(0.0)
        st["prev"] = zeros_like(p)
        st["step_size"] = full_like(g, _to_scalar(group["lr"]))

    def _hparams(self, group):
        return tuple(group["etas"]) + tuple(group["step_sizes"])

    def _update(self, p, g, st, lr, hp):
        etaminus, etaplus, step_size_min, step_size_max = hp
        prev, step_size = st["prev"], st["step_size"]
        sign = g.mul(prev).sign()
        sign[sign.gt(0)] = etaplus
        sign[sign.lt(0)] = etaminus
        sign[sign.eq(0)] = 1
        step_size.mul_(sign).clamp_(step_size_min, step_size_max)
        g = g.clone()
        g[sign.eq(etaminus)] = 0
        p.addcmul_(g.sign(), step_size, value=-1)
        prev.copy_(g)
