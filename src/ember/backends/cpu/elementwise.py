"""CPU kernels for elementwise ops, on NumPy ufuncs.

Each op is a `compute(*args) -> (ndarray, ember dtype)` function; the out-of-place kernel wraps
its result and the in-place kernel (`add_`) casts it into `self`. The op's meta (ops/elementwise.py)
has checked the arguments before a kernel runs; the kernels check only what a meta cannot see:
an expanded `self` (strides) and integer division by zero (data).

Inputs are cast to the op's computation dtype as PyTorch's TensorIterator does: every operand to
the common dtype; float16/bfloat16 are then computed in float32 (opmath) and rounded back once, so
an operand of another dtype (a Python float, a float64 tensor) is first rounded to the low
precision dtype, as PyTorch does.

A Python scalar with float16/bfloat16 tensors, as torch 2.13's CPU kernels take it (measured bit for bit on
x86 AVX2/AVX-512, tests/test_lowp_scalars.py), is rounded to the dtype (through float32) by add/sub/rsub
(`other` and `alpha`), clamp, where, fill_/masked_fill and bfloat16 pow, but kept in float32 by mul/div
(their scalar `other`, a 0-dim tensor's value too: TensorIterator's `original_scalar_value`), lerp's weight
and addcmul/addcdiv's value; where torch's vectorised float32 code fuses a multiply-add (add's
self + alpha * other, lerp, addcmul) ember computes the same single rounding (`_fma32`). torch's scalar loop,
which it runs on non-contiguous tensors and on the last numel % 32 elements of a contiguous one, rounds
add's alpha * other and bfloat16 rsqrt's sqrt to the dtype first: ember follows the vectorised loop.
"""
from __future__ import annotations

import math

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.layout import layout_strides
from ...core.shape import any_strided, contiguous_strides
from ...dispatch import OPS
from ...ops.elementwise import BINARY, UNARY, check_internal_overlap, div_dtype
from . import special
from ._common import _from_numpy, arr, impl, impl_out, operand, plan, wrap, wrap_ew, wrap_strided

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_HALF = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_F32 = np.dtype(np.float32)
_F16, _BF16 = D.float16, D.bfloat16
_LOWP = (_F16, _BF16)
_get_default = D.get_default_dtype
_result_type = D.result_type


def _rt2(self, other):
    """result_type(self, other) for a tensor `self`, with the common cases answered without the general walk:
    equal dtypes, or a Python scalar of a category no higher than self's."""
    dt = self._dtype
    odt = getattr(other, "_dtype", None)
    if odt is dt:
        return dt
    if odt is None:
        c = other.__class__
        if c is float:
            if dt.is_floating_point:
                return dt
        elif c is int:
            if dt.category >= D.INTEGER:   # an int scalar keeps an integer or float dtype
                return dt
        elif c is bool:
            return dt
    return _result_type(self, other)


# ---- operands --------------------------------------------------------------------------------

_F64 = np.dtype(np.float64)


def _narrow(a, np_dt):
    """`a` cast to float16/bfloat16 as PyTorch does it: float64 goes through float32 (so rounds twice)."""
    if a.dtype == _F64:
        a = a.astype(_F32)
    return a.astype(np_dt)


def _lowp(v, dt):
    """An operand of a float16/bfloat16 computation as float32, rounded to `dt` first if it is not `dt`."""
    if isinstance(v, Tensor):
        a = arr(v)
        if v._dtype is not dt:
            a = _narrow(a, dt.np)
        return a.astype(_F32)
    return _F32.type(dt.np.type(_F32.type(v)))


_SCALAR16 = {}


def _scalar16(v, dt, op):
    """A Python scalar that torch's kernel converts with Scalar.to<scalar_t>() (add's alpha, clamp's bounds, pow's
    exponent) as a float32 holding its float16/bfloat16 value: a finite value out of dt's range raises."""
    r = _SCALAR16.get((v, dt))
    if r is not None and v != 0:   # (0.0 and -0.0 share a key)
        return r
    if v.__class__ is not float or not math.isinf(v):
        D.checked_scalar(op, v, dt)
    r = _F32.type(dt.np.type(_F32.type(v)))
    if len(_SCALAR16) > 256:
        _SCALAR16.clear()
    _SCALAR16[(v, dt)] = r
    return r


def _is_scalar(v):
    """A Python scalar or a 0-dim tensor: the operand torch's mul/div kernels take in float32 (opmath) unrounded."""
    return v.__class__ is not Tensor or not v._shape


def _opmath_scalar(v):
    """A Python scalar or 0-dim tensor `v` as a float32 (a float64 value rounded once)."""
    if v.__class__ is Tensor:
        return _F32.type(arr(v).astype(_F32)[()])
    return _F32.type(v)


def _fma32(a, b, c):
    """a * b + c rounded once to float32 (a, b, c float32 arrays or scalars), as a fused multiply-add: the
    product is exact in float64 and the sum rounds there first (differing from one rounding only when the
    float64 sum lands exactly halfway between two float32s, beyond float32's precision)."""
    r = np.multiply(a, b, dtype=_F64)
    if type(r) is np.ndarray and r.shape == np.shape(c):
        r += c
    else:
        r = np.add(r, c, dtype=_F64)
    return r.astype(_F32)


def _in(v, dt):
    """Operand `v` (tensor or Python scalar) in the NumPy dtype that ops of ember dtype `dt` compute in."""
    if dt is _F16 or dt is _BF16:
        return _lowp(v, dt)
    if v.__class__ is float:  # NumPy casts a Python float to the array's float dtype itself (NEP 50)
        return v
    return operand(v, dt.np)


def _zero_div(name):
    raise RuntimeError(f"ZeroDivisionError: {name}: integer division by zero")


# ---- unary functions -----------------------------------------------------------------------------

def _fresh(r):
    """A ufunc's result as an array that later steps may overwrite (0-d results come back as scalars)."""
    return r if type(r) is np.ndarray else np.asarray(r)


def _sigmoid(x):
    r = _fresh(np.negative(x))  # 1 / (1 + exp(-x)), reusing one buffer
    np.exp(r, out=r)
    r += 1
    return np.reciprocal(r, out=r)


def _silu(x):
    r = _fresh(np.negative(x))  # x / (1 + exp(-x))
    np.exp(r, out=r)
    r += 1
    return np.divide(x, r, out=r)


def _erf(x):
    if x.dtype == _F32:
        return special.erf_f32(x)
    return special.erf(x)  # float64


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
    "atanh": np.arctanh, "sigmoid": _sigmoid, "erf": _erf, "silu": _silu,
    "isnan": np.isnan, "isinf": np.isinf, "isfinite": np.isfinite, "isposinf": np.isposinf,
    "isneginf": np.isneginf, "logical_not": np.logical_not, "signbit": np.signbit,
}
# ufuncs that in-place forms can run straight into `self` (same dtype in and out, see _unary_inplace)
_UNARY_UFUNC = {name: fn for name, fn in UNARY_FN.items() if isinstance(fn, np.ufunc) and UNARY[name] != "bool"}
_UNARY_UFUNC.update(floor=np.floor, ceil=np.ceil, round=np.rint, trunc=np.trunc)
_UNARY_FLOAT_ONLY = frozenset(("floor", "ceil", "round", "trunc"))  # ints: the generic path (identity)


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
    return _int_pow(x, y) if getattr(x, "dtype", _F32).kind in "iu" else np.power(x, y)


BINARY_FN = {
    "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum, "fmax": np.fmax, "fmin": np.fmin,
    "remainder": np.remainder, "fmod": np.fmod, "floor_divide": np.floor_divide, "pow": _pow,
    "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor,
    "atan2": np.arctan2, "hypot": np.hypot, "logaddexp": np.logaddexp,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}
_INT_DIVISION = frozenset(("remainder", "fmod", "floor_divide"))


# ---- registration helpers ------------------------------------------------------------------

def _first2(args):
    return args[:2]     # a unary op's self; a binary op's self and other (a Python scalar other is a 0-d operand)


def _tensors3(args):
    return [v for v in args[:3] if isinstance(v, Tensor)]    # clamp's, lerp's and addcmul's tensor operands


def _register(name, compute, inplace=True, fast=None, operands=_first2):
    """Registers `name` (wrapping compute's result, laid out as torch lays out its output over
    `operands(args)`: see `wrap_ew`), its out= kernel (compute's result cast into `out`) and
    `name_` (cast into self, whose shape and dtype the meta has checked). `fast(self, *args)`, if given, may
    do the in-place op directly into self's memory (no temporaries) and return self, or return None for the
    generic path."""
    @impl(name)
    def out_of_place(*args):
        r, dt = compute(*args)
        if not any_strided(args):       # every tensor argument contiguous: so is the result, with no rule to run
            return wrap(r, dt)
        return wrap_ew(r, dt, operands(args))

    into = _into(compute)
    if OPS[name].out_kind is not None:
        impl_out(name)(into)
    if inplace:
        def generic(self, *args):
            into(self, self, *args)
            return self

        @impl(name + "_")
        def in_place(self, *args):
            if 0 in self._stride:
                check_internal_overlap(name + "_", self)
            if fast is not None and fast(self, *args) is not None:
                return self
            return generic(self, *args)


def _into(compute):
    """The kernel that casts compute's result into `out` (of the result's shape: self for in-place ops)."""
    def into(out, *args):
        r, dt = compute(*args)
        if r.dtype == _F64 and (out._dtype is _F16 or out._dtype is _BF16):
            r = r.astype(_F32)  # PyTorch narrows double through float
        np.copyto(arr(out), r, casting="unsafe")
    return into


def _unary_compute(name, rule, fn):
    def compute(self):
        sdt = self._dtype
        if rule == "same":
            dt = cdt = sdt
        elif rule == "float":
            dt = cdt = sdt if sdt.is_floating_point else _get_default()
        elif rule == "bool":
            dt, cdt = D.bool, sdt
        else:  # "square": pow(self, 2), so bool gives int64
            dt = cdt = D.int64 if sdt is D.bool else sdt
        return fn(_in(self, cdt)), dt
    return compute


def _binary_compute(name, rule, fn, reflected=False):
    int_division = name in _INT_DIVISION

    def compute(self, other):
        cdt = _rt2(self, other)
        if rule == "same":
            dt = cdt
        elif rule == "float":
            dt = cdt = cdt if cdt.is_floating_point else _get_default()
        else:
            dt = D.bool
        x, y = _in(self, cdt), _in(other, cdt)
        if reflected:
            x, y = y, x
        if int_division and cdt.is_integer and not np.all(y):
            _zero_div(name)
        return fn(x, y), dt
    return compute


def _unary_inplace(name, rule, ufunc):
    """`self.exp_()` as ufunc(self, out=self), when self's dtype is the op's computation and result dtype."""
    if ufunc is None:
        return None
    float_only = rule == "float" or name in _UNARY_FLOAT_ONLY

    def fast(self):
        dt = self._dtype
        if dt is _F16 or dt is _BF16 or dt is D.bool or (float_only and not dt.is_floating_point):
            return None
        a = arr(self)
        ufunc(a, out=a)
        return self
    return fast


def _binary_inplace(name, rule, ufunc):
    """`self.mul_(other)` as ufunc(self, other, out=self), when no cast of self is involved."""
    if rule == "bool" or not isinstance(ufunc, np.ufunc):
        return None
    int_division = name in _INT_DIVISION

    def fast(self, other):
        dt = self._dtype
        if dt is _F16 or dt is _BF16 or _rt2(self, other) is not dt or (rule == "float" and not dt.is_floating_point):
            return None
        y = _in(other, dt)
        if int_division and dt.is_integer and not np.all(y):
            return None     # the generic path raises
        a = arr(self)
        ufunc(a, y, out=a)
        return self
    return fast


def _unary_plan(rule, fn):
    """A unary op's kernel for one input signature: the result dtype is the meta's, the compute dtype
    follows from it (a comparison-like op computes in the input's), so the kernel only converts and
    computes."""
    def plan(meta, self):
        dt = meta[1]
        cdt = self._dtype if rule == "bool" else dt
        if cdt is _F16 or cdt is _BF16:
            return lambda self: wrap_ew(fn(_lowp(self, cdt)), dt, (self,))
        cnp = cdt.np
        cs = contiguous_strides(self._shape)

        def kernel(self):
            a = self._np
            if a is None:
                a = self._array
            r = fn(a if a.dtype == cnp else a.astype(cnp))
            if self._stride is cs or self._stride == cs:
                return wrap(r, dt)
            return wrap_ew(r, dt, (self,))
        return kernel
    return plan


for _name, _rule in UNARY.items():
    _register(_name, _unary_compute(_name, _rule, UNARY_FN[_name]), inplace=(_name + "_") in OPS,
              fast=_unary_inplace(_name, _rule, _UNARY_UFUNC.get(_name)))
    plan(_name)(_unary_plan(_rule, UNARY_FN[_name]))
def _same_dtype_plan(name, ufunc, with_alpha=False):
    """A binary op's kernel for one input signature: where both operands are tensors of the result's
    dtype (not float16, bfloat16 or bool), or self is float32/float64 and other a Python float or int (which
    NumPy, as torch, applies in self's dtype), the ufunc runs on the arrays as they are, with none of the
    generic kernel's dtype work; any other signature keeps the generic kernel."""
    generic = OPS[name].kernels["cpu"]

    def plan(meta, self, other, *rest):
        dt = meta[1]
        if self._dtype is not dt or dt in _LOWP or dt is D.bool:
            return generic
        scalar = other.__class__ is not Tensor
        if scalar:
            if (dt is not D.float32 and dt is not D.float64) or (other.__class__ is not float
                                                                  and other.__class__ is not int):
                return generic
        elif other._dtype is not dt:
            return generic
        cs = contiguous_strides(self._shape)
        cso = None if scalar else contiguous_strides(other._shape)

        def kernel(self, other, alpha=1):
            if with_alpha and (alpha.__class__ is not int or alpha != 1):
                return generic(self, other, alpha)
            a = self._np
            if a is None:
                a = self._array
            if scalar:
                r = ufunc(a, other)
                if self._stride is cs or self._stride == cs:
                    return _from_numpy(r, dt)
                return wrap_ew(r, dt, (self, other))
            b = other._np
            r = ufunc(a, b if b is not None else other._array)
            sst, ost = self._stride, other._stride     # (an op's result holds the memoised tuple itself)
            if (sst is cs or sst == cs) and (ost is cso or ost == cso):
                return _from_numpy(r, dt)
            return wrap_ew(r, dt, (self, other))
        return kernel
    return plan


def _mul_compute(self, other):
    """self * other; a float16/bfloat16 product by a scalar takes the scalar in float32 (torch's
    mul_cpu_reduced_float)."""
    cdt = _rt2(self, other)
    if (cdt is _F16 or cdt is _BF16) and _is_scalar(other):
        return np.multiply(_lowp(self, cdt), _opmath_scalar(other)), cdt
    return np.multiply(_in(self, cdt), _in(other, cdt)), cdt


for _name, _rule in BINARY.items():
    if _name != "pow":
        _register(_name, _mul_compute if _name == "mul" else _binary_compute(_name, _rule, BINARY_FN[_name]),
                  inplace=(_name + "_") in OPS,
                  fast=_binary_inplace(_name, _rule, BINARY_FN[_name]))
        if _rule != "bool" and isinstance(BINARY_FN[_name], np.ufunc) and _name not in _INT_DIVISION:
            plan(_name)(_same_dtype_plan(_name, BINARY_FN[_name]))
for _name in ("floor_divide", "remainder", "pow", "fmod", "atan2"):
    _register("_r" + _name, _binary_compute(_name, BINARY[_name], BINARY_FN[_name], reflected=True), inplace=False,
              operands=(lambda args: ()) if _name == "pow" else _first2)  # torch's pow(Scalar, Tensor): contiguous


def _pow_lowp(x, e, dt):
    """torch's pow(float16/bfloat16 tensor, scalar exponent) on float32 values x: bfloat16 takes 0.5, -0.5
    and -1 as sqrt, rsqrt and reciprocal (one float32 rounding each), then the exponent rounded to bfloat16,
    2, 3 and -2 as x * x, x * x * x and 1 / (x * x) in bfloat16 arithmetic (each product rounded); anything
    else, and every float16 exponent (rounded to float16), is powf (modelled by a float64 pow)."""
    if dt is _BF16:
        if e == 0.5:
            return np.sqrt(x)
        if e == -0.5:
            r = _fresh(np.sqrt(x))
            return np.divide(_F32.type(1), r, out=r)
        if e == -1:
            return np.reciprocal(x)
    e = _scalar16(e, dt, "pow")
    if dt is _BF16:
        if e == 2:
            return np.multiply(x, x)
        if e == 3 or e == -2:
            sq = _fresh(np.multiply(x, x).astype(dt.np).astype(_F32))
            return np.multiply(sq, x, out=sq) if e == 3 else np.divide(_F32.type(1), sq, out=sq)
    return np.power(x.astype(_F64), _F64.type(e)).astype(_F32)


def _pow_compute(self, other):
    dt = _rt2(self, other)
    if (dt is _F16 or dt is _BF16) and other.__class__ is not Tensor:
        return _pow_lowp(_lowp(self, dt), other, dt), dt
    if dt is D.bool:   # a bool tensor to a bool power (the meta refuses bool tensor exponents): self or ones
        return (arr(self).copy() if other else np.ones(self._shape, np.bool_)), dt
    x, y = _in(self, dt), _in(other, dt)
    return (_int_pow(x, y) if dt.is_integer else np.power(x, y)), dt


_register("pow", _pow_compute, operands=_tensors3)   # torch's pow(Tensor, Scalar) has one operand


def _scaled(y, alpha, dt, op):
    """alpha * y (a bool alpha, which only a bool result takes, keeps or zeroes y). A float16/bfloat16 y takes
    alpha rounded to its dtype (torch's `alpha.to<scalar_t>()`), so the float32 product is exact and the sum
    that follows rounds once, as torch's vectorised fused multiply-add."""
    if isinstance(alpha, (bool, np.bool_)):
        return y if alpha else np.zeros_like(y)
    return y * (_scalar16(alpha, dt, op) if dt is _F16 or dt is _BF16 else operand(alpha, dt.np))


def _add_compute(name, ufunc):
    def compute(self, other, alpha=1):
        dt = _rt2(self, other)
        x, y = _in(self, dt), _in(other, dt)
        if alpha.__class__ is not int or alpha != 1:
            y = _scaled(y, alpha, dt, name)
            if type(y) is np.ndarray and y.shape == x.shape:  # y is a fresh full-size temporary
                return ufunc(x, y, out=y), dt
        return ufunc(x, y), dt
    return compute


def _add_inplace(name, ufunc, compute):
    """add_/sub_ (the optimizer's and the accumulators' hot path): ufunc(self, other, out=self) when no cast
    of self is involved, written out here (no helper calls) for a tensor `other` of self's dtype."""
    into = _into(compute)

    def generic(self, other, alpha):
        into(self, self, other, alpha)
        return self

    @impl(name)
    def in_place(self, other, alpha=1):
        if 0 in self._stride:
            check_internal_overlap(name, self)
        dt = self._dtype
        if dt is _F16 or dt is _BF16 or dt is D.bool:
            return generic(self, other, alpha)
        if other.__class__ is Tensor and other._dtype is dt:
            y = other._np
            if y is None:
                y = other._array
        elif _rt2(self, other) is dt:
            y = _in(other, dt)
        else:
            return generic(self, other, alpha)
        if alpha.__class__ is not int or alpha != 1:
            y = y * operand(alpha, dt.np)
        a = self._np
        if a is None:
            a = self._array
        ufunc(a, y, out=a)
        return self


for _name, _ufunc in (("add", np.add), ("sub", np.subtract)):
    _register(_name, _add_compute(_name, _ufunc), inplace=False)
    plan(_name)(_same_dtype_plan(_name, _ufunc, with_alpha=True))
    _add_inplace(_name + "_", _ufunc, _add_compute(_name, _ufunc))


def _rsub_compute(self, other, alpha=1):
    """other - alpha * self"""
    dt = _rt2(self, other)
    x, y = _in(self, dt), _in(other, dt)
    if alpha.__class__ is not int or alpha != 1:
        x = _scaled(x, alpha, dt, "rsub")
    return np.subtract(y, x), dt


_register("rsub", _rsub_compute, inplace=False, operands=lambda args: args[1::-1])   # torch: sub(other, self)


def _div_compute(self, other, rounding_mode=None):
    dt = div_dtype(_rt2(self, other), rounding_mode)
    if (dt is _F16 or dt is _BF16) and _is_scalar(other):
        # torch's div_*_cpu_reduced_float: the scalar divisor in float32, not rounded to the dtype
        x, y = _lowp(self, dt), _opmath_scalar(other)
        if rounding_mode is None:
            return np.true_divide(x, y), dt
        return (np.floor_divide(x, y) if rounding_mode == "floor" else np.trunc(np.true_divide(x, y))), dt
    if rounding_mode is None:
        return np.true_divide(_in(self, dt), _in(other, dt)), dt
    x, y = _in(self, dt), _in(other, dt)
    if dt.is_floating_point:
        return (np.floor_divide(x, y) if rounding_mode == "floor" else np.trunc(np.true_divide(x, y))), dt
    if not np.all(y):
        _zero_div("div")
    q = np.floor_divide(x, y)
    if rounding_mode == "trunc" and dt is not D.uint8:  # C division rounds toward zero
        q = q + ((q < 0) & (q * y != x))
    return q, dt


def _div_inplace(self, other, rounding_mode=None):
    dt = self._dtype
    if rounding_mode is not None or not dt.is_floating_point or dt is _F16 or dt is _BF16 or \
            _rt2(self, other) is not dt:
        return None
    a = arr(self)
    np.true_divide(a, _in(other, dt), out=a)
    return self


_register("div", _div_compute, fast=_div_inplace)


@impl("_rdiv")
def _rdiv(self, other):
    """`other / self` as torch computes it: `Tensor.__rdiv__` is `self.reciprocal() * other`, so the
    reciprocal is rounded to the result's dtype before the multiplication (and 1e-39 / 1e-40 is inf in
    float32, as in torch)."""
    dt = div_dtype(_rt2(self, other), None)
    x = _in(self, dt)
    rec = np.reciprocal(x)
    if dt in _LOWP:
        rec = rec.astype(dt.np).astype(rec.dtype)
    return wrap_ew(rec * operand(other, rec.dtype), dt, (self, other))


# ---- activations with parameters -----------------------------------------------------------

@impl("gelu")
def _gelu(self, approximate="none"):
    dt = self._dtype
    x = _in(self, dt)
    c = x.dtype.type
    if approximate == "none":  # x/2 * (1 + erf(x/sqrt(2)))
        r = _fresh(_erf(_fresh(x * c(_SQRT_HALF))))
    else:  # x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
        r = _fresh(x * x)
        r *= x
        r *= c(0.044715)
        r += x
        r *= c(_SQRT_2_OVER_PI)
        np.tanh(r, out=r)
    r += c(1.0)
    r *= x
    r *= c(0.5)
    return wrap_ew(r, dt, (self,))


@impl("gelu_backward")
def _gelu_backward(grad_output, self, approximate="none"):
    dt = _rt2(self, grad_output)
    x, g = _in(self, dt), _in(grad_output, dt)
    c = x.dtype.type
    if approximate == "none":  # cdf(x) + x pdf(x)
        r = _fresh(_erf(_fresh(x * c(_SQRT_HALF))))
        r += c(1.0)
        r *= c(0.5)
        pdf = _fresh(x * x)
        pdf *= c(-0.5)
        np.exp(pdf, out=pdf)
        pdf *= x
        pdf *= c(_INV_SQRT_2PI)
        r += pdf
    else:  # with t = tanh(k (x + 0.044715 x^3)): (1 + t) / 2 + x (1 - t^2) k (1 + 3 * 0.044715 x^2) / 2
        x2 = _fresh(x * x)
        t = x2 * c(0.044715)
        t += c(1.0)
        t *= x
        t *= c(_SQRT_2_OVER_PI)
        np.tanh(t, out=t)
        d = x2 * c(3 * 0.044715)
        d += c(1.0)
        d *= c(_SQRT_2_OVER_PI)
        d *= x
        d *= c(1.0) - t * t
        r = t + c(1.0)
        r += d
        r *= c(0.5)
    r = r * g
    return wrap_ew(r, dt, (grad_output, self))


@impl("softplus")
def _softplus(self, beta=1, threshold=20):
    dt = self._dtype
    x = _in(self, dt)
    bx = x * beta
    return wrap_ew(np.where(bx > threshold, x, np.log1p(np.exp(bx)) / beta), dt, (self,))


@impl("leaky_relu")
def _leaky_relu(self, negative_slope=0.01):
    dt = self._dtype
    x = _in(self, dt)
    return wrap_ew(np.where(x > 0, x, x * negative_slope), dt, (self,))


# ---- ternary and misc ----------------------------------------------------------------------

def _clamp_lowp(self, min, max, dt):
    """torch's float16/bfloat16 clamp: a scalar bound rounded to dt (with a range check), an element equal to it
    (a signed zero) kept, a NaN bound giving NaN."""
    r = _lowp(self, dt)
    for bound, fn, out_of in ((min, np.maximum, np.less), (max, np.minimum, np.greater)):
        if bound is None:
            continue
        b = _lowp(bound, dt) if bound.__class__ is Tensor else _scalar16(bound, dt, "clamp")
        if bound.__class__ is Tensor or b != 0:     # a NaN bound too: NumPy propagates it
            r = fn(r, b)
        else:   # NumPy's maximum/minimum return the bound where an element equals it (a signed zero)
            r = np.where(out_of(r, b), b, r)
    return r


def _clamp_compute(self, min=None, max=None):
    dt = _result_type(*[v for v in (self, min, max) if v is not None])
    if dt is _F16 or dt is _BF16:
        return _clamp_lowp(self, min, max, dt), dt
    r = _in(self, dt)
    if min is not None:
        r = np.maximum(r, _in(min, dt))
    if max is not None:
        if min is not None and not isinstance(max, Tensor) and type(r) is np.ndarray:
            np.minimum(r, _in(max, dt), out=r)  # r is a fresh temporary of the final shape
        else:
            r = np.minimum(r, _in(max, dt))
    return r, dt


def _clamp_inplace(self, min=None, max=None):
    dt = self._dtype
    if dt is _F16 or dt is _BF16 or dt is D.bool or _result_type(*[v for v in (self, min, max) if v is not None]) \
            is not dt:
        return None
    a = arr(self)
    if min is not None:
        np.maximum(a, _in(min, dt), out=a)
    if max is not None:
        np.minimum(a, _in(max, dt), out=a)
    return self


_register("clamp", _clamp_compute, fast=_clamp_inplace, operands=_tensors3)


@impl("where")
def _where(condition, self, other):
    dt = _result_type(self, other)
    return wrap_ew(np.where(arr(condition), _in(self, dt), _in(other, dt)), dt, (condition, self, other))


def _lerp_lowp(self, end, weight, dt):
    """torch's float16/bfloat16 lerp: in float32, a scalar weight kept in float32, each element
    fma(w, end - self, self) where |w| < 0.5, else fma(w - 1, end - self, end), rounded once."""
    s, e = _lowp(self, dt), _lowp(end, dt)
    d = _fresh(np.subtract(e, s))
    if isinstance(weight, Tensor):
        w = _lowp(weight, dt)
        one = _F32.type(1)
        return np.where(np.abs(w) < 0.5, _fma32(w, d, s), _fma32(w - one, d, e)), dt
    w = _F32.type(weight)
    if abs(w) < 0.5:
        return _fma32(w, d, s), dt
    return _fma32(w - _F32.type(1), d, e), dt


def _lerp_compute(self, end, weight):
    """self + weight * (end - self), as end - (end - self) * (1 - weight) where |weight| >= 0.5 (torch's form)."""
    dt = self._dtype
    if dt is _F16 or dt is _BF16:
        return _lerp_lowp(self, end, weight, dt)
    s, e, w = _in(self, dt), _in(end, dt), _in(weight, dt)
    diff = _fresh(np.subtract(e, s))
    if isinstance(weight, Tensor):
        return np.where(np.abs(w) < 0.5, s + w * diff, e - diff * (1 - w)), dt
    if abs(w) < 0.5:
        diff *= w
        return np.add(s, diff, out=diff), dt
    diff *= 1 - w
    return np.subtract(e, diff, out=diff), dt


def _lerp_inplace(self, end, weight):
    dt = self._dtype
    if dt is _F16 or dt is _BF16 or isinstance(weight, Tensor):
        return None
    a = arr(self)
    e, w = _in(end, dt), _in(weight, dt)
    diff = _fresh(np.subtract(e, a))
    if abs(w) < 0.5:
        diff *= w
        np.add(a, diff, out=a)
    else:
        diff *= 1 - w
        np.subtract(e, diff, out=a)
    return self


_register("lerp", _lerp_compute, fast=_lerp_inplace, operands=_tensors3)


def _addc_value(name, fn, self, tensor1, tensor2, value):
    """The result dtype and `value` as a scalar of the computation."""
    dt = _result_type(self, tensor1, tensor2)
    if isinstance(value, (bool, np.bool_)) or (not dt.is_floating_point and isinstance(value, (float, np.floating))):
        value = int(value)  # the value is cast to the tensors' dtype
    return dt, (_F32.type(value) if dt is _F16 or dt is _BF16 else operand(value, dt.np))


def _addc_lowp(fn, dt, v, self, tensor1, tensor2):
    """torch's float16/bfloat16 addcmul/addcdiv, in float32 with value `v` in float32: (v * t1) * t2 + self as
    one fused multiply-add, (v * t1) / t2 + self in three roundings; the result rounds to dt once."""
    r = np.multiply(_lowp(tensor1, dt), v)
    t2, s = _lowp(tensor2, dt), _lowp(self, dt)
    if fn is np.multiply:
        return _fma32(r, t2, s)
    return np.add(np.true_divide(r, t2), s)


def _addc_compute(name, fn):
    """self + value * fn(tensor1, tensor2)"""
    def compute(self, tensor1, tensor2, value=1):
        dt, v = _addc_value(name, fn, self, tensor1, tensor2, value)
        if dt is _F16 or dt is _BF16:
            return _addc_lowp(fn, dt, v, self, tensor1, tensor2), dt
        s = _in(self, dt)
        r = _fresh(fn(_in(tensor1, dt), _in(tensor2, dt)))
        if v != 1:
            r *= v
        if r.shape == np.shape(s):
            r += s
            return r, dt
        return np.add(s, r), dt
    return compute


def _addc_inplace(name, fn):
    def fast(self, tensor1, tensor2, value=1):
        dt = self._dtype
        if dt is _F16 or dt is _BF16 or dt is D.bool or _result_type(self, tensor1, tensor2) is not dt:
            return None
        dt, v = _addc_value(name, fn, self, tensor1, tensor2, value)
        a = arr(self)
        r = _fresh(fn(_in(tensor1, dt), _in(tensor2, dt)))
        if v != 1:
            r *= v
        np.add(a, r, out=a)
        return self
    return fast


_register("addcmul", _addc_compute("addcmul", np.multiply), fast=_addc_inplace("addcmul", np.multiply),
          operands=_tensors3)
_register("addcdiv", _addc_compute("addcdiv", np.true_divide), fast=_addc_inplace("addcdiv", np.true_divide),
          operands=_tensors3)


def _finfo(dt):
    import ml_dtypes
    return ml_dtypes.finfo(dt.np) if dt is D.bfloat16 else np.finfo(dt.np)


def _nan_to_num_compute(self, nan=0.0, posinf=None, neginf=None):
    dt = self._dtype
    x = arr(self)
    if not dt.is_floating_point:
        return x.copy(), dt
    info = _finfo(dt)
    hi = info.max if posinf is None else posinf
    lo = info.min if neginf is None else neginf
    t = dt.np.type
    r = np.where(np.isnan(x), t(nan), x)
    np.copyto(r, t(hi), where=np.isposinf(x))
    np.copyto(r, t(lo), where=np.isneginf(x))
    return r, dt


_register("nan_to_num", _nan_to_num_compute, operands=lambda args: args[:1])


@impl("isclose")
def _isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    dt = self._dtype
    a, b = arr(self), arr(other)
    close = np.equal(a, b)
    if equal_nan and dt.is_floating_point:
        close |= np.isnan(a) & np.isnan(b)
    if rtol == 0 and atol == 0:
        return wrap_ew(close, D.bool, (self, other))
    if dt.is_floating_point:  # PyTorch computes the errors in the tensors' dtype
        cnp = _F32 if dt is _F16 or dt is _BF16 else dt.np
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
    return wrap_ew(close, D.bool, (self, other))


# ---- conversion and copies ------------------------------------------------------------------

@impl("to_dtype")
def _to_dtype(self, dtype, copy=False):
    if dtype is self._dtype and not copy:
        return self
    a = arr(self)
    r = _narrow(a, dtype.np) if dtype is _F16 or dtype is _BF16 else a.astype(dtype.np)   # (in a's layout)
    if self._stride == contiguous_strides(self._shape):
        return wrap(r, dtype)
    st = layout_strides(self, None, "to")       # torch's preserve_format: a dense self keeps its strides
    return wrap(r, dtype) if st is None else wrap_strided(r, dtype, st)


@impl("copy_")
def _copy_(self, src, non_blocking=False):
    if 0 in self._stride:
        check_internal_overlap("copy_", self)
    s = arr(src)
    if s.dtype == _F64 and (self._dtype is _F16 or self._dtype is _BF16):
        s = s.astype(_F32)  # PyTorch narrows double through float
    np.copyto(arr(self), s, casting="unsafe")
    return self


def _fill_value(value, dt):
    """A Python scalar (one `dt` holds: the meta checked) as a NumPy scalar of `dt`."""
    if dt is D.bool:
        return np.bool_(value)
    if dt.is_integer:
        return np.array(int(value)).astype(dt.np)[()]
    value = float(value)
    return dt.np.type(_F32.type(value)) if dt is _F16 or dt is _BF16 else dt.np.type(value)


@impl("fill_")
def _fill_(self, value):
    if isinstance(value, Tensor):
        v = arr(value)  # a tensor value is cast like copy_ (no range check, unlike a Python scalar)
        if v.dtype == _F64 and (self._dtype is _F16 or self._dtype is _BF16):
            v = v.astype(_F32)
        np.copyto(arr(self), v, casting="unsafe")
        return self
    arr(self).fill(_fill_value(value, self._dtype))
    return self


@impl("zero_")
def _zero_(self):
    arr(self).fill(0)
    return self


@impl("clone")
def _clone(self, memory_format=None):
    st = layout_strides(self, memory_format, "clone")
    if st is None:
        return wrap(np.array(arr(self), copy=True, order="C"), self._dtype)
    return wrap_strided(np.array(arr(self), copy=True, order="K"), self._dtype, st)
