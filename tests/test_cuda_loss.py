"""Fused NLL / cross-entropy on CUDA against torch CUDA (GPU machine); a target out of range raises
at the next synchronisation (the device-side checks of `checks.py`)."""
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
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_vs_torch(dtype, reduction, weighted, shape, smoothing):
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
    if smoothing and dtype != "float32":
        # torch computes the smoothing term in the 16-bit dtype, where the sum over classes of the log-probabilities
        # overflows float16 (inf at 37 classes): the reference is torch in float32 on the same rounded values
        tx = tx.detach().float().requires_grad_()
        tw = tw.float() if weighted else None
    tl = torch.nn.functional.cross_entropy(tx, torch.tensor(t, device="cuda"), weight=tw, reduction=reduction,
                                           label_smoothing=smoothing)
    el = ember.nn.functional.cross_entropy(ex, ember.tensor(t, device="cuda"), weight=ew, reduction=reduction,
                                           label_smoothing=smoothing)
    tol = {"float32": 1e-5, "float16": 5e-3, "bfloat16": 3e-2}[dtype]
    np.testing.assert_allclose(el.detach().float().cpu().numpy(), tl.detach().float().cpu().numpy(), rtol=tol,
                               atol=tol)
    go = rng.standard_normal(tuple(tl.shape))
    tg, = torch.autograd.grad(tl, tx, torch.tensor(go, dtype=tx.dtype, device="cuda"))
    eg, = ember.autograd.grad(el, ex, ember.tensor(go, dtype=getattr(ember, dtype), device="cuda"))
    np.testing.assert_allclose(eg.float().cpu().numpy(), tg.float().cpu().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("bad", [4, 9, -1])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_out_of_range_target_raises_at_the_next_sync(bad, reduction):
    from ember.backends.cuda import checks
    msg = rf"CUDA error: index out of range in cross_entropy: got index {bad} for 4 classes \(found on the device"
    x = ember.zeros(3, 4, device="cuda", requires_grad=True)
    loss = ember.nn.functional.cross_entropy(x, ember.tensor([0, bad, -100], device="cuda"), reduction=reduction)
    with pytest.raises(RuntimeError, match=msg):
        loss.sum().item()
    assert not checks._pending and checks.err_tensor(x.device).cpu().tolist() == [0, 0, 0, 0]
    loss.sum().backward()                         # the backward kernel checks the targets too
    with pytest.raises(RuntimeError, match=msg):
        ember.cuda.synchronize()
    # later work on the device runs and reports nothing
    t = [0, 3, -100]
    el = ember.nn.functional.cross_entropy(x.detach(), ember.tensor(t, device="cuda"), reduction=reduction)
    tl = torch.nn.functional.cross_entropy(torch.zeros(3, 4, device="cuda"), torch.tensor(t, device="cuda"),
                                           reduction=reduction)
    np.testing.assert_allclose(el.cpu().numpy(), tl.cpu().numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_cross_entropy_under_autocast_matches_torch(dtype):
    """Under CUDA autocast the loss is float32 (computed from the 16-bit logits in place, no float32 copy) and
    the logits' grad keeps their dtype, as torch's. Values against the exact (float64) loss and grad of the same
    16-bit logits: torch 2.11's CUDA autocast path is further from them than ember's (H100, 2026-12-07: loss
    4.4e-5 relative, and the largest grads 2.5% low), so torch is the reference for dtypes and ember's error
    must not exceed torch's."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((512, 4096)) * 3
    t = rng.integers(0, 4096, 512)
    tdt, edt = getattr(torch, dtype), getattr(ember, dtype)
    ex = ember.tensor(x, dtype=edt, device="cuda", requires_grad=True)
    x16 = ex.detach().float().cpu().numpy()         # the 16-bit values, exactly
    tx = torch.tensor(x16, device="cuda").to(tdt).requires_grad_()
    with torch.autocast("cuda", dtype=tdt):
        tl = torch.nn.functional.cross_entropy(tx, torch.tensor(t, device="cuda"), label_smoothing=0.1)
    with ember.autocast("cuda", dtype=edt):
        el = ember.nn.functional.cross_entropy(ex, ember.tensor(t, device="cuda"), label_smoothing=0.1)
    assert el.dtype is ember.float32, el.dtype
    assert tl.dtype == torch.float32, tl.dtype
    x64 = torch.tensor(x16, dtype=torch.float64, requires_grad=True)
    l64 = torch.nn.functional.cross_entropy(x64, torch.tensor(t), label_smoothing=0.1)
    l64.backward()
    np.testing.assert_allclose(el.item(), l64.item(), rtol=1e-6, err_msg="the loss, against float64")
    assert abs(el.item() - l64.item()) <= abs(tl.item() - l64.item()) + 1e-6 * abs(l64.item())
    tl.backward()
    el.backward()
    assert ex.grad.dtype is edt, ex.grad.dtype
    exact = x64.grad.numpy()
    eps = float(torch.finfo(tdt).eps)
    got, theirs = ex.grad.double().cpu().numpy(), tx.grad.double().cpu().numpy()
    scale = float(np.abs(exact).max())
    # atol: float32 arithmetic on the scale of the largest grad (p - smoothing / C cancels to ~1e-12 for some
    # classes, where float32's exp is a few ulps off), and float16's subnormal spacing
    atol = max(1e-6 * scale, float(torch.finfo(tdt).tiny) * eps)
    np.testing.assert_allclose(got, exact, rtol=eps, atol=atol, err_msg="the logits' grad, against float64")
    assert np.abs(got - exact).max() <= np.abs(theirs - exact).max() + eps * scale
