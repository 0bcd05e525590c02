"""CUDA shape and data-movement ops: flip, roll, repeat, triu/tril (and triu_/tril_) on a Triton
kernel (`move_kernel` of `kernels/movement.py`), and the composites diag, diag_embed, cat and stack.

flip, roll, repeat and triu/tril read every output element from a source offset computed on the
device from its position (`move_kernel`; `indexing.py`'s one_hot launches it too, through `_move`).
diag and diag_embed are a strided copy through a `diagonal` view (into zeros for the vector ->
matrix direction); cat and stack copy each input into its slice of the output. Nothing here copies
between host and device or waits for the device. Sorting and selection (sort, topk, unique, ...)
are in `sort.py`.
"""
from __future__ import annotations

import math

from ...core import dtype as D
from ...core.layout import layout_strides
from ...core.shape import normalize_dim, normalize_dims
from ...dispatch import OPS
from ...ops.shape import diag_embed_shape, roll_args
from .checks import launch_args
from .compiler import pointer_arg, run
from .elementwise import BLOCK, MAXDIM, _collapse, copy_cast
from .memory import new_tensor
from .opcodes import Move



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
    args += launch_args(x.device, "one_hot" if mode == Move.ONE_HOT else None)
    consts = {"MODE": mode, "NDIM": len(sizes), "UPPER": int(upper), "INPLACE": int(inplace), "BLOCK": BLOCK}
    run(_kernels().move_kernel, ((n + BLOCK - 1) // BLOCK,), args, consts, x.device.index or 0)


_NAMES = {Move.GATHER: "flip", Move.ROLL: "roll", Move.REPEAT: "repeat", Move.ROLL_FLAT: "roll", Move.TRI: "triu/tril",
          Move.ONE_HOT: "one_hot"}


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
            a = s if mode == Move.REPEAT else 0
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
    st = layout_strides(self, None, "flip")     # in self's layout, as torch's flip
    out = new_tensor(self._shape, self._dtype, self.device, st)
    order = range(len(self._shape)) if st is None else sorted(range(len(st)), key=lambda d: -st[d])
    base = 0
    geometry = []
    for k in order:                 # out's dims in its memory order: the kernel writes it flat
        s, t = self._shape[k], self._stride[k]
        if k in axes and s > 1:     # read backwards from the last element
            base += (s - 1) * t
            t = -t
        geometry.append((s, t, 0, True))
    return _per_dim(Move.GATHER, out, self, geometry, base)


def roll(self, shifts, dims=None):
    shifts, dims = roll_args(shifts, dims, len(self._shape))
    out = new_tensor(self._shape, self._dtype, self.device)
    if not dims:
        n = _numel(self._shape)
        if n:
            sizes, strides = _own_geometry(self)
            _move(Move.ROLL_FLAT, out, self, n, sizes, strides, p=((n - shifts[0] % n) % n, 0, 0))
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
    return _per_dim(Move.ROLL, out, self, geometry)


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
    return _per_dim(Move.REPEAT, out, self, geometry)


# ---- triu / tril ---------------------------------------------------------------------------------

def _tri(name, upper, inplace):
    def kernel(self, diagonal=0):
        out = self if inplace else new_tensor(self._shape, self._dtype, self.device)
        n = _numel(self._shape)
        if n:
            sizes, strides = _own_geometry(self)
            _move(Move.TRI, out, self, n, sizes, strides, p=(self._shape[-1], self._shape[-2], diagonal),
                  upper=upper, inplace=inplace)
        return out
    kernel.__name__ = name
    return kernel


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


# ---- cat / stack ---------------------------------------------------------------------------------

def cat(tensors, dim=0):
    live = [t for t in tensors if not (t.ndim == 1 and t._shape[0] == 0)] or list(tensors[:1])
    ref = live[0]
    d = normalize_dim(dim, ref.ndim)
    dt = D.result_type(*tensors) if len(tensors) > 1 else ref._dtype
    for t in live:
        if t.ndim != ref.ndim or any(a != b for k, (a, b) in enumerate(zip(t._shape, ref._shape)) if k != d):
            raise RuntimeError(f"cat(): sizes of tensors must match except in dimension {d}: "
                               f"{list(ref._shape)} vs {list(t._shape)}")
    shape = list(ref._shape)
    shape[d] = sum(t._shape[d] for t in live)
    out = new_tensor(tuple(shape), dt, ref.device)
    ost = out._stride
    start = 0
    for t in live:      # each input into its slice of out (a view made here: no dispatch per input)
        n = t._shape[d]
        if n:
            shape[d] = n
            copy_cast(out._as_view(tuple(shape), ost, start * ost[d]), t)
        start += n
    return out


def stack(tensors, dim=0):
    """cat of the inputs with a size-1 dim inserted at `dim` (views made here; the meta has checked the shapes)."""
    ref = tensors[0]
    d = normalize_dim(dim, ref.ndim + 1)
    views = []
    for t in tensors:
        views.append(t._as_view(t._shape[:d] + (1,) + t._shape[d:], t._stride[:d] + (1,) + t._stride[d:], t._offset))
    return cat(views, d)


def _register():
    reg = lambda name: OPS[name].register("cuda")  # noqa: E731
    reg("flip")(flip)
    reg("roll")(roll)
    reg("repeat")(repeat)
    reg("triu")(_tri("triu", True, False))
    reg("tril")(_tri("tril", False, False))
    reg("triu_")(_tri("triu_", True, True))
    reg("tril_")(_tri("tril_", False, True))
    reg("diag")(diag)
    reg("diag_embed")(diag_embed)
    reg("cat")(cat)
    reg("stack")(stack)


_register()
