"""Rotary position embeddings (`ops/rotary.py`, `nn.functional.rotary_embedding`, `nn.RotaryEmbedding`)
against a reference written with torch ops (torch has no rotary op), gradcheck and double backward."""
import math

import numpy as np
import pytest
import torch
from helpers import from_torch, to_torch
from samples.rotary import rotary_reference

import ember

F = ember.nn.functional


def _tables(T, dim, base=10000.0, offset=0):
    """torch float64 cos and sin (T, dim/2) of the angles (offset + t) * base^(-2i / dim)."""
    t = torch.arange(offset, offset + T, dtype=torch.float64)[:, None]
    angles = t * base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    return angles.cos(), angles.sin()


def _qkv(B, T, H, E, dtype=torch.float32, seed=0):
    """q, k, v (B, H, T, E) as views of one fused (B, T, 3 * H * E) projection, as a GPT block makes them."""
    g = torch.Generator().manual_seed(seed)
    qkv = torch.randn(B, T, 3 * H * E, generator=g).to(dtype)
    e = from_torch(qkv).view(B, T, 3, H, E).permute(2, 0, 3, 1, 4)
    return qkv.view(B, T, 3, H, E).permute(2, 0, 3, 1, 4), e


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
def test_rotary_embedding_of_a_qkv_view_matches_the_reference(interleaved, dtype):
    tdt = getattr(torch, dtype)
    tqkv, eqkv = _qkv(2, 7, 3, 16, tdt)
    cos, sin = _tables(7, 16)
    tdt_tab = torch.float64 if dtype == "float64" else torch.float32
    tc, ts = cos.to(tdt_tab), sin.to(tdt_tab)
    for i in (0, 1):
        assert not eqkv[i].is_contiguous()
        y = F.rotary_embedding(eqkv[i], from_torch(tc), from_torch(ts), interleaved)
        want = rotary_reference(tqkv[i], tc, ts, interleaved)
        assert y.dtype is getattr(ember, dtype) and tuple(y.shape) == (2, 3, 7, 16)
        tol = {"bfloat16": 1e-2, "float16": 2e-3}.get(dtype, 1e-6)
        np.testing.assert_allclose(y.float().numpy(), want.float().numpy(), rtol=tol, atol=tol)


def test_rotary_embedding_broadcasts_per_sequence_tables():
    x = torch.randn(2, 3, 5, 8, dtype=torch.float64)
    cos, sin = torch.randn(2, 1, 5, 4, dtype=torch.float64), torch.randn(2, 1, 5, 4, dtype=torch.float64)
    y = F.rotary_embedding(from_torch(x), from_torch(cos), from_torch(sin))
    np.testing.assert_allclose(y.numpy(), rotary_reference(x, cos, sin).numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("interleaved", [False, True])
def test_rotary_embedding_grads_match_torch_and_gradcheck(interleaved):
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64, requires_grad=True)
    cos, sin = (t.requires_grad_() for t in _tables(4, 6))
    gy = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    tg = torch.autograd.grad(rotary_reference(x, cos, sin, interleaved), (x, cos, sin), gy)
    es = [from_torch(t.detach()).requires_grad_() for t in (x, cos, sin)]
    ey = F.rotary_embedding(*es, interleaved)
    assert ey.grad_fn.name() == "RotaryEmbeddingBackward0"
    for e, t in zip(ember.autograd.grad(ey, es, from_torch(gy)), tg):
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-12, atol=1e-12)

    def fn(a, c, s):
        return F.rotary_embedding(a, c, s, interleaved)
    assert ember.autograd.gradcheck(fn, tuple(es))
    assert ember.autograd.gradgradcheck(fn, tuple(es))


def test_rotary_embedding_double_backward_matches_torch():
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    cos, sin = (t.requires_grad_() for t in _tables(5, 8))
    es = [from_torch(t.detach()).requires_grad_() for t in (x, cos, sin)]

    def penalty(fn, ins, grad):
        y = fn(*ins)
        gx, = grad((y * y * y).sum(), ins[0], create_graph=True)
        return (gx * gx).sum()
    tp = penalty(rotary_reference, [x, cos, sin], torch.autograd.grad)
    ep = penalty(F.rotary_embedding, es, ember.autograd.grad)
    np.testing.assert_allclose(ep.item(), tp.item(), rtol=1e-10)
    for e, t in zip(ember.autograd.grad(ep, es), torch.autograd.grad(tp, [x, cos, sin])):
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-9, atol=1e-10)


def test_rotary_module_tables_offset_and_growth():
    rope = ember.nn.RotaryEmbedding(16, base=500000.0, max_seq_len=8)
    assert rope.cos.dtype is ember.float32 and tuple(rope.cos.shape) == (8, 8)
    assert "cos" not in rope.state_dict() and list(rope.buffers())
    assert repr(rope) == "RotaryEmbedding(16, base=500000.0, max_seq_len=8, interleaved=False)"
    tqkv, eqkv = _qkv(2, 6, 2, 16)
    q, k = rope(eqkv[0], eqkv[1], offset=5)           # positions 5..10: past the 8 tabulated, the tables grow
    assert tuple(rope.cos.shape) == (16, 8)
    cos, sin = (t.float() for t in _tables(6, 16, 500000.0, offset=5))
    for e, t in ((q, tqkv[0]), (k, tqkv[1])):
        np.testing.assert_allclose(e.numpy(), rotary_reference(t, cos, sin).numpy(), rtol=1e-5, atol=1e-5)
    x = ember.randn(3, 4, 16, dtype=ember.float64)
    y = ember.nn.RotaryEmbedding(16, interleaved=True)(x)
    assert y.dtype is ember.float64
    cos, sin = (t.float().double() for t in _tables(4, 16))
    np.testing.assert_allclose(y.numpy(), rotary_reference(to_torch(x), cos, sin, True).numpy(), rtol=1e-12,
                               atol=1e-12)


def test_rotary_module_makes_attention_scores_relative():
    """(R_m q) . (R_n k) depends on m - n only: the same q and k at positions shifted by 7 score the same."""
    rope = ember.nn.RotaryEmbedding(32)
    q, k = ember.randn(1, 2, 4, 32), ember.randn(1, 2, 4, 32)
    scores = [(a @ b.transpose(-1, -2)).numpy() for a, b in (rope(q, k), rope(q, k, offset=7))]
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-4, atol=1e-4)
    assert not np.allclose(scores[0], (q @ k.transpose(-1, -2)).numpy(), atol=1e-3)


def test_rotary_module_trains_through_q_and_k():
    rope = ember.nn.RotaryEmbedding(8)
    proj = ember.nn.Linear(8, 3 * 8)
    x = ember.randn(2, 5, 8)
    q, k, _ = proj(x).view(2, 5, 3, 1, 8).permute(2, 0, 3, 1, 4)
    q, k = rope(q, k)
    (q @ k.transpose(-1, -2)).softmax(-1).sum().backward()
    assert proj.weight.grad is not None and math.isfinite(float(proj.weight.grad.abs().sum()))


def test_rotary_errors_say_what_was_expected():
    cos, sin = (from_torch(t.float()) for t in _tables(5, 8))
    with pytest.raises(RuntimeError, match=r"expected cos and sin of shape \(T, D/2\) = \(5, 4\) \(or any shape that "
                                           r"broadcasts to the input's \(\.\.\., T, D/2\) = \[2, 3, 5, 4\]\) for an "
                                           r"input of shape \[2, 3, 5, 8\], got \[5, 8\]"):
        F.rotary_embedding(ember.zeros(2, 3, 5, 8), ember.zeros(5, 8), ember.zeros(5, 8))
    with pytest.raises(RuntimeError, match=r"got \[5, 4\]"):
        F.rotary_embedding(ember.zeros(2, 6, 8), cos, sin)     # 6 positions, tables for 5
    with pytest.raises(RuntimeError, match="even last dim D"):
        F.rotary_embedding(ember.zeros(5, 9), cos, sin)
    with pytest.raises(RuntimeError, match="of the input's dtype ember.float64"):
        F.rotary_embedding(ember.zeros(5, 8, dtype=ember.float64), cos, sin)
    with pytest.raises(ValueError, match="dim must be a positive even number .* got 7"):
        ember.nn.RotaryEmbedding(7)
