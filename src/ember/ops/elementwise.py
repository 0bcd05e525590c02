"""Elementwise ops: declarations, their metas (argument checks, result shape and dtype) and derivatives.

Shapes broadcast (NumPy rules); dtypes follow `result_type` with one of these rules:
  same   - the promoted dtype of the inputs (add, mul, neg, ...)
  float  - the promoted dtype, or the default float dtype for integer/bool inputs (exp, div, ...)
  bool   - computed in the promoted dtype, returned as bool (eq, isnan, logical_and, ...)
  square - pow(self, 2): like same, but bool gives int64
Ops refuse the dtypes PyTorch's kernels lack (NotImplementedError), e.g. bitwise ops on floats
(`UNARY_REFUSED`, `BINARY_REFUSED`). In-place forms (`add_`) keep the dtype and shape of `self`: they
refuse results it cannot hold and operands that broadcast to a larger shape.

The metas read the default dtype when they are called, and read shapes, dtypes and argument values
only (the dispatcher caches their verdict per input signature), never strides or data: the kernels
make the checks that need those, with the helpers here (`check_internal_overlap`: no writing into
an expanded `self`), and find an integer division by zero.
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..core.dtype import ALL_DTYPES, bool as _bool, can_cast, dtype as _DType, get_default_dtype, int64, result_type
from ..core.dtype import checked_scalar, uint8 as _uint8
from ..core.layout import layout_strides
from ..core.shape import broadcast_shapes
from ..dispatch import OPS, defop
from ..autograd.derivatives import derivative, nondifferentiable

# name -> rule, for ops taking one tensor.
UNARY = {
    "neg": "same", "abs": "same", "sign": "same", "square": "square", "relu": "same",
    "floor": "same", "ceil": "same", "round": "same", "trunc": "same", "frac": "same",
    "bitwise_not": "same",
    "reciprocal": "float", "exp": "float", "exp2": "float", "expm1": "float", "log": "float",
    "log2": "float", "log10": "float", "log1p": "float", "sqrt": "float", "rsqrt": "float",
    "sin": "float", "cos": "float", "tan": "float", "asin": "float", "acos": "float", "atan": "float",
    "sinh": "float", "cosh": "float", "tanh": "float", "asinh": "float", "acosh": "float",
    "atanh": "float", "sigmoid": "float", "erf": "float", "silu": "same",
    "isnan": "bool", "isinf": "bool", "isfinite": "bool", "isposinf": "bool", "isneginf": "bool",
    "logical_not": "bool", "signbit": "bool",
}
# name -> rule, for ops taking two operands (self is a tensor, other a tensor or a scalar).
BINARY = {
    "mul": "same", "maximum": "same", "minimum": "same", "fmax": "same", "fmin": "same",
    "remainder": "same", "fmod": "same", "floor_divide": "same", "pow": "same",
    "bitwise_and": "same", "bitwise_or": "same", "bitwise_xor": "same",
    "atan2": "float", "hypot": "same", "logaddexp": "same",
    "eq": "bool", "ne": "bool", "lt": "bool", "le": "bool", "gt": "bool", "ge": "bool",
    "logical_and": "bool", "logical_or": "bool", "logical_xor": "bool",
}
# no in-place form for these
_NO_INPLACE = {"isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit", "maximum",
               "minimum", "fmax", "fmin", "silu", "logaddexp"}
# binary ops whose `other` must be a tensor (PyTorch has no Scalar overload for them)
_TENSOR_OTHER = {"maximum", "minimum", "fmax", "fmin", "atan2", "hypot", "logical_and", "logical_or",
                 "logical_xor", "logaddexp"}
# `scalar <op> tensor`, declared as `_r<name>(self, other)` (the scalar keeps its wrapped-number promotion)
REFLECTED = ("div", "floor_divide", "remainder", "pow", "fmod", "atan2")


# ---- the rules both backends share ----------------------------------------------------------------

FLOATING = frozenset(d for d in ALL_DTYPES if d.is_floating_point)
INTEGRAL = frozenset(d for d in ALL_DTYPES if d.is_integer)
BOOLEAN = frozenset((_bool,))


def not_implemented(name: str, dt) -> None:
    raise NotImplementedError(f"{name}: not implemented for {dt} tensors")


def _neg_bool(name, dt):
    raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
                       "invert a mask, use the `~` or `logical_not()` operator instead.")


def _relu_bool(name, dt):
    raise RuntimeError(f"{name}: Boolean inputs not supported for relu; convert the tensor with .int() or .float()")


# dtypes of `self` (unary) or of the computation (binary) that an op refuses, and the error it raises
UNARY_REFUSED = {
    "neg": (BOOLEAN, _neg_bool), "abs": (BOOLEAN, not_implemented), "relu": (BOOLEAN, _relu_bool),
    "floor": (BOOLEAN, not_implemented), "ceil": (BOOLEAN, not_implemented), "round": (BOOLEAN, not_implemented),
    "trunc": (BOOLEAN, not_implemented), "frac": (BOOLEAN | INTEGRAL, not_implemented),
    "silu": (BOOLEAN | INTEGRAL, not_implemented), "bitwise_not": (FLOATING, not_implemented),
}
BINARY_REFUSED = {
    "bitwise_and": (FLOATING, not_implemented), "bitwise_or": (FLOATING, not_implemented),
    "bitwise_xor": (FLOATING, not_implemented), "remainder": (BOOLEAN, not_implemented),
    "fmod": (BOOLEAN, not_implemented), "floor_divide": (BOOLEAN, not_implemented),
    "pow": (BOOLEAN, not_implemented), "hypot": (BOOLEAN | INTEGRAL, not_implemented),
    "logaddexp": (BOOLEAN | INTEGRAL, not_implemented),
}
_NOTHING = (frozenset(), None)


def out_dtype(rule: str, *operands):
    """The result dtype of an op of `rule` (see the module docstring), read with today's default dtype."""
    d = result_type(*operands)
    if rule == "float":
        return d if d.is_floating_point else get_default_dtype()
    if rule == "bool":
        return _bool
    if rule == "square" and d is _bool:
        return int64
    return d


def inplace_check(name: str, self, result) -> None:
    """PyTorch refuses in-place results that the destination dtype cannot hold."""
    if not can_cast(result, self._dtype):
        raise RuntimeError(f"{name}: result type {result} can't be cast to the desired output type {self._dtype}")


def check_internal_overlap(name: str, self) -> None:
    """PyTorch refuses to write into a tensor with an expanded (stride 0) dimension (one with no elements
    writes nothing)."""
    for n, st in zip(self._shape, self._stride):
        if st == 0 and n > 1 and 0 not in self._shape:
            raise RuntimeError(f"{name}: unsupported operation: more than one element of the written-to tensor "
                               f"refers to a single memory location (size {list(self._shape)}, stride "
                               f"{list(self._stride)}); please clone() the tensor before performing the operation")


def check_inplace(name: str, self, shape, dt) -> None:
    """An in-place op writes a result of `shape` and dtype `dt` into `self`: PyTorch's checks, in its order
    (after the overlap check, which reads strides and so is the kernels')."""
    if shape != self._shape:
        raise RuntimeError(f"{name}: output with shape {list(self._shape)} doesn't match the broadcast shape "
                           f"{list(shape)}")
    if dt is not self._dtype and not can_cast(dt, self._dtype):
        inplace_check(name, self, dt)


def _shape(*operands):
    """The broadcast shape of the tensors among `operands` (Python scalars and None are left out)."""
    return broadcast_shapes(*[x._shape for x in operands if isinstance(x, Tensor)])


def _common(self, other):
    """(broadcast shape, promoted dtype) of a tensor and a tensor or scalar; the usual case answered first."""
    if other.__class__ is Tensor and other._dtype is self._dtype and other._shape == self._shape:
        return self._shape, self._dtype
    if isinstance(other, Tensor):
        return broadcast_shapes(self._shape, other._shape), result_type(self, other)
    return self._shape, result_type(self, other)


def _as_float(dt):
    return dt if dt.is_floating_point else get_default_dtype()


def _result(rule, cdt):
    if rule == "same":
        return cdt
    if rule == "float":
        return _as_float(cdt)
    if rule == "bool":
        return _bool
    return int64 if cdt is _bool else cdt   # square


# ---- metas: unary and binary ----------------------------------------------------------------------

def _unary_meta(name, rule):
    refused, raise_ = UNARY_REFUSED.get(name, _NOTHING)
    if rule == "float":   # no float op refuses a dtype
        def meta(self):
            dt = self._dtype
            return self._shape, (dt if dt.is_floating_point else get_default_dtype())
    else:
        def meta(self):
            dt = self._dtype
            if dt in refused:
                raise_(name, dt)
            return self._shape, _result(rule, dt)

    def meta_(self):
        dt = self._dtype
        check_inplace(name + "_", self, self._shape, _result(rule, dt))
        if dt in refused:
            raise_(name, dt)
        return self._shape, dt
    return meta, meta_


def _binary_meta(name, rule, reflected=False):
    refused, raise_ = BINARY_REFUSED.get(name, _NOTHING)

    def meta(self, other):
        shape, cdt = _common(self, other)
        if cdt in refused:
            raise_(name, cdt)
        return shape, _result(rule, cdt)

    def meta_(self, other):
        shape, cdt = _common(self, other)
        check_inplace(name + "_", self, shape, _result(rule, cdt))
        if cdt in refused:
            raise_(name, cdt)
        return self._shape, self._dtype
    return meta, meta_


def check_pow(self, exponent, cdt) -> None:
    """pow(Tensor, Scalar) checks the scalar itself; a bool tensor exponent is refused."""
    if not isinstance(exponent, Tensor):
        if cdt.is_integer and exponent < 0:
            raise RuntimeError(f"pow: Integers to negative integer powers are not allowed (exponent {exponent} "
                               f"for a {cdt} tensor); use a floating-point exponent or tensor")
    elif cdt is _bool:
        not_implemented("pow", cdt)


def _pow_meta(self, exponent):
    shape, cdt = _common(self, exponent)
    check_pow(self, exponent, cdt)
    return shape, cdt


def _pow__meta(self, exponent):
    shape, cdt = _common(self, exponent)
    check_inplace("pow_", self, shape, cdt)
    check_pow(self, exponent, cdt)
    return self._shape, self._dtype


def check_sub(name: str, self, other) -> None:
    """Subtraction refuses bool operands (tensors or Python bools)."""
    if self._dtype is _bool or (other._dtype is _bool if isinstance(other, Tensor) else
                                isinstance(other, (bool, np.bool_))):
        raise RuntimeError(f"{name}: Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
                           f"trying to invert a mask, use the `~` or `logical_not()` operator instead.")


def check_alpha(name: str, alpha, dt) -> None:
    """PyTorch's checks of add/sub's `alpha` against the result dtype `dt`."""
    if isinstance(alpha, (bool, np.bool_)):
        if dt is not _bool:
            raise RuntimeError(f"{name}: Boolean alpha only supported for Boolean results (got alpha={alpha} "
                               f"for dtype {dt})")
    elif not dt.is_floating_point and not isinstance(alpha, (int, np.integer)):
        raise RuntimeError(f"{name}: For integral input tensors, argument alpha must not be a floating point "
                           f"number (got alpha={alpha} with dtype {dt})")


def _add_meta(name):
    subtract = name != "add"

    def meta(self, other, alpha=1):
        shape, dt = _common(self, other)
        if subtract:
            check_sub(name, self, other)
        if alpha.__class__ is not int:
            check_alpha(name, alpha, dt)
        return shape, dt

    def meta_(self, other, alpha=1):
        shape, dt = meta(self, other, alpha)
        check_inplace(name + "_", self, shape, dt)
        return self._shape, self._dtype
    return meta, meta_


def check_rounding_mode(rounding_mode) -> None:
    if rounding_mode is not None and rounding_mode != "trunc" and rounding_mode != "floor":
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                           f"{rounding_mode!r}")


def div_dtype(cdt, rounding_mode):
    """div's result dtype for operands promoting to `cdt`: true division gives a float, a rounding mode
    keeps `cdt` (and refuses bool)."""
    if rounding_mode is None:
        return cdt if cdt.is_floating_point else get_default_dtype()
    check_rounding_mode(rounding_mode)
    if cdt is _bool:
        not_implemented(f"div (rounding_mode={rounding_mode!r})", cdt)
    return cdt


def _div_meta(self, other, rounding_mode=None):
    shape, cdt = _common(self, other)
    return shape, div_dtype(cdt, rounding_mode)


def _div__meta(self, other, rounding_mode=None):
    shape, cdt = _common(self, other)
    check_rounding_mode(rounding_mode)
    check_inplace("div_", self, shape, cdt if rounding_mode is not None else _as_float(cdt))
    div_dtype(cdt, rounding_mode)
    return self._shape, self._dtype


# ---- metas: activations with parameters, ternary ops, copies -------------------------------------------

def check_approximate(name: str, approximate) -> None:
    if approximate != "none" and approximate != "tanh":
        raise RuntimeError(f"{name}: approximate argument must be either 'none' or 'tanh', got {approximate!r}")


def check_floating(name: str, self):
    """The dtype of `self`, which op `name` takes only as a floating point dtype."""
    dt = self._dtype
    if not dt.is_floating_point:
        not_implemented(name, dt)
    return dt


def _gelu_meta(self, approximate="none"):
    check_approximate("gelu", approximate)
    return self._shape, check_floating("gelu", self)


def _softplus_meta(self, beta=1, threshold=20):
    return self._shape, check_floating("softplus", self)


def _leaky_relu_meta(self, negative_slope=0.01):
    return self._shape, check_floating("leaky_relu", self)


def _gelu_backward_meta(grad_output, self, approximate="none"):
    check_approximate("gelu_backward", approximate)
    shape, dt = _common(self, grad_output)
    if not dt.is_floating_point:
        not_implemented("gelu_backward", dt)
    return shape, dt


def check_clamp(name: str, self, min, max):
    """The result dtype of clamp(self, min, max), with PyTorch's checks."""
    if min is None and max is None:
        raise RuntimeError(f"{name}: At least one of 'min' or 'max' must not be None")
    dt = result_type(*[v for v in (self, min, max) if v is not None])
    if dt is _bool and not (min is None and isinstance(max, Tensor) or max is None and isinstance(min, Tensor)):
        not_implemented(f"{name} (bool tensors: only one tensor bound is supported)", dt)
    return dt


def _clamp_meta(self, min=None, max=None):
    dt = check_clamp("clamp", self, min, max)
    return _shape(self, min, max), dt


def _clamp__meta(self, min=None, max=None):
    dt = check_clamp("clamp_", self, min, max)
    check_inplace("clamp_", self, _shape(self, min, max), dt)
    return self._shape, self._dtype


def check_condition(name: str, condition) -> None:
    c = condition._dtype
    if c is not _bool and c is not _uint8:
        raise RuntimeError(f"{name} expected condition to be a boolean tensor, but got a tensor with dtype {c}")


def _where_meta(condition, self, other):
    check_condition("where", condition)
    return _shape(condition, self, other), result_type(self, other)


def check_lerp(name: str, self, end, weight):
    """lerp's operands share self's dtype (a 0-dim weight may differ), a floating point one."""
    dt = self._dtype
    if end._dtype is not dt:
        raise RuntimeError(f"{name}: expected dtype {dt} for `end` but got dtype {end._dtype}")
    if isinstance(weight, Tensor) and weight._shape and weight._dtype is not dt:
        raise RuntimeError(f"{name}: expected dtype {dt} for `weight` but got dtype {weight._dtype}")
    if not dt.is_floating_point:
        not_implemented(name, dt)
    return dt


def _lerp_meta(self, end, weight):
    return _shape(self, end, weight), check_lerp("lerp", self, end, weight)


def _lerp__meta(self, end, weight):
    check_inplace("lerp_", self, _shape(self, end, weight), self._dtype)
    check_lerp("lerp_", self, end, weight)
    return self._shape, self._dtype


def check_addc(name: str, self, tensor1, tensor2):
    """The result dtype of addcmul/addcdiv, with PyTorch's checks."""
    if name.startswith("addcdiv") and not tensor1._dtype.is_floating_point and not tensor2._dtype.is_floating_point:
        raise RuntimeError(f"{name}: integer division with addcdiv is no longer supported; for true division "
                           f"cast tensor1 or tensor2 to a floating point dtype, for floor division use "
                           f"(input + value * tensor1 // tensor2)")
    dt = result_type(self, tensor1, tensor2)
    if dt is _bool:
        not_implemented(name, dt)
    return dt


def _addc_meta(name):
    def meta(self, tensor1, tensor2, value=1):
        dt = check_addc(name, self, tensor1, tensor2)
        return _shape(self, tensor1, tensor2), dt

    def meta_(self, tensor1, tensor2, value=1):
        dt = check_addc(name + "_", self, tensor1, tensor2)
        check_inplace(name + "_", self, _shape(self, tensor1, tensor2), dt)
        return self._shape, self._dtype
    return meta, meta_


def _nan_to_num_meta(self, nan=0.0, posinf=None, neginf=None):
    return self._shape, self._dtype


def _self_meta(self):
    return self._shape, self._dtype


def _clone_meta(self, memory_format=None):
    """The backends lay the copy out with `core.layout.layout_strides` (None: preserve, as torch's clone)."""
    layout_strides(self, memory_format, "clone")    # a bad format, or channels_last of a tensor not 4-d, raises
    return self._shape, self._dtype


def check_isclose(self, other, rtol, atol) -> None:
    dt = self._dtype
    if other._dtype is not dt:
        raise RuntimeError(f"isclose: {dt} did not match {other._dtype}; both tensors must have the same dtype")
    if rtol < 0:
        raise RuntimeError(f"isclose: rtol must be greater than or equal to zero, but got {rtol}")
    if atol < 0:
        raise RuntimeError(f"isclose: atol must be greater than or equal to zero, but got {atol}")


def _isclose_meta(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    check_isclose(self, other, rtol, atol)
    return broadcast_shapes(self._shape, other._shape), _bool


def _to_dtype_meta(self, dtype, copy=False):
    if not isinstance(dtype, _DType):
        raise TypeError(f"to_dtype(): argument 'dtype' must be ember.dtype, not {type(dtype).__name__}")
    return self._shape, dtype


def _copy__meta(self, src, non_blocking=False):
    check_inplace("copy_", self, broadcast_shapes(self._shape, src._shape), self._dtype)
    return self._shape, self._dtype


def check_fill_value(value, dt) -> None:
    """fill_ refuses a Python number that `dt` cannot hold (a 0-dim tensor value is cast without a check)."""
    checked_scalar("fill_", value, dt)


def _fill__meta(self, value):
    if isinstance(value, Tensor):
        if value._shape:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                               f"{len(value._shape)} dimensions")
    else:
        check_fill_value(value, self._dtype)
    return self._shape, self._dtype


# ---- declarations -------------------------------------------------------------------------------

def _by_class(*metas):
    """Marks metas that read a Scalar argument's type, never its value: the dispatcher's meta cache then
    keys such an argument by its type (`x * lr` hits the cache whatever `lr` is)."""
    for m in metas:
        m.scalars_by_class = True
    return metas if len(metas) > 1 else metas[0]


def _declare():
    for name, rule in UNARY.items():
        meta, meta_ = _by_class(*_unary_meta(name, rule))
        defop(f"{name}(Tensor self) -> Tensor", meta=meta, method=True, out="cast")
        if name not in _NO_INPLACE:
            defop(f"{name}_(Tensor(a!) self) -> Tensor(a!)", meta=meta_, method=True)
    for name, rule in BINARY.items():
        other = "Tensor" if name in _TENSOR_OTHER else "Tensor|Scalar"
        # pow reads a scalar exponent's value (an integer to a negative power is refused)
        meta, meta_ = (_pow_meta, _pow__meta) if name == "pow" else _by_class(*_binary_meta(name, rule))
        defop(f"{name}(Tensor self, {other} other) -> Tensor", meta=meta, method=True, out="cast")
        if name not in _NO_INPLACE:
            defop(f"{name}_(Tensor(a!) self, {other} other) -> Tensor(a!)", meta=meta_, method=True)
    for name in ("add", "sub"):
        meta, meta_ = _by_class(*_add_meta(name))
        defop(f"{name}(Tensor self, Tensor|Scalar other, *, Scalar alpha=1) -> Tensor", meta=meta, method=True,
              out="cast")
        defop(f"{name}_(Tensor(a!) self, Tensor|Scalar other, *, Scalar alpha=1) -> Tensor(a!)", meta=meta_,
              method=True)
    defop("rsub(Tensor self, Tensor|Scalar other, *, Scalar alpha=1) -> Tensor", meta=_by_class(_add_meta("rsub")[0]))
    defop("div(Tensor self, Tensor|Scalar other, *, str? rounding_mode=None) -> Tensor", meta=_div_meta, method=True,
          out="cast")
    defop("div_(Tensor(a!) self, Tensor|Scalar other, *, str? rounding_mode=None) -> Tensor(a!)", meta=_div__meta,
          method=True)
    # Reflected forms for `scalar <op> tensor`: _r<name>(self, other) is <name>(other, self)
    for name in REFLECTED:
        defop(f"_r{name}(Tensor self, Scalar other) -> Tensor",
              meta=_by_class(_binary_meta(name, BINARY.get(name, "float"))[0]))
    _by_class(_div_meta, _div__meta, _softplus_meta, _leaky_relu_meta, _clamp_meta, _clamp__meta, _where_meta,
              _lerp_meta, _lerp__meta)
    defop("gelu(Tensor self, *, str approximate='none') -> Tensor", meta=_gelu_meta, method=True)
    # gelu's derivative times grad_output in one kernel (the backward of gelu; differentiable again
    # through the composite formula, see autograd/formulas.gelu_backward)
    defop("gelu_backward(Tensor grad_output, Tensor self, *, str approximate='none') -> Tensor",
          meta=_gelu_backward_meta)
    defop("softplus(Tensor self, Scalar beta=1, Scalar threshold=20) -> Tensor", meta=_softplus_meta)
    defop("leaky_relu(Tensor self, Scalar negative_slope=0.01) -> Tensor", meta=_leaky_relu_meta)
    defop("clamp(Tensor self, Tensor|Scalar? min=None, Tensor|Scalar? max=None) -> Tensor", meta=_clamp_meta,
          method=True, out="exact")
    defop("clamp_(Tensor(a!) self, Tensor|Scalar? min=None, Tensor|Scalar? max=None) -> Tensor(a!)",
          meta=_clamp__meta, method=True)
    defop("where(Tensor condition, Tensor|Scalar self, Tensor|Scalar other) -> Tensor", meta=_where_meta, out="cast")
    defop("lerp(Tensor self, Tensor end, Tensor|Scalar weight) -> Tensor", meta=_lerp_meta, method=True, out="cast")
    defop("lerp_(Tensor(a!) self, Tensor end, Tensor|Scalar weight) -> Tensor(a!)", meta=_lerp__meta, method=True)
    for name in ("addcmul", "addcdiv"):
        meta, meta_ = _by_class(*_addc_meta(name))
        defop(f"{name}(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1) -> Tensor", meta=meta,
              method=True, out="cast")
        defop(f"{name}_(Tensor(a!) self, Tensor tensor1, Tensor tensor2, *, Scalar value=1) -> Tensor(a!)",
              meta=meta_, method=True)
    defop("nan_to_num(Tensor self, float? nan=0.0, float? posinf=None, float? neginf=None) -> Tensor",
          meta=_nan_to_num_meta, method=True, out="exact")
    defop("nan_to_num_(Tensor(a!) self, float? nan=0.0, float? posinf=None, float? neginf=None) -> Tensor(a!)",
          meta=_nan_to_num_meta, method=True)
    defop("isclose(Tensor self, Tensor other, float rtol=1e-05, float atol=1e-08, bool equal_nan=False) -> Tensor",
          meta=_isclose_meta, method=True)
    defop("to_dtype(Tensor self, ScalarType dtype, bool copy=False) -> Tensor", meta=_to_dtype_meta)
    defop("copy_(Tensor(a!) self, Tensor src, bool non_blocking=False) -> Tensor(a!)", meta=_copy__meta, method=True)
    defop("fill_(Tensor(a!) self, Tensor|Scalar value) -> Tensor(a!)", meta=_fill__meta, method=True)
    defop("zero_(Tensor(a!) self) -> Tensor(a!)", meta=_self_meta, method=True)
    defop("clone(Tensor self, *, MemoryFormat? memory_format=None) -> Tensor", meta=_clone_meta, method=True)


_declare()


# ---- derivatives (formulas over ember ops; see ember.autograd.derivatives) ----------------------

def _derivatives():
    _d, _nd = derivative, nondifferentiable
    _d("add", self="grad", other="grad if alpha == 1 else grad * alpha")
    _d("sub", self="grad", other="-grad if alpha == 1 else grad * -alpha")
    _d("rsub", self="grad * -alpha", other="grad")
    _d("mul", self="grad * other", other="grad * self")
    _d("div", self="grad / other if rounding_mode is None else grad * 0.0",
       other="-grad * self / (other * other) if rounding_mode is None else grad * 0.0")
    _d("_rdiv", self="-grad * result / self")
    _d("neg", self="-grad")
    _d("abs", self="grad * self.sign()")
    for _n in ("sign", "floor", "ceil", "round", "trunc", "floor_divide", "_rfloor_divide"):
        _d(_n, self="grad * 0.0")
    _d("frac", self="grad")
    _d("square", self="grad * 2.0 * self")
    _d("relu", self="grad * (result > 0)")
    _d("reciprocal", self="-grad * result * result")
    _d("exp", self="grad * result")
    _d("exp2", self="grad * result * LN2")
    _d("expm1", self="grad * (result + 1.0)")
    _d("log", self="grad / self")
    _d("log2", self="grad / (self * LN2)")
    _d("log10", self="grad / (self * LN10)")
    _d("log1p", self="grad / (self + 1.0)")
    _d("sqrt", self="grad / (2.0 * result)")
    _d("rsqrt", self="grad * -0.5 * result * result * result")
    _d("sin", self="grad * self.cos()")
    _d("cos", self="grad * -self.sin()")
    _d("tan", self="grad * (1.0 + result * result)")
    _d("asin", self="grad * (1.0 - self * self).rsqrt()")
    _d("acos", self="-grad * (1.0 - self * self).rsqrt()")
    _d("atan", self="grad / (1.0 + self * self)")
    _d("sinh", self="grad * self.cosh()")
    _d("cosh", self="grad * self.sinh()")
    _d("tanh", self="grad * (1.0 - result * result)")
    _d("asinh", self="grad * (self * self + 1.0).rsqrt()")
    _d("acosh", self="grad * (self * self - 1.0).rsqrt()")
    _d("atanh", self="grad / (1.0 - self * self)")
    _d("sigmoid", self="grad * result * (1.0 - result)")
    _d("erf", self="grad * TWO_OVER_SQRT_PI * (-(self * self)).exp()")
    _d("silu", self="grad * self.sigmoid() * (1.0 + self * (1.0 - self.sigmoid()))")
    _d("gelu", self="gelu_backward(grad, self, approximate)")
    _d("softplus", self="where(self * beta > threshold, grad, grad * (self * beta).sigmoid())")
    _d("leaky_relu", self="where(self > 0, grad, grad * negative_slope)")
    _d("clamp", self="clamp_backward(grad, self, min, max)",
       min="clamp_bound_backward(grad, self, min, max, True)", max="clamp_bound_backward(grad, self, max, None, False)")
    _d("where", self="where(condition, grad, 0.0)", other="where(condition, 0.0, grad)")
    _d("lerp", self="grad * (1.0 - weight)", end="grad * weight", weight="grad * (end - self)")
    _d("addcmul", self="grad", tensor1="grad * tensor2 * value", tensor2="grad * tensor1 * value")
    _d("addcdiv", self="grad", tensor1="grad * value / tensor2", tensor2="-grad * value * tensor1 / (tensor2 * tensor2)")
    _d("nan_to_num", self="where(self.isfinite(), grad, 0.0)")
    _d("maximum", self="maxmin_backward(grad, self, other, True, True)",
       other="maxmin_backward(grad, self, other, False, True)")
    _d("minimum", self="maxmin_backward(grad, self, other, True, False)",
       other="maxmin_backward(grad, self, other, False, False)")
    _d("fmax", self="maxmin_backward(grad, self, other, True, True)", other="maxmin_backward(grad, self, other, False, True)")
    _d("fmin", self="maxmin_backward(grad, self, other, True, False)",
       other="maxmin_backward(grad, self, other, False, False)")
    _d("pow", self="pow_self_backward(grad, self, other)", other="pow_exponent_backward(grad, self, other, result)")
    _d("_rpow", self="pow_exponent_backward(grad, other, self, result)")
    _d("remainder", self="grad", other="-grad * div(self, other, rounding_mode='floor')")
    _d("fmod", self="grad", other="-grad * div(self, other, rounding_mode='trunc')")
    _d("atan2", self="grad * other / (self * self + other * other)", other="-grad * self / (self * self + other * other)")
    _d("hypot", self="grad * self / result", other="grad * other / result")
    _d("logaddexp", self="grad * (self - result).exp()", other="grad * (other - result).exp()")
    _d("to_dtype", self="grad")
    _d("clone", self="grad")
    _d("copy_", self="grad * 0.0", src="grad")
    _d("fill_", self="grad * 0.0", value="grad.sum()")
    _d("zero_", self="grad * 0.0")
    _nd("isnan", "isinf", "isfinite", "isposinf", "isneginf", "logical_not", "signbit", "bitwise_not",
        "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "bitwise_and",
        "bitwise_or", "bitwise_xor", "isclose")


_derivatives()

OPS["copy_"].cross_device = True
