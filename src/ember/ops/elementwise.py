"""Elementwise ops: declarations and their output dtype rules.

Shapes broadcast (NumPy rules); dtypes follow `result_type` with one of these rules:
  same   - the promoted dtype of the inputs (add, mul, neg, ...)
  float  - the promoted dtype, or the default float dtype for integer/bool inputs (exp, div, ...)
  bool   - computed in the promoted dtype, returned as bool (eq, isnan, logical_and, ...)
  square - pow(self, 2): like same, but bool gives int64
Kernels refuse the dtypes PyTorch's kernels lack (NotImplementedError), e.g. bitwise ops on floats.
In-place forms (`add_`) keep the dtype of `self` and refuse results it cannot hold.
"""
from __future__ import annotations

from ..core.dtype import bool as _bool, can_cast, get_default_dtype, result_type
from ..core.shape import broadcast_shapes
from ..dispatch import OPS, defop

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
    "atan2": "float", "hypot": "same",
    "eq": "bool", "ne": "bool", "lt": "bool", "le": "bool", "gt": "bool", "ge": "bool",
    "logical_and": "bool", "logical_or": "bool", "logical_xor": "bool",
}
# no in-place form for these
_NO_INPLACE = {"isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit", "maximum",
               "minimum", "fmax", "fmin", "silu"}
# binary ops whose `other` must be a tensor (PyTorch has no Scalar overload for them)
_TENSOR_OTHER = {"maximum", "minimum", "fmax", "fmin", "atan2", "hypot", "logical_and", "logical_or",
                 "logical_xor"}


def out_dtype(rule: str, *operands):
    d = result_type(*operands)
    if rule == "float":
        return d if d.category == 2 else get_default_dtype()
    if rule == "bool":
        return _bool
    if rule == "square" and d is _bool:
        return result_type(operands[0], 2)
    return d


def inplace_check(name: str, self, result) -> None:
    """PyTorch refuses in-place results that the destination dtype cannot hold."""
    if not can_cast(result, self._dtype):
        raise RuntimeError(f"{name}: result type {result} can't be cast to the desired output type {self._dtype}")


def elementwise_meta(rule: str, arity: int = 2):
    """The op table's shape/dtype rule: broadcast the first `arity` operands and promote them."""
    def meta(*args):
        operands = [x for x in args[:arity] if x is not None]
        shapes = [x._shape for x in operands if hasattr(x, "_shape")]
        return broadcast_shapes(*shapes), out_dtype(rule, *operands)
    return meta


def _declare():
    for name, rule in UNARY.items():
        defop(f"{name}(Tensor self) -> Tensor", meta=elementwise_meta(rule, 1), method=True)
        if name not in _NO_INPLACE:
            defop(f"{name}_(Tensor(a!) self) -> Tensor(a!)", method=True)
    for name, rule in BINARY.items():
        other = "Tensor" if name in _TENSOR_OTHER else "Tensor|Scalar"
        defop(f"{name}(Tensor self, {other} other) -> Tensor", meta=elementwise_meta(rule), method=True)
        if name not in _NO_INPLACE:
            defop(f"{name}_(Tensor(a!) self, {other} other) -> Tensor(a!)", method=True)
    for name in ("add", "sub"):
        defop(f"{name}(Tensor self, Tensor|Scalar other, *, Scalar alpha=1) -> Tensor",
              meta=elementwise_meta("same"), method=True)
        defop(f"{name}_(Tensor(a!) self, Tensor|Scalar other, *, Scalar alpha=1) -> Tensor(a!)", method=True)
    defop("rsub(Tensor self, Tensor|Scalar other, *, Scalar alpha=1) -> Tensor", meta=elementwise_meta("same"))
    defop("div(Tensor self, Tensor|Scalar other, *, str? rounding_mode=None) -> Tensor",
          meta=elementwise_meta("float"), method=True)
    defop("div_(Tensor(a!) self, Tensor|Scalar other, *, str? rounding_mode=None) -> Tensor(a!)", method=True)
    # Reflected forms for `scalar <op> tensor` (the scalar keeps its "wrapped number" promotion).
    for name in ("div", "floor_divide", "remainder", "pow", "fmod", "atan2"):
        defop(f"_r{name}(Tensor self, Scalar other) -> Tensor", meta=elementwise_meta(BINARY.get(name, "float")))
    defop("gelu(Tensor self, *, str approximate='none') -> Tensor", meta=elementwise_meta("same", 1), method=True)
    # gelu's derivative times grad_output in one kernel (the backward of gelu; differentiable again
    # through the composite formula, see autograd/formulas.gelu_backward)
    defop("gelu_backward(Tensor grad_output, Tensor self, *, str approximate='none') -> Tensor",
          meta=elementwise_meta("same"))
    defop("softplus(Tensor self, Scalar beta=1, Scalar threshold=20) -> Tensor", meta=elementwise_meta("same", 1))
    defop("leaky_relu(Tensor self, Scalar negative_slope=0.01) -> Tensor", meta=elementwise_meta("same", 1))
    defop("clamp(Tensor self, Tensor|Scalar? min=None, Tensor|Scalar? max=None) -> Tensor",
          meta=elementwise_meta("same", 3), method=True)
    defop("clamp_(Tensor(a!) self, Tensor|Scalar? min=None, Tensor|Scalar? max=None) -> Tensor(a!)", method=True)
    defop("where(Tensor condition, Tensor|Scalar self, Tensor|Scalar other) -> Tensor",
          meta=lambda c, a, b: (broadcast_shapes(*[x._shape for x in (c, a, b) if hasattr(x, "_shape")]),
                                out_dtype("same", a, b)))
    defop("lerp(Tensor self, Tensor end, Tensor|Scalar weight) -> Tensor", meta=elementwise_meta("same"), method=True)
    defop("lerp_(Tensor(a!) self, Tensor end, Tensor|Scalar weight) -> Tensor(a!)", method=True)
    defop("addcmul(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1) -> Tensor",
          meta=elementwise_meta("same", 3), method=True)
    defop("addcmul_(Tensor(a!) self, Tensor tensor1, Tensor tensor2, *, Scalar value=1) -> Tensor(a!)", method=True)
    defop("addcdiv(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1) -> Tensor",
          meta=elementwise_meta("same", 3), method=True)
    defop("addcdiv_(Tensor(a!) self, Tensor tensor1, Tensor tensor2, *, Scalar value=1) -> Tensor(a!)", method=True)
    defop("nan_to_num(Tensor self, float? nan=0.0, float? posinf=None, float? neginf=None) -> Tensor",
          meta=elementwise_meta("same", 1), method=True)
    defop("nan_to_num_(Tensor(a!) self, float? nan=0.0, float? posinf=None, float? neginf=None) -> Tensor(a!)",
          method=True)
    defop("isclose(Tensor self, Tensor other, float rtol=1e-05, float atol=1e-08, bool equal_nan=False) -> Tensor",
          meta=elementwise_meta("bool"), method=True)
    defop("to_dtype(Tensor self, ScalarType dtype, bool copy=False) -> Tensor")
    defop("copy_(Tensor(a!) self, Tensor src, bool non_blocking=False) -> Tensor(a!)", method=True)
    defop("fill_(Tensor(a!) self, Tensor|Scalar value) -> Tensor(a!)", method=True)
    defop("zero_(Tensor(a!) self) -> Tensor(a!)", method=True)
    defop("clone(Tensor self) -> Tensor", method=True)


_declare()


# ---- derivatives (formulas over ember ops; see ember.autograd.derivatives) ----------------------

def _derivatives():
    from ..autograd.derivatives import derivative as _d, nondifferentiable as _nd
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
