"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize (PyTorch's numerics)."""
from __future__ import annotations

from .._tensor import Tensor
from ..core.device import CPU
from ..core.layout import is_one_block
from ..dispatch import OPS
from ..ops.creation import zeros_like
from ._lowp import low_cpu, rounded
from .optimizer import Optimizer, _to_scalar, required

__all__ = ["SGD"]

_fused_sgd_ = OPS["_fused_sgd_"].fn


def _check_impl_flags(name, foreach, fused, differentiable, capturable=False):
    if fused:
        raise RuntimeError(f"{name}: fused=True is not supported by ember (the single-tensor loop is used)")
    if differentiable:
        raise RuntimeError(f"{name}: differentiable=True is not supported by ember")
    if capturable:
        raise RuntimeError(f"{name}: capturable=True is not supported by ember")


def _check_floating_params(opt, flag: str) -> None:
    """torch's check of `fused=True` (flag "fused"; Adam's `capturable=True` too): floating point parameters
    only (ember checks at construction, torch at the first step)."""
    for group in opt.param_groups:
        for p in group["params"]:
            if not p.is_floating_point():
                raise RuntimeError(f"{type(opt).__name__}: {flag}=True requires all the params to be floating point "
                                   f"tensors, got a {p.dtype} tensor")


def _multi_tensor(group) -> bool:
    """The multi-tensor ops (`fused` or `foreach`, or neither chosen) or the single-tensor loop."""
    fused, foreach = group["fused"], group["foreach"]
    return bool(fused) or bool(foreach) or (fused is None and foreach is None)


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), as `torch.optim.SGD`.

    Per parameter with gradient g (negated when maximize):
        g = g + weight_decay * p
        buf = g (first step) or momentum * buf + (1 - dampening) * g
        g = g + momentum * buf (nesterov) or buf
        p = p - lr * g
    State per parameter (with momentum): 'momentum_buffer'.

    Contiguous parameters off the CPU take one multi-tensor `_fused_sgd_` op per (device, dtype) of a group (CUDA:
    a launch per 8 parameters, computed in float32, where the loop below would launch up to three
    kernels per parameter); that is the default there, and what `foreach=True` asks for. A `lr` given as
    a one-element tensor on their device is read there, so the step can be captured in a CUDA graph.
    `fused=True` takes the op on every device, the CPU included (float16/bfloat16 computed in float32 and
    rounded once, as torch's fused SGD). Otherwise (`foreach=False` or `fused=False`, and on the CPU
    unless fused) ember runs the per-tensor loop of ops, torch's for-loop. On float16/bfloat16 parameters
    on the CPU, ember's ops round as torch's (alpha rounded to their dtype, momentum kept in float32), so
    the loop matches torch's for-loop bit for bit; `foreach=True` follows torch's foreach step there
    instead, whose `_foreach_mul_` rounds the momentum to the parameters' dtype once every buffer of a
    (device, dtype) group exists. On the CPU, the per-tensor loop is torch's default (foreach unset).
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        if lr is not required and _to_scalar(lr) < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _check_impl_flags("SGD", foreach, False, differentiable)
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)
        if fused:
            _check_floating_params(self, "fused")

    _SETSTATE_DEFAULTS = {"nesterov": False, "maximize": False, "foreach": None, "differentiable": False,
                          "fused": False}

    def step(self, closure=None):
        """Performs one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            loop = self._multi_tensor_step(group) if _multi_tensor(group) else group["params"]
            if loop:
                self._single_tensor_step(group, loop)
        return loss

    def _multi_tensor_step(self, group) -> list:
        """One `_fused_sgd_` per (device, dtype) of the group's parameters with grads, and per first step or
        not (a parameter without a momentum buffer gets zeros, which the op sets to its gradient). Returns
        the parameters left to the loop: those on the CPU and strided ones, unless fused."""
        states = self.state
        momentum = group["momentum"]
        everywhere = bool(group["fused"])
        lists, loop = {}, []
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            dev = p._storage.device
            if (dev is CPU or not is_one_block(p)) and not everywhere:
                # (the op updates each parameter, transposed or channels-last too, in place as one dense block)
                loop.append(p)
                continue
            first = False
            if momentum != 0:
                st = states[p]
                buf = st.get("momentum_buffer")
                if buf is None:
                    buf = st["momentum_buffer"] = zeros_like(p)
                    first = True
            key = (dev, p._dtype, first)
            params_grads_bufs = lists.get(key)
            if params_grads_bufs is None:
                params_grads_bufs = lists[key] = ([], [], [])
            params, grads, bufs = params_grads_bufs
            params.append(p)
            grads.append(g)
            if momentum != 0:
                bufs.append(buf)
        lr = group["lr"]
        for (dev, _, first), (params, grads, bufs) in lists.items():
            step_lr = lr    # a tensor lr on the parameters' device is read there (capturable)
            if not isinstance(lr, Tensor) or lr._storage.device is not dev:
                step_lr = _to_scalar(lr)
            _fused_sgd_(params, grads, bufs, weight_decay=_to_scalar(group["weight_decay"]), momentum=momentum,
                        lr=step_lr, dampening=group["dampening"], nesterov=group["nesterov"],
                        maximize=group["maximize"], is_first_step=first)
        return loop

    def _single_tensor_step(self, group, params) -> None:
        """torch's for-loop over `params` (those of `group` with grads take a step), op by op."""
        states = self.state
        lr = _to_scalar(group["lr"])
        weight_decay = _to_scalar(group["weight_decay"])
        momentum = group["momentum"]
        dampening = group["dampening"]
        nesterov = group["nesterov"]
        maximize = group["maximize"]
        foreach_bufs = self._foreach_buffers(group) if group["foreach"] and momentum != 0 else {}
        for p in params:
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

    def _foreach_buffers(self, group) -> dict:
        """(device, dtype) -> whether every parameter of the group with a grad there has a momentum buffer
        (torch's foreach step then scales them all with one `_foreach_mul_`)."""
        have = {}
        for p in group["params"]:
            if p.grad is not None:
                key = (p._storage.device, p._dtype)
                have[key] = have.get(key, True) and self.state[p].get("momentum_buffer") is not None
        return have

