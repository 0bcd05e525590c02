"""Triton kernel of the fused Adam/AdamW step: one pass over a parameter updates it and its
moment buffers (PyTorch's single-tensor formulas, computed in float32)."""
import triton
import triton.language as tl


@triton.jit
def adam_kernel(p_ptr, g_ptr, m_ptr, v_ptr, vmax_ptr, step_ptr, lr_ptr, n, lr, beta1, beta2, eps, weight_decay,
                step_size, bc2_sqrt,
                WD: tl.constexpr, AMSGRAD: tl.constexpr, MAXIMIZE: tl.constexpr, DEVICE_STEP: tl.constexpr,
                LR_TENSOR: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    p = tl.load(p_ptr + i, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + i, mask=mask, other=0.0).to(tl.float32)
    m = tl.load(m_ptr + i, mask=mask, other=0.0).to(tl.float32)
    v = tl.load(v_ptr + i, mask=mask, other=0.0).to(tl.float32)
    if MAXIMIZE:
        g = -g
    if LR_TENSOR:                              # a 0-d tensor lr (capturable: schedulers fill it in place)
        lr = tl.load(lr_ptr).to(tl.float32)
    if WD == 1:                                # decoupled (AdamW)
        p = p * (1.0 - lr * weight_decay)
    elif WD == 2:                              # L2 (Adam)
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
def _add(a, b):     # tl.sum is a jit function of triton.language: unusable under the CI interpreter
    return a + b


@triton.jit
def sumsq_partial_kernel(x_ptr, part_ptr, n, slot, PROGRAMS: tl.constexpr, BLOCK: tl.constexpr):
    """part[slot * PROGRAMS + pid] = sum of x^2 over the blocks pid, pid + PROGRAMS, ... (float32)."""
    pid = tl.program_id(0)
    acc = tl.full([BLOCK], 0.0, tl.float32)
    start = pid.to(tl.int64) * BLOCK
    while start < n:        # a while loop: Triton's interpreter (the CI tests) needs Python ints for range()
        i = start + tl.arange(0, BLOCK)
        v = tl.load(x_ptr + i, mask=i < n, other=0.0).to(tl.float32)
        acc += v * v
        start += PROGRAMS * BLOCK
    tl.store(part_ptr + slot * PROGRAMS + pid, tl.reduce(acc, 0, _add))


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
def clip_scale_kernel(g_ptr, total_ptr, n, max_norm, BLOCK: tl.constexpr):
    """g *= min(max_norm / (total + 1e-6), 1) in place, the coefficient computed from the device total."""
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    coef = tl.minimum(max_norm / (tl.load(total_ptr).to(tl.float32) + 1e-6), 1.0)
    g = tl.load(g_ptr + i, mask=mask, other=0.0).to(tl.float32)
    tl.store(g_ptr + i, (g * coef).to(g_ptr.dtype.element_ty), mask=mask)
