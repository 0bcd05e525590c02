"""RMSprop (with momentum, centered, weight decay and maximize), PyTorch's single-tensor numerics."""
from __future__ import annotations

from ..ops.creation import zeros_like
from ._single import SingleTensorOptimizer, _check_lr, _check_nonneg, _scalar_state

__all__ = ["RMSprop"]


class RMSprop(SingleTensorOptimizer):
    """RMSprop, as `torch.optim.RMSprop`.

    Per parameter with gradient g (negated when maximize), weight decay added as L2:
        v = alpha * v + (1 - alpha) * g^2
        avg = sqrt(v - g_avg^2) (centered, g_avg = lerp(g_avg, g, 1 - alpha)) or sqrt(v), plus eps
        buf = momentum * buf + g / avg;  p -= lr * buf     (momentum > 0)
        p -= lr * g / avg                                  (otherwise)
    ember runs torch's single-tensor loop (`foreach` is accepted and ignored).
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check_lr(lr)
        _check_nonneg(eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                                      weight_decay=weight_decay),
                         foreach=foreach, maximize=maximize, differentiable=differentiable, capturable=capturable)

    _SETSTATE_DEFAULTS = {**SingleTensorOptimizer._SETSTATE_DEFAULTS, "momentum": 0, "centered": False}

    def _init_state(self, p, g, group, st):
        st["step"] = _scalar_state(0.0)
        st["square_avg"] = zeros_like(p)
        if group["momentum"] > 0:
            st["momentum_buffer"] = zeros_like(p)
        if group["centered"]:
            st["grad_avg"] = zeros_like(p)

    def _hparams(self, group):
        return group["alpha"], group["eps"], group["momentum"], group["centered"]

    def _update(self, p, g, st, lr, hp):
        alpha, eps, momentum, centered = hp
        square_avg = st["square_avg"]
        square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
        if centered:
            grad_avg = st["grad_avg"]
            grad_avg.lerp_(g, 1 - alpha)
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(eps)
        if momentum > 0:
            buf = st["momentum_buffer"]
            buf.mul_(momentum).addcdiv_(g, avg)
            p.add_(buf, alpha=-lr)
        else:
            p.addcdiv_(g, avg, value=-lr)
