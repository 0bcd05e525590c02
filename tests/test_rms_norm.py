"""The fused RMS norm ops (_fused_rms_norm and its backward) against torch 2.13's rms_norm, with gradcheck
and double backward (which goes through the composite)."""
import numpy as np
import pytest
import torch

import ember
from helpers import from_torch, to_torch


def _inputs(shape, ns, affine, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=dtype)
    w = torch.randn(*ns, generator=g, dtype=dtype) if affine else None
    return x, w


@pytest.mark.parametrize("shape,ns", [((4, 7), (7,)), ((2, 3, 5, 6), (5, 6)), ((0, 4), (4,))])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("eps", [None, 1e-5])
def test_fused_rms_norm_matches_torch(shape, ns, affine, eps):
    x, w = _inputs(shape, ns, affine)
    ty, tr = torch.ops.aten._fused_rms_norm(x, list(ns), w, eps)
    ey = ember.nn.functional.rms_norm(from_torch(x), ns, from_torch(w) if affine else None, eps)
    _, er = ember.ops._fused_rms_norm(from_torch(x), ns, from_torch(w) if affine else None, 1e-5 if eps else 2 ** -52)
    for e, t in ((ey, ty), (er, tr)):
        assert tuple(e.shape) == tuple(t.shape)
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("wdtype", [None, "float32"])
def test_rms_norm_numerics_match_torch(dtype, wdtype):
    """Statistics in float32 for 16-bit inputs, the weight applied before the rounding, eps None being
    float32's epsilon (not the input dtype's): torch's results, bit for bit on tiny rows where eps matters."""
    x = ember.randn(6, 32).to(getattr(ember, dtype)) * 1e-3
    w = ember.randn(32).to(getattr(ember, wdtype or dtype))
    y = ember.nn.functional.rms_norm(x, (32,), w)
    t = torch.rms_norm(to_torch(x), [32], to_torch(w))
    assert y.dtype is x.dtype and str(t.dtype) == f"torch.{dtype}"
    np.testing.assert_allclose(y.float().numpy(), t.float().numpy(), rtol=1e-6, atol=1e-6)
    _, r = ember.ops._fused_rms_norm(x, (32,), w, 1e-6)
    assert r.dtype is ember.float32 and tuple(r.shape) == (6, 1)


@pytest.mark.parametrize("affine", [True, False])
def test_rms_norm_grads_match_torch_and_gradcheck(affine):
    x, w = _inputs((3, 4, 6), (6,), affine, seed=1)
    ts = [t.requires_grad_() for t in (x, w) if t is not None]
    ty = torch.nn.functional.rms_norm(x, (6,), w)
    gy = torch.randn_like(ty)
    tg = torch.autograd.grad(ty, ts, gy)
    es = [from_torch(t.detach()).requires_grad_() for t in ts]
    ey = ember.nn.functional.rms_norm(es[0], (6,), es[1] if affine else None)
    assert ey.grad_fn.name() == "FusedRmsNormBackward0"
    eg = ember.autograd.grad(ey, es, from_torch(gy))
    for e, t in zip(eg, tg):
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-9, atol=1e-10)
    fn = (lambda a, c: ember.nn.functional.rms_norm(a, (6,), c, 1e-3)) if affine else \
        (lambda a: ember.nn.functional.rms_norm(a, (6,)))
    assert ember.autograd.gradcheck(fn, tuple(es))
    assert ember.autograd.gradgradcheck(fn, tuple(es))


def test_rms_norm_double_backward_matches_torch():
    x, w = _inputs((5, 8), (8,), True, seed=2)
    ts = [t.requires_grad_() for t in (x, w)]
    es = [from_torch(t.detach()).requires_grad_() for t in ts]

    def penalty(F, ins, grad):
        y = F.rms_norm(ins[0], (8,), ins[1], 1e-5)
        gx, = grad((y * y * y).sum(), ins[0], create_graph=True)
        return (gx * gx).sum()
    tp = penalty(torch.nn.functional, ts, torch.autograd.grad)
    ep = penalty(ember.nn.functional, es, ember.autograd.grad)
    np.testing.assert_allclose(ep.item(), tp.item(), rtol=1e-9)
    for e, t in zip(ember.autograd.grad(ep, es), torch.autograd.grad(tp, ts)):
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-7, atol=1e-9)


def test_rms_norm_module_uses_the_fused_op():
    m = ember.nn.RMSNorm(16)
    x = ember.randn(2, 3, 16, requires_grad=True)
    y = m(x)
    assert y.grad_fn.name() == "FusedRmsNormBackward0"
    y.sum().backward()
    t = torch.nn.RMSNorm(16)
    tx = to_torch(x.detach()).requires_grad_()
    t(tx).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), t(tx).detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_rms_norm_errors_name_the_shapes():
    F = ember.nn.functional
    with pytest.raises(RuntimeError, match=r"rms_norm: Given normalized_shape=\[5\], expected input with shape "
                                           r"\[\*, 5\]"):
        F.rms_norm(ember.zeros(3, 4), (5,))
    with pytest.raises(RuntimeError, match=r"Expected weight to be of same shape as normalized_shape, but got weight "
                                           r"of shape \[3\]"):
        F.rms_norm(ember.zeros(3, 4), (4,), ember.ones(3))
    with pytest.raises(NotImplementedError, match="\"rms_norm\" not implemented for 'Long'"):
        F.rms_norm(ember.zeros(3, 4, dtype=ember.int64), (4,))
    with pytest.raises(RuntimeError, match="expected weight of the input's dtype ember.float32"):
        F.rms_norm(ember.zeros(3, 4), (4,), ember.ones(4, dtype=ember.float64))
