"""Adam (with amsgrad, maximize, L2 or decoupled weight decay), PyTorch's single-tensor numerics."""
from __future__ import annotations

from .._tensor import Tensor
from ..core.dtype import float32, float64, get_default_dtype
from ..core.layout import is_one_block
from ..dispatch import OPS
from ..ops.creation import zeros, zeros_like
from ._lowp import low_cpu, rounded
from .optimizer import Optimizer, _to_scalar
from .sgd import _check_floating_params, _check_impl_flags, _multi_tensor


__all__ = ["Adam"]


def undense_cuda(t) -> bool:
    """A CUDA parameter that is not one dense block (a view with gaps), which the fused multi-tensor step, updating
    each parameter in place as one block, refuses: it steps op by op, as SGD's do. (A transposed or channels-last
    parameter is dense: its grad and state share its layout, and it steps fused.)"""
    return t._storage.device.type == "cuda" and not is_one_block(t)

_fused_adam_, _fused_adamw_ = OPS["_fused_adam_"].fn, OPS["_fused_adamw_"].fn
_foreach_add_ = OPS["_foreach_add_"].fn


def _scalar_dtype():
    return float64 if get_default_dtype() is float64 else float32


def _init_state(st: dict, p, step_dtype, step_device, amsgrad: bool) -> dict:
    """A parameter's Adam state at its first step: the step count and the moment buffers."""
    st["step"] = zeros((), dtype=step_dtype, device=step_device)
    st["exp_avg"] = zeros_like(p)
    st["exp_avg_sq"] = zeros_like(p)
    if amsgrad:
        st["max_exp_avg_sq"] = zeros_like(p)
    return st


class Adam(Optimizer):
    """Adam, as `torch.optim.Adam` (AdamW when `decoupled_weight_decay=True`).

    Per parameter with gradient g (negated when maximize), at step t:
        p = p * (1 - lr * weight_decay)            (decoupled)   or   g = g + weight_decay * p
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v) (amsgrad);  denom = sqrt(v or v_hat) / sqrt(1 - beta2^t) + eps
        p = p - lr / (1 - beta1^t) * m / denom
    State per parameter: 'step' (a 0-d float tensor), 'exp_avg', 'exp_avg_sq' (and 'max_exp_avg_sq').

    A step is one multi-tensor op per device of a group (`_fused_adam_` / `_fused_adamw_`, after one
    `_foreach_add_` of the step counts): each backend batches it (CUDA: a launch per 8 parameters; the
    CPU kernel computes what the single-tensor loop does, bit for bit in float32 and float64). That
    is the default, and what `fused=True` or `foreach=True` ask for; `fused=False` or `foreach=False`
    (the other not True) run the single-tensor loop of ops. `capturable=True` (multi-tensor only)
    keeps 'step' on the parameter's device, incremented there, and computes the bias corrections
    there (in float32 on CUDA, as PyTorch's capturable Adam), so that the step can be captured in a
    CUDA graph and replayed; with `lr` given as a 0-d tensor on that device, the kernel reads it
    there too, and LR schedulers update it in place (`fill_`) between replays. Unlike torch, ember
    accepts `capturable=True` for parameters on any device.

    float16/bfloat16 parameters: the multi-tensor op computes in float32 and rounds each state and the
    parameter once a step (torch's fused Adam). On the CPU only `fused=True` (or capturable) takes it:
    otherwise they run the single-tensor loop, rounding after every op as torch's CPU for-loop (its
    default there) and foreach steps do, bit for bit (ember's CPU ops round as torch's; `_lowp`). A float32 master
    copy is the user's choice, as in torch.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        if not 0.0 <= _to_scalar(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        betas = tuple(betas)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        betas = tuple(_to_scalar(b) for b in betas)
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _check_impl_flags(type(self).__name__, foreach, False, differentiable)
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)
        if fused or capturable:
            _check_floating_params(self, "fused" if fused else "capturable")

    _SETSTATE_DEFAULTS = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                          "differentiable": False, "decoupled_weight_decay": False, "fused": None}

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if st and "step" in st and not hasattr(st["step"], "item"):
                    st["step"] = zeros((), dtype=_scalar_dtype()).fill_(float(st["step"]))

    def step(self, closure=None):
        """Performs one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            if _multi_tensor(group):
                self._multi_tensor_step(group)
            else:
                self._single_tensor_step(group)
        return loss

    def _multi_tensor_step(self, group) -> None:
        """The group's parameters with grads, one `_foreach_add_` of their step counts and one
        `_fused_adam(w)_` per device."""
        states = self.state
        capturable = group["capturable"]
        amsgrad = group["amsgrad"]
        lr = group["lr"]
        if not (capturable and isinstance(lr, Tensor)):
            lr = _to_scalar(lr)
        step_dtype = float32 if group["fused"] else _scalar_dtype()
        per_device = {}
        dev = lists = None
        loop = []       # float16/bfloat16 CPU parameters (torch's CPU for-loop/foreach arithmetic) and CUDA ones
        #                 with gaps (the fused op updates each parameter as one dense block), unless fused or capturable
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if not (group["fused"] or capturable) and (low_cpu(p) or undense_cuda(p)):
                loop.append(p)
                continue
            st = states[p] or _init_state(states[p], p, step_dtype, p.device if capturable else None, amsgrad)
            step_t = st["step"]
            if capturable and step_t._storage.device is not p._storage.device:   # e.g. loaded from a checkpoint
                step_t = st["step"] = step_t.to(p.device)
            if p._storage.device is not dev:     # (a device's hash is a Python call: asked once per run)
                dev = p._storage.device
                lists = per_device.get(dev)
                if lists is None:
                    lists = per_device[dev] = ([], [], [], [], [], [])
            params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = lists
            params.append(p)
            grads.append(g)
            exp_avgs.append(st["exp_avg"])
            exp_avg_sqs.append(st["exp_avg_sq"])
            if amsgrad:
                max_exp_avg_sqs.append(st["max_exp_avg_sq"])
            steps.append(step_t)
        beta1, beta2 = (_to_scalar(b) for b in group["betas"])
        fused_op = _fused_adamw_ if group["decoupled_weight_decay"] else _fused_adam_
        for params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps in per_device.values():
            _foreach_add_(steps, 1)
            fused_op(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr=lr, beta1=beta1, beta2=beta2,
                     weight_decay=group["weight_decay"], eps=group["eps"], amsgrad=amsgrad,
                     maximize=group["maximize"])
        if loop:
            self._single_tensor_step(group, loop, foreach=bool(group["foreach"]))

    def _single_tensor_step(self, group, params=None, foreach=False) -> None:
        """PyTorch's single-tensor loop, op by op, over `params` (default: the group's); ember's CPU ops on
        float16/bfloat16 parameters compute as torch's. `foreach` makes it torch's foreach step on those (the
        same ops, but `_foreach_mul_` rounds its scalar to their dtype)."""
        if group["capturable"]:
            raise RuntimeError(f"{type(self).__name__}: capturable=True needs the multi-tensor step; it was "
                               f"turned off by fused={group['fused']} and foreach={group['foreach']}")
        states = self.state
        beta1, beta2 = (_to_scalar(b) for b in group["betas"])
        lr = _to_scalar(group["lr"])
        weight_decay = group["weight_decay"]
        eps = group["eps"]
        amsgrad = group["amsgrad"]
        maximize = group["maximize"]
        decoupled = group["decoupled_weight_decay"]
        for p in group["params"] if params is None else params:
            g = p.grad
            if g is None:
                continue
            st = states[p] or _init_state(states[p], p, _scalar_dtype(), None, amsgrad)
            if maximize:
                g = -g
            step_t = st["step"]
            step_t.add_(1)
            fm = foreach and low_cpu(p)    # torch's `_foreach_mul_` rounds its scalar to a 16-bit CPU dtype
            if weight_decay != 0:
                if decoupled:
                    p.mul_(rounded(1 - lr * weight_decay, p._dtype) if fm else 1 - lr * weight_decay)
                else:
                    g = g.add(p, alpha=weight_decay)
            exp_avg = st["exp_avg"]
            exp_avg_sq = st["exp_avg_sq"]
            exp_avg.lerp_(g, 1 - beta1)
            exp_avg_sq.mul_(rounded(beta2, p._dtype) if fm else beta2).addcmul_(g, g, value=1 - beta2)
            step = step_t.item()
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            step_size = lr / bias_correction1
            bias_correction2_sqrt = bias_correction2 ** 0.5
            if amsgrad:
                max_sq = st["max_exp_avg_sq"]
                max_sq.clamp_(min=exp_avg_sq)  # in-place maximum(max_sq, exp_avg_sq)
                denom = max_sq.sqrt()
            else:
                denom = exp_avg_sq.sqrt()
            denom.div_(bias_correction2_sqrt).add_(eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)

