"""Adam (with amsgrad, maximize, L2 or decoupled weight decay), PyTorch's single-tensor numerics."""
from __future__ import annotations

from ..autograd.grad_mode import state as _grad_state
from ..core.dtype import float32, float64, get_default_dtype
from ..ops.creation import zeros, zeros_like
from .optimizer import Optimizer, _to_scalar
from .sgd import _check_impl_flags

__all__ = ["Adam"]


def _capturable_lr(lr, group) -> bool:
    """A tensor lr stays a tensor (read on the device) in capturable mode; it is a number otherwise."""
    return group["capturable"] and hasattr(lr, "_storage") and lr._storage.device.type == "cuda"


def _scalar_dtype():
    return float64 if get_default_dtype() is float64 else float32


class Adam(Optimizer):
    """Adam, as `torch.optim.Adam` (AdamW when `decoupled_weight_decay=True`).

    Per parameter with gradient g (negated when maximize), at step t:
        p = p * (1 - lr * weight_decay)            (decoupled)   or   g = g + weight_decay * p
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v) (amsgrad);  denom = sqrt(v or v_hat) / sqrt(1 - beta2^t) + eps
        p = p - lr / (1 - beta1^t) * m / denom
    State per parameter: 'step' (a 0-d float tensor), 'exp_avg', 'exp_avg_sq' (and 'max_exp_avg_sq').

    CUDA parameters take a fused multi-tensor kernel (one launch per 8 parameters of a group) unless
    `fused=False`; `fused=True` requires every parameter on CUDA. `capturable=True` keeps 'step' on the
    parameter's device (incremented there, one launch per 8 steps) and computes the bias corrections
    there (in float32, as PyTorch's capturable Adam), so that the step can be captured in a CUDA graph
    and replayed; with `lr` given as a 0-d CUDA tensor, the kernel reads it on the device too, and LR
    schedulers update it in place (`fill_`) between replays.
    `foreach` is accepted and ignored.
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
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)
        if fused or capturable:
            for group in self.param_groups:
                for p in group["params"]:
                    if p.device.type != "cuda" or not p.is_floating_point():
                        raise RuntimeError(f"{type(self).__name__}: {'fused' if fused else 'capturable'}=True "
                                           f"requires all the params to be floating point CUDA tensors, got a "
                                           f"{p.dtype} tensor on {p.device}")

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("fused", None)
            for p in group["params"]:
                st = self.state.get(p)
                if st and "step" in st and not hasattr(st["step"], "item"):
                    st["step"] = zeros((), dtype=_scalar_dtype()).fill_(float(st["step"]))

    def step(self, closure=None):
        """Performs one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        prev = _grad_state.enabled
        _grad_state.enabled = False
        try:
            states = self.state
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                beta1, beta2 = _to_scalar(beta1), _to_scalar(beta2)
                lr_raw = group["lr"]
                lr = lr_raw if _capturable_lr(lr_raw, group) else _to_scalar(lr_raw)
                weight_decay = group["weight_decay"]
                eps = group["eps"]
                amsgrad = group["amsgrad"]
                maximize = group["maximize"]
                decoupled = group["decoupled_weight_decay"]
                fused = group["fused"] is not False
                capturable = group["capturable"]
                fused_params = []
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    if fused and p._storage.device.type == "cuda":
                        fused_params.append(p)
                        continue
                    st = states[p]
                    if capturable:
                        raise RuntimeError(f"{type(self).__name__}: capturable=True needs CUDA parameters with "
                                           f"fused != False, got a parameter on {p.device}")
                    if not st:
                        st["step"] = zeros((), dtype=_scalar_dtype())
                        st["exp_avg"] = zeros_like(p)
                        st["exp_avg_sq"] = zeros_like(p)
                        if amsgrad:
                            st["max_exp_avg_sq"] = zeros_like(p)
                    if maximize:
                        g = -g
                    step_t = st["step"]
                    step_t.add_(1)
                    if weight_decay != 0:
                        if decoupled:
                            p.mul_(1 - lr * weight_decay)
                        else:
                            g = g.add(p, alpha=weight_decay)
                    exp_avg = st["exp_avg"]
                    exp_avg_sq = st["exp_avg_sq"]
                    exp_avg.lerp_(g, 1 - beta1)
                    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
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
                if fused_params:
                    self._fused_steps(fused_params, states, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                                      decoupled, capturable)
        finally:
            _grad_state.enabled = prev
        return loss

    @staticmethod
    def _fused_steps(params, states, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled, capturable):
        """One multi-tensor fused step of `params` (all with grads): a launch per 8 parameters of one
        device and dtypes, plus, when capturable, one per 8 device step counts to increment them."""
        from ..backends.cuda.optim import adam_multi_step_, increment_steps_
        grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], [] if amsgrad else None, []
        for p in params:
            st = states[p]
            if not st:
                st["step"] = zeros((), dtype=float32, device=p.device if capturable else None)
                st["exp_avg"] = zeros_like(p)
                st["exp_avg_sq"] = zeros_like(p)
                if amsgrad:
                    st["max_exp_avg_sq"] = zeros_like(p)
            step_t = st["step"]
            if capturable and step_t.device != p.device:   # e.g. loaded from a checkpoint
                step_t = st["step"] = step_t.to(p.device)
            g = p.grad
            grads.append(g if g.is_contiguous() else g.contiguous())
            exp_avgs.append(st["exp_avg"])
            exp_avg_sqs.append(st["exp_avg_sq"])
            if amsgrad:
                max_exp_avg_sqs.append(st["max_exp_avg_sq"])
            if capturable:
                steps.append(step_t)
            else:
                step_t.add_(1)
                steps.append(step_t.item())
        if capturable:
            increment_steps_(steps)
        adam_multi_step_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1, beta2, eps,
                         weight_decay, decoupled, maximize)
