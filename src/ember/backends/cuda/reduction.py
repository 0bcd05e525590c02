"""CUDA reductions on the Triton kernels of `kernels/reduction.py`: sum, mean, amax, amin, prod, nansum,
nanmean, count_nonzero, var, std, logsumexp over any set of dims (keepdim, dtype=; prod over one dim
or all), argmax/argmin (one dim or all), max/min over a dim (`_max_dim`/`_min_dim`: values and the
first index; a NaN wins at its first index), softmax/log_softmax over one dim; norm, all and any as
composites of these.

Every problem becomes rows x cols: the kept dims (in order) index the rows, the reduced dims (in
order) the columns. Each side is collapsed (`elementwise._collapse`); when it takes at most two
strided dims per side the kernel reads the input in place, otherwise the input is first copied
(`copy_cast`) into a contiguous tensor laid out as (kept..., reduced...). Short-and-wide reductions
are split over the columns (a partial pass then a second pass over the partials).
var/std take one pass (Welford's, in float32 or float64: per-lane (count, mean, M2), merged by Chan's
combine; split over the columns, the partials are such triples, merged the same way). logsumexp and
nanmean take two passes over the input, each a reduction of that kind: the row maxima then the sum
of exps shifted by them, the NaN-free sums then the counts of non-NaNs.

softmax/log_softmax (`Along`: rows x cols with the cols along the dim) take one pass, each element
loaded once into registers, when the row has unit stride and fits one tile (64 KiB of compute type:
16384 float32 columns), with 16-byte loads and stores where the alignment allows (`_vec`); longer or
strided rows take two (an online max and sum of exps per lane, then the writes).
CUDA tensors launch through cached plans (only argument values change); CPU tensors (the CI
tests, TRITON_INTERPRET=1) run the same kernels in Triton's interpreter through `compiler.run`.
"""
from __future__ import annotations

import math

from ...core import dtype as D
from ...dispatch import OPS
from ...ops.reduction import (check_nonempty, float_dtype, mean_dtype, nanmean_dtype, one_dim, reduce_dims,
                              reduced_shape, return_types, softmax_dtype, sum_dtype, var_args)
from .compiler import make_plan, next_power_of_2, pointer_arg, run
from .elementwise import _collapse, copy_cast
from .memory import new_tensor
from .opcodes import Compute, Merge, Post, Reduce

# Split a reduction over its columns when its rows give too few programs to fill the GPU and the columns are at
# least SPLIT_MIN_COLS, in chunks of at least SPLIT_MIN_CHUNK columns: partials, then a second pass. A bias
# gradient (the column sums of a (tokens, features) gradient) is the common case: 8192 x 1024 made 8 programs
# that each walked 8192 rows (216 us on an H100 against torch's 20), split it makes 128 of 512 rows.
SPLIT_MIN_COLS = 2048
SPLIT_TARGET_PROGRAMS = 512
SPLIT_MIN_CHUNK = 512


def _kernels():
    from .kernels import reduction as K
    return K


def _ck(dt) -> Compute:
    """The accumulation type of a reduction into dt: F32, F64 for float64, I64 for ints and bool."""
    if dt is D.float64:
        return Compute.F64
    return Compute.F32 if dt.is_floating_point else Compute.I64


# ---- launching -----------------------------------------------------------------------------------

_plans = {}
_last = [0, None]   # launches so far, and the last CUDA launch's (plan, grid, args): `_reduce` memoises it


def _launch(fn, grid, args, consts, dev, num_warps=4):
    """args: (name, value, Triton type) in the kernel's order; tensors for pointer types. On CUDA
    through a cached `launch.Plan` (as `compiler.run`, but remembering the launch for `_reduce`)."""
    index = dev.index or 0
    if dev.type == "cuda":
        key = (fn, tuple((name, ty) for name, _, ty in args), tuple(consts.items()), index, num_warps)
        plan = _plans.get(key)
        if plan is None:
            plan = _plans[key] = make_plan(fn, {name: ty for name, _, ty in args}, consts, index, num_warps)
        for slot, (_, v, ty) in zip(plan.vals, args):
            slot.value = v.data_ptr() if ty[0] == "*" else v
        plan(*grid)
        _last[0] += 1
        _last[1] = (plan, grid, args)
        return
    run(fn, grid, args, consts, index, num_warps)


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
        x = copy_cast(new_tensor(shape, x._dtype, x.device), view)
        rows, cols = (1, 0, C, False), (1, 0, 1, False)
    return x, R, C, rows, cols


def _blocks(R, C, rows, cols, cap=1024):
    """BLOCK_R, BLOCK_C: wide tiles along whichever side is unit-stride in memory."""
    col_unit = cols[2] == 1 and not cols[3]
    row_unit = rows[2] == 1 and not rows[3]
    if row_unit and not col_unit and R > 1:
        br = min(next_power_of_2(R), 128)
        bc = max(1, min(next_power_of_2(C), cap // br))
    else:
        bc = min(next_power_of_2(C), cap)
        br = max(1, min(next_power_of_2(R), cap // bc))
    return br, bc


# ---- reductions -----------------------------------------------------------------------------------

_OP = {"sum": Reduce.SUM, "amax": Reduce.AMAX, "amin": Reduce.AMIN, "prod": Reduce.PROD, "nansum": Reduce.NANSUM,
       "count_nonzero": Reduce.COUNT_NONZERO, "count_nonnan": Reduce.COUNT_NONNAN, "exp_sum": Reduce.EXP_SUM}
_WELFORD = {"welford": Merge.VALUES, "welford_merge": Merge.PARTIALS}    # welford_kernel's MERGE
_PARTIAL_OP = {"amax": "amax", "amin": "amin", "prod": "prod",   # how split partials combine; else summed
               "welford": "welford_merge"}
_POST = {None: Post.NONE, "sqrt": Post.SQRT, "log_add": Post.LOG_ADD, "div_into": Post.DIV_INTO,
         "welford_parts": Post.WELFORD_PARTS}


def _layout(x, dims):
    """`_as_rows_cols` over `dims` (sorted tuple, None = all)."""
    return _as_rows_cols(x, tuple(range(len(x._shape))) if dims is None else dims)


def _acc_dtype(ck):
    return (D.float32, D.float64, D.int64)[ck]


def _run(out, lay, op, ck, divisor=None, centre=None, post=None):
    """out (R elements, contiguous) = `op` over the columns of each row of `lay` (from `_layout`),
    accumulating in `ck`, divided by `divisor`, then `post`; `centre` is the per-row tensor of
    exp_sum/log_add/div_into. "welford" gives M2 / divisor (var; post "sqrt": std). Short-and-wide
    problems are split over the columns (Welford's partials: (count, mean, M2) planes)."""
    x, R, C, rows, cols = lay
    br, bc = _blocks(R, C, rows, cols)
    grid_r = (R + br - 1) // br
    nsplit = 1
    if C >= SPLIT_MIN_COLS and grid_r < SPLIT_TARGET_PROGRAMS // 4:
        nsplit = max(1, min(SPLIT_TARGET_PROGRAMS // grid_r, C // SPLIT_MIN_CHUNK))
    if nsplit > 1:
        chunk = -(-C // nsplit)
        chunk = -(-chunk // bc) * bc
        nsplit = -(-C // chunk)
        welford = op == "welford"
        part = new_tensor((3 if welford else 1, R, nsplit), _acc_dtype(ck), x.device)
        _reduce_launch(part, x, op, R, C, rows, cols, chunk, nsplit, None, ck, br, bc, centre,
                       "welford_parts" if welford else None)
        rows2, cols2 = (1, 0, nsplit, False), (1, 0, 1, False)
        br2, bc2 = _blocks(R, nsplit, rows2, cols2)
        _reduce_launch(out, part, _PARTIAL_OP.get(op, "sum"), R, nsplit, rows2, cols2, nsplit, 1, divisor, ck,
                       br2, bc2, centre, post)
        return out
    _reduce_launch(out, x, op, R, C, rows, cols, C, 1, divisor, ck, br, bc, centre, post)
    return out


def _reduce_launch(out, x, op, R, C, rows, cols, chunk, nsplit, divisor, ck, br, bc, centre, post):
    nblk = max(1, -(-min(chunk, max(C, 1)) // bc))
    dty = "fp64" if ck == Compute.F64 else "fp32"
    welford = op in _WELFORD
    c = out if centre is None else centre
    args = ([pointer_arg("out_ptr", out), pointer_arg("x_ptr", x)] + ([] if welford else [pointer_arg("c_ptr", c)])
            + [("R", R, "i64"), ("C", C, "i64"), ("RIN", rows[0], "i64"), ("rs0", rows[1], "i64"),
               ("rs1", rows[2], "i64"), ("CIN", cols[0], "i64"), ("cs0", cols[1], "i64"), ("cs1", cols[2], "i64"),
               ("chunk", chunk, "i64"), ("nblk", nblk, "i64"), ("nsplit", nsplit, "i64"),
               ("divisor", float(divisor if divisor is not None else 1), dty)])
    consts = {"CK": ck, "POST": _POST[post], "ROW2": int(rows[3]), "COL2": int(cols[3]), "INTERP": 0,
              "BLOCK_R": br, "BLOCK_C": bc}
    if welford:
        fn, consts = _kernels().welford_kernel, dict(MERGE=_WELFORD[op], **consts)
    else:
        fn, consts = _kernels().reduce_kernel, dict(OP=_OP[op], HAS_DIV=int(divisor is not None), **consts)
    _launch(fn, ((R + br - 1) // br, nsplit), args, consts, x._storage.device)


# A reduction that took one launch on x in place is remembered by what decides its launch (op, x's
# dtype and geometry, dims, output and accumulation dtypes, device): the next such call writes x's and the output's addresses and the
# same scalars into the plan and launches, skipping the layout, tiling and argument work.
_memo = {}
_MEMO_MAX = 4096


def _reduce(x, op, dims, keepdim, out_dt, ck):
    """`op` over `dims` (sorted tuple, None = all) into a new tensor of out_dt."""
    dev = x._storage.device
    key = (op, x._dtype, x._shape, x._stride, dims, keepdim, out_dt, ck, id(dev))     # devices are interned
    m = _memo.get(key)
    if m is not None:
        shape, plan, grid, scalars, ptrs = m
        out = new_tensor(shape, out_dt, dev)
        v = plan.vals
        for slot, val in scalars:
            v[slot].value = val
        po, px = out.data_ptr(), x.data_ptr()
        for slot, is_x in ptrs:
            v[slot].value = px if is_x else po
        plan(*grid)
        return out
    out = new_tensor(reduced_shape(x._shape, dims, keepdim), out_dt, x.device)
    if out.numel() == 0:
        return out
    lay = _layout(x, dims)
    n0 = _last[0]
    _run(out, lay, op, ck)
    if dev.type == "cuda" and _last[0] == n0 + 1 and lay[0] is x:
        plan, grid, args = _last[1]
        if all(a[1] is x or a[1] is out for a in args if a[2][0] == "*"):
            if len(_memo) >= _MEMO_MAX:
                _memo.clear()
            _memo[key] = (out._shape, plan, grid, [(i, a[1]) for i, a in enumerate(args) if a[2][0] != "*"],
                          [(i, a[1] is x) for i, a in enumerate(args) if a[2][0] == "*"])
    return out


def _float_ck(dt) -> Compute:
    """float32 accumulation, or float64 for float64 results."""
    return Compute.F64 if dt is D.float64 else Compute.F32


def sum_cuda(self, dim=None, keepdim=False, dtype=None):
    out_dt = sum_dtype(self, dtype)
    dims = None if dim is None else reduce_dims("sum", dim, len(self._shape))
    return _reduce(self, "sum", dims, keepdim, out_dt, _ck(out_dt))


def mean_cuda(self, dim=None, keepdim=False, dtype=None):
    out_dt = mean_dtype("mean", self, dtype)
    dims = None if dim is None else reduce_dims("mean", dim, len(self._shape))
    out = new_tensor(reduced_shape(self._shape, dims, keepdim), out_dt, self.device)
    if out.numel() == 0:
        return out
    lay = _layout(self, dims)
    return _run(out, lay, "sum", _float_ck(out_dt), divisor=lay[2])


def _amax(name):
    def kernel(self, dim=(), keepdim=False):
        dims = reduce_dims(name, dim, len(self._shape))
        if self.numel() == 0:
            check_nonempty(name, self._shape, dims)
        return _reduce(self, name, dims, keepdim, self._dtype, _ck(self._dtype))
    kernel.__name__ = name + "_cuda"
    return kernel


amax_cuda = _amax("amax")
amin_cuda = _amax("amin")


def prod_cuda(self, dim=None, keepdim=False, dtype=None):
    out_dt = sum_dtype(self, dtype)
    nd = len(self._shape)
    dims = None
    if dim is not None:
        d = one_dim("prod", dim, nd)
        dims = (d,) if nd else None
    return _reduce(self, "prod", dims, keepdim, out_dt, _ck(out_dt))


def nansum_cuda(self, dim=None, keepdim=False, dtype=None):
    out_dt = sum_dtype(self, dtype)
    dims = None if dim is None else reduce_dims("nansum", dim, len(self._shape))
    return _reduce(self, "nansum", dims, keepdim, out_dt, _ck(out_dt))


def count_nonzero_cuda(self, dim=None):
    dims = None if dim is None else reduce_dims("count_nonzero", dim, len(self._shape))
    return _reduce(self, "count_nonzero", dims, False, D.int64, 2)


def nanmean_cuda(self, dim=None, keepdim=False, dtype=None):
    """The NaN-free sum (pass 1), then the count of non-NaNs that divides it (pass 2)."""
    out_dt = nanmean_dtype(self, dtype)
    dims = None if dim is None else reduce_dims("nanmean", dim, len(self._shape))
    out = new_tensor(reduced_shape(self._shape, dims, keepdim), out_dt, self.device)
    if out.numel() == 0:
        return out
    lay = _layout(self, dims)
    ck = _float_ck(out_dt)
    total = _run(new_tensor((lay[1],), _acc_dtype(ck), self.device), lay, "nansum", ck)
    return _run(out, lay, "count_nonnan", Compute.I64, centre=total, post="div_into")


def _var(name, take_sqrt):
    def kernel(self, dim=None, unbiased=None, keepdim=False, correction=None):
        """One Welford pass in float32 (float64 for float64): M2 / max(n - correction, 0), NaN for 0 / 0."""
        dim, corr = var_args(name, self, dim, unbiased, correction)
        dims = None if dim is None else reduce_dims(name, dim, len(self._shape))
        out = new_tensor(reduced_shape(self._shape, dims, keepdim), self._dtype, self.device)
        if out.numel() == 0:
            return out
        lay = _layout(self, dims)
        return _run(out, lay, "welford", _float_ck(self._dtype), divisor=max(lay[2] - corr, 0),
                    post="sqrt" if take_sqrt else None)
    kernel.__name__ = name + "_cuda"
    return kernel


var_cuda = _var("var", False)
std_cuda = _var("std", True)


def logsumexp_cuda(self, dim, keepdim=False):
    """The row max m (pass 1; 0 where not finite), then log(sum(exp(x - m))) + m (pass 2)."""
    out_dt = float_dtype(self)
    dims = reduce_dims("logsumexp", dim, len(self._shape))
    out = new_tensor(reduced_shape(self._shape, dims, keepdim), out_dt, self.device)
    if out.numel() == 0:
        return out
    lay = _layout(self, dims)
    ck = _float_ck(out_dt)
    m = _run(new_tensor((lay[1],), _acc_dtype(ck), self.device), lay, "amax", _ck(self._dtype))
    return _run(out, lay, "exp_sum", ck, centre=m, post="log_add")


def _arg_launch(out, vals, x, dims, is_min):
    """out (int64) = the first index of the max (min) of each row of x over `dims`; vals = the max (min)."""
    x, R, C, rows, cols = _layout(x, dims)
    br, bc = _blocks(R, C, rows, cols)
    v = out if vals is None else vals
    args = [("out_ptr", out, "*i64"), pointer_arg("val_ptr", v), pointer_arg("x_ptr", x), ("R", R, "i64"),
            ("C", C, "i64"), ("RIN", rows[0], "i64"), ("rs0", rows[1], "i64"), ("rs1", rows[2], "i64"),
            ("CIN", cols[0], "i64"), ("cs0", cols[1], "i64"), ("cs1", cols[2], "i64"), ("nblk", -(-C // bc), "i64")]
    consts = {"IS_MIN": int(is_min), "CK": _ck(x._dtype), "ROW2": int(rows[3]), "COL2": int(cols[3]),
              "WRITE_VAL": int(vals is not None), "INTERP": 0, "BLOCK_R": br, "BLOCK_C": bc}
    _launch(_kernels().arg_kernel, ((R + br - 1) // br,), args, consts, x._storage.device)


def _argmax(name, is_min):
    def kernel(self, dim=None, keepdim=False):
        nd = len(self._shape)
        # the meta (ops.reduction.check_arg_extremum) refused bool and empty reductions
        d = None if dim is None else one_dim(name, dim, nd)
        dims = None if (d is None or nd == 0) else (d,)
        out = new_tensor(reduced_shape(self._shape, dims, keepdim), D.int64, self.device)
        if out.numel():
            _arg_launch(out, None, self, dims, is_min)
        return out
    kernel.__name__ = name + "_cuda"
    return kernel


argmax_cuda = _argmax("argmax", False)
argmin_cuda = _argmax("argmin", True)


def _max_dim(name, is_min, result):
    def kernel(self, dim, keepdim=False):
        """(values, indices) over one dim: the first index of the max (min); a NaN wins, at its first index."""
        nd = len(self._shape)
        d = one_dim(name, dim, nd)   # the meta refused an empty reduction dim
        dims = (d,) if nd else None
        shape = reduced_shape(self._shape, dims, keepdim)
        vals, idx = new_tensor(shape, self._dtype, self.device), new_tensor(shape, D.int64, self.device)
        if idx.numel():
            _arg_launch(idx, vals, self, dims, is_min)
        return result(vals, idx)
    kernel.__name__ = f"_{name}_dim_cuda"
    return kernel


max_dim_cuda = _max_dim("max", False, return_types.max)
min_dim_cuda = _max_dim("min", True, return_types.min)


# ---- ops along one dim (softmax here, the scans in scan.py) -------------------------------------------

ONE_PASS_MAX_BYTES = 65536   # (log_)softmax in one pass when a row's compute-type tile is at most this big


class Along:
    """x and a new contiguous `o` of the same shape as rows x cols, the cols running along dim d: row r
    starts at `(r // rin) * rs[0] + (r % rin) * rs[1]` in x (`os` in o), column c at `c * cs` (`ocs`).
    Kept dims that don't collapse to two read a contiguous copy of x. A 0-d x is one row of one column."""
    __slots__ = ("x", "o", "R", "C", "rin", "rs", "os", "cs", "ocs", "two")

    def __init__(self, x, o, d):
        if not x._shape:
            x, o, d = x._as_view((1,), (1,), x._offset), o._as_view((1,), (1,), o._offset), 0
        keep = [k for k in range(len(x._shape)) if k != d]
        ks = [x._shape[k] for k in keep]
        sizes, sts = _collapse(ks, [[x._stride[k] for k in keep], [o._stride[k] for k in keep]])
        if len(sizes) > 2:
            x = copy_cast(new_tensor(x._shape, x._dtype, x.device), x)
            sizes, sts = _collapse(ks, [[x._stride[k] for k in keep], [o._stride[k] for k in keep]])
        self.x, self.o, self.R, self.C = x, o, math.prod(ks), x._shape[d]
        self.two = len(sizes) == 2
        self.rin = sizes[1] if self.two else 1
        self.rs = (sts[0][0], sts[0][1]) if self.two else (0, sts[0][0])
        self.os = (sts[1][0], sts[1][1]) if self.two else (0, sts[1][0])
        self.cs = x._stride[d] if self.C > 1 else 1
        self.ocs = o._stride[d] if self.C > 1 else 1

    def row_args(self):
        return [("R", self.R, "i64"), ("C", self.C, "i64"), ("RIN", self.rin, "i64"), ("rs0", self.rs[0], "i64"),
                ("rs1", self.rs[1], "i64")]


def _vec(a: Along) -> tuple:
    """(VEC, XALIGN, OALIGN) for the one-pass softmax: the most elements per 16-byte access for which C is
    a multiple and every row of x and o starts aligned to `VEC * itemsize` bytes (16 at most)."""
    v = 16 // min(a.x._dtype.itemsize, a.o._dtype.itemsize)
    while v > 1:
        ok = a.C % v == 0
        for t, rs in ((a.x, a.rs), (a.o, a.os)):
            al = min(16, v * t._dtype.itemsize)
            ok = ok and t.data_ptr() % al == 0 and all((s * t._dtype.itemsize) % al == 0 for s in rs)
        if ok:
            break
        v //= 2
    return v, min(16, v * a.x._dtype.itemsize), min(16, v * a.o._dtype.itemsize)


SOFTMAX_MAX_WARPS = 32   # one-pass softmax: 16 elements a thread up to 32 warps (16K-column fp32 rows: 1.25x torch on
                         # the H200 at 32, 0.89x at 16; benchmarks/cuda_softmax_sweep.py)


def _softmax(name, log):
    def kernel(self, dim, dtype=None):
        """One pass (each element read once) for unit-stride rows up to ONE_PASS_MAX_BYTES of compute type;
        else two: per-lane online max and sum of exps, then the writes."""
        out_dt = softmax_dtype(name, self, dtype)
        d = one_dim(name, dim, len(self._shape))
        out = new_tensor(self._shape, out_dt, self.device)
        if out.numel() == 0:
            return out
        a = Along(self, out, d)
        x, o, R, C = a.x, a.o, a.R, a.C
        ck = _float_ck(out_dt)
        rows = (a.rin, a.rs[0], a.rs[1], a.two)
        if a.cs == 1 and a.ocs == 1 and next_power_of_2(C) * (8 if ck == Compute.F64 else 4) <= ONE_PASS_MAX_BYTES:
            bc = next_power_of_2(C)
            br = max(1, min(next_power_of_2(R), 2048 // bc))
            nw = max(4, min(SOFTMAX_MAX_WARPS, br * bc // 512))
            vec, xal, oal = _vec(a)
            args = ([pointer_arg("out_ptr", o), pointer_arg("x_ptr", x)] + a.row_args()
                    + [("ors0", a.os[0], "i64"), ("ors1", a.os[1], "i64")])
            consts = {"LOG": int(log), "CK": ck, "ROW2": int(a.two), "VEC": vec, "XALIGN": xal, "OALIGN": oal,
                      "BLOCK_R": br, "BLOCK_C": bc}
            _launch(_kernels().softmax_row_kernel, ((R + br - 1) // br,), args, consts, x._storage.device, nw)
            return out
        cap = 8192 if a.cs == 1 else 1024
        br, bc = _blocks(R, C, rows, (1, 0, a.cs, False), cap=cap)
        nw = 4 if br * bc <= 1024 else (8 if br * bc <= 4096 else 16)
        args = ([pointer_arg("out_ptr", o), pointer_arg("x_ptr", x)] + a.row_args()
                + [("cs", a.cs, "i64"), ("ors0", a.os[0], "i64"), ("ors1", a.os[1], "i64"), ("ocs", a.ocs, "i64"),
                   ("nblk", -(-C // bc), "i64")])
        consts = {"LOG": int(log), "CK": ck, "ROW2": int(a.two), "INTERP": 0, "BLOCK_R": br, "BLOCK_C": bc}
        _launch(_kernels().softmax_kernel, ((R + br - 1) // br,), args, consts, x._storage.device, nw)
        return out
    kernel.__name__ = name + "_cuda"
    return kernel


softmax_cuda = _softmax("softmax", False)
log_softmax_cuda = _softmax("log_softmax", True)


# ---- norm, all / any: composites of the reductions above ------------------------------------

INF = float("inf")


def norm_cuda(self, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector norms composed of CUDA kernels (abs, pow, sum, amax, sqrt)."""
    x = self if dtype is None else self.to(dtype)
    dims = () if dim is None else dim
    if x._dtype in (D.float16, D.bfloat16) and (p is None or p == "fro" or (isinstance(p, (int, float))
                                                                             and p not in (0, 1) and abs(p) != INF)):
        # powers of 16-bit values leave their range (300 ** 2 is inf in float16): in float32, as torch's opmath
        return norm_cuda(x.float(), p, dim, keepdim).to(x._dtype)
    if p is None or p == "fro" or p == 2:
        return (x * x).sum(dims, keepdim).sqrt()
    if p == 1:
        return x.abs().sum(dims, keepdim)
    if p == float("inf"):
        return x.abs().amax(dims, keepdim)
    if p == float("-inf"):
        return x.abs().amin(dims, keepdim)
    if isinstance(p, (int, float)) and p == 0:       # the count of nonzeros, in x's (float) dtype
        return (x != 0).sum(dims, keepdim).to(x.dtype)
    if isinstance(p, (int, float)):
        return (x.abs() ** p).sum(dims, keepdim) ** (1.0 / p)
    raise NotImplementedError(f"norm on CUDA: p={p!r} is not implemented yet")


def _all_any(is_all):
    def kernel(self, dim=None, keepdim=False):
        dims = () if dim is None else dim
        if is_all:
            r = (self == 0).sum(dims, keepdim) == 0
        else:
            r = (self != 0).sum(dims, keepdim) > 0
        return r.to(D.uint8) if self._dtype is D.uint8 else r     # uint8 in, uint8 out (as torch)
    return kernel


KERNELS = {"sum": sum_cuda, "mean": mean_cuda, "amax": amax_cuda, "amin": amin_cuda, "prod": prod_cuda,
           "nansum": nansum_cuda, "nanmean": nanmean_cuda, "count_nonzero": count_nonzero_cuda, "var": var_cuda,
           "std": std_cuda, "logsumexp": logsumexp_cuda, "argmax": argmax_cuda, "argmin": argmin_cuda,
           "_max_dim": max_dim_cuda, "_min_dim": min_dim_cuda, "softmax": softmax_cuda,
           "log_softmax": log_softmax_cuda, "norm": norm_cuda, "all": _all_any(True), "any": _all_any(False)}


def _register():
    for name, fn in KERNELS.items():
        OPS[name].register("cuda")(fn)


_register()
