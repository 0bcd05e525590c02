"""RMSprop (with momentum, centered, weight decay and maximize), PyTorch's single-tensor numerics.

Also holds the small helpers the other torch-shaped optimizers of this package share (lr checks,
the conversion of step counts saved as Python numbers).
"""
from __future__ import annotations

from .._tensor import Tensor
from ..ops.creation import tensor as _tensor, zeros, zeros_like
from .adam import _scalar_dtype
from .optimizer import Optimizer, _to_scalar
from .sgd import _check_impl_flags

__all__ = ["RMSprop"]


def _check_lr(lr) -> None:
    """torch's checks of a learning rate given as a number or a one-element tensor."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= _to_scalar(lr):
        raise ValueError(f"Invalid learning rate: {lr}")


def _check_betas(betas) -> None:
    """torch's checks of Adam-style (beta1, beta2)."""
    if not 0.0 <= _to_scalar(betas[0]) < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= _to_scalar(betas[1]) < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")


def _scalar_state(value) -> Tensor:
    """A 0-d state tensor (step count, mu_product, eta, ...) in torch's scalar dtype."""
    return _tensor(float(value), dtype=_scalar_dtype())


def _tensorize_state(opt: Optimizer, keys=("step",)) -> None:
    """After `__setstate__`: per-parameter scalars saved as Python numbers become 0-d tensors (as torch)."""
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p)
            if not st:
                continue
            for key in keys:
                if key in st and not isinstance(st[key], Tensor):
                    st[key] = _scalar_state(st[key])


class RMSprop(Optimizer):
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
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        _check_impl_flags("RMSprop", foreach, False, differentiable, capturable)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach, maximize=maximize,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    _SETSTATE_DEFAULTS = {"momentum": 0, "centered": False, "foreach": None, "maximize": False,
                          "differentiable": False, "capturable": False}

    def __setstate__(self, state):
        super().__setstate__(state)
        _tensorize_state(self)

    def step(self, closure=None):
        """Performs one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            alpha, eps = group["alpha"], group["eps"]
            weight_decay, momentum = group["weight_decay"], group["momentum"]
            centered, maximize = group["centered"], group["maximize"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                st = self.state[p]
                if len(st) == 0:
                    st["step"] = zeros((), dtype=_scalar_dtype())
                    st["square_avg"] = zeros_like(p)
                    if momentum > 0:
                        st["momentum_buffer"] = zeros_like(p)
                    if centered:
                        st["grad_avg"] = zeros_like(p)
                if maximize:
                    g = -g
                square_avg = st["square_avg"]
                st["step"].add_(1)
                if weight_decay != 0:
                    g = g.add(p, alpha=weight_decay)
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
        return loss
