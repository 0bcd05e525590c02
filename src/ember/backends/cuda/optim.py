"""CUDA kernels of the multi-tensor optimizer ops (ember.ops.optim): Adam/AdamW in one launch per 8
parameters (`_fused_adam_` / `_fused_adamw_`, instead of the seven elementwise ops per parameter of
the single-tensor loop), SGD likewise (`_fused_sgd_`, instead of up to three per parameter), step
counts in one launch per 8 (`_foreach_add_`), and gradient-norm clipping in one launch per 8 gradients
plus one for the norm (`_total_norm`) and one per 8 gradients for the scaling (`_clip_grads_with_norm_`)
when all gradients are contiguous float32 on one device; other norms and dtypes take the single-tensor
ops (`ops.optim`'s composites), which keep PyTorch's result dtypes. A launch takes each of its tensors'
pointers and sizes as kernel arguments (SLOTS of them, see kernels/optim.py): nothing is copied from
the host and nothing synchronises with it, so all of it can be captured in a CUDA graph."""
from __future__ import annotations

from ..._tensor import Tensor
from ...core.device import CPU
from ...core.dtype import float32 as _F32, float64 as _F64
from ...core.layout import is_one_block
from ...core.shape import contiguous_strides
from ...dispatch import OPS
from ...ops.optim import clip_grads_composite_, total_norm_composite
from .compiler import LazyKernels, pointer_arg, run
from .memory import new_tensor
from .opcodes import Compute, WeightDecay

BLOCK = 1024
SLOTS = 8               # tensors per launch (the kernels' argument lists are written out for 8)
SUMSQ_PROGRAMS = 32     # programs per tensor for the sum of squares (partials: 32 per tensor)
K = LazyKernels("optim")


def _chunks(items):
    return [items[k:k + SLOTS] for k in range(0, len(items), SLOTS)]


def _step_args(first, lr, lr_tensor: bool, grad_scale, found_inf, scalar: str) -> list:
    """The leading arguments of the fused optimizer kernels: lr (a device tensor, or a number), grad_scale and
    found_inf (the first parameter stands in for what is absent)."""
    return [pointer_arg("lr_ptr", lr if lr_tensor else first),
            pointer_arg("grad_scale_ptr", first if grad_scale is None else grad_scale),
            pointer_arg("found_inf_ptr", first if found_inf is None else found_inf),
            ("lr", 0.0 if lr_tensor else float(lr), scalar)]


def _slot_items(chunk, params):
    """(slot, parameter index, parameter, element count) for each of a launch's SLOTS; an unused slot takes the
    first slot's tensors with n = 0."""
    for s in range(SLOTS):
        used = s < len(chunk)
        i = chunk[s] if used else chunk[0]
        yield s, i, params[i], (params[i].numel() if used else 0)


def _bump(*lists):
    for ts in lists:
        for t in ts:
            t._storage.version += 1


def adam_multi_step_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1: float, beta2: float,
                     eps: float, weight_decay: float, decoupled: bool, maximize: bool, grad_scale=None,
                     found_inf=None) -> None:
    """Updates every params[i], exp_avgs[i], exp_avg_sqs[i] (and max_exp_avg_sqs[i] for amsgrad; pass
    None otherwise) in place, with grads[i] (all contiguous; the other rules checked by the op's meta).
    steps[i]: params[i]'s step count, already incremented: all Python numbers (the bias corrections
    are computed here, in float64) or all one-element float tensors on the parameters' device (they
    are computed in the kernel, in float32, as PyTorch's capturable Adam). `lr`: a number, or with
    tensor steps a one-element float tensor on the parameters' device read by the kernel (capturable
    with a scheduler). `grad_scale` / `found_inf`: None or one-element float32 tensors there (the
    grads are divided by grad_scale and written back so; found_inf == 1 skips the step). One launch
    per SLOTS non-empty parameters (all on one device) of one dtype signature (parameter, grad, moments
    and step dtypes), in the given order."""
    amsgrad = max_exp_avg_sqs is not None
    device_step = bool(steps) and isinstance(steps[0], Tensor)
    lr_tensor = isinstance(lr, Tensor)
    if lr_tensor and not device_step:
        raise ValueError("fused Adam: a tensor lr needs the step count as a tensor too (capturable=True)")
    groups = {}
    for i, p in enumerate(params):
        if 0 in p._shape:
            continue
        vmax = max_exp_avg_sqs[i] if amsgrad else None
        key = (p._dtype, grads[i]._dtype, exp_avgs[i]._dtype, exp_avg_sqs[i]._dtype,    # one device (the meta)
               vmax._dtype if amsgrad else None, steps[i]._dtype if device_step else None)
        groups.setdefault(key, []).append(i)
    wd = WeightDecay.NONE if weight_decay == 0 else WeightDecay.DECOUPLED if decoupled else WeightDecay.L2
    consts = {"WD": wd, "AMSGRAD": int(amsgrad),
              "MAXIMIZE": int(maximize), "DEVICE_STEP": int(device_step), "LR_TENSOR": int(lr_tensor),
              "GRAD_SCALE": int(grad_scale is not None), "FOUND_INF": int(found_inf is not None), "BLOCK": BLOCK}
    for idx in groups.values():
        for chunk in _chunks(idx):
            first = params[chunk[0]]
            args = _step_args(first, lr, lr_tensor, grad_scale, found_inf, "fp32") + [
                    ("beta1", float(beta1), "fp32"), ("beta2", float(beta2), "fp32"), ("eps", float(eps), "fp32"),
                    ("weight_decay", float(weight_decay), "fp32")]
            blocks = 0
            for s, i, p, n in _slot_items(chunk, params):
                blocks = max(blocks, (n + BLOCK - 1) // BLOCK)
                if device_step:
                    step_size = bc2_sqrt = 1.0
                else:
                    step_size = lr / (1 - beta1 ** steps[i])
                    bc2_sqrt = (1 - beta2 ** steps[i]) ** 0.5
                args += [pointer_arg(f"p{s}", p), pointer_arg(f"g{s}", grads[i]), pointer_arg(f"m{s}", exp_avgs[i]),
                         pointer_arg(f"v{s}", exp_avg_sqs[i]),
                         pointer_arg(f"vmax{s}", max_exp_avg_sqs[i] if amsgrad else p),
                         pointer_arg(f"step{s}", steps[i] if device_step else p), (f"n{s}", n, "i64"),
                         (f"step_size{s}", float(step_size), "fp32"), (f"bc2_sqrt{s}", float(bc2_sqrt), "fp32")]
            run(K.adam_kernel, (blocks, len(chunk)), args, consts, first._storage.device.index or 0)
    _bump(params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs or (), grads if grad_scale is not None else ())


def sgd_multi_step_(params, grads, bufs, lr, weight_decay: float, momentum: float, dampening: float,
                    nesterov: bool, maximize: bool, is_first_step: bool, grad_scale=None, found_inf=None) -> None:
    """Updates every params[i] (and bufs[i], the momentum buffers; None when momentum == 0) in place with
    grads[i] (all contiguous; the other rules checked by the op's meta), PyTorch's SGD formulas computed
    in float32 (float64 for float64 parameters). `lr`: a number or a one-element tensor on the parameters'
    device, read by the kernel (capturable with a scheduler). `grad_scale` / `found_inf` as for
    `adam_multi_step_`. One launch per SLOTS non-empty parameters (all on one device) of one dtype (their
    grads and buffers have it too: the meta), in the given order."""
    lr_tensor = isinstance(lr, Tensor)
    groups = {}
    for i, p in enumerate(params):
        if 0 not in p._shape:
            groups.setdefault(p._dtype, []).append(i)
    consts = {"WEIGHT_DECAY": int(weight_decay != 0), "MOMENTUM": int(bufs is not None), "NESTEROV": int(nesterov),
              "MAXIMIZE": int(maximize), "LR_TENSOR": int(lr_tensor),
              "GRAD_SCALE": int(grad_scale is not None), "FOUND_INF": int(found_inf is not None), "BLOCK": BLOCK}
    for dtype, idx in groups.items():
        f64 = dtype is _F64
        scalar = "fp64" if f64 else "fp32"     # fp64 scalars would promote float32 arithmetic to float64
        ck = dict(consts, CK=Compute.F64 if f64 else Compute.F32)
        for chunk in _chunks(idx):
            first = params[chunk[0]]
            args = _step_args(first, lr, lr_tensor, grad_scale, found_inf, scalar) + [
                    ("weight_decay", float(weight_decay), scalar),
                    ("momentum", float(momentum), scalar), ("one_minus_dampening", 1.0 - dampening, scalar),
                    ("first_step", float(is_first_step), "fp32")]
            blocks = 0
            for s, i, p, n in _slot_items(chunk, params):
                blocks = max(blocks, (n + BLOCK - 1) // BLOCK)
                args += [pointer_arg(f"p{s}", p), pointer_arg(f"g{s}", grads[i]),
                         pointer_arg(f"buf{s}", p if bufs is None else bufs[i]), (f"n{s}", n, "i64")]
            run(K.sgd_kernel, (blocks, len(chunk)), args, ck, first._storage.device.index or 0)
    _bump(params, bufs or (), grads if grad_scale is not None else ())


def _same_layout(p, t) -> bool:
    st = t._stride
    return st == p._stride or (st == contiguous_strides(t._shape) and p.is_contiguous())


def _dense_args(op, self, states, grads):
    """The parameters and each (name, tensors) list of `states` are updated in place, each as one dense block in
    its memory order: a parameter must be dense (row-major, transposed, channels-last: a leaf's .grad and the
    optimizers' state take its layout, as in torch), and each state laid out as its parameter. Returns `grads`
    with those laid out otherwise replaced by copies in their parameter's layout, and the (index, original)
    pairs of those."""
    strides = [p._stride for p in self]
    for p in self:
        if not is_one_block(p):
            raise RuntimeError(f"{op} on CUDA: the parameter must be dense (it is updated in place as one block), "
                               f"got shape {list(p._shape)} and strides {list(p._stride)}")
    for name, ts in states:
        if ts and [t._stride for t in ts] != strides:
            for p, t in zip(self, ts):
                if not _same_layout(p, t):
                    raise RuntimeError(f"{op} on CUDA: the {name} must be laid out as its parameter (they are "
                                       f"updated in place together), got strides {list(t._stride)} for a parameter "
                                       f"of shape {list(p._shape)} and strides {list(p._stride)}")
    if [g._stride for g in grads] == strides:
        return grads, ()
    copied = [(i, g) for i, (p, g) in enumerate(zip(self, grads)) if not _same_layout(p, g)]
    if copied:
        grads = list(grads)
        for i, g in copied:
            p = self[i]
            grads[i] = g.contiguous() if p.is_contiguous() else \
                OPS["empty_strided"].fn(p._shape, p._stride, dtype=g._dtype, device=g.device).copy_(g)
    return grads, copied


def _copy_back(grads, copied) -> None:
    """With grad_scale the kernel unscaled the copies of strided grads: the values go back where they came from."""
    for i, g in copied:
        g.copy_(grads[i])


def _fused_adam(decoupled: bool):
    """The kernel of `_fused_adam_` (decoupled=False) or `_fused_adamw_`. Step counts on the parameters'
    device are read by the kernel (capturable); counts elsewhere (the CPU) are read here, and then a
    tensor lr is too. Grads laid out otherwise than their parameters are copied (`_dense_args`)."""
    def kernel(self, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, lr, beta1, beta2, weight_decay,
               eps, amsgrad, maximize, grad_scale=None, found_inf=None):
        grads, copied = _dense_args("fused Adam", self, (("exp_avg", exp_avgs), ("exp_avg_sq", exp_avg_sqs),
                                         ("max_exp_avg_sq", max_exp_avg_sqs if amsgrad else ())), grads)
        dev = self[0]._storage.device
        device_step = all(s._storage.device is dev for s in state_steps)
        steps = state_steps if device_step else [s.item() for s in state_steps]
        if isinstance(lr, Tensor) and not (device_step and lr._storage.device is dev):
            lr = lr.item()
        adam_multi_step_(self, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs if amsgrad else None, steps, lr, beta1,
                         beta2, eps, weight_decay, decoupled, maximize, grad_scale, found_inf)
        if grad_scale is not None:
            _copy_back(grads, copied)
        return None
    return kernel


def fused_sgd(self, grads, momentum_buffer_list, weight_decay, momentum, lr, dampening, nesterov, maximize,
              is_first_step, grad_scale=None, found_inf=None):
    """The kernel of `_fused_sgd_`: a tensor lr on the parameters' device is read by the kernel (capturable),
    one elsewhere (the CPU) here. Grads laid out otherwise than their parameters are copied (`_dense_args`)."""
    bufs = momentum_buffer_list if momentum != 0 else None
    grads, copied = _dense_args("fused SGD", self, (("momentum buffer", bufs or ()),), grads)
    if isinstance(lr, Tensor) and lr._storage.device is not self[0]._storage.device:
        lr = lr.item()
    sgd_multi_step_(self, grads, bufs, lr, weight_decay, momentum, dampening, nesterov, maximize, is_first_step,
                    grad_scale, found_inf)
    if grad_scale is not None:
        _copy_back(grads, copied)
    return None


def _add_scalar_type(dtype):
    """The Triton type of the scalar added to 0-d tensors of `dtype` (None: the add_ op adds it)."""
    if dtype.is_floating_point:
        return "fp64" if dtype is _F64 else "fp32"
    return None if dtype.name == "bool" else "i64"


def foreach_add_(self, scalar) -> None:
    """t += scalar for every tensor: the 0-d ones on the device one launch per SLOTS of one dtype (the
    step counts of capturable Adam), any other non-empty one through the add_ op."""
    dev = next((t._storage.device for t in self if t._storage.device is not CPU), CPU)  # CPU: the interpreter
    groups = {}     # dtype -> 0-d tensors on the device
    for t in self:
        if not t._shape and t._storage.device is dev:
            ts = groups.get(t._dtype)
            if ts is None:
                ts = groups[t._dtype] = []
            ts.append(t)
        elif 0 in t._shape:
            t._storage.version += 1
        else:
            OPS["add_"].fn(t, scalar)
    for dtype, ts in groups.items():
        sig = _add_scalar_type(dtype)
        if sig is None:
            for t in ts:
                OPS["add_"].fn(t, scalar)
            continue
        for chunk in _chunks(ts):
            value = float(scalar) if sig[0] == "f" else int(scalar)
            args = [("value", value, sig)] + [pointer_arg(f"s{s}", chunk[s] if s < len(chunk) else chunk[0])
                                              for s in range(SLOTS)]
            run(K.add_scalar_kernel, (len(chunk),), args, {}, dev.index or 0)
        _bump(ts)
    return None


def fused_clip_ok(tensors) -> bool:
    """True when the fused norm/clip kernels apply: float32 tensors on one device, each one dense block (row-major,
    or the transposed or channels-last gradient of a parameter laid out so: the kernels walk its memory flat, and a
    norm and a scaling do not depend on the order); other dtypes keep PyTorch's result dtype through the composite
    path, and tensors with gaps go through it too."""
    dev = tensors[0]._storage.device
    return all(t._storage.device is dev and t._dtype is _F32 and is_one_block(t) for t in tensors)


def _slot_args(prefix, chunk):
    """(tensor, numel) arguments of SLOTS slots; unused slots get the first tensor and n = 0."""
    args = []
    for s in range(SLOTS):
        t = chunk[s] if s < len(chunk) else chunk[0]
        args += [pointer_arg(f"{prefix}{s}", t), (f"n{s}", t.numel() if s < len(chunk) else 0, "i64")]
    return args


def total_norm2(tensors):
    """sqrt(sum of x^2 over all `tensors`) as a 0-d float32 tensor on their device, deterministic:
    one partial-sums launch per SLOTS tensors (SUMSQ_PROGRAMS partials per tensor, in the tensors'
    order) and one final launch."""
    dev = tensors[0]._storage.device
    index = dev.index or 0
    part = new_tensor((len(tensors) * SUMSQ_PROGRAMS,), _F32, dev)
    for k, chunk in enumerate(_chunks(tensors)):
        run(K.sumsq_partial_kernel, (SUMSQ_PROGRAMS, len(chunk)),
            [("part_ptr", part, "*fp32"), ("base", k * SLOTS, "i64")] + _slot_args("x", chunk),
            {"PROGRAMS": SUMSQ_PROGRAMS, "BLOCK": BLOCK}, index)
    out = new_tensor((), _F32, dev)
    run(K.sqrt_sum_kernel, (1,), [("part_ptr", part, "*fp32"), ("out_ptr", out, "*fp32"),
                                  ("n", part.numel(), "i64")], {"BLOCK": BLOCK}, index)
    return out


def total_norm(tensors, norm_type=2.0):
    """The kernel of `_total_norm`: the 2-norm of contiguous float32 tensors fused, any other through
    the single-tensor ops."""
    if norm_type == 2.0 and fused_clip_ok(tensors):
        return total_norm2(tensors)
    return total_norm_composite(tensors, norm_type)


def clip_scale_(grads, total, max_norm: float) -> None:
    """g *= min(max_norm / (total + 1e-6), 1) in place for every g in `grads` (tensors of one dtype
    on one device; total: a 0-d tensor there): one launch per SLOTS non-empty gradients."""
    grads = [g for g in grads if 0 not in g._shape]
    for chunk in _chunks(grads):
        blocks = max((g.numel() + BLOCK - 1) // BLOCK for g in chunk)
        run(K.clip_scale_kernel, (blocks, len(chunk)),
            [pointer_arg("total_ptr", total), ("max_norm", float(max_norm), "fp32")] + _slot_args("g", chunk),
            {"BLOCK": BLOCK}, chunk[0]._storage.device.index or 0)
    _bump(grads)


def clip_grads_with_norm_(grads, max_norm, total_norm) -> None:
    """The kernel of `_clip_grads_with_norm_`: fused for contiguous float32 gradients and a float32
    total on their device, through the single-tensor ops otherwise."""
    if total_norm._dtype is _F32 and total_norm._storage.device is grads[0]._storage.device and fused_clip_ok(grads):
        clip_scale_(grads, total_norm, max_norm)
    else:
        clip_grads_composite_(grads, max_norm, total_norm)
    return None


OPS["_fused_adam_"].register("cuda")(_fused_adam(False))
OPS["_fused_adamw_"].register("cuda")(_fused_adam(True))
OPS["_fused_sgd_"].register("cuda")(fused_sgd)
OPS["_foreach_add_"].register("cuda")(foreach_add_)
OPS["_total_norm"].register("cuda")(total_norm)
OPS["_clip_grads_with_norm_"].register("cuda")(clip_grads_with_norm_)
