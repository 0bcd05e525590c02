"""Tensor creation: from Python data and NumPy, and the factory ops (zeros, arange, eye, ...)."""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence as _Sequence

import numpy as np

from .._tensor import Tensor
from ..core import dtype as D
from ..core.device import CPU, canonical
from ..core.layout import layout_strides
from ..core.shape import contiguous_strides
from ..core.storage import Storage
from ..dispatch import OPS, defop
from ..autograd.derivatives import derivative

__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "zeros_like", "ones_like",
           "full_like", "empty_like", "arange", "linspace", "eye", "scalar_tensor", "empty_strided",
           "factory_dtype", "full_dtype", "arange_args", "scalar_value", "check_size"]


# ---- the factories' rules, shared by the metas and both backends' kernels ------------------------

def factory_dtype(dtype) -> "D.dtype":
    """A factory's result dtype: `dtype`, or the default dtype when None."""
    if dtype is None:
        return D.get_default_dtype()
    if not isinstance(dtype, D.dtype):
        raise TypeError(f"dtype must be an ember.dtype such as ember.float32, got {dtype!r}")
    return dtype


def full_dtype(fill_value, dtype) -> "D.dtype":
    """full's result dtype: `dtype`, else the fill value's (bool, int64 or the default float), as torch."""
    return D.scalar_dtype(scalar_value(fill_value)) if dtype is None else factory_dtype(dtype)


def scalar_value(x):
    """A Scalar argument's Python value (a 0-d tensor passed as a Scalar gives its item)."""
    return x.item() if isinstance(x, Tensor) else x


def _arange_range(start, end, step, dtype):
    """(start, end, step, dtype) that arange counts its length from: the values as given (end None:
    the range [0, start)), truncated toward zero first for an int64 result, as torch counts int64
    ranges in int64. The dtype is the default float when any bound or the step is a float, else int64."""
    if isinstance(start, Tensor) or isinstance(end, Tensor) or isinstance(step, Tensor):
        start, end, step = scalar_value(start), scalar_value(end), scalar_value(step)
    if end is None:
        start, end = 0, start
    if dtype is None:
        floats = isinstance(start, float) or isinstance(end, float) or isinstance(step, float)
        dtype = D.get_default_dtype() if floats else D.int64
    if dtype is D.int64:
        start, end, step = int(start), int(end), int(step)
    return start, end, step, dtype


def arange_args(start, end=None, step=1, dtype=None):
    """(first, step, length, dtype) of arange: the values first + i * step for i < length. An integer
    result steps from the truncated start by the truncated step (torch computes it in int64)."""
    start, end, step, dtype = _arange_range(start, end, step, dtype)
    n = max(0, math.ceil((end - start) / step))
    if not dtype.is_floating_point:
        start, step = int(start), int(step)
    return start, step, n, dtype


def check_size(size) -> None:
    """A factory's sizes: none negative."""
    for s in size:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")


def _size_meta(size, dtype=None, device=None):
    check_size(size)
    return size, factory_dtype(dtype)


def _full_meta(size, fill_value, dtype=None, device=None):
    check_size(size)
    return tuple(size), full_dtype(fill_value, dtype)


def _empty_strided_meta(size, stride, dtype=None, device=None):
    if len(size) != len(stride):
        raise RuntimeError(f"empty_strided: dimensionality of sizes ({len(size)}) must match dimensionality of "
                           f"strides ({len(stride)}): size {list(size)}, stride {list(stride)}")
    check_size(size)
    if any(s < 0 for s in stride):
        raise RuntimeError(f"empty_strided: Storage size calculation overflowed with sizes={list(size)} and "
                           f"strides={list(stride)} (strides must be non-negative)")
    return tuple(size), factory_dtype(dtype)


def _arange_meta(start, end=None, step=1, dtype=None, device=None):
    if dtype is not None:
        factory_dtype(dtype)   # an ember dtype, or TypeError
    lo, hi, st, dt = _arange_range(start, end, step, dtype)
    if dt is D.bool:
        raise NotImplementedError("arange: not implemented for 'Bool' (arange_cpu); choose a numeric dtype")
    if not all(math.isfinite(v) for v in (lo, hi, st)):
        raise RuntimeError(f"arange: unsupported range: {lo} -> {hi} (step {st}); the bounds and step must be finite")
    if st == 0:
        raise RuntimeError(f"arange: step must be nonzero (got step={scalar_value(step)} for a {dt} result)")
    if (hi - lo) * st < 0:
        raise RuntimeError(f"arange: upper bound and lower bound inconsistent with step sign "
                           f"(start={lo}, end={hi}, step={st})")
    return (arange_args(start, end, step, dt)[2],), dt


def _linspace_meta(start, end, steps, dtype=None, device=None):
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    dt = factory_dtype(dtype)
    if dt is D.bool:
        raise NotImplementedError("linspace: not implemented for 'Bool' (linspace_cpu); choose a numeric dtype")
    return (steps,), dt


def _eye_meta(n, m=None, dtype=None, device=None):
    if n < 0:
        raise RuntimeError(f"eye: n must be greater or equal to 0, got {n}")
    if m is not None and m < 0:
        raise RuntimeError(f"eye: m must be greater or equal to 0, got {m}")
    return (n, n if m is None else m), factory_dtype(dtype)


def _scalar_tensor_meta(s, dtype=None, device=None):
    return (), factory_dtype(dtype)


def _to_device_meta(self, device, non_blocking=False):
    return self._shape, self._dtype


_F = "*, ScalarType? dtype=None, Device? device=None, bool requires_grad=False"
defop(f"empty(int[]... size, {_F}) -> Tensor", meta=_size_meta, out="dtype")
defop(f"zeros(int[]... size, {_F}) -> Tensor", meta=_size_meta, out="dtype")
defop(f"ones(int[]... size, {_F}) -> Tensor", meta=_size_meta, out="dtype")
defop(f"full(int[] size, Scalar fill_value, {_F}) -> Tensor", meta=_full_meta, out="dtype")
defop(f"empty_strided(int[] size, int[] stride, {_F}) -> Tensor", meta=_empty_strided_meta)
defop(f"arange(Scalar start, Scalar? end=None, Scalar step=1, {_F}) -> Tensor", meta=_arange_meta, out="dtype")
defop(f"linspace(Scalar start, Scalar end, int steps, {_F}) -> Tensor", meta=_linspace_meta, out="dtype")
defop(f"eye(int n, int? m=None, {_F}) -> Tensor", meta=_eye_meta, out="dtype")
defop(f"scalar_tensor(Scalar s, {_F}) -> Tensor", meta=_scalar_tensor_meta)
# moving between devices (kernels in the CUDA backend); differentiable: the grad moves back
defop("_to_device(Tensor self, Device device, bool non_blocking=False) -> Tensor", meta=_to_device_meta)

empty = OPS["empty"].fn
zeros = OPS["zeros"].fn
ones = OPS["ones"].fn
full = OPS["full"].fn
empty_strided = OPS["empty_strided"].fn
arange = OPS["arange"].fn
linspace = OPS["linspace"].fn
eye = OPS["eye"].fn
scalar_tensor = OPS["scalar_tensor"].fn


def like_layout(input: Tensor, made: Tensor, memory_format, op: str) -> Tensor:
    """`made` (a new contiguous tensor of input's shape) laid out as `memory_format` says for `input` (None:
    preserve, as torch's *_like factories): itself where that is contiguous, else a copy in that layout."""
    st = layout_strides(input, memory_format, op)
    if st is None:
        return made
    return empty_strided(input._shape, st, dtype=made._dtype, device=made.device).copy_(made)   # (made needs no grad)


def _like(fn, fill=None):
    def like(input: Tensor, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
        dt, dev = dtype or input._dtype, device or input.device
        st = None if memory_format is None and input._stride == contiguous_strides(input._shape) else \
            layout_strides(input, memory_format, like.__name__)
        if st is None:
            return fn(*input._shape, dtype=dt, device=dev, requires_grad=requires_grad)
        out = empty_strided(input._shape, st, dtype=dt, device=dev)    # a dense permutation, filled in place
        if fill is not None:
            out.fill_(fill)
        out.requires_grad = requires_grad
        return out
    like.__name__ = fn.__name__ + "_like"
    return like


zeros_like = _like(zeros, 0)
ones_like = _like(ones, 1)
empty_like = _like(empty)


def full_like(input: Tensor, fill_value, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    made = full(input._shape, fill_value, dtype=dtype or input._dtype, device=device or input.device)
    out = like_layout(input, made, memory_format, "full_like")
    out.requires_grad = requires_grad
    return out


# ---- from Python data and NumPy ------------------------------------------------------------

def _infer_dtype(data) -> "D.dtype":
    """PyTorch's inference for nested Python data: bool < int64 < default float."""
    cat = -1    # the highest category seen so far (none yet)
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, Tensor):
            if x._dtype.is_floating_point:
                return x._dtype if not any(isinstance(y, float) for y in stack) else D.get_default_dtype()
            cat = max(cat, x._dtype.category)
        elif isinstance(x, bool) or isinstance(x, np.bool_):
            cat = max(cat, D.BOOLEAN)
        elif isinstance(x, (int, np.integer)):
            cat = max(cat, D.INTEGER)
        elif isinstance(x, (float, np.floating)):
            cat = D.FLOATING
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
        elif isinstance(x, _Sequence) and not isinstance(x, (str, bytes)):     # deque, range, ...: as torch
            stack.extend(x)
        elif isinstance(x, np.ndarray):
            return D.from_numpy_dtype(x.dtype) if cat < 0 else D.get_default_dtype()
        elif isinstance(x, numbers.Number):
            raise TypeError(f"ember.tensor: unsupported element type {type(x).__name__} ({x!r})")
        else:
            raise TypeError(f"ember.tensor: could not infer dtype of {type(x).__name__} ({x!r}); "
                            f"expected numbers, nested sequences (lists, tuples, ...) of numbers, NumPy arrays or "
                            f"tensors")
    return {D.BOOLEAN: D.bool, D.INTEGER: D.int64}.get(cat, D.get_default_dtype())


def _to_numpy_data(data, np_dtype):
    if isinstance(data, Tensor):
        return data._host_array().astype(np_dtype)
    if isinstance(data, _Sequence) and not isinstance(data, (list, tuple, str, bytes)):
        data = list(data)
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
        data = [_to_numpy_data(x, np_dtype) for x in data]
    try:
        return np.array(data, dtype=np_dtype)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"ember.tensor: could not build a {np_dtype} array from the given data: {e}") from None


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False) -> Tensor:
    """A new tensor holding a copy of `data` (numbers, nested sequences, NumPy arrays, tensors)."""
    if dtype is None:
        if isinstance(data, np.ndarray):
            dtype = D.from_numpy_dtype(data.dtype)
        elif isinstance(data, Tensor):
            dtype = data._dtype
        else:
            dtype = _infer_dtype(data)
    elif not isinstance(dtype, D.dtype):
        raise TypeError(f"ember.tensor: dtype must be an ember.dtype such as ember.float32, got {dtype!r}")
    arr = _to_numpy_data(data, dtype.np)
    t = Tensor._from_numpy(np.array(arr, dtype=dtype.np, copy=True, order="C"), dtype)
    if device is not None and canonical(device) is not CPU:
        t = t.to(device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(arr: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with `arr` (writes through both ways)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(arr).__name__}")
    dt = D.from_numpy_dtype(arr.dtype)
    itemsize = arr.itemsize
    if any(s < 0 for s in arr.strides):
        raise ValueError("At least one stride in the given numpy array is negative; "
                         "make a copy first (numpy.ascontiguousarray) to use it with from_numpy")
    if any(s % itemsize for s in arr.strides):
        raise ValueError(f"from_numpy: strides {arr.strides} are not multiples of the element size {itemsize}")
    if arr.flags.c_contiguous:
        data = arr.reshape(-1).view(np.uint8)
    elif arr.size == 0:
        data = np.empty(0, np.uint8)
    else:
        span = sum((n - 1) * s for n, s in zip(arr.shape, arr.strides)) + itemsize
        first = arr[(slice(0, 1),) * arr.ndim].reshape(1).view(np.uint8)
        data = np.lib.stride_tricks.as_strided(first, shape=(span,), strides=(1,))
    strides = tuple(s // itemsize for s in arr.strides)
    cs = contiguous_strides(arr.shape)
    t = Tensor._make(Storage(data, CPU, data.nbytes), arr.shape, cs if strides == cs else strides, 0, dt)
    if arr.flags.writeable is False:
        t.__dict__["_readonly"] = True
    return t


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like `tensor`, but shares memory with a tensor, a NumPy array or an object with
    `__cuda_array_interface__` when dtype and device already match."""
    if isinstance(data, Tensor):
        out = data
        if dtype is not None and dtype is not out._dtype:
            out = out.to(dtype)
        if device is not None:
            out = out.to(device)
        return out
    if isinstance(data, np.ndarray) and (dtype is None or dtype.np == data.dtype) and \
            (device is None or canonical(device) is CPU) and all(s >= 0 for s in data.strides):
        return from_numpy(data)
    if hasattr(data, "__cuda_array_interface__"):   # CuPy, Numba, torch CUDA...: shared, as torch.as_tensor does
        from ..utils.dlpack import _import_cai
        return as_tensor(_import_cai(data), dtype=dtype, device=device)
    return tensor(data, dtype=dtype, device=device)


def _derivatives():
    derivative("_to_device", self="grad.to(self.device)")


_derivatives()
