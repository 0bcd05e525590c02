"""Python operators and conversions on Tensor, each forwarding to one op.

`a + b` is `ops.add(a, b)`; `2 / t` is `ops._rdiv(t, 2)` so that the scalar keeps its
wrapped-number promotion. Indexing turns ints/slices/None/... into one view and hands integer
or boolean tensor indices to the `index` / `index_put_` ops.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._tensor import Tensor
from ..core import dtype as D
from ..core.device import canonical
from ..core.layout import check_memory_format, layout_strides, preserve_format, suggest_memory_format
from ..dispatch import OPS
from .creation import empty_like

_f = {name: op.fn for name, op in OPS.items()}
_Number = (int, float, bool, np.bool_, numbers.Number)


def _binary(name):
    fn = _f[name]

    def op(self, other):
        if other.__class__ is Tensor or isinstance(other, (Tensor, *_Number)) and not isinstance(other, complex):
            return fn(self, other)
        return NotImplemented
    op.__name__ = f"__{name}__"
    return op


def _reflected(name):
    fn = _f[name]

    def op(self, other):
        if isinstance(other, _Number) and not isinstance(other, complex):
            return fn(self, other)
        return NotImplemented
    return op


def _inplace(name):
    fn = _f[name]

    def op(self, other):
        return fn(self, other)
    return op


def _rsub(self, other):
    if isinstance(other, _Number):
        return _f["rsub"](self, other)
    return NotImplemented


def _matmul(self, other):
    if isinstance(other, Tensor):
        return OPS["matmul"].fn(self, other)
    return NotImplemented


def _invert(self):
    if self._dtype.is_floating_point:
        raise TypeError(f"~ (bitwise_not) is only defined for integer and bool tensors, got {self._dtype}")
    return _f["bitwise_not"](self)


def _pos(self):
    if self._dtype is D.bool:
        raise RuntimeError("unary + is not supported for bool tensors")
    return self


def _rmatmul(self, other):
    return NotImplemented


_OPERATORS = {
    "__add__": _binary("add"), "__radd__": _reflected("add"), "__iadd__": _inplace("add_"),
    "__sub__": _binary("sub"), "__rsub__": _rsub, "__isub__": _inplace("sub_"),
    "__mul__": _binary("mul"), "__rmul__": _reflected("mul"), "__imul__": _inplace("mul_"),
    "__truediv__": _binary("div"), "__rtruediv__": _reflected("_rdiv"), "__itruediv__": _inplace("div_"),
    "__floordiv__": _binary("floor_divide"), "__rfloordiv__": _reflected("_rfloor_divide"),
    "__ifloordiv__": _inplace("floor_divide_"),
    "__mod__": _binary("remainder"), "__rmod__": _reflected("_rremainder"), "__imod__": _inplace("remainder_"),
    "__pow__": _binary("pow"), "__rpow__": _reflected("_rpow"), "__ipow__": _inplace("pow_"),
    "__and__": _binary("bitwise_and"), "__rand__": _reflected("bitwise_and"), "__iand__": _inplace("bitwise_and_"),
    "__or__": _binary("bitwise_or"), "__ror__": _reflected("bitwise_or"), "__ior__": _inplace("bitwise_or_"),
    "__xor__": _binary("bitwise_xor"), "__rxor__": _reflected("bitwise_xor"), "__ixor__": _inplace("bitwise_xor_"),
    "__eq__": _binary("eq"), "__ne__": _binary("ne"), "__lt__": _binary("lt"), "__le__": _binary("le"),
    "__gt__": _binary("gt"), "__ge__": _binary("ge"),
    "__neg__": _f["neg"], "__abs__": _f["abs"], "__invert__": _invert, "__pos__": _pos,
    "__matmul__": _matmul, "__rmatmul__": _rmatmul,
}
for _name, _fn in _OPERATORS.items():
    setattr(Tensor, _name, _fn)
Tensor.__hash__ = lambda self: id(self)  # defining __eq__ would otherwise drop it
Tensor.true_divide = _f["div"]
Tensor.multiply = _f["mul"]
Tensor.subtract = _f["sub"]
Tensor.divide = _f["div"]
Tensor.absolute = _f["abs"]
Tensor.negative = _f["neg"]
Tensor.greater = _f["gt"]
Tensor.less = _f["lt"]
Tensor.clip = _f["clamp"]
Tensor.clip_ = _f["clamp_"]


def _clamp_min(self, min):
    return _f["clamp"](self, min, None)


def _clamp_max(self, max):
    return _f["clamp"](self, None, max)


Tensor.clamp_min = _clamp_min
Tensor.clamp_max = _clamp_max


# ---- indexing ----------------------------------------------------------------------------

_index_view = _f["_index_view"]


def _is_advanced(x) -> bool:
    return isinstance(x, (Tensor, list, np.ndarray)) or (isinstance(x, tuple))


def _as_index_tensor(x, device):
    from .creation import tensor as _tensor
    if isinstance(x, Tensor):
        t = x
    else:
        t = _tensor(x, device=device)
        if t._dtype.is_floating_point and t.numel() == 0:
            t = t.long()  # x[[]]: torch indexes with an empty long tensor
    if t._dtype.is_floating_point:
        raise IndexError(f"tensors used as indices must be long, int, byte or bool tensors, got {t._dtype}")
    return t


def _dims_indexed(x) -> int:
    """How many dims of self an index entry consumes."""
    if x is None or x is Ellipsis or isinstance(x, bool):
        return 0
    if isinstance(x, Tensor) and (x._dtype is D.bool or x._dtype is D.uint8):
        return x.ndim
    return 1


def _split_index(self, idx):
    """Basic parts become one view; returns (view, aten-style index list or None)."""
    if type(idx) is list and len(idx) < 32 and any(
            isinstance(x, (Tensor, list, tuple, np.ndarray, slice)) or x is None or x is Ellipsis for x in idx):
        idx = tuple(idx)  # torch reads x[[0, 1], [2, 0]] as x[(0, 1), (2, 0)] (NumPy's legacy rule)
    elif not isinstance(idx, tuple):
        idx = (idx,)
    if any(_int_like(x) for x in idx):
        idx = tuple(int(x) if _int_like(x) else x for x in idx)
    if not any(_is_advanced(x) or isinstance(x, bool) for x in idx):
        return _index_view(self, idx), None
    idx = tuple(_as_index_tensor(x, self.device) if _is_advanced(x) else x for x in idx)
    n_real = sum(_dims_indexed(x) for x in idx)
    basic, adv = [], []
    for x in idx:
        if x is None:
            basic.append(None)
            adv.append(None)
        elif isinstance(x, bool):  # a new dim of size 1, selected (True) or not (False)
            basic.append(None)
            adv.append(None if x else _f["zeros"](1, dtype=D.bool, device=self.device))
        elif x is Ellipsis:
            basic.append(Ellipsis)
            adv.extend([None] * (len(self._shape) - n_real))
        elif isinstance(x, (int, np.integer)):
            basic.append(x)  # an int removes its dim: torch applies it as a select
        elif isinstance(x, slice):
            basic.append(x)
            adv.append(None)
        elif x._dtype is D.bool or x._dtype is D.uint8:
            if x.ndim == 0:  # a 0-d mask adds a dim of size 1 and selects it or not
                basic.append(None)
                adv.append(x.reshape(1))
            else:  # the index op checks the mask's shape against the dims it covers
                basic.extend([slice(None)] * x.ndim)
                adv.append(x)
        else:
            basic.append(slice(None))
            adv.append(x)
    view = _index_view(self, tuple(basic))
    if all(a is None for a in adv):
        return view, None
    return view, adv  # trailing dims left out are taken whole


def _int_like(x):
    """A 0-dim integer tensor index acts as an int (a view), as in torch."""
    return isinstance(x, Tensor) and not x._shape and x._dtype.is_integer


def _getitem(self, idx):
    if type(idx) is int or type(idx) is slice:
        return _index_view(self, (idx,))
    view, adv = _split_index(self, idx)
    if adv is None:
        return view
    return _f["index"](view, adv)


def _setitem(self, idx, value):
    view, adv = _split_index(self, idx)
    if adv is None:
        if isinstance(value, Tensor):
            _f["copy_"](view, value)
        else:
            _f["fill_"](view, value)
        return
    if not isinstance(value, Tensor):
        from .creation import tensor as _tensor
        value = _tensor(value, dtype=self._dtype, device=self.device)
    _f["index_put_"](view, adv, value, False)


Tensor.__getitem__ = _getitem
Tensor.__setitem__ = _setitem


# ---- conversions ---------------------------------------------------------------------------

def _parse_to(args, kwargs):
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    non_blocking = kwargs.pop("non_blocking", False)
    copy = kwargs.pop("copy", False)
    memory_format = kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, D.dtype):
            dtype = a
        elif isinstance(a, Tensor):
            device, dtype = a.device, a._dtype
        elif isinstance(a, bool):
            non_blocking = a
        elif a is not None:
            device = a
    return device, dtype, non_blocking, copy, memory_format


def to(self, *args, **kwargs):
    """`t.to(dtype)`, `t.to(device)`, `t.to(device, dtype)`, `t.to(other)`, each with `memory_format=` (the
    result's layout: `ember.preserve_format`, the default, keeps a dense tensor's strides); returns self if nothing
    changes."""
    device, dtype, non_blocking, copy, memory_format = _parse_to(args, kwargs)
    fmt = None if memory_format is None else check_memory_format(memory_format, "to")
    if fmt is preserve_format:
        fmt = None
    elif fmt is not None:
        layout_strides(self, fmt, "to")     # a channels-last format of a tensor of another rank: the error names to()
    out = self
    if device is not None:
        dev = canonical(device)
        if dev is not out._storage.device:
            op = OPS.get("_to_device")
            if op is None or not op.kernels:
                raise RuntimeError(f"cannot move a tensor to {dev}: ember was not built with a {dev.type} backend")
            out = op.fn(out, dev, non_blocking)
            copy = False
    if dtype is not None and dtype is not out._dtype:
        if not isinstance(dtype, D.dtype):
            raise TypeError(f"to(): dtype must be an ember.dtype, got {dtype!r}")
        if fmt is not None and not out.is_contiguous(fmt):      # the cast and the new layout in one copy
            return empty_like(out, dtype=dtype, memory_format=fmt).copy_(out)
        out = _f["to_dtype"](out, dtype, False)
        copy = False
    if fmt is not None:     # as torch: a copy made takes the format; none is made where self suggests it already
        if out is not self:
            if not out.is_contiguous(fmt):
                out = _f["clone"](out, memory_format=fmt)
        elif copy or suggest_memory_format(self._shape, self._stride) is not fmt:
            out = _f["clone"](self, memory_format=fmt)
        return out
    if copy and out is self:
        out = _f["clone"](self)
    return out


def _type_method(dt):
    def conv(self, memory_format=None):
        if memory_format is not None:
            return to(self, dt, memory_format=memory_format)
        return self if self._dtype is dt else _f["to_dtype"](self, dt, False)
    conv.__name__ = dt.name
    return conv


def _type(self, dtype=None):
    if dtype is None:
        return f"ember.{self._dtype.name}"
    return to(self, dtype)


def _cpu(self, memory_format=None):
    return to(self, "cpu", memory_format=memory_format)


def _cuda(self, device=None, non_blocking=False):
    return to(self, "cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device),
              non_blocking=non_blocking)


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    from .creation import tensor as _tensor
    return _tensor(data, dtype=dtype or self._dtype, device=device or self.device, requires_grad=requires_grad)


def _new_factory(name):
    """Tensor.new_zeros / new_ones / new_empty (and new_full below): a new tensor of the given size with this
    tensor's dtype and device unless told otherwise, as torch's."""
    def new(self, *size, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
        from . import creation
        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = size[0]
        for n in size:
            if isinstance(n, bool) or not isinstance(n, int):
                raise TypeError(f"new_{name}(): argument 'size' must be a tuple of ints, but found an element of "
                                f"type {type(n).__name__} ({n!r})")
        return getattr(creation, name)(*size, dtype=dtype or self._dtype, device=device or self.device,
                                       requires_grad=requires_grad)
    new.__name__ = "new_" + name
    return new


def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False, layout=None,
              pin_memory=False):
    from .creation import full
    return full(size, fill_value, dtype=dtype or self._dtype, device=device or self.device,
                requires_grad=requires_grad)


def _type_as(self, other):
    return to(self, other._dtype)


Tensor.to = to
Tensor.type = _type
Tensor.type_as = _type_as
Tensor.cpu = _cpu
Tensor.cuda = _cuda
Tensor.new_tensor = _new_tensor
Tensor.new_zeros, Tensor.new_ones, Tensor.new_empty = (_new_factory(n) for n in ("zeros", "ones", "empty"))
Tensor.new_full = _new_full
for _meth, _dt in (("float", D.float32), ("double", D.float64), ("half", D.float16), ("bfloat16", D.bfloat16),
                   ("long", D.int64), ("int", D.int32), ("short", D.int16), ("char", D.int8),
                   ("byte", D.uint8), ("bool", D.bool)):
    setattr(Tensor, _meth, _type_method(_dt))
