"""CUDA indexing ops on a gather kernel, a scatter kernel and a stream-compaction pipeline
(`kernels/indexing.py`), plus the composites built on them, and one_hot.

- gather kernel: gather, index_select, embedding, take, index (advanced `__getitem__`).
- scatter kernel (store / atomic add / multiply / max / min): scatter(_) (src tensor or scalar,
  reduce='add'|'multiply'), scatter_add(_), scatter_reduce(_) (sum, prod, mean, amax, amin,
  include_self), index_add(_), index_copy(_), index_fill(_), put(_), index_put(_) (accumulate=True
  through atomics). Types without a native atomic (bfloat16, and float16 except for add; bool and
  8/16-bit integers) accumulate in a float32/int32 copy that is cast back. Duplicate indices
  without accumulation leave one of the written values (as on torch CUDA, not always the last).
- compaction (block counts, an inclusive scan, a compaction kernel): nonzero, argwhere,
  masked_select, masked_scatter(_). nonzero, masked_select and boolean-mask indexing read the
  number of selected elements back to the host (one synchronisation, as torch does); nothing
  else synchronises or copies between host and device.
- one_hot on the data-movement kernel (`move_kernel` of `kernels/movement.py`, launched through
  `shape.py`'s `_move`). With num_classes=-1 it waits for the device once (to learn the largest
  class, as PyTorch does); with an explicit num_classes a class outside [0, num_classes) is
  reported at the next synchronisation like an index out of range.

The argument checks (dtypes, dims, shapes) are the ops' metas (ops/indexing.py), which the entry
point runs before these kernels. Index values are data: the host checks them only where that costs
no synchronisation (a non-empty index into an empty dim). On the device, negative indices are wrapped where the CPU
backend wraps them (take, put, index_fill, advanced indexing and index_put) and are out of range
elsewhere. An index out of range is never dereferenced (a read gives 0, a write is dropped) and is
recorded in the device's error word: the next synchronisation raises a RuntimeError naming the op,
the index and the size (`checks.py`; PyTorch raises a device-side assert). Not checked:
masked_scatter with a source of fewer elements than the mask selects (the positions past its end
keep their value).
"""
from __future__ import annotations

from math import prod

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.layout import layout_strides
from ...core.shape import broadcast_shapes, contiguous_strides, normalize_dim
from ...dispatch import OPS
from ...ops.indexing import fill_scalar, index_entries
from .checks import launch_args
from .compiler import pointer_arg, run
from .elementwise import BLOCK, MAXDIM, _collapse, _strides_for, copy_cast, select_into
from .memory import new_tensor
from .opcodes import Bounds, Compact, Move, Scatter
from .shape import _move, _own_geometry

_NATIVE = {Scatter.STORE: None, Scatter.ADD: {"float32", "float64", "float16", "int32", "int64"},
           Scatter.MUL: {"float32", "float64", "int32", "int64"}}
_NATIVE[Scatter.MAX] = _NATIVE[Scatter.MIN] = _NATIVE[Scatter.MUL]


def _kernels():
    from .kernels import indexing
    return indexing


# ---- launch helpers --------------------------------------------------------------------------------

def _pad(v):
    return list(v) + [0] * (MAXDIM - len(v))


def _geometry(shape, strides):
    sizes, sts = _collapse(list(shape), [list(s) for s in strides])
    if len(sizes) > MAXDIM:
        raise NotImplementedError(f"indexing kernel on CUDA over {len(sizes)} non-mergeable dims (at most {MAXDIM})")
    return sizes, sts


def _grid_args(sizes, sts, prefixes):
    s = _pad(sizes)
    args = [(f"s{k}", s[k], "i64") for k in range(1, MAXDIM)]
    for p, st in zip(prefixes, sts):
        st = _pad(st)
        args += [(f"{p}{k}", st[k], "i64") for k in range(MAXDIM)]
    return args


def _unravel_args(t):
    """take/put: the collapsed geometry through which a flat C-order index addresses t."""
    if t is None:
        sizes, st, nd = [1], [0], 0
    else:
        sizes, (st,) = _geometry(t._shape, [t._stride])
        nd = len(sizes)
    u, ut = _pad(sizes), _pad(st)
    return [(f"u{k}", u[k], "i64") for k in range(1, MAXDIM)] + [(f"ut{k}", ut[k], "i64") for k in range(MAXDIM)], nd


def _run(kernel, n, args, consts, device):
    run(kernel, ((n + BLOCK - 1) // BLOCK,), args, dict(consts, BLOCK=BLOCK), device.index or 0)


def _gather(op, out, x, xs, idx, its, isize, xdim, wrap=Bounds.PLAIN, unravel=None):
    """out[p] = x[offset(p; xs) + idx[p] * xdim] over out's shape (or, with `unravel`, x's flat
    element idx[p]); its: the index's strides over out's shape; an index out of range is
    reported as op's."""
    n = prod(out._shape)
    if n == 0:
        return out
    sizes, sts = _geometry(out._shape, [out._stride, xs, its])
    uargs, und = _unravel_args(unravel)
    args = [pointer_arg("out_ptr", out), pointer_arg("x_ptr", x), pointer_arg("idx_ptr", idx), ("n", n, "i64"),
            ("isize", isize, "i64"), ("xdim", xdim, "i64")] + _grid_args(sizes, sts, ("ot", "xt", "it")) + uargs
    args += launch_args(out.device, op)
    _run(_kernels().gather_kernel, n, args, {"NDIM": len(sizes), "UNDIM": und, "WRAP": wrap}, out.device)
    return out


def _scalar_type(dt):
    return "fp64" if dt is D.float64 else ("fp32" if dt.is_floating_point else "i64")


def _scatter(op, out, os_, shape, idx, its, src, ss, osize, odim, mode, scale=None, wrap=Bounds.PLAIN,
             unravel=None):
    """out[offset(p; os_) + idx[p] * odim] (mode)= src[p] over `shape`; src a tensor read through
    strides `ss` or a Python scalar; `scale` multiplies a tensor src (index_add's alpha); an index
    out of range is reported as op's."""
    n = prod(shape)
    if n == 0 or out.numel() == 0:  # into an empty tensor every index is out of range
        return
    dt = out._dtype
    scalar = not isinstance(src, Tensor)
    value = src if scalar else scale
    value = 0 if value is None else (float(value) if dt.is_floating_point else int(value))
    sizes, sts = _geometry(shape, [os_, [0] * len(shape) if scalar else ss, its])
    uargs, und = _unravel_args(unravel)
    args = [pointer_arg("out_ptr", out), pointer_arg("src_ptr", out if scalar else src), pointer_arg("idx_ptr", idx),
            ("n", n, "i64"), ("osize", osize, "i64"), ("odim", odim, "i64"), ("value", value, _scalar_type(dt))]
    args += _grid_args(sizes, sts, ("ot", "st", "it")) + uargs + launch_args(out.device, op)
    consts = {"NDIM": len(sizes), "UNDIM": und, "WRAP": wrap, "MODE": mode, "SRC_SCALAR": int(scalar),
              "SCALE": int(not scalar and scale is not None), "FLT": int(dt.is_floating_point),
              "W64": int(dt.itemsize == 8)}
    _run(_kernels().scatter_kernel, n, args, consts, out.device)


def _acc_dtype(dt, mode):
    native = _NATIVE[mode]
    if native is None or dt.name in native:
        return dt
    return D.float32 if dt.is_floating_point else D.int32


def _update(self, inplace, mode, body, preserve=None):
    """Runs body(target) on self (in place) or on a copy of it (row-major; in self's layout where `preserve` names
    the op, as torch's index_fill/index_put/put clone self with preserve_format), through a float32/int32 copy
    where `mode`'s atomic has no native form for self's dtype; returns the result."""
    acc = _acc_dtype(self._dtype, mode)
    if inplace and acc is self._dtype:
        body(self)
        return self
    st = layout_strides(self, None, preserve) if preserve and not inplace else None
    target = copy_cast(new_tensor(self._shape, acc, self.device, st), self)
    body(target)
    if acc is self._dtype:
        return target
    return copy_cast(self if inplace else new_tensor(self._shape, self._dtype, self.device, st), target)


def _as_1d(t):
    """0-dim tensors act as 1-element vectors in the dim-based ops (a view: writes go through)."""
    return t.reshape(1) if not t._shape else t


def _dim_scatter(op, t, d, index, src, mode, scale=None, wrap=Bounds.PLAIN):
    """t[..., index[p], ...] (mode)= src[p] over index's shape, along dim d of t."""
    os_ = list(t._stride)
    odim = os_[d]
    os_[d] = 0
    ss = None if not isinstance(src, Tensor) else (list(src._stride) if src._shape else [0] * len(index._shape))
    _scatter(op, t, os_, index._shape, index, index._stride, src, ss, t._shape[d], odim, mode, scale, wrap)


def _along(index, d, shape):
    """A 1-D index along dim d as a broadcast view over `shape` (strides 0 elsewhere)."""
    view = [1] * len(shape)
    view[d] = index._shape[0]
    return index.reshape(*view).expand(*shape)


# ---- values ----------------------------------------------------------------------------------------

def _py_value(op, value, dt):
    """A fill value for dtype dt as a Python scalar (a 0-dim CPU tensor is read on the host)."""
    return fill_scalar(op, value.item() if isinstance(value, Tensor) else value, dt)


def _no_empty_dim(op, n, dim, size):
    """A non-empty index into an empty dim: every index is out of range, and with nothing to address
    the kernel could not report it (on the CPU the index values say so)."""
    if n and not size:
        raise IndexError(f"{op}(): index is out of bounds for dimension {dim} with size 0")


# ---- gather family ---------------------------------------------------------------------------------

def gather(self, dim, index, sparse_grad=False):
    return _dim_gather("gather", self, dim, index)


def _dim_gather(op, self, dim, index):
    d = normalize_dim(dim, self.ndim)
    out = new_tensor(index._shape, self._dtype, self.device)
    if out.numel() == 0:
        return out
    x, idx = _as_1d(self), _as_1d(index)
    _no_empty_dim("gather", 1, d, x._shape[d])
    xs = list(x._stride)
    xs[d] = 0
    _gather(op, _as_1d(out), x, xs, idx, idx._stride, x._shape[d], x._stride[d])
    return out


def index_select(self, dim, index, op="index_select"):
    d = normalize_dim(dim, self.ndim)
    if not self._shape:
        return _dim_gather(op, self.reshape(1), 0, index.reshape(1)).reshape(())
    shape = list(self._shape)
    shape[d] = index.numel()
    if index.numel():
        _no_empty_dim("index_select", 1, d, self._shape[d])
    return _dim_gather(op, self, d, _along(index.reshape(-1), d, shape))


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    flat = index_select(weight, 0, indices.reshape(-1), "embedding")
    return flat.reshape(*indices._shape, weight._shape[-1])


def take(self, index):
    out = new_tensor(index._shape, self._dtype, self.device)
    return _gather("take", out, self, [0] * index.ndim, index, index._stride, self.numel(), 0, Bounds.WRAP,
                   unravel=self)


# ---- advanced indexing -------------------------------------------------------------------------------

def _adv_entries(op, entries):
    """The checked index list's tensors (ops.indexing.index_entries) as [(first dim, tensor, is_mask)]."""
    for _, _, _, t, is_mask in entries:
        if is_mask and not t._shape:
            raise NotImplementedError(f"{op}() on CUDA with a 0-dim boolean index is not implemented "
                                      f"(Tensor.__getitem__ turns one into a 1-element mask on a new dim)")
    return [(d, t, is_mask) for _, d, _, t, is_mask in entries]


def _adv_per_dim(op, self, entries):
    """One entry per dim of self: None or an integer index tensor; a mask becomes the columns of
    its nonzero() (the one host synchronisation)."""
    per = [None] * self.ndim
    for d, t, is_mask in entries:
        if not is_mask:
            per[d] = t
            continue
        nz = nonzero(t)
        for j in range(t.ndim):
            per[d + j] = nz.select(1, j) if nz._shape[0] else new_tensor((0,), D.int64, self.device)
    try:
        batch = broadcast_shapes(*[t._shape for t in per if t is not None])
    except RuntimeError:
        shapes = ", ".join(str(list(t._shape)) for _, t, _ in entries)
        raise IndexError(f"{op}(): shape mismatch: indexing tensors could not be broadcast together with "
                         f"shapes {shapes}") from None
    return per, batch


def _adv_geometry(op, t, per, batch):
    """The indexing result's shape and, over it, t's strides and the index operand: (shape, xs,
    idx, its, size, dim stride, wrap). Several index tensors become one tensor of element offsets."""
    shape, stride = t._shape, t._stride
    dims = [d for d, i in enumerate(per) if i is not None]
    adjacent = dims[-1] - dims[0] + 1 == len(dims)
    rest = [d for d in range(t.ndim) if per[d] is None]
    pre = [d for d in rest if d < dims[0]] if adjacent else []
    post = [d for d in rest if d not in pre]
    res = tuple([shape[d] for d in pre] + list(batch) + [shape[d] for d in post])
    xs = [stride[d] for d in pre] + [0] * len(batch) + [stride[d] for d in post]
    nb = prod(batch)
    for d in dims:
        _no_empty_dim(op, nb, d, shape[d])
    if len(dims) == 1:
        d = dims[0]
        idx, its, size, dstride, wrap = per[d], _strides_for(per[d], batch), shape[d], stride[d], Bounds.WRAP
    else:
        idx, its, size, dstride = new_tensor(batch, D.int64, t.device), list(contiguous_strides(batch)), 0, 1
        wrap = Bounds.LIN
        if prod(res):
            for k, d in enumerate(dims):
                _linearise(op, idx, per[d], batch, shape[d], stride[d], k == 0)
    its = [0] * len(pre) + list(its) + [0] * len(post)
    return res, xs, idx, its, size, dstride, wrap


def _linearise(op, lin, idx, batch, size, stride, first):
    """lin (+)= wrap(idx) * stride over `batch` (-1 marks an out-of-range index, reported as op's)."""
    n = prod(batch)
    sizes, (its,) = _geometry(batch, [_strides_for(idx, batch)])
    args = [pointer_arg("lin_ptr", lin), pointer_arg("idx_ptr", idx), ("n", n, "i64"), ("size", size, "i64"),
            ("stride", stride, "i64")] + _grid_args(sizes, [its], ("it",)) + launch_args(lin.device, op)
    _run(_kernels().lin_kernel, n, args, {"NDIM": len(sizes), "FIRST": int(first)}, lin.device)


def index(self, indices):
    entries = _adv_entries("index", index_entries("index", self, indices))
    if not entries:  # only whole dims: a copy
        return copy_cast(new_tensor(self._shape, self._dtype, self.device), self)
    if len(entries) == 1 and entries[0][2] and entries[0][0] == 0 and entries[0][1].ndim == self.ndim \
            and entries[0][1]._dtype is D.bool:
        return masked_select(self, entries[0][1])  # x[mask] over every dim
    per, batch = _adv_per_dim("index", self, entries)
    res, xs, idx, its, size, dstride, wrap = _adv_geometry("index", self, per, batch)
    return _gather("index", new_tensor(res, self._dtype, self.device), self, xs, idx, its, size, dstride, wrap)


def _value_strides(op, values, res):
    """values' strides broadcast over the indexing result's shape (NumPy assignment rules)."""
    vshape, vst = list(values._shape), list(values._stride)
    while len(vshape) > len(res) and vshape[0] == 1:
        vshape, vst = vshape[1:], vst[1:]
    off = len(res) - len(vshape)
    if off < 0 or any(a != 1 and a != b for a, b in zip(vshape, res[off:])):
        raise RuntimeError(f"{op}(): shape mismatch: value tensor of shape {list(values._shape)} cannot be broadcast "
                           f"to indexing result of shape {list(res)}")
    out = [0] * len(res)
    for i, (a, s) in enumerate(zip(vshape, vst)):
        if a != 1:
            out[off + i] = s
    return out


def _index_put(op, self, indices, values, accumulate, inplace):
    entries = _adv_entries(op, index_entries(op, self, indices))
    if not entries:  # only whole dims: every element
        _value_strides(op, values, self._shape)
        if inplace:
            OPS["add_" if accumulate else "copy_"].fn(self, values)
            return self
        return OPS["add"].fn(self, values) if accumulate else copy_cast(
            new_tensor(self._shape, self._dtype, self.device, layout_strides(self, None, op)), values)
    d0, m, is_mask = entries[0]
    if len(entries) == 1 and is_mask and m._dtype is D.bool and not accumulate and values.numel() == 1:
        # x[mask] = v: a masked fill, no synchronisation (as in torch)
        view = m.reshape(*([1] * d0 + list(m._shape) + [1] * (self.ndim - d0 - m.ndim)))
        v = values.reshape(())
        if inplace:
            return OPS["masked_fill_"].fn(self, view, v)
        st = layout_strides(self, None, op)     # self's layout (torch: a preserve_format clone, then the fill)
        if st is None:
            return OPS["masked_fill"].fn(self, view, v)         # row-major, as masked_fill's result: one launch
        return OPS["masked_fill_"].fn(copy_cast(new_tensor(self._shape, self._dtype, self.device, st), self), view, v)
    per, batch = _adv_per_dim(op, self, entries)
    mode = Scatter.ADD if accumulate else Scatter.STORE

    def body(t):
        res, xs, idx, its, size, dstride, wrap = _adv_geometry(op, t, per, batch)
        _scatter(op, t, xs, res, idx, its, values, _value_strides(op, values, res), size, dstride, mode, wrap=wrap)
    return _update(self, inplace, mode, body, op)


def index_put_(self, indices, values, accumulate=False):
    return _index_put("index_put_", self, indices, values, accumulate, True)


def index_put(self, indices, values, accumulate=False):
    return _index_put("index_put", self, indices, values, accumulate, False)


# ---- scatter family ------------------------------------------------------------------------------------

def _copy_of(self):
    return copy_cast(new_tensor(self._shape, self._dtype, self.device), self)


_SCATTER_MODE = {None: Scatter.STORE, "add": Scatter.ADD, "multiply": Scatter.MUL}


def _scatter_op(op, inplace):
    def kernel(self, dim, index, src=None, value=None, reduce=None):
        d = normalize_dim(dim, self.ndim)
        if src is None:
            src = value
        if index.numel() == 0:
            return self if inplace else _copy_of(self)
        _no_empty_dim(op, 1, d, (self._shape or (1,))[d])
        mode = _SCATTER_MODE[reduce]
        s = _as_1d(src) if isinstance(src, Tensor) else _py_value(op, src, self._dtype)
        return _update(self, inplace, mode, lambda t: _dim_scatter(op, _as_1d(t), d, _as_1d(index), s, mode))
    return kernel


def _scatter_add_op(op, inplace):
    def kernel(self, dim, index, src):
        d = normalize_dim(dim, self.ndim)
        if index.numel() == 0:
            return self if inplace else _copy_of(self)
        _no_empty_dim(op, 1, d, (self._shape or (1,))[d])
        return _update(self, inplace, Scatter.ADD,
                       lambda t: _dim_scatter(op, _as_1d(t), d, _as_1d(index), _as_1d(src), Scatter.ADD))
    return kernel


_REDUCE_MODE = {"sum": Scatter.ADD, "prod": Scatter.MUL, "mean": Scatter.ADD, "amax": Scatter.MAX,
                "amin": Scatter.MIN}


def _identity(reduce, dt):
    """The start value of a reduction in the (accumulation) dtype dt (include_self=False)."""
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    if dt.is_floating_point:
        return float("-inf") if reduce == "amax" else float("inf")
    info = np.iinfo(dt.np)
    return int(info.min if reduce == "amax" else info.max)


def _scatter_reduce_op(op, inplace):
    def kernel(self, dim, index, src, reduce, include_self=True):
        d = normalize_dim(dim, self.ndim)
        if index.numel() == 0:
            return self if inplace else _copy_of(self)
        _no_empty_dim(op, 1, d, (self._shape or (1,))[d])
        mode = _REDUCE_MODE[reduce]
        idx, s = _as_1d(index), _as_1d(src)

        def body(t):
            t = _as_1d(t)
            if not include_self:
                _dim_scatter(op, t, d, idx, _identity(reduce, t._dtype), Scatter.STORE)
            _dim_scatter(op, t, d, idx, s, mode)
        if reduce != "mean":
            return _update(self, inplace, mode, body)
        acc_dt = _acc_dtype(self._dtype, Scatter.MUL)  # float32 for float16/bfloat16, int32 for narrow integers
        acc = copy_cast(new_tensor(self._shape, acc_dt, self.device), self)
        body(acc)
        count = OPS["ones" if include_self else "zeros"].fn(*self._shape, dtype=acc_dt, device=self.device)
        _dim_scatter(op, _as_1d(count), d, idx, 1, Scatter.ADD)
        out = self if inplace else new_tensor(self._shape, self._dtype, self.device)
        _mean_finish(out, acc, count)
        return out
    return kernel


def _mean_finish(out, acc, count):
    n = out.numel()
    sizes, (ot,) = _geometry(out._shape, [out._stride])
    args = [pointer_arg("out_ptr", out), pointer_arg("acc_ptr", acc), pointer_arg("cnt_ptr", count), ("n", n, "i64")]
    args += _grid_args(sizes, [ot], ("ot",))
    _run(_kernels().mean_kernel, n, args, {"NDIM": len(sizes), "FLT": int(acc._dtype.is_floating_point)}, out.device)


# ---- index_add / index_copy / index_fill / put --------------------------------------------------------

def _index_source_op(op, inplace, mode):
    """index_add(_) (mode ADD, with alpha) and index_copy(_) (STORE): source's slices along dim d
    go to self's slices at index."""
    def kernel(self, dim, index, source, alpha=1):
        d = normalize_dim(dim, self.ndim)
        _no_empty_dim(op, index.numel(), d, (self._shape or (1,))[d])
        s = _as_1d(source)
        idx = _along(index.reshape(-1), d, s._shape)
        scale = None if alpha == 1 else alpha
        return _update(self, inplace, mode, lambda t: _dim_scatter(op, _as_1d(t), d, idx, s, mode, scale))
    return kernel


def _index_fill_op(op, inplace):
    def kernel(self, dim, index, value):
        d = normalize_dim(dim, self.ndim)
        if not isinstance(value, Tensor) or value._storage.device is not self._storage.device:
            value = _py_value(op, value, self._dtype)   # a Python scalar or a CPU scalar tensor: its value
        shape = list(self._shape or (1,))
        shape[d] = index.numel()
        _no_empty_dim(op, index.numel(), d, (self._shape or (1,))[d])
        idx = _along(index.reshape(-1), d, shape)
        return _update(self, inplace, Scatter.STORE,
                       lambda t: _dim_scatter(op, _as_1d(t), d, idx, value, Scatter.STORE, wrap=Bounds.WRAP), op)
    return kernel


def _put_op(op, inplace):
    def kernel(self, index, source, accumulate=False):
        idx, src = (index, source) if index._shape == source._shape else (index.reshape(-1), source.reshape(-1))
        mode = Scatter.ADD if accumulate else Scatter.STORE

        def body(t):
            shape = idx._shape
            _scatter(op, t, [0] * len(shape), shape, idx, idx._stride, src, src._stride, t.numel(), 0, mode,
                     wrap=Bounds.WRAP, unravel=t)
        return _update(self, inplace, mode, body, op)
    return kernel


# ---- stream compaction: nonzero, masked_select, masked_scatter ------------------------------------------

def _inclusive_scan(x):
    """The inclusive prefix sum of a contiguous 1-D int64 tensor (block scans, recursively offset)."""
    k = _kernels()
    n = x._shape[0]
    nb = (n + BLOCK - 1) // BLOCK
    out = new_tensor((n,), D.int64, x.device)
    sums = new_tensor((nb,), D.int64, x.device)
    args = [pointer_arg("x_ptr", x), pointer_arg("out_ptr", out), pointer_arg("sums_ptr", sums), ("n", n, "i64")]
    _run(k.scan_kernel, n, args, {}, x.device)
    if nb > 1:
        offs = _inclusive_scan(sums)
        run(k.scan_add_kernel, (nb - 1,), [pointer_arg("out_ptr", out), pointer_arg("offs_ptr", offs), ("n", n, "i64")],
            {"BLOCK": BLOCK}, x.device.index or 0)
    return out


def _block_counts(m, shape, strides):
    """Counts the non-zero elements of m (through strides[-1]) per block of positions over `shape`
    and scans those counts; returns (collapsed sizes and strides, counts, inclusive scan)."""
    n = prod(shape)
    sizes, sts = _geometry(shape, strides)
    nb = (n + BLOCK - 1) // BLOCK
    cnt = new_tensor((nb,), D.int64, m.device)
    args = [pointer_arg("cnt_ptr", cnt), pointer_arg("m_ptr", m), ("n", n, "i64")]
    args += _grid_args(sizes, sts[-1:], ("mt",))
    half = int(m._dtype is D.float16 or m._dtype is D.bfloat16)
    _run(_kernels().count_kernel, n, args, {"NDIM": len(sizes), "HALF": half}, m.device)
    return sizes, sts, cnt, _inclusive_scan(cnt)


def _compact(mode, out, a, m, shape, sizes, sts, cnt, incl, limit=0, coords=()):
    """Launches compact_kernel (see kernels/indexing.py) over `shape`; sts = (a's, m's) strides."""
    n = prod(shape)
    c = _pad(coords)
    args = [pointer_arg("out_ptr", out), pointer_arg("a_ptr", a), pointer_arg("m_ptr", m),
            pointer_arg("incl_ptr", incl), pointer_arg("cnt_ptr", cnt),
            ("n", n, "i64"), ("limit", limit, "i64")] + _grid_args(sizes, sts, ("at", "mt"))
    args += [(f"c{k}", c[k], "i64") for k in range(1, MAXDIM)]
    half = int(m._dtype is D.float16 or m._dtype is D.bfloat16)
    _run(_kernels().compact_kernel, n, args,
         {"NDIM": len(sizes), "CNDIM": len(coords), "MODE": mode, "HALF": half}, m.device)


def _total(incl):
    """The number of selected elements: the host synchronisation of the data-dependent ops."""
    return int(incl[incl._shape[0] - 1].item())


def nonzero(self):
    nd = self.ndim
    if nd > MAXDIM:
        raise NotImplementedError(f"nonzero on CUDA of a tensor with more than {MAXDIM} dims is not implemented "
                                  f"yet (got {nd})")
    if self.numel() == 0:
        return new_tensor((0, nd), D.int64, self.device)
    strides = [self._stride]
    sizes, sts, cnt, incl = _block_counts(self, self._shape, strides * 2)
    total = _total(incl)
    out = new_tensor((total, nd), D.int64, self.device)
    if total and nd:
        _compact(Compact.NONZERO, out, self, self, self._shape, sizes, sts, cnt, incl, coords=self._shape)
    return out


def masked_select(self, mask):
    shape = broadcast_shapes(self._shape, mask._shape)
    if prod(shape) == 0:
        return new_tensor((0,), self._dtype, self.device)
    sizes, sts, cnt, incl = _block_counts(mask, shape, [_strides_for(self, shape), _strides_for(mask, shape)])
    out = new_tensor((_total(incl),), self._dtype, self.device)
    if out.numel():
        _compact(Compact.MASKED_SELECT, out, self, mask, shape, sizes, sts, cnt, incl)
    return out


def _masked_scatter_into(t, mask, source):
    """t[mask] = the first elements of source, in order (mask broadcast to t's shape)."""
    shape = t._shape
    if prod(shape) == 0 or source.numel() == 0:
        return t
    src = source.reshape(-1)
    if src._stride != (1,):          # a strided source (x[::2]): the kernel reads it as one dense run
        src = src.contiguous()
    sizes, sts, cnt, incl = _block_counts(mask, shape, [t._stride, _strides_for(mask, shape)])
    _compact(Compact.MASKED_SCATTER, src, t, mask, shape, sizes, sts, cnt, incl, limit=src.numel())
    return t


def masked_scatter(self, mask, source):
    shape = broadcast_shapes(self._shape, mask._shape)
    out = copy_cast(new_tensor(shape, self._dtype, self.device), self)
    return _masked_scatter_into(out, mask, source)


def masked_scatter_(self, mask, source):
    return _masked_scatter_into(self, mask, source)


# ---- one_hot -------------------------------------------------------------------------------------

def one_hot(self, num_classes=-1):
    n = prod(self._shape)
    if n and num_classes == -1:   # one wait for the device, as in PyTorch; the sign check rides along
        lo, hi = OPS["stack"].fn([OPS["amin"].fn(self), OPS["amax"].fn(self)]).tolist()
        if lo < 0:
            raise RuntimeError("one_hot(): Class values must be non-negative.")
        num_classes = hi + 1
    out = new_tensor(self._shape + (num_classes,), D.int64, self.device)
    if n:
        sizes, strides = _own_geometry(self)
        _move(Move.ONE_HOT, out, self, n * num_classes, sizes, strides, p=(num_classes, 0, 0))
    return out


# in-place/out-of-place pairs, built once (the interpreter tests call these directly)
scatter, scatter_ = _scatter_op("scatter", False), _scatter_op("scatter_", True)
scatter_add, scatter_add_ = _scatter_add_op("scatter_add", False), _scatter_add_op("scatter_add_", True)
scatter_reduce = _scatter_reduce_op("scatter_reduce", False)
scatter_reduce_ = _scatter_reduce_op("scatter_reduce_", True)
index_add, index_add_ = (_index_source_op("index_add", False, Scatter.ADD),
                         _index_source_op("index_add_", True, Scatter.ADD))
index_copy, index_copy_ = (_index_source_op("index_copy", False, Scatter.STORE),
                           _index_source_op("index_copy_", True, Scatter.STORE))
index_fill, index_fill_ = _index_fill_op("index_fill", False), _index_fill_op("index_fill_", True)
put, put_ = _put_op("put", False), _put_op("put_", True)


def masked_fill(self, mask, value):
    """The mask may broadcast self to a larger shape (the meta checked it and the dtypes)."""
    return select_into(new_tensor(broadcast_shapes(self._shape, mask._shape), self._dtype, self.device), mask, value, self)


def masked_fill_(self, mask, value):
    return select_into(self, mask, value, self)


def _register():
    reg = lambda name: OPS[name].register("cuda")  # noqa: E731
    for name in ("gather", "index_select", "embedding", "take", "index", "index_put", "index_put_", "scatter",
                 "scatter_", "scatter_add", "scatter_add_", "scatter_reduce", "scatter_reduce_", "index_add",
                 "index_add_", "index_copy", "index_copy_", "index_fill", "index_fill_", "put", "put_", "nonzero",
                 "masked_select", "masked_scatter", "masked_scatter_", "masked_fill", "masked_fill_", "one_hot"):
        reg(name)(globals()[name])
    reg("argwhere")(nonzero)


_register()
