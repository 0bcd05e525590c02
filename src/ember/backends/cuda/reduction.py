"""CUDA reductions on the Triton kernels of `kernels/reduction.py`: sum, mean, amax, amin over any
set of dims (keepdim, dtype=), argmax/argmin (one dim or all), softmax/log_softmax over one dim.

Every problem becomes rows x cols: the kept dims (in order) index the rows, the reduced dims (in
order) the columns. Each side is collapsed (`elementwise._collapse`); when it takes at most two
strided dims per side the kernel reads the input in place, otherwise the input is first copied
(`copy_cast`) into a contiguous tensor laid out as (kept..., reduced...). Short-and-wide sums and
max/min are split over the columns (a partial pass then a second pass over the partials).
CUDA tensors launch through cached plans (only argument values change); CPU tensors (the CI
tests, TRITON_INTERPRET=1) run the same kernels in Triton's interpreter through `compiler.run`.
"""
from __future__ import annotations

import ctypes
import math

from ...core import dtype as D
from ...dispatch import OPS
from ...ops.reduction import (check_nonempty, mean_dtype, one_dim, reduce_dims, reduced_shape, softmax_dtype,
                              sum_dtype)
from .elementwise import _collapse, _empty, copy_cast

SPLIT_MIN_COLS = 16384     # split a reduction over the columns when rows are few and columns at least this many
SPLIT_TARGET_PROGRAMS = 512
SPLIT_MIN_CHUNK = 4096
_OP = {"sum": 0, "amax": 1, "amin": 2}
_CTY = {"fp32": ctypes.c_float, "fp64": ctypes.c_double, "i64": ctypes.c_int64, "i32": ctypes.c_int32}


def _kernels():
    from .kernels import reduction as K
    return K


def _ck(dt) -> int:
    """Accumulation type code: 0 float32, 1 float64, 2 int64 (ints and bool)."""
    if dt is D.float64:
        return 1
    return 0 if dt.category == 2 else 2


def _p2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


# ---- launching -----------------------------------------------------------------------------------

class _Plan:
    __slots__ = ("fn", "vals", "addr", "arr", "threads", "shared", "name")

    def launch(self, grid, index: int) -> None:
        from .driver import check, driver
        from .stream import current_stream
        check(driver().cuLaunchKernel(self.fn.handle, grid[0], grid[1] if len(grid) > 1 else 1, 1, self.threads,
                                      1, 1, self.shared, current_stream(index).handle, self.addr, 0),
              f"cuLaunchKernel({self.name})")


_plans = {}


def _make_plan(fn, sig, consts, index, num_warps) -> _Plan:
    from .compiler import compile_kernel
    from .launch import load_module
    c = compile_kernel(fn, sig, consts, index, num_warps)
    plan = _Plan()
    plan.fn = load_module(c.asm["cubin"], index, key=id(c)).function(c.metadata.name)
    plan.name = fn.__name__
    vals = [ctypes.c_void_p() if ty.startswith("*") else _CTY[ty]() for ty in sig.values()]
    vals += [ctypes.c_void_p(), ctypes.c_void_p()]  # Triton 3.6's global and profile scratch (unused)
    plan.vals = vals
    plan.arr = (ctypes.c_void_p * len(vals))(*[ctypes.addressof(v) for v in vals])
    plan.addr = ctypes.addressof(plan.arr)
    plan.threads = 32 * c.metadata.num_warps
    plan.shared = c.metadata.shared
    return plan


def _launch(fn, grid, args, consts, dev, num_warps=4):
    """args: (name, value, Triton type) in the kernel's order; tensors for pointer types."""
    index = dev.index or 0
    if dev.type == "cuda":
        key = (fn, tuple((name, ty) for name, _, ty in args), tuple(consts.items()), index, num_warps)
        plan = _plans.get(key)
        if plan is None:
            plan = _plans[key] = _make_plan(fn, {name: ty for name, _, ty in args}, consts, index, num_warps)
        for slot, (_, v, ty) in zip(plan.vals, args):
            slot.value = v.data_ptr() if ty[0] == "*" else v
        plan.launch(grid, index)
        return
    from .compiler import run
    run(fn, grid, args, dict(consts, INTERP=1) if "INTERP" in consts else consts, index, num_warps)


def _ptr(t):
    from .compiler import SIG
    return "*" + SIG[t._dtype.name]


# ---- layout ----------------------------------------------------------------------------------------

def _two(sizes, sts):
    """(inner size, outer stride, inner stride, two dims?) of a collapsed side, or None past two dims."""
    if len(sizes) > 2:
        return None
    if len(sizes) == 1:
        return 1, 0, sts[0][0], False
    return sizes[1], sts[0][0], sts[0][1], True


def _as_rows_cols(x, red):
    """(x', R, C, rows, cols): x' is x or a contiguous (kept..., reduced...) copy of it."""
    nd = len(x._shape)
    keep = [d for d in range(nd) if d not in red]
    red = list(red)
    R = math.prod(x._shape[d] for d in keep)
    C = math.prod(x._shape[d] for d in red)
    rows = _two(*_collapse([x._shape[d] for d in keep], [[x._stride[d] for d in keep]]))
    cols = _two(*_collapse([x._shape[d] for d in red], [[x._stride[d] for d in red]]))
    if rows is None or cols is None:
        perm = keep + red
        shape = tuple(x._shape[d] for d in perm)
        view = x._as_view(shape, tuple(x._stride[d] for d in perm), x._offset)
        x = copy_cast(_empty(shape, x._dtype, x.device), view)
        rows, cols = (1, 0, C, False), (1, 0, 1, False)
    return x, R, C, rows, cols


def _blocks(R, C, rows, cols, cap=1024):
    """BLOCK_R, BLOCK_C: wide tiles along whichever side is unit-stride in memory."""
    col_unit = cols[2] == 1 and not cols[3]
    row_unit = rows[2] == 1 and not rows[3]
    if row_unit and not col_unit and R > 1:
        br = min(_p2(R), 128)
        bc = max(1, min(_p2(C), cap // br))
    else:
        bc = min(_p2(max(C, 1)), cap)
        br = max(1, min(_p2(R), cap // bc))
    return br, bc


# ---- reductions -----------------------------------------------------------------------------------

def _reduce(x, op, dims, keepdim, out_dt, mean=False):
    """op 'sum'/'amax'/'amin' over `dims` (sorted tuple, None = all) into a new tensor of out_dt."""
    nd = len(x._shape)
    red = tuple(range(nd)) if dims is None else dims
    out = _empty(reduced_shape(x._shape, dims, keepdim), out_dt, x.device)
    if out.numel() == 0:
        return out
    ck = _ck(out_dt) if op == "sum" else _ck(x._dtype)
    if mean:
        ck = 1 if out_dt is D.float64 else 0
    x, R, C, rows, cols = _as_rows_cols(x, red)
    br, bc = _blocks(R, C, rows, cols)
    grid_r = (R + br - 1) // br
    nsplit = 1
    if C >= SPLIT_MIN_COLS and grid_r < SPLIT_TARGET_PROGRAMS // 4:
        nsplit = max(1, min(SPLIT_TARGET_PROGRAMS // grid_r, C // SPLIT_MIN_CHUNK))
    if nsplit > 1:
        chunk = -(-C // nsplit)
        chunk = -(-chunk // bc) * bc
        nsplit = -(-C // chunk)
        acc_dt = (D.float32, D.float64, D.int64)[ck]
        part = _empty((R, nsplit), acc_dt, x.device)
        _reduce_launch(part, x, op, R, C, rows, cols, chunk, nsplit, None, ck, br, bc)
        rows2, cols2 = (1, 0, nsplit, False), (1, 0, 1, False)
        br2, bc2 = _blocks(R, nsplit, rows2, cols2)
        _reduce_launch(out, part, op, R, nsplit, rows2, cols2, nsplit, 1, C if mean else None, ck, br2, bc2)
        return out
    _reduce_launch(out, x, op, R, C, rows, cols, C, 1, C if mean else None, ck, br, bc)
    return out


def _reduce_launch(out, x, op, R, C, rows, cols, chunk, nsplit, divisor, ck, br, bc):
    nblk = max(1, -(-min(chunk, max(C, 1)) // bc))
    dty = "fp64" if ck == 1 else "fp32"
    args = [("out_ptr", out, _ptr(out)), ("x_ptr", x, _ptr(x)), ("R", R, "i64"), ("C", C, "i64"),
            ("RIN", rows[0], "i64"), ("rs0", rows[1], "i64"), ("rs1", rows[2], "i64"),
            ("CIN", cols[0], "i64"), ("cs0", cols[1], "i64"), ("cs1", cols[2], "i64"),
            ("chunk", chunk, "i64"), ("nblk", nblk, "i64"), ("nsplit", nsplit, "i64"),
            ("divisor", float(divisor if divisor is not None else 1), dty)]
    consts = {"OP": _OP[op], "CK": ck, "ROW2": int(rows[3]), "COL2": int(cols[3]),
              "HAS_DIV": int(divisor is not None), "INTERP": 0, "BLOCK_R": br, "BLOCK_C": bc}
    _launch(_kernels().reduce_kernel, ((R + br - 1) // br, nsplit), args, consts, x._storage.device)


def sum_cuda(self, dim=None, keepdim=False, dtype=None):
    out_dt = sum_dtype(self, dtype)
    dims = None if dim is None else reduce_dims("sum", dim, len(self._shape))
    return _reduce(self, "sum", dims, keepdim, out_dt)


def mean_cuda(self, dim=None, keepdim=False, dtype=None):
    out_dt = mean_dtype("mean", self, dtype)
    dims = None if dim is None else reduce_dims("mean", dim, len(self._shape))
    return _reduce(self, "sum", dims, keepdim, out_dt, mean=True)


def _amax(name):
    def kernel(self, dim=(), keepdim=False):
        dims = reduce_dims(name, dim, len(self._shape))
        if self.numel() == 0:
            check_nonempty(name, self._shape, dims)
        return _reduce(self, name, dims, keepdim, self._dtype)
    kernel.__name__ = name + "_cuda"
    return kernel


amax_cuda = _amax("amax")
amin_cuda = _amax("amin")


def _argmax(name, is_min):
    def kernel(self, dim=None, keepdim=False):
        nd = len(self._shape)
        d = None if dim is None else one_dim(name, dim, nd)
        if self._dtype is D.bool:
            raise RuntimeError(f"{name}(): does not support bool input; convert it first, e.g. x.to(ember.uint8)")
        if d is not None and nd and self._shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
        if (d is None or nd == 0) and self.numel() == 0:
            raise IndexError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
        dims = None if (d is None or nd == 0) else (d,)
        out = _empty(reduced_shape(self._shape, dims, keepdim), D.int64, self.device)
        if out.numel() == 0:
            return out
        red = tuple(range(nd)) if dims is None else dims
        x, R, C, rows, cols = _as_rows_cols(self, red)
        br, bc = _blocks(R, C, rows, cols)
        nblk = -(-C // bc)
        args = [("out_ptr", out, "*i64"), ("x_ptr", x, _ptr(x)), ("R", R, "i64"), ("C", C, "i64"),
                ("RIN", rows[0], "i64"), ("rs0", rows[1], "i64"), ("rs1", rows[2], "i64"),
                ("CIN", cols[0], "i64"), ("cs0", cols[1], "i64"), ("cs1", cols[2], "i64"), ("nblk", nblk, "i64")]
        consts = {"IS_MIN": int(is_min), "CK": _ck(self._dtype), "ROW2": int(rows[3]), "COL2": int(cols[3]),
                  "INTERP": 0, "BLOCK_R": br, "BLOCK_C": bc}
        _launch(_kernels().arg_kernel, ((R + br - 1) // br,), args, consts, x._storage.device)
        return out
    kernel.__name__ = name + "_cuda"
    return kernel


argmax_cuda = _argmax("argmax", False)
argmin_cuda = _argmax("argmin", True)


# ---- softmax ---------------------------------------------------------------------------------------

def _softmax(name, log):
    def kernel(self, dim, dtype=None):
        out_dt = softmax_dtype(name, self, dtype)
        nd = len(self._shape)
        d = one_dim(name, dim, nd)
        out = _empty(self._shape, out_dt, self.device)
        if out.numel() == 0:
            return out
        if nd == 0:
            x, o, d, nd = self._as_view((1,), (1,), self._offset), out._as_view((1,), (1,), 0), 0, 1
        else:
            x, o = self, out
        keep = [k for k in range(nd) if k != d]
        ks = [x._shape[k] for k in keep]
        sizes, sts = _collapse(ks, [[x._stride[k] for k in keep], [o._stride[k] for k in keep]])
        if len(sizes) > 2:   # kept dims that don't collapse: read a contiguous copy (out is contiguous)
            x = copy_cast(_empty(x._shape, x._dtype, x.device), x)
            sizes, sts = _collapse(ks, [[x._stride[k] for k in keep], [o._stride[k] for k in keep]])
        R, C = math.prod(ks), x._shape[d]
        two = len(sizes) == 2
        rin = sizes[1] if two else 1
        rs0, rs1 = (sts[0][0], sts[0][1]) if two else (0, sts[0][0])
        os0, os1 = (sts[1][0], sts[1][1]) if two else (0, sts[1][0])
        cs, ocs = x._stride[d], o._stride[d]
        rows = (rin, rs0, rs1, two)
        cap = 8192 if cs == 1 else 1024
        br, bc = _blocks(R, C, rows, (1, 0, cs, False), cap=cap)
        nw = 4 if br * bc <= 1024 else (8 if br * bc <= 4096 else 16)
        args = [("out_ptr", o, _ptr(o)), ("x_ptr", x, _ptr(x)), ("R", R, "i64"), ("C", C, "i64"),
                ("RIN", rin, "i64"), ("rs0", rs0, "i64"), ("rs1", rs1, "i64"), ("cs", cs, "i64"),
                ("ors0", os0, "i64"), ("ors1", os1, "i64"), ("ocs", ocs, "i64"), ("nblk", -(-C // bc), "i64")]
        consts = {"LOG": int(log), "CK": 1 if out_dt is D.float64 else 0, "ROW2": int(two), "INTERP": 0,
                  "BLOCK_R": br, "BLOCK_C": bc}
        _launch(_kernels().softmax_kernel, ((R + br - 1) // br,), args, consts, x._storage.device, nw)
        return out
    kernel.__name__ = name + "_cuda"
    return kernel


softmax_cuda = _softmax("softmax", False)
log_softmax_cuda = _softmax("log_softmax", True)

KERNELS = {"sum": sum_cuda, "mean": mean_cuda, "amax": amax_cuda, "amin": amin_cuda, "argmax": argmax_cuda,
           "argmin": argmin_cuda, "softmax": softmax_cuda, "log_softmax": log_softmax_cuda}


def _register():
    for name, fn in KERNELS.items():
        OPS[name].register("cuda")(fn)


_register()
