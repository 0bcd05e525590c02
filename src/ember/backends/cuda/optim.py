"""Fused optimizer work on CUDA: Adam/AdamW in one kernel launch per parameter (instead of the
seven elementwise ops of the single-tensor loop; `ember.optim.Adam`/`AdamW` use it for CUDA
parameters unless `fused=False`), and gradient-norm clipping in one launch per gradient plus one
(`clip_grad_norm_` uses it when all gradients are on one CUDA device). Nothing here synchronises
with the host, so all of it can be captured in a CUDA graph."""
from __future__ import annotations

from ...core.dtype import float32 as _F32
from .compiler import SIG, LazyKernels, run
from .elementwise import _empty

BLOCK = 1024
SUMSQ_PROGRAMS = 32     # programs per tensor for the sum of squares (partials: 32 per tensor)
K = LazyKernels("optim")


def adam_step_(p, g, m, v, vmax, step, lr, beta1: float, beta2: float, eps: float, weight_decay: float,
               decoupled: bool, maximize: bool) -> None:
    """Updates p, m, v (and vmax for amsgrad) in place. `step`: the step count, already incremented:
    a Python number (the bias corrections are computed here, in float64) or a 0-d float tensor on
    p's device (capturable: they are computed in the kernel, in float32, as PyTorch's capturable Adam).
    `lr`: a number, or a 0-d float tensor on p's device read by the kernel (capturable with a scheduler)."""
    n = p.numel()
    for name, t in (("grad", g), ("exp_avg", m), ("exp_avg_sq", v), ("max_exp_avg_sq", vmax)):
        if t is not None and (t._shape != p._shape or not t.is_contiguous()):
            raise RuntimeError(f"fused Adam: {name} must be contiguous with the parameter's shape {list(p._shape)}, "
                               f"got shape {list(t._shape)} and strides {list(t._stride)}")
    if not p.is_contiguous():
        raise RuntimeError(f"fused Adam: the parameter must be contiguous, got strides {list(p._stride)}")
    if n == 0:
        return
    device_step = not isinstance(step, (int, float))
    lr_tensor = not isinstance(lr, (int, float))
    if device_step or lr_tensor:
        if not device_step:
            raise ValueError("fused Adam: a tensor lr needs the step count as a tensor too (capturable=True)")
        step_size = bc2_sqrt = 1.0
    else:
        step_size = lr / (1 - beta1 ** step)
        bc2_sqrt = (1 - beta2 ** step) ** 0.5
    vm = vmax if vmax is not None else v
    st = step if device_step else p
    lt = lr if lr_tensor else p
    args = [("p_ptr", p, "*" + SIG[p._dtype.name]), ("g_ptr", g, "*" + SIG[g._dtype.name]),
            ("m_ptr", m, "*" + SIG[m._dtype.name]), ("v_ptr", v, "*" + SIG[v._dtype.name]),
            ("vmax_ptr", vm, "*" + SIG[vm._dtype.name]), ("step_ptr", st, "*" + SIG[st._dtype.name]),
            ("lr_ptr", lt, "*" + SIG[lt._dtype.name]), ("n", n, "i64"), ("lr", 0.0 if lr_tensor else float(lr), "fp32"), ("beta1", float(beta1), "fp32"),
            ("beta2", float(beta2), "fp32"), ("eps", float(eps), "fp32"), ("weight_decay", float(weight_decay), "fp32"),
            ("step_size", float(step_size), "fp32"), ("bc2_sqrt", float(bc2_sqrt), "fp32")]
    consts = {"WD": 0 if weight_decay == 0 else (1 if decoupled else 2), "AMSGRAD": int(vmax is not None), "MAXIMIZE": int(maximize),
              "DEVICE_STEP": int(device_step), "LR_TENSOR": int(lr_tensor),
              "BLOCK": BLOCK}
    run(K.adam_kernel, ((n + BLOCK - 1) // BLOCK,), args, consts, p._storage.device.index or 0)
    for t in (p, m, v, vmax):
        if t is not None:
            t._storage.version += 1


def fused_clip_ok(tensors) -> bool:
    """True when the fused norm/clip kernels apply: contiguous float32 tensors on one CUDA device
    (other dtypes keep PyTorch's result dtype through the composite path)."""
    dev = tensors[0]._storage.device
    return dev.type == "cuda" and all(t._storage.device is dev and t._dtype is _F32 and t.is_contiguous()
                                      for t in tensors)


def total_norm2(tensors):
    """sqrt(sum of x^2 over all `tensors`) as a 0-d float32 tensor on their device, deterministic:
    one partial-sums launch per tensor and one final launch."""
    dev = tensors[0]._storage.device
    index = dev.index or 0
    part = _empty((len(tensors) * SUMSQ_PROGRAMS,), _F32, dev)
    for slot, t in enumerate(tensors):
        run(K.sumsq_partial_kernel, (SUMSQ_PROGRAMS,), [("x_ptr", t, "*" + SIG[t._dtype.name]),
            ("part_ptr", part, "*fp32"), ("n", t.numel(), "i64"), ("slot", slot, "i64")],
            {"PROGRAMS": SUMSQ_PROGRAMS, "BLOCK": BLOCK}, index)
    out = _empty((), _F32, dev)
    run(K.sqrt_sum_kernel, (1,), [("part_ptr", part, "*fp32"), ("out_ptr", out, "*fp32"),
                                  ("n", part.numel(), "i64")], {"BLOCK": BLOCK}, index)
    return out


def clip_scale_(g, total, max_norm: float) -> None:
    """g *= min(max_norm / (total + 1e-6), 1) in place (total: a 0-d tensor on g's device)."""
    n = g.numel()
    if n:
        run(K.clip_scale_kernel, ((n + BLOCK - 1) // BLOCK,),
            [("g_ptr", g, "*" + SIG[g._dtype.name]), ("total_ptr", total, "*" + SIG[total._dtype.name]),
             ("n", n, "i64"), ("max_norm", float(max_norm), "fp32")], {"BLOCK": BLOCK},
            g._storage.device.index or 0)
        g._storage.version += 1
