"""The CUDA reduction, softmax and scan kernels (`backends/cuda/reduction.py`, `scan.py`) run on CPU
tensors through Triton's interpreter (`TRITON_INTERPRET=1`), compared with ember's CPU backend. On a
machine with a GPU these tests are left to `tests/test_cuda_reduction.py`."""
import math
import os

import numpy as np
import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernels are tested by tests/test_cuda_reduction.py",
                allow_module_level=True)
triton = pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from helpers import FLOATS, make_pair  # noqa: E402

from ember.backends.cuda import reduction as RD  # noqa: E402
from ember.backends.cuda import scan as SC  # noqa: E402

TOL = {"float16": (2e-3, 2e-3), "bfloat16": (1.6e-2, 1e-2), "float32": (2e-5, 1e-5), "float64": (1e-12, 1e-12)}


def same(got, expected):
    assert got.dtype is expected.dtype, (got.dtype, expected.dtype)
    assert tuple(got.shape) == tuple(expected.shape), (got.shape, expected.shape)
    if got.dtype.is_floating_point:
        r, a = TOL[got.dtype.name]
        np.testing.assert_allclose(got.double().numpy(), expected.double().numpy(), rtol=r, atol=a, equal_nan=True)
    else:
        assert got.tolist() == expected.tolist()


def small_tiles(monkeypatch, cap):
    """Tiles of at most `cap` elements: several per row on small inputs (the interpreter runs a tl.reduce's
    combine function once per element, so 1024-element tiles would be slow here)."""
    blocks = RD._blocks
    monkeypatch.setattr(RD, "_blocks", lambda R, C, rows, cols: blocks(R, C, rows, cols, cap=cap))


DIMS = [None, 0, -1, (0, 2), 1, [], (0, 1, 2)]


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int64"])
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_reduce_matches_cpu(name, dtype, dim, keepdim, layout):
    x, _ = make_pair((4, 5, 6), dtype, layout=layout)
    kw = {"keepdim": keepdim}
    if dim is not None:
        kw["dim"] = dim
    if name == "mean" and dtype == "int64":
        with pytest.raises(RuntimeError):
            RD.KERNELS[name](x, **kw)
        return
    same(RD.KERNELS[name](x, **kw), getattr(ember, name)(x, **kw))


@pytest.mark.parametrize("layout", ["sliced", "expanded"])
def test_reduce_other_layouts_and_dtype_arg(layout):
    x, _ = make_pair((3, 7, 9), "float32", layout=layout)
    same(RD.sum_cuda(x, (1,), dtype=ember.float64), ember.sum(x, (1,), dtype=ember.float64))
    same(RD.mean_cuda(x, (0, 2), True), ember.mean(x, (0, 2), True))
    same(RD.amax_cuda(x, (0, 2)), ember.amax(x, (0, 2)))
    b, _ = make_pair((5, 6), "bool")
    same(RD.sum_cuda(b, 1), ember.sum(b, 1))          # bool sums to int64
    i, _ = make_pair((5, 6), "int32", layout="transposed")
    same(RD.sum_cuda(i), ember.sum(i))
    same(RD.amin_cuda(i, 0), ember.amin(i, 0))


def test_non_collapsible_dims_use_a_contiguous_copy():
    x, _ = make_pair((2, 3, 4, 5, 3), "float32", layout="transposed")
    for dims in [(0, 2, 4), (1, 3), (0, 2, 3)]:
        same(RD.sum_cuda(x, dims), ember.sum(x, dims))
        same(RD.amax_cuda(x, dims, True), ember.amax(x, dims, True))


def test_split_over_columns(monkeypatch):
    monkeypatch.setattr(RD, "SPLIT_MIN_COLS", 64)
    monkeypatch.setattr(RD, "SPLIT_MIN_CHUNK", 16)
    x, _ = make_pair((3, 300), "float32")
    same(RD.sum_cuda(x, 1), ember.sum(x, 1))
    same(RD.mean_cuda(x), ember.mean(x))
    same(RD.amax_cuda(x, 1), ember.amax(x, 1))
    h, _ = make_pair((2, 257), "float16", layout="transposed")
    same(RD.sum_cuda(h, 0), ember.sum(h, 0))
    same(RD.mean_cuda(h, 0, True), ember.mean(h, 0, True))
    i, _ = make_pair((500,), "int64")
    same(RD.sum_cuda(i), ember.sum(i))
    same(RD.amin_cuda(i), ember.amin(i))


def test_nan_and_empty():
    x = ember.tensor([[1.0, float("nan"), 3.0], [2.0, 5.0, -1.0]])
    same(RD.amax_cuda(x, 1), ember.amax(x, 1))
    same(RD.amin_cuda(x), ember.amin(x))
    e = ember.zeros(0, 3)
    same(RD.sum_cuda(e), ember.sum(e))
    same(RD.sum_cuda(e, 0), ember.sum(e, 0))
    assert math.isnan(RD.mean_cuda(e).item())
    assert tuple(RD.sum_cuda(e, 1).shape) == (0,)
    with pytest.raises(RuntimeError):
        RD.amax_cuda(e)
    with pytest.raises(IndexError):
        RD.amin_cuda(e, 0)
    with pytest.raises(IndexError):   # the op's meta refuses it before any kernel runs
        ember.argmax(e)
    s = ember.tensor(2.5)
    same(RD.sum_cuda(s), ember.sum(s))
    same(RD.amax_cuda(s, 0, True), ember.amax(s, 0, True))
    same(RD.argmax_cuda(s), ember.argmax(s))


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int64"])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_argmax_matches_cpu(name, dtype, dim, keepdim, layout):
    x, _ = make_pair((4, 5, 6), dtype, low=-2, high=2, layout=layout)   # small ints: many ties
    same(RD.KERNELS[name](x, dim, keepdim), getattr(ember, name)(x, dim, keepdim))


def test_argmax_ties_nan_and_long_rows(monkeypatch):
    small_tiles(monkeypatch, 256)
    x = ember.tensor([[3.0, 1.0, 3.0, float("nan"), float("nan")], [-1.0, -1.0, -5.0, -5.0, 0.0]])
    for f in ("argmax", "argmin"):
        same(RD.KERNELS[f](x, 1), getattr(ember, f)(x, 1))
        same(RD.KERNELS[f](x), getattr(ember, f)(x))
    y, _ = make_pair((3, 2500), "int64", low=-3, high=3)   # 10 column blocks, ties across blocks
    for f in ("argmax", "argmin"):
        same(RD.KERNELS[f](y, 1), getattr(ember, f)(y, 1))
        same(RD.KERNELS[f](y, 0), getattr(ember, f)(y, 0))
    with pytest.raises(RuntimeError):   # the op's meta refuses it before any kernel runs
        ember.argmax(ember.ones(3, dtype=ember.bool))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_softmax_matches_cpu(name, dtype, dim, layout):
    x, _ = make_pair((4, 5, 6), dtype, low=-8, high=8, layout=layout)
    same(RD.KERNELS[name](x, dim), getattr(ember, name)(x, dim))


def test_softmax_dtype_long_rows_and_special_values():
    x, _ = make_pair((3, 2100), "float16", low=-30, high=30)
    for f in ("softmax", "log_softmax"):
        same(RD.KERNELS[f](x, 1), getattr(ember, f)(x, 1))
        same(RD.KERNELS[f](x, 1, ember.float32), getattr(ember, f)(x, 1, ember.float32))
    y, _ = make_pair((2, 3, 4, 5), "float32", layout="transposed")
    y = y.permute(1, 3, 0, 2)                        # kept dims that don't collapse
    for d in range(4):
        same(RD.softmax_cuda(y, d), ember.softmax(y, d))
    inf = float("inf")
    z = ember.tensor([[1.0, -inf, 2.0], [-inf, -inf, -inf], [1.0, inf, 0.0], [1.0, float("nan"), 0.0]])
    for f in ("softmax", "log_softmax"):
        same(RD.KERNELS[f](z, 1), getattr(ember, f)(z, 1))
    same(RD.softmax_cuda(ember.tensor(3.0), 0), ember.softmax(ember.tensor(3.0), 0))
    same(RD.softmax_cuda(ember.zeros(0, 4), 1), ember.softmax(ember.zeros(0, 4), 1))
    with pytest.raises(NotImplementedError):
        RD.softmax_cuda(ember.ones(3, dtype=ember.int64), 0)


# ---- prod, nansum, nanmean, count_nonzero, var, std, logsumexp ------------------------------------

NEW = [("prod", "float32", {"dim": 1}), ("prod", "int64", {}), ("prod", "float16", {"dim": -1, "keepdim": True}),
       ("nansum", "float32", {"dim": (0, 2)}), ("nansum", "int32", {"dim": 1, "dtype": ember.float64}),
       ("nanmean", "float16", {"dim": 0, "keepdim": True}), ("nanmean", "float32", {}),
       ("count_nonzero", "int64", {"dim": (0, 2)}), ("count_nonzero", "float32", {}),
       ("var", "float32", {"dim": 1}), ("var", "float64", {"dim": (0, 2), "keepdim": True, "correction": 0}),
       ("std", "float16", {"dim": -1}), ("std", "float32", {"unbiased": False}),
       ("logsumexp", "float32", {"dim": (1,)}), ("logsumexp", "bfloat16", {"dim": (0, 2), "keepdim": True}),
       ("logsumexp", "int64", {"dim": 0})]


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_new_reductions_match_cpu(layout):
    for name, dtype, kw in NEW:
        x, _ = make_pair((3, 4, 5), dtype, low=-2, high=2, layout=layout)
        if name == "prod" and dtype != "int64":
            x = x * 0.25 + 1.0
        same(RD.KERNELS[name](x, **kw), getattr(ember, name)(x, **kw))


def test_new_reductions_special_values_and_errors():
    nan, inf = float("nan"), float("inf")
    x = ember.tensor([[1.0, nan, 3.0], [nan, nan, nan], [2.0, 0.0, -1.0], [1.0, inf, -inf]])
    for name in ("nansum", "nanmean", "count_nonzero", "prod"):
        same(RD.KERNELS[name](x, 1), getattr(ember, name)(x, 1))
    h = ember.tensor([[1.0, nan, -0.0, 0.0], [nan, 2.0, 3.0, 0.5]]).to(ember.bfloat16)   # NaN and -0 tested as floats
    same(RD.nanmean_cuda(h, 1), ember.nanmean(h, 1))
    same(RD.count_nonzero_cuda(h, 1), ember.count_nonzero(h, 1))
    z = ember.tensor([[1.0, -inf, 2.0], [-inf, -inf, -inf], [1.0, inf, 0.0], [1.0, nan, 0.0]])
    same(RD.logsumexp_cuda(z, 1), ember.logsumexp(z, 1))
    v = ember.tensor([[1.0, 2.0, 4.0], [5.0, 5.0, 5.0]])
    for kw in ({"dim": 1}, {"dim": 1, "correction": 2.5}, {"dim": 1, "correction": 3}, {"dim": 0, "correction": 1}):
        same(RD.var_cuda(v, **kw), ember.var(v, **kw))
    same(RD.std_cuda(v[:, :1], 1), ember.std(v[:, :1], 1))           # one element, correction 1: NaN
    e = ember.zeros(0, 3)
    for name, f in (("var", RD.var_cuda), ("nanmean", RD.nanmean_cuda), ("logsumexp", RD.logsumexp_cuda)):
        same(f(e, 0), getattr(ember, name)(e, 0))                     # NaN, NaN, -inf over an empty dim
    same(RD.prod_cuda(e, 0), ember.prod(e, 0))
    same(RD.count_nonzero_cuda(e), ember.count_nonzero(e))
    assert tuple(RD.var_cuda(e, 1).shape) == (0,)
    s = ember.tensor(2.5)
    for name in ("prod", "nansum", "nanmean", "var", "count_nonzero"):
        same(RD.KERNELS[name](s), getattr(ember, name)(s))
    same(RD.logsumexp_cuda(s, 0), ember.logsumexp(s, 0))
    b, _ = make_pair((4, 6), "bool")
    same(RD.prod_cuda(b, 1), ember.prod(b, 1))
    same(RD.count_nonzero_cuda(b, 0), ember.count_nonzero(b, 0))
    i = ember.ones(3, dtype=ember.int64)
    with pytest.raises(RuntimeError):
        RD.var_cuda(i)
    with pytest.raises(RuntimeError):
        RD.nanmean_cuda(i)


def test_new_reductions_split_over_columns(monkeypatch):
    monkeypatch.setattr(RD, "SPLIT_MIN_COLS", 64)
    monkeypatch.setattr(RD, "SPLIT_MIN_CHUNK", 16)
    x, _ = make_pair((2, 200), "float32", low=0.9, high=1.1)
    x[0, 7] = float("nan")
    for name, kw in (("prod", {"dim": 1}), ("nansum", {"dim": 1}), ("nanmean", {}), ("count_nonzero", {"dim": 1}),
                     ("var", {"dim": 1}), ("std", {}), ("logsumexp", {"dim": 1})):
        same(RD.KERNELS[name](x, **kw), getattr(ember, name)(x, **kw))


# ---- var / std: Welford's one pass ----------------------------------------------------------------

def welford_launches(monkeypatch):
    """(grid, MERGE, POST) of each welford_kernel launch, to check which path ran."""
    seen = []
    launch = RD._launch

    def spy(fn, grid, args, consts, dev, num_warps=4):
        if "MERGE" in consts:
            seen.append((grid, consts["MERGE"], consts["POST"]))
        return launch(fn, grid, args, consts, dev, num_warps)
    monkeypatch.setattr(RD, "_launch", spy)
    return seen


def offset_data(shape, offset, seed=0):
    """float32 `offset` + noise in [-0.5, 0.5): a large common offset (plain Welford's running means lose
    ~1e-3 of the variance to rounding at offset 1e4; a naive sum of squares loses all of it)."""
    a = offset + np.random.default_rng(seed).uniform(-0.5, 0.5, size=shape)
    return ember.from_numpy(a.astype(np.float32))


def close_to_exact(got, x, name="var", **kw):
    """got (float32) against the CPU backend's var/std (`name`, `kw`) of the same values in float64."""
    want = getattr(ember, name)(x.double(), **kw)
    np.testing.assert_allclose(got.double().numpy(), want.numpy(), rtol=2e-5, atol=0, equal_nan=True)


VAR_CASES = [(None, 1, False), (0, 0, True), (-1, 2, False), ((0, 2), 1, True), (1, 0, False), ([1, 2], 2, True),
             ([], 1, False)]


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced", "expanded"])
def test_var_std_match_cpu(layout):
    """Each dim set (rows x cols with one or two strided dims per side) with corrections 0, 1 and 2."""
    x, _ = make_pair((3, 4, 5), "float32", low=-2, high=3, layout=layout)
    for i, (dim, correction, keepdim) in enumerate(VAR_CASES):
        name = ("var", "std")[i % 2]
        kw = {"dim": dim, "correction": correction, "keepdim": keepdim}
        same(RD.KERNELS[name](x, **kw), getattr(ember, name)(x, **kw))


def test_var_std_dtypes_and_copy_fallback():
    for dtype, kw in (("float64", {"dim": (0, 2), "correction": 0}), ("float16", {"dim": 1, "keepdim": True}),
                      ("bfloat16", {"dim": -1, "unbiased": False})):
        x, _ = make_pair((3, 4, 5), dtype, layout="transposed")
        for name in ("var", "std"):
            same(RD.KERNELS[name](x, **kw), getattr(ember, name)(x, **kw))
    y, _ = make_pair((2, 3, 4, 5, 3), "float32", layout="transposed")     # dims that don't collapse to two
    same(RD.var_cuda(y, (0, 2, 4)), ember.var(y, (0, 2, 4)))
    same(RD.std_cuda(y, (1, 3), keepdim=True, correction=0), ember.std(y, (1, 3), keepdim=True, correction=0))


def test_var_std_rows_of_several_tiles_and_a_large_offset(monkeypatch):
    small_tiles(monkeypatch, 16)
    x = offset_data((3, 101), 1e4)                    # 7 tiles of 16 columns a row, the last with 5
    for name in ("var", "std"):
        for correction in (0, 1, 2):
            close_to_exact(RD.KERNELS[name](x, 1, correction=correction), x, name=name, dim=1, correction=correction)
    close_to_exact(RD.var_cuda(x.t(), 0, keepdim=True), x.t(), dim=0, keepdim=True)   # unit-stride rows
    close_to_exact(RD.std_cuda(x), x, name="std")
    h = x.to(ember.float16) - 1e4                     # float16 input accumulates in float32
    same(RD.var_cuda(h, 1), ember.var(h, 1))


def test_var_std_split_over_columns(monkeypatch):
    """Few long rows: (count, mean, M2) partials per chunk of columns, merged in a second pass over several tiles."""
    monkeypatch.setattr(RD, "SPLIT_MIN_COLS", 64)
    monkeypatch.setattr(RD, "SPLIT_MIN_CHUNK", 16)
    small_tiles(monkeypatch, 4)
    seen = welford_launches(monkeypatch)
    x = offset_data((3, 103), 1e4)
    x[0, 37] = float("nan")
    x[1, 90] = float("inf")
    got = RD.var_cuda(x, 1)
    assert seen == [((3, 6), 0, 4), ((3, 1), 1, 0)], seen    # 6 chunks of 20 columns (the last of 3)
    close_to_exact(got, x, dim=1)                              # NaN, NaN (inf), the offset row's variance
    seen.clear()
    y = offset_data((103, 2), 1e4, seed=1)                     # rows of unit stride, reduced along dim 0
    close_to_exact(RD.std_cuda(y, 0, correction=2), y, name="std", dim=0, correction=2)
    close_to_exact(RD.var_cuda(y), y)                          # all dims: one row
    assert [m for _, m, _ in seen] == [0, 1, 0, 1] and seen[0][0][1] > 1, seen
    z = ember.from_numpy(np.random.default_rng(2).standard_normal((2, 100)))
    same(RD.var_cuda(z, 1, correction=0), ember.var(z, 1, correction=0))   # float64 partials


def test_var_std_special_values_and_empty():
    nan, inf = float("nan"), float("inf")
    x = ember.tensor([[1.0, nan, 3.0, 4.0], [inf, 1.0, 2.0, 0.0], [-inf, inf, 0.0, 1.0], [5.0, 5.0, 5.0, 5.0],
                      [-1.0, 0.0, -2.0, 7.5]])
    for kw in ({"dim": 1}, {"dim": 1, "correction": 0}, {"dim": 1, "correction": 4}, {"dim": 1, "correction": 6},
               {"dim": 0, "keepdim": True}):
        for name in ("var", "std"):                           # NaN rows, 0 / 0 = NaN, x / 0 = inf
            same(RD.KERNELS[name](x, **kw), getattr(ember, name)(x, **kw))
    for e in (ember.zeros(0, 3), ember.zeros(3, 0), ember.zeros(2, 0, 3)):
        for kw in ({}, {"dim": 0}, {"dim": -1, "keepdim": True}, {"dim": (0, 1), "correction": 0}):
            got, want = RD.std_cuda(e, **kw), ember.std(e, **kw)
            same(got, want)
            assert got.numel() == 0 or math.isnan(got.reshape(-1)[0].item())
    s = ember.tensor(2.5)
    same(RD.var_cuda(s, correction=0), ember.var(s, correction=0))
    same(RD.std_cuda(s, 0, keepdim=True), ember.std(s, 0, keepdim=True))


# ---- max / min over a dim -------------------------------------------------------------------------

def test_max_min_dim_match_cpu():
    nan = float("nan")
    cases = [(make_pair((4, 5, 6), "float32", low=-2, high=2, layout="transposed")[0].round(), (0, 2), False),
             (make_pair((4, 5, 6), "int64", low=-2, high=2)[0], (1,), True),
             (make_pair((5, 6), "bool")[0], (1,), False),
             (make_pair((3, 8), "float16", low=-3, high=3)[0].round(), (0, 1), True),
             (ember.tensor([[3.0, 1.0, 3.0, nan, nan], [-1.0, -1.0, -5.0, -5.0, 0.0]]), (1,), False)]
    for x, dims, keepdim in cases:    # small values: many ties (the first index wins), the first NaN wins
        for d in dims:
            for name, f in (("max", RD.max_dim_cuda), ("min", RD.min_dim_cuda)):
                got, want = f(x, d, keepdim), getattr(ember, name)(x, d, keepdim)
                assert type(got).__name__ == name
                same(got.values, want.values)
                same(got.indices, want.indices)
    s = ember.tensor(2.5)
    got = RD.max_dim_cuda(s, 0, True)
    same(got.values, s)
    same(got.indices, ember.tensor(0))
    e = ember.zeros(0, 3)
    same(RD.min_dim_cuda(e, 1).values, ember.min(e, 1).values)
    with pytest.raises(IndexError):   # the op's meta refuses it before any kernel runs
        ember.max(e, 0)


# ---- softmax: the one-pass and two-pass paths -----------------------------------------------------

def test_softmax_one_pass_alignment_and_two_pass_rows(monkeypatch):
    base = ember.arange(8 * 64, dtype=ember.float32).reshape(8, 64) / 50.0
    for x, vec in ((base, 4), (base[:, 2:34], 2), (base[:, 1:32], 1), (base[:, 1:5], 4)):
        a = RD.Along(x, ember.empty(*x.shape), 1)
        if x.data_ptr() % 16 == 0 or vec < 4:     # the first two assume NumPy's 16-byte aligned buffers
            assert RD._vec(a)[0] == vec or x.data_ptr() % 16, (x.shape, RD._vec(a))
        same(RD.log_softmax_cuda(x, 1), ember.log_softmax(x, 1))
    y, _ = make_pair((2, 3, 8), "bfloat16", layout="expanded")      # two row dims (one of stride 0)
    same(RD.softmax_cuda(y, -1), ember.softmax(y, -1))
    same(RD.softmax_cuda(y, -1, ember.float32), ember.softmax(y, -1, ember.float32))
    monkeypatch.setattr(RD, "ONE_PASS_MAX_BYTES", 16)                 # unit-stride rows too long for one tile
    z, _ = make_pair((3, 40), "float32", low=-9, high=9)
    for f in ("softmax", "log_softmax"):
        same(RD.KERNELS[f](z, 1), getattr(ember, f)(z, 1))


# ---- scans ----------------------------------------------------------------------------------------

SCANS = [("cumsum", "float32", 0, "contiguous"), ("cumsum", "int32", -1, "transposed"),
         ("cumsum", "bool", 1, "contiguous"), ("cumprod", "float16", -1, "transposed"),
         ("cumprod", "int64", 1, "contiguous"), ("logcumsumexp", "float32", 1, "transposed"),
         ("logcumsumexp", "bfloat16", -1, "contiguous"), ("logcumsumexp", "float64", 0, "transposed"),
         ("cummax", "float32", 1, "transposed"), ("cummax", "int64", 0, "contiguous"),
         ("cummin", "float16", -1, "contiguous"), ("cummin", "int32", 1, "transposed"), ("cummax", "bool", 2, "sliced")]


def same_scan(got, want):
    if isinstance(want, tuple):
        assert type(got).__name__ == type(want).__name__
        same(got.values, want.values)
        same(got.indices, want.indices)
    else:
        same(got, want)


@pytest.mark.parametrize("name,dtype,dim,layout", SCANS)
def test_scan_matches_cpu(name, dtype, dim, layout):
    x, _ = make_pair((3, 4, 5), dtype, low=-2, high=2, layout=layout)
    if dtype in FLOATS:
        x = x.round() * 0.5 if name != "cumprod" else x * 0.25 + 1.0     # ties for cummax/cummin
    same_scan(SC.KERNELS[name](x, dim), getattr(ember, name)(x, dim))


def test_scan_dtype_arg_special_values_and_shapes():
    i, _ = make_pair((3, 6), "int32", low=-4, high=4)
    same(SC.cumsum_cuda(i, 1, dtype=ember.float16), ember.cumsum(i, 1, dtype=ember.float16))
    f, _ = make_pair((3, 6), "float32", low=-4, high=4)
    same(SC.cumsum_cuda(f, 1, dtype=ember.int64), ember.cumsum(f, 1, dtype=ember.int64))     # truncates first
    same(SC.cumprod_cuda(f, 0, dtype=ember.float64), ember.cumprod(f, 0, dtype=ember.float64))
    nan, inf = float("nan"), float("inf")
    s = ember.tensor([[-inf, -inf, 1.0, inf, 2.0, inf], [1.0, nan, 3.0, nan, 5.0, 5.0],
                      [2.0, 2.0, -inf, 2.0, 1.0, 3.0]])
    same(SC.logcumsumexp_cuda(s, 1), ember.logcumsumexp(s, 1))
    for name in ("cummax", "cummin", "cumsum", "cumprod"):
        same_scan(SC.KERNELS[name](s, 1), getattr(ember, name)(s, 1))
    p, _ = make_pair((2, 3, 4, 5), "float32", layout="transposed")
    p = p.permute(1, 3, 0, 2)                                          # kept dims that don't collapse
    same_scan(SC.cummin_cuda(p, 2), ember.cummin(p, 2))
    same(SC.cumsum_cuda(p, 0), ember.cumsum(p, 0))
    for x in (ember.tensor(2.5), ember.zeros(0, 3), ember.zeros(3, 0)):
        same(SC.cumsum_cuda(x, -1), ember.cumsum(x, -1))
        same_scan(SC.cummax_cuda(x, 0), ember.cummax(x, 0))
    same(SC.logcumsumexp_cuda(ember.tensor(2.5), 0), ember.logcumsumexp(ember.tensor(2.5), 0))
    with pytest.raises(NotImplementedError):
        SC.logcumsumexp_cuda(ember.ones(3, dtype=ember.int64), 0)
    with pytest.raises(IndexError):
        SC.cumsum_cuda(f, 2)


def test_scan_long_rows_split_over_programs(monkeypatch):
    monkeypatch.setattr(SC, "TILE", 16)
    monkeypatch.setattr(SC, "SPLIT_MIN_COLS", 32)
    monkeypatch.setattr(SC, "SPLIT_MIN_CHUNK", 8)
    modes = []
    launch = SC._launch
    monkeypatch.setattr(SC, "_launch", lambda fn, grid, args, consts, dev: (modes.append((consts["MODE"], grid)),
                                                                             launch(fn, grid, args, consts, dev)))
    x, _ = make_pair((2, 40), "float32", low=-1, high=1)                # 3 chunks of one 16-column tile
    x = x.round()
    for name in ("cumsum", "logcumsumexp", "cummax", "cummin"):
        same_scan(SC.KERNELS[name](x, 1), getattr(ember, name)(x, 1))
    same(SC.cumprod_cuda(x * 0.1 + 1.0, 1), ember.cumprod(x * 0.1 + 1.0, 1))
    t, _ = make_pair((40, 3), "int64", low=-3, high=3)                # rows of unit stride, scanned along dim 0
    same_scan(SC.cummax_cuda(t, 0), ember.cummax(t, 0))
    same(SC.cumsum_cuda(t, 0), ember.cumsum(t, 0))
    assert modes[:2] == [(1, (2, 3)), (2, (2, 3))] and modes[-1] == (2, (1, 5)), modes
