"""The fused layer norm ops (native_layer_norm and its backward) against torch, with gradcheck and
double backward (which goes through the composite)."""
import numpy as np
import pytest
import torch

import ember
from helpers import from_torch, to_torch


def _inputs(shape, ns, affine, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=dtype)
    w = torch.randn(*ns, generator=g, dtype=dtype) if affine else None
    b = torch.randn(*ns, generator=g, dtype=dtype) if affine else None
    return x, w, b


@pytest.mark.parametrize("shape,ns", [((4, 7), (7,)), ((2, 3, 5, 6), (5, 6)), ((0, 4), (4,))])
@pytest.mark.parametrize("affine", [True, False])
def test_native_layer_norm_matches_torch(shape, ns, affine):
    x, w, b = _inputs(shape, ns, affine)
    ty, tm, tr = torch.native_layer_norm(x, list(ns), w, b, 1e-5)
    ey, em, er = ember.native_layer_norm(from_torch(x), ns, from_torch(w) if affine else None,
                                         from_torch(b) if affine else None, 1e-5)
    for e, t in ((ey, ty), (em, tm), (er, tr)):
        assert tuple(e.shape) == tuple(t.shape)
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_grads_match_torch_and_gradcheck(affine):
    x, w, b = _inputs((3, 4, 6), (6,), affine, seed=1)
    ts = [t.requires_grad_() for t in (x, w, b) if t is not None]
    ty = torch.nn.functional.layer_norm(x, (6,), w, b)
    gy = torch.randn_like(ty)
    tg = torch.autograd.grad(ty, ts, gy)
    es = [from_torch(t.detach()).requires_grad_() for t in ts]
    ey = ember.nn.functional.layer_norm(es[0], (6,), *(es[1:] if affine else (None, None)))
    eg = ember.autograd.grad(ey, es, from_torch(gy))
    for e, t in zip(eg, tg):
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-9, atol=1e-10)
    fn = (lambda a, c, d: ember.nn.functional.layer_norm(a, (6,), c, d)) if affine else \
        (lambda a: ember.nn.functional.layer_norm(a, (6,)))
    assert ember.autograd.gradcheck(fn, tuple(es))
    assert ember.autograd.gradgradcheck(fn, tuple(es))


def test_layer_norm_double_backward_matches_torch():
    x, w, b = _inputs((5, 8), (8,), True, seed=2)
    ts = [t.requires_grad_() for t in (x, w, b)]
    es = [from_torch(t.detach()).requires_grad_() for t in ts]

    def penalty(F, ins, grad):
        y = F.layer_norm(ins[0], (8,), ins[1], ins[2])
        gx, = grad((y * y).sum(), ins[0], create_graph=True)
        return (gx * gx).sum()
    tp = penalty(torch.nn.functional, ts, torch.autograd.grad)
    ep = penalty(ember.nn.functional, es, ember.autograd.grad)
    np.testing.assert_allclose(ep.item(), tp.item(), rtol=1e-9)
    for e, t in zip(ember.autograd.grad(ep, es), torch.autograd.grad(tp, ts)):
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_low_precision_statistics_are_float32(dtype):
    """The mean and 1/std are float32 for float16/bfloat16 inputs on every device (torch CUDA's dtypes;
    torch's CPU kernel rounds them to the input dtype): one meta for both backends."""
    x = ember.randn(4, 16).to(getattr(ember, dtype))
    y, m, r = ember.native_layer_norm(x, (16,), None, None, 1e-5)
    t = torch.native_layer_norm(to_torch(x), [16], None, None, 1e-5)
    assert y.dtype is x.dtype and m.dtype is r.dtype is ember.float32
    np.testing.assert_allclose(y.float().numpy(), t[0].float().numpy(), rtol=1e-2, atol=1e-2)
    for e, w in ((m, t[1]), (r, t[2])):
        np.testing.assert_allclose(e.numpy(), w.float().numpy(), rtol=1e-2, atol=1e-2)
    tw = torch.native_layer_norm(to_torch(x), [16], torch.ones(16), torch.zeros(16), 1e-5)  # mixed precision
    assert str(tw[1].dtype) == "torch.float32"


def test_layer_norm_errors_name_the_shapes():
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[5\], expected input with shape \[\*, 5\]"):
        ember.nn.functional.layer_norm(ember.zeros(3, 4), (5,))
    with pytest.raises(RuntimeError, match=r"Expected weight to be of same shape as normalized_shape"):
        ember.nn.functional.layer_norm(ember.zeros(3, 4), (4,), ember.ones(3))
    with pytest.raises(RuntimeError, match=r"normalized_shape to be at least 1-dimensional"):
        ember.native_layer_norm(ember.zeros(3, 4), (), None, None, 1e-5)
    with pytest.raises(NotImplementedError, match="LayerNormKernelImpl.*'Long'"):
        ember.native_layer_norm(ember.zeros(3, 4, dtype=ember.int64), (4,), None, None, 1e-5)
    with pytest.raises(RuntimeError, match="expected weight of the input's dtype"):
        ember.native_layer_norm(ember.zeros(3, 4), (4,), ember.ones(4, dtype=ember.float64), None, 1e-5)
