"""Fused optimizer work on CUDA, multi-tensor: Adam/AdamW in one kernel launch per 8 parameters
(instead of the seven elementwise ops per parameter of the single-tensor loop; `ember.optim.Adam`/
`AdamW` use it for CUDA parameters unless `fused=False`), and gradient-norm clipping in one launch
per 8 gradients plus one for the norm and one per 8 gradients for the scaling (`clip_grad_norm_` uses
it when all gradients are contiguous float32 on one CUDA device). A launch takes each of its tensors'
pointers and sizes as kernel arguments (SLOTS of them, see kernels/optim.py): nothing is copied
from the host and nothing synchronises with it, so all of it can be captured in a CUDA graph."""
from __future__ import annotations

from ...core.dtype import float32 as _F32
from .compiler import SIG, LazyKernels, run
from .elementwise import _empty

BLOCK = 1024
SLOTS = 8               # tensors per launch (the kernels' argument lists are written out for 8)
SUMSQ_PROGRAMS = 32     # programs per tensor for the sum of squares (partials: 32 per tensor)
K = LazyKernels("optim")


def _ptr(name, t):
    return (name, t, "*" + SIG[t._dtype.name])


def _chunks(items):
    return [items[k:k + SLOTS] for k in range(0, len(items), SLOTS)]


def adam_multi_step_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1: float, beta2: float,
                     eps: float, weight_decay: float, decoupled: bool, maximize: bool) -> None:
    """Updates every params[i], exp_avgs[i], exp_avg_sqs[i] (and max_exp_avg_sqs[i] for amsgrad; pass
    None otherwise) in place, with grads[i]. steps[i]: params[i]'s step count, already incremented:
    all Python numbers (the bias corrections are computed here, in float64) or all 0-d float tensors on
    the parameters' device (capturable: they are computed in the kernel, in float32, as PyTorch's
    capturable Adam). `lr`: a number, or a 0-d float tensor on the parameters' device read by the
    kernel (capturable with a scheduler). One launch per SLOTS non-empty parameters of one device and
    dtype signature (parameter, grad, moments and step dtypes), in the given order."""
    amsgrad = max_exp_avg_sqs is not None
    device_step = bool(steps) and not isinstance(steps[0], (int, float))
    lr_tensor = not isinstance(lr, (int, float))
    if lr_tensor and not device_step:
        raise ValueError("fused Adam: a tensor lr needs the step count as a tensor too (capturable=True)")
    groups = {}
    for i, p in enumerate(params):
        vmax = max_exp_avg_sqs[i] if amsgrad else None
        for name, t in (("grad", grads[i]), ("exp_avg", exp_avgs[i]), ("exp_avg_sq", exp_avg_sqs[i]),
                        ("max_exp_avg_sq", vmax)):
            if t is not None and (t._shape != p._shape or not t.is_contiguous()):
                raise RuntimeError(f"fused Adam: {name} must be contiguous with the parameter's shape "
                                   f"{list(p._shape)}, got shape {list(t._shape)} and strides {list(t._stride)}")
        if not p.is_contiguous():
            raise RuntimeError(f"fused Adam: the parameter must be contiguous, got strides {list(p._stride)}")
        if 0 in p._shape:
            continue
        key = (p._storage.device, p._dtype, grads[i]._dtype, exp_avgs[i]._dtype, exp_avg_sqs[i]._dtype,
               vmax._dtype if amsgrad else None, steps[i]._dtype if device_step else None)
        groups.setdefault(key, []).append(i)
    consts = {"WD": 0 if weight_decay == 0 else (1 if decoupled else 2), "AMSGRAD": int(amsgrad),
              "MAXIMIZE": int(maximize), "DEVICE_STEP": int(device_step), "LR_TENSOR": int(lr_tensor), "BLOCK": BLOCK}
    for idx in groups.values():
        for chunk in _chunks(idx):
            first = params[chunk[0]]
            args = [_ptr("lr_ptr", lr if lr_tensor else first), ("lr", 0.0 if lr_tensor else float(lr), "fp32"),
                    ("beta1", float(beta1), "fp32"), ("beta2", float(beta2), "fp32"), ("eps", float(eps), "fp32"),
                    ("weight_decay", float(weight_decay), "fp32")]
            blocks = 0
            for s in range(SLOTS):
                used = s < len(chunk)
                i = chunk[s] if used else chunk[0]      # an unused slot: the first slot's tensors, n = 0
                p = params[i]
                n = p.numel() if used else 0
                blocks = max(blocks, (n + BLOCK - 1) // BLOCK)
                if device_step:
                    step_size = bc2_sqrt = 1.0
                else:
                    step_size = lr / (1 - beta1 ** steps[i])
                    bc2_sqrt = (1 - beta2 ** steps[i]) ** 0.5
                args += [_ptr(f"p{s}", p), _ptr(f"g{s}", grads[i]), _ptr(f"m{s}", exp_avgs[i]),
                         _ptr(f"v{s}", exp_avg_sqs[i]), _ptr(f"vmax{s}", max_exp_avg_sqs[i] if amsgrad else p),
                         _ptr(f"step{s}", steps[i] if device_step else p), (f"n{s}", n, "i64"),
                         (f"step_size{s}", float(step_size), "fp32"), (f"bc2_sqrt{s}", float(bc2_sqrt), "fp32")]
            run(K.adam_kernel, (blocks, len(chunk)), args, consts, first._storage.device.index or 0)
            for i in chunk:
                params[i]._storage.version += 1
                exp_avgs[i]._storage.version += 1
                exp_avg_sqs[i]._storage.version += 1
                if amsgrad:
                    max_exp_avg_sqs[i]._storage.version += 1


def increment_steps_(steps) -> None:
    """steps[i] += 1 for 0-d tensors on one CUDA device: one launch per SLOTS steps of one dtype."""
    groups = {}
    for t in steps:
        groups.setdefault((t._storage.device, t._dtype), []).append(t)
    for ts in groups.values():
        for chunk in _chunks(ts):
            args = [_ptr(f"s{s}", chunk[s] if s < len(chunk) else chunk[0]) for s in range(SLOTS)]
            run(K.add_one_kernel, (len(chunk),), args, {}, chunk[0]._storage.device.index or 0)
            for t in chunk:
                t._storage.version += 1


def fused_clip_ok(tensors) -> bool:
    """True when the fused norm/clip kernels apply: contiguous float32 tensors on one CUDA device
    (other dtypes keep PyTorch's result dtype through the composite path)."""
    dev = tensors[0]._storage.device
    return dev.type == "cuda" and all(t._storage.device is dev and t._dtype is _F32 and t.is_contiguous()
                                      for t in tensors)


def _slot_args(prefix, chunk):
    """(tensor, numel) arguments of SLOTS slots; unused slots get the first tensor and n = 0."""
    args = []
    for s in range(SLOTS):
        t = chunk[s] if s < len(chunk) else chunk[0]
        args += [_ptr(f"{prefix}{s}", t), (f"n{s}", t.numel() if s < len(chunk) else 0, "i64")]
    return args


def total_norm2(tensors):
    """sqrt(sum of x^2 over all `tensors`) as a 0-d float32 tensor on their device, deterministic:
    one partial-sums launch per SLOTS tensors (SUMSQ_PROGRAMS partials per tensor, in the tensors'
    order) and one final launch."""
    dev = tensors[0]._storage.device
    index = dev.index or 0
    part = _empty((len(tensors) * SUMSQ_PROGRAMS,), _F32, dev)
    for k, chunk in enumerate(_chunks(tensors)):
        run(K.sumsq_partial_kernel, (SUMSQ_PROGRAMS, len(chunk)),
            [("part_ptr", part, "*fp32"), ("base", k * SLOTS, "i64")] + _slot_args("x", chunk),
            {"PROGRAMS": SUMSQ_PROGRAMS, "BLOCK": BLOCK}, index)
    out = _empty((), _F32, dev)
    run(K.sqrt_sum_kernel, (1,), [("part_ptr", part, "*fp32"), ("out_ptr", out, "*fp32"),
                                  ("n", part.numel(), "i64")], {"BLOCK": BLOCK}, index)
    return out


def clip_scale_(grads, total, max_norm: float) -> None:
    """g *= min(max_norm / (total + 1e-6), 1) in place for every g in `grads` (tensors of one dtype
    on one device; total: a 0-d tensor there): one launch per SLOTS non-empty gradients."""
    grads = [g for g in grads if 0 not in g._shape]
    for chunk in _chunks(grads):
        blocks = max((g.numel() + BLOCK - 1) // BLOCK for g in chunk)
        run(K.clip_scale_kernel, (blocks, len(chunk)),
            [_ptr("total_ptr", total), ("max_norm", float(max_norm), "fp32")] + _slot_args("g", chunk),
            {"BLOCK": BLOCK}, chunk[0]._storage.device.index or 0)
        for g in chunk:
            g._storage.version += 1
