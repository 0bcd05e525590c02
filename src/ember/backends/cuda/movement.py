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

from ...core import dtype as D
from ...core.shape import normalize_dims
from ...dispatch import OPS
from ...ops.creation import arange_args, factory_dtype, full_dtype, scalar_value
from ...ops.shape import diag_embed_shape, roll_args
from .checks import launch_args
from .compiler import pointer_arg, run
from .elementwise import BLOCK, MAXDIM, _collapse, copy_cast
from .memory import new_tensor

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
    if len(sizes) > MAXDIM:
        raise NotImplementedError(f"{_NAMES[mode]} on CUDA over {len(sizes)} dims that cannot be merged "
                                  f"(at most {MAXDIM}; sizes {list(sizes)})")
    args = [pointer_arg("out_ptr", out), pointer_arg("x_ptr", x), ("n", n, "i64")]
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
    out = new_tensor(self._shape, self._dtype, self.device)
    base = 0
    geometry = []
    for k, (s, t) in enumerate(zip(self._shape, self._stride)):
        if k in axes and s > 1:     # read backwards from the last element
            base += (s - 1) * t
            t = -t
        geometry.append((s, t, 0, True))
    return _per_dim(_GATHER, out, self, geometry, base)


def roll(self, shifts, dims=None):
    shifts, dims = roll_args(shifts, dims, len(self._shape))
    out = new_tensor(self._shape, self._dtype, self.device)
    if not dims:
        n = _numel(self._shape)
        if n:
            sizes, strides = _own_geometry(self)
            _move(_ROLL_FLAT, out, self, n, sizes, strides, p=((n - shifts[0] % n) % n, 0, 0))
        return out
    amount = [0] * len(self._shape)
    for s, d in zip(shifts, dims):
        amount[d] += s
    if _numel(self._shape) == 0:
        return out
    geometry = []
    for s, t, r in zip(self._shape, self._stride, amount):
        a = (s - r % s) % s          # out[c] = x[(c - r) mod s] = x[(c + a) mod s]
        geometry.append((s, t, a, a == 0))
    return _per_dim(_ROLL, out, self, geometry)


def repeat(self, repeats):
    lead = len(repeats) - len(self._shape)
    shape = (1,) * lead + self._shape
    stride = (0,) * lead + self._stride
    out = new_tensor(tuple(r * s for r, s in zip(repeats, shape)), self._dtype, self.device)
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
        out = self if inplace else new_tensor(self._shape, self._dtype, self.device)
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
    n = _numel(self._shape)
    if n and num_classes == -1:   # one wait for the device, as in PyTorch; the sign check rides along
        lo, hi = OPS["stack"].fn([OPS["amin"].fn(self), OPS["amax"].fn(self)]).tolist()
        if lo < 0:
            raise RuntimeError("one_hot(): Class values must be non-negative.")
        num_classes = hi + 1
    out = new_tensor(self._shape + (num_classes,), D.int64, self.device)
    if n:
        sizes, strides = _own_geometry(self)
        _move(_ONE_HOT, out, self, n * num_classes, sizes, strides, p=(num_classes, 0, 0))
    return out


# ---- diag / diag_embed ---------------------------------------------------------------------------

def _zeros(shape, dtype, device):
    return OPS["zeros"].fn(*shape, dtype=dtype, device=device)


def diag(self, diagonal=0):
    if len(self._shape) == 2:
        view = OPS["diagonal"].fn(self, diagonal, 0, 1)
        return copy_cast(new_tensor(view._shape, self._dtype, self.device), view)
    m = self._shape[0] + abs(diagonal)
    out = _zeros((m, m), self._dtype, self.device)
    copy_cast(OPS["diagonal"].fn(out, diagonal, 0, 1), self)
    return out


def diag_embed(self, offset=0, dim1=-2, dim2=-1):
    out = _zeros(diag_embed_shape(self._shape, offset, dim1, dim2), self._dtype, self.device)
    copy_cast(OPS["diagonal"].fn(out, offset, dim1, dim2), self)
    return out


# ---- factories -----------------------------------------------------------------------------------

def _fill(mode, out, ps, f64, k=0):
    """Launches fill_kernel over out (contiguous); ps: p0..p3 (float64 when f64, else int64)."""
    n = _numel(out._shape)
    if n == 0:
        return out
    dt = out._dtype
    kind = 0 if dt is D.float64 else 1 if dt.is_floating_point else 3 if dt is D.bool else 2
    ty = "fp64" if f64 else "i64"
    args = [pointer_arg("out_ptr", out), ("n", n, "i64")]
    args += [(f"p{j}", float(v) if f64 else int(v), ty) for j, v in enumerate(ps)] + [("k", k, "i64")]
    run(_kernels().fill_kernel, ((n + BLOCK - 1) // BLOCK,), args,
        {"MODE": mode, "F64": int(f64), "OUT": kind, "BLOCK": BLOCK}, out.device.index or 0)
    return out


def fill_contiguous(t, value):
    """t[...] = value for a contiguous tensor: cuMemset where the value's bytes repeat with a period
    of at most 4 bytes, else fill_kernel (8-byte values such as int64 or float64 ones)."""
    v = np.array(scalar_value(value)).astype(t._dtype.np)
    pattern = v.tobytes()
    if t._storage.device.type == "cuda" and (len(pattern) <= 4 or len(set(pattern)) == 1):
        from .tensor import _memset
        _memset(t, pattern)
        return t
    f64 = t._dtype.is_floating_point
    return _fill(_FILL, t, (float(v) if f64 else int(v), 0, 0, 0), f64)


def full(size, fill_value, dtype=None, device=None):
    return fill_contiguous(new_tensor(tuple(size), full_dtype(fill_value, dtype), device), fill_value)


def ones(size, dtype=None, device=None):
    return fill_contiguous(new_tensor(size, factory_dtype(dtype), device), 1)


def scalar_tensor(s, dtype=None, device=None):
    return fill_contiguous(new_tensor((), factory_dtype(dtype), device), s)


def arange(start, end=None, step=1, dtype=None, device=None):
    start, step, n, dtype = arange_args(start, end, step, dtype)
    out = new_tensor((n,), dtype, device)
    if dtype.is_floating_point:   # start + i * step in float64, as the CPU kernel
        return _fill(_ARANGE, out, (start, step, 0, 0), True)
    return _fill(_ARANGE, out, (start, step, 0, 0), False)   # integers: int64 start and step


def linspace(start, end, steps, dtype=None, device=None):
    start, end = scalar_value(start), scalar_value(end)
    out = new_tensor((steps,), factory_dtype(dtype), device)
    if steps == 1:
        return _fill(_LINSPACE, out, (start, start, 0, 0), True)
    step = (end - start) / (steps - 1) if steps else 0
    return _fill(_LINSPACE, out, (start, end, step, steps - 1), True, k=steps // 2)


def eye(n, m=None, dtype=None, device=None):
    m = n if m is None else m
    return _fill(_EYE, new_tensor((n, m), factory_dtype(dtype), device), (0, 0, 0, 0), False, k=m)


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
