"""NumPy kernels of the fused layer norm and RMS norm (float16/bfloat16 computed in float32, their
statistics kept in float32: `ops/normalization.py`)."""
from __future__ import annotations

import numpy as np

from ...ops.normalization import as_normalized_shape, stats_dtype
from ._common import arr, compute_np, impl, wrap


@impl("native_layer_norm")
def native_layer_norm(input, normalized_shape, weight, bias, eps):
    ns = as_normalized_shape(normalized_shape)
    cnp = compute_np(input._dtype)
    x = arr(input).astype(cnp, copy=False)
    axes = tuple(range(x.ndim - len(ns), x.ndim))
    mean = x.mean(axis=axes, keepdims=True, dtype=cnp) if x.size else np.zeros(x.shape[:x.ndim - len(ns)] +
                                                                              (1,) * len(ns), cnp)
    xc = x - mean
    rstd = 1.0 / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + cnp.type(eps)) if x.size else mean + 1
    y = xc * rstd
    if weight is not None:
        y = y * arr(weight).astype(cnp, copy=False)
    if bias is not None:
        y = y + arr(bias).astype(cnp, copy=False)
    sdt = stats_dtype(input._dtype)
    return wrap(y, input._dtype), wrap(mean, sdt), wrap(rstd, sdt)


@impl("native_layer_norm_backward")
def native_layer_norm_backward(grad_out, input, normalized_shape, mean, rstd, weight, bias, need_input,
                               need_weight, need_bias):
    ns = as_normalized_shape(normalized_shape)
    cnp = compute_np(input._dtype)
    x = arr(input).astype(cnp, copy=False)
    dy = arr(grad_out).astype(cnp, copy=False)
    axes = tuple(range(x.ndim - len(ns), x.ndim))
    batch = tuple(range(x.ndim - len(ns)))
    xhat = (x - arr(mean)) * arr(rstd)
    gx = gw = gb = None
    if need_input:
        wdy = dy * arr(weight).astype(cnp, copy=False) if weight is not None else dy
        c1 = (wdy * xhat).mean(axis=axes, keepdims=True) if x.size else 0.0
        c2 = wdy.mean(axis=axes, keepdims=True) if x.size else 0.0
        gx = wrap((wdy - xhat * c1 - c2) * arr(rstd), input._dtype)
    if need_weight and weight is not None:
        gw = wrap((dy * xhat).sum(axis=batch), weight._dtype)
    if need_bias and bias is not None:
        gb = wrap(dy.sum(axis=batch), bias._dtype)
    return gx, gw, gb


@impl("_fused_rms_norm")
def fused_rms_norm(input, normalized_shape, weight, eps):
    ns = as_normalized_shape(normalized_shape)
    cnp = compute_np(input._dtype)
    x = arr(input).astype(cnp, copy=False)
    axes = tuple(range(x.ndim - len(ns), x.ndim))
    ms = (x * x).mean(axis=axes, keepdims=True) if x.size else np.zeros(x.shape[:x.ndim - len(ns)] + (1,) * len(ns),
                                                                         cnp)
    rstd = 1.0 / np.sqrt(ms + cnp.type(eps))
    y = x * rstd
    if weight is not None:
        y = y * arr(weight).astype(cnp, copy=False)
    return wrap(y, input._dtype), wrap(rstd, stats_dtype(input._dtype))


@impl("_fused_rms_norm_backward")
def fused_rms_norm_backward(grad_out, input, normalized_shape, rstd, weight, need_input, need_weight):
    ns = as_normalized_shape(normalized_shape)
    cnp = compute_np(input._dtype)
    x = arr(input).astype(cnp, copy=False)
    dy = arr(grad_out).astype(cnp, copy=False)
    axes = tuple(range(x.ndim - len(ns), x.ndim))
    xhat = x * arr(rstd)
    gx = gw = None
    if need_input:
        wdy = dy * arr(weight).astype(cnp, copy=False) if weight is not None else dy
        c1 = (wdy * xhat).mean(axis=axes, keepdims=True) if x.size else 0.0
        gx = wrap((wdy - xhat * c1) * arr(rstd), input._dtype)
    if need_weight and weight is not None:
        gw = wrap((dy * xhat).sum(axis=tuple(range(x.ndim - len(ns)))), weight._dtype)
    return gx, gw
