"""The CUDA reduction and softmax kernels (`backends/cuda/reduction.py`) run on CPU tensors through
Triton's interpreter (`TRITON_INTERPRET=1`), compared with ember's CPU backend. On a machine with a
GPU these tests are left to `tests/test_cuda_reduction.py`."""
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

from helpers import make_pair  # noqa: E402

from ember.backends.cuda import reduction as RD  # noqa: E402

TOL = {"float16": (2e-3, 2e-3), "bfloat16": (1.6e-2, 1e-2), "float32": (2e-5, 1e-5), "float64": (1e-12, 1e-12)}


def same(got, expected):
    assert got.dtype is expected.dtype, (got.dtype, expected.dtype)
    assert tuple(got.shape) == tuple(expected.shape), (got.shape, expected.shape)
    if got.dtype.is_floating_point:
        r, a = TOL[got.dtype.name]
        np.testing.assert_allclose(got.double().numpy(), expected.double().numpy(), rtol=r, atol=a, equal_nan=True)
    else:
        assert got.tolist() == expected.tolist()


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
    with pytest.raises(IndexError):
        RD.argmax_cuda(e)
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


def test_argmax_ties_nan_and_long_rows():
    x = ember.tensor([[3.0, 1.0, 3.0, float("nan"), float("nan")], [-1.0, -1.0, -5.0, -5.0, 0.0]])
    for f in ("argmax", "argmin"):
        same(RD.KERNELS[f](x, 1), getattr(ember, f)(x, 1))
        same(RD.KERNELS[f](x), getattr(ember, f)(x))
    y, _ = make_pair((3, 2500), "int64", low=-3, high=3)   # several column blocks, ties across blocks
    for f in ("argmax", "argmin"):
        same(RD.KERNELS[f](y, 1), getattr(ember, f)(y, 1))
        same(RD.KERNELS[f](y, 0), getattr(ember, f)(y, 0))
    with pytest.raises(RuntimeError):
        RD.argmax_cuda(ember.ones(3, dtype=ember.bool))


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
