"""Fused layer norm and RMS norm on CUDA against torch CUDA: outputs and gradients (GPU machine)."""
import numpy as np
import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]
torch = pytest.importorskip("torch")

TOL = {"float32": 2e-5, "float16": 4e-3, "bfloat16": 3e-2, "float64": 1e-10}


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("shape,ns", [((64, 17, 64), (64,)), ((3, 4, 5, 6), (5, 6)), ((2, 20000), (20000,)),
                                      ((0, 8), (8,))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_forward_backward_vs_torch(dtype, shape, ns, affine):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 2 + 0.5
    w, b, gy = rng.standard_normal(ns), rng.standard_normal(ns), rng.standard_normal(shape)
    tdt = getattr(torch, dtype)
    tx = torch.tensor(x, dtype=tdt, device="cuda", requires_grad=True)
    ex = ember.tensor(x, dtype=getattr(ember, dtype), device="cuda", requires_grad=True)
    tw = torch.tensor(w, dtype=tdt, device="cuda", requires_grad=True) if affine else None
    tb = torch.tensor(b, dtype=tdt, device="cuda", requires_grad=True) if affine else None
    ew = ember.tensor(w, dtype=getattr(ember, dtype), device="cuda", requires_grad=True) if affine else None
    eb = ember.tensor(b, dtype=getattr(ember, dtype), device="cuda", requires_grad=True) if affine else None
    ty = torch.nn.functional.layer_norm(tx, ns, tw, tb)
    ey = ember.nn.functional.layer_norm(ex, ns, ew, eb)
    tol = TOL[dtype]
    np.testing.assert_allclose(ey.detach().float().cpu().numpy(), ty.detach().float().cpu().numpy(), rtol=tol,
                               atol=tol)
    ins_t = [t for t in (tx, tw, tb) if t is not None]
    ins_e = [t for t in (ex, ew, eb) if t is not None]
    tg = torch.autograd.grad(ty, ins_t, torch.tensor(gy, dtype=tdt, device="cuda"))
    eg = ember.autograd.grad(ey, ins_e, ember.tensor(gy, dtype=getattr(ember, dtype), device="cuda"))
    for e, t in zip(eg, tg):
        scale = max(1.0, float(t.float().abs().max())) if t.numel() else 1.0
        np.testing.assert_allclose(e.float().cpu().numpy(), t.float().cpu().numpy(), rtol=tol * 4,
                                   atol=tol * 4 * scale)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("shape,ns", [((64, 17, 64), (64,)), ((3, 4, 5, 6), (5, 6)), ((2, 20000), (20000,)),
                                      ((0, 8), (8,))])
@pytest.mark.parametrize("affine", [True, False])
def test_rms_norm_forward_backward_vs_torch(dtype, shape, ns, affine):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 2 + 0.5
    w, gy = rng.standard_normal(ns), rng.standard_normal(shape)
    tdt, edt = getattr(torch, dtype), getattr(ember, dtype)
    tx = torch.tensor(x, dtype=tdt, device="cuda", requires_grad=True)
    ex = ember.tensor(x, dtype=edt, device="cuda", requires_grad=True)
    tw = torch.tensor(w, dtype=tdt, device="cuda", requires_grad=True) if affine else None
    ew = ember.tensor(w, dtype=edt, device="cuda", requires_grad=True) if affine else None
    ty = torch.nn.functional.rms_norm(tx, ns, tw)
    ey = ember.nn.functional.rms_norm(ex, ns, ew)
    tol = TOL[dtype]
    np.testing.assert_allclose(ey.detach().float().cpu().numpy(), ty.detach().float().cpu().numpy(), rtol=tol,
                               atol=tol)
    ins_t = [t for t in (tx, tw) if t is not None]
    ins_e = [t for t in (ex, ew) if t is not None]
    tg = torch.autograd.grad(ty, ins_t, torch.tensor(gy, dtype=tdt, device="cuda"))
    eg = ember.autograd.grad(ey, ins_e, ember.tensor(gy, dtype=edt, device="cuda"))
    for e, t in zip(eg, tg):
        scale = max(1.0, float(t.float().abs().max())) if t.numel() else 1.0
        np.testing.assert_allclose(e.float().cpu().numpy(), t.float().cpu().numpy(), rtol=tol * 4,
                                   atol=tol * 4 * scale)


def test_rms_norm_double_backward_and_mixed_precision_weight():
    """create_graph goes through the composite on the GPU too; a float32 weight with a bfloat16 input
    (mixed precision) keeps the output bfloat16 and the weight's grad float32, as torch."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((6, 32)), rng.standard_normal(32)
    grads = []
    for m in (torch, ember):
        mx = m.tensor(x, dtype=m.float32, device="cuda", requires_grad=True)
        mw = m.tensor(w, dtype=m.float32, device="cuda", requires_grad=True)
        y = m.nn.functional.rms_norm(mx, (32,), mw, 1e-5)
        gx, = m.autograd.grad((y ** 3).sum(), mx, create_graph=True)
        grads.append([t.detach().float().cpu().numpy() for t in m.autograd.grad((gx * gx).sum(), (mx, mw))])
        xb = m.tensor(x, dtype=m.bfloat16, device="cuda")
        yb = m.nn.functional.rms_norm(xb, (32,), mw)
        assert str(yb.dtype).endswith("bfloat16")
        assert str(m.autograd.grad(yb.float().sum(), mw)[0].dtype).endswith("float32")
    for e, t in zip(grads[1], grads[0]):
        np.testing.assert_allclose(e, t, rtol=1e-4, atol=1e-4)
