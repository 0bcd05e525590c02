"""Reductions, scans and softmax against PyTorch: values, shapes, dtypes, layouts and errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ember
from helpers import LAYOUTS, assert_same, from_torch, make_pair

# torch's intra-op thread handoff costs ~1 ms per call on these tiny tensors; one thread is 100x faster
torch.set_num_threads(1)
pytestmark = [pytest.mark.filterwarnings("ignore:.*degrees of freedom:UserWarning"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

SHAPE = (3, 4, 5)
DIMS = (None, 0, -1, (0, 2))
DTYPES = ("float32", "float64", "float16", "bfloat16", "int32", "int64", "bool")
FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
INF, NAN = math.inf, math.nan
LOWP_PROD_TOL = {"float16": {"rtol": 2e-2, "atol": 1e-2}, "bfloat16": {"rtol": 6e-2, "atol": 2e-2}}


def _builtin_exc(exc: BaseException) -> type:
    """The first builtin class of a torch exception (torch raises e.g. _LinAlgError < RuntimeError)."""
    return next(c for c in type(exc).__mro__ if c.__module__ == "builtins")


def both(fe, ft, **tol):
    """Runs the torch reference; ember must give the same result, or raise the same exception type."""
    try:
        expected = ft()
    except Exception as exc:  # noqa: BLE001 - any torch error must be mirrored
        with pytest.raises(_builtin_exc(exc)):
            fe()
        return "raised"
    assert_same(fe(), expected, **tol)
    return "ok"


def _kw(d, k):
    return {} if d is None and not k else {"dim": d, "keepdim": k}


def pair_from(values, dtype=torch.float32):
    t = torch.tensor(values, dtype=dtype)
    return from_torch(t), t


# ---- dim reductions: every op x dtype x layout x dim x keepdim ----------------------------------

REDUCE_OPS = ("sum", "nansum", "mean", "nanmean", "prod", "amax", "amin", "argmax", "argmin", "var", "std",
              "logsumexp", "norm", "all", "any", "count_nonzero")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_dims(op, dtype, layout):
    e, t = make_pair(SHAPE, dtype, layout=layout)
    # PyTorch's CPU prod accumulates float16/bfloat16 in their own precision; ember accumulates in
    # float32 (as its cumprod does), so up to 60 rounding steps may separate the two.
    tol = LOWP_PROD_TOL.get(dtype, {}) if op == "prod" else {}
    outcomes = []
    for d in DIMS:
        for k in (False, True):
            if op == "count_nonzero" and k:
                continue  # no keepdim in PyTorch
            if (op == "prod" and d is None and k) or (op == "logsumexp" and d is None):
                continue  # PyTorch rejects these spellings; ember accepts them (checked below)
            kw = {"dim": d} if op == "count_nonzero" else _kw(d, k)
            if op == "logsumexp":
                kw = {"dim": d, "keepdim": k}
            outcomes.append(both(lambda: getattr(e, op)(**kw), lambda: getattr(t, op)(**kw), **tol))
    assert outcomes


@pytest.mark.parametrize("op", ("sum", "mean", "amax", "var", "all", "nansum"))
def test_functional_forms_positional(op):
    e, t = make_pair(SHAPE, "float64", layout="transposed")
    for d in DIMS:
        both(lambda: getattr(ember, op)(e, d, True) if d is not None else getattr(ember, op)(e),
             lambda: getattr(torch, op)(t, d, True) if d is not None else getattr(torch, op)(t))


def test_lenient_spellings():
    e, t = make_pair(SHAPE, "float32")
    assert_same(e.prod(keepdim=True), t.prod().reshape(1, 1, 1))
    assert_same(ember.logsumexp(e, None), torch.logsumexp(t, (0, 1, 2)))
    assert_same(e.logsumexp(()), torch.logsumexp(t, (0, 1, 2)))  # () = all dims, like sum


def test_empty_dim_list_means_all_but_not_for_all_any():
    e, t = make_pair(SHAPE, "float32")
    for op in ("sum", "mean", "amax", "amin", "nansum", "var", "std", "norm", "count_nonzero"):
        assert_same(getattr(e, op)(dim=[]), getattr(t, op)(dim=[]))
    for op in ("all", "any"):
        assert_same(getattr(e, op)(dim=()), getattr(t, op)(dim=()))
        r = getattr(e, op)(dim=())
        assert tuple(r.shape) == SHAPE and r.dtype is ember.bool


@pytest.mark.parametrize("dtype", ("uint8", "int8", "int16", "bool", "float32"))
def test_all_any_dtypes(dtype):
    e, t = make_pair((4, 6), dtype, low=0, high=2)
    for op in ("all", "any"):
        for d in (None, 0, 1, (0, 1)):
            both(lambda: getattr(e, op)(**_kw(d, False)), lambda: getattr(t, op)(**_kw(d, False)))
    assert e.all().dtype is (ember.uint8 if dtype == "uint8" else ember.bool)


def test_bool_results_do_not_alias_input():
    e, _ = make_pair((3, 4), "bool")
    r = e.all(dim=())
    before = r.numpy().copy()
    e.numpy()[...] = ~e.numpy()
    assert np.array_equal(r.numpy(), before)


# ---- dtypes and accumulation --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ("int8", "uint8", "int16", "int32", "int64", "bool"))
def test_integer_sum_prod_promote_to_int64(dtype):
    e, t = make_pair((4, 5), dtype)
    for op in ("sum", "prod", "nansum"):
        assert_same(getattr(e, op)(), getattr(t, op)())
        assert getattr(e, op)().dtype is ember.int64
        assert_same(getattr(e, op)(1), getattr(t, op)(1))


def test_integer_sum_does_not_overflow_small_dtype():
    e, t = pair_from([255] * 300, torch.uint8)
    assert_same(e.sum(), t.sum())
    assert e.sum().item() == 76500
    e, t = pair_from([1000] * 3, torch.int32)
    assert_same(e.prod(), t.prod())


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_low_precision_accumulates_in_float32(dtype):
    # 4096 ones: a float16/bfloat16 accumulator would stop at 2048/256; float32 gets 4096 exactly
    e, t = make_pair((4096,), dtype, low=1, high=1)
    assert_same(e.sum(), t.sum())
    assert e.sum().item() == 4096.0
    assert_same(e.mean(), t.mean())
    assert_same(e.cumsum(0), t.cumsum(0))


@pytest.mark.parametrize("op,dt", [("sum", "float64"), ("sum", "int32"), ("sum", "float16"), ("sum", "bool"),
                                   ("nansum", "float64"), ("mean", "float64"), ("mean", "float16"),
                                   ("prod", "float64"), ("nanmean", "float64")])
@pytest.mark.parametrize("src", ("float32", "int32", "bfloat16"))
def test_dtype_argument(op, dt, src):
    e, t = make_pair((3, 4), src, layout="transposed")
    ed, td = getattr(ember, dt), getattr(torch, dt)
    both(lambda: getattr(e, op)(dtype=ed), lambda: getattr(t, op)(dtype=td))
    both(lambda: getattr(e, op)(1, True, dtype=ed), lambda: getattr(t, op)(1, True, dtype=td))


def test_mean_int_raises_like_torch():
    e = ember.from_numpy(np.arange(3))
    with pytest.raises(RuntimeError, match=r"mean\(\): could not infer output dtype\. Input dtype must be "
                                           r"either a floating point or complex dtype\. Got: Long"):
        e.mean()
    with pytest.raises(RuntimeError, match="Got: Bool"):
        ember.mean(e > 1)
    with pytest.raises(RuntimeError, match="Optional dtype must be"):
        ember.from_numpy(np.ones(3, np.float32)).mean(dtype=ember.int64)
    assert_same(e.mean(dtype=ember.float32), torch.arange(3).mean(dtype=torch.float32))
    with pytest.raises(RuntimeError, match=r"nanmean\(\): expected input to have floating point"):
        e.nanmean()


# ---- 0-dim and empty tensors ----------------------------------------------------------------------

@pytest.mark.parametrize("op", REDUCE_OPS + ("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp",
                                             "softmax", "log_softmax"))
def test_zero_dim(op):
    e, t = pair_from(-2.5)
    scan = op.startswith(("cum", "log", "soft")) and op != "logsumexp"
    for d in ((0, -1) if scan else (None, 0, -1)):
        for k in ((False,) if scan or op == "count_nonzero" else (False, True)):
            if d is None and op in ("prod", "logsumexp"):
                continue
            kw = {"dim": d} if scan or op == "count_nonzero" else ({"dim": d, "keepdim": k} if d is not None
                                                                     else {})
            assert both(lambda: getattr(e, op)(**kw), lambda: getattr(t, op)(**kw)) == "ok", (op, d, k)
    with pytest.raises(IndexError, match="out of range"):
        getattr(e, op)(1) if op != "norm" else e.norm(2, 1)


def test_empty_reductions():
    e, t = make_pair((0, 3), "float32")
    for op in ("sum", "nansum", "mean", "nanmean", "prod", "var", "std", "logsumexp", "norm", "all", "any",
               "count_nonzero"):
        for d in (0, 1, (0, 1)):
            if op == "prod" and d == (0, 1):
                continue
            both(lambda: getattr(e, op)(d), lambda: getattr(t, op)(d))
    assert e.sum().item() == 0.0 and e.prod().item() == 1.0
    assert math.isnan(e.mean().item())
    assert e.logsumexp((0, 1)).item() == -INF
    for op in ("amax", "amin", "argmax", "argmin"):
        assert_same(getattr(e, op)(1), getattr(t, op)(1))  # reducing a non-empty dim is fine
    for op in ("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "softmax", "log_softmax"):
        assert_same(getattr(e, op)(0), getattr(t, op)(0))
    assert_same(e.max(1), t.max(1))


def test_max_min_of_empty_raise():
    e = ember.zeros(0, 3)
    with pytest.raises(RuntimeError,
                       match=r"max\(\): Expected reduction dim to be specified for input\.numel\(\) == 0"):
        e.max()
    with pytest.raises(RuntimeError, match=r"min\(\): Expected reduction dim to be specified"):
        ember.min(e)
    with pytest.raises(IndexError, match=r"max\(\): Expected reduction dim 0 to have non-zero size"):
        e.max(0)
    with pytest.raises(IndexError, match=r"min\(\): Expected reduction dim 0 to have non-zero size"):
        e.min(-2)
    with pytest.raises(IndexError, match=r"amax\(\): Expected reduction dim 0 to have non-zero size"):
        e.amax(0)
    with pytest.raises(RuntimeError, match=r"amin\(\): Expected reduction dim to be specified"):
        e.amin()
    with pytest.raises(IndexError, match=r"argmax\(\): Expected reduction dim to be specified"):
        e.argmax()
    with pytest.raises(IndexError, match=r"argmin\(\): Expected reduction dim 0 to have non-zero size"):
        e.argmin(0)
    with pytest.raises(RuntimeError, match=r"aminmax\(\): cannot compute aminmax over an empty dimension"):
        ember.aminmax(e)
    with pytest.raises(IndexError, match="aminmax"):
        ember.aminmax(e, dim=0)


# ---- max / min ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES + ("uint8",))
@pytest.mark.parametrize("name", ("max", "min"))
def test_max_min_forms(name, dtype, layout):
    e, t = make_pair(SHAPE, dtype, layout=layout)
    e2, t2 = make_pair(SHAPE, dtype, seed=1)
    assert_same(getattr(e, name)(), getattr(t, name)())
    assert_same(getattr(ember, name)(e), getattr(torch, name)(t))
    for d in (0, -1, 1):
        for k in (False, True):
            r, rt = getattr(e, name)(d, k), getattr(t, name)(d, k)
            assert_same(r.values, rt.values)
            assert_same(r.indices, rt.indices)
            vals, idx = r  # unpacks like a tuple
            assert vals is r.values and idx is r.indices
            assert_same(getattr(ember, name)(e, dim=d, keepdim=k), getattr(torch, name)(t, dim=d, keepdim=k))
    assert_same(getattr(ember, name)(e, e2), getattr(torch, name)(t, t2))  # elementwise maximum/minimum
    assert_same(getattr(e, name)(e2), getattr(t, name)(t2))
    assert_same(getattr(ember, name)(e, other=e2), getattr(torch, name)(t, other=t2))


def test_max_return_type():
    e, t = make_pair((2, 3), "float32")
    r = e.max(1)
    assert type(r).__name__ == "max" and r._fields == ("values", "indices")
    assert repr(r).startswith("ember.return_types.max(")
    assert type(e.min(0)).__name__ == "min"
    assert isinstance(r, tuple) and len(r) == 2
    assert ember.return_types.max is type(r)


def test_max_dim_rejects_tuple_dims_like_torch():
    e, t = make_pair(SHAPE, "float32")
    for fe, ft in ((lambda: e.max((0, 1)), lambda: t.max((0, 1))),
                   (lambda: e.argmax((0, 1)), lambda: t.argmax((0, 1))),
                   (lambda: e.prod((0, 1)), lambda: t.prod((0, 1))),
                   (lambda: e.max(keepdim=True), lambda: t.max(keepdim=True))):
        assert both(fe, ft) == "raised"


def test_argmax_ties_take_first_index_and_flatten():
    e, t = pair_from([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    for d in (None, 0, 1):
        for k in (False, True):
            for op in ("argmax", "argmin"):
                assert_same(getattr(e, op)(dim=d, keepdim=k), getattr(t, op)(dim=d, keepdim=k))
    assert e.argmax().item() == 1 and e.argmin().item() == 5
    assert tuple(e.argmax(keepdim=True).shape) == (1, 1)
    assert e.max(1).indices.tolist() == [1, 0]


def test_argmax_bool_raises():
    e = ember.from_numpy(np.array([True, False]))
    with pytest.raises(RuntimeError, match=r"argmax\(\): does not support bool input"):
        e.argmax()
    assert e.max().item() is True and e.amax().dtype is ember.bool


def test_nan_propagates_in_max_min():
    e, t = pair_from([[1.0, NAN, 3.0, NAN], [4.0, 2.0, -1.0, 0.0]])
    for op in ("max", "min", "amax", "amin"):
        assert_same(getattr(e, op)(), getattr(t, op)())
        assert math.isnan(getattr(e, op)().item())
    for op in ("argmax", "argmin"):
        assert_same(getattr(e, op)(), getattr(t, op)())
        assert_same(getattr(e, op)(1), getattr(t, op)(1))
    for op in ("max", "min"):
        r, rt = getattr(e, op)(1), getattr(t, op)(1)
        assert_same(r.values, rt.values)
        assert_same(r.indices, rt.indices)
        assert r.indices.tolist()[0] == 1
    for op in ("amax", "amin"):
        assert_same(getattr(e, op)(1), getattr(t, op)(1))
    assert_same(e.amax((0, 1)), t.amax((0, 1)))


@pytest.mark.parametrize("dtype", ("float32", "bfloat16", "int32", "bool"))
def test_aminmax(dtype):
    e, t = make_pair(SHAPE, dtype, layout="sliced")
    r, rt = ember.aminmax(e), torch.aminmax(t)
    assert_same(r.min, rt.min)
    assert_same(r.max, rt.max)
    for d in (0, -1):
        for k in (False, True):
            r, rt = e.aminmax(dim=d, keepdim=k), torch.aminmax(t, dim=d, keepdim=k)
            assert type(r).__name__ == "aminmax"
            assert_same(tuple(r), tuple(rt))


# ---- var / std ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ("var", "std"))
def test_var_std_corrections(name, dtype):
    e, t = make_pair(SHAPE, dtype, layout="transposed")
    fe, ft = getattr(e, name), getattr(t, name)
    for d in DIMS:
        for corr in (0, 1, 2, 0.5, 7):
            assert_same(fe(d, correction=corr), ft(d, correction=corr))
            assert_same(fe(d, keepdim=True, correction=corr), ft(d, keepdim=True, correction=corr))
        assert_same(fe(d, unbiased=False), ft(d, unbiased=False))
        if d is not None:
            assert_same(fe(d, False, True), ft(d, False, True))  # legacy (dim, unbiased, keepdim)
    assert_same(fe(False), ft(False))  # legacy var(x, unbiased)
    assert_same(fe(True), ft(True))


def test_var_of_offset_data_along_a_strided_axis():
    """float32 data with a large common offset, reduced along a non-contiguous axis (NumPy's naive
    float32 sum there lost the mean: var came out 55 instead of 0.083)."""
    a = (1e4 + np.random.default_rng(0).uniform(-0.5, 0.5, size=(100000, 2))).astype(np.float32)
    e, t = ember.tensor(a), torch.tensor(a)
    for name in ("var", "std"):
        np.testing.assert_allclose(getattr(e, name)(0).numpy(), getattr(t, name)(0).numpy(), rtol=1e-4)
    np.testing.assert_allclose(e.var(0).numpy(), a.astype(np.float64).var(0, ddof=1), rtol=1e-4)


@pytest.mark.parametrize("name", ("var_mean", "std_mean"))
def test_var_mean_std_mean(name):
    e, t = make_pair(SHAPE, "float64", layout="expanded")
    fe, ft = getattr(ember, name), getattr(torch, name)
    assert_same(fe(e), ft(t))
    assert_same(fe(e, 1), ft(t, 1))
    assert_same(fe(e, (0, 2), keepdim=True, correction=0), ft(t, (0, 2), keepdim=True, correction=0))
    assert_same(fe(e, 1, False), ft(t, 1, False))
    assert_same(fe(e, False), ft(t, False))
    r = fe(e, 0)
    assert isinstance(r, tuple) and len(r) == 2


def test_var_degenerate_and_errors():
    e, t = pair_from([1.0, 2.0])
    assert_same(e.var(correction=3), t.var(correction=3))  # divisor clamps to 0 -> inf
    assert e.var(correction=3).item() == INF
    e1, t1 = pair_from([[1.0, 2.0, 4.0]])
    assert_same(e1.var(0), t1.var(0))  # one sample: NaN
    with pytest.raises(RuntimeError, match="std and var only support floating point"):
        ember.from_numpy(np.arange(3)).var()
    with pytest.raises(RuntimeError, match="std and var only support floating point"):
        ember.from_numpy(np.arange(3)).std(0)
    with pytest.raises(TypeError, match="only one of 'unbiased'"):
        e.var(0, unbiased=True, correction=1)
    with pytest.raises(TypeError, match="dim"):
        e.var(1.0)


# ---- logsumexp ----------------------------------------------------------------------------------------

def test_logsumexp_stable_and_infinities():
    e, t = pair_from([[1000.0, 1000.0], [-1000.0, -1000.5], [INF, 1.0], [-INF, -INF], [INF, -INF],
                      [NAN, INF], [-INF, 3.0]])
    for k in (False, True):
        assert_same(e.logsumexp(1, k), t.logsumexp(1, k))
    r = e.logsumexp(1).tolist()
    assert r[0] == pytest.approx(1000 + math.log(2)) and r[2] == INF and r[3] == -INF and math.isnan(r[5])
    assert_same(e.logsumexp(0), t.logsumexp(0))


@pytest.mark.parametrize("dtype", ("int32", "int64", "bool", "float16", "bfloat16"))
def test_logsumexp_dtypes(dtype):
    e, t = make_pair((3, 4), dtype)
    assert_same(e.logsumexp(1), t.logsumexp(1))
    assert_same(ember.logsumexp(e, (0, 1), True), torch.logsumexp(t, (0, 1), True))


# ---- norm -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("p", (2, 1, INF, -INF, 0, 3, 0.5, -1, "fro", None))
def test_norm_orders(p, dtype, layout):
    e, t = make_pair(SHAPE, dtype, layout=layout)
    for d in DIMS:
        for k in (False, True):
            assert both(lambda: e.norm(p, d, k), lambda: t.norm(p, d, k)) == "ok", (d, k)
    assert_same(ember.norm(e, p), torch.norm(t, p))


def test_norm_matrix_forms_and_dtype():
    e, t = make_pair(SHAPE, "float64", layout="transposed")
    assert_same(e.norm("fro", dim=(2, 0), keepdim=True), t.norm("fro", dim=(2, 0), keepdim=True))
    for d in ((1, 2), (2, 0), (-1, -2)):
        for k in (False, True):
            assert_same(e.norm("nuc", dim=d, keepdim=k), t.norm("nuc", dim=d, keepdim=k))
    e2, t2 = make_pair((4, 3), "float32")
    assert_same(e2.norm("nuc"), t2.norm("nuc"))
    e3, t3 = make_pair(SHAPE, "float16")
    assert_same(e3.norm(dtype=ember.float32), t3.norm(dtype=torch.float32))
    assert_same(e3.norm(3, 1, dtype=ember.float64), t3.norm(3, 1, dtype=torch.float64))
    assert_same(e.norm(True), t.norm(True))  # p=True is p=1


def test_norm_errors():
    e, t = make_pair(SHAPE, "float32")
    for fe, ft in ((lambda: ember.from_numpy(np.arange(3)).norm(), lambda: torch.arange(3).norm()),
                   (lambda: e.norm("abc"), lambda: t.norm("abc")),
                   (lambda: e.norm("nuc"), lambda: t.norm("nuc")),
                   (lambda: e.norm("nuc", dim=1), lambda: t.norm("nuc", dim=1)),
                   (lambda: e.norm("fro", dim=(0, 1, 2)), lambda: t.norm("fro", dim=(0, 1, 2))),
                   (lambda: e.norm(dtype=ember.float16), lambda: t.norm(dtype=torch.float16)),
                   (lambda: ember.zeros(0).norm(INF), lambda: torch.zeros(0).norm(INF)),
                   (lambda: ember.zeros(0, 3).norm(-1, 0), lambda: torch.zeros(0, 3).norm(-1, 0)),
                   (lambda: e.norm(2, (0, 0)), lambda: t.norm(2, (0, 0)))):
        assert both(fe, ft) == "raised"
    with pytest.raises(RuntimeError, match=r"norm\(\).*floating point"):
        ember.from_numpy(np.arange(3)).norm()
    with pytest.raises(RuntimeError, match=r"norm\(\): cannot compute the inf norm on an empty tensor"):
        ember.zeros(0).norm(INF)
    assert_same(ember.zeros(0, 3).norm(INF, 1), torch.zeros(0, 3).norm(INF, 1))  # empty dim not reduced


# ---- count_nonzero -------------------------------------------------------------------------------------

def test_count_nonzero():
    e, t = make_pair((4, 5, 6), "int32", low=-1, high=1)
    for d in (None, 0, -1, (0, 2), [1]):
        assert_same(ember.count_nonzero(e, d), torch.count_nonzero(t, d))
    assert e.count_nonzero().dtype is ember.int64


# ---- scans -------------------------------------------------------------------------------------------------

SCAN_OPS = ("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", SCAN_OPS)
def test_scans(op, dtype, layout):
    e, t = make_pair(SHAPE, dtype, low=-2, high=2, layout=layout)
    for d in (0, -1, 1):
        both(lambda: getattr(e, op)(d), lambda: getattr(t, op)(d))
        both(lambda: getattr(ember, op)(e, dim=d), lambda: getattr(torch, op)(t, dim=d))
    if op in ("cummax", "cummin") and dtype != "bool":
        r = getattr(e, op)(1)
        assert r._fields == ("values", "indices") and r.indices.dtype is ember.int64


@pytest.mark.parametrize("op", ("cumsum", "cumprod"))
@pytest.mark.parametrize("dt", ("float64", "float16", "int32", "uint8"))
def test_scan_dtype_argument(op, dt):
    for src in ("float32", "int64", "uint8"):
        e, t = make_pair((3, 6), src, low=0, high=3)
        both(lambda: getattr(e, op)(1, dtype=getattr(ember, dt)), lambda: getattr(t, op)(1, dtype=getattr(torch, dt)))
    assert ember.from_numpy(np.ones(3, np.int32)).cumsum(0).dtype is ember.int64


def test_cummax_ties_and_nan():
    e, t = pair_from([[3.0, 1.0, 3.0, 1.0, 5.0], [3.0, NAN, 3.0, NAN, 5.0], [1.0, 1.0, 0.0, 0.0, 1.0]])
    for op in ("cummax", "cummin"):
        r, rt = getattr(e, op)(1), getattr(t, op)(1)
        assert_same(r.values, rt.values)
        assert_same(r.indices, rt.indices)
    assert e.cummax(1).indices.tolist()[0] == [0, 0, 2, 2, 4]
    assert e.cummax(1).indices.tolist()[1] == [0, 1, 1, 3, 3]


def test_scan_errors():
    e, t = make_pair(SHAPE, "float32")
    for op in SCAN_OPS + ("softmax", "log_softmax"):
        assert both(lambda: getattr(e, op)(3), lambda: getattr(t, op)(3)) == "raised"
        assert both(lambda: getattr(e, op)((0,)), lambda: getattr(t, op)((0,))) == "raised"
        with pytest.raises(TypeError):
            getattr(e, op)()
    with pytest.raises(IndexError, match=r"cumsum\(\): dim out of range"):
        e.cumsum(-4)


# ---- softmax ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ("softmax", "log_softmax"))
def test_softmax(op, dtype, layout):
    e, t = make_pair(SHAPE, dtype, layout=layout)
    for d in (0, -1, 1):
        both(lambda: getattr(e, op)(d), lambda: getattr(t, op)(d))
        both(lambda: getattr(ember, op)(e, d, ember.float64), lambda: getattr(torch, op)(t, d, torch.float64))
        both(lambda: getattr(e, op)(d, dtype=ember.float16), lambda: getattr(t, op)(d, dtype=torch.float16))


def test_softmax_stability_and_infinities():
    e, t = pair_from([[1000.0, 1001.0, 999.0], [-INF, -INF, -INF], [INF, 1.0, 0.0], [-INF, 0.0, 1.0],
                      [-1e4, 0.0, 1e4]])
    for op in ("softmax", "log_softmax"):
        assert_same(getattr(e, op)(1), getattr(t, op)(1))
    assert e.softmax(1).tolist()[0] == pytest.approx(t.softmax(1)[0].tolist(), rel=1e-6)
    s = e.softmax(1).tolist()
    assert s[3][0] == 0.0 and all(math.isnan(v) for v in s[1])


def test_softmax_int_raises():
    e = ember.from_numpy(np.arange(3))
    with pytest.raises(NotImplementedError, match="softmax"):
        e.softmax(0)
    with pytest.raises(RuntimeError):  # NotImplementedError is a RuntimeError, as in PyTorch
        e.log_softmax(0)
    assert_same(e.softmax(0, dtype=ember.float32), torch.arange(3).softmax(0, dtype=torch.float32))


# ---- dims and argument errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("op", ("sum", "mean", "amax", "all", "var", "nansum", "logsumexp", "count_nonzero",
                                "argmax", "prod"))
def test_dim_errors(op):
    e, t = make_pair(SHAPE, "float32")
    with pytest.raises(IndexError, match=rf"{op}\(\): dim out of range"):
        getattr(e, op)(3)
    assert both(lambda: getattr(e, op)(-4), lambda: getattr(t, op)(-4)) == "raised"
    if op not in ("argmax", "prod"):
        with pytest.raises(RuntimeError, match="appears multiple times"):
            getattr(e, op)((0, -3))
        assert both(lambda: getattr(e, op)((1, 1)), lambda: getattr(t, op)((1, 1))) == "raised"
    with pytest.raises(TypeError, match="dim"):
        getattr(e, op)(1.0)


def test_non_tensor_input():
    for fn in (ember.sum, ember.max, ember.min, ember.softmax, ember.aminmax, ember.var_mean, ember.std_mean):
        with pytest.raises(TypeError, match="Tensor"):
            fn([1.0, 2.0]) if fn is not ember.softmax else fn([1.0], 0)


# ---- metas and methods ----------------------------------------------------------------------------------

META_CASES = [
    ("sum", ((0, 2), True), {"dtype": ember.float64}), ("sum", (None,), {}), ("prod", (1,), {}),
    ("mean", (-1,), {}), ("nanmean", ((0, 1),), {}), ("nansum", (), {}), ("amax", ((0, 1), True), {}),
    ("amin", (), {}), ("argmax", (None, True), {}), ("argmin", (1,), {}), ("var", (1, None, True), {}),
    ("std", (), {"correction": 0}), ("logsumexp", ((1, 2),), {}), ("norm", (3, 1, True), {}),
    ("norm", ("nuc", (0, 2)), {}), ("all", (1,), {}), ("any", ((),), {}), ("count_nonzero", (0,), {}),
    ("cumsum", (1,), {}), ("cumprod", (0,), {"dtype": ember.float64}), ("softmax", (-1,), {}),
    ("log_softmax", (0, ember.float64), {}), ("logcumsumexp", (2,), {}),
]


@pytest.mark.parametrize("name,args,kw", META_CASES)
def test_meta_matches_kernel(name, args, kw):
    e, _ = make_pair(SHAPE, "float32")
    op = ember._OPS[name]
    r = op.fn(e, *args, **kw)
    shape, dt = op.meta(e, *args, **kw)
    assert tuple(shape) == tuple(r.shape) and dt is r.dtype


def test_meta_multi_output():
    e, _ = make_pair(SHAPE, "float16")
    for name, args in (("_max_dim", (1, True)), ("_min_dim", (-1,)), ("cummax", (0,)), ("cummin", (2,))):
        op = ember._OPS[name]
        r = op.fn(e, *args)
        meta = op.meta(e, *args)
        assert [(tuple(s), d) for s, d in meta] == [(tuple(x.shape), x.dtype) for x in r]
    with pytest.raises(RuntimeError, match="could not infer output dtype"):
        ember._OPS["mean"].meta(ember.from_numpy(np.arange(3)))


def test_methods_and_exports():
    e, t = make_pair((2, 3), "float32")
    for name in ("sum", "mean", "prod", "amax", "argmax", "var", "std", "logsumexp", "norm", "all", "any",
                 "count_nonzero", "cumsum", "cummax", "softmax", "log_softmax", "max", "min", "aminmax",
                 "nansum", "nanmean"):
        assert callable(getattr(ember.Tensor, name)), name
    for name in ("max", "min", "aminmax", "var_mean", "std_mean", "sum", "softmax", "cummin"):
        assert callable(getattr(ember, name)), name
    r = e.sum(1)
    assert_same(r, t.sum(1))
    assert not np.shares_memory(r.numpy(), e.numpy())
    z, zt = pair_from(4.0)
    m = z.max(0)
    z.numpy()[...] = 9.0
    assert m.values.item() == 4.0  # values do not alias the input
    assert_same(m.values, zt.max(0).values)


@pytest.mark.parametrize("name,args", [("sum", (0, True)), ("argmax", (0, True)), ("prod", (-1, True)),
                                       ("amax", ((), True)), ("_max_dim", (0, True)), ("cumsum", (0,)),
                                       ("norm", (2, 0, True)), ("softmax", (0,))])
def test_meta_zero_dim(name, args):
    e, _ = pair_from(1.5)
    op = ember._OPS[name]
    r, meta = op.fn(e, *args), op.meta(e, *args)
    if isinstance(r, tuple):
        r, meta = r[0], meta[0]
    assert tuple(meta[0]) == tuple(r.shape) == () and meta[1] is r.dtype
    bad = (2, 1, True) if name == "norm" else (1,) + args[1:]  # dim 1 on a 0-dim tensor
    with pytest.raises(IndexError):
        op.meta(e, *bad)
