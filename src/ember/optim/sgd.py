"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize (PyTorch's numerics)."""
from __future__ import annotations

from ._lowp import low_cpu, rounded
from .optimizer import Optimizer, _to_scalar, required

__all__ = ["SGD"]


def _check_impl_flags(name, foreach, fused, differentiable, capturable=False):
    if fused:
        raise RuntimeError(f"{name}: fused=True is not supported by ember (the single-tensor loop is used)")
    if differentiable:
        raise RuntimeError(f"{name}: differentiable=True is not supported by ember")
    if capturable:
        raise RuntimeError(f"{name}: capturable=True is not supported by ember")


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), as `torch.optim.SGD`.

    Per parameter with gradient g (negated when maximize):
        g = g + weight_decay * p
        buf = g (first step) or momentum * buf + (1 - dampening) * g
        g = g + momentum * buf (nesterov) or buf
        p = p - lr * g
    ember always runs the per-tensor loop. On float16/bfloat16 parameters on the CPU, ember's ops round as
    torch's (alpha rounded to their dtype, momentum kept in float32), so the loop matches torch's for-loop
    bit for bit; `foreach=True` follows torch's foreach step there instead, whose `_foreach_mul_` rounds
    the momentum to the parameters' dtype once every buffer of a (device, dtype) group exists.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        if lr is not required and _to_scalar(lr) < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _check_impl_flags("SGD", foreach, fused, differentiable)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    _SETSTATE_DEFAULTS = {"nesterov": False, "maximize": False, "foreach": None, "differentiable": False,
                          "fused": False}

    def step(self, closure=None):
        """Performs one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        states = self.state
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            weight_decay = _to_scalar(group["weight_decay"])
            momentum = group["momentum"]
            dampening = group["dampening"]
            nesterov = group["nesterov"]
            maximize = group["maximize"]
            foreach_bufs = self._foreach_buffers(group) if group["foreach"] and momentum != 0 else {}
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if maximize:
                    g = -g
                if weight_decay != 0:
                    g = g.add(p, alpha=weight_decay)
                if momentum != 0:
                    st = states[p]
                    buf = st.get("momentum_buffer")
                    if buf is None:
                        buf = g.detach().clone()
                        st["momentum_buffer"] = buf
                    else:
                        if foreach_bufs and low_cpu(p) and foreach_bufs[(p._storage.device, p._dtype)]:
                            buf.mul_(rounded(momentum, p._dtype))   # torch's `_foreach_mul_`: rounded
                        else:
                            buf.mul_(momentum)
                        buf.add_(g, alpha=1 - dampening)
                    g = g.add(buf, alpha=momentum) if nesterov else buf
                p.add_(g, alpha=-lr)
        return loss

    def _foreach_buffers(self, group) -> dict:
        """(device, dtype) -> whether every parameter of the group with a grad there has a momentum buffer
        (torch's foreach step then scales them all with one `_foreach_mul_`)."""
        have = {}
        for p in group["params"]:
            if p.grad is not None:
                key = (p._storage.device, p._dtype)
                have[key] = have.get(key, True) and self.state[p].get("momentum_buffer") is not None
        return have

