"""The fused NLL ops (nll_loss_forward / nll_loss_backward) against torch's aten ops, and the losses
built on them (double backward included)."""
import numpy as np
import pytest
import torch

import ember
from helpers import from_torch


def _case(n=9, c=5, seed=0, dtype=torch.float64, ignore=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=dtype).log_softmax(1)
    t = torch.randint(0, c, (n,), generator=g)
    if ignore:
        t[::4] = -100
    w = torch.rand(c, generator=g, dtype=dtype) + 0.5
    return x, t, w


@pytest.mark.parametrize("reduction", [0, 1, 2])
@pytest.mark.parametrize("weighted", [True, False])
def test_nll_ops_match_aten(reduction, weighted):
    x, t, w = _case()
    w = w if weighted else None
    tout, ttw = torch.ops.aten.nll_loss_forward(x, t, w, reduction, -100)
    eout, etw = ember.nll_loss_forward(from_torch(x), from_torch(t), from_torch(w) if weighted else None,
                                       reduction, -100)
    np.testing.assert_allclose(eout.numpy(), tout.numpy(), rtol=1e-12)
    if reduction:
        np.testing.assert_allclose(etw.numpy(), ttw.numpy(), rtol=1e-12)
    go = torch.randn(tout.shape, dtype=x.dtype)
    tg = torch.ops.aten.nll_loss_backward(go, x, t, w, reduction, -100, ttw)
    eg = ember.nll_loss_backward(from_torch(go), from_torch(x), from_torch(t), from_torch(w) if weighted else None,
                                 reduction, -100, etw)
    np.testing.assert_allclose(eg.numpy(), tg.numpy(), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_double_backward_matches_torch(reduction):
    x, t, w = _case(seed=1)
    logits = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    el = from_torch(logits.detach()).requires_grad_()

    def run(F, lg, tt, ww, grad):
        loss = F.cross_entropy(lg * lg, tt, weight=ww, reduction=reduction)
        g, = grad(loss.sum(), lg, create_graph=True)
        return (g * g).sum()
    tp = run(torch.nn.functional, logits, t, w, torch.autograd.grad)
    ep = run(ember.nn.functional, el, from_torch(t), from_torch(w), ember.autograd.grad)
    np.testing.assert_allclose(ep.item(), tp.item(), rtol=1e-10)
    np.testing.assert_allclose(ember.autograd.grad(ep, el)[0].numpy(), torch.autograd.grad(tp, logits)[0].numpy(),
                               rtol=1e-9, atol=1e-12)
    assert ember.autograd.gradgradcheck(lambda a: ember.nn.functional.cross_entropy(a, from_torch(t),
                                                                                      reduction=reduction), (el,))


def test_nll_loss_on_3d_input_and_unbatched():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 4, 6, dtype=torch.float64, generator=g).log_softmax(1)
    t = torch.randint(0, 4, (3, 6), generator=g)
    for red in ("none", "mean", "sum"):
        np.testing.assert_allclose(ember.nn.functional.nll_loss(from_torch(x), from_torch(t), reduction=red).numpy(),
                                   torch.nn.functional.nll_loss(x, t, reduction=red).numpy(), rtol=1e-12)
    np.testing.assert_allclose(ember.nn.functional.nll_loss(from_torch(x[0, :, 0]), from_torch(t[0, 0])).numpy(),
                               torch.nn.functional.nll_loss(x[0, :, 0], t[0, 0]).numpy(), rtol=1e-12)


def test_nll_out_of_bounds_target_is_an_error():
    x, t, _ = _case(ignore=False)
    t[2] = 7
    with pytest.raises(IndexError, match=r"Target out of bounds: got class index 7; class indices must be in \[0, 5\)"):
        ember.nn.functional.cross_entropy(from_torch(x), from_torch(t))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [True, False])
def test_fused_cross_entropy_gradcheck_and_torch(reduction, smoothing, weighted):
    """F.cross_entropy runs as one _cross_entropy op: values and grads equal torch's, gradcheck and
    gradgradcheck pass (with class weights, label smoothing and ignored rows)."""
    _, t, w = _case(seed=3)
    w = w if weighted else None
    logits = torch.randn(9, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    tl_ = torch.nn.functional.cross_entropy(logits, t, w, reduction=reduction, label_smoothing=smoothing)
    el = from_torch(logits.detach()).requires_grad_()
    ew = from_torch(w) if weighted else None

    def f(a):
        return ember.nn.functional.cross_entropy(a, from_torch(t), ew, reduction=reduction, label_smoothing=smoothing)
    out = f(el)
    assert type(out.grad_fn).__name__ == "CrossEntropyBackward0"     # the fused op, not the composite
    np.testing.assert_allclose(out.detach().numpy(), tl_.detach().numpy(), rtol=1e-12)
    go = torch.randn(tl_.shape, dtype=torch.float64)
    tg, = torch.autograd.grad(tl_, logits, go)
    eg, = ember.autograd.grad(out, el, from_torch(go))
    np.testing.assert_allclose(eg.numpy(), tg.numpy(), rtol=1e-10, atol=1e-14)
    assert ember.autograd.gradcheck(f, (el,))
    assert ember.autograd.gradgradcheck(f, (el,))


def test_cross_entropy_under_autocast_reads_bf16_logits_and_returns_float32():
    """Under CPU autocast the loss is float32 (torch's policy), computed from the bf16 logits without a float32
    copy; the logits' grad is bf16. Values equal torch's autocast result."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(16, 7, generator=g).bfloat16().requires_grad_()
    t = torch.randint(0, 7, (16,), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tl_ = torch.nn.functional.cross_entropy(x, t, label_smoothing=0.1)
    tl_.backward()
    ex = from_torch(x.detach()).requires_grad_()
    with ember.autocast("cpu", dtype=ember.bfloat16):
        el = ember.nn.functional.cross_entropy(ex, from_torch(t), label_smoothing=0.1)
    assert el.dtype is ember.float32 and tl_.dtype == torch.float32
    assert type(el.grad_fn).__name__ == "CrossEntropyBackward0"      # no cast node in between
    el.backward()
    assert ex.grad.dtype is ember.bfloat16
    np.testing.assert_allclose(el.item(), tl_.item(), rtol=1e-6)
    np.testing.assert_allclose(ex.grad.float().numpy(), x.grad.float().numpy(), rtol=1e-2, atol=1e-3)
