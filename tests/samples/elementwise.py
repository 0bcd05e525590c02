"""Samples of the elementwise family (`ember/ops/elementwise.py`, kernels in `backends/*/elementwise.py`).

The unary and binary ops are generated from the op tables (`UNARY`, `BINARY`, and the refused dtypes
`UNARY_REFUSED`, `BINARY_REFUSED`): each gets samples of every dtype category it accepts (float32,
float64 for gradcheck, float16 / bfloat16, an integer type, bool), 0-d, empty, strided and broadcast
operands and Python scalars, and an ErrorSample for each category it refuses (torch must refuse it
too, so a wrong table shows up either way). In-place forms get fewer samples and the in-place errors:
a result `self` cannot hold, an operand that broadcasts to a larger shape, an expanded `self`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from helpers import make_pair

import ember
from ember.dispatch import OPS
from ember.ops.elementwise import BINARY, BINARY_REFUSED, UNARY, UNARY_REFUSED

from ._core import ErrorSample, OpInfo, Sample, register

f16, bf16, f32, f64 = "float16", "bfloat16", "float32", "float64"
_INTS = ("int64", "int32", "int16", "int8", "uint8")
_CAST = "can't be cast"
_OVERLAP = "more than one element of the written-to tensor"
_BROADCAST = "broadcast"
_NOT_IMPL = "not implemented|Negation|Boolean"
_LOWP_TOL = {f16: (2e-3, 2e-3), bf16: (1.6e-2, 1.6e-2)}
# copy_, fill_, zero_ and clone on CUDA (backends/cuda/tensor.py) copy and fill through the driver
_DRIVER = "the CUDA kernel copies or fills through the driver (cuMemcpy/cuMemset), which needs a GPU"


def t(shape, dtype=f32, low=-2.0, high=2.0, seed=0, layout="contiguous"):
    """An ember CPU tensor of random values in [low, high] (see helpers.make_pair for the layouts)."""
    return make_pair(shape, dtype, low=low, high=high, seed=seed, layout=layout)[0]


def nonzero(shape, dtype=f32, seed=0, layout="contiguous"):
    """Divisors: values of magnitude 0.5..3 (1..3 for integers), either sign (positive for uint8)."""
    x = t(shape, dtype, low=1.0 if dtype in _INTS else 0.5, high=3.0, seed=seed, layout=layout)
    if dtype != "uint8":
        sign = t(x.shape, "bool", seed=seed + 7)
        x = ember.where(sign, x, -x)
    return x


def expanded_self(dtype=f32):
    """A `self` with a stride-0 dim: in-place ops refuse to write into it."""
    return ember.zeros(1, 3, dtype=getattr(ember, dtype)).expand(2, 3)


def _refused(table, name):
    return table.get(name, (frozenset(), None))[0]


def _dt(table, name, dtype):
    """`dtype`, or an integer type in its place where op `name` refuses floating point types (bitwise ops)."""
    if getattr(ember, dtype) in _refused(table, name) and dtype in (f16, bf16, f32, f64):
        return {f32: "int64", f64: "int32", f16: "int16", bf16: "int8"}[dtype]
    return dtype


def _accepts(table, name, dtype):
    return getattr(ember, dtype) not in _refused(table, name)


def _refusals(table, name, *args):
    """An ErrorSample per dtype category op `name` refuses (each tensor argument of that category)."""
    exc = RuntimeError if name in ("neg", "relu") else NotImplementedError
    return [ErrorSample(tuple(t((2,), d, seed=i) for i in range(args[0])) + args[1:], {}, exc, _NOT_IMPL,
                        desc=f"{d} refused")
            for d in ("bool", "int64", f32) if getattr(ember, d) in _refused(table, name)]


# ---- unary --------------------------------------------------------------------------------------

# the interval each op's samples come from (inside its domain, away from where gradcheck's finite
# differences would cross a pole); integer samples come from the interval's integers
_UNIT = (-0.9, 0.9)
_DOMAIN = {"log": (0.2, 3.0), "log2": (0.2, 3.0), "log10": (0.2, 3.0), "sqrt": (0.2, 3.0), "rsqrt": (0.2, 3.0),
           "reciprocal": (0.3, 3.0), "log1p": (-0.8, 3.0), "asin": _UNIT, "acos": _UNIT, "atanh": _UNIT,
           "acosh": (1.2, 4.0), "tan": (-1.2, 1.2)}
_INT_DOMAIN = {"acosh": (1.0, 4.0), "asin": (-1.0, 1.0), "acos": (-1.0, 1.0), "atanh": (0.0, 0.0),
               "log": (1.0, 3.0), "log2": (1.0, 3.0), "log10": (1.0, 3.0), "sqrt": (1.0, 3.0), "rsqrt": (1.0, 3.0),
               "reciprocal": (1.0, 3.0), "log1p": (0.0, 3.0)}


def _unary_samples(name, k):
    lo, hi = _DOMAIN.get(name, (-2.0, 2.0))
    ilo, ihi = _INT_DOMAIN.get(name, (-3.0, 3.0))
    dt = lambda d: _dt(UNARY_REFUSED, name, d)  # noqa: E731
    lowp = dt((f16, bf16)[k % 2])
    integer = _INTS[k % len(_INTS)]
    out = [Sample((t((3, 4), dt(f32), lo, hi),)),
           Sample((t((4, 3), dt(f64), lo, hi, seed=1, layout="transposed"),), desc="float64, transposed"),
           Sample((t((2, 3), lowp, lo, hi, seed=2, layout="sliced"),), desc=f"{lowp}, sliced"),
           Sample((t((), dt(f32), lo, hi, seed=3),), desc="0-d"),
           Sample((t((0, 3), dt(f32)),), desc="empty"),
           Sample((t((3, 4), dt(f32), lo, hi, seed=4, layout="expanded"),), desc="expanded")]
    if _accepts(UNARY_REFUSED, name, integer):
        low = max(ilo, 0.0) if integer == "uint8" else ilo
        out.append(Sample((t((5,), integer, low, max(ihi, low)),), desc=integer))
    if _accepts(UNARY_REFUSED, name, "bool"):
        out.append(Sample((t((4,), "bool"),), desc="bool"))
    return out


def _unary_inplace_samples(name, k):
    lo, hi = _DOMAIN.get(name, (-2.0, 2.0))
    dt = lambda d: _dt(UNARY_REFUSED, name, d)  # noqa: E731
    out = [Sample((t((3, 4), dt(f32), lo, hi),)),
           Sample((t((4, 3), dt(f64), lo, hi, seed=1, layout="transposed"),), desc="float64, transposed self"),
           Sample((t((2, 3), dt((bf16, f16)[k % 2]), lo, hi, seed=2, layout="sliced"),), desc="low precision, sliced"),
           Sample((t((), dt(f32), lo, hi, seed=3),), desc="0-d")]
    if UNARY[name] != "float" and _accepts(UNARY_REFUSED, name, "int32"):
        out.append(Sample((t((5,), "int32", 0.0, 3.0),), desc="int32"))
    if UNARY[name] in ("same", "bool") and _accepts(UNARY_REFUSED, name, "bool"):
        out.append(Sample((t((4,), "bool"),), desc="bool"))
    return out


def _unary_inplace_errors(name):
    out = _refusals(UNARY_REFUSED, name, 1)
    out.append(ErrorSample((expanded_self(_dt(UNARY_REFUSED, name, f32)),), {}, RuntimeError, _OVERLAP,
                           desc="expanded self"))
    if UNARY[name] == "float":
        out.append(ErrorSample((t((3,), "int64"),), {}, RuntimeError, _CAST, desc="float result into int64"))
    if UNARY[name] == "square":
        out.append(ErrorSample((t((3,), "bool"),), {}, RuntimeError, _CAST, desc="int64 result into bool"))
    return out


def _unary_grad(name):
    if UNARY[name] == "bool":
        return "not differentiable (bool result)"
    if name == "bitwise_not":
        return "not differentiable (integers and bools only)"
    return True


for _k, _name in enumerate(UNARY):
    register(OpInfo(_name, samples=lambda n=_name, k=_k: _unary_samples(n, k),
                    errors=lambda n=_name: _refusals(UNARY_REFUSED, n, 1),
                    ref=F.silu if _name == "silu" else getattr(torch, _name), grad=_unary_grad(_name), tol=_LOWP_TOL))
    if _name + "_" in OPS:
        register(OpInfo(_name + "_", samples=lambda n=_name, k=_k: _unary_inplace_samples(n, k),
                        errors=lambda n=_name: _unary_inplace_errors(n), ref=getattr(torch.Tensor, _name + "_"),
                        grad=_unary_grad(_name) if _name != "logical_not" else "not differentiable (comparison)",
                        tol=_LOWP_TOL))


# ---- binary -------------------------------------------------------------------------------------

_DIVIDING = {"remainder", "fmod", "floor_divide", "div"}
_TENSOR_ONLY = {n for n in BINARY if "Scalar" not in str(OPS[n].schema)}


def _operand(name, shape, dtype, seed=0, layout="contiguous", second=False):
    """An operand of op `name`: divisors avoid 0, pow's bases are positive and its exponents small."""
    if second and name in _DIVIDING:
        return nonzero(shape, dtype, seed, layout)
    if name == "pow":
        if dtype in _INTS:
            return t(shape, dtype, 0.0, 3.0, seed, layout)
        return t(shape, dtype, -2.0, 2.0, seed, layout) if second else t(shape, dtype, 0.5, 2.0, seed, layout)
    return t(shape, dtype, -3.0, 3.0, seed, layout)


def _binary_samples(name, k, scalar=None):
    """The samples of a binary op; `scalar` says whether `other` may be a Python number."""
    def x(shape, dtype, seed=0, layout="contiguous", second=False):
        return _operand(name, shape, _dt(BINARY_REFUSED, name, dtype), seed, layout, second)
    scalar = name not in _TENSOR_ONLY if scalar is None else scalar
    lowp = (f16, bf16)[k % 2]
    integer = _INTS[k % len(_INTS)]
    out = [Sample((x((3, 4), f32), x((3, 4), f32, 1, second=True))),
           Sample((x((4, 3), f64, 2, "transposed"), x((3,), f64, 3, second=True)),
                  desc="float64 transposed with a broadcast row"),
           Sample((x((2, 3), lowp, 4, "sliced"), (2 if name.startswith("bitwise") else 1.5) if scalar
                   else x((2, 3), lowp, 5, second=True)), desc=f"{lowp} sliced with a scalar or a {lowp}"),
           Sample((x((), bf16, 6), x((2, 3), f32, 7, second=True)), desc="0-d bfloat16 with float32"),
           Sample((x((0, 3), f32), x((3,), f32, 8, second=True)), desc="empty"),
           Sample((x((3, 4), f32, 9, "expanded"), x((3, 4), f32, 10, "transposed", second=True)),
                  desc="expanded with transposed")]
    if _accepts(BINARY_REFUSED, name, integer):
        out.append(Sample((x((2, 3), integer, 11), x((3,), "int64", 12, second=True)), desc=f"{integer} with int64"))
        if scalar:
            out.append(Sample((x((4,), "uint8", 13), 2), desc="uint8 with a Python int"))
    if scalar and _accepts(BINARY_REFUSED, name, f32):
        out.append(Sample((x((4,), "int64", 14), 2.5), desc="int64 with a Python float"))
    if _accepts(BINARY_REFUSED, name, "bool"):
        out.append(Sample((t((4,), "bool", seed=15), t((4,), "bool", seed=16)), desc="bool"))
    return out


def _binary_inplace_samples(name, k, scalar=None, rule=None):
    def x(shape, dtype, seed=0, layout="contiguous", second=False):
        return _operand(name, shape, _dt(BINARY_REFUSED, name, dtype), seed, layout, second)
    scalar = name not in _TENSOR_ONLY if scalar is None else scalar
    lowp = (bf16, f16)[k % 2]
    out = [Sample((x((3, 4), f32), x((3, 4), f32, 1, second=True))),
           Sample((x((4, 3), f64, 2, "transposed"), x((3,), f64, 3, second=True)),
                  desc="float64, transposed self, broadcast other"),
           Sample((x((2, 3), lowp, 4, "sliced"), x((2, 3), lowp, 5, second=True)), desc=f"{lowp}, sliced self")]
    if scalar:
        out.append(Sample((x((), f32, 6), 2 if name.startswith("bitwise") else 2.0), desc="0-d with a Python scalar"))
    if (rule or BINARY.get(name, "same")) != "float" and _accepts(BINARY_REFUSED, name, "int64"):
        out.append(Sample((x((5,), "int64", 7), x((5,), "int32", 8, second=True)), desc="int64 self, int32 other"))
    return out


def _binary_errors(name):
    out = _refusals(BINARY_REFUSED, name, 2)
    f = _dt(BINARY_REFUSED, name, f32)
    out.append(ErrorSample((t((2, 3), f), t((4,), f)), {}, RuntimeError, _BROADCAST, desc="shapes that don't broadcast"))
    return out


def _binary_inplace_errors(name, result=None):
    out = _binary_errors(name)
    f = _dt(BINARY_REFUSED, name, f32)
    out.append(ErrorSample((expanded_self(f), t((2, 3), f)), {}, RuntimeError, _OVERLAP, desc="expanded self"))
    out.append(ErrorSample((t((3,), f), t((2, 3), f)), {}, RuntimeError, "doesn't match the broadcast shape",
                           desc="other broadcasts self to a larger shape"))
    if (result or BINARY[name]) != "bool":
        out.append(ErrorSample((t((3,), "int64"), t((3,), f32)), {}, RuntimeError, _CAST,
                               desc="float result into int64"))
    return out


def _binary_grad(name):
    if BINARY[name] == "bool":
        return "not differentiable (bool result)"
    if name.startswith("bitwise"):
        return "not differentiable (integers and bools only)"
    return True


def _pow_samples(k):
    """pow's own cases: scalar exponents of bool and integer tensors, negative integer tensor exponents."""
    return _binary_samples("pow", k) + [
        Sample((t((4,), "bool"), True), desc="bool to True"), Sample((t((4,), "bool", seed=1), 2), desc="bool to 2"),
        Sample((t((3,), "int64", -3, 3), 3), desc="int64 cubed"),
        Sample((t((4,), "int64", -2, 2), t((4,), "int64", -2, 2, seed=1)), desc="int64 to int64, negatives too")]


def _pow_errors():
    return _binary_errors("pow") + [
        ErrorSample((t((3,), "int64"), -1), {}, RuntimeError, "negative integer powers", desc="int64 to -1")]


_SAMPLES = {"pow": lambda k: _pow_samples(k)}
_ERRORS = {"pow": _pow_errors}

for _k, _name in enumerate(BINARY):
    _tol = {f16: (2e-3, 2e-3)} if _name in ("pow", "atan2", "hypot", "logaddexp") else {}
    register(OpInfo(_name, samples=lambda n=_name, k=_k: _SAMPLES.get(n, lambda k: _binary_samples(n, k))(k),
                    errors=lambda n=_name: _ERRORS.get(n, lambda: _binary_errors(n))(),
                    ref=getattr(torch, _name), grad=_binary_grad(_name), tol=_tol))
    if _name + "_" in OPS:
        register(OpInfo(_name + "_", samples=lambda n=_name, k=_k: _binary_inplace_samples(n, k),
                        errors=lambda n=_name: _binary_inplace_errors(n), ref=getattr(torch.Tensor, _name + "_"),
                        grad=_binary_grad(_name) if BINARY[_name] != "bool" else "not differentiable (comparison)",
                        tol=_tol))


# ---- add, sub, rsub, div ------------------------------------------------------------------------

def _add_samples(name, k):
    out = _binary_samples(name, k, scalar=True)
    if name != "add":   # subtraction refuses bools
        out = [s for s in out if s.desc != "bool"]
    return out + [Sample((t((2, 3), f64), t((2, 3), f64, seed=1)), {"alpha": 2.5}, desc="float alpha"),
                  Sample((t((2, 3), "int64"), t((3,), "int32", seed=1)), {"alpha": -2}, desc="int alpha"),
                  Sample((t((2, 3), f16), 3), {"alpha": 0.5}, desc="float16, scalar other, float alpha")] + \
        ([Sample((t((3,), "bool"), t((3,), "bool", seed=1)), {"alpha": True}, desc="bool alpha")]
         if name == "add" else [])


def _add_errors(name):
    out = [ErrorSample((t((2, 3)), t((4,))), {}, RuntimeError, _BROADCAST, desc="shapes that don't broadcast"),
           ErrorSample((t((3,), "int64"), t((3,), "int64", seed=1)), {"alpha": 2.5}, RuntimeError,
                       "alpha must not be a floating point", desc="float alpha, int64 tensors"),
           ErrorSample((t((3,)), t((3,), seed=1)), {"alpha": True}, RuntimeError, "Boolean alpha",
                       desc="bool alpha, float tensors")]
    if name != "add":
        out += [ErrorSample((t((3,), "bool"), t((3,), "bool", seed=1)), {}, RuntimeError, "Subtraction",
                            desc="bool tensors"),
                ErrorSample((t((3,)), True), {}, RuntimeError, "Subtraction", desc="a Python bool")]
    return out


for _k, _name in enumerate(("add", "sub", "rsub")):
    register(OpInfo(_name, samples=lambda n=_name, k=_k: _add_samples(n, k), errors=lambda n=_name: _add_errors(n),
                    ref=getattr(torch, _name)))
    if _name != "rsub":
        register(OpInfo(_name + "_", samples=lambda n=_name, k=_k: _binary_inplace_samples(n, k, scalar=True) + [
            Sample((t((2, 3), f64), t((2, 3), f64, seed=1)), {"alpha": -1.5}, desc="float alpha")],
            errors=lambda n=_name: _add_errors(n) + _binary_inplace_errors(n, "same")[-3:],
            ref=getattr(torch.Tensor, _name + "_")))


def _div_samples(k):
    out = _binary_samples("div", k, scalar=True)
    for mode in ("floor", "trunc"):
        out += [Sample((t((3, 4)), nonzero((3, 4), seed=1)), {"rounding_mode": mode}, desc=f"float32 {mode}"),
                Sample((t((2, 3), "int64", -9, 9), nonzero((3,), "int32", seed=2)), {"rounding_mode": mode},
                       desc=f"int64 {mode}"),
                Sample((t((2, 3), f16, seed=3), 0.75), {"rounding_mode": mode}, desc=f"float16 {mode} by a scalar")]
    return out


def _div_errors():
    return [ErrorSample((t((2, 3)), t((4,))), {}, RuntimeError, _BROADCAST, desc="shapes that don't broadcast"),
            ErrorSample((t((3,)), t((3,), seed=1)), {"rounding_mode": "round"}, RuntimeError, "rounding_mode",
                        desc="unknown rounding mode"),
            ErrorSample((t((3,), "bool"), t((3,), "bool", seed=1)), {"rounding_mode": "floor"}, NotImplementedError,
                        "not implemented", desc="bool floor division")]


register(OpInfo("div", samples=lambda: _div_samples(0), errors=_div_errors, ref=torch.div))
register(OpInfo("div_", samples=lambda: _binary_inplace_samples("div", 1, scalar=True, rule="float") + [
    Sample((t((5,), "int64", -9, 9), nonzero((5,), "int64", seed=1)), {"rounding_mode": "trunc"},
           desc="int64 trunc")],
    errors=lambda: _div_errors() + _binary_inplace_errors("div", "float")[-3:], ref=torch.Tensor.div_))


# ---- reflected: scalar <op> tensor ----------------------------------------------------------------

def _reflected_samples(name):
    """`_r<name>(self, other)` is `<name>(other, self)`: self is the divisor or the exponent."""
    def x(shape, dtype, seed=0, layout="contiguous"):
        return _operand(name, shape, dtype, seed, layout, second=True)
    base = 2.0 if name == "pow" else 2.5
    out = [Sample((x((3, 4), f32), base)),
           Sample((x((4, 3), f64, 1, "transposed"), base), desc="float64 transposed"),
           Sample((x((2, 3), f16, 2, "sliced"), base), desc="float16 sliced"),
           Sample((x((), bf16, 3), 3), desc="0-d bfloat16, int scalar"),
           Sample((x((0, 3), f32), base), desc="empty"),
           Sample((x((5,), "int64", 4), 7), desc="int64, int scalar"),
           Sample((x((5,), "int32", 5), 2.5), desc="int32, float scalar")]
    if name not in ("floor_divide", "remainder", "pow", "fmod"):   # these refuse a bool computation
        out.append(Sample((t((4,), "bool"), True), desc="bool, bool scalar"))
    out.append(Sample((t((4,), "bool") if name != "fmod" and name != "remainder" and name != "floor_divide"
                       else nonzero((4,), "uint8"), 3), desc="bool or uint8, int scalar"))
    return out


def _reflected_errors(name):
    if name in ("floor_divide", "remainder", "pow", "fmod"):
        return [ErrorSample((t((3,), "bool"), True), {}, NotImplementedError, "not implemented",
                            desc="bool tensor, bool scalar")]
    return []


_REFLECTED_REF = {
    "div": lambda s, o: o / s, "floor_divide": lambda s, o: o // s, "remainder": lambda s, o: o % s,
    "pow": lambda s, o: o ** s, "fmod": lambda s, o: torch.fmod(torch.tensor(o), s),
    "atan2": lambda s, o: torch.atan2(torch.tensor(o), s)}
for _name, _ref in _REFLECTED_REF.items():
    register(OpInfo("_r" + _name, samples=lambda n=_name: _reflected_samples(n), errors=lambda n=_name:
                    _reflected_errors(n), ref=_ref, tol={f16: (2e-3, 2e-3)},
                    grad=True if OPS["_r" + _name].derivative is not None else
                    f"no derivative is declared for _r{_name}"))


# ---- activations with parameters ------------------------------------------------------------------

def _float_samples(*extra):
    """Samples of an op on floating point tensors only; `extra` are its keyword arguments per sample."""
    kw = list(extra) + [{}] * (5 - len(extra))
    return [Sample((t((3, 4)),), kw[0]), Sample((t((4, 3), f64, seed=1, layout="transposed"),), kw[1],
                                                desc="float64 transposed"),
            Sample((t((2, 3), f16, seed=2, layout="sliced"),), kw[2], desc="float16 sliced"),
            Sample((t((), bf16, seed=3),), kw[3], desc="0-d bfloat16"), Sample((t((0, 2)),), kw[4], desc="empty")]


def _float_errors(name, **kw):
    return [ErrorSample((t((3,), "int64"),), kw, NotImplementedError, "not implemented", desc="int64"),
            ErrorSample((t((3,), "bool"),), kw, NotImplementedError, "not implemented", desc="bool")]


register(OpInfo("gelu", samples=lambda: _float_samples({}, {"approximate": "tanh"}, {}, {"approximate": "tanh"}),
                errors=lambda: _float_errors("gelu") + [
                    ErrorSample((t((3,)),), {"approximate": "fast"}, RuntimeError, "approximate",
                                desc="unknown approximation")],
                ref=F.gelu, tol=_LOWP_TOL))


def _gelu_backward_samples():
    return [Sample((t((3, 4), seed=1), t((3, 4)))),
            Sample((t((4, 3), f64, seed=1), t((4, 3), f64, layout="transposed")), desc="float64, transposed"),
            Sample((t((4, 3), f64, seed=2), t((4, 3), f64, seed=3)), {"approximate": "tanh"}, desc="float64 tanh"),
            Sample((t((2, 3), f16, seed=4), t((2, 3), f16, seed=5, layout="sliced")), desc="float16 sliced"),
            Sample((t((2, 3), bf16, seed=6), t((2, 3), bf16, seed=7)), {"approximate": "tanh"}, desc="bfloat16 tanh"),
            Sample((t((3,)), t((3,), "int64", -3, 3)), desc="int64 input, float32 grad (a float32 result)"),
            Sample((t((), seed=8), t((), seed=9)), desc="0-d"), Sample((t((0, 3)), t((0, 3))), desc="empty")]


register(OpInfo("gelu_backward", samples=_gelu_backward_samples,
                errors=lambda: [ErrorSample((t((3,), "int64"), t((3,), "int64")), {}, NotImplementedError,
                                            "not implemented", desc="int64 grad and input"),
                                ErrorSample((t((3,)), t((3,))), {"approximate": "x"}, RuntimeError, "approximate",
                                            desc="unknown approximation")],
                ref=lambda g, x, approximate="none": torch.ops.aten.gelu_backward(g, x, approximate=approximate),
                grad="no derivative is declared for gelu_backward (create_graph differentiates gelu's composite "
                     "formula instead)", tol=_LOWP_TOL))
register(OpInfo("softplus", samples=lambda: _float_samples({}, {"beta": 2, "threshold": 1.5}, {"beta": 0.5}) + [
    Sample((t((3,), f64, 5, 30),), {"beta": 1, "threshold": 20}, desc="float64 above the threshold")],
    errors=lambda: _float_errors("softplus"), ref=F.softplus, tol=_LOWP_TOL))
register(OpInfo("leaky_relu", samples=lambda: _float_samples({}, {"negative_slope": 0.2}, {"negative_slope": 2}),
                errors=lambda: _float_errors("leaky_relu"), ref=F.leaky_relu, tol=_LOWP_TOL))


# ---- clamp, where, lerp, addcmul, addcdiv ---------------------------------------------------------

def _clamp_samples():
    return [Sample((t((3, 4)), -0.5, 0.5)),
            Sample((t((4, 3), f64, layout="transposed"), t((3,), f64, -1, 0, seed=1), t((4, 1), f64, 0, 1, seed=2)),
                   desc="float64 transposed, tensor bounds broadcast"),
            Sample((t((3, 4), f64, seed=3), -0.5), desc="float64, min only"),
            Sample((t((3, 4), f64, seed=4), None, 0.5), desc="float64, max only"),
            Sample((t((2, 3), f16, seed=5, layout="sliced"), -1.0, 1.0), desc="float16 sliced"),
            Sample((t((), bf16, seed=6), 0.0), desc="0-d bfloat16"),
            Sample((t((0, 3)), 0.0, 1.0), desc="empty"),
            Sample((t((5,), "int64", -5, 5), -2, 2), desc="int64, int bounds"),
            Sample((t((5,), "int32", -5, 5), -1.5, 1.5), desc="int32, float bounds (a float result)"),
            Sample((t((4,), "bool"), t((4,), "bool", seed=1)), desc="bool, tensor min"),
            Sample((t((4,), "uint8", 0, 9), None, t((4,), "uint8", 0, 9, seed=1)), desc="uint8, tensor max")]


def _clamp_errors(name):
    return [ErrorSample((t((3,)),), {}, RuntimeError, "At least one of 'min' or 'max'", desc="no bound"),
            ErrorSample((t((3,), "bool"), False, True), {}, NotImplementedError, "not implemented",
                        desc="bool with scalar bounds"),
            ErrorSample((t((2, 3)), t((4,))), {}, RuntimeError, _BROADCAST, desc="bounds that don't broadcast")]


register(OpInfo("clamp", samples=_clamp_samples, errors=lambda: _clamp_errors("clamp"), ref=torch.clamp))
register(OpInfo("clamp_", samples=lambda: [
    Sample((t((3, 4)), -0.5, 0.5)),
    Sample((t((4, 3), f64, layout="transposed"), t((3,), f64, -1, 0, seed=1)), desc="float64, tensor min"),
    Sample((t((2, 3), bf16, seed=2, layout="sliced"), None, 0.0), desc="bfloat16 sliced, max only"),
    Sample((t((5,), "int64", -5, 5), -2, 2), desc="int64")],
    errors=lambda: _clamp_errors("clamp_") + [
        ErrorSample((t((3,), "int64"), 0.5), {}, RuntimeError, _CAST, desc="float bound, int64 self"),
        ErrorSample((t((3,)), t((2, 3))), {}, RuntimeError, "doesn't match the broadcast shape",
                    desc="a bound that broadcasts self"),
        ErrorSample((expanded_self(), 0.0), {}, RuntimeError, _OVERLAP, desc="expanded self")],
    ref=torch.Tensor.clamp_))


def _where_samples():
    c = t((3, 4), "bool")
    return [Sample((c, t((3, 4)), t((3, 4), seed=1))),
            Sample((t((3,), "bool", seed=2), t((4, 3), f64, seed=3, layout="transposed"), t((4, 1), f64, seed=4)),
                   desc="float64, broadcast"),
            Sample((c, 1.0, 0), desc="two Python scalars (a default-dtype result)"),
            Sample((c, t((3, 4), "int64"), 2.5), desc="int64 and a Python float"),
            Sample((t((2, 3), "uint8", 0, 1), t((2, 3), f16, layout="sliced"), t((), f32)),
                   desc="uint8 condition, float16 sliced, 0-d float32"),
            Sample((t((4,), "bool"), t((4,), "bool", seed=1), t((4,), "int8")), desc="bool and int8"),
            Sample((t((0, 3), "bool"), t((3,)), -1.0), desc="empty"),
            Sample((t((), "bool"), t((), bf16), t((), bf16, seed=1)), desc="0-d bfloat16")]


register(OpInfo("where", samples=_where_samples, errors=lambda: [
    ErrorSample((t((3,)), t((3,)), t((3,))), {}, RuntimeError, "condition to be a boolean", desc="float condition"),
    ErrorSample((t((3,), "int64", 0, 1), t((3,)), 0.0), {}, RuntimeError, "condition to be a boolean",
                desc="int64 condition"),
    ErrorSample((t((3,), "bool"), t((4,)), 0.0), {}, RuntimeError, _BROADCAST, desc="shapes that don't broadcast")],
    ref=torch.where))


def _lerp_samples():
    return [Sample((t((3, 4)), t((3, 4), seed=1), 0.3)),
            Sample((t((3, 4), seed=2), t((3, 4), seed=3), 0.7), desc="weight >= 0.5"),
            Sample((t((4, 3), f64, layout="transposed"), t((3,), f64, seed=4), t((4, 1), f64, seed=5)),
                   desc="float64 transposed, broadcast end and tensor weight"),
            Sample((t((2, 3), f64, seed=6), t((2, 3), f64, seed=7), 0.25), desc="float64, scalar weight"),
            Sample((t((2, 3), f16, layout="sliced"), t((2, 3), f16, seed=8), 0.5), desc="float16 sliced"),
            Sample((t((3,), f32), t((3,), f32, seed=9), t((), f64, seed=10)), desc="0-d float64 weight (allowed)"),
            Sample((t((), bf16), t((), bf16, seed=11), 0.6), desc="0-d bfloat16"),
            Sample((t((0, 3)), t((3,)), 0.5), desc="empty")]


def _lerp_errors(name):
    return [ErrorSample((t((3,)), t((3,), f64), 0.5), {}, RuntimeError, "expected dtype", desc="end of another dtype"),
            ErrorSample((t((3,)), t((3,)), t((3,), f64)), {}, RuntimeError, "expected dtype",
                        desc="weight of another dtype"),
            ErrorSample((t((3,), "int64"), t((3,), "int64"), 1), {}, NotImplementedError, "not implemented",
                        desc="int64")]


register(OpInfo("lerp", samples=_lerp_samples, errors=lambda: _lerp_errors("lerp") + [
    ErrorSample((t((2, 3)), t((4,)), 0.5), {}, RuntimeError, _BROADCAST, desc="shapes that don't broadcast")],
    ref=torch.lerp, tol=_LOWP_TOL))
register(OpInfo("lerp_", samples=lambda: [s for s in _lerp_samples() if "broadcast" not in s.desc] + [
    Sample((t((4, 3), f64, layout="transposed"), t((3,), f64, seed=4), t((4, 1), f64, seed=5)),
           desc="float64 transposed self, broadcast end and weight")],
    errors=lambda: _lerp_errors("lerp_") + [
        ErrorSample((t((3,)), t((2, 3)), 0.5), {}, RuntimeError, "doesn't match the broadcast shape",
                    desc="end broadcasts self"),
        ErrorSample((expanded_self(), t((2, 3)), 0.5), {}, RuntimeError, _OVERLAP, desc="expanded self")],
    ref=torch.Tensor.lerp_, tol=_LOWP_TOL))


def _addc_samples(name, inplace=False):
    div = name == "addcdiv"
    d = nonzero if div else (lambda shape, dtype=f32, seed=0, layout="contiguous": t(shape, dtype, seed=seed,
                                                                                       layout=layout))
    out = [Sample((t((3, 4)), t((3, 4), seed=1), d((3, 4), seed=2))),
           Sample((t((4, 3), f64, layout="transposed"), t((3,), f64, seed=3), d((4, 1), f64, seed=4)), {"value": 0.5},
                  desc="float64 transposed, broadcast"),
           Sample((t((2, 3), f16, layout="sliced"), t((2, 3), f16, seed=5), d((2, 3), f16, seed=6)), {"value": 2},
                  desc="float16 sliced")]
    if not inplace:
        out += [Sample((t((), bf16), t((2,), bf16, seed=7), d((2,), bf16, seed=8)), desc="0-d bfloat16 self"),
                Sample((t((0, 3)), t((3,), seed=9), d((3,), seed=10)), desc="empty")]
    if div:
        out.append(Sample((t((4,), "int64"), t((4,), "int64", seed=11), d((4,), f32, seed=12)),
                          desc="int64 with a float32 divisor (a float result)" if not inplace else "")
                   if not inplace else Sample((t((4,), f32), t((4,), "int64", seed=11), d((4,), f32, seed=12)),
                                              desc="an int64 tensor1"))
    else:
        out.append(Sample((t((4,), "int64"), t((4,), "int32", seed=11), d((4,), "int64", seed=12)), {"value": 3},
                          desc="integers"))
    return out


def _addc_errors(name):
    out = [ErrorSample((t((2, 3)), t((4,)), t((4,))), {}, RuntimeError, _BROADCAST, desc="shapes that don't broadcast")]
    if name.startswith("addcdiv"):
        out.append(ErrorSample((t((3,)), t((3,), "int64"), t((3,), "int64", seed=1)), {}, RuntimeError,
                               "integer division", desc="integer tensor1 and tensor2"))
    else:
        out.append(ErrorSample((t((3,), "bool"), t((3,), "bool"), t((3,), "bool")), {}, NotImplementedError,
                               "not implemented", desc="bool"))
    if name.endswith("_"):
        out += [ErrorSample((t((3,), "int64"), t((3,)), t((3,), seed=1)), {}, RuntimeError, _CAST,
                            desc="float result into int64"),
                ErrorSample((t((3,)), t((2, 3)), t((2, 3), seed=1)), {}, RuntimeError,
                            "doesn't match the broadcast shape", desc="operands that broadcast self"),
                ErrorSample((expanded_self(), t((2, 3)), t((2, 3), seed=1)), {}, RuntimeError, _OVERLAP,
                            desc="expanded self")]
    return out


for _name in ("addcmul", "addcdiv"):
    register(OpInfo(_name, samples=lambda n=_name: _addc_samples(n), errors=lambda n=_name: _addc_errors(n),
                    ref=getattr(torch, _name), tol=_LOWP_TOL))
    register(OpInfo(_name + "_", samples=lambda n=_name: _addc_samples(n, inplace=True),
                    errors=lambda n=_name: _addc_errors(n + "_"), ref=getattr(torch.Tensor, _name + "_"), tol=_LOWP_TOL))


# ---- nan_to_num, isclose ---------------------------------------------------------------------------

def _special(dtype, layout="contiguous"):
    """A float tensor with NaN, +-inf and finite values."""
    x = ember.tensor([[float("nan"), float("inf"), -1.5], [float("-inf"), 0.25, 2.0]], dtype=getattr(ember, dtype))
    return x.t() if layout == "transposed" else x


def _nan_to_num_samples(inplace=False):
    out = [Sample((_special(f32),)),
           Sample((t((4, 3), f64, layout="transposed"),), {"nan": 1.0, "posinf": 9.0}, desc="float64 (finite) transposed"),
           Sample((_special(f64, "transposed"), 0.5, 100.0, -100.0), desc="float64 special values, every bound"),
           Sample((_special(f16),), desc="float16 (inf becomes its largest finite value)"),
           Sample((_special(bf16),), {"neginf": -7.0}, desc="bfloat16"),
           Sample((t((5,), "int64", -3, 3),), desc="int64 (unchanged)"),
           Sample((t((4,), "bool"),), desc="bool (unchanged)")]
    if not inplace:
        out += [Sample((t((), f32),), desc="0-d"), Sample((t((0, 3)),), desc="empty")]
    return out


register(OpInfo("nan_to_num", samples=_nan_to_num_samples, ref=torch.nan_to_num))
register(OpInfo("nan_to_num_", samples=lambda: _nan_to_num_samples(True), ref=torch.Tensor.nan_to_num_,
                errors=lambda: [ErrorSample((expanded_self(),), {}, RuntimeError, _OVERLAP, desc="expanded self")]))


def _isclose_samples():
    a = t((3, 4))
    b = a + t((3, 4), seed=1, low=-1e-5, high=1e-5)
    return [Sample((a, b)),
            Sample((t((4, 3), f64, layout="transposed"), t((3,), f64)), {"rtol": 0.5, "atol": 0.5},
                   desc="float64 transposed, broadcast"),
            Sample((_special(f32), _special(f32)), {"equal_nan": True}, desc="NaN and infinities, equal_nan"),
            Sample((_special(f16), _special(f16)), desc="float16 NaN and infinities"),
            Sample((t((2, 3), bf16, layout="sliced"), t((2, 3), bf16, seed=2)), {"rtol": 0.1, "atol": 0.5},
                   desc="bfloat16 sliced"),
            Sample((t((6,), "int64", -3, 3), t((6,), "int64", -3, 3, seed=3)), {"atol": 1.0}, desc="int64"),
            Sample((t((4,), "bool"), t((4,), "bool", seed=4)), desc="bool"),
            Sample((t((3,)), t((3,), seed=5)), {"rtol": 0.0, "atol": 0.0}, desc="exact"),
            Sample((t(()), t((0, 3))), desc="0-d with empty")]


register(OpInfo("isclose", samples=_isclose_samples, ref=torch.isclose, grad="not differentiable (bool result)",
                errors=lambda: [
                    ErrorSample((t((3,)), t((3,), f64)), {}, RuntimeError, "did not match", desc="dtypes differ"),
                    ErrorSample((t((3,)), t((3,))), {"rtol": -1.0}, RuntimeError, "rtol must be", desc="rtol < 0"),
                    ErrorSample((t((3,)), t((3,))), {"atol": -1.0}, RuntimeError, "atol must be", desc="atol < 0"),
                    ErrorSample((t((2, 3)), t((4,))), {}, RuntimeError, _BROADCAST, desc="shapes that don't broadcast")]))


# ---- conversions and copies ------------------------------------------------------------------------

_D = {n: getattr(ember, n) for n in ("bool", "uint8", "int8", "int32", "int64", f16, bf16, f32, f64)}

register(OpInfo("to_dtype", samples=lambda: [
    Sample((t((4, 3), f64, layout="transposed"), _D[f64], True), desc="float64 copy, transposed"),
    Sample((t((3, 4)), _D[f16]), desc="float32 to float16"),
    Sample((t((4, 3), f64, -300, 300, layout="transposed"), _D["int32"]), desc="float64 to int32 (truncation)"),
    Sample((t((5,), "int64", -9, 9), _D[f32]), desc="int64 to float32"),
    Sample((t((2, 3), bf16, layout="sliced"), _D[f32]), desc="bfloat16 sliced to float32"),
    Sample((t((2, 3), f64, layout="sliced"), _D[bf16]), desc="float64 to bfloat16 (through float32, as torch)"),
    Sample((t((4,), f32), _D["bool"]), desc="float32 to bool"),
    Sample((t((4,), "uint8", 0, 250), _D["int8"]), desc="uint8 to int8 (wrapping)"),
    Sample((t((4,), "bool"), _D[f16]), desc="bool to float16"),
    Sample((t(()), _D["int64"]), desc="0-d"), Sample((t((0, 2)), _D[f64]), desc="empty"),
    Sample((t((3,)), _D[f32]), desc="same dtype (self is returned)")],
    ref=lambda x, dtype, copy=False: x.to(dtype, copy=copy)))


def _copy_samples():
    return [Sample((t((3, 4)), t((3, 4), seed=1))),
            Sample((t((4, 3), f64, layout="transposed"), t((3,), f64, seed=2)), desc="float64 transposed, broadcast src"),
            Sample((t((2, 3), f16, layout="sliced"), t((2, 3), f64, seed=3)), desc="float64 into float16 sliced"),
            Sample((t((2, 3), "int32"), t((3, 2), f32, -9, 9, seed=4).t()), desc="float32 transposed into int32"),
            Sample((t((4,), "bool"), t((4,), "int64", seed=5)), desc="int64 into bool"),
            Sample((t((2, 3), bf16), t((), f32, seed=6)), desc="0-d src"),
            Sample((t((0, 3)), t((3,))), desc="empty")]


register(OpInfo("copy_", samples=_copy_samples, ref=torch.Tensor.copy_, interp=_DRIVER, errors=lambda: [
    ErrorSample((t((2, 3)), t((4,))), {}, RuntimeError, _BROADCAST, desc="src that doesn't broadcast"),
    ErrorSample((t((3,)), t((2, 3))), {}, RuntimeError, "doesn't match the broadcast shape",
                desc="src larger than self"),
    ErrorSample((expanded_self(), t((2, 3))), {}, RuntimeError, _OVERLAP, desc="expanded self")]))


def _fill_samples():
    return [Sample((t((3, 4)), 1.5)),
            Sample((t((4, 3), f64, layout="transposed"), t((), f64)), desc="float64 transposed, 0-d tensor value"),
            Sample((t((2, 3), f16, layout="sliced"), -2), desc="float16 sliced"),
            Sample((t((3,), "uint8"), 255), desc="uint8, its largest value"),
            Sample((t((3,), "int8"), -128), desc="int8, its smallest value"),
            Sample((t((3,), "int64"), 2.7), desc="int64, a float (truncated)"),
            Sample((t((3,), "int32"), t((), f32, 5, 9)), desc="int32, a 0-d float tensor (cast)"),
            Sample((t((4,), "bool"), 3), desc="bool"),
            Sample((t((2,), f32), float("inf")), desc="infinity"),
            Sample((expanded_self(), 1.0), desc="expanded self (allowed)"),
            Sample((t(()), 3.0), desc="0-d"), Sample((t((0, 3)), 3.0), desc="empty")]


register(OpInfo("fill_", samples=_fill_samples, ref=torch.Tensor.fill_, interp=_DRIVER, errors=lambda: [
    ErrorSample((t((3,)), t((1,))), {}, RuntimeError, "0-dimension value tensor", desc="1-d value"),
    ErrorSample((t((3,), "uint8"), 256), {}, RuntimeError, "without overflow", desc="uint8 overflow"),
    ErrorSample((t((3,), "int64"), float("nan")), {}, RuntimeError, "without overflow", desc="NaN into int64"),
    ErrorSample((t((3,), f16), 1e6), {}, RuntimeError, "without overflow", desc="float16 overflow")]))
register(OpInfo("zero_", samples=lambda: [
    Sample((t((3, 4)),)), Sample((t((4, 3), f64, layout="transposed"),), desc="float64 transposed"),
    Sample((t((2, 3), bf16, layout="sliced"),), desc="bfloat16 sliced"), Sample((t((4,), "int64"),), desc="int64"),
    Sample((t((4,), "bool"),), desc="bool"), Sample((expanded_self(),), desc="expanded self (allowed)"),
    Sample((t(()),), desc="0-d"), Sample((t((0, 3)),), desc="empty")], ref=torch.Tensor.zero_, interp=_DRIVER))
register(OpInfo("clone", samples=lambda: [
    Sample((t((3, 4)),)), Sample((t((4, 3), f64, layout="transposed"),), desc="float64 transposed"),
    Sample((t((2, 3), f16, layout="sliced"),), desc="float16 sliced"),
    Sample((t((3, 4), bf16, layout="expanded"),), desc="bfloat16 expanded"),
    Sample((t((4,), "int8"),), desc="int8"), Sample((t((4,), "bool"),), desc="bool"),
    Sample((t(()),), desc="0-d"), Sample((t((0, 3)),), desc="empty"),
    Sample((t((2, 3, 4, 5)),), {"memory_format": ember.channels_last}, desc="to channels_last"),
    Sample((t((3, 4, 5), layout="transposed"),), {"memory_format": ember.contiguous_format}, desc="to contiguous"),
    Sample((t((2, 3, 2, 4, 5)),), {"memory_format": ember.channels_last_3d}, desc="to channels_last_3d")],
    errors=lambda: [ErrorSample((t((3, 4)),), {"memory_format": ember.channels_last}, RuntimeError,
                                r"required rank 4 tensor to use channels_last format")],
    ref=torch.clone, interp=_DRIVER))
