"""Fused NLL / cross-entropy on CUDA against torch CUDA (GPU machine)."""
import numpy as np
import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]
torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("shape", [(1000, 37), (5, 3000), (4, 7, 6)])
def test_cross_entropy_vs_torch(dtype, reduction, weighted, shape):
    rng = np.random.default_rng(0)
    C = shape[1]
    x = rng.standard_normal(shape) * 2
    tshape = (shape[0],) + shape[2:]
    t = rng.integers(0, C, tshape)
    t.reshape(-1)[::7] = -100
    w = rng.random(C) + 0.5
    tdt = getattr(torch, dtype)
    tx = torch.tensor(x, dtype=tdt, device="cuda", requires_grad=True)
    ex = ember.tensor(x, dtype=getattr(ember, dtype), device="cuda", requires_grad=True)
    tw = torch.tensor(w, dtype=tdt, device="cuda") if weighted else None
    ew = ember.tensor(w, dtype=getattr(ember, dtype), device="cuda") if weighted else None
    tl = torch.nn.functional.cross_entropy(tx, torch.tensor(t, device="cuda"), weight=tw, reduction=reduction)
    el = ember.nn.functional.cross_entropy(ex, ember.tensor(t, device="cuda"), weight=ew, reduction=reduction)
    tol = {"float32": 1e-5, "float16": 5e-3, "bfloat16": 3e-2}[dtype]
    np.testing.assert_allclose(el.detach().float().cpu().numpy(), tl.detach().float().cpu().numpy(), rtol=tol,
                               atol=tol)
    go = rng.standard_normal(tuple(tl.shape))
    tg, = torch.autograd.grad(tl, tx, torch.tensor(go, dtype=tdt, device="cuda"))
    eg, = ember.autograd.grad(el, ex, ember.tensor(go, dtype=getattr(ember, dtype), device="cuda"))
    np.testing.assert_allclose(eg.float().cpu().numpy(), tg.float().cpu().numpy(), rtol=tol, atol=tol)


def test_out_of_range_target_gives_nan_on_cuda():
    x = ember.zeros(3, 4, device="cuda")
    loss = ember.nn.functional.cross_entropy(x, ember.tensor([0, 9, 1], device="cuda"))
    assert np.isnan(loss.item())
