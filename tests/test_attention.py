"""The fused attention ops (_fused_attention and its backward, CPU kernels) against torch's
scaled_dot_product_attention: outputs, logsumexp, grads, masks, gradcheck and double backward (which
goes through the composite)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F
import ember.dispatch
from helpers import from_torch

FUSED = "FusedAttentionBackward0"


def _qkv(batch, L, S, E, Ev, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*batch, L, E, generator=g, dtype=dtype), torch.randn(*batch, S, E, generator=g, dtype=dtype),
            torch.randn(*batch, S, Ev, generator=g, dtype=dtype))


def _mask(kind, shape, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    if kind == "bool":
        m = torch.rand(*shape, generator=g) > 0.4
        m[..., 0] = True
        return m
    return torch.randn(*shape, generator=g, dtype=dtype)


def _both(ts):
    es = [from_torch(t).requires_grad_() for t in ts]
    return es, [t.clone().requires_grad_() for t in ts]


CASES = [  # batch, L, S, E, Ev, is_causal, mask kind, mask shape
    ((2, 3), 5, 7, 6, 4, False, None, None),
    ((), 4, 4, 8, 8, False, None, None),
    ((3,), 6, 6, 5, 5, True, None, None),
    ((2,), 7, 4, 4, 3, True, None, None),        # L > S: later rows see every key
    ((2,), 3, 8, 4, 3, True, None, None),        # L < S
    ((2,), 70, 70, 4, 3, True, None, None),      # causal, L >= 64: the CPU kernels' query-row blocks
    ((2,), 130, 90, 4, 4, True, None, None),     # ... L > S
    ((1,), 64, 150, 4, 4, True, None, None),     # ... L < S
    ((2, 3), 5, 6, 4, 4, False, "bool", (5, 6)),
    ((2, 3), 5, 6, 4, 4, False, "bool", (2, 1, 1, 6)),   # key padding style
    ((2, 3), 5, 6, 4, 4, False, "float", (3, 5, 6)),
    ((2, 3), 5, 6, 4, 4, False, "float", (2, 1, 5, 1)),
    ((2, 1, 2), 3, 4, 4, 2, False, "float", (2, 1, 1, 1, 4)),
]


@pytest.mark.parametrize("chunk", [None, 1, 2])
@pytest.mark.parametrize("batch,L,S,E,Ev,causal,kind,mshape", CASES)
def test_sdpa_fused_matches_torch(batch, L, S, E, Ev, causal, kind, mshape, chunk, monkeypatch):
    """chunk: the CPU kernels run the flattened batch in chunks of that many entries (`_CHUNK_BYTES` set so;
    masks with batch dims keep the whole batch), as they do at real sizes (2 MiB of scores a chunk)."""
    if chunk:
        from ember.backends.cpu import attention as cpu_attention
        monkeypatch.setattr(cpu_attention, "_CHUNK_BYTES", chunk * L * S * 8)
    ts = _qkv(batch, L, S, E, Ev)
    m = _mask(kind, mshape) if kind else None
    es, ts = _both(ts)
    em = from_torch(m) if m is not None else None
    ye = F.scaled_dot_product_attention(*es, attn_mask=em, is_causal=causal)
    yt = TF.scaled_dot_product_attention(*ts, attn_mask=m, is_causal=causal)
    assert type(ye.grad_fn).__name__ == FUSED
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    gy = torch.randn(yt.shape, dtype=yt.dtype, generator=torch.Generator().manual_seed(5))
    tg = torch.autograd.grad(yt, ts, gy)
    eg = ember.autograd.grad(ye, es, from_torch(gy))
    for e, t in zip(eg, tg):
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("causal,kind", [(False, None), (True, None), (False, "bool"), (False, "float")])
def test_fused_attention_lse_matches_logsumexp(causal, kind):
    q, k, v = _qkv((2,), 5, 6, 4, 3)
    m = _mask(kind, (5, 6)) if kind else None
    scale = 0.7
    s = q @ k.mT * scale
    if causal:
        s = s.masked_fill(torch.ones(5, 6, dtype=torch.bool).triu(1), -math.inf)
    elif kind == "bool":
        s = s.masked_fill(~m, -math.inf)
    elif kind == "float":
        s = s + m
    out, lse = ember.ops._fused_attention(from_torch(q), from_torch(k), from_torch(v),
                                          from_torch(m) if m is not None else None, causal, scale)
    assert lse.dtype is ember.float64 and tuple(lse.shape) == (2, 5)
    np.testing.assert_allclose(lse.numpy(), torch.logsumexp(s, -1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(out.numpy(), (s.softmax(-1) @ v).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_fused_attention_low_precision_matches_torch(dtype):
    tdt = getattr(torch, dtype)
    ts = [t.to(tdt) for t in _qkv((2, 2), 9, 7, 8, 8)]
    m = _mask("float", (9, 7)).to(tdt)
    es, ts = _both(ts)
    ye = F.scaled_dot_product_attention(*es, attn_mask=from_torch(m))
    yt = TF.scaled_dot_product_attention(*ts, attn_mask=m)
    assert type(ye.grad_fn).__name__ == FUSED and ye.dtype is getattr(ember, dtype)
    tol = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 2e-2}[dtype]
    np.testing.assert_allclose(ye.detach().float().numpy(), yt.detach().float().numpy(), rtol=tol, atol=tol)
    gy = torch.randn(yt.shape, generator=torch.Generator().manual_seed(5)).to(tdt)
    tg = torch.autograd.grad(yt, ts, gy)
    eg = ember.autograd.grad(ye, es, from_torch(gy))
    for e, t in zip(eg, tg):
        assert e.dtype is getattr(ember, dtype)
        np.testing.assert_allclose(e.float().numpy(), t.float().numpy(), rtol=tol * 4, atol=tol * 4)


def test_fully_masked_rows_give_zeros_and_zero_grads():
    m = torch.ones(2, 4, 5, dtype=torch.bool)
    m[0, 1] = False
    m[1, 3] = False
    fm = torch.zeros(4, 5, dtype=torch.float64).masked_fill(~m[0], -math.inf)
    for mask in (m, fm):
        es, ts = _both(_qkv((2,), 4, 5, 3, 3))
        ye = F.scaled_dot_product_attention(*es, attn_mask=from_torch(mask))
        yt = TF.scaled_dot_product_attention(*ts, attn_mask=mask)
        assert type(ye.grad_fn).__name__ == FUSED
        assert not ye.detach().numpy()[0, 1].any()
        np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        tg = torch.autograd.grad(yt.sum(), ts)
        eg = ember.autograd.grad(ye.sum(), es)
        for e, t in zip(eg, tg):
            np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-9, atol=1e-10)
        assert not eg[0].numpy()[0, 1].any()


@pytest.mark.parametrize("causal,kind", [(False, None), (True, None), (False, "bool"), (False, "float")])
def test_fused_attention_gradcheck_and_gradgradcheck(causal, kind):
    es, _ = _both(_qkv((2,), 3, 4, 3, 2, seed=3))
    m = _mask(kind, (3, 4)) if kind else None
    if kind == "bool":
        m[1] = False       # a fully masked row
    em = from_torch(m) if m is not None else None

    def fn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=em, is_causal=causal)
    assert type(fn(*es).grad_fn).__name__ == FUSED
    assert ember.autograd.gradcheck(fn, tuple(es))
    assert ember.autograd.gradgradcheck(fn, tuple(es))


def test_fused_attention_double_backward_matches_torch():
    q, k, v = _qkv((2,), 4, 5, 3, 3, seed=4)
    m = _mask("float", (4, 5))
    es, ts = _both((q, k, v))

    def penalty(Fn, ins, grad, mask):
        y = Fn.scaled_dot_product_attention(*ins, attn_mask=mask)
        gs = grad((y * y).sum(), ins, create_graph=True)
        return sum((g * g).sum() for g in gs)
    tp = penalty(TF, ts, torch.autograd.grad, m)
    ep = penalty(F, es, ember.autograd.grad, from_torch(m))
    np.testing.assert_allclose(ep.item(), tp.item(), rtol=1e-9)
    tg = torch.autograd.grad(tp, ts)
    eg = ember.autograd.grad(ep, es)
    for e, t in zip(eg, tg):
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-8, atol=1e-10)


def test_fused_attention_only_some_inputs_need_grad():
    q, k, v = _qkv((2,), 4, 5, 3, 2, seed=6)
    for need in [(True, False, False), (False, True, False), (False, False, True), (False, True, True)]:
        es = [from_torch(t).requires_grad_(n) for t, n in zip((q, k, v), need)]
        ts = [t.clone().requires_grad_(n) for t, n in zip((q, k, v), need)]
        ye = F.scaled_dot_product_attention(*es, is_causal=True)
        yt = TF.scaled_dot_product_attention(*ts, is_causal=True)
        eg = ember.autograd.grad(ye.sum(), [e for e in es if e.requires_grad])
        tg = torch.autograd.grad(yt.sum(), [t for t in ts if t.requires_grad])
        for e, t in zip(eg, tg):
            np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("L,S,batch", [(3, 0, (2,)), (0, 4, (2,)), (3, 4, (0,))])
def test_fused_attention_empty(L, S, batch):
    es, ts = _both(_qkv(batch, L, S, 3, 2))
    ye = F.scaled_dot_product_attention(*es)
    yt = TF.scaled_dot_product_attention(*ts)
    assert type(ye.grad_fn).__name__ == FUSED and tuple(ye.shape) == tuple(yt.shape)
    np.testing.assert_array_equal(ye.detach().numpy(), np.zeros(yt.shape))
    eg = ember.autograd.grad(ye.sum(), es)
    for e, t in zip(eg, ts):
        assert tuple(e.shape) == tuple(t.shape) and not e.numpy().any()


def test_composite_where_the_fused_op_does_not_apply():
    q, k, v = _qkv((2,), 3, 4, 3, 3)
    m = _mask("float", (3, 4)).requires_grad_()
    es, ts = _both((q, k, v))
    em = from_torch(m.detach()).requires_grad_()
    ye = F.scaled_dot_product_attention(*es, attn_mask=em)      # the mask needs a grad: the composite
    yt = TF.scaled_dot_product_attention(*ts, attn_mask=m)
    assert type(ye.grad_fn).__name__ != FUSED
    ge, = ember.autograd.grad(ye.sum(), [em])
    gt, = torch.autograd.grad(yt.sum(), [m])
    np.testing.assert_allclose(ge.numpy(), gt.numpy(), rtol=1e-9, atol=1e-10)
    assert type(F.scaled_dot_product_attention(*es, dropout_p=0.5).grad_fn).__name__ != FUSED
    # different batch dims broadcast through matmul in the composite
    kb, vb = from_torch(k[:1]), from_torch(v[:1])
    yb = F.scaled_dot_product_attention(es[0], kb, vb)
    np.testing.assert_allclose(yb.detach().numpy(), TF.scaled_dot_product_attention(q, k[:1], v[:1]).numpy(),
                               rtol=1e-10)


def test_fused_attention_errors():
    q = ember.randn(2, 3, 4)
    with pytest.raises(RuntimeError, match="is_causal"):
        ember.ops._fused_attention(q, q, q, ember.ones(3, 3, dtype=ember.bool), True, 0.5)
    with pytest.raises(RuntimeError, match="expected key of shape"):
        ember.ops._fused_attention(q, ember.randn(2, 3, 5), q, None, False, 0.5)
    with pytest.raises(RuntimeError, match="broadcastable to"):
        ember.ops._fused_attention(q, q, q, ember.ones(2, 3, dtype=ember.bool), False, 0.5)
    with pytest.raises(RuntimeError, match="same floating dtype"):
        ember.ops._fused_attention(q, q.double(), q, None, False, 0.5)


@pytest.mark.parametrize("masks", ["causal", "kpm"])
def test_transformer_layer_uses_fused_attention_like_torch(masks, monkeypatch):
    calls = []
    for name in ("_fused_attention", "_fused_attention_backward", "_packed_self_attention",
                 "_packed_self_attention_backward"):
        kernels = ember.dispatch.OPS[name].kernels
        monkeypatch.setitem(kernels, "cpu", lambda *a, _k=kernels["cpu"], _n=name: calls.append(_n) or _k(*a))
    torch.manual_seed(0)
    tl = torch.nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True, norm_first=True)
    el = ember.nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True, norm_first=True)
    el.load_state_dict({k: from_torch(v) for k, v in tl.state_dict().items()})
    x = torch.randn(3, 6, 8, dtype=torch.float32)
    if masks == "causal":
        kw_t = dict(src_mask=torch.ones(6, 6, dtype=torch.bool).triu(1), is_causal=True)
        kw_e = dict(src_mask=from_torch(kw_t["src_mask"]), is_causal=True)
    else:
        kpm = torch.zeros(3, 6, dtype=torch.bool)
        kpm[1, 4:] = True
        kw_t, kw_e = dict(src_key_padding_mask=kpm), dict(src_key_padding_mask=from_torch(kpm))
    xe = from_torch(x).requires_grad_()
    xt = x.clone().requires_grad_()
    ye, yt = el(xe, **kw_e), tl(xt, **kw_t)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    ge, = ember.autograd.grad((ye * ye).sum(), [xe])
    gt, = torch.autograd.grad((yt * yt).sum(), [xt])
    np.testing.assert_allclose(ge.numpy(), gt.numpy(), rtol=1e-4, atol=1e-4)
    # self-attention without a key padding mask: one packed op on the in-projection; with one, the
    # separate heads through _fused_attention (the padding mask joins the attention mask)
    packed = "_packed_self_attention" if masks == "causal" else "_fused_attention"
    assert calls == [packed, packed + "_backward"]


def _torch_packed(t, H, mask, causal, scale):
    """The math composite torch computes for attention over a packed (B, L, 3E) projection."""
    B, L, E3 = t.shape
    q, k, v = t.reshape(B, L, 3, H, E3 // 3 // H).permute(2, 0, 3, 1, 4).unbind(0)
    s = (q @ k.transpose(-1, -2)) * scale
    if causal:
        s = s.masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), -math.inf)
    elif mask is not None:
        s = s.masked_fill(~mask, -math.inf) if mask.dtype == torch.bool else s + mask
    return (s.softmax(-1) @ v).transpose(1, 2).reshape(B, L, E3 // 3)


@pytest.mark.parametrize("mask", [None, "causal", "bool", "float"])
def test_packed_self_attention_matches_torch_with_double_backward(mask):
    rng = np.random.default_rng(0)
    B, L, H, hd = 2, 5, 3, 4
    E = H * hd
    a = rng.standard_normal((B, L, 3 * E))
    m_np = {"bool": np.tril(np.ones((L, L), bool)), "float": rng.standard_normal((B, H, L, L))}.get(mask)
    mt = None if m_np is None else torch.tensor(m_np)
    me = None if m_np is None else ember.tensor(m_np)
    x, t = ember.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, lse = ember.ops._packed_self_attention(x, H, me, mask == "causal", 0.3)
    want = _torch_packed(t, H, mt, mask == "causal", 0.3)
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert tuple(lse.shape) == (B, H, L)
    g = rng.standard_normal((B, L, E))
    gx, = ember.autograd.grad((out * ember.tensor(g)).sum(), x, create_graph=True)
    gt, = torch.autograd.grad((want * torch.tensor(g)).sum(), t, create_graph=True)
    np.testing.assert_allclose(gx.detach().numpy(), gt.detach().numpy(), rtol=1e-9, atol=1e-11)
    (gx ** 2).sum().backward()
    (gt ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_packed_self_attention_rejects_bad_shapes():
    with pytest.raises(RuntimeError, match=r"expected qkv of shape \(B, L, 3 \* E\).*\[2, 5, 10\]"):
        ember.ops._packed_self_attention(ember.zeros(2, 5, 10), 2, None, False, 1.0)
    with pytest.raises(RuntimeError, match="num_heads=5"):
        ember.ops._packed_self_attention(ember.zeros(2, 5, 12), 5, None, False, 1.0)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("mask", ["causal", "float3d", "none"])
def test_multihead_self_attention_packed_path_matches_torch(batch_first, mask, monkeypatch):
    calls = []
    k = ember.dispatch.OPS["_packed_self_attention"].kernels
    monkeypatch.setitem(k, "cpu", lambda *a, _k=k["cpu"]: calls.append(1) or _k(*a))
    torch.manual_seed(1)
    tm = torch.nn.MultiheadAttention(12, 3, batch_first=batch_first).double()
    em = ember.nn.MultiheadAttention(12, 3, batch_first=batch_first).double()
    em.load_state_dict({n: from_torch(v) for n, v in tm.state_dict().items()})
    x = torch.randn(4, 6, 12, dtype=torch.float64)
    kw_t = {"need_weights": False}
    if mask == "causal":
        kw_t.update(attn_mask=torch.ones(6, 6, dtype=torch.bool).triu(1), is_causal=True)
    elif mask == "float3d":
        n = 4 if batch_first else 6
        kw_t.update(attn_mask=torch.randn(n * 3, 6, 6, dtype=torch.float64) if batch_first
                    else torch.randn(6 * 3, 4, 4, dtype=torch.float64))
    kw_e = {n: (from_torch(v) if isinstance(v, torch.Tensor) else v) for n, v in kw_t.items()}
    xt = x.clone().requires_grad_()
    xe = from_torch(x).requires_grad_()
    yt = tm(xt, xt, xt, **kw_t)[0]
    ye = em(xe, xe, xe, **kw_e)[0]
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    (yt * yt).sum().backward()
    (ye * ye).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    for (n, p) in em.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), dict(tm.named_parameters())[n].grad.numpy(), rtol=1e-9,
                                   atol=1e-11, err_msg=n)
    assert len(calls) == 1


@pytest.mark.parametrize("chunk", [None, 1])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_output_takes_torchs_cpu_layout_and_grads_flow(causal, chunk, monkeypatch):
    """torch's CPU flash kernel lays its (B, H, L, E) output out in (B, L, H, E) order where the query has that
    order (heads of a fused qkv projection), contiguously otherwise; ember's does the same, so that the usual
    `out.transpose(1, 2).reshape(B, L, H * E)` is a view. Values and grads as torch's either way."""
    if chunk is not None:
        import ember.backends.cpu.attention as A
        monkeypatch.setattr(A, "_CHUNK_BYTES", chunk)      # every batch entry its own chunk
    B, L, H, E = 2, 8, 4, 16
    a = np.random.default_rng(3).standard_normal((B, L, 3 * H * E))
    c = np.random.default_rng(4).standard_normal((B, H, L, E))
    res = {}
    for lib in (ember, torch):
        F_ = lib.nn.functional
        x = lib.tensor(a, requires_grad=True)
        y = lib.tensor(c, requires_grad=True)
        q, k, v = x.view(B, L, 3, H, E).permute(2, 0, 3, 1, 4)
        outs = [F_.scaled_dot_product_attention(q, k, v, is_causal=causal),        # qkv heads: (B, L, H, E) order
                F_.scaled_dot_product_attention(y, y, y, is_causal=causal),        # contiguous: contiguous
                F_.scaled_dot_product_attention(y, k, v, is_causal=causal),        # the query decides
                F_.scaled_dot_product_attention(q, y, y, is_causal=causal)]
        merged = outs[0].transpose(1, 2).reshape(B, L, H * E)
        if lib is ember:
            assert merged._storage is outs[0]._storage      # a view, no copy
        sum(((o.transpose(1, 2).reshape(B, L, H * E) if i == 0 else o) ** 2).sum() * (i + 1)
            for i, o in enumerate(outs)).backward()
        res[lib.__name__] = ([o.stride() for o in outs], [o.detach().numpy() for o in outs], x.grad.numpy(),
                             y.grad.numpy())
    (es, eo, ex, ey), (ts, to, tx, ty) = res["ember"], res["torch"]
    blhe, contiguous = (L * H * E, E, H * E, 1), (H * L * E, L * E, E, 1)
    assert es == ts == [blhe, contiguous, contiguous, blhe]
    for got, want in zip(eo, to):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ex, tx, rtol=1e-9, atol=1e-10)
    # where torch takes its math path the output is contiguous: value's head dim unlike the query's, no keys, a
    # broadcast query
    for lib in (ember, torch):
        x = lib.tensor(a)
        q, k, v = x.view(B, L, 3, H, E).permute(2, 0, 3, 1, 4)
        F_ = lib.nn.functional
        cases = [F_.scaled_dot_product_attention(q, k, v[..., :E // 2], is_causal=causal),
                 F_.scaled_dot_product_attention(q, k[:, :, :0], v[:, :, :0]),
                 F_.scaled_dot_product_attention(q[:, :1].expand(B, H, L, E), k, v, is_causal=causal)]
        res[lib.__name__] = [o.stride() for o in cases]
    assert res["ember"] == res["torch"] == [(H * L * E // 2, L * E // 2, E // 2, 1), contiguous, contiguous]
    np.testing.assert_allclose(ey, ty, rtol=1e-9, atol=1e-10)
