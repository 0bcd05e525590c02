"""Matrix products on CUDA (cuBLAS via nvmath-python) against torch CUDA (`pytest -m cuda`)."""
import numpy as np
import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]
torch = pytest.importorskip("torch")
if ember.cuda.is_available():  # elsewhere the cuda marker deselects this module's tests
    pytest.importorskip("nvmath")
from helpers import DTYPES, E2T  # noqa: E402

TOL = {"float32": 2e-4, "float64": 1e-10, "float16": 2e-2, "bfloat16": 5e-2}


def pair(shape, dtype, seed=0, transposed=False):
    a = np.random.default_rng(seed).uniform(-1, 1, size=shape[:-2] + shape[-2:][::-1] if transposed else shape)
    e_dt, t_dt = DTYPES[dtype]
    e, t = ember.tensor(a, dtype=e_dt).cuda(), torch.tensor(a).to(t_dt).cuda()
    if transposed:
        e, t = e.transpose(-1, -2), t.transpose(-1, -2)
    return e, t


def check(e, t, dtype):
    assert e.device.type == "cuda" and tuple(e.shape) == tuple(t.shape) and E2T[e.dtype] == t.dtype
    tol = TOL[dtype]
    np.testing.assert_allclose(e.cpu().double().numpy(), t.cpu().double().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_mm_layouts(dtype, ta, tb):
    a, tA = pair((37, 29), dtype, transposed=ta)
    b, tB = pair((29, 41), dtype, seed=1, transposed=tb)
    check(ember.mm(a, b), torch.mm(tA, tB), dtype)
    check(a @ b, tA @ tB, dtype)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_bmm_and_batched_matmul(dtype):
    a, tA = pair((4, 17, 9), dtype)
    b, tB = pair((4, 9, 13), dtype, seed=1, transposed=True)
    check(ember.bmm(a, b), torch.bmm(tA, tB), dtype)
    c, tC = pair((3, 1, 5, 9), dtype, seed=2)
    d, tD = pair((7, 9, 6), dtype, seed=3)
    check(c @ d, tC @ tD, dtype)                       # broadcast batch dims
    check(a @ d[0], tA @ tD[0], dtype)                 # (b, m, k) @ (k, n)


def test_vector_cases_and_linear():
    v, tv = ember.arange(9.0).cuda(), torch.arange(9.0).cuda()
    m, tm = pair((9, 4), "float32")
    check(v @ m, tv @ tm, "float32")
    check(m.t() @ v, tm.t() @ tv, "float32")
    check(v @ v, tv @ tv, "float32")
    x, tx = pair((2, 5, 9), "float32")
    w, tw = pair((4, 9), "float32", seed=1)
    bias, tbias = ember.ones(4).cuda(), torch.ones(4).cuda()
    check(ember.linear(x, w, bias), torch.nn.functional.linear(tx, tw, tbias), "float32")


def test_errors():
    a = ember.ones(3, 4, device="cuda")
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        a @ ember.ones(3, 4, device="cuda")
    with pytest.raises(RuntimeError, match="same dtype"):
        a @ ember.ones(4, 2, dtype=ember.float64, device="cuda")


def test_matmul_gradients_on_cuda():
    a, tA = pair((6, 5), "float32")
    b, tB = pair((5, 3), "float32", seed=1)
    a.requires_grad_()
    b.requires_grad_()
    tA.requires_grad_()
    tB.requires_grad_()
    (a @ b).sum().backward()
    (tA @ tB).sum().backward()
    check(a.grad, tA.grad, "float32")
    check(b.grad, tB.grad, "float32")
