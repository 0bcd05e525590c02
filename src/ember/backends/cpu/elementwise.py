"""CPU kernels for elementwise ops, on NumPy ufuncs.

Each op is a `compute(*args) -> (ndarray, ember dtype)` function; the out-of-place kernel wraps
its result and the in-place kernel (`add_`) casts it into `self` after PyTorch's checks.
"""
from __future__ import annotations

import math

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.shape import broadcast_shapes
from ...ops.elementwise import BINARY, UNARY, inplace_check, out_dtype
from . import special
from ...dispatch import OPS
from ._common import arr, compute_np, impl, operand, wrap

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _erf(x):
    return special.erf(x).astype(x.dtype, copy=False)


def _int_identity(fn):
    """floor/ceil/round/trunc are the identity on integers (NumPy would return floats)."""
    return lambda x: x.copy() if x.dtype.kind in "iub" else fn(x)


def _no_bool(name, fn, hint):
    def k(x, *rest):
        if x.dtype == np.bool_:
            raise RuntimeError(f"{name} on a bool tensor is not supported; {hint}")
        return fn(x, *rest)
    return k


UNARY_FN = {
    "neg": _no_bool("Negation, the `-` operator,", np.negative, "use the `~` or `logical_not()` operator to invert a mask"),
    "abs": np.abs, "sign": np.sign, "square": np.square, "relu": lambda x: np.maximum(x, x.dtype.type(0)),
    "floor": _int_identity(np.floor), "ceil": _int_identity(np.ceil), "round": _int_identity(np.rint),
    "trunc": _int_identity(np.trunc), "frac": lambda x: x - np.trunc(x), "bitwise_not": np.invert,
    "reciprocal": np.reciprocal, "exp": np.exp, "exp2": np.exp2, "expm1": np.expm1, "log": np.log,
    "log2": np.log2, "log10": np.log10, "log1p": np.log1p, "sqrt": np.sqrt, "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh, "acosh": np.arccosh,
    "atanh": np.arctanh, "sigmoid": _sigmoid, "erf": _erf, "silu": lambda x: x * _sigmoid(x),
    "isnan": np.isnan, "isinf": np.isinf, "isfinite": np.isfinite, "isposinf": np.isposinf,
    "isneginf": np.isneginf, "logical_not": np.logical_not, "signbit": np.signbit,
}


def _int_div_check(name, y):
    if (y == 0).any() if isinstance(y, np.ndarray) else y == 0:
        raise ZeroDivisionError(f"{name}: integer division by zero")


def _checked_int(name, fn):
    def k(x, y):
        if x.dtype.kind in "iu":
            _int_div_check(name, y)
        return fn(x, y)
    return k


def _bitwise(name, fn):
    def k(x, y):
        if x.dtype.kind == "f":
            raise RuntimeError(f"{name}: not implemented for floating-point dtypes; use integer or bool tensors")
        return fn(x, y)
    return k


BINARY_FN = {
    "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum, "fmax": np.fmax, "fmin": np.fmin,
    "remainder": _checked_int("remainder", np.remainder), "fmod": _checked_int("fmod", np.fmod),
    "floor_divide": _checked_int("floor_divide", np.floor_divide), "pow": np.power,
    "bitwise_and": _bitwise("bitwise_and", np.bitwise_and), "bitwise_or": _bitwise("bitwise_or", np.bitwise_or),
    "bitwise_xor": _bitwise("bitwise_xor", np.bitwise_xor), "atan2": np.arctan2, "hypot": np.hypot,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}


# ---- registration helpers ------------------------------------------------------------------

def _register(name, compute, inplace=True):
    @impl(name)
    def out_of_place(*args):
        r, dt = compute(*args)
        return wrap(r, dt)

    if inplace:
        @impl(name + "_")
        def in_place(self, *args):
            r, dt = compute(self, *args)
            inplace_check(name + "_", self, dt)
            if r.shape != self._shape:
                raise RuntimeError(f"{name}_: output with shape {list(self._shape)} doesn't match the "
                                   f"broadcast shape {list(r.shape)}")
            np.copyto(arr(self), r, casting="unsafe")
            return self


def _broadcast_error(name, *operands):
    shapes = [x._shape for x in operands if isinstance(x, Tensor)]
    broadcast_shapes(*shapes)  # raises the readable error
    raise  # pragma: no cover - a ValueError not about broadcasting


def _unary_compute(name, rule, fn):
    def compute(self):
        dt = self._dtype if rule == "same" else out_dtype(rule, self)
        cnp = compute_np(self._dtype if rule == "bool" else dt)
        return fn(operand(self, cnp)), dt
    return compute


def _binary_compute(name, rule, fn, reflected=False):
    def compute(self, other):
        dt = out_dtype(rule, self, other) if rule != "bool" else None
        cdt = dt if dt is not None else D.result_type(self, other)
        cnp = compute_np(cdt)
        x, y = operand(self, cnp), operand(other, cnp)
        if reflected:
            x, y = y, x
        try:
            r = fn(x, y)
        except ValueError:
            _broadcast_error(name, self, other)
        return r, (dt if dt is not None else D.bool)
    return compute


for _name, _rule in UNARY.items():
    _register(_name, _unary_compute(_name, _rule, UNARY_FN[_name]), inplace=(_name + "_") in OPS)
for _name, _rule in BINARY.items():
    _register(_name, _binary_compute(_name, _rule, BINARY_FN[_name]), inplace=(_name + "_") in OPS)
for _name in ("div", "floor_divide", "remainder", "pow", "fmod", "atan2"):
    _fn = np.true_divide if _name == "div" else BINARY_FN[_name]
    _register("_r" + _name, _binary_compute("_r" + _name, BINARY.get(_name, "float"), _fn, reflected=True),
              inplace=False)


def _add_compute(name, sign):
    def compute(self, other, alpha=1):
        if name == "sub" and self._dtype is D.bool and (not isinstance(other, Tensor) or other._dtype is D.bool):
            raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported; "
                               "use the `^` or `logical_xor()` operator instead")
        dt = D.result_type(self, other)
        if alpha != 1 and isinstance(alpha, float) and dt.category != 2:
            raise RuntimeError(f"For integral input tensors, argument alpha must not be a floating point number "
                               f"(got alpha={alpha} with dtype {dt})")
        cnp = compute_np(dt)
        x, y = operand(self, cnp), operand(other, cnp)
        if alpha != 1:
            y = y * operand(alpha, cnp)
        try:
            r = np.add(x, y) if sign > 0 else np.subtract(x, y)
        except ValueError:
            _broadcast_error(name, self, other)
        return r, dt
    return compute


_register("add", _add_compute("add", 1))
_register("sub", _add_compute("sub", -1))


@impl("rsub")
def _rsub(self, other, alpha=1):
    dt = D.result_type(self, other)
    cnp = compute_np(dt)
    return wrap(np.subtract(operand(other, cnp), operand(self, cnp) * operand(alpha, cnp)), dt)


def _div_compute(self, other, rounding_mode=None):
    if rounding_mode is None:
        dt = out_dtype("float", self, other)
        cnp = compute_np(dt)
        return np.true_divide(operand(self, cnp), operand(other, cnp)), dt
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found {rounding_mode!r}")
    dt = D.result_type(self, other)
    cnp = compute_np(dt)
    x, y = operand(self, cnp), operand(other, cnp)
    if cnp.kind == "f":
        r = np.floor_divide(x, y) if rounding_mode == "floor" else np.trunc(np.true_divide(x, y))
        return r, dt
    _int_div_check("div", y)
    q = np.floor_divide(x, y)
    if rounding_mode == "trunc":  # C division: round toward zero
        q = q + ((np.remainder(x, y) != 0) & ((x < 0) != (y < 0))).astype(q.dtype)
    return q, dt


_register("div", _div_compute)


# ---- activations with parameters -----------------------------------------------------------

def _float_unary(self):
    dt = out_dtype("float", self)
    return operand(self, compute_np(dt)), dt


@impl("gelu")
def _gelu(self, approximate="none"):
    x, dt = _float_unary(self)
    if approximate == "none":
        r = 0.5 * x * (1.0 + _erf(x * x.dtype.type(_SQRT_HALF)))
    elif approximate == "tanh":
        r = 0.5 * x * (1.0 + np.tanh(x.dtype.type(_SQRT_2_OVER_PI) * (x + 0.044715 * x * x * x)))
    else:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return wrap(r, dt)


@impl("softplus")
def _softplus(self, beta=1, threshold=20):
    x, dt = _float_unary(self)
    bx = x * beta
    return wrap(np.where(bx > threshold, x, np.log1p(np.exp(bx)) / beta), dt)


@impl("leaky_relu")
def _leaky_relu(self, negative_slope=0.01):
    dt = self._dtype
    x = operand(self, compute_np(dt))
    return wrap(np.where(x > 0, x, x * negative_slope), dt)


# ---- ternary and misc ----------------------------------------------------------------------

def _clamp_compute(self, min=None, max=None):
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    dt = D.result_type(*[v for v in (self, min, max) if v is not None])
    cnp = compute_np(dt)
    r = operand(self, cnp)
    if min is not None:
        r = np.maximum(r, operand(min, cnp))
    if max is not None:
        r = np.minimum(r, operand(max, cnp))
    return r, dt


_register("clamp", _clamp_compute)


@impl("where")
def _where(condition, self, other):
    if condition._dtype is not D.bool:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {condition._dtype}")
    dt = D.result_type(self, other)
    cnp = compute_np(dt)
    try:
        r = np.where(arr(condition), operand(self, cnp), operand(other, cnp))
    except ValueError:
        _broadcast_error("where", condition, self, other)
    return wrap(r, dt)


def _lerp_compute(self, end, weight):
    if self._dtype is not end._dtype:
        raise RuntimeError(f"lerp expected dtype {self._dtype} for `end` but got dtype {end._dtype}")
    dt = self._dtype
    cnp = compute_np(dt)
    s, e, w = operand(self, cnp), operand(end, cnp), operand(weight, cnp)
    diff = e - s
    r = np.where(np.abs(w) < 0.5, s + w * diff, e - diff * (1 - w))
    return r, dt


_register("lerp", _lerp_compute)


def _addc_compute(fn):
    def compute(self, tensor1, tensor2, value=1):
        dt = D.result_type(self, tensor1, tensor2)
        cnp = compute_np(dt)
        return operand(self, cnp) + operand(value, cnp) * fn(operand(tensor1, cnp), operand(tensor2, cnp)), dt
    return compute


_register("addcmul", _addc_compute(np.multiply))
_register("addcdiv", _addc_compute(np.true_divide))


def _nan_to_num_compute(self, nan=0.0, posinf=None, neginf=None):
    x = arr(self)
    r = x.copy()
    if self._dtype.category == 2:
        info = _finfo(self._dtype)
        r[np.isnan(x)] = nan
        r[np.isposinf(x)] = info.max if posinf is None else posinf
        r[np.isneginf(x)] = info.min if neginf is None else neginf
    return r, self._dtype


def _finfo(dt):
    import ml_dtypes
    return ml_dtypes.finfo(dt.np) if dt is D.bfloat16 else np.finfo(dt.np)


_register("nan_to_num", _nan_to_num_compute)


@impl("isclose")
def _isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    if self._dtype is not other._dtype:
        raise RuntimeError(f"isclose: {self._dtype} did not match {other._dtype}")
    cnp = compute_np(self._dtype)
    a, b = operand(self, cnp), operand(other, cnp)
    if cnp.kind != "f":
        return wrap(np.equal(a, b), D.bool)
    close = (a == b) | (np.abs(a - b) <= atol + rtol * np.abs(b))
    if equal_nan:
        close |= np.isnan(a) & np.isnan(b)
    return wrap(close, D.bool)


# ---- conversion and copies ------------------------------------------------------------------

@impl("to_dtype")
def _to_dtype(self, dtype, copy=False):
    if dtype is self._dtype and not copy:
        return self
    return wrap(arr(self).astype(dtype.np), dtype)


@impl("copy_")
def _copy_(self, src, non_blocking=False):
    try:
        np.copyto(arr(self), arr(src), casting="unsafe")
    except ValueError:
        raise RuntimeError(f"copy_: the source of shape {list(src._shape)} cannot be broadcast to the "
                           f"destination of shape {list(self._shape)}") from None
    return self


@impl("fill_")
def _fill_(self, value):
    if isinstance(value, Tensor):
        if value._shape:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                               f"{len(value._shape)} dimensions")
        value = value.item()
    arr(self)[...] = value
    return self


@impl("zero_")
def _zero_(self):
    arr(self)[...] = 0
    return self


@impl("clone")
def _clone(self):
    return wrap(np.array(arr(self), copy=True, order="C"), self._dtype)

