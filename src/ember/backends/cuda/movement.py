"""CUDA data movement and device-side factories on two Triton kernels (`kernels/movement.py`).

flip, roll, repeat, triu/tril (and triu_/tril_) and one_hot read every output element from a
source offset computed on the device from its position (`move_kernel`); arange, linspace, eye,
full/ones (where cuMemset cannot write the value's bytes) and scalar_tensor compute their values
on the device from the flat index (`fill_kernel`). diag and diag_embed are composites: a strided
copy through a `diagonal` view (into zeros for the vector -> matrix direction).

Nothing here copies between host and device; only one_hot with num_classes=-1 waits for the
device (to learn the largest class, as PyTorch does). one_hot with an explicit num_classes checks
the values on the device: one outside [0, num_classes) is reported at the next synchronisation
(a RuntimeError, `checks.py`; PyTorch asserts on the device).
"""
from __future__ import annotations

import math

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.shape import normalize_dim, normalize_dims
from ...dispatch import OPS
from .checks import launch_args
from .elementwise import BLOCK, MAXDIM, _collapse, _empty, copy_cast

__all__ = ["fill_contiguous"]

_GATHER, _ROLL, _REPEAT, _ROLL_FLAT, _TRI, _ONE_HOT = range(6)
_FILL, _ARANGE, _LINSPACE, _EYE = range(4)


def _kernels():
    from .kernels import movement
    return movement


def _numel(shape):
    return math.prod(shape)


def _pad(v, fill=0):
    return list(v) + [fill] * (MAXDIM - len(v))


def _move(mode, out, x, n, sizes, strides, shifts=(), p=(0, 0, 0), upper=False, inplace=False):
    """Launches move_kernel over n output elements with the given (collapsed) geometry."""
    from .compiler import SIG, run
    if len(sizes) > MAXDIM:
        raise NotImplementedError(f"{_NAMES[mode]} on CUDA over {len(sizes)} dims that cannot be merged "
                                  f"(at most {MAXDIM}; sizes {list(sizes)})")
    args = [("out_ptr", out, "*" + SIG[out._dtype.name]), ("x_ptr", x, "*" + SIG[x._dtype.name]), ("n", n, "i64")]
    args += [(f"p{k}", v, "i64") for k, v in enumerate(p)]
    args += [(f"s{k}", v, "i64") for k, v in enumerate(_pad(sizes, 1))]
    args += [(f"t{k}", v, "i64") for k, v in enumerate(_pad(strides))]
    args += [(f"a{k}", v, "i64") for k, v in enumerate(_pad(shifts))]
    args += launch_args(x.device, "one_hot" if mode == _ONE_HOT else None)
    consts = {"MODE": mode, "NDIM": len(sizes), "UPPER": int(upper), "INPLACE": int(inplace), "BLOCK": BLOCK}
    run(_kernels().move_kernel, ((n + BLOCK - 1) // BLOCK,), args, consts, x.device.index or 0)


_NAMES = {_GATHER: "flip", _ROLL: "roll", _REPEAT: "repeat", _ROLL_FLAT: "roll", _TRI: "triu/tril",
          _ONE_HOT: "one_hot"}


def _per_dim(mode, out, x, dims, base=0):
    """move_kernel in a per-dim mode (GATHER/ROLL/REPEAT); dims: (size, stride, a, plain) per output
    dim, where a plain dim reads coordinate c at c * stride. Size-1 dims are dropped and a plain
    dim merges into a plain inner neighbour that it is contiguous with."""
    n = _numel(out._shape)
    if n == 0:
        return out
    kept = []
    for s, t, a, plain in dims:
        if s == 1:
            continue
        if plain and kept and kept[-1][3] and kept[-1][1] == t * s:
            s = kept.pop()[0] * s
            a = s if mode == _REPEAT else 0
        kept.append((s, t, a, plain))
    kept = kept or [(1, 0, 1, True)]
    _move(mode, out, x, n, [d[0] for d in kept], [d[1] for d in kept], [d[2] for d in kept], (base, 0, 0))
    return out


def _own_geometry(x):
    """x's shape collapsed over its own strides (for reading it in C order by flat index)."""
    sizes, (strides,) = _collapse(list(x._shape), [list(x._stride)])
    return sizes, strides


# ---- flip / roll / repeat ------------------------------------------------------------------------

def flip(self, dims):
    axes = normalize_dims(dims, len(self._shape))
    out = _empty(self._shape, self._dtype, self.device)
    base = 0
    geometry = []
    for k, (s, t) in enumerate(zip(self._shape, self._stride)):
        if k in axes and s > 1:     # read backwards from the last element
            base += (s - 1) * t
            t = -t
        geometry.append((s, t, 0, True))
    return _per_dim(_GATHER, out, self, geometry, base)


def roll(self, shifts, dims=None):
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = () if dims is None else ((dims,) if isinstance(dims, int) else tuple(dims))
    if not shifts:
        raise RuntimeError("roll: `shifts` required")
    out = _empty(self._shape, self._dtype, self.device)
    if not dims:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:0 "
                               f"(without dims, roll takes one shift over the flattened tensor)")
        n = _numel(self._shape)
        if n:
            sizes, strides = _own_geometry(self)
            _move(_ROLL_FLAT, out, self, n, sizes, strides, p=((n - shifts[0] % n) % n, 0, 0))
        return out
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    nd = len(self._shape)
    if nd == 0:
        raise IndexError(f"roll: Dimension specified as {dims[0]} but tensor has no dimensions")
    amount = [0] * nd
    for s, d in zip(shifts, dims):
        amount[normalize_dim(d, nd)] += s
    if _numel(self._shape) == 0:
        return out
    geometry = []
    for s, t, r in zip(self._shape, self._stride, amount):
        a = (s - r % s) % s          # out[c] = x[(c - r) mod s] = x[(c + a) mod s]
        geometry.append((s, t, a, a == 0))
    return _per_dim(_ROLL, out, self, geometry)


def repeat(self, repeats):
    n = len(self._shape)
    if not repeats:
        raise TypeError("repeat() missing 1 required positional arguments: \"repeats\"")
    if len(repeats) < n:
        raise RuntimeError(f"repeat: Number of dimensions of repeat dims can not be smaller than number of "
                           f"dimensions of tensor (got {len(repeats)} repeat dims {list(repeats)} for a tensor of "
                           f"shape {list(self._shape)})")
    if any(r < 0 for r in repeats):
        raise RuntimeError(f"repeat: Trying to create tensor with negative dimension: repeats must be "
                           f"non-negative, got {list(repeats)}")
    lead = len(repeats) - n
    shape = (1,) * lead + self._shape
    stride = (0,) * lead + self._stride
    out = _empty(tuple(r * s for r, s in zip(repeats, shape)), self._dtype, self.device)
    geometry = []
    for r, s, t in zip(repeats, shape, stride):
        if s == 1:                   # every output coordinate reads the one element: a broadcast
            geometry.append((r, 0, r, True))
        else:
            geometry.append((r * s, t, s, r == 1))
    return _per_dim(_REPEAT, out, self, geometry)


# ---- triu / tril ---------------------------------------------------------------------------------

def _tri(name, upper, inplace):
    def kernel(self, diagonal=0):
        if len(self._shape) < 2:
            raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions, got shape "
                               f"{list(self._shape)}")
        out = self if inplace else _empty(self._shape, self._dtype, self.device)
        n = _numel(self._shape)
        if n:
            sizes, strides = _own_geometry(self)
            _move(_TRI, out, self, n, sizes, strides, p=(self._shape[-1], self._shape[-2], diagonal),
                  upper=upper, inplace=inplace)
        return out
    kernel.__name__ = name
    return kernel


# ---- one_hot -------------------------------------------------------------------------------------

def one_hot(self, num_classes=-1):
    if self._dtype is not D.int64:
        raise RuntimeError(f"one_hot is only applicable to index tensor of type int64 (LongTensor), got {self._dtype}")
    n = _numel(self._shape)
    if n:
        if num_classes == -1:   # one wait for the device, as in PyTorch; the sign check rides along
            lo, hi = OPS["stack"].fn([OPS["amin"].fn(self), OPS["amax"].fn(self)]).tolist()
            if lo < 0:
                raise RuntimeError("one_hot(): Class values must be non-negative.")
            num_classes = hi + 1
        elif num_classes == 0:
            raise RuntimeError("one_hot(): Class values must be smaller than num_classes (0), got a non-empty "
                               "tensor.")
    elif num_classes <= 0:
        raise RuntimeError("one_hot(): Can not infer total number of classes from empty tensor.")
    if num_classes < 0:
        raise RuntimeError(f"one_hot(): num_classes should be -1 or positive, got {num_classes}")
    out = _empty(self._shape + (num_classes,), D.int64, self.device)
    if n:
        sizes, strides = _own_geometry(self)
        _move(_ONE_HOT, out, self, n * num_classes, sizes, strides, p=(num_classes, 0, 0))
    return out


# ---- diag / diag_embed ---------------------------------------------------------------------------

def _zeros(shape, dtype, device):
    return OPS["zeros"].fn(*shape, dtype=dtype, device=device)


def diag(self, diagonal=0):
    n = len(self._shape)
    if n == 1:
        m = self._shape[0] + abs(diagonal)
        out = _zeros((m, m), self._dtype, self.device)
        copy_cast(OPS["diagonal"].fn(out, diagonal, 0, 1), self)
        return out
    if n == 2:
        view = OPS["diagonal"].fn(self, diagonal, 0, 1)
        return copy_cast(_empty(view._shape, self._dtype, self.device), view)
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {n}D (shape {list(self._shape)})")


def diag_embed(self, offset=0, dim1=-2, dim2=-1):
    n = len(self._shape) + 1
    d1, d2 = normalize_dim(dim1, n), normalize_dim(dim2, n)
    if d1 == d2:
        raise RuntimeError(f"diag_embed: diagonal dimensions cannot be identical {dim1}, {dim2}")
    m = self._shape[-1] + abs(offset)
    rest = iter(self._shape[:-1])
    shape = tuple(m if k in (d1, d2) else next(rest) for k in range(n))
    out = _zeros(shape, self._dtype, self.device)
    copy_cast(OPS["diagonal"].fn(out, offset, d1, d2), self)
    return out


# ---- factories -----------------------------------------------------------------------------------

def _dt(dtype):
    if dtype is None:
        return D.get_default_dtype()
    if not isinstance(dtype, D.dtype):
        raise TypeError(f"dtype must be an ember.dtype such as ember.float32, got {dtype!r}")
    return dtype


def _num(x):
    return x.item() if isinstance(x, Tensor) else x


def _fill(mode, out, ps, f64, k=0):
    """Launches fill_kernel over out (contiguous); ps: p0..p3 (float64 when f64, else int64)."""
    from .compiler import SIG, run
    n = _numel(out._shape)
    if n == 0:
        return out
    dt = out._dtype
    kind = 0 if dt is D.float64 else 1 if dt.category == 2 else 3 if dt is D.bool else 2
    ty = "fp64" if f64 else "i64"
    args = [("out_ptr", out, "*" + SIG[dt.name]), ("n", n, "i64")]
    args += [(f"p{j}", float(v) if f64 else int(v), ty) for j, v in enumerate(ps)] + [("k", k, "i64")]
    run(_kernels().fill_kernel, ((n + BLOCK - 1) // BLOCK,), args,
        {"MODE": mode, "F64": int(f64), "OUT": kind, "BLOCK": BLOCK}, out.device.index or 0)
    return out


def fill_contiguous(t, value):
    """t[...] = value for a contiguous tensor: cuMemset where the value's bytes repeat with a period
    of at most 4 bytes, else fill_kernel (8-byte values such as int64 or float64 ones)."""
    v = np.array(_num(value)).astype(t._dtype.np)
    pattern = v.tobytes()
    if t._storage.device.type == "cuda" and (len(pattern) <= 4 or len(set(pattern)) == 1):
        from .tensor import _memset
        _memset(t, pattern)
        return t
    f64 = t._dtype.category == 2
    return _fill(_FILL, t, (float(v) if f64 else int(v), 0, 0, 0), f64)


def _check_size(size):
    for s in size:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")


def full(size, fill_value, dtype=None, device=None):
    _check_size(size)
    return fill_contiguous(_empty(tuple(size), _dt(dtype), device), fill_value)


def ones(size, dtype=None, device=None):
    return full(size, 1, dtype, device)


def scalar_tensor(s, dtype=None, device=None):
    return fill_contiguous(_empty((), _dt(dtype), device), s)


def arange(start, end=None, step=1, dtype=None, device=None):
    start, end, step = _num(start), _num(end), _num(step)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and larger bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    if dtype is None:
        dtype = D.get_default_dtype() if any(isinstance(v, float) for v in (start, end, step)) else D.int64
    n = max(0, math.ceil((end - start) / step))
    out = _empty((n,), dtype, device)
    if dtype.category == 2:   # start + i * step in float64, as the CPU kernel
        return _fill(_ARANGE, out, (start, step, 0, 0), True)
    # integer dtypes step by int(step); a float start makes the values float64, truncated on the store
    return _fill(_ARANGE, out, (start, int(step), 0, 0), isinstance(start, float))


def linspace(start, end, steps, dtype=None, device=None):
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    dt = _dt(dtype)
    start, end = _num(start), _num(end)
    out = _empty((steps,), dt, device)
    if steps == 1:
        return _fill(_LINSPACE, out, (start, start, 0, 0), True)
    step = (end - start) / (steps - 1) if steps else 0
    return _fill(_LINSPACE, out, (start, end, step, steps - 1), True, k=steps // 2)


def eye(n, m=None, dtype=None, device=None):
    if n < 0 or (m is not None and m < 0):
        raise RuntimeError(f"eye: n and m must be non-negative, got n={n}, m={m}")
    m = n if m is None else m
    return _fill(_EYE, _empty((n, m), _dt(dtype), device), (0, 0, 0, 0), False, k=m)


def _register():
    reg = lambda name: OPS[name].register("cuda")  # noqa: E731
    reg("flip")(flip)
    reg("roll")(roll)
    reg("repeat")(repeat)
    reg("triu")(_tri("triu", True, False))
    reg("tril")(_tri("tril", False, False))
    reg("triu_")(_tri("triu_", True, True))
    reg("tril_")(_tri("tril_", False, True))
    reg("one_hot")(one_hot)
    reg("diag")(diag)
    reg("diag_embed")(diag_embed)
    reg("full")(full)
    reg("ones")(ones)
    reg("scalar_tensor")(scalar_tensor)
    reg("arange")(arange)
    reg("linspace")(linspace)
    reg("eye")(eye)


_register()
