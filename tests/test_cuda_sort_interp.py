"""The CUDA sorting kernels (`backends/cuda/sort.py`: sort, argsort, topk, kthvalue, unique) run on
CPU tensors through Triton's interpreter (`TRITON_INTERPRET=1`), compared with ember's CPU backend.
Rows are short (the interpreter is slow); the merge path for long rows and unique's multi-block
scan run with their tile/block sizes patched down. On a machine with a GPU these tests are left to
`tests/test_cuda_sort.py`. The kernels get valid arguments only: the ops' checks are their metas', run
by the entry point and tested for every backend by the sample table (tests/samples/shape.py)."""
import math
import os

import numpy as np
import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernels are tested by tests/test_cuda_sort.py",
                allow_module_level=True)
triton = pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from helpers import DTYPES, make_pair  # noqa: E402

from ember.backends.cuda import sort as S  # noqa: E402

ALL = ["float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"]
NAN, INF = math.nan, math.inf


def tied(shape, dtype, seed=0):
    """Small integers (many ties) as `dtype`."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return ember.from_numpy(rng.random(shape) > 0.5)
    a = rng.integers(0 if dtype == "uint8" else -3, 4, size=shape)
    return ember.from_numpy(a.astype(np.float64).astype(DTYPES[dtype][0].np))


def same(got, expected):
    """Equal dtype, shape and values (NaN equal to NaN)."""
    assert got.dtype is expected.dtype, (got.dtype, expected.dtype)
    assert tuple(got.shape) == tuple(expected.shape), (got.shape, expected.shape)
    if got.dtype in (ember.float16, ember.bfloat16):
        got, expected = got.float(), expected.float()
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


def same_all(got, expected):
    if isinstance(expected, ember.Tensor):
        same(got, expected)
        return
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        same(g, e)


@pytest.mark.parametrize("dtype", ALL)
def test_sort_with_ties_is_stable_like_cpu(dtype):
    x = tied((3, 9), dtype)
    for desc in (False, True):
        same_all(S.sort_cuda(x, -1, desc), ember.sort(x, -1, desc))
    same(S.argsort_cuda(x, 0, True), ember.argsort(x, 0, True))


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_sort_nan_inf_and_signed_zero(dtype):
    a = [[1.0, NAN, -INF, 0.0, -0.0, INF, NAN, -2.0, 1.0], [NAN, 3.0, -0.0, 0.0, NAN, -1.0, 2.0, -INF, 0.5]]
    x = ember.tensor(a).to(DTYPES[dtype][0])
    for desc in (False, True):
        same_all(S.sort_cuda(x, 1, desc), ember.sort(x, 1, desc))
        same_all(S.sort_cuda(x, 0, desc), ember.sort(x, 0, desc))


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced", "expanded"])
def test_sort_any_dim_and_layout(layout):
    x, _ = make_pair((3, 4, 5), "float32", layout=layout)
    for d in (0, 1, 2, -2):
        same_all(S.sort_cuda(x, d, d % 2 == 1), ember.sort(x, d, d % 2 == 1))


def test_sort_dims_that_do_not_collapse_use_a_copy():
    x, _ = make_pair((2, 3, 4, 5), "float32")
    x = x.permute(2, 0, 3, 1)   # (4, 2, 5, 3)
    for d in (1, 2):
        same_all(S.sort_cuda(x, d), ember.sort(x, d))


def test_zero_dim_and_empty():
    x = ember.tensor(2.5)
    same_all(S.sort_cuda(x), ember.sort(x))
    same_all(S.sort_cuda(x, 0, True), ember.sort(x, 0, True))
    same(S.argsort_cuda(x), ember.argsort(x))
    same_all(S.topk_cuda(x, 1), ember.topk(x, 1))
    same_all(S.kthvalue_cuda(x, 1), ember.kthvalue(x, 1))
    same_all(S.unique_cuda(x, return_inverse=True, return_counts=True),
             ember.unique(x, return_inverse=True, return_counts=True))
    e = ember.zeros(3, 0)
    for d in (0, 1):
        same_all(S.sort_cuda(e, d), ember.sort(e, d))
        same(S.argsort_cuda(e, d), ember.argsort(e, d))
    same_all(S.topk_cuda(e, 0), ember.topk(e, 0))
    same_all(S.kthvalue_cuda(e, 2, 0), ember.kthvalue(e, 2, 0))
    same_all(S.unique_cuda(e, return_inverse=True, return_counts=True),
             ember.unique(e, return_inverse=True, return_counts=True))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int64", "uint8"])
def test_topk(dtype):
    x = tied((4, 9), dtype)
    for k, d, largest in [(0, 1, True), (1, 1, True), (4, 1, False), (9, -1, True), (3, 0, True), (4, 0, False)]:
        same_all(S.topk_cuda(x, k, d, largest), ember.topk(x, k, d, largest))


def test_kthvalue():
    x, _ = make_pair((4, 7), "float32", layout="transposed")   # no ties: indices are unique
    for k, d, keepdim in [(1, 1, False), (4, 1, True), (7, -1, False), (2, 0, True), (4, 0, False)]:
        same_all(S.kthvalue_cuda(x, k, d, keepdim), ember.kthvalue(x, k, d, keepdim))
    t = tied((5, 8), "int32")                                   # ties: same values, an index holding it
    v, i = S.kthvalue_cuda(t, 3, 1, True)
    same(v, ember.kthvalue(t, 3, 1, True).values)
    same(ember.gather(t, 1, i), v)
    x = ember.tensor([[3.0, NAN, 1.0, 2.0]])                    # NaN is the largest
    same_all(S.kthvalue_cuda(x, 4), ember.kthvalue(x, 4))
    same_all(S.kthvalue_cuda(x, 3), ember.kthvalue(x, 3))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_long_rows_merge_path(monkeypatch, dtype):
    monkeypatch.setattr(S, "MAX_TILE", 16)      # rows of 20: 3 runs of 8, then 2 merge passes
    monkeypatch.setattr(S, "RUN", 8)
    monkeypatch.setattr(S, "MERGE_BLOCK", 32)
    x = tied((2, 20), dtype, seed=1)
    x[0, 5], x[1, 13], x[1, 2] = NAN, NAN, -0.0
    same_all(S.sort_cuda(x, 1), ember.sort(x, 1))
    xt = x.t()                                   # sorted dim first: rows strided in memory
    same_all(S.sort_cuda(xt, 0, True), ember.sort(xt, 0, True))
    same(S.kthvalue_cuda(xt, 11, 0, True).values, ember.kthvalue(xt, 11, 0, True).values)


@pytest.mark.parametrize("dtype", ["bfloat16", "int64", "bool"])
def test_unique_flat(monkeypatch, dtype):
    monkeypatch.setattr(S, "UNIQUE_BLOCK", 8)    # 40 items: 5 blocks, scanned in 3 chunks
    monkeypatch.setattr(S, "SCAN_BLOCK", 2)
    x = tied((5, 8), dtype, seed=2)
    for inv, cnt in [(False, False), (True, True)]:
        same_all(S.unique_cuda(x, True, inv, cnt), ember.unique(x, True, inv, cnt))
    xt = x.t()
    same_all(S.unique_cuda(xt, False, True, False), ember.unique(xt, False, True, False))


def test_unique_nan_signed_zero_and_long(monkeypatch):
    monkeypatch.setattr(S, "MAX_TILE", 8)
    monkeypatch.setattr(S, "RUN", 4)
    x = ember.tensor([NAN, 1.0, NAN, -0.0, 0.0, 2.0, 1.0, -INF, INF, 2.0, NAN, 0.0])
    same_all(S.unique_cuda(x, True, True, True), ember.unique(x, True, True, True))
    same_all(S.unique_cuda(x, True, False, True), ember.unique(x, True, False, True))


def test_unique_dim(monkeypatch):
    monkeypatch.setattr(S, "UNIQUE_BLOCK", 4)
    monkeypatch.setattr(S, "SCAN_BLOCK", 2)
    rng = np.random.default_rng(3)
    rows = rng.integers(-2, 2, size=(4, 3))
    x = ember.from_numpy(rows[rng.integers(0, 4, size=9)].astype(np.int32))        # (9, 3), repeated rows
    for inv, cnt in [(False, False), (True, True)]:
        same_all(S.unique_cuda(x, True, inv, cnt, 0), ember.unique(x, True, inv, cnt, 0))
    y = ember.from_numpy(np.stack([rows[:, :2], rows[:, 1:]], 0).astype(np.float32))   # (2, 4, 2)
    y = ember.cat([y, y[:, :2]], 1)                                                   # (2, 6, 2)
    same_all(S.unique_cuda(y, True, True, True, 1), ember.unique(y, True, True, True, 1))
    yt = y.transpose(0, 2)
    same_all(S.unique_cuda(yt, True, True, True, 2), ember.unique(yt, True, True, True, 2))
    monkeypatch.setattr(S, "MAX_TILE", 4)       # 9 slices: the merge path with the slice order gathered
    monkeypatch.setattr(S, "RUN", 4)
    same_all(S.unique_cuda(x, True, True, True, 0), ember.unique(x, True, True, True, 0))
    for e in (ember.zeros(3, 0), ember.zeros(0, 3)):   # empty slices are all equal; no slices
        for d in (0, 1):
            same_all(S.unique_cuda(e, True, True, True, d), ember.unique(e, True, True, True, d))
