"""CPU kernels for elementwise ops, on NumPy ufuncs.

Each op is a `compute(*args) -> (ndarray, ember dtype)` function; the out-of-place kernel wraps
its result and the in-place kernel (`add_`) casts it into `self` after PyTorch's checks.

Inputs are cast to the op's computation dtype as PyTorch's TensorIterator does: every operand to
the common dtype; float16/bfloat16 are then computed in float32 (opmath) and rounded back once, so
an operand of another dtype (a Python float, a float64 tensor) is first rounded to the low
precision dtype, as PyTorch does.
"""
from __future__ import annotations

import math

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.shape import broadcast_shapes
from ...dispatch import OPS
from ...ops.elementwise import BINARY, UNARY, inplace_check
from . import special
from ._common import arr, impl, operand, wrap

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_F32 = np.dtype(np.float32)
_LOWP = (D.float16, D.bfloat16)
_FLOAT = frozenset((D.float16, D.bfloat16, D.float32, D.float64))
_INT = frozenset((D.uint8, D.int8, D.int16, D.int32, D.int64))
_BOOL = frozenset((D.bool,))
_get_default = D.get_default_dtype
_result_type = D.result_type


# ---- operands --------------------------------------------------------------------------------

def _lowp(v, dt):
    """An operand of a float16/bfloat16 computation as float32, rounded to `dt` first if it is not `dt`."""
    if isinstance(v, Tensor):
        a = arr(v)
        if v._dtype is not dt:
            a = a.astype(dt.np)
        return a.astype(_F32)
    return _F32.type(dt.np.type(v))


def _in(v, dt):
    """Operand `v` (tensor or Python scalar) in the NumPy dtype that ops of ember dtype `dt` compute in."""
    if dt is D.float16 or dt is D.bfloat16:
        return _lowp(v, dt)
    return operand(v, dt.np)


# ---- errors ------------------------------------------------------------------------------------

def _not_impl(name, dt):
    raise NotImplementedError(f"{name}: not implemented for {dt} tensors")


def _neg_bool(name, dt):
    raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
                       "invert a mask, use the `~` or `logical_not()` operator instead.")


def _relu_bool(name, dt):
    raise RuntimeError(f"{name}: Boolean inputs not supported for relu; convert the tensor with .int() or .float()")


def _sub_bool():
    raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to "
                       "invert a mask, use the `~` or `logical_not()` operator instead.")


def _zero_div(name):
    raise RuntimeError(f"ZeroDivisionError: {name}: integer division by zero")


def _broadcast_error(name, *operands):
    shapes = [x._shape for x in operands if isinstance(x, Tensor)]
    broadcast_shapes(*shapes)  # raises the readable error
    raise  # pragma: no cover - a ValueError not about broadcasting


# dtypes of `self` (unary) or of the computation (binary) an op refuses, and the error it raises
_UNARY_REJECT = {
    "neg": (_BOOL, _neg_bool), "abs": (_BOOL, _not_impl), "relu": (_BOOL, _relu_bool),
    "floor": (_BOOL, _not_impl), "ceil": (_BOOL, _not_impl), "round": (_BOOL, _not_impl),
    "trunc": (_BOOL, _not_impl), "frac": (_BOOL | _INT, _not_impl), "silu": (_BOOL | _INT, _not_impl),
    "bitwise_not": (_FLOAT, _not_impl),
}
_BINARY_REJECT = {
    "bitwise_and": (_FLOAT, _not_impl), "bitwise_or": (_FLOAT, _not_impl), "bitwise_xor": (_FLOAT, _not_impl),
    "remainder": (_BOOL, _not_impl), "fmod": (_BOOL, _not_impl), "floor_divide": (_BOOL, _not_impl),
    "pow": (_BOOL, _not_impl), "hypot": (_BOOL | _INT, _not_impl),
}


# ---- unary functions -----------------------------------------------------------------------------

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _erf(x):
    return special.erf(x).astype(x.dtype, copy=False)


def _int_identity(fn):
    """floor/ceil/round/trunc are the identity on integers (NumPy would return floats)."""
    return lambda x: x.copy() if x.dtype.kind in "iu" else fn(x)


def _sign(x):
    if x.dtype.kind == "b":
        return x.copy()
    r = np.sign(x)
    if x.dtype.kind == "f":
        nan = np.isnan(r)
        if nan.any():  # PyTorch: (0 < x) - (x < 0), so 0 for NaN
            r = np.where(nan, r.dtype.type(0), r)
    return r


UNARY_FN = {
    "neg": np.negative, "abs": np.abs, "sign": _sign, "square": np.square,
    "relu": lambda x: np.maximum(x, x.dtype.type(0)),
    "floor": _int_identity(np.floor), "ceil": _int_identity(np.ceil), "round": _int_identity(np.rint),
    "trunc": _int_identity(np.trunc), "frac": lambda x: x - np.trunc(x), "bitwise_not": np.invert,
    "reciprocal": np.reciprocal, "exp": np.exp, "exp2": np.exp2, "expm1": np.expm1, "log": np.log,
    "log2": np.log2, "log10": np.log10, "log1p": np.log1p, "sqrt": np.sqrt, "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh, "acosh": np.arccosh,
    "atanh": np.arctanh, "sigmoid": _sigmoid, "erf": _erf, "silu": lambda x: x / (1.0 + np.exp(-x)),
    "isnan": np.isnan, "isinf": np.isinf, "isfinite": np.isfinite, "isposinf": np.isposinf,
    "isneginf": np.isneginf, "logical_not": np.logical_not, "signbit": np.signbit,
}


# ---- binary functions ----------------------------------------------------------------------------

def _int_pow(x, y):
    """Integer power as PyTorch: a negative tensor exponent gives 1 for base 1, +-1 for base -1, else 0
    (a negative scalar exponent was refused before)."""
    if type(y) is not np.ndarray or y.dtype.kind == "u":
        return np.power(x, y)
    neg = y < 0
    if not neg.any():
        return np.power(x, y)
    r = np.power(x, np.where(neg, y.dtype.type(0), y))
    one = x.dtype.type(1) if isinstance(x, (np.ndarray, np.generic)) else 1
    special_ = np.where(x == one, one, np.where(x == -one, np.where(y & 1, -one, one), 0)).astype(r.dtype)
    return np.where(neg, special_, r)


def _pow(x, y):
    return _int_pow(x, y) if x.dtype.kind in "iu" else np.power(x, y)


BINARY_FN = {
    "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum, "fmax": np.fmax, "fmin": np.fmin,
    "remainder": np.remainder, "fmod": np.fmod, "floor_divide": np.floor_divide, "pow": _pow,
    "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor,
    "atan2": np.arctan2, "hypot": np.hypot,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}
_INT_DIVISION = frozenset(("remainder", "fmod", "floor_divide"))


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
            if dt is not self._dtype:
                inplace_check(name + "_", self, dt)
            if r.shape != self._shape:
                raise RuntimeError(f"{name}_: output with shape {list(self._shape)} doesn't match the "
                                   f"broadcast shape {list(r.shape)}")
            np.copyto(arr(self), r, casting="unsafe")
            return self


def _unary_compute(name, rule, fn):
    reject = _UNARY_REJECT.get(name)

    def compute(self):
        sdt = self._dtype
        if reject is not None and sdt in reject[0]:
            reject[1](name, sdt)
        if rule == "same":
            dt = cdt = sdt
        elif rule == "float":
            dt = cdt = sdt if sdt.category == 2 else _get_default()
        elif rule == "bool":
            dt, cdt = D.bool, sdt
        else:  # "square": pow(self, 2), so bool gives int64
            dt = cdt = D.int64 if sdt is D.bool else sdt
        return fn(_in(self, cdt)), dt
    return compute


def _binary_compute(name, rule, fn, reflected=False):
    reject = _BINARY_REJECT.get(name)
    int_division = name in _INT_DIVISION

    def compute(self, other):
        cdt = _result_type(self, other)
        if rule == "same":
            dt = cdt
        elif rule == "float":
            dt = cdt = cdt if cdt.category == 2 else _get_default()
        else:
            dt = D.bool
        if reject is not None and cdt in reject[0]:
            reject[1](name, cdt)
        x, y = _in(self, cdt), _in(other, cdt)
        if reflected:
            x, y = y, x
        if int_division and cdt.category == 1 and not np.all(y):
            _zero_div(name)
        try:
            r = fn(x, y)
        except ValueError:
            _broadcast_error(name, self, other)
        return r, dt
    return compute


for _name, _rule in UNARY.items():
    _register(_name, _unary_compute(_name, _rule, UNARY_FN[_name]), inplace=(_name + "_") in OPS)
for _name, _rule in BINARY.items():
    if _name != "pow":
        _register(_name, _binary_compute(_name, _rule, BINARY_FN[_name]), inplace=(_name + "_") in OPS)
for _name in ("floor_divide", "remainder", "pow", "fmod", "atan2"):
    _register("_r" + _name, _binary_compute(_name, BINARY[_name], BINARY_FN[_name], reflected=True), inplace=False)


def _pow_compute(self, other):
    dt = _result_type(self, other)
    if not isinstance(other, Tensor):  # PyTorch's pow(Tensor, Scalar) checks the scalar itself
        if dt is D.bool:
            return (arr(self).copy() if other else np.ones(self._shape, np.bool_)), dt
        if dt.category == 1 and other < 0:
            raise RuntimeError(f"pow: Integers to negative integer powers are not allowed (exponent {other} "
                               f"for a {dt} tensor); use a floating-point exponent or tensor")
    elif dt is D.bool:
        _not_impl("pow", dt)
    x, y = _in(self, dt), _in(other, dt)
    try:
        return (_int_pow(x, y) if dt.category == 1 else np.power(x, y)), dt
    except ValueError:
        _broadcast_error("pow", self, other)


_register("pow", _pow_compute)


def _is_bool(v):
    return v._dtype is D.bool if isinstance(v, Tensor) else isinstance(v, (bool, np.bool_))


def _scaled(y, alpha, dt):
    """alpha * y, with PyTorch's checks on alpha."""
    if isinstance(alpha, (bool, np.bool_)):
        if dt is not D.bool:
            raise RuntimeError(f"Boolean alpha only supported for Boolean results (got alpha={alpha} for dtype {dt})")
        return y if alpha else np.zeros_like(y)
    if dt.category != 2 and not isinstance(alpha, (int, np.integer)):
        raise RuntimeError(f"For integral input tensors, argument alpha must not be a floating point number "
                           f"(got alpha={alpha} with dtype {dt})")
    return y * (_F32.type(alpha) if dt is D.float16 or dt is D.bfloat16 else operand(alpha, dt.np))


def _add_compute(name, ufunc):
    def compute(self, other, alpha=1):
        if ufunc is np.subtract and (self._dtype is D.bool or _is_bool(other)):
            _sub_bool()
        dt = _result_type(self, other)
        x, y = _in(self, dt), _in(other, dt)
        if alpha.__class__ is not int or alpha != 1:
            y = _scaled(y, alpha, dt)
        try:
            r = ufunc(x, y)
        except ValueError:
            _broadcast_error(name, self, other)
        return r, dt
    return compute


_register("add", _add_compute("add", np.add))
_register("sub", _add_compute("sub", np.subtract))


def _rsub_compute(self, other, alpha=1):
    """other - alpha * self"""
    if self._dtype is D.bool or _is_bool(other):
        _sub_bool()
    dt = _result_type(self, other)
    x, y = _in(self, dt), _in(other, dt)
    if alpha.__class__ is not int or alpha != 1:
        x = _scaled(x, alpha, dt)
    try:
        r = np.subtract(y, x)
    except ValueError:
        _broadcast_error("rsub", self, other)
    return r, dt


_register("rsub", _rsub_compute, inplace=False)


def _div_compute(self, other, rounding_mode=None, reflected=False):
    if rounding_mode is None:
        dt = _result_type(self, other)
        if dt.category != 2:
            dt = _get_default()
        x, y = _in(self, dt), _in(other, dt)
        if reflected:
            x, y = y, x
        try:
            return np.true_divide(x, y), dt
        except ValueError:
            _broadcast_error("div", self, other)
    if rounding_mode != "trunc" and rounding_mode != "floor":
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                           f"{rounding_mode!r}")
    dt = _result_type(self, other)
    if dt is D.bool:
        _not_impl(f"div (rounding_mode={rounding_mode!r})", dt)
    x, y = _in(self, dt), _in(other, dt)
    if reflected:
        x, y = y, x
    try:
        if dt.category == 2:
            r = np.floor_divide(x, y) if rounding_mode == "floor" else np.trunc(np.true_divide(x, y))
            return r, dt
        if not np.all(y):
            _zero_div("div")
        q = np.floor_divide(x, y)
    except ValueError:
        _broadcast_error("div", self, other)
    if rounding_mode == "trunc" and dt is not D.uint8:  # C division rounds toward zero
        q = q + ((q < 0) & (q * y != x))
    return q, dt


_register("div", _div_compute)


@impl("_rdiv")
def _rdiv(self, other):
    r, dt = _div_compute(self, other, None, True)
    return wrap(r, dt)


# ---- activations with parameters -----------------------------------------------------------

def _float_only(name, self):
    dt = self._dtype
    if dt.category != 2:
        _not_impl(name, dt)
    return _in(self, dt), dt


@impl("gelu")
def _gelu(self, approximate="none"):
    if approximate != "none" and approximate != "tanh":
        raise RuntimeError(f"gelu: approximate argument must be either 'none' or 'tanh', got {approximate!r}")
    x, dt = _float_only("gelu", self)
    if approximate == "none":
        r = 0.5 * x * (1.0 + _erf(x * x.dtype.type(_SQRT_HALF)))
    else:
        r = 0.5 * x * (1.0 + np.tanh(x.dtype.type(_SQRT_2_OVER_PI) * (x + 0.044715 * x * x * x)))
    return wrap(r, dt)


@impl("softplus")
def _softplus(self, beta=1, threshold=20):
    x, dt = _float_only("softplus", self)
    bx = x * beta
    return wrap(np.where(bx > threshold, x, np.log1p(np.exp(bx)) / beta), dt)


@impl("leaky_relu")
def _leaky_relu(self, negative_slope=0.01):
    x, dt = _float_only("leaky_relu", self)
    return wrap(np.where(x > 0, x, x * negative_slope), dt)


# ---- ternary and misc ----------------------------------------------------------------------

def _clamp_compute(self, min=None, max=None):
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    dt = _result_type(*[v for v in (self, min, max) if v is not None])
    if dt is D.bool and not (min is None and isinstance(max, Tensor) or max is None and isinstance(min, Tensor)):
        _not_impl("clamp (bool tensors: only one tensor bound is supported)", dt)
    r = _in(self, dt)
    try:
        if min is not None:
            r = np.maximum(r, _in(min, dt))
        if max is not None:
            r = np.minimum(r, _in(max, dt))
    except ValueError:
        _broadcast_error("clamp", self, min, max)
    return r, dt


_register("clamp", _clamp_compute)


@impl("where")
def _where(condition, self, other):
    c = condition._dtype
    if c is not D.bool and c is not D.uint8:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {c}")
    dt = _result_type(self, other)
    try:
        r = np.where(arr(condition), _in(self, dt), _in(other, dt))
    except ValueError:
        _broadcast_error("where", condition, self, other)
    return wrap(r, dt)


def _lerp_compute(self, end, weight):
    dt = self._dtype
    if end._dtype is not dt:
        raise RuntimeError(f"lerp: expected dtype {dt} for `end` but got dtype {end._dtype}")
    if isinstance(weight, Tensor) and weight._shape and weight._dtype is not dt:
        raise RuntimeError(f"lerp: expected dtype {dt} for `weight` but got dtype {weight._dtype}")
    if dt.category != 2:
        _not_impl("lerp", dt)
    s, e, w = _in(self, dt), _in(end, dt), _in(weight, dt)
    diff = e - s
    try:
        r = np.where(np.abs(w) < 0.5, s + w * diff, e - diff * (1 - w))
    except ValueError:
        _broadcast_error("lerp", self, end, weight)
    return r, dt


_register("lerp", _lerp_compute)


def _addc_compute(name, fn):
    def compute(self, tensor1, tensor2, value=1):
        if fn is np.true_divide and tensor1._dtype.category != 2 and tensor2._dtype.category != 2:
            raise RuntimeError("addcdiv: integer division with addcdiv is no longer supported; for true division "
                               "cast tensor1 or tensor2 to a floating point dtype, for floor division use "
                               "(input + value * tensor1 // tensor2)")
        dt = _result_type(self, tensor1, tensor2)
        if dt is D.bool:
            _not_impl(name, dt)
        if isinstance(value, (bool, np.bool_)):
            value = int(value)
        elif dt.category != 2 and isinstance(value, (float, np.floating)):
            value = int(value)
        v = _F32.type(value) if dt is D.float16 or dt is D.bfloat16 else operand(value, dt.np)
        try:
            r = _in(self, dt) + v * fn(_in(tensor1, dt), _in(tensor2, dt))
        except ValueError:
            _broadcast_error(name, self, tensor1, tensor2)
        return r, dt
    return compute


_register("addcmul", _addc_compute("addcmul", np.multiply))
_register("addcdiv", _addc_compute("addcdiv", np.true_divide))


def _finfo(dt):
    import ml_dtypes
    return ml_dtypes.finfo(dt.np) if dt is D.bfloat16 else np.finfo(dt.np)


def _nan_to_num_compute(self, nan=0.0, posinf=None, neginf=None):
    dt = self._dtype
    x = arr(self)
    if dt.category != 2:
        return x.copy(), dt
    info = _finfo(dt)
    hi = info.max if posinf is None else posinf
    lo = info.min if neginf is None else neginf
    t = dt.np.type
    r = np.where(np.isnan(x), t(nan), x)
    np.copyto(r, t(hi), where=np.isposinf(x))
    np.copyto(r, t(lo), where=np.isneginf(x))
    return r, dt


_register("nan_to_num", _nan_to_num_compute)


@impl("isclose")
def _isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    dt = self._dtype
    if other._dtype is not dt:
        raise RuntimeError(f"isclose: {dt} did not match {other._dtype}; both tensors must have the same dtype")
    if rtol < 0:
        raise RuntimeError(f"isclose: rtol must be greater than or equal to zero, but got {rtol}")
    if atol < 0:
        raise RuntimeError(f"isclose: atol must be greater than or equal to zero, but got {atol}")
    a, b = arr(self), arr(other)
    try:
        close = np.equal(a, b)
    except ValueError:
        _broadcast_error("isclose", self, other)
    if equal_nan and dt.category == 2:
        close |= np.isnan(a) & np.isnan(b)
    if rtol == 0 and atol == 0:
        return wrap(close, D.bool)
    if dt.category == 2:  # PyTorch computes the errors in the tensors' dtype
        cnp = _F32 if dt is D.float16 or dt is D.bfloat16 else dt.np
        a, b = a.astype(cnp, copy=False), b.astype(cnp, copy=False)
        allowed = cnp.type(atol) + np.abs(cnp.type(rtol) * b)
        actual = np.abs(a - b)
        if cnp is _F32 and dt is not D.float32:
            allowed, actual = allowed.astype(dt.np).astype(_F32), actual.astype(dt.np).astype(_F32)
        close |= np.isfinite(actual) & (actual <= allowed)
    else:  # integer error (wrapping like C), float allowance in the default dtype
        f = _get_default().np if _get_default() not in _LOWP else _F32
        if dt is D.bool:
            a, b = a.astype(f), b.astype(f)
        actual = np.abs(a - b).astype(f)
        close |= actual <= f.type(atol) + np.abs(f.type(rtol) * b.astype(f))
    return wrap(close, D.bool)


# ---- conversion and copies ------------------------------------------------------------------

@impl("to_dtype")
def _to_dtype(self, dtype, copy=False):
    if dtype is self._dtype and not copy:
        return self
    return wrap(arr(self).astype(dtype.np, order="C"), dtype)


@impl("copy_")
def _copy_(self, src, non_blocking=False):
    try:
        np.copyto(arr(self), arr(src), casting="unsafe")
    except ValueError:
        raise RuntimeError(f"copy_: the source of shape {list(src._shape)} cannot be broadcast to the "
                           f"destination of shape {list(self._shape)}") from None
    return self


def _fill_value(value, dt):
    """A Python scalar as a NumPy scalar of `dt`, refusing values out of its range like PyTorch."""
    if dt is D.bool:
        return np.bool_(value)
    if dt.category == 1:
        info = np.iinfo(dt.np)
        if isinstance(value, float) and not math.isfinite(value):
            bad = True
        else:
            bad = value > info.max or value < (info.min if info.min else -info.max)
        if bad:
            raise RuntimeError(f"fill_: value {value} cannot be converted to type {dt} without overflow")
        if isinstance(value, float):
            value = int(value)
        return np.array(value).astype(dt.np)[()]
    value = float(value)
    if math.isfinite(value) and abs(value) > _finfo(dt).max:
        raise RuntimeError(f"fill_: value {value} cannot be converted to type {dt} without overflow")
    return dt.np.type(value)


@impl("fill_")
def _fill_(self, value):
    if isinstance(value, Tensor):
        if value._shape:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                               f"{len(value._shape)} dimensions")
        np.copyto(arr(self), arr(value), casting="unsafe")
        return self
    arr(self).fill(_fill_value(value, self._dtype))
    return self


@impl("zero_")
def _zero_(self):
    arr(self).fill(0)
    return self


@impl("clone")
def _clone(self):
    return wrap(np.array(arr(self), copy=True, order="C"), self._dtype)
