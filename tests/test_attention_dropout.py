"""Dropout inside the fused attention (`_fused_attention_dropout`): the CPU kernel and the Triton kernels
(through Triton's interpreter) draw the same mask from the same generator state, the mask keeps about
1 - p of the probabilities, gradients pass gradcheck with the mask held fixed, and double backward is
refused clearly. Values against torch (the mask rebuilt by an independent Philox) are in the sample
tables (tests/samples/attention.py)."""
import os

import numpy as np
import pytest

import ember
from ember.dispatch import OPS


def _qkv(rng, shape, dtype=ember.float32):
    return [ember.tensor(rng.standard_normal(shape)).to(dtype) for _ in range(3)]


def test_mask_keeps_one_minus_p_and_is_reproducible():
    q, k, v = _qkv(np.random.default_rng(0), (4, 2, 64, 16), ember.float64)
    op = OPS["_fused_attention_dropout"].fn
    ember.manual_seed(3)
    out, lse, rng = op(q, k, v, None, False, 0.25, 0.4)
    ember.manual_seed(3)
    out2, _, rng2 = op(q, k, v, None, False, 0.25, 0.4)
    assert rng.tolist() == rng2.tolist() and np.array_equal(out.numpy(), out2.numpy())
    _, _, rng3 = op(q, k, v, None, False, 0.25, 0.4)         # the generator moved past the first call's draws
    assert rng3.tolist() == [rng.tolist()[0], rng.tolist()[1] + 4 * 2 * 64 * 16]     # a counter per 4 keys
    # with v = identity rows, out holds the kept, rescaled probabilities themselves
    eye = ember.eye(64, dtype=ember.float64).expand(4, 2, 64, 64)
    ember.manual_seed(4)
    p = op(q, k, eye, None, False, 0.25, 0.4)[0].numpy()
    kept = p > 0
    assert abs(kept.mean() - 0.6) < 0.01
    plain = OPS["_fused_attention"].fn(q, k, eye, None, False, 0.25)[0].numpy()
    np.testing.assert_allclose(p[kept], plain[kept] / 0.6, rtol=1e-12)


def test_gradcheck_with_the_mask_held_fixed():
    rng = np.random.default_rng(1)
    q, k, v = (ember.tensor(rng.standard_normal((2, 5, 4))).requires_grad_() for _ in range(3))

    def f(q, k, v):
        ember.manual_seed(7)        # the same draws at every call: a deterministic function of q, k, v
        return OPS["_fused_attention_dropout"].fn(q, k, v, None, True, 0.5, 0.3)[0]
    assert ember.autograd.gradcheck(f, (q, k, v))


def test_double_backward_is_refused_clearly():
    q, k, v = (ember.randn(2, 5, 4, dtype=ember.float64, requires_grad=True) for _ in range(3))
    out = OPS["_fused_attention_dropout"].fn(q, k, v, None, False, 0.5, 0.3)[0]
    g, = ember.autograd.grad(out.sum(), q, create_graph=False)
    assert g.shape == q.shape
    out = OPS["_fused_attention_dropout"].fn(q, k, v, None, False, 0.5, 0.3)[0]
    with pytest.raises(RuntimeError, match="does not support double backward"):
        ember.autograd.grad(out.sum(), q, create_graph=True)


def test_sdpa_on_the_cpu_keeps_the_composite_for_dropout():
    q, k, v = (ember.randn(2, 3, 5, 4, requires_grad=True) for _ in range(3))
    out = ember.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert type(out.grad_fn).__name__ != "FusedAttentionDropoutBackward0"


@pytest.mark.skipif(ember.cuda.is_available(), reason="a GPU is present: tests/test_cuda_attention.py runs the kernels")
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("shape,causal", [((2, 3, 37, 37, 16), False), ((2, 3, 37, 37, 16), True),
                                          ((1, 2, 20, 70, 8), False)])
def test_triton_kernels_draw_the_cpu_mask(causal, dtype, shape):
    """The same generator state gives the same mask (and so the same outputs and grads) in the Triton kernels
    (interpreter) as in the CPU kernel."""
    pytest.importorskip("triton")
    os.environ["TRITON_INTERPRET"] = "1"
    from ember.backends.cuda import attention as A
    B, H, L, S, E = shape
    rng = np.random.default_rng(2)
    dt = getattr(ember, dtype)
    q = ember.tensor(rng.standard_normal((B, H, L, E))).to(dt)
    k, v = (ember.tensor(rng.standard_normal((B, H, S, E))).to(dt) for _ in range(2))
    do = ember.tensor(rng.standard_normal((B, H, L, E))).to(dt)
    ember.manual_seed(11)
    got = A.fused_attention_dropout(q, k, v, None, causal, 0.3, 0.35)
    ember.manual_seed(11)
    want = OPS["_fused_attention_dropout"].kernels["cpu"](q, k, v, None, causal, 0.3, 0.35)
    assert got[2].tolist() == want[2].tolist()
    tol = 1e-5 if dtype == "float32" else 5e-3      # float16: o is rounded before delta = rowsum(do * o)
    for g, w in zip(got[:2], want[:2]):
        np.testing.assert_allclose(g.float().numpy(), w.float().numpy(), rtol=tol, atol=tol)
    gg = A.fused_attention_dropout_backward(do, q, k, v, None, got[0], got[1], got[2], causal, 0.3, 0.35,
                                            True, True, True)
    ww = OPS["_fused_attention_dropout_backward"].kernels["cpu"](do, q, k, v, None, want[0], want[1], want[2], causal,
                                                                 0.3, 0.35, True, True, True)
    for g, w in zip(gg, ww):
        np.testing.assert_allclose(g.float().numpy(), w.float().numpy(), rtol=tol, atol=tol)
