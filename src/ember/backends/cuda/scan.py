"""CUDA scans along one dim on the Triton kernel of `kernels/scan.py`: cumsum and cumprod (dtype=),
logcumsumexp, cummax and cummin (values and indices, PyTorch's tie and NaN rules).

The input is laid out as rows x cols with the cols along the scanned dim (`reduction.Along`, which
reads a contiguous copy only when the other dims don't collapse to two); outputs are contiguous.
One program scans BLOCK_R whole rows, tile by tile with a carry. When the rows are few and long they
are split into chunks over several programs: one launch writes each chunk's total, a second scans
each chunk after combining the totals of the chunks before it. float16/bfloat16 accumulate in
float32, integer and bool sums/products in int64, as on the CPU.
"""
from __future__ import annotations

from ...core import dtype as D
from ...dispatch import OPS
from ...ops.reduction import one_dim, return_types, softmax_dtype, sum_dtype
from .memory import new_tensor
from .compiler import next_power_of_2, pointer_arg
from .opcodes import Scan, ScanPass
from .reduction import Along, _blocks, _ck, _float_ck, _launch

_OP = {"cumsum": Scan.CUMSUM, "cumprod": Scan.CUMPROD, "logcumsumexp": Scan.LOGCUMSUMEXP, "cummax": Scan.CUMMAX,
       "cummin": Scan.CUMMIN}
SPLIT_MIN_COLS = 8192        # split rows at least this long over several programs when the rows are few
SPLIT_TARGET_PROGRAMS = 512
SPLIT_MIN_CHUNK = 2048
SPLIT_MAX = 1024             # chunks a row (the carry into a chunk reduces the totals before it in one tile)
TILE = 1024                  # elements of a program's tile


def _cdiv(a, b):
    return -(-a // b)


def _scan(self, name, dim, out_dt, ck):
    """The scan `name` of self along dim into a new out_dt tensor (and int64 indices for cummax/cummin)."""
    d = one_dim(name, dim, len(self._shape))
    pairs = _OP[name] in (Scan.CUMMAX, Scan.CUMMIN)     # (value, index) pairs
    out = new_tensor(self._shape, out_dt, self.device)
    idx = new_tensor(self._shape, D.int64, self.device) if pairs else None
    if out.numel() == 0:
        return out, idx
    a = Along(self, out, d)
    x, R, C = a.x, a.R, a.C
    br, bc = _blocks(R, C, (a.rin, a.rs[0], a.rs[1], a.two), (1, 0, a.cs, False), cap=TILE)
    grid_r = (R + br - 1) // br
    nsplit = 1
    if C >= SPLIT_MIN_COLS and grid_r < SPLIT_TARGET_PROGRAMS // 4:
        nsplit = max(1, min(SPLIT_MAX, SPLIT_TARGET_PROGRAMS // grid_r, C // SPLIT_MIN_CHUNK))
    chunk = _cdiv(_cdiv(C, nsplit), bc) * bc
    nsplit = _cdiv(C, chunk)
    i = out if idx is None else idx
    tv = ti = out
    if nsplit > 1:
        tv = new_tensor((R, nsplit), (D.float32, D.float64, D.int64)[ck], self.device)
        ti = new_tensor((R, nsplit), D.int64, self.device) if pairs else tv
    args = ([pointer_arg("out_ptr", a.o), pointer_arg("idx_ptr", i), pointer_arg("x_ptr", x), pointer_arg("tv_ptr", tv),
             pointer_arg("ti_ptr", ti)] + a.row_args()
            + [("cs", a.cs, "i64"), ("ors0", a.os[0], "i64"), ("ors1", a.os[1], "i64"), ("ocs", a.ocs, "i64"),
               ("chunk", chunk, "i64"), ("nblk", chunk // bc, "i64"), ("nsplit", nsplit, "i64")])
    consts = {"OP": _OP[name], "CK": ck, "MODE": ScanPass.WHOLE, "ROW2": int(a.two), "XUNIT": int(a.cs == 1),
              "OUNIT": int(a.ocs == 1), "RUNIT": int(R > 1 and not a.two and a.rs[1] == 1 and a.os[1] == 1),
              "INTERP": 0, "BLOCK_R": br, "BLOCK_C": bc, "BLOCK_S": next_power_of_2(nsplit)}
    K = _kernels()
    if nsplit > 1:
        _launch(K.scan_kernel, (grid_r, nsplit), args, dict(consts, MODE=ScanPass.TOTALS), x._storage.device)
        consts["MODE"] = ScanPass.CARRY_IN
    _launch(K.scan_kernel, (grid_r, nsplit), args, consts, x._storage.device)
    return out, idx


def _kernels():
    from .kernels import scan as K
    return K


def _cumsum(name):
    def kernel(self, dim, dtype=None):
        out_dt = sum_dtype(self, dtype)
        return _scan(self, name, dim, out_dt, _ck(out_dt))[0]
    kernel.__name__ = name + "_cuda"
    return kernel


cumsum_cuda = _cumsum("cumsum")
cumprod_cuda = _cumsum("cumprod")


def logcumsumexp_cuda(self, dim):
    out_dt = softmax_dtype("logcumsumexp", self, None)
    return _scan(self, "logcumsumexp", dim, out_dt, _float_ck(out_dt))[0]


def _cummax(name, result):
    def kernel(self, dim):
        return result(*_scan(self, name, dim, self._dtype, _ck(self._dtype)))
    kernel.__name__ = name + "_cuda"
    return kernel


cummax_cuda = _cummax("cummax", return_types.cummax)
cummin_cuda = _cummax("cummin", return_types.cummin)

KERNELS = {"cumsum": cumsum_cuda, "cumprod": cumprod_cuda, "logcumsumexp": logcumsumexp_cuda,
           "cummax": cummax_cuda, "cummin": cummin_cuda}


def _register():
    for name, fn in KERNELS.items():
        OPS[name].register("cuda")(fn)


_register()
