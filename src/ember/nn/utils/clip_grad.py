"""Gradient clipping: `clip_grad_norm_`, `clip_grad_value_` (and `get_total_norm`, `clip_grads_with_norm_`).

Same semantics as torch.nn.utils: the total norm is the norm of the per-gradient norms (as if all
gradients were one vector), the scale `max_norm / (total_norm + 1e-6)` is clamped to 1.0 and applied
in place to every gradient (so gradients are only ever scaled down), and the total norm is returned
as a 0-d tensor on the first gradient's device.
"""
from __future__ import annotations

import types
import warnings

from ..._tensor import Tensor
from ...autograd.grad_mode import state as _grad_state
from ...dispatch import OPS
from ...ops.creation import tensor as _tensor
from ...ops.optim import clip_grads_composite_, total_norm_composite

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]

_total_norm, _clip_grads_with_norm_ = OPS["_total_norm"].fn, OPS["_clip_grads_with_norm_"].fn
_norm, _stack, _sum = OPS["norm"].fn, OPS["stack"].fn, OPS["sum"].fn


class _no_grad:  # noqa: N801
    __slots__ = ("_prev",)

    def __enter__(self):
        self._prev = _grad_state.enabled
        _grad_state.enabled = False

    def __exit__(self, *exc):
        _grad_state.enabled = self._prev
        return False


def _check_foreach(foreach) -> None:
    if foreach not in (None, True, False):
        raise TypeError(f"foreach must be None or a bool, got {foreach!r}")


def _by_device(tensors) -> dict:
    """{device: its tensors}, in order (one device, the usual case, without hashing devices)."""
    first = tensors[0]._storage.device
    if all(t._storage.device is first for t in tensors):
        return {first: tensors}
    groups = {}
    for t in tensors:
        groups.setdefault(t._storage.device, []).append(t)
    return groups


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """The `norm_type`-norm of the given tensors viewed as one vector (a 0-d tensor on the first one's
    device): one `_total_norm` op per device (`foreach=False`: a norm op per tensor)."""
    _check_foreach(foreach)
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return _tensor(0.0)
    with _no_grad():
        if foreach is False:
            total = total_norm_composite(tensors, norm_type)
        else:
            groups = _by_device(tensors)
            if len(groups) == 1:
                total = _total_norm(tensors, norm_type)
            else:   # the norm of the devices' norms; for the 0-"norm" (a count) their sum
                first = tensors[0]._storage.device
                totals = _stack([_total_norm(ts, norm_type).to(first) for ts in groups.values()])
                total = _sum(totals) if norm_type == 0 else _norm(totals, norm_type)
    return _check_finite(total, norm_type, error_if_nonfinite)


def _check_finite(total, norm_type, error_if_nonfinite):
    if error_if_nonfinite:
        v = total.item()
        if v != v or v in (float("inf"), float("-inf")):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is "
                               "non-finite, so it cannot be clipped. To disable this error and scale the "
                               "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor, foreach=None) -> None:
    """Scales the gradients in place by `min(max_norm / (total_norm + 1e-6), 1)`: one
    `_clip_grads_with_norm_` op per device (`foreach=False`: a mul_ op per gradient)."""
    _check_foreach(foreach)
    parameters = [parameters] if isinstance(parameters, Tensor) else parameters
    grads = [p.grad for p in parameters if p.grad is not None]
    max_norm = float(max_norm)
    if not grads:
        return
    with _no_grad():
        if foreach is False:
            clip_grads_composite_(grads, max_norm, total_norm)
            return
        for dev, gs in _by_device(grads).items():
            total = total_norm if total_norm._storage.device is dev else total_norm.to(dev)
            _clip_grads_with_norm_(gs, max_norm, total)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Clips the gradients of `parameters` in place so that their total norm is at most `max_norm`.

    Args:
        parameters: a tensor or an iterable of tensors whose `.grad` is clipped.
        max_norm: the largest allowed total norm.
        norm_type: the p of the p-norm (float('inf') for the max norm).
        error_if_nonfinite: raise RuntimeError if the total norm is nan or inf.
        foreach: False computes the norm and the scaling op by op, per gradient; None or True take the
            multi-tensor ops (on CUDA, contiguous float32 gradients then cost a launch per 8).
    Returns:
        the total norm of the gradients before clipping (a 0-d tensor).
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)
        if is_generator and not parameters:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=2)
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """Deprecated alias of `clip_grad_norm_`."""
    warnings.warn("`ember.nn.utils.clip_grad_norm` is now deprecated in favor of `ember.nn.utils.clip_grad_norm_`.",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamps every gradient in place to [-clip_value, clip_value]."""
    _check_foreach(foreach)
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    clip_value = float(clip_value)
    with _no_grad():
        for p in parameters:
            g = p.grad
            if g is not None:
                g.clamp_(min=-clip_value, max=clip_value)
