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
