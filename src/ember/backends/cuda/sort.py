"""CUDA sorting and selection on the Triton kernels of `kernels/sort.py`: sort, argsort, topk,
kthvalue (any dim, every dtype the CPU kernels take) and unique (flattened, or of slices along a dim).

Like the CPU kernels, sorting is always stable (`stable=` is accepted either way), equal elements
keep input order when descending too, and NaN sorts as the largest value. A sort problem is rows x
columns: the dims before the sorted one index `a`, those after it `b`, and the input is read in
place when each side collapses to one strided dim (else from a contiguous copy). Rows of at most
MAX_TILE elements are sorted by one program in registers (several short rows per program); longer
rows are sorted in RUN-element runs, then merged pairwise (log2(N / RUN) passes over int64 key and
int32 column scratch; RUN < MAX_TILE keeps the kernels compiled for them few and quick to build). topk and kthvalue sort the whole row and keep the wanted positions.

unique(dim=None) sorts the flattened tensor; unique(dim=d) sorts the slices along d
lexicographically by one stable sort per slice element (last element first). Its output size is
read back to the host once (one synchronisation, as in torch). `sorted=False` still sorts.
The ops' metas (ops/shape.py) have checked the arguments before a kernel runs.
"""
from __future__ import annotations

from math import prod

from ...core import dtype as D
from ...core.shape import normalize_dim
from ...dispatch import OPS
from ...ops.shape import kthvalue_result, kthvalue_shape, sort_result, topk_result, topk_shape
from .compiler import next_power_of_2, pointer_arg, run
from .elementwise import _collapse, copy_cast
from .memory import new_tensor
from .opcodes import SortKey

MAX_TILE = 4096          # longest row one program sorts in registers; longer rows are merge-sorted
RUN = 1024               # the sorted runs the merge passes start from
SHORT_TILE = 1024        # elements per program when several short rows share one
MERGE_BLOCK = 1024
UNIQUE_BLOCK = 1024
SCAN_BLOCK = 1024
MAX_LEN = 2 ** 31 - 1    # columns are int32 in the kernels


def _kernels():
    from .kernels import sort as K
    return K


def _kind(dt) -> int:
    """Key kind of kernels/sort.py's `_key`."""
    if dt is D.float64:
        return SortKey.F64
    if dt is D.int64:
        return SortKey.I64
    return SortKey.F32 if dt.is_floating_point else SortKey.I32


def _run(fn, grid, args, consts, dev, num_warps=4):
    run(fn, grid, args, consts, dev.index or 0, num_warps)


# ---- sorting rows --------------------------------------------------------------------------------

def _rows(x, d):
    """(x', A, N, B, sa, sb, sc): rows (a, b) of x' (x, or a contiguous copy when the dims before or
    after d don't collapse to one), element c of row (a, b) at a * sa + b * sb + c * sc."""
    shape, st = x._shape, x._stride
    if not shape:
        return x, 1, 1, 1, 0, 0, 0
    pre = _collapse(shape[:d], [list(st[:d])])
    post = _collapse(shape[d + 1:], [list(st[d + 1:])])
    if len(pre[0]) > 1 or len(post[0]) > 1:
        x = copy_cast(new_tensor(shape, x._dtype, x.device), x)
        return _rows(x, d)
    return x, prod(shape[:d]), shape[d], prod(shape[d + 1:]), pre[1][0][0], post[1][0][0], st[d]


def _sort_rows(geo, desc, K, c0, vals, idx, perm=None):
    """Sorts every row of geo = _rows(...) (stable, NaN largest; descending keeps ties in input order)
    and writes the columns (and, when vals is given, the values) now at positions [c0, c0 + K) to
    the contiguous [A, K, B] tensors idx (int64) and vals. perm: read column c as perm[c] and
    report perm[column] (one row)."""
    x, A, N, B, sa, sb, sc = geo
    R = A * B
    if N > MAX_LEN:
        raise NotImplementedError(f"sorting on CUDA over rows longer than {MAX_LEN} elements is not implemented "
                                  f"(got {N})")
    K_ = _kernels()
    dev = x._storage.device
    ph = idx if perm is None else perm
    vh = idx if vals is None else vals
    geom = [("R", R, "i64"), ("N", N, "i64"), ("B", B, "i64"), ("sa", sa, "i64"), ("sb", sb, "i64"),
            ("sc", sc, "i64"), ("K", K, "i64"), ("c0", c0, "i64")]
    flags = {"KIND": _kind(x._dtype), "GATHER": int(perm is not None),
             "HAS_VALS": int(vals is not None)}

    def tile(key, kix, final, block, rows):
        ntiles = -(-N // block)
        args = [pointer_arg("x_ptr", x), ("perm_ptr", ph, "*i64"), pointer_arg("vals_ptr", vh),
                ("idx_ptr", idx, "*i64"), ("key_ptr", key, "*i64"), pointer_arg("kix_ptr", kix)] + geom + \
               [("ntiles", ntiles, "i64"), ("desc", int(bool(desc)), "i32")]
        consts = dict(flags, FINAL=int(final), ROWS=rows, BLOCK=block, LOGB=block.bit_length() - 1,
                      NDIM=(rows * block).bit_length() - 1)
        _run(K_.sort_tile_kernel, (-(-R // rows) * ntiles,), args, consts, dev, 4 if rows * block <= 1024 else 8)

    if N <= MAX_TILE:
        block = max(2, next_power_of_2(N))
        tile(idx, idx, True, block, min(next_power_of_2(R), max(1, SHORT_TILE // block)))
        return
    keys = [new_tensor((R * N,), D.int64, dev) for _ in range(2)]
    kixs = [new_tensor((R * N,), D.int32, dev) for _ in range(2)]
    tile(keys[0], kixs[0], False, RUN, 1)
    L, cur, nblk = RUN, 0, -(-N // MERGE_BLOCK)
    while L < N:
        final = 2 * L >= N
        ok, ox = (idx, idx) if final else (keys[1 - cur], kixs[1 - cur])
        args = [("key_ptr", keys[cur], "*i64"), ("kix_ptr", kixs[cur], "*i32"), ("okey_ptr", ok, "*i64"),
                pointer_arg("okix_ptr", ox), pointer_arg("x_ptr", x), ("perm_ptr", ph, "*i64"),
                pointer_arg("vals_ptr", vh), ("idx_ptr", idx, "*i64")] + geom[1:] + \
               [("L", L, "i64"), ("steps", L.bit_length(), "i64"), ("nblk", nblk, "i64")]
        consts = {"GATHER": flags["GATHER"], "HAS_VALS": flags["HAS_VALS"], "FINAL": int(final),
                  "BLOCK": MERGE_BLOCK}
        _run(K_.merge_kernel, (R * nblk,), args, consts, dev)
        L, cur = 2 * L, 1 - cur


def _select(self, d, desc, K, c0, out_shape, want_vals):
    """(values or None, indices) of the sorted positions [c0, c0 + K) along dim d, shaped out_shape."""
    idx = new_tensor(out_shape, D.int64, self.device)
    vals = new_tensor(out_shape, self._dtype, self.device) if want_vals else None
    if idx.numel():
        _sort_rows(_rows(self, d), desc, K, c0, vals, idx)
    return vals, idx


def sort_cuda(self, dim=-1, descending=False, stable=False):
    n = len(self._shape)
    d = normalize_dim(dim, n)
    return sort_result(*_select(self, d, descending, self._shape[d] if n else 1, 0, self._shape, True))


def argsort_cuda(self, dim=-1, descending=False, stable=False):
    n = len(self._shape)
    d = normalize_dim(dim, n)
    return _select(self, d, descending, self._shape[d] if n else 1, 0, self._shape, False)[1]


def topk_cuda(self, k, dim=-1, largest=True, sorted=True):
    d = normalize_dim(dim, len(self._shape))
    return topk_result(*_select(self, d, largest, k, 0, topk_shape(self._shape, k, d), True))


def kthvalue_cuda(self, k, dim=-1, keepdim=False):
    d = normalize_dim(dim, len(self._shape))
    return kthvalue_result(*_select(self, d, False, 1, k - 1, kthvalue_shape(self._shape, d, keepdim), True))


# ---- unique ----------------------------------------------------------------------------------------

def _contiguous(x):
    return x if x.is_contiguous() else copy_cast(new_tensor(x._shape, x._dtype, x.device), x)


def unique_cuda(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
    dev, dt = self.device, self._dtype
    if dim is None:
        M, S, PRE, POST = self.numel(), 1, 1, 1
        x = _contiguous(self)
        src = new_tensor((M,), dt, dev)
        order = new_tensor((M,), D.int64, dev)
        if M:
            _sort_rows((x, 1, M, 1, 0, 0, 1), False, M, 0, src, order)
        out_shape, inv_shape = (lambda g: (g,)), self._shape
    else:
        shape, st = self._shape, self._stride
        d = normalize_dim(dim, len(shape))
        M, PRE, POST = shape[d], prod(shape[:d]), prod(shape[d + 1:])
        S = PRE * POST
        moved = shape[d:d + 1] + shape[:d] + shape[d + 1:]
        src = _contiguous(self._as_view(moved, st[d:d + 1] + st[:d] + st[d + 1:], self._offset))
        order = None
        if M and not S:     # empty slices are all equal
            order = OPS["arange"].fn(M, dtype=D.int64, device=dev)
        elif M:             # lexicographic order of the slices: stable sorts by element S-1, ..., 0
            for s in reversed(range(S)):
                col = src._as_view((M,), (S,), src._offset + s)
                nxt = new_tensor((M,), D.int64, dev)
                _sort_rows((col, 1, M, 1, 0, 0, S), False, M, 0, None, nxt, order)
                order = nxt
        out_shape, inv_shape = (lambda g: shape[:d] + (g,) + shape[d + 1:]), (M,)
    if M == 0:
        res = [new_tensor(out_shape(0), dt, dev), new_tensor(inv_shape, D.int64, dev), new_tensor((0,), D.int64, dev)]
        return _pick(res, return_inverse, return_counts)
    K_ = _kernels()
    nb = -(-M // UNIQUE_BLOCK)
    cnt = new_tensor((nb,), D.int64, dev)
    off = new_tensor((nb + 1,), D.int64, dev)
    gather = int(dim is not None)
    kind = _kind(dt)
    base = [pointer_arg("src_ptr", src), ("order_ptr", order, "*i64")]
    _run(K_.unique_count_kernel, (nb,), base + [("cnt_ptr", cnt, "*i64"), ("M", M, "i64"), ("S", S, "i64")],
         {"KIND": kind, "GATHER": gather, "BLOCK": UNIQUE_BLOCK}, dev)
    _run(K_.unique_scan_kernel, (1,), [("cnt_ptr", cnt, "*i64"), ("off_ptr", off, "*i64"), ("nb", nb, "i64")],
         {"BLOCK": SCAN_BLOCK}, dev)
    G = off._as_view((), (), off._offset + nb).item()     # the one host synchronisation
    out = new_tensor(out_shape(G), dt, dev)
    inv = new_tensor(inv_shape, D.int64, dev) if return_inverse else cnt
    first = new_tensor((G,), D.int64, dev) if return_counts else cnt
    args = base + [("off_ptr", off, "*i64"), pointer_arg("out_ptr", out), ("inv_ptr", inv, "*i64"),
                   ("first_ptr", first, "*i64"), ("M", M, "i64"), ("S", S, "i64"), ("POST", POST, "i64"),
                   ("G", G, "i64")]
    _run(K_.unique_scatter_kernel, (nb,), args,
         {"KIND": kind, "GATHER": gather, "HAS_INV": int(return_inverse), "HAS_FIRST": int(return_counts),
          "BLOCK": UNIQUE_BLOCK}, dev)
    counts = None
    if return_counts:
        counts = new_tensor((G,), D.int64, dev)
        _run(K_.unique_counts_kernel, (-(-G // UNIQUE_BLOCK),),
             [("first_ptr", first, "*i64"), ("cnt_ptr", counts, "*i64"), ("G", G, "i64"), ("M", M, "i64")],
             {"BLOCK": UNIQUE_BLOCK}, dev)
    return _pick([out, inv, counts], return_inverse, return_counts)


def _pick(res, return_inverse, return_counts):
    out, inv, counts = res
    if not (return_inverse or return_counts):
        return out
    return (out,) + ((inv,) if return_inverse else ()) + ((counts,) if return_counts else ())


KERNELS = {"sort": sort_cuda, "argsort": argsort_cuda, "topk": topk_cuda, "kthvalue": kthvalue_cuda,
           "unique": unique_cuda}


def _register():
    for name, fn in KERNELS.items():
        OPS[name].register("cuda")(fn)


_register()
