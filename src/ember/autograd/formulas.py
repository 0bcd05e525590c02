"""Helpers that derivative formulas call (each built only from ember ops, so it is differentiable too)."""
from __future__ import annotations

import math

from ..core.shape import normalize_dim, normalize_dims
from ..dispatch import OPS

__all__ = ["zeros_for", "reduce_backward", "select_backward", "slice_backward", "index_view_backward",
           "diagonal_backward", "unfold_backward", "as_strided_backward", "inverse_permutation",
           "gelu_backward", "clamp_backward", "clamp_bound_backward", "maxmin_backward", "pow_self_backward",
           "pow_exponent_backward", "softmax_backward", "log_softmax_backward", "LN2", "LN10", "TWO_OVER_SQRT_PI"]

LN2 = math.log(2.0)
LN10 = math.log(10.0)
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _f(name):
    return OPS[name].fn


def zeros_for(grad, shape):
    return _f("zeros")(*shape, dtype=grad.dtype, device=grad.device)


def reduce_backward(grad, shape, dim, keepdim):
    """The grad of a reduction over `dim`, broadcast back to the input's `shape`."""
    n = len(shape)
    if not keepdim and n:
        dims = range(n) if dim is None or (not isinstance(dim, int) and len(dim) == 0) else normalize_dims(dim, n)
        for d in sorted(dims):
            grad = _f("unsqueeze")(grad, d)
    return _f("expand")(grad, *shape)


def select_backward(grad, shape, dim, index):
    z = zeros_for(grad, shape)
    _f("copy_")(_f("select")(z, dim, index), grad)
    return z


def slice_backward(grad, shape, dim, start, end, step):
    z = zeros_for(grad, shape)
    _f("copy_")(_f("slice")(z, dim, start, end, step), grad)
    return z


def index_view_backward(grad, shape, index):
    z = zeros_for(grad, shape)
    _f("copy_")(_f("_index_view")(z, index), grad)
    return z


def diagonal_backward(grad, shape, offset, dim1, dim2):
    z = zeros_for(grad, shape)
    _f("copy_")(_f("diagonal")(z, offset, dim1, dim2), grad)
    return z


def unfold_backward(grad, shape, dimension, size, step):
    """Windows may overlap: add each window's grad into its span."""
    from ..ops.view import movedim
    z = zeros_for(grad, shape)
    d = normalize_dim(dimension, len(shape)) if shape else 0
    n = grad.shape[d] if shape else grad.shape[0]
    for i in range(n):
        win = _f("select")(grad, d if shape else 0, i)          # window dim is last
        win = movedim(win, -1, d) if shape else win
        target = _f("slice")(z, d, i * step, i * step + size, 1) if shape else z
        _f("add_")(target, win)
    return z


def as_strided_backward(grad, self, size, stride, storage_offset):
    """Scatter-add the grad of an as_strided view back onto the input's elements (handles overlap)."""
    import numpy as np
    from .._tensor import Tensor
    off = self.storage_offset() if storage_offset is None else storage_offset
    span = max([self._offset + sum((n - 1) * s for n, s in zip(self._shape, self._stride)) + 1,
                off + sum((n - 1) * s for n, s in zip(size, stride)) + 1, 1])
    # element index in storage of every output position, and of every input position
    out_idx = np.full(tuple(size), off, np.int64)
    for k, (n, s) in enumerate(zip(size, stride)):
        shp = [1] * len(size)
        shp[k] = n
        out_idx = out_idx + (np.arange(n, dtype=np.int64) * s).reshape(shp)
    in_idx = np.full(tuple(self._shape), self._offset, np.int64)
    for k, (n, s) in enumerate(zip(self._shape, self._stride)):
        shp = [1] * len(self._shape)
        shp[k] = n
        in_idx = in_idx + (np.arange(n, dtype=np.int64) * s).reshape(shp)
    flat = zeros_for(grad, (span,))
    oi = Tensor._from_numpy(out_idx.reshape(-1))
    flat = _f("index_add")(flat, 0, oi, _f("reshape")(grad, -1))
    ii = Tensor._from_numpy(np.ascontiguousarray(in_idx).reshape(-1))
    return _f("reshape")(_f("index_select")(flat, 0, ii), *self._shape)


def inverse_permutation(dims):
    n = len(dims)
    dims = [d % n if n else d for d in dims]
    inv = [0] * n
    for i, d in enumerate(dims):
        inv[d] = i
    return inv


def gelu_backward(grad, x, approximate):
    if approximate == "tanh":
        k = math.sqrt(2.0 / math.pi)
        inner = k * (x + 0.044715 * x * x * x)
        t = inner.tanh()
        d_inner = k * (1 + 3 * 0.044715 * x * x)
        return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner)
    cdf = 0.5 * (1 + (x * _INV_SQRT2).erf())
    pdf = (x * x * -0.5).exp() * _INV_SQRT_2PI
    return grad * (cdf + x * pdf)


def clamp_backward(grad, x, lo, hi):
    mask = None
    if lo is not None:
        mask = x >= lo
    if hi is not None:
        m = x <= hi
        mask = m if mask is None else mask & m
    return grad if mask is None else _f("where")(mask, grad, 0.0)


def clamp_bound_backward(grad, x, bound, other_bound, is_min):
    """Grad of a tensor `min` (is_min) or `max` bound: flows where the bound was chosen."""
    mask = (x < bound) if is_min else (x > bound)
    if other_bound is not None and is_min:
        mask = mask & (bound <= other_bound) if not hasattr(other_bound, "_shape") else mask & (bound <= other_bound)
    return _f("where")(mask, grad, 0.0)


def maxmin_backward(grad, x, other, is_self, is_max):
    """maximum/minimum: the grad goes to the larger (smaller) input, split in half on ties."""
    win = (x > other) if is_max else (x < other)
    if not is_self:
        win = (other > x) if is_max else (other < x)
    tie = x == other
    return _f("where")(win, grad, 0.0) + _f("where")(tie, grad * 0.5, 0.0)


def pow_self_backward(grad, x, exponent):
    if isinstance(exponent, (int, float)):
        if exponent == 0:
            return grad * 0.0
        return grad * exponent * x.pow(exponent - 1)
    return _f("where")(exponent == 0.0, 0.0, grad * exponent * x.pow(exponent - 1))


def pow_exponent_backward(grad, x, exponent, result):
    if isinstance(x, (int, float)):
        return grad * result * math.log(x) if x > 0 else grad * 0.0 if x == 0 else grad * result * math.nan
    cond = (x == 0) & (exponent >= 0)
    return _f("where")(cond, 0.0, grad * result * x.log())


def softmax_backward(grad, result, dim):
    gy = grad * result
    return gy - result * gy.sum(dim, True)


def log_softmax_backward(grad, result, dim):
    return grad - result.exp() * grad.sum(dim, True)
