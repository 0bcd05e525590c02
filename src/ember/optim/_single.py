"""What the torch-shaped single-tensor optimizers (RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam, ASGD,
Rprop) share: torch's argument checks, the implementation flags, the pickling of their 0-d state scalars
and the step loop around each one's own update (`SingleTensorOptimizer`).
"""
from __future__ import annotations

from .._tensor import Tensor
from ..ops.creation import tensor as _tensor, zeros_like
from .adam import _scalar_dtype
from .optimizer import Optimizer, _to_scalar
from .sgd import _check_impl_flags

_LABELS = {"eps": "epsilon"}   # names torch's messages spell otherwise


def _check_lr(lr) -> None:
    """torch's checks of a learning rate given as a number or a one-element tensor."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= _to_scalar(lr):
        raise ValueError(f"Invalid learning rate: {lr}")


def _check_nonneg(**values) -> None:
    """torch's `Invalid <name> value` checks of options that must be >= 0, in the order given."""
    for name, value in values.items():
        if not 0.0 <= value:
            raise ValueError(f"Invalid {_LABELS.get(name, name)} value: {value}")


def _check_betas(betas) -> None:
    """torch's checks of Adam-style (beta1, beta2)."""
    if not 0.0 <= _to_scalar(betas[0]) < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= _to_scalar(betas[1]) < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")


def _check_adam_like(lr, eps, betas, weight_decay) -> None:
    """torch's checks of the arguments the Adam family shares, in its order."""
    _check_lr(lr)
    _check_nonneg(eps=eps)
    _check_betas(betas)
    _check_nonneg(weight_decay=weight_decay)


def _betas(group) -> tuple:
    """A group's (beta1, beta2) as Python numbers."""
    return tuple(_to_scalar(b) for b in group["betas"])


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


class SingleTensorOptimizer(Optimizer):
    """An optimizer running torch's single-tensor loop (`foreach` is accepted and ignored).

    `step` evaluates the closure, then for every parameter with a gradient g: creates its state when empty
    (`_init_state`), negates g when maximize, counts the step in the 0-d `state["step"]`, applies the weight
    decay (L2: g += weight_decay * p; AdamW-style with `decoupled_weight_decay`: p *= 1 - lr * weight_decay)
    where the optimizer has that option, and calls `_update` with the group's `_hparams`.
    """

    _SETSTATE_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False}
    _STATE_SCALARS: tuple = ("step",)   # state entries torch keeps as 0-d tensors

    def __init__(self, params, options: dict, *, foreach=None, maximize=False, differentiable=False, **flags):
        """`options` are the optimizer's own (already checked); `flags` its other implementation flags
        (capturable, or Adagrad's fused), kept in the defaults as torch does."""
        _check_impl_flags(type(self).__name__, foreach, flags.get("fused"), differentiable,
                          flags.get("capturable", False))
        super().__init__(params, dict(options, foreach=foreach, maximize=maximize, differentiable=differentiable,
                                      **flags))

    def __setstate__(self, state):
        super().__setstate__(state)
        _tensorize_state(self, self._STATE_SCALARS)

    def _init_state(self, p, g, group, st: dict) -> None:
        """Fills the empty state `st` of parameter p (gradient g, not negated) of `group`."""
        raise NotImplementedError

    def _hparams(self, group) -> tuple:
        """The group's options `_update` reads, read once per group."""
        return ()

    def _update(self, p, g, st: dict, lr, hp) -> None:
        """Updates p in place from g (negated and weight-decayed) and the state (step already counted)."""
        raise NotImplementedError

    def step(self, closure=None):
        """Performs one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        has_decay = "weight_decay" in self.defaults
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            weight_decay = group["weight_decay"] if has_decay else 0
            decoupled = group["decoupled_weight_decay"] if "decoupled_weight_decay" in self.defaults else False
            maximize = group["maximize"]
            hp = self._hparams(group)
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                st = self.state[p]
                if len(st) == 0:
                    self._init_state(p, g, group, st)
                if maximize:
                    g = -g
                st["step"].add_(1)
                if weight_decay != 0:
                    if decoupled:
                        p.mul_(1 - lr * weight_decay)
                    else:
                        g = g.add(p, alpha=weight_decay)
                self._update(p, g, st, lr, hp)
        return loss


class AdamLikeOptimizer(SingleTensorOptimizer):
    """The Adam family's state (`step`, `exp_avg` and the second moment `_SECOND_MOMENT`) and per-group
    (beta1, beta2, eps)."""

    _SECOND_MOMENT = "exp_avg_sq"

    def _init_state(self, p, g, group, st):
        st["step"] = _scalar_state(0.0)
        st["exp_avg"] = zeros_like(p)
        st[self._SECOND_MOMENT] = zeros_like(p)

    def _hparams(self, group):
        return _betas(group) + (group["eps"],)
