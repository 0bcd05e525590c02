"""CUDA reductions, softmax and scans (`backends/cuda/reduction.py`, `scan.py`) against torch CUDA
(`pytest -m cuda`)."""
import numpy as np
import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]

torch = pytest.importorskip("torch")
from helpers import DTYPES, E2T  # noqa: E402

import ember.backends.cuda.reduction  # noqa: E402,F401  (registers the kernels)

TOL = {"float32": (1e-4, 1e-4), "float16": (4e-3, 4e-3), "bfloat16": (2e-2, 2e-2), "float64": (1e-9, 1e-9)}


def pair(shape, dtype, low=-3.0, high=3.0, seed=0, layout="contiguous", integral=False):
    """layout: 'contiguous', 'transposed' (last two dims swapped in memory) or 'sliced' (every other
    element of the last dim, from the second on: an odd element offset)."""
    rng = np.random.default_rng(seed)
    e_dt, t_dt = DTYPES[dtype]
    base = shape[:-2] + (shape[-1], shape[-2]) if layout == "transposed" else shape
    if layout == "sliced":
        base = shape[:-1] + (2 * shape[-1] + 1,)
    if dtype == "bool":
        a = rng.random(base) > 0.5
    elif e_dt.category == 1:
        a = rng.integers(int(low), int(high) + 1, size=base)
    else:
        a = rng.uniform(low, high, size=base)
        if integral:
            a = np.round(a)
    t = torch.tensor(a).to(t_dt)
    if dtype in ("float16", "bfloat16"):   # the same 16-bit values (torch rounds some float64s twice)
        a = t.float().numpy()
    t = t.cuda()
    e = ember.tensor(a, dtype=e_dt).cuda()
    if layout == "transposed":
        e, t = e.transpose(-1, -2), t.transpose(-1, -2)
    elif layout == "sliced":
        e, t = e[..., 1::2], t[..., 1::2]
    return e, t


def check(e, t, tol=None):
    assert e.device.type == "cuda"
    assert tuple(e.shape) == tuple(t.shape), (e.shape, t.shape)
    assert E2T[e.dtype] == t.dtype, (e.dtype, t.dtype)
    ea = e.cpu()
    if t.dtype.is_floating_point:
        r, a = tol or TOL[str(t.dtype).split(".")[-1]]
        np.testing.assert_allclose(ea.double().numpy(), t.double().cpu().numpy(), rtol=r, atol=a, equal_nan=True)
    else:
        np.testing.assert_array_equal(ea.numpy(), t.cpu().numpy())


DIMS = [None, 0, -1, (0, 2), (1,)]


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64"])
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_reduce(name, dtype, dim, keepdim, layout):
    if name == "mean" and dtype == "int64":
        return
    e, t = pair((7, 33, 19), dtype, layout=layout)
    ef, tf = getattr(ember, name), getattr(torch, name)
    if dim is None:
        if name in ("amax", "amin"):
            check(ef(e, (), keepdim), tf(t, (), keepdim))
        else:
            check(ef(e), tf(t))
    else:
        check(ef(e, dim, keepdim), tf(t, dim, keepdim))


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("dim", [None, 0, 1])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_reduce_257x1031(name, dtype, dim, layout):
    e, t = pair((257, 1031), dtype, layout=layout)
    tol = (1e-4, 1e-3) if dtype == "float32" else None
    if dim is None:
        check(getattr(ember, name)(e), getattr(torch, name)(t), tol)
    else:
        check(getattr(ember, name)(e, dim), getattr(torch, name)(t, dim), tol)


def test_sum_dtype_bool_int_and_empty():
    e, t = pair((40, 50), "int64", low=-100, high=100)
    check(ember.sum(e, 1, dtype=ember.float64), torch.sum(t, 1, dtype=torch.float64))
    check(ember.sum(e.to(ember.int32), 0), torch.sum(t.to(torch.int32), 0))
    check(ember.sum(e > 0, 1), torch.sum(t > 0, 1))
    f, tf = pair((40, 50), "float16")
    check(ember.mean(f, 1, dtype=ember.float32), torch.mean(tf, 1, dtype=torch.float32))
    z = ember.zeros(0, 3).cuda()
    assert ember.sum(z).item() == 0 and np.isnan(ember.mean(z).item())
    with pytest.raises(RuntimeError):
        ember.amax(z)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64"])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_argmax(name, dtype, dim, keepdim, layout):
    e, t = pair((9, 257, 31), dtype, low=-50, high=50, layout=layout, integral=True)   # ties: first index wins
    check(getattr(ember, name)(e, dim, keepdim), getattr(torch, name)(t, dim, keepdim))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_softmax(name, dtype, dim, layout):
    e, t = pair((7, 33, 19), dtype, low=-10, high=10, layout=layout)
    check(getattr(ember, name)(e, dim), getattr(torch, name)(t, dim))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_257x1031(name, dim):
    e, t = pair((257, 1031), "bfloat16", low=-20, high=20)
    check(getattr(ember, name)(e, dim), getattr(torch, name)(t, dim))
    check(getattr(ember, name)(e, dim, ember.float32), getattr(torch, name)(t, dim, dtype=torch.float32))
    e, t = pair((257, 20000), "float32", low=-20, high=20)   # rows longer than one tile: two passes
    check(getattr(ember, name)(e, 1), getattr(torch, name)(t, 1))


def test_large_rows_sum_and_softmax_4096():
    e, t = pair((4096, 4096), "float32")
    check(ember.sum(e, 1), torch.sum(t, 1), (1e-4, 1e-3))
    check(ember.sum(e, 0), torch.sum(t, 0), (1e-4, 1e-3))
    check(ember.sum(e), torch.sum(t), (1e-4, 1e-1))        # split over the columns
    check(ember.mean(e), torch.mean(t), (1e-4, 1e-5))
    check(ember.amax(e), torch.amax(t))
    check(ember.softmax(e, 1), torch.softmax(t, 1), (1e-4, 1e-7))
    check(ember.log_softmax(e, 1), torch.log_softmax(t, 1))
    check(ember.softmax(e, 0), torch.softmax(t, 0), (1e-4, 1e-7))


def test_more_than_2_31_elements():
    """Index arithmetic past 2^31 elements: whole-tensor and per-row reductions, max with its index."""
    n = (1 << 31) + 1000
    x = ember.ones(n, dtype=ember.uint8, device="cuda")
    x[n - 1] = 7
    assert ember.sum(x).item() == n + 6
    assert ember.amax(x).item() == 7 and ember.argmax(x).item() == n - 1
    rows = x[: n - 1000].view(2, 1 << 30)          # the second row starts at element 2^30, ends at 2^31
    assert ember.sum(rows, 1).tolist() == [1 << 30, 1 << 30]
    assert ember.amax(rows, 1).tolist() == [1, 1]
    del x, rows


def ref16(fn, t, *args, **kw):
    """torch's result computed in float32 and rounded once to t's 16-bit dtype (what ember's kernels
    do: float32 accumulation). For ops where torch rounds intermediates to 16 bits (cumsum, the
    composite logsumexp, nanmean's sum, ...) this is the reference to compare with."""
    if t.dtype in (torch.float16, torch.bfloat16):
        return fn(t.float(), *args, **kw).to(t.dtype)
    return fn(t, *args, **kw)


def check_pair(e, t):
    """(values, indices) results: values as check(), indices exactly."""
    assert type(e).__name__ == type(t).__name__.split(".")[-1], (type(e), type(t))
    check(e.values, t.values)
    check(e.indices, t.indices)


# ---- prod, nansum, nanmean, count_nonzero, var, std, logsumexp -------------------------------------

FLOAT_DTS = ["float32", "float16", "bfloat16"]


@pytest.mark.parametrize("dtype", FLOAT_DTS + ["int64", "int32", "bool"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_prod(dtype, layout):
    e, t = pair((7, 33, 19), dtype, low=0.8, high=1.2, layout=layout)
    if dtype in ("int64", "int32"):
        e, t = pair((7, 33, 19), dtype, low=-2, high=2, layout=layout)
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            check(ember.prod(e, dim, keepdim), torch.prod(t, dim, keepdim))
    check(ember.prod(e), torch.prod(t), (1e-3, 1e-30) if dtype == "float32" else None)
    if dtype != "bool":
        check(ember.prod(e, 1, dtype=ember.float64), torch.prod(t, 1, dtype=torch.float64), (1e-6, 1e-30))


@pytest.mark.parametrize("dtype", FLOAT_DTS + ["int64"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_nansum_nanmean_count_nonzero(dtype, layout):
    e, t = pair((7, 33, 19), dtype, low=-3, high=3, layout=layout, integral=True)   # zeros to count
    if dtype != "int64":
        nan_mask = (t > 2.4).cpu().numpy()                                           # NaNs where x == 3
        e = ember.where(ember.tensor(nan_mask).cuda(), float("nan"), e)
        t = torch.where(torch.tensor(nan_mask).cuda(), float("nan"), t)
    for dim in (None, 1, (0, 2), -1):
        kw = {} if dim is None else {"dim": dim}
        check(ember.nansum(e, **kw), torch.nansum(t, **kw))
        check(ember.count_nonzero(e, **kw), torch.count_nonzero(t, **kw))
        if dtype != "int64":
            check(ember.nanmean(e, **kw, keepdim=True), ref16(torch.nanmean, t, **kw, keepdim=True))
    check(ember.nansum(e, 1, dtype=ember.float64), torch.nansum(t, 1, dtype=torch.float64))


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("dtype", FLOAT_DTS + ["float64"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_var_std(name, dtype, layout):
    e, t = pair((7, 33, 19), dtype, low=-3, high=5, layout=layout)
    ef, tf = getattr(ember, name), getattr(torch, name)
    check(ef(e), tf(t))
    check(ef(e, False), tf(t, False))                                          # the legacy `unbiased` positional
    for dim in (0, 1, -1, (0, 2), [1, 2]):
        for correction in (0, 1, 2.5):
            check(ef(e, dim, correction=correction), tf(t, dim, correction=correction))
        check(ef(e, dim, unbiased=False, keepdim=True), tf(t, dim, unbiased=False, keepdim=True))
    big, tbig = pair((3, 5000), dtype, low=999, high=1001, layout=layout)      # offset data: no cancellation
    check(ef(big, 1), tf(tbig, 1), (1e-3, 1e-4) if dtype == "float32" else None)


def var_two_pass(t, dim, correction):
    """torch CUDA's float64 two-pass variance: the accurate reference for data with a large offset (torch's
    own var is a plain Welford, whose float32 result is off by ~1e-3 relative at 1e4 +- 0.5)."""
    x = t.double()
    if dim is None:
        x, dim = x.reshape(-1), 0
    d = x - x.mean(dim, keepdim=True)
    return (d * d).sum(dim) / max(x.shape[dim] - correction, 0)


OFFSETS = {"float32": 1e4, "float64": 1e8, "float16": 100.0, "bfloat16": 100.0}
SPLIT_SHAPES = [((2, 100000), 1, 1), ((100000, 2), 0, 0), ((200000,), None, 1), ((64, 3000), 1, 2), ((3000, 64), 0, 1)]


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("dtype", FLOAT_DTS + ["float64"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_var_std_large_offset_and_split(name, dtype, layout):
    """One Welford pass on data with a large common offset, rows split over the columns (at least
    reduction.SPLIT_MIN_COLS columns in few rows: (count, mean, M2) partials, then a merge pass), rows of
    several tiles and many short rows, against the float64 two-pass variance of the same values."""
    off = OFFSETS[dtype]
    tol = {"float32": (2e-5, 1e-7), "float64": (1e-10, 1e-14)}.get(dtype)     # else TOL: rounding to 16 bits
    for shape, dim, correction in SPLIT_SHAPES:
        e, t = pair(shape, dtype, low=off - 0.5, high=off + 0.5, layout=layout if len(shape) > 1 else "contiguous")
        want = var_two_pass(t, dim, correction)
        want = want.sqrt() if name == "std" else want
        kw = {} if dim is None else {"dim": dim, "correction": correction}
        check(getattr(ember, name)(e, **kw), want.to(t.dtype), tol)


@pytest.mark.parametrize("dtype", FLOAT_DTS + ["float64"])
def test_var_std_nan_inf_in_split_rows(dtype):
    e, t = pair((4, 70000), dtype, low=-1, high=1)
    nan_at, inf_at = np.zeros((4, 70000), bool), np.zeros((4, 70000), bool)
    nan_at[0, 12345] = nan_at[2, 69999] = inf_at[1, 40000] = True
    for at, v in ((nan_at, float("nan")), (inf_at, float("inf"))):
        e = ember.where(ember.tensor(at).cuda(), v, e)
        t = torch.where(torch.tensor(at).cuda(), v, t)
    for name in ("var", "std"):
        for keepdim in (False, True):                                  # NaN, NaN (inf), NaN, a number
            check(getattr(ember, name)(e, 1, keepdim=keepdim), ref16(getattr(torch, name), t, 1, keepdim=keepdim))
    check(ember.var(e[3:]), ref16(torch.var, t[3:]))


@pytest.mark.parametrize("dtype", FLOAT_DTS + ["float64", "int64"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_logsumexp(dtype, layout):
    e, t = pair((7, 33, 19), dtype, low=-20, high=20, layout=layout)
    tt = t.to(torch.float32) if dtype == "int64" else t                        # torch may refuse int input
    for dim in (0, 1, -1, (0, 2), (0, 1, 2)):
        for keepdim in (False, True):
            check(ember.logsumexp(e, dim, keepdim), ref16(torch.logsumexp, tt, dim, keepdim))
    inf, nan = float("inf"), float("nan")
    z = torch.tensor([[1.0, -inf, 2.0], [-inf, -inf, -inf], [1.0, inf, 0.0], [1.0, nan, 0.0], [inf, inf, 1.0],
                      [1e30, 1e30, -1e30]]).cuda()
    check(ember.logsumexp(ember.tensor(z.cpu().numpy()).cuda(), 1), torch.logsumexp(z, 1))


@pytest.mark.parametrize("name", ["prod", "nansum", "nanmean", "count_nonzero", "var", "std", "logsumexp"])
def test_new_reductions_wide_and_tall(name):
    """Few long rows (split over the columns: partials, then a second pass) and many short ones."""
    for shape, dim in (((3, 70000), 1), ((70000, 3), 0), ((200000,), 0), ((4096, 4096), 1)):
        e, t = pair(shape, "float32", low=0.9999, high=1.0001 if name == "prod" else 1.1)
        kw = {"dim": dim} if name != "logsumexp" else {"dim": (dim,)}
        if name == "nanmean" and len(shape) == 1:
            kw = {}
        tol = (2e-3, 1e-6) if name in ("prod", "nansum") else (1e-4, 1e-5)
        check(getattr(ember, name)(e, **kw), getattr(torch, name)(t, **kw), None if name == "count_nonzero" else tol)


def test_new_reductions_empty_and_0d():
    z, tz = ember.zeros(0, 3).cuda(), torch.zeros(0, 3).cuda()
    for f in ("prod", "var", "std", "nanmean", "nansum", "logsumexp"):
        for dim in (0, 1):
            check(getattr(ember, f)(z, dim), getattr(torch, f)(tz, dim))    # ones, NaN, NaN, NaN, zeros, -inf
    check(ember.count_nonzero(z, 0), torch.count_nonzero(tz, 0))
    check(ember.nansum(z), torch.nansum(tz))
    s, ts = ember.tensor(2.5).cuda(), torch.tensor(2.5).cuda()
    for f in ("prod", "var", "std", "nanmean", "nansum", "count_nonzero"):
        check(getattr(ember, f)(s), getattr(torch, f)(ts))
    check(ember.logsumexp(s, 0), torch.logsumexp(ts, 0))
    check(ember.prod(s, 0, True), torch.prod(ts, 0, True))
    with pytest.raises(RuntimeError):
        ember.var(ember.ones(3, dtype=ember.int64).cuda())
    with pytest.raises(RuntimeError):
        ember.nanmean(ember.ones(3, dtype=ember.int64).cuda())


# ---- max / min over a dim ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dtype", FLOAT_DTS + ["float64", "int64", "int32", "uint8", "bool"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_max_min_dim(name, dtype, layout):
    e, t = pair((9, 257, 31), dtype, low=-50 if dtype != "uint8" else 0, high=50, layout=layout, integral=True)
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            check_pair(getattr(ember, name)(e, dim, keepdim), getattr(torch, name)(t, dim, keepdim))
    if dtype in FLOAT_DTS:                                                      # NaN wins, at its first index
        nan_mask = (t == 7).cpu().numpy()
        en = ember.where(ember.tensor(nan_mask).cuda(), float("nan"), e)
        tn = torch.where(torch.tensor(nan_mask).cuda(), float("nan"), t)
        for dim in (0, 1):
            check_pair(getattr(ember, name)(en, dim), getattr(torch, name)(tn, dim))


def test_max_min_dim_long_rows_empty_and_0d():
    e, t = pair((3, 100000), "float32", low=-1000, high=1000, integral=True)
    for dim in (0, 1):
        check_pair(ember.max(e, dim), torch.max(t, dim))
        check_pair(ember.min(e, dim, True), torch.min(t, dim, True))
    z, tz = ember.zeros(0, 3).cuda(), torch.zeros(0, 3).cuda()
    check_pair(ember.max(z, 1), torch.max(tz, 1))
    with pytest.raises(IndexError):
        ember.max(z, 0)
    s, ts = ember.tensor(2.5).cuda(), torch.tensor(2.5).cuda()
    check_pair(ember.min(s, 0), torch.min(ts, 0))
    check_pair(ember.max(s, -1, True), torch.max(ts, -1, True))


# ---- softmax: one pass and two passes ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("cols", [1, 7, 1000, 1024, 4095, 8192, 16384, 16385, 40000])
def test_softmax_row_lengths(name, cols):
    """One pass up to 16384 float32 columns (16-byte accesses where aligned), two passes beyond."""
    rows = max(3, min(300, 2 ** 20 // cols))
    e, t = pair((rows, cols), "float32", low=-30, high=30)
    check(getattr(ember, name)(e, -1), getattr(torch, name)(t, -1), (1e-4, 1e-6))
    e, t = pair((rows, cols), "bfloat16", low=-30, high=30)
    check(getattr(ember, name)(e, 1), getattr(torch, name)(t, 1))
    check(getattr(ember, name)(e, 1, ember.float32), getattr(torch, name)(t, 1, dtype=torch.float32), (1e-4, 1e-6))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_misaligned_and_strided_rows(name):
    e, t = pair((64, 2048 + 3), "float32", low=-10, high=10)
    for sl in (slice(1, 2049), slice(2, 2050), slice(0, 2051), slice(3, 2048 + 3), slice(1, 1000)):
        check(getattr(ember, name)(e[:, sl], 1), getattr(torch, name)(t[:, sl], 1), (1e-4, 1e-6))
    e, t = pair((64, 2048), "float16", low=-10, high=10)
    check(getattr(ember, name)(e[1:, 8:], 1), getattr(torch, name)(t[1:, 8:], 1))
    check(getattr(ember, name)(e[:, 1:], 1), getattr(torch, name)(t[:, 1:], 1))
    e, t = pair((6, 5, 4096), "float32", low=-10, high=10)
    e, t = e[:, ::2], t[:, ::2]                                                # rows over two strided dims
    check(getattr(ember, name)(e, -1), getattr(torch, name)(t, -1), (1e-4, 1e-6))
    e, t = pair((16384, 64), "float32", low=-10, high=10)
    check(getattr(ember, name)(e, 0), getattr(torch, name)(t, 0), (1e-4, 1e-6))   # strided rows: two passes
    e, t = pair((2, 16384), "float64", low=-10, high=10)
    check(getattr(ember, name)(e, 1), getattr(torch, name)(t, 1))


# ---- scans ---------------------------------------------------------------------------------------------

SCAN_DTYPES = {"cumsum": FLOAT_DTS + ["float64", "int64", "int32", "bool"],
               "cumprod": FLOAT_DTS + ["float64", "int64", "int32"],
               "logcumsumexp": FLOAT_DTS + ["float64"],
               "cummax": FLOAT_DTS + ["float64", "int64", "int32", "uint8"],
               "cummin": FLOAT_DTS + ["float64", "int64", "int32", "uint8"]}
SCAN_CASES = [(n, d) for n, dts in SCAN_DTYPES.items() for d in dts]


def _scan_data(name, dtype, shape, layout="contiguous", seed=0):
    if name == "cumprod" and dtype in FLOAT_DTS + ["float64"]:
        return pair(shape, dtype, low=0.7, high=1.3, layout=layout, seed=seed)
    if name == "cumprod":
        return pair(shape, dtype, low=-2, high=2, layout=layout, seed=seed)
    return pair(shape, dtype, low=-3 if dtype != "uint8" else 0, high=3, layout=layout, seed=seed,
                integral=name in ("cummax", "cummin"))                           # ties


def _check_scan(name, e, t, dim, tol=None):
    if name in ("cummax", "cummin"):
        check_pair(getattr(ember, name)(e, dim), getattr(torch, name)(t, dim))
    else:
        check(getattr(ember, name)(e, dim), ref16(getattr(torch, name), t, dim), tol)


@pytest.mark.parametrize("name,dtype", SCAN_CASES)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_scans(name, dtype, layout):
    e, t = _scan_data(name, dtype, (7, 33, 19), layout)
    for dim in (0, 1, -1):
        _check_scan(name, e, t, dim)


def test_scan_dtype_arg_and_special_values():
    e, t = pair((7, 33), "int32", low=-50, high=50)
    check(ember.cumsum(e, 1, dtype=ember.float32), torch.cumsum(t, 1, dtype=torch.float32))
    check(ember.cumprod(e, 0, dtype=ember.float64), torch.cumprod(t, 0, dtype=torch.float64))
    f, tf = pair((7, 33), "float32", low=-4, high=4)
    check(ember.cumsum(f, 1, dtype=ember.int64), torch.cumsum(tf, 1, dtype=torch.int64))   # truncates each element
    check(ember.cumsum(f, 0, dtype=ember.float64), torch.cumsum(tf, 0, dtype=torch.float64))
    b, tb = pair((7, 33), "bool")
    check(ember.cumsum(b, 1), torch.cumsum(tb, 1))
    check(ember.cumprod(b, 1), torch.cumprod(tb, 1))
    inf, nan = float("inf"), float("nan")
    rows = [[-inf, -inf, 1.0, inf, 2.0, inf], [1.0, nan, 3.0, nan, 5.0, 5.0], [2.0, 2.0, -inf, 2.0, 1.0, 3.0],
            [inf, -inf, nan, 0.0, -0.0, 0.0]]
    s, ts = ember.tensor(rows).cuda(), torch.tensor(rows).cuda()
    for name in ("cumsum", "cumprod", "logcumsumexp", "cummax", "cummin"):
        _check_scan(name, s, ts, 1)
        _check_scan(name, s.t(), ts.t(), 0)


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "logcumsumexp", "cummax", "cummin"])
def test_scan_long_rows(name):
    """Few long rows are split into chunks over programs (chunk totals, then the scans)."""
    for shape, dim in (((3, 100000), 1), ((100000, 3), 0), ((1000003,), 0), ((64, 8193), 1), ((4096, 300), 1)):
        if name == "cumprod":                                                    # exact: products of +-1
            a = np.where(np.random.default_rng(1).random(shape) < 0.5, -1.0, 1.0)
            e, t = ember.tensor(a, dtype=ember.float32).cuda(), torch.tensor(a, dtype=torch.float32).cuda()
        else:
            e, t = pair(shape, "float32", low=-3, high=3, integral=name != "logcumsumexp")   # exact sums
        if name == "logcumsumexp":   # vs float64: a sequential float32 scan drifts by ~1e-3 over 1e6 steps
            check(ember.logcumsumexp(e, dim), torch.logcumsumexp(t.double(), dim).float(), (1e-5, 1e-5))
            continue
        _check_scan(name, e, t, dim)
        if name in ("cumsum", "cummax"):
            ei, ti = pair(shape, "int64", low=-1000, high=1000)
            _check_scan(name, ei, ti, dim)


def test_scans_empty_and_0d():
    for shape in ((0, 3), (3, 0)):
        z, tz = ember.zeros(*shape).cuda(), torch.zeros(*shape).cuda()
        for name in ("cumsum", "cumprod", "logcumsumexp", "cummax", "cummin"):
            for dim in (0, 1):
                _check_scan(name, z, tz, dim)
    s, ts = ember.tensor(2.5).cuda(), torch.tensor(2.5).cuda()
    for name in ("cumsum", "cumprod", "logcumsumexp", "cummax", "cummin"):
        _check_scan(name, s, ts, 0)
    i, ti = ember.tensor(3).cuda(), torch.tensor(3).cuda()
    check(ember.cumsum(i, -1), torch.cumsum(ti, -1))
    with pytest.raises(NotImplementedError):
        ember.logcumsumexp(ember.ones(3, dtype=ember.int64).cuda(), 0)


# ---- gradients -----------------------------------------------------------------------------------------

GRADS = [
    ("prod", lambda m, x: m.prod(x, 1)),
    ("prod_all", lambda m, x: m.prod(x)),
    ("var", lambda m, x: m.var(x, (0, 2))),
    ("var_correction", lambda m, x: m.var(x, 1, correction=0, keepdim=True)),
    ("std", lambda m, x: m.std(x, 1, keepdim=True)),
    ("std_all", lambda m, x: m.std(x)),
    ("logsumexp", lambda m, x: m.logsumexp(x, 1)),
    ("logsumexp_dims", lambda m, x: m.logsumexp(x, (0, 2), True)),
    ("cumsum", lambda m, x: m.cumsum(x, 1)),
    ("cumsum_0", lambda m, x: m.cumsum(x, 0)),
    ("cumprod", lambda m, x: m.cumprod(x, -1)),
    ("max_dim", lambda m, x: m.max(x, 1).values),
    ("min_dim_keepdim", lambda m, x: m.min(x, 0, True).values),
    ("logcumsumexp", lambda m, x: m.logcumsumexp(x, 2)),
    ("cummax", lambda m, x: m.cummax(x, 1).values),
    ("nansum", lambda m, x: m.nansum(x, 2)),
]


@pytest.mark.parametrize("name,f", GRADS, ids=[g[0] for g in GRADS])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_gradients(name, f, layout):
    e, t = pair((4, 9, 6), "float32", low=0.5, high=1.5, layout=layout, seed=2)   # distinct, no zeros
    e = e.detach().requires_grad_()
    t = t.detach().requires_grad_()
    ye, yt = f(ember, e), f(torch, t)
    ge, gt = pair(tuple(yt.shape), "float32", seed=3)
    ye.backward(ge)
    yt.backward(gt)
    check(ye.detach(), yt.detach())
    check(e.grad, t.grad, (1e-4, 1e-5))


def test_prod_gradient_with_zeros():
    a = np.random.default_rng(5).uniform(0.5, 1.5, size=(5, 7))
    a[1, 3] = 0.0
    a[2, 0] = a[2, 4] = 0.0
    e, t = ember.tensor(a, dtype=ember.float32).cuda().requires_grad_(), torch.tensor(a).float().cuda().requires_grad_()
    ember.prod(e, 1).sum().backward()
    torch.prod(t, 1).sum().backward()
    check(e.grad, t.grad, (1e-4, 1e-6))


def test_repeated_reductions_take_the_memo_and_stay_right():
    """A reduction repeated on the same geometry skips layout and argument work (`_reduce`'s memo): it
    must still read each call's own input (another address, another offset) and write a new output."""
    R = ember.backends.cuda.reduction
    R._memo.clear()
    base = ember.randn(3, 40, 70, device="cuda")
    views = [base[0], base[1], base[2].t().t()]         # one geometry, three addresses
    for dims, keepdim in (((0,), False), ((1,), True), (None, False), ((0, 1), False)):
        outs = [v.sum(dims, keepdim) if dims is not None else v.sum() for v in views]
        for v, o in zip(views, outs):
            want = torch.tensor(v.cpu().numpy()).sum(dims if dims is not None else (0, 1), keepdim=keepdim)
            np.testing.assert_allclose(o.cpu().numpy(), want.numpy(), rtol=1e-5, atol=1e-4)
        assert outs[0].data_ptr() != outs[1].data_ptr() or outs[0].numel() == 0
    # dims None and (0, 1) are one row of 2800 columns: split in two launches (C >= SPLIT_MIN_COLS), not memoised
    assert R.SPLIT_MIN_COLS <= 2800 and len(R._memo) >= 2
    # a split (short and wide) reduction takes two launches: not memoised, still right
    w = ember.randn(2, 70000, device="cuda")
    n = len(R._memo)
    for _ in range(2):
        np.testing.assert_allclose(w.sum(1).cpu().numpy(), torch.tensor(w.cpu().numpy()).sum(1).numpy(), rtol=1e-4)
    assert len(R._memo) == n


def test_reduction_memo_keys_on_the_input_dtype():
    # same geometry, different input dtypes: each must get its own plan (a float16 plan read float64 data)
    for dt in ("float16", "float64", "float32", "int32"):
        e, t = pair((7, 33, 19), dt, low=-2, high=2)
        check(e.sum(1), t.sum(1))
        check(ember.prod(e, 1, dtype=ember.float64), torch.prod(t, 1, dtype=torch.float64), (1e-6, 1e-30))
