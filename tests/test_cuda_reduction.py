"""CUDA reductions and softmax (`backends/cuda/reduction.py`) against torch CUDA (`pytest -m cuda`)."""
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
    rng = np.random.default_rng(seed)
    e_dt, t_dt = DTYPES[dtype]
    base = shape[:-2] + (shape[-1], shape[-2]) if layout == "transposed" else shape
    if e_dt.category == 1:
        a = rng.integers(int(low), int(high) + 1, size=base)
    else:
        a = rng.uniform(low, high, size=base)
        if integral:
            a = np.round(a)
    t = torch.tensor(a).to(t_dt).cuda()
    e = ember.tensor(a, dtype=e_dt).cuda()
    if layout == "transposed":
        e, t = e.transpose(-1, -2), t.transpose(-1, -2)
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
