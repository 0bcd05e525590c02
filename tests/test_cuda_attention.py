"""Fused attention on CUDA against torch CUDA: outputs and gradients of scaled_dot_product_attention
(GPU machine). Each result is compared with a float64 reference computed by torch from the same
rounded inputs: ember's error must be within a fixed tolerance or 3x torch's own error in that dtype."""
import numpy as np
import pytest

import ember
from ember.dispatch import OPS

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]
torch = pytest.importorskip("torch")
TF = torch.nn.functional
F = ember.nn.functional

FUSED = "FusedAttentionBackward0"
TOL = {"float32": 2e-5, "float16": 4e-3, "bfloat16": 3e-2, "float64": 1e-10}


def _pair(a, dtype):
    """The same data as a torch and an ember CUDA tensor of `dtype` (both requiring grad if floating)."""
    t = torch.tensor(a, dtype=getattr(torch, dtype), device="cuda")
    e = ember.tensor(a, dtype=getattr(ember, dtype), device="cuda")
    if a.dtype != np.bool_:
        t.requires_grad_()
        e.requires_grad_()
    return t, e


def _close(e, t, ref, tol, what):
    """ember's `e` within tol (relative to the reference's scale) of the float64 `ref`, or within 3x
    the error of torch's `t` (at most 10 tol)."""
    e, t, ref = (x.detach().double().cpu().numpy() for x in (e, t, ref))
    assert e.shape == ref.shape, what
    if not ref.size:
        return
    scale = max(1.0, float(np.abs(ref).max()))
    err_e, err_t = float(np.abs(e - ref).max()), float(np.abs(t - ref).max())
    bound = max(tol * scale, min(3 * err_t, 10 * tol * scale))
    assert err_e <= bound, f"{what}: ember error {err_e:.3g}, torch error {err_t:.3g}"


def _run(dtype, q, k, v, mask=None, causal=False, scale=None, fused=True, seed=0):
    """Forward and all grads of ember's and torch's SDPA, checked against torch in float64."""
    (tq, eq), (tk, ek), (tv, ev) = (_pair(a, dtype) for a in (q, k, v))
    tm = em = None
    if mask is not None:
        tm, em = _pair(mask, "bool" if mask.dtype == np.bool_ else dtype)
        tm, em = tm.detach(), em.detach()
        # torch's CUDA kernels refuse a float mask broadcast along its last dim: give torch the full mask
        tm = tm.expand(torch.broadcast_shapes(tm.shape, (q.shape[-2], k.shape[-2]))).contiguous()
    ye = F.scaled_dot_product_attention(eq, ek, ev, attn_mask=em, is_causal=causal, scale=scale)
    yt = TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, is_causal=causal, scale=scale)
    assert (type(ye.grad_fn).__name__ == FUSED) == fused
    assert ye.dtype is getattr(ember, dtype) and tuple(ye.shape) == tuple(yt.shape)
    refs = [t.detach().double().requires_grad_() for t in (tq, tk, tv)]
    rm = tm.double() if tm is not None and tm.dtype != torch.bool else tm
    yr = TF.scaled_dot_product_attention(*refs, attn_mask=rm, is_causal=causal, scale=scale)
    tol = TOL[dtype]
    _close(ye, yt, yr, tol, "output")
    gy = np.random.default_rng(seed + 9).standard_normal(tuple(yt.shape))
    tg, eg = _pair(gy, dtype)
    gr = torch.autograd.grad(yr, refs, tg.detach().double())
    gt = torch.autograd.grad(yt, (tq, tk, tv), tg.detach())
    ge = ember.autograd.grad(ye, [eq, ek, ev], eg.detach())
    for name, e, t, r in zip("qkv", ge, gt, gr):
        _close(e, t, r, tol * 4, f"grad of {name}")
    return ye


def _qkv(B, L, S, E, Ev, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(B + (L, E)), rng.standard_normal(B + (S, E)), rng.standard_normal(B + (S, Ev))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("B,L,S,E,Ev,causal", [
    ((2, 3), 128, 128, 64, 64, True),
    ((2, 2), 100, 77, 16, 16, False),        # L != S, not multiples of the tiles
    ((1, 2), 33, 190, 128, 128, False),
    ((3,), 257, 300, 128, 128, True),        # causal with L < S, several tiles
    ((2, 2), 300, 200, 64, 32, True),        # causal with L > S, Ev != E
    ((4,), 1, 513, 40, 24, False),           # one query (decoding), padded head dims
])
def test_sdpa_fused_vs_torch(dtype, B, L, S, E, Ev, causal):
    _run(dtype, *_qkv(B, L, S, E, Ev), causal=causal)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("kind,mshape", [("bool", (2, 1, 70, 90)), ("bool", (2, 1, 1, 90)), ("float", (70, 90)),
                                         ("float", (3, 70, 1))])
def test_sdpa_fused_masks_vs_torch(dtype, kind, mshape):
    rng = np.random.default_rng(1)
    if kind == "bool":
        m = rng.random(mshape) > 0.3
        m[..., 0] = True     # no fully masked rows here: torch's CUDA kernels may not give zeros for them
    else:
        m = rng.standard_normal(mshape)
    _run(dtype, *_qkv((2, 3), 70, 90, 32, 32, seed=2), mask=m, scale=0.2)


def test_sdpa_fully_masked_rows_give_zeros():
    rng = np.random.default_rng(3)
    q, k, v = _qkv((2, 2), 20, 30, 16, 16, seed=3)
    m = rng.random((2, 1, 20, 30)) > 0.5
    m[0, :, 5] = False
    m[1, :, 17] = False
    eq, ek, ev = (ember.tensor(a, dtype=ember.float32, device="cuda", requires_grad=True) for a in (q, k, v))
    em = ember.tensor(m, device="cuda")
    ye = F.scaled_dot_product_attention(eq, ek, ev, attn_mask=em)
    assert type(ye.grad_fn).__name__ == FUSED
    ref = F.scaled_dot_product_attention(*(ember.tensor(a) for a in (q, k, v)), attn_mask=ember.tensor(m))
    np.testing.assert_allclose(ye.detach().cpu().numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    assert not ye.detach().cpu().numpy()[0, :, 5].any()
    gq, gk, gv = ember.autograd.grad(ye.sum(), [eq, ek, ev])
    cq, ck, cv = (ember.tensor(a, requires_grad=True) for a in (q, k, v))
    want = ember.autograd.grad(F.scaled_dot_product_attention(cq, ck, cv, attn_mask=ember.tensor(m)).sum(),
                               [cq, ck, cv])
    for g, w in zip((gq, gk, gv), want):
        assert np.isfinite(g.cpu().numpy()).all()
        np.testing.assert_allclose(g.cpu().numpy(), w.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_sdpa_fused_strided_inputs_vs_torch(dtype):
    """Multi-head attention's layout: heads interleaved in the rows of a projection."""
    rng = np.random.default_rng(4)
    L, N, H, E = 50, 2, 4, 16
    x = rng.standard_normal((L, N * H, 3 * E))
    tx, ex = _pair(x, dtype)

    def heads(t, i):
        return t[..., i * E:(i + 1) * E].transpose(0, 1).reshape(N, H, L, E)
    ye = F.scaled_dot_product_attention(heads(ex, 0), heads(ex, 1), heads(ex, 2), is_causal=True)
    yt = TF.scaled_dot_product_attention(heads(tx, 0), heads(tx, 1), heads(tx, 2), is_causal=True)
    assert type(ye.grad_fn).__name__ == FUSED
    rx = tx.detach().double().requires_grad_()
    yr = TF.scaled_dot_product_attention(heads(rx, 0), heads(rx, 1), heads(rx, 2), is_causal=True)
    _close(ye, yt, yr, TOL[dtype], "output")
    ge, = ember.autograd.grad((ye * ye).sum(), [ex])
    gt, = torch.autograd.grad((yt * yt).sum(), [tx])
    gr, = torch.autograd.grad((yr * yr).sum(), [rx])
    _close(ge, gt, gr, TOL[dtype] * 4, "grad")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_sdpa_on_a_permuted_fused_qkv_grads_without_a_stack(dtype):
    """q, k, v = qkv.view(B, T, 3, H, D).permute(2, 0, 3, 1, 4), as users write it: the projection's grad is a view
    of the one buffer the backward wrote dq, dk and dv into (no stack kernel), equal to torch's."""
    rng = np.random.default_rng(5)
    B, T, H, E = 3, 40, 4, 16
    x = rng.standard_normal((B, T, 3 * H * E))
    g = rng.standard_normal((B, H, T, E))
    tx, ex = _pair(x, dtype)
    tg, eg = _pair(g, dtype)
    calls = []
    stack = OPS["stack"].kernels["cuda"]
    OPS["stack"].register("cuda")(lambda *a, **k: (calls.append(1), stack(*a, **k))[1])
    try:
        q, k, v = ex.view(B, T, 3, H, E).permute(2, 0, 3, 1, 4)
        ye = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        ge, = ember.autograd.grad(ye, [ex], eg.detach())
    finally:
        OPS["stack"].register("cuda")(stack)
    assert not calls and type(ye.grad_fn).__name__ == FUSED
    q, k, v = tx.view(B, T, 3, H, E).permute(2, 0, 3, 1, 4)
    yt = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
    gt, = torch.autograd.grad(yt, [tx], tg.detach())
    rx = tx.detach().double().requires_grad_()
    q, k, v = rx.view(B, T, 3, H, E).permute(2, 0, 3, 1, 4)
    yr = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
    gr, = torch.autograd.grad(yr, [rx], tg.detach().double())
    _close(ge, gt, gr, TOL[dtype] * 4, "grad")


def test_sdpa_composite_on_cuda_for_float64_and_wide_heads():
    _run("float64", *_qkv((2,), 9, 11, 8, 8), causal=True, fused=False)
    _run("float32", *_qkv((2,), 9, 11, 256, 8), fused=False)


@pytest.mark.parametrize("L,S", [(5, 0), (0, 7)])
def test_sdpa_fused_empty(L, S):
    q, k, v = _qkv((2,), L, S, 16, 8)
    eq, ek, ev = (ember.tensor(a, dtype=ember.float32, device="cuda", requires_grad=True) for a in (q, k, v))
    ye = F.scaled_dot_product_attention(eq, ek, ev)
    assert tuple(ye.shape) == (2, L, 8) and not ye.detach().cpu().numpy().any()
    for g, t in zip(ember.autograd.grad(ye.sum(), [eq, ek, ev]), (q, k, v)):
        assert tuple(g.shape) == t.shape and not g.cpu().numpy().any()


def test_transformer_layer_on_cuda_matches_torch():
    torch.manual_seed(0)
    tl = torch.nn.TransformerEncoderLayer(64, 4, 128, 0.0, batch_first=True, norm_first=True).cuda()
    el = ember.nn.TransformerEncoderLayer(64, 4, 128, 0.0, batch_first=True, norm_first=True)
    el.load_state_dict({k: ember.tensor(v.detach().cpu().numpy()) for k, v in tl.state_dict().items()})
    el = el.to("cuda")
    x = np.random.default_rng(5).standard_normal((3, 40, 64))
    tx, ex = _pair(x, "float32")
    mask = torch.ones(40, 40, dtype=torch.bool, device="cuda").triu(1)
    yt = tl(tx, src_mask=mask, is_causal=True)
    ye = el(ex, src_mask=ember.tensor(mask.cpu().numpy(), device="cuda"), is_causal=True)
    np.testing.assert_allclose(ye.detach().cpu().numpy(), yt.detach().cpu().numpy(), rtol=1e-4, atol=1e-4)
    ge, = ember.autograd.grad((ye * ye).sum(), [ex])
    gt, = torch.autograd.grad((yt * yt).sum(), [tx])
    np.testing.assert_allclose(ge.cpu().numpy(), gt.cpu().numpy(), rtol=1e-3, atol=1e-3)


def _torch_packed(t, H, mask, causal, scale):
    B, L, E3 = t.shape
    q, k, v = t.reshape(B, L, 3, H, E3 // 3 // H).permute(2, 0, 3, 1, 4).unbind(0)
    o = TF.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=scale)
    return o.transpose(1, 2).reshape(B, L, E3 // 3)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("B,L,H,hd,mask,seq_first", [
    (4, 22, 4, 16, "causal", False),         # the reversal model's shapes
    (2, 130, 2, 64, "causal", True),         # several tiles; a (L, B, 3E) projection seen as (B, L, 3E)
    (3, 50, 3, 32, "bool", False),
    (2, 40, 2, 128, "float", False),         # a per-head float mask, the widest heads
])
def test_packed_self_attention_vs_torch(dtype, B, L, H, hd, mask, seq_first):
    """ember's packed op reads the heads of one projection in place; against torch's SDPA on views of
    the same projection, both checked against float64."""
    rng = np.random.default_rng(11)
    E = H * hd
    a = rng.standard_normal((L, B, 3 * E) if seq_first else (B, L, 3 * E))
    t, e = _pair(a, dtype)
    tv, ev = (t.transpose(0, 1), e.transpose(0, 1)) if seq_first else (t, e)
    tm = em = None
    if mask == "bool":
        mm = rng.random((L, L)) > 0.3
        tm, em = torch.tensor(mm, device="cuda"), ember.tensor(mm, device="cuda")
    elif mask == "float":
        mm = rng.standard_normal((B, H, L, L))
        tm, em = (x.detach() for x in _pair(mm, dtype))
    scale = hd ** -0.5
    ye = ember.ops._packed_self_attention(ev, H, em, mask == "causal", scale)[0]
    yt = _torch_packed(tv, H, tm, mask == "causal", scale)
    ref = t.detach().double().requires_grad_()
    rv = ref.transpose(0, 1) if seq_first else ref
    yr = _torch_packed(rv, H, tm.double() if tm is not None and tm.dtype != torch.bool else tm, mask == "causal",
                       scale)
    tol = TOL[dtype]
    _close(ye, yt, yr, tol, "output")
    g = rng.standard_normal((B, L, E))
    tg, eg = (x.detach() for x in _pair(g, dtype))
    ge, = ember.autograd.grad(ye, [e], eg)
    gt, = torch.autograd.grad(yt, [t], tg)
    gr, = torch.autograd.grad(yr, [ref], tg.double())
    _close(ge, gt, gr, tol * 4, "grad of qkv")


def test_transformer_layer_on_cuda_takes_the_packed_op():
    el = ember.nn.TransformerEncoderLayer(64, 4, 128, 0.0, batch_first=True, norm_first=True).to("cuda")
    x = ember.randn(2, 10, 64, device="cuda")
    seen = []
    kern = ember.dispatch.OPS["_packed_self_attention"].kernels
    real = kern["cuda"]
    kern["cuda"] = lambda *a: seen.append(1) or real(*a)
    try:
        el(x, src_mask=ember.ones(10, 10, dtype=ember.bool, device="cuda").triu(1), is_causal=True)
    finally:
        kern["cuda"] = real
    assert seen == [1]


# ---- dropout inside the fused kernels ----------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_dropout_is_fused_and_matches_the_cpu_kernel(dtype, causal):
    """F.scaled_dot_product_attention(dropout_p > 0) on CUDA runs _fused_attention_dropout; from the same
    generator state (seed, offset) the CPU kernel draws the same mask, so outputs and grads agree."""
    rng = np.random.default_rng(3)
    shape = (4, 8, 80, 32)                        # the ViT workload's attention: T 80, head dim 32
    dt = getattr(ember, dtype)
    q, k, v = (ember.tensor(rng.standard_normal(shape), dtype=dt, device="cuda", requires_grad=True)
               for _ in range(3))
    ember.manual_seed(21)
    cuda_gen = ember.random.get_generator(None, q.device)
    seed, base = cuda_gen.initial_seed(), cuda_gen._offset      # what the forward draws from
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.1, is_causal=causal)
    assert type(out.grad_fn).__name__ == "FusedAttentionDropoutBackward0"
    g = rng.standard_normal(shape)
    out.backward(ember.tensor(g, dtype=dt, device="cuda"))
    cq, ck, cv = (t.detach().cpu().requires_grad_() for t in (q, k, v))
    cpu = ember.random.get_generator(None, ember.device("cpu"))
    saved = cpu._seed, cpu._offset
    cpu._seed, cpu._offset = seed, base          # the CUDA draw's (seed, offset) on the CPU generator
    try:
        ref = ember.ops._fused_attention_dropout(cq, ck, cv, None, causal, 1 / np.sqrt(32), 0.1)[0]
    finally:
        cpu._seed, cpu._offset = saved
    tol = TOL[dtype] * 2
    np.testing.assert_allclose(out.detach().float().cpu().numpy(), ref.detach().float().numpy(), rtol=tol, atol=tol)
    ref.backward(ember.tensor(g, dtype=dt))
    for e, c in ((q, cq), (k, ck), (v, cv)):
        np.testing.assert_allclose(e.grad.float().cpu().numpy(), c.grad.float().numpy(), rtol=4 * tol, atol=4 * tol)
    kept = (ref.detach().float().numpy() != 0).mean()
    assert kept > 0.5


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("shape", [(1, 2, 6, 9, 8), (2, 2, 37, 37, 16), (1, 2, 100, 130, 32)])
@pytest.mark.parametrize("mask", ["bool", "float"])
def test_attention_dropout_with_a_mask_matches_the_cpu_kernel(dtype, shape, mask):
    """16-bit attention with both a mask and dropout (16-wide key tiles gave wrong outputs there on an H100: see
    `_config`), forward and backward, against the CPU kernel drawing the same mask."""
    B, H, L, S, E = shape
    rng = np.random.default_rng(4)
    dt = getattr(ember, dtype)
    q, k, v, do = (ember.tensor(rng.standard_normal(s), dtype=dt)
                   for s in ((B, H, L, E), (B, H, S, E), (B, H, S, E), (B, H, L, E)))
    m = (ember.tensor(rng.random((L, S)) > 0.3) if mask == "bool"
         else ember.tensor(rng.standard_normal((L, S)), dtype=dt))
    args = (False, 0.35, 0.4)
    ember.manual_seed(11)
    gq, gk, gv, gdo, gm = (t.cuda() for t in (q, k, v, do, m))
    got = ember.ops._fused_attention_dropout(gq, gk, gv, gm, *args)
    ember.manual_seed(11)
    want = OPS["_fused_attention_dropout"].kernels["cpu"](q, k, v, m, *args)
    assert got[2].cpu().tolist() == want[2].tolist()
    tol = TOL[dtype] * 2
    np.testing.assert_allclose(got[0].float().cpu().numpy(), want[0].float().numpy(), rtol=tol, atol=tol)
    gg = ember.ops._fused_attention_dropout_backward(gdo, gq, gk, gv, gm, got[0], got[1], got[2], *args, True, True,
                                                     True)
    ww = OPS["_fused_attention_dropout_backward"].kernels["cpu"](do, q, k, v, m, want[0], want[1], want[2], *args,
                                                                 True, True, True)
    for name, a, b in zip("qkv", gg, ww):
        np.testing.assert_allclose(a.float().cpu().numpy(), b.float().numpy(), rtol=4 * tol, atol=4 * tol,
                                   err_msg=f"the grad of {name}")


def test_attention_dropout_in_a_cuda_graph_draws_a_new_mask_each_replay():
    rng = np.random.default_rng(4)
    q, k, v = (ember.tensor(rng.standard_normal((2, 4, 64, 32)), dtype=ember.bfloat16, device="cuda")
               for _ in range(3))

    def step():
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.2)
    step()
    ember.cuda.synchronize()
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        out = step()
    ember.manual_seed(5)
    g.replay()
    r1 = out.float().cpu().numpy()
    g.replay()
    r2 = out.float().cpu().numpy()
    assert not np.array_equal(r1, r2)
    ember.manual_seed(5)                          # the eager call draws what the first replay drew
    np.testing.assert_array_equal(step().float().cpu().numpy(), r1)
    g.reset()


@pytest.mark.parametrize("dropout_p", [0.0, 0.1])
def test_sdpa_output_is_laid_out_for_the_heads_transpose(dropout_p):
    """As torch's flash/cuDNN outputs: (B, H, L, E) stored as (B, L, H, E), so that the usual
    `out.transpose(1, 2).reshape(B, L, H * E)` is a view; values as the contiguous CPU result."""
    rng = np.random.default_rng(5)
    qkv = ember.tensor(rng.standard_normal((2, 40, 3 * 64)), dtype=ember.float32, device="cuda")
    q, k, v = qkv.view(2, 40, 3, 4, 16).permute(2, 0, 3, 1, 4)
    ember.manual_seed(1)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    merged = out.transpose(1, 2).reshape(2, 40, 64)
    assert out.transpose(1, 2).is_contiguous() and merged.data_ptr() == out.data_ptr()
    if dropout_p == 0.0:
        want = F.scaled_dot_product_attention(*(t.cpu() for t in (q, k, v)))
        np.testing.assert_allclose(out.cpu().numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
