"""CPU kernels for reductions and softmax, on NumPy ufunc reduce (the scans are in `scan.py`).

The argument rules (dims, output dtypes, legacy forms, errors) live in ember.ops.reduction and are
shared with the metas; these kernels only compute. float16/bfloat16 accumulate in float32 and
cast back (PyTorch's opmath); integer and bool sums/products accumulate in int64.
"""
from __future__ import annotations

import math

import numpy as np

from ...core import dtype as D
from ...ops.reduction import (check_nonempty, float_dtype, mean_dtype, nanmean_dtype, norm_args, one_dim,
                              reduce_dims, return_types, softmax_dtype, sum_dtype, var_args)
from ._common import arr, compute_np, impl, plan, wrap

_INT64 = D.int64
_NP_I64 = np.dtype(np.int64)
_NEG_INF = -math.inf
_MAX, _MIN = return_types.max, return_types.min


def _count(shape, axis) -> int:
    if axis is None:
        return math.prod(shape)
    n = 1
    for d in axis:
        n *= shape[d]
    return n


def _reduce(ufunc, a, axis, acc, keepdim):
    """ufunc.reduce accumulating in `acc`, casting the input first where NumPy won't do it in-loop."""
    try:
        return ufunc.reduce(a, axis=axis, dtype=acc, keepdims=keepdim)
    except TypeError:
        return ufunc.reduce(a.astype(acc), axis=axis, dtype=acc, keepdims=keepdim)


def _as(a, acc):
    """`a` in dtype `acc` (no copy when it already is)."""
    return a if a.dtype == acc else a.astype(acc)


# ---- sums, products, means --------------------------------------------------------------------

@impl("sum")
def _sum(self, dim=None, keepdim=False, dtype=None):
    out = dtype if dtype is not None else sum_dtype(self, None)
    a = arr(self)
    axis = None if dim is None else reduce_dims("sum", dim, a.ndim)
    return wrap(_reduce(np.add, a, axis, compute_np(out), keepdim), out)


@plan("sum")
def _plan_sum(meta, self, dim=None, keepdim=False, dtype=None):
    """sum for one input signature: the result dtype (the meta's), the compute type and the axes fixed."""
    out = meta[1]
    acc = compute_np(out)
    axis = None if dim is None else reduce_dims("sum", dim, len(self._shape))

    def kernel(self, dim=None, keepdim=False, dtype=None):
        return wrap(_reduce(np.add, arr(self), axis, acc, keepdim), out)
    return kernel


def _zero_nan(a, acc):
    """A copy of `a` in `acc` with NaNs replaced by 0 (only floats have NaNs)."""
    x = _as(a, acc)
    return np.where(np.isnan(x), acc.type(0), x)


@impl("nansum")
def _nansum(self, dim=None, keepdim=False, dtype=None):
    out = sum_dtype(self, dtype)
    acc = compute_np(out)
    a = arr(self)
    axis = None if dim is None else reduce_dims("nansum", dim, a.ndim)
    if self._dtype.is_floating_point:
        a = _zero_nan(a, acc if acc.kind == "f" else compute_np(self._dtype))
    return wrap(_reduce(np.add, a, axis, acc, keepdim), out)


@impl("prod")
def _prod(self, dim=None, keepdim=False, dtype=None):
    out = sum_dtype(self, dtype)
    a = arr(self)
    axis = None
    if dim is not None:
        d = one_dim("prod", dim, a.ndim)
        if a.ndim:
            axis = d
    return wrap(_reduce(np.multiply, a, axis, compute_np(out), keepdim), out)


@impl("mean")
def _mean(self, dim=None, keepdim=False, dtype=None):
    out = mean_dtype("mean", self, dtype)
    acc = compute_np(out)
    a = arr(self)
    axis = None if dim is None else reduce_dims("mean", dim, a.ndim)
    s = _reduce(np.add, a, axis, acc, keepdim)
    return wrap(s / acc.type(_count(a.shape, axis)), out)


@impl("nanmean")
def _nanmean(self, dim=None, keepdim=False, dtype=None):
    out = nanmean_dtype(self, dtype)
    acc = compute_np(out)
    a = arr(self)
    axis = None if dim is None else reduce_dims("nanmean", dim, a.ndim)
    isnan = np.isnan(a)
    s = np.add.reduce(np.where(isnan, acc.type(0), _as(a, acc)), axis=axis, keepdims=keepdim)
    n = _count(a.shape, axis) - np.add.reduce(isnan, axis=axis, dtype=_NP_I64, keepdims=keepdim)
    return wrap(s / n.astype(acc), out)


# ---- max / min family ---------------------------------------------------------------------------

def _amax_kernel(name, ufunc):
    def kernel(self, dim=(), keepdim=False):
        a = arr(self)
        axis = reduce_dims(name, dim, a.ndim)
        if a.size == 0:
            check_nonempty(name, a.shape, axis)
        return wrap(ufunc.reduce(a, axis=axis, keepdims=keepdim), self._dtype)
    return kernel


impl("amax")(_amax_kernel("amax", np.maximum))
impl("amin")(_amax_kernel("amin", np.minimum))


def _argmax_kernel(name, fn):
    def kernel(self, dim=None, keepdim=False):
        a = arr(self)   # the meta (ops.reduction.check_arg_extremum) refused bool and empty reductions
        axis = dim % a.ndim if dim is not None and a.ndim else None
        return wrap(fn(a, axis=axis, keepdims=keepdim), _INT64)
    return kernel


impl("argmax")(_argmax_kernel("argmax", np.argmax))
impl("argmin")(_argmax_kernel("argmin", np.argmin))


def _max_dim_kernel(name, argfn, result):
    def kernel(self, dim, keepdim=False):
        a = arr(self)
        d = one_dim(name, dim, a.ndim)
        dt = self._dtype
        if a.ndim == 0:
            return result(wrap(a.copy(), dt), wrap(np.zeros((), _NP_I64), _INT64))
        idx = argfn(a, axis=d, keepdims=True)  # first occurrence on ties, first NaN if any
        vals = np.take_along_axis(a, idx, axis=d)
        if not keepdim:
            idx = idx.squeeze(d)
            vals = vals.squeeze(d)
        return result(wrap(vals, dt), wrap(idx, _INT64))
    return kernel


impl("_max_dim")(_max_dim_kernel("max", np.argmax, _MAX))
impl("_min_dim")(_max_dim_kernel("min", np.argmin, _MIN))


# ---- variance, logsumexp, norms -----------------------------------------------------------------

def _var_kernel(name, take_sqrt):
    def kernel(self, dim=None, unbiased=None, keepdim=False, correction=None):
        dim, corr = var_args(name, self, dim, unbiased, correction)
        a = arr(self)
        axis = None if dim is None else reduce_dims(name, dim, a.ndim)
        out = self._dtype
        acc = np.dtype(np.float64)      # as torch's CPU kernel: float64 sums (NumPy's float32 sum along a
        x = _as(a, acc)                 # strided axis is naive and loses the mean of offset data)
        n = _count(a.shape, axis)
        m = np.add.reduce(x, axis=axis, keepdims=True) / acc.type(n)
        dev = x - m
        dev *= dev
        r = np.add.reduce(dev, axis=axis, keepdims=keepdim) / acc.type(max(n - corr, 0))
        if take_sqrt:
            r = np.sqrt(r)
        return wrap(r, out)
    return kernel


impl("var")(_var_kernel("var", False))
impl("std")(_var_kernel("std", True))


@impl("logsumexp")
def _logsumexp(self, dim, keepdim=False):
    out = float_dtype(self)
    acc = compute_np(out)
    a = arr(self)
    axis = reduce_dims("logsumexp", dim, a.ndim)
    x = _as(a, acc)
    m = np.maximum.reduce(x, axis=axis, keepdims=True, initial=_NEG_INF)
    m = np.where(np.isfinite(m), m, acc.type(0))  # all -inf -> -inf, any +inf -> +inf, NaN stays
    s = np.add.reduce(np.exp(x - m), axis=axis, keepdims=keepdim)
    return wrap(np.log(s) + np.reshape(m, np.shape(s)), out)


@impl("norm")
def _norm(self, p="fro", dim=None, keepdim=False, dtype=None):
    p, axis, out = norm_args(self, p, dim, dtype)
    acc = compute_np(out)
    x = _as(arr(self), acc)
    if p == "nuc":
        d0, d1 = axis
        sv = np.linalg.svd(np.moveaxis(x, (d0, d1), (-2, -1)), compute_uv=False)
        r = np.add.reduce(sv, axis=-1)
        if keepdim:
            r = np.expand_dims(r, tuple(sorted(axis)))
        return wrap(r, out)
    if p == 2.0:
        r = np.sqrt(np.add.reduce(x * x, axis=axis, keepdims=keepdim))
    elif p == 1.0:
        r = np.add.reduce(np.abs(x), axis=axis, keepdims=keepdim)
    elif p == math.inf:
        r = np.maximum.reduce(np.abs(x), axis=axis, keepdims=keepdim)
    elif p == -math.inf:
        r = np.minimum.reduce(np.abs(x), axis=axis, keepdims=keepdim)
    elif p == 0.0:
        r = np.add.reduce(x != 0, axis=axis, dtype=acc, keepdims=keepdim)
    else:
        ax = np.abs(x)
        if ax.ndim:
            np.power(ax, acc.type(p), out=ax)
        else:   # a 0-d input: np.abs gave a NumPy scalar, which can't be written into
            ax = np.power(ax, acc.type(p))
        r = np.add.reduce(ax, axis=axis, keepdims=keepdim) ** acc.type(1.0 / p)
    return wrap(r, out)


# ---- logical reductions and counts ----------------------------------------------------------------

def _logical_kernel(name, method):
    def kernel(self, dim=None, keepdim=False):
        a = arr(self)
        axis = None if dim is None else reduce_dims(name, dim, a.ndim, empty_all=False)
        if self._dtype is D.bfloat16:
            a = a != 0
        r = method(a, axis=axis, keepdims=keepdim)
        return wrap(r, D.uint8 if self._dtype is D.uint8 else D.bool)
    return kernel


impl("all")(_logical_kernel("all", np.ndarray.all))
impl("any")(_logical_kernel("any", np.ndarray.any))


@impl("count_nonzero")
def _count_nonzero(self, dim=None):
    a = arr(self)
    axis = None if dim is None else reduce_dims("count_nonzero", dim, a.ndim)
    return wrap(np.count_nonzero(a, axis=axis), _INT64)


# ---- softmax ---------------------------------------------------------------------------------------

def _softmax_kernel(name, log):
    def kernel(self, dim, dtype=None):
        out = softmax_dtype(name, self, dtype)
        acc = compute_np(out)
        a = arr(self)
        d = one_dim(name, dim, a.ndim)
        x = _as(a, acc)
        if a.ndim == 0:
            x = x.reshape(1)
        # max-shifted; a row of all -inf (or with +inf) gives NaN, as in PyTorch
        z = x - np.maximum.reduce(x, axis=d, keepdims=True, initial=_NEG_INF)
        if log:
            s = np.add.reduce(np.exp(z), axis=d, keepdims=True)
            np.log(s, out=s)
            z -= s
        else:
            np.exp(z, out=z)
            z /= np.add.reduce(z, axis=d, keepdims=True)
        if a.ndim == 0:
            z = z.reshape(())
        return wrap(z, out)
    return kernel


impl("softmax")(_softmax_kernel("softmax", False))
impl("log_softmax")(_softmax_kernel("log_softmax", True))
