"""dtypes and PyTorch's type-promotion rules.

Each ember dtype wraps the NumPy dtype that stores it on the CPU (bfloat16 through ml_dtypes).
Promotion follows c10's `promoteTypes` and `result_type`: operands are ranked as dimensioned
tensors > zero-dim tensors > Python scalars, and a lower rank only changes the result when it
brings a higher category (bool < integer < floating point).
"""
from __future__ import annotations

import builtins
import math

import ml_dtypes
import numpy as np

__all__ = [
    "dtype", "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
    "float32", "float64", "get_default_dtype", "set_default_dtype", "promote_types",
    "result_type", "can_cast",
]

# a dtype's category, ordered: promotion only moves up (bool < integer < floating point). Code that asks
# "is it a float" reads `dt.is_floating_point`; these names are for comparing categories with each other
BOOLEAN, INTEGER, FLOATING = 0, 1, 2


class dtype:
    """An element type. `ember.float32` etc. are the only instances.

    `is_floating_point`, `is_integer` (bool excluded, as torch._prims_common.is_integer_dtype) and
    `is_signed` are plain fields, not properties: kernels and metas read them on every call."""

    __slots__ = ("name", "np", "itemsize", "category", "is_signed", "is_floating_point", "is_integer")

    def __init__(self, name: str, np_dtype, category: int, is_signed: bool):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize
        self.category = category
        self.is_signed = is_signed
        self.is_floating_point = category == FLOATING
        self.is_integer = category == INTEGER

    @property
    def is_complex(self) -> bool:
        return False

    def to_real(self) -> "dtype":
        return self

    def __repr__(self) -> str:
        return "ember." + self.name

    def __reduce__(self):
        return (_by_name, (self.name,))


bool = dtype("bool", np.bool_, BOOLEAN, False)  # noqa: A001 - mirrors torch.bool
uint8 = dtype("uint8", np.uint8, INTEGER, False)
int8 = dtype("int8", np.int8, INTEGER, True)
int16 = dtype("int16", np.int16, INTEGER, True)
int32 = dtype("int32", np.int32, INTEGER, True)
int64 = dtype("int64", np.int64, INTEGER, True)
float16 = dtype("float16", np.float16, FLOATING, True)
bfloat16 = dtype("bfloat16", ml_dtypes.bfloat16, FLOATING, True)
float32 = dtype("float32", np.float32, FLOATING, True)
float64 = dtype("float64", np.float64, FLOATING, True)

ALL_DTYPES = (bool, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
_NAMES = {d.name: d for d in ALL_DTYPES}
_NAMES.update(half=float16, float=float32, double=float64, short=int16, int=int32, long=int64)
_FROM_NP = {d.np: d for d in ALL_DTYPES}
# PyTorch's ScalarType names, which its error messages use ("result type Float can't be cast to ... Long")
SCALAR_TYPE = {float32: "Float", float64: "Double", float16: "Half", bfloat16: "BFloat16", int64: "Long",
               int32: "Int", int16: "Short", int8: "Char", uint8: "Byte", bool: "Bool"}
# and their C++ names, which other messages use ("Expected out tensor to have dtype float, but got double")
CPP_TYPE = {float32: "float", float64: "double", float16: "c10::Half", bfloat16: "c10::BFloat16", int64: "long int",
            int32: "int", int16: "short int", int8: "signed char", uint8: "unsigned char", bool: "bool"}


def _by_name(name: str) -> dtype:
    return _NAMES[name]


def from_numpy_dtype(np_dtype) -> dtype:
    """The ember dtype stored as `np_dtype`; raises TypeError for types ember lacks."""
    d = _FROM_NP.get(np.dtype(np_dtype))
    if d is None:
        supported = ", ".join(str(x.np) for x in ALL_DTYPES)
        raise TypeError(f"NumPy dtype {np.dtype(np_dtype)} has no ember equivalent; supported: {supported}")
    return d


def _build_promotion_table():
    """c10's promoteTypes restricted to ember's dtypes, as a dict of pairs."""
    ints = (uint8, int8, int16, int32, int64)
    table = {}
    for a in ALL_DTYPES:
        for b in ALL_DTYPES:
            if a is b:
                r = a
            elif a is bool or b is bool:
                r = b if a is bool else a
            elif a.is_floating_point and b.is_floating_point:
                if {a, b} == {float16, bfloat16}:
                    r = float32
                else:
                    r = a if a.itemsize > b.itemsize else b
            elif a.is_floating_point or b.is_floating_point:
                r = a if a.is_floating_point else b
            elif uint8 in (a, b):
                other = b if a is uint8 else a
                r = int16 if other is int8 else other
            else:
                r = ints[max(ints.index(a), ints.index(b))]
            table[(a, b)] = r
    assert all(table[(a, b)] is table[(b, a)] for a in ALL_DTYPES for b in ALL_DTYPES)
    return table


_PROMOTE = _build_promotion_table()


def _not_dtype(fn: str, argname: str, value):
    raise TypeError(f"{fn}(): argument '{argname}' must be ember.dtype, not {type(value).__name__}")


def promote_types(type1: dtype, type2: dtype) -> dtype:
    """The smallest dtype both `type1` and `type2` cast to safely (torch.promote_types)."""
    r = _PROMOTE.get((type1, type2))
    if r is None:
        _not_dtype("promote_types", "type1" if not isinstance(type1, dtype) else "type2",
                   type1 if not isinstance(type1, dtype) else type2)
    return r


def can_cast(from_: dtype, to: dtype) -> bool:
    """torch.can_cast: no float -> integer, and nothing but bool -> bool."""
    if not isinstance(from_, dtype) or not isinstance(to, dtype):
        _not_dtype("can_cast", "from_" if not isinstance(from_, dtype) else "to",
                   from_ if not isinstance(from_, dtype) else to)
    if from_.is_floating_point and not to.is_floating_point:
        return False
    if from_ is not bool and to is bool:
        return False
    return True


# the largest magnitude each dtype holds; an unsigned type also takes down to -max (wrapping, as c10 does)
_RANGE = {d: (float((ml_dtypes.finfo if d is bfloat16 else np.finfo)(d.np).max) if d.is_floating_point
              else int(np.iinfo(d.np).max)) for d in ALL_DTYPES if d is not bool}
_LOWEST = {d: (-m if d.is_floating_point or not d.is_signed else -m - 1) for d, m in _RANGE.items()}


def checked_scalar(op: str, value, dt: dtype):
    """A Python number as a Python value of dtype `dt` (bool, int or float), converted as c10's
    checked_convert does for fill_, masked_fill, index_fill and scatter's value: a value outside `dt`'s
    range raises (compared before any truncation, so 127.5 does not fit int8), as do inf and nan into
    an integer type; a float into an integer type truncates; an unsigned type takes small negatives
    modulo 2**bits, as C does; inf and nan stay floats."""
    if dt is bool:
        return builtins.bool(value)
    if dt.is_floating_point:
        if (value > _RANGE[dt] or value < _LOWEST[dt]) and not (isinstance(value, float) and math.isinf(value)):
            raise RuntimeError(f"{op}: value {value} cannot be converted to type {dt} without overflow")
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise RuntimeError(f"{op}: value {value} cannot be converted to type {dt} without overflow")
    if value > _RANGE[dt] or value < _LOWEST[dt]:
        raise RuntimeError(f"{op}: value {value} cannot be converted to type {dt} without overflow")
    v = int(value)
    return v % (_RANGE[dt] + 1) if v < 0 and not dt.is_signed else v


class _DefaultDtype:
    """Process-wide, like torch.set_default_dtype (a thread-local would hide it from worker threads)."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = float32


_default = _DefaultDtype()
# called after the default dtype changes: caches of results that depend on it (the dispatcher's meta
# cache) register here, so that nothing keeps an old default
_default_dtype_listeners: list = []


def get_default_dtype() -> dtype:
    return _default.value


def set_default_dtype(d: dtype) -> None:
    if not isinstance(d, dtype) or not d.is_floating_point:
        raise TypeError(f"set_default_dtype expects a floating-point ember dtype, got {d!r}")
    if d is not _default.value:
        _default.value = d
        for fn in _default_dtype_listeners:
            fn()


def on_default_dtype_change(fn) -> None:
    """Registers `fn()` to run whenever `set_default_dtype` changes the default."""
    _default_dtype_listeners.append(fn)


_pybool = type(True)


def scalar_dtype(value) -> dtype:
    """The dtype a Python scalar takes part in promotion with ("wrapped number")."""
    t = type(value)
    if t is float:
        return _default.value
    if t is int:
        return int64
    if t is _pybool or isinstance(value, np.bool_):
        return bool
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, (float, np.floating)):
        return _default.value
    raise TypeError(f"expected a Tensor or a Python number, got {type(value).__name__}")


def _combine(higher, lower):
    """c10's combine_categories for one rank of operands over the ranks below it."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.is_floating_point:
        return higher
    if higher is bool or lower.is_floating_point:
        return _PROMOTE[(higher, lower)]
    return higher


def result_type(*operands) -> dtype:
    """torch.result_type over any number of tensors and Python scalars."""
    dim = zero = wrapped = None
    for x in operands:
        d = getattr(x, "_dtype", None)
        if d is None:
            if isinstance(x, dtype):
                raise TypeError("result_type expects tensors or scalars, not dtypes; use promote_types")
            d = scalar_dtype(x)
            wrapped = d if wrapped is None or wrapped is d else _PROMOTE[(wrapped, d)]
        elif x._shape:
            dim = d if dim is None or dim is d else _PROMOTE[(dim, d)]
        else:
            zero = d if zero is None or zero is d else _PROMOTE[(zero, d)]
    if dim is not None:
        if zero is None and (wrapped is None or dim.category >= wrapped.category):
            return dim  # the common case: nothing of a higher category below the dimensioned tensors
        return _combine(dim, _combine(zero, wrapped))
    return _combine(zero, wrapped)
