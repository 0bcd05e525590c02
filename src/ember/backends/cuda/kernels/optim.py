"""Triton kernels of the fused optimizer work, multi-tensor ("foreach") style: one launch serves up
to 8 tensors (SLOTS in ../optim.py; the argument lists below are written out for 8). Each slot's
pointers and sizes are ordinary scalar kernel arguments (no pointer table in device memory, so nothing
is copied from the host and a launch can be captured in a CUDA graph); the grid is (programs per slot,
slots used), and `tl.program_id(1)` picks the slot through an explicit if/elif chain calling one
shared tile function. Programs past their slot's size do nothing.

- `adam_kernel`: the Adam/AdamW step (PyTorch's single-tensor formulas, computed in float32).
- `sgd_kernel`: the SGD step (momentum, dampening, Nesterov, weight decay, maximize; PyTorch's
  formulas, computed in float32, or float64 for float64 parameters).
- `add_scalar_kernel`: each slot's 0-d tensor += value (the step counts capturable Adam keeps on the
  device).
- `sumsq_partial_kernel` / `sqrt_sum_kernel`: the deterministic 2-norm of many tensors.
- `clip_scale_kernel`: g *= min(max_norm / (total + 1e-6), 1) with the total read on the device.
"""
import triton
import triton.language as tl

from .. import opcodes
from .elementwise import _cast


@triton.jit
def _adam_tile(p_ptr, g_ptr, m_ptr, v_ptr, vmax_ptr, step_ptr, n, step_size, bc2_sqrt, lr, beta1, beta2, eps,
               weight_decay, grad_scale, WD: tl.constexpr, AMSGRAD: tl.constexpr, MAXIMIZE: tl.constexpr,
               DEVICE_STEP: tl.constexpr, GRAD_SCALE: tl.constexpr, BLOCK: tl.constexpr):
    """Elements [pid * BLOCK, (pid + 1) * BLOCK) of one parameter."""
    start = tl.program_id(0).to(tl.int64) * BLOCK
    if start < n:
        i = start + tl.arange(0, BLOCK)
        mask = i < n
        p = tl.load(p_ptr + i, mask=mask, other=0.0).to(tl.float32)
        g = tl.load(g_ptr + i, mask=mask, other=0.0).to(tl.float32)
        m = tl.load(m_ptr + i, mask=mask, other=0.0).to(tl.float32)
        v = tl.load(v_ptr + i, mask=mask, other=0.0).to(tl.float32)
        if GRAD_SCALE:                             # unscaled, and written back so (as torch's fused Adam)
            g = g / grad_scale
            tl.store(g_ptr + i, g.to(g_ptr.dtype.element_ty), mask=mask)
        if MAXIMIZE:
            g = -g
        if WD == opcodes.WeightDecay.DECOUPLED:    # AdamW
            p = p * (1.0 - lr * weight_decay)
        elif WD == opcodes.WeightDecay.L2:         # Adam
            g = g + weight_decay * p
        m = m + (1.0 - beta1) * (g - m)            # lerp(m, g, 1 - beta1), weight < 0.5 branch
        v = v * beta2 + (1.0 - beta2) * g * g      # mul_(beta2).addcmul_(g, g, value=1 - beta2)
        if DEVICE_STEP:                            # capturable: the step count lives on the device
            step = tl.load(step_ptr).to(tl.float32)
            step_size = lr / (1.0 - tl.exp2(step * tl.log2(beta1)))
            bc2_sqrt = tl.sqrt(1.0 - tl.exp2(step * tl.log2(beta2)))
        if AMSGRAD:
            vmax = tl.maximum(tl.load(vmax_ptr + i, mask=mask, other=0.0).to(tl.float32), v)
            tl.store(vmax_ptr + i, vmax.to(vmax_ptr.dtype.element_ty), mask=mask)
            denom = tl.sqrt(vmax) / bc2_sqrt + eps
        else:
            denom = tl.sqrt(v) / bc2_sqrt + eps
        p = p + (-step_size) * (m / denom)
        tl.store(p_ptr + i, p.to(p_ptr.dtype.element_ty), mask=mask)
        tl.store(m_ptr + i, m.to(m_ptr.dtype.element_ty), mask=mask)
        tl.store(v_ptr + i, v.to(v_ptr.dtype.element_ty), mask=mask)


@triton.jit
def adam_kernel(lr_ptr, grad_scale_ptr, found_inf_ptr, lr, beta1, beta2, eps, weight_decay,
                p0, g0, m0, v0, vmax0, step0, n0, step_size0, bc2_sqrt0,
                p1, g1, m1, v1, vmax1, step1, n1, step_size1, bc2_sqrt1,
                p2, g2, m2, v2, vmax2, step2, n2, step_size2, bc2_sqrt2,
                p3, g3, m3, v3, vmax3, step3, n3, step_size3, bc2_sqrt3,
                p4, g4, m4, v4, vmax4, step4, n4, step_size4, bc2_sqrt4,
                p5, g5, m5, v5, vmax5, step5, n5, step_size5, bc2_sqrt5,
                p6, g6, m6, v6, vmax6, step6, n6, step_size6, bc2_sqrt6,
                p7, g7, m7, v7, vmax7, step7, n7, step_size7, bc2_sqrt7,
                WD: tl.constexpr, AMSGRAD: tl.constexpr, MAXIMIZE: tl.constexpr, DEVICE_STEP: tl.constexpr,
                LR_TENSOR: tl.constexpr, GRAD_SCALE: tl.constexpr, FOUND_INF: tl.constexpr, BLOCK: tl.constexpr):
    """Per slot: parameter, grad, exp_avg, exp_avg_sq, max_exp_avg_sq (AMSGRAD), the 0-d step count
    (DEVICE_STEP), numel, and the host-computed lr / (1 - beta1^t) and sqrt(1 - beta2^t) (otherwise).
    GRAD_SCALE: the grads are divided by *grad_scale_ptr; FOUND_INF: nothing is written where
    *found_inf_ptr == 1 (every slot's size counts as 0)."""
    if LR_TENSOR:                              # a 0-d tensor lr (capturable: schedulers fill it in place)
        lr = tl.load(lr_ptr).to(tl.float32)
    grad_scale = 1.0
    if GRAD_SCALE:
        grad_scale = tl.load(grad_scale_ptr).to(tl.float32)
    if FOUND_INF:
        live = (tl.load(found_inf_ptr) != 1.0).to(tl.int64)
    else:
        live = 1
    slot = tl.program_id(1)
    if slot == 0:
        _adam_tile(p0, g0, m0, v0, vmax0, step0, n0 * live, step_size0, bc2_sqrt0, lr, beta1, beta2, eps,
                   weight_decay, grad_scale, WD, AMSGRAD, MAXIMIZE, DEVICE_STEP, GRAD_SCALE, BLOCK)
    elif slot == 1:
        _adam_tile(p1, g1, m1, v1, vmax1, step1, n1 * live, step_size1, bc2_sqrt1, lr, beta1, beta2, eps,
                   weight_decay, grad_scale, WD, AMSGRAD, MAXIMIZE, DEVICE_STEP, GRAD_SCALE, BLOCK)
    elif slot == 2:
        _adam_tile(p2, g2, m2, v2, vmax2, step2, n2 * live, step_size2, bc2_sqrt2, lr, beta1, beta2, eps,
                   weight_decay, grad_scale, WD, AMSGRAD, MAXIMIZE, DEVICE_STEP, GRAD_SCALE, BLOCK)
    elif slot == 3:
        _adam_tile(p3, g3, m3, v3, vmax3, step3, n3 * live, step_size3, bc2_sqrt3, lr, beta1, beta2, eps,
                   weight_decay, grad_scale, WD, AMSGRAD, MAXIMIZE, DEVICE_STEP, GRAD_SCALE, BLOCK)
    elif slot == 4:
        _adam_tile(p4, g4, m4, v4, vmax4, step4, n4 * live, step_size4, bc2_sqrt4, lr, beta1, beta2, eps,
                   weight_decay, grad_scale, WD, AMSGRAD, MAXIMIZE, DEVICE_STEP, GRAD_SCALE, BLOCK)
    elif slot == 5:
        _adam_tile(p5, g5, m5, v5, vmax5, step5, n5 * live, step_size5, bc2_sqrt5, lr, beta1, beta2, eps,
                   weight_decay, grad_scale, WD, AMSGRAD, MAXIMIZE, DEVICE_STEP, GRAD_SCALE, BLOCK)
    elif slot == 6:
        _adam_tile(p6, g6, m6, v6, vmax6, step6, n6 * live, step_size6, bc2_sqrt6, lr, beta1, beta2, eps,
                   weight_decay, grad_scale, WD, AMSGRAD, MAXIMIZE, DEVICE_STEP, GRAD_SCALE, BLOCK)
    elif slot == 7:
        _adam_tile(p7, g7, m7, v7, vmax7, step7, n7 * live, step_size7, bc2_sqrt7, lr, beta1, beta2, eps,
                   weight_decay, grad_scale, WD, AMSGRAD, MAXIMIZE, DEVICE_STEP, GRAD_SCALE, BLOCK)


@triton.jit
def _sgd_tile(p_ptr, g_ptr, buf_ptr, n, lr, weight_decay, momentum, one_minus_dampening, first_step, grad_scale,
              WEIGHT_DECAY: tl.constexpr, MOMENTUM: tl.constexpr, NESTEROV: tl.constexpr, MAXIMIZE: tl.constexpr,
              GRAD_SCALE: tl.constexpr, CK: tl.constexpr, BLOCK: tl.constexpr):
    """Elements [pid * BLOCK, (pid + 1) * BLOCK) of one parameter, in the order of ember.optim.SGD's ops."""
    start = tl.program_id(0).to(tl.int64) * BLOCK
    if start < n:
        i = start + tl.arange(0, BLOCK)
        mask = i < n
        p = _cast(tl.load(p_ptr + i, mask=mask, other=0.0), CK)
        g = _cast(tl.load(g_ptr + i, mask=mask, other=0.0), CK)
        if GRAD_SCALE:                             # unscaled, and written back so (as torch's fused SGD)
            g = g / grad_scale
            tl.store(g_ptr + i, g.to(g_ptr.dtype.element_ty), mask=mask)
        if MAXIMIZE:
            g = -g
        if WEIGHT_DECAY:
            g = g + p * weight_decay
        if MOMENTUM:
            if first_step != 0.0:                  # the buffer starts as the gradient
                buf = g
            else:
                buf = _cast(tl.load(buf_ptr + i, mask=mask, other=0.0), CK) * momentum + g * one_minus_dampening
            tl.store(buf_ptr + i, buf.to(buf_ptr.dtype.element_ty), mask=mask)
            if NESTEROV:
                g = g + buf * momentum
            else:
                g = buf
        p = p - g * lr
        tl.store(p_ptr + i, p.to(p_ptr.dtype.element_ty), mask=mask)


@triton.jit
def sgd_kernel(lr_ptr, grad_scale_ptr, found_inf_ptr, lr, weight_decay, momentum, one_minus_dampening, first_step,
               p0, g0, buf0, n0, p1, g1, buf1, n1, p2, g2, buf2, n2, p3, g3, buf3, n3,
               p4, g4, buf4, n4, p5, g5, buf5, n5, p6, g6, buf6, n6, p7, g7, buf7, n7,
               WEIGHT_DECAY: tl.constexpr, MOMENTUM: tl.constexpr, NESTEROV: tl.constexpr, MAXIMIZE: tl.constexpr,
               LR_TENSOR: tl.constexpr, GRAD_SCALE: tl.constexpr, FOUND_INF: tl.constexpr, CK: tl.constexpr,
               BLOCK: tl.constexpr):
    """Per slot: parameter, grad, momentum buffer (MOMENTUM), numel; the scalars are float64 for float64
    parameters (CK), float32 otherwise. `first_step` (1.0: each buffer is set to its gradient) is a float
    argument, not a constexpr (nor an integer, which launches specialize on divisibility by 16): the first
    step compiles the kernel that later steps run, so that a step can be captured in a CUDA graph after
    one warm-up step (loading a kernel during a capture invalidates it).
    LR_TENSOR: lr is read from *lr_ptr; GRAD_SCALE and FOUND_INF as in `adam_kernel`."""
    if LR_TENSOR:                              # a 0-d tensor lr (capturable: schedulers fill it in place)
        lr = _cast(tl.load(lr_ptr), CK)
    grad_scale = 1.0
    if GRAD_SCALE:
        grad_scale = tl.load(grad_scale_ptr).to(tl.float32)
    if FOUND_INF:
        live = (tl.load(found_inf_ptr) != 1.0).to(tl.int64)
    else:
        live = 1
    slot = tl.program_id(1)
    if slot == 0:
        _sgd_tile(p0, g0, buf0, n0 * live, lr, weight_decay, momentum, one_minus_dampening, first_step,
                  grad_scale, WEIGHT_DECAY, MOMENTUM, NESTEROV, MAXIMIZE, GRAD_SCALE, CK, BLOCK)
    elif slot == 1:
        _sgd_tile(p1, g1, buf1, n1 * live, lr, weight_decay, momentum, one_minus_dampening, first_step,
                  grad_scale, WEIGHT_DECAY, MOMENTUM, NESTEROV, MAXIMIZE, GRAD_SCALE, CK, BLOCK)
    elif slot == 2:
        _sgd_tile(p2, g2, buf2, n2 * live, lr, weight_decay, momentum, one_minus_dampening, first_step,
                  grad_scale, WEIGHT_DECAY, MOMENTUM, NESTEROV, MAXIMIZE, GRAD_SCALE, CK, BLOCK)
    elif slot == 3:
        _sgd_tile(p3, g3, buf3, n3 * live, lr, weight_decay, momentum, one_minus_dampening, first_step,
                  grad_scale, WEIGHT_DECAY, MOMENTUM, NESTEROV, MAXIMIZE, GRAD_SCALE, CK, BLOCK)
    elif slot == 4:
        _sgd_tile(p4, g4, buf4, n4 * live, lr, weight_decay, momentum, one_minus_dampening, first_step,
                  grad_scale, WEIGHT_DECAY, MOMENTUM, NESTEROV, MAXIMIZE, GRAD_SCALE, CK, BLOCK)
    elif slot == 5:
        _sgd_tile(p5, g5, buf5, n5 * live, lr, weight_decay, momentum, one_minus_dampening, first_step,
                  grad_scale, WEIGHT_DECAY, MOMENTUM, NESTEROV, MAXIMIZE, GRAD_SCALE, CK, BLOCK)
    elif slot == 6:
        _sgd_tile(p6, g6, buf6, n6 * live, lr, weight_decay, momentum, one_minus_dampening, first_step,
                  grad_scale, WEIGHT_DECAY, MOMENTUM, NESTEROV, MAXIMIZE, GRAD_SCALE, CK, BLOCK)
    elif slot == 7:
        _sgd_tile(p7, g7, buf7, n7 * live, lr, weight_decay, momentum, one_minus_dampening, first_step,
                  grad_scale, WEIGHT_DECAY, MOMENTUM, NESTEROV, MAXIMIZE, GRAD_SCALE, CK, BLOCK)


@triton.jit
def _add_scalar(ptr, value):
    tl.store(ptr, (tl.load(ptr) + value).to(ptr.dtype.element_ty))


@triton.jit
def add_scalar_kernel(value, s0, s1, s2, s3, s4, s5, s6, s7):
    """The 0-d tensor of slot `program_id(0)` += value, in its own dtype."""
    slot = tl.program_id(0)
    if slot == 0:
        _add_scalar(s0, value)
    elif slot == 1:
        _add_scalar(s1, value)
    elif slot == 2:
        _add_scalar(s2, value)
    elif slot == 3:
        _add_scalar(s3, value)
    elif slot == 4:
        _add_scalar(s4, value)
    elif slot == 5:
        _add_scalar(s5, value)
    elif slot == 6:
        _add_scalar(s6, value)
    elif slot == 7:
        _add_scalar(s7, value)


@triton.jit
def _add(a, b):     # tl.sum is a jit function of triton.language: unusable under the CI interpreter
    return a + b


@triton.jit
def _sumsq_tile(x_ptr, part_ptr, n, index, PROGRAMS: tl.constexpr, BLOCK: tl.constexpr):
    """part[index * PROGRAMS + pid] = sum of x^2 over the blocks pid, pid + PROGRAMS, ... (float32)."""
    pid = tl.program_id(0)
    acc = tl.full([BLOCK], 0.0, tl.float32)
    start = pid.to(tl.int64) * BLOCK
    while start < n:        # a while loop: Triton's interpreter (the CI tests) needs Python ints for range()
        i = start + tl.arange(0, BLOCK)
        v = tl.load(x_ptr + i, mask=i < n, other=0.0).to(tl.float32)
        acc += v * v
        start += PROGRAMS * BLOCK
    tl.store(part_ptr + index * PROGRAMS + pid, tl.reduce(acc, 0, _add))


@triton.jit
def sumsq_partial_kernel(part_ptr, base,
                         x0, n0, x1, n1, x2, n2, x3, n3, x4, n4, x5, n5, x6, n6, x7, n7,
                         PROGRAMS: tl.constexpr, BLOCK: tl.constexpr):
    """The partial sums of squares of slot s (tensor number base + s of the norm), PROGRAMS of them."""
    slot = tl.program_id(1)
    if slot == 0:
        _sumsq_tile(x0, part_ptr, n0, base + 0, PROGRAMS, BLOCK)
    elif slot == 1:
        _sumsq_tile(x1, part_ptr, n1, base + 1, PROGRAMS, BLOCK)
    elif slot == 2:
        _sumsq_tile(x2, part_ptr, n2, base + 2, PROGRAMS, BLOCK)
    elif slot == 3:
        _sumsq_tile(x3, part_ptr, n3, base + 3, PROGRAMS, BLOCK)
    elif slot == 4:
        _sumsq_tile(x4, part_ptr, n4, base + 4, PROGRAMS, BLOCK)
    elif slot == 5:
        _sumsq_tile(x5, part_ptr, n5, base + 5, PROGRAMS, BLOCK)
    elif slot == 6:
        _sumsq_tile(x6, part_ptr, n6, base + 6, PROGRAMS, BLOCK)
    elif slot == 7:
        _sumsq_tile(x7, part_ptr, n7, base + 7, PROGRAMS, BLOCK)


@triton.jit
def sqrt_sum_kernel(part_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """out[0] = sqrt(sum(part[:n])), in one program (a fixed order: deterministic)."""
    acc = tl.full([BLOCK], 0.0, tl.float32)
    start = 0
    while start < n:
        i = start + tl.arange(0, BLOCK)
        acc += tl.load(part_ptr + i, mask=i < n, other=0.0)
        start += BLOCK
    tl.store(out_ptr, tl.sqrt(tl.reduce(acc, 0, _add)))


@triton.jit
def _clip_scale_tile(g_ptr, n, coef, BLOCK: tl.constexpr):
    start = tl.program_id(0).to(tl.int64) * BLOCK
    if start < n:
        i = start + tl.arange(0, BLOCK)
        mask = i < n
        g = tl.load(g_ptr + i, mask=mask, other=0.0).to(tl.float32)
        tl.store(g_ptr + i, (g * coef).to(g_ptr.dtype.element_ty), mask=mask)


@triton.jit
def clip_scale_kernel(total_ptr, max_norm, g0, n0, g1, n1, g2, n2, g3, n3, g4, n4, g5, n5, g6, n6, g7, n7,
                      BLOCK: tl.constexpr):
    """Each slot's g *= min(max_norm / (total + 1e-6), 1) in place, the coefficient computed from the
    device total."""
    coef = tl.minimum(max_norm / (tl.load(total_ptr).to(tl.float32) + 1e-6), 1.0)
    slot = tl.program_id(1)
    if slot == 0:
        _clip_scale_tile(g0, n0, coef, BLOCK)
    elif slot == 1:
        _clip_scale_tile(g1, n1, coef, BLOCK)
    elif slot == 2:
        _clip_scale_tile(g2, n2, coef, BLOCK)
    elif slot == 3:
        _clip_scale_tile(g3, n3, coef, BLOCK)
    elif slot == 4:
        _clip_scale_tile(g4, n4, coef, BLOCK)
    elif slot == 5:
        _clip_scale_tile(g5, n5, coef, BLOCK)
    elif slot == 6:
        _clip_scale_tile(g6, n6, coef, BLOCK)
    elif slot == 7:
        _clip_scale_tile(g7, n7, coef, BLOCK)
