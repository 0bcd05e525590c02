"""Multi-tensor optimizer ops: what `ember.optim.SGD`/`Adam`/`AdamW` and `ember.nn.utils.clip_grad_norm_`
call, so that neither asks which device it is on; each backend decides how to batch the work (on
CUDA: one launch per 8 tensors).

- `_fused_adam_` / `_fused_adamw_` (as torch's): one Adam / AdamW step of every parameter in place,
  with PyTorch's single-tensor formulas (see `ember.optim.Adam`), after the step counts were
  incremented (`_foreach_add_`). `state_steps[i]` is params[i]'s count, a one-element tensor on the
  parameters' device (read there: capturable) or on the CPU (read by the host); `lr` is a number or a
  one-element tensor. With `grad_scale`, the grads are divided by it first (and written back
  unscaled); where `found_inf` holds 1.0 nothing is written, as in torch.
- `_fused_sgd_` (as torch's): one SGD step of every parameter in place, with PyTorch's formulas (see
  `ember.optim.SGD`), computed in float32 (float64 for float64 parameters). `momentum_buffer_list` holds
  a buffer per parameter, or none when momentum == 0; with `is_first_step` each buffer is set to its
  (weight-decayed) gradient; `lr`, `grad_scale` and `found_inf` as for Adam.
- `_foreach_add_` (as torch's `_foreach_add_.Scalar`): `t += scalar` for every tensor.
- `_total_norm`: the `norm_type`-norm of the tensors taken as one vector, which is the norm of their
  norms (`torch.nn.utils.get_total_norm`); a 0-d tensor of the promoted dtype.
- `_clip_grads_with_norm_`: `g *= min(max_norm / (total_norm + 1e-6), 1)` for every gradient, the
  coefficient computed in total_norm's dtype (`torch.nn.utils.clip_grads_with_norm_`).

The in-place ops return nothing (`-> ()`, as torch's) and bump the versions of what they write. Their
tensor lists are not marked `(a!)`: the dispatcher writes versions of single tensors only. The step
counts are typed `Any`, not `Tensor[]`: counts kept on the host next to parameters on a device are
the normal case, so they take no part in choosing the kernel (the meta checks them).
"""
from __future__ import annotations

import math

from .._tensor import Tensor
from ..core.device import CPU
from ..core.dtype import promote_types, result_type
from ..dispatch import OPS, defop
from .elementwise import inplace_check
from .reduction import _fmt_p

_ADAM_ARGS = ("Tensor[] self, Tensor[] grads, Tensor[] exp_avgs, Tensor[] exp_avg_sqs, Tensor[] max_exp_avg_sqs, "
              "Any state_steps, *, Tensor|Scalar lr, float beta1, float beta2, float weight_decay, float eps, "
              "bool amsgrad, bool maximize, Tensor? grad_scale=None, Tensor? found_inf=None")


def _same_device_error(name, what, t, dev):
    raise RuntimeError(f"{name}: Expected all tensors to be on the same device, but found {what} on {t.device} "
                       f"and the parameters on {dev}")


def _one_element(name, what, t, dev, host_ok):
    """A one-element tensor on `dev` (or on the CPU when `host_ok`): a step count, lr, grad_scale, found_inf."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected {what} to be a Tensor, got {type(t).__name__}")
    n = t.numel()
    if n != 1:
        raise RuntimeError(f"{name}: {what}: a Tensor with {n} elements cannot be converted to Scalar")
    d = t._storage.device
    if d is not dev and not (host_ok and d is CPU):
        _same_device_error(name, what, t, dev)


def _first_mismatch(name, what, ts, self, dev):
    """Raises for the first tensor of `ts` whose dtype, shape or device differs from its parameter's."""
    for i, (p, t) in enumerate(zip(self, ts)):
        if t._dtype is not p._dtype:
            raise RuntimeError(f"{name}: expected scalar type {p._dtype} but found {t._dtype} ({what}[{i}])")
        if t._shape != p._shape:
            raise RuntimeError(f"{name}: expected {what}[{i}] of the parameter's shape {list(p._shape)}, got "
                               f"{list(t._shape)}")
        if t._storage.device is not dev:
            _same_device_error(name, f"{what}[{i}]", t, dev)


def _check_lengths(name, n, lists) -> None:
    for what, ts in lists:
        if len(ts) != n:
            raise RuntimeError(f"{name}: expected {what} to hold one tensor per parameter ({n}), got {len(ts)}")


def _check_like_params(name, self, states):
    """The parameters: floating point, on one device (returned); each (what, tensors) list of `states`: one
    tensor per parameter of its shape, dtype and device. Each list is compared at once with the
    parameters' (shape, dtype, device) and searched only when they differ: this runs on every step."""
    dev = self[0]._storage.device
    for dt in {p._dtype for p in self}:
        if not dt.is_floating_point:
            raise NotImplementedError(f'"{name}" not implemented for {dt}: the parameters must be floating point')
    sig = [(p._shape, p._dtype, p._storage.device) for p in self]
    for i, (_, _, d) in enumerate(sig):
        if d is not dev:
            _same_device_error(name, f"self[{i}]", self[i], dev)
    for what, ts in states:
        if [(t._shape, t._dtype, t._storage.device) for t in ts] != sig:
            _first_mismatch(name, what, ts, self, dev)
    return dev


def _check_step_scalars(name, dev, lr, grad_scale, found_inf) -> None:
    """lr: a number or a one-element tensor on `dev` or the CPU; grad_scale, found_inf: None or one-element
    float32 tensors on `dev`."""
    if isinstance(lr, Tensor):
        _one_element(name, "lr", lr, dev, True)
    for what, t in (("grad_scale", grad_scale), ("found_inf", found_inf)):
        if t is not None:
            _one_element(name, what, t, dev, False)
            if t._dtype.name != "float32":
                raise RuntimeError(f"{name}: expected {what} of dtype float32, got {t._dtype}")


def check_fused_adam(name, self, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, lr, amsgrad,
                     grad_scale, found_inf) -> None:
    """torch's checks of `_fused_adam(w)_`, and the ones it leaves out (shapes, devices)."""
    states = [("grads", grads), ("exp_avgs", exp_avgs), ("exp_avg_sqs", exp_avg_sqs)]
    if amsgrad:
        states.append(("max_exp_avg_sqs", max_exp_avg_sqs))
    elif len(max_exp_avg_sqs):
        raise RuntimeError(f"{name}: expected max_exp_avg_sqs to be empty with amsgrad=False, got "
                           f"{len(max_exp_avg_sqs)} tensors")
    _check_lengths(name, len(self), states + [("state_steps", state_steps)])
    dev = _check_like_params(name, self, states)
    for i, s in enumerate(state_steps):     # 0-d tensors on the parameters' device or on the CPU
        if s.__class__ is not Tensor or s._shape or (s._storage.device is not dev and s._storage.device is not CPU):
            _one_element(name, f"state_steps[{i}]", s, dev, True)
    _check_step_scalars(name, dev, lr, grad_scale, found_inf)


def check_fused_sgd(self, grads, momentum_buffer_list, momentum, lr, grad_scale, found_inf) -> None:
    """torch's checks of `_fused_sgd_` (a momentum buffer per parameter, none without momentum), and the
    ones it leaves out (shapes, devices)."""
    name = "_fused_sgd_"
    states = [("grads", grads)]
    if momentum != 0:
        states.append(("momentum_buffer_list", momentum_buffer_list))
    elif len(momentum_buffer_list):
        raise RuntimeError(f"{name}: expected momentum_buffer_list to be empty with momentum=0, got "
                           f"{len(momentum_buffer_list)} tensors")
    _check_lengths(name, len(self), states)
    dev = _check_like_params(name, self, states)
    _check_step_scalars(name, dev, lr, grad_scale, found_inf)


def _adam_meta(name):
    def meta(self, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, lr, beta1, beta2, weight_decay,
             eps, amsgrad, maximize, grad_scale=None, found_inf=None):
        check_fused_adam(name, self, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, lr, amsgrad,
                         grad_scale, found_inf)
    return meta


def _fused_sgd__meta(self, grads, momentum_buffer_list, weight_decay, momentum, lr, dampening, nesterov, maximize,
                     is_first_step, grad_scale=None, found_inf=None):
    check_fused_sgd(self, grads, momentum_buffer_list, momentum, lr, grad_scale, found_inf)


def _foreach_add__meta(self, scalar):
    seen = set()
    for t in self:
        dt = t._dtype
        if dt not in seen:
            seen.add(dt)
            inplace_check("_foreach_add_", t, result_type(t, scalar))


def _check_one_device(name, tensors):
    dev = tensors[0]._storage.device
    for t in tensors:
        if t._storage.device is not dev:
            raise RuntimeError(f"{name}: Expected all tensors to be on the same device, but found at least two "
                               f"devices, {dev} and {t.device} (tensor {tensors.index(t)})")
    return dev


def _total_norm_meta(tensors, norm_type=2.0):
    p = float(norm_type)
    no_identity = p < 0 or p == math.inf
    dt = last = None
    for t in tensors:
        d = t._dtype
        if d is not last:       # the usual case: every tensor of one dtype, checked once
            if not d.is_floating_point:
                raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. "
                                   f"Got {d}")
            dt = d if dt is None else promote_types(dt, d)
            last = d
        if no_identity and 0 in t._shape:
            raise RuntimeError(f"_total_norm: cannot compute the {_fmt_p(p)} norm on an empty tensor because the "
                               f"operation does not have an identity")
    _check_one_device("_total_norm", tensors)
    return (), dt


def _clip_grads_with_norm__meta(grads, max_norm, total_norm):
    name = "_clip_grads_with_norm_"
    if total_norm._shape:
        raise RuntimeError(f"{name}: expected total_norm to be a 0-dim tensor, got shape {list(total_norm._shape)}")
    cdt = total_norm._dtype
    if not cdt.is_floating_point:
        raise RuntimeError(f"{name}: expected a floating point total_norm, got {cdt}")
    dev = _check_one_device(name, grads)
    if total_norm._storage.device is not dev and total_norm._storage.device is not CPU:
        _same_device_error(name, "total_norm", total_norm, dev)
    last = None
    for g in grads:
        if g._dtype is not last:
            last = g._dtype
            if not last.is_floating_point:
                inplace_check(name, g, cdt)


defop(f"_fused_adam_({_ADAM_ARGS}) -> ()", meta=_adam_meta("_fused_adam_"))
defop(f"_fused_adamw_({_ADAM_ARGS}) -> ()", meta=_adam_meta("_fused_adamw_"))
defop("_fused_sgd_(Tensor[] self, Tensor[] grads, Tensor[] momentum_buffer_list, *, float weight_decay, "
      "float momentum, Tensor|Scalar lr, float dampening, bool nesterov, bool maximize, bool is_first_step, "
      "Tensor? grad_scale=None, Tensor? found_inf=None) -> ()", meta=_fused_sgd__meta)
defop("_foreach_add_(Tensor[] self, Scalar scalar) -> ()", meta=_foreach_add__meta)
defop("_total_norm(Tensor[] tensors, float norm_type=2.0) -> Tensor", meta=_total_norm_meta)
defop("_clip_grads_with_norm_(Tensor[] grads, float max_norm, Tensor total_norm) -> ()",
      meta=_clip_grads_with_norm__meta)

_norm, _stack, _clamp = OPS["norm"].fn, OPS["stack"].fn, OPS["clamp"].fn


# ---- the same, by single-tensor ops: clip_grad_norm_(foreach=False), and a backend's general case ----

def total_norm_composite(tensors, norm_type: float = 2.0) -> Tensor:
    """The norm of the per-tensor norms (each moved to the first tensor's device), as torch's
    `get_total_norm(foreach=False)`."""
    first = tensors[0]._storage.device
    norms = [_norm(t, norm_type) for t in tensors]
    if len(norms) == 1:
        return _norm(norms[0].to(first).reshape(1), norm_type)
    return _norm(_stack([n if n._storage.device is first else n.to(first) for n in norms]), norm_type)


def clip_grads_composite_(grads, max_norm: float, total_norm: Tensor) -> None:
    """g *= clamp(max_norm / (total_norm + 1e-6), max=1) for every g (the coefficient moved to each
    gradient's device), as torch's `clip_grads_with_norm_(foreach=False)`."""
    coef = _clamp(max_norm / (total_norm + 1e-6), max=1.0)
    per_device = {coef._storage.device: coef}
    for g in grads:
        dev = g._storage.device
        c = per_device.get(dev)
        if c is None:
            c = per_device[dev] = coef.to(dev)
        g.mul_(c)
