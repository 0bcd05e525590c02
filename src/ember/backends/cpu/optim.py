"""CPU kernels of the multi-tensor optimizer ops (ember.ops.optim), in NumPy.

The Adam step runs, array by array, the float operations of `ember.optim.Adam`'s single-tensor loop
(so float32 and float64 results equal it bit for bit); float16 and bfloat16 state is computed in
float32 and stored once at the end, as the CUDA kernel does, in the order of torch's fused CPU Adam
(`_adam_low`: its fused multiply-adds done in float64, where a product of two float32 values is exact),
so that it equals torch's `fused=True` bit for bit. The SGD step is `ember.optim.SGD`'s loop of ops the
same way (float16/bfloat16: computed in float32, each array stored once). The norm and the clipping
coefficient round where the single-tensor ops would (`ops.optim.total_norm_composite`,
`clip_grads_composite_`).
"""
from __future__ import annotations

import numpy as np

from ...core import dtype as D
from ._common import arr, compute_np, impl, operand, wrap
from .reduction import _norm


def _value(t) -> float:
    return float(arr(t).reshape(-1)[0])


def _fma(a, b, c):
    """a * b + c rounded once to float32 (float32 operands: the product is exact in float64)."""
    return (np.multiply(a, b, dtype=np.float64) + c).astype(np.float32)


def _unscaled(G, ga, f, grad_scale, maximize):
    """G divided by grad_scale (written back to ga: the fused optimizers leave the grads unscaled, as torch's) and
    negated when maximize, in compute type f."""
    if grad_scale is not None:
        G = G / f(grad_scale)
        np.copyto(ga, G, casting="unsafe")
    if maximize:
        G = np.negative(G)
    return G


def _adam_grad(P, G, ga, f, lr, weight_decay, maximize, decoupled, grad_scale, fma):
    """Adam's preamble in compute type f: G unscaled by grad_scale (written back to ga: the grads are left
    unscaled, as torch's fused Adam), negated when maximize, then weight decay: P scaled in place when
    decoupled, else G + P * wd (one rounding through _fma when fma, as the 16-bit vector loop). Returns G."""
    G = _unscaled(G, ga, f, grad_scale, maximize)
    if weight_decay != 0:
        if decoupled:
            P *= f(1 - lr * weight_decay)
        else:
            G = _fma(P, f(weight_decay), G) if fma else G + P * f(weight_decay)
    return G


def _adam_low(pa, ga, ma, va, xa, step, lr, beta1, beta2, weight_decay, eps, maximize, decoupled, grad_scale):
    """float16/bfloat16 arrays: torch's fused CPU Adam (its vector loop), in float32 from the 16-bit values,
    each array stored (rounded to nearest) once."""
    f = np.float32
    P, G, M, V = (a.astype(f) for a in (pa, ga, ma, va))
    G = _adam_grad(P, G, ga, f, lr, weight_decay, maximize, decoupled, grad_scale, fma=True)
    w = f(1 - beta1)                                 # lerp: fma(w, g - m, m), or fma(w - 1, g - m, g)
    M = _fma(w, G - M, M) if abs(w) < 0.5 else _fma(w - f(1), G - M, G)
    V = _fma(f(1 - beta2) * G, G, V * f(beta2))
    step_size = lr / (1 - beta1 ** step)
    bc2_sqrt = (1 - beta2 ** step) ** 0.5
    if xa is not None:
        X = np.maximum(xa.astype(f), V)
        np.copyto(xa, X, casting="unsafe")
        V2 = X
    else:
        V2 = V
    denom = np.sqrt(V2) / f(bc2_sqrt) + f(eps)
    P += f(-step_size) * M / denom
    for a, x in ((pa, P), (ma, M), (va, V)):
        np.copyto(a, x, casting="unsafe")


def _adam_one(p, g, m, v, vmax, step, lr, beta1, beta2, weight_decay, eps, maximize, decoupled, grad_scale):
    ct = compute_np(p._dtype)
    f = ct.type
    pa, ga, ma, va = arr(p), arr(g), arr(m), arr(v)
    if pa.dtype != ct:
        return _adam_low(pa, ga, ma, va, None if vmax is None else arr(vmax), step, lr, beta1, beta2, weight_decay,
                         eps, maximize, decoupled, grad_scale)
    P, G, M, V = pa, ga, ma, va
    G = _adam_grad(P, G, ga, f, lr, weight_decay, maximize, decoupled, grad_scale, fma=False)
    w = f(1 - beta1)                                 # exp_avg.lerp_(g, 1 - beta1)
    diff = G - M
    if abs(w) < 0.5:
        diff *= w
        M += diff
    else:
        diff *= 1 - w
        np.subtract(G, diff, out=M)
    V *= f(beta2)                                    # exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    gg = G * G
    gg *= f(1 - beta2)
    V += gg
    step_size = lr / (1 - beta1 ** step)
    bc2_sqrt = (1 - beta2 ** step) ** 0.5
    if vmax is not None:
        X = arr(vmax)
        np.maximum(X, V, out=X)
        denom = np.sqrt(X)
    else:
        denom = np.sqrt(V)
    denom /= f(bc2_sqrt)
    denom += f(eps)
    r = M / denom                                    # p.addcdiv_(exp_avg, denom, value=-step_size)
    r *= f(-step_size)
    P += r


def _fused_adam(decoupled: bool):
    def kernel(self, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, lr, beta1, beta2, weight_decay,
               eps, amsgrad, maximize, grad_scale=None, found_inf=None):
        if found_inf is not None and _value(found_inf) == 1.0:
            return None
        lr = lr if isinstance(lr, (int, float)) else _value(lr)
        scale = None if grad_scale is None else _value(grad_scale)
        for i, p in enumerate(self):
            vmax = max_exp_avg_sqs[i] if amsgrad else None
            _adam_one(p, grads[i], exp_avgs[i], exp_avg_sqs[i], vmax, _value(state_steps[i]), lr, beta1, beta2,
                      weight_decay, eps, maximize, decoupled, scale)
            for t in (p, exp_avgs[i], exp_avg_sqs[i], vmax, grads[i] if scale is not None else None):
                if t is not None:
                    t._storage.version += 1
        return None
    return kernel


impl("_fused_adam_")(_fused_adam(False))
impl("_fused_adamw_")(_fused_adam(True))


def _sgd_one(p, g, buf, lr, weight_decay, momentum, dampening, nesterov, maximize, first, grad_scale):
    """One parameter's SGD step, the float operations of `ember.optim.SGD`'s loop in p's compute type (so
    float32 and float64 equal it bit for bit); float16/bfloat16 arrays are computed in float32 from their
    values and each stored once (torch's fused SGD)."""
    ct = compute_np(p._dtype)
    f = ct.type
    pa, ga = arr(p), arr(g)
    P, G = pa.astype(ct, copy=False), ga.astype(ct, copy=False)
    G = _unscaled(G, ga, f, grad_scale, maximize)
    if weight_decay != 0:
        G = G + P * f(weight_decay)
    if buf is not None:
        ba = arr(buf)
        B = ba if ba.dtype == ct else None      # a 16-bit buffer: B is its float32 value, stored once
        if first:
            if B is None:
                B = G
            else:
                np.copyto(B, G)
        else:
            if B is None:
                B = ba.astype(ct)
            B *= f(momentum)
            B += G * f(1 - dampening)
        if B is not ba:
            np.copyto(ba, B, casting="unsafe")
        G = G + B * f(momentum) if nesterov else B
    if pa.dtype == ct:
        pa += G * f(-lr)
    else:
        np.copyto(pa, P + G * f(-lr), casting="unsafe")


@impl("_fused_sgd_")
def _fused_sgd_(self, grads, momentum_buffer_list, weight_decay, momentum, lr, dampening, nesterov, maximize,
                is_first_step, grad_scale=None, found_inf=None):
    if found_inf is not None and _value(found_inf) == 1.0:
        return None
    lr = lr if isinstance(lr, (int, float)) else _value(lr)
    scale = None if grad_scale is None else _value(grad_scale)
    bufs = momentum_buffer_list if momentum != 0 else [None] * len(self)
    for p, g, buf in zip(self, grads, bufs):
        _sgd_one(p, g, buf, lr, weight_decay, momentum, dampening, nesterov, maximize, is_first_step, scale)
        for t in (p, buf, g if scale is not None else None):
            if t is not None:
                t._storage.version += 1
    return None


@impl("_foreach_add_")
def _foreach_add_(self, scalar):
    for t in self:
        a = arr(t)
        ct = compute_np(t._dtype)
        if a.dtype == ct:
            np.add(a, operand(scalar, ct), out=a)
        else:
            np.copyto(a, a.astype(ct) + operand(scalar, ct), casting="unsafe")
        t._storage.version += 1
    return None


@impl("_total_norm")
def _total_norm(tensors, norm_type=2.0):
    norms = [_norm(t, norm_type) for t in tensors]
    dt = D.result_type(*norms)
    return _norm(wrap(np.stack([arr(n).astype(dt.np, copy=False) for n in norms]), dt), norm_type)


def _rounded(x, dt):
    """x (computed wider) rounded to dtype `dt` and back, as a tensor op's result in `dt` would be."""
    return x.astype(dt.np).astype(x.dtype)


@impl("_clip_grads_with_norm_")
def _clip_grads_with_norm_(grads, max_norm, total_norm):
    tdt = total_norm._dtype
    f = compute_np(tdt).type
    total = f(_value(total_norm))
    coef = min(_rounded(f(max_norm) / _rounded(total + f(1e-6), tdt), tdt), f(1.0))
    for g in grads:
        a = arr(g)
        ct = compute_np(g._dtype)
        if a.dtype == ct:
            np.multiply(a, ct.type(coef), out=a)
        else:
            np.copyto(a, a.astype(ct) * ct.type(coef), casting="unsafe")
        g._storage.version += 1
    return None
