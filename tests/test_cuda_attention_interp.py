"""The fused attention Triton kernels through Triton's interpreter on CPU tensors, against the CPU
kernels of the same ops."""
import os

import numpy as np
import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernels are tested by tests/test_cuda_attention.py",
                allow_module_level=True)
pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from ember.backends.cuda import attention as A  # noqa: E402
from ember.backends.cuda.compiler import next_power_of_2  # noqa: E402
from ember.dispatch import OPS  # noqa: E402

CPU_FWD = OPS["_fused_attention"].kernels["cpu"]
CPU_BWD = OPS["_fused_attention_backward"].kernels["cpu"]


def _t(rng, shape, dt=ember.float32):
    return ember.tensor(rng.standard_normal(shape).astype(np.float32)).to(dt)


def _check(q, k, v, mask, causal, scale=0.4, tol=1e-5, needs=((True, True, True),)):
    """Forward and backward of the Triton kernels against the CPU kernels (in float32)."""
    rng = np.random.default_rng(7)
    o, lse = A.fused_attention(q, k, v, mask, causal, scale)
    f32 = [t.float() for t in (q, k, v)]
    m32 = mask.float() if mask is not None and mask.dtype is not ember.bool else mask
    eo, want_lse = CPU_FWD(*f32, m32, causal, scale)
    assert o.dtype is q.dtype and lse.dtype is ember.float32
    assert tuple(o.shape) == tuple(eo.shape) and tuple(lse.shape) == tuple(want_lse.shape)
    assert lse.is_contiguous()
    if o.ndim == 4:     # (B, H, L, Ev) laid out as (B, L, H, Ev): the heads' transpose back is a view
        assert o.transpose(1, 2).is_contiguous()
    else:
        assert o.is_contiguous()
    np.testing.assert_allclose(o.float().numpy(), eo.numpy(), rtol=tol, atol=tol)
    np.testing.assert_array_equal(np.isneginf(lse.numpy()), np.isneginf(want_lse.numpy()))
    live = np.isfinite(want_lse.numpy())
    np.testing.assert_allclose(lse.numpy()[live], want_lse.numpy()[live], rtol=1e-5, atol=1e-5)
    g = _t(rng, o.shape, q.dtype)
    for need in needs:
        got = A.fused_attention_backward(g, q, k, v, mask, o, lse, causal, scale, *need)
        want = CPU_BWD(g.float(), *f32, m32, eo, want_lse, causal, scale, *need)
        for x, y, n in zip(got, want, need):
            assert (x is None) == (not n) and (y is None) == (not n)
            if n:
                assert x.dtype is q.dtype and x.is_contiguous()
                np.testing.assert_allclose(x.float().numpy(), y.numpy(), rtol=tol * 4, atol=tol * 4)


SOME = ((True, True, True), (True, False, False), (False, True, False), (False, False, True))


@pytest.mark.parametrize("batch,L,S,E,Ev,causal,needs", [
    ((2,), 5, 7, 8, 4, False, SOME),
    ((3,), 6, 6, 5, 3, True, SOME),
    ((1, 2), 40, 37, 16, 16, True, SOME[:1]),      # several query and key tiles, L > S
    ((2,), 9, 45, 8, 8, True, SOME[:1]),           # L < S
    ((1,), 37, 40, 32, 8, False, SOME[:1]),
])
def test_attention_kernels_match_cpu(batch, L, S, E, Ev, causal, needs):
    rng = np.random.default_rng(0)
    _check(_t(rng, batch + (L, E)), _t(rng, batch + (S, E)), _t(rng, batch + (S, Ev)), None, causal, needs=needs)


@pytest.mark.parametrize("kind,mshape,batch", [
    ("bool", (3, 6, 9), (2, 3)),            # per head, with fully masked rows
    ("bool", (2, 1, 1, 9), (2, 3)),         # key padding: row and head strides 0
    ("float", (6, 1), (2, 3)),              # broadcast over keys: column stride 0
    ("float", (2, 1, 6, 9), (2, 3)),        # two batch levels
    ("float", (2, 1, 2, 6, 9), (2, 2, 2)),  # three batch levels: copied
])
def test_attention_kernels_masks_match_cpu(kind, mshape, batch):
    rng = np.random.default_rng(1)
    if kind == "bool":
        mm = rng.random(mshape) > 0.4
        mm.reshape(-1, mshape[-1])[::4] = False
        mask = ember.tensor(mm)
    else:
        mask = _t(rng, mshape)
    assert (A._mask(mask, batch, 6, 9)[0] is mask) == (len(mshape) < 5)
    _check(_t(rng, batch + (6, 8)), _t(rng, batch + (9, 8)), _t(rng, batch + (9, 5)), mask, False)


def test_attention_kernels_strided_inputs():
    rng = np.random.default_rng(2)
    # the layout multi-head attention produces: (L, N*H, E) transposed to (N*H, L, E), viewed as (N, H, L, E)
    q = _t(rng, (7, 6, 8)).transpose(0, 1).reshape(2, 3, 7, 8)
    k = _t(rng, (2, 3, 8, 9)).transpose(-1, -2)          # columns not contiguous: copied
    v = _t(rng, (3, 2, 9, 4)).transpose(0, 1)            # batch dims that do not collapse: copied
    assert not k.is_contiguous() and not v.is_contiguous() and not q.is_contiguous()
    _check(q, k, v, None, True)


def test_attention_kernels_float16():
    rng = np.random.default_rng(3)
    q, k, v = (_t(rng, s, ember.float16) for s in ((2, 20, 16), (2, 18, 16), (2, 18, 16)))
    mask = _t(rng, (20, 18), ember.float16)
    _check(q, k, v, mask, False, tol=2e-3)


@pytest.mark.parametrize("L,S,E,Ev,causal", [
    (300, 200, 64, 32, True),     # causal with L > S (rows >= S see every key), Ev != E, several query tiles
    (1, 513, 40, 24, False),      # one query, padded head dims, a partial last key tile
    (80, 80, 32, 32, False),      # ViT's attention: 16 x 16 tiles, unpadded 16-bit head dims
    (600, 40, 32, 32, True),      # long: 128 x 64 forward tiles (wgmma on Hopper), head dims padded to 64
    (8, 700, 32, 32, False),      # few queries, many keys: the long sequences' tiles
])
def test_attention_kernels_float16_gpu_configs(L, S, E, Ev, causal):
    """Shapes that failed on the GPU, at the tiles the GPU uses for float16. Where a tile dim reaches 64 (Hopper's
    wgmma), 16-bit head dims are padded to 64 (128-byte tile rows), since Triton 3.6 miscompiles 32-wide ones."""
    c = A._config(ember.float16, E, Ev, L, S)
    assert c == A._config(ember.bfloat16, E, Ev, L, S)
    least = 64 if max(c.fwd_m, c.fwd_n, c.small, c.large) >= 64 else 16
    assert (c.d, c.dv) == (max(least, next_power_of_2(E)), max(least, next_power_of_2(Ev))), c
    f32 = A._config(ember.float32, E, Ev, L, S)
    assert (f32.d, f32.dv) == (max(16, next_power_of_2(E)), max(16, next_power_of_2(Ev)))
    rng = np.random.default_rng(5)
    q, k, v = (_t(rng, s, ember.float16) for s in ((1, L, E), (1, S, E), (1, S, Ev)))
    _check(q, k, v, None, causal, scale=E ** -0.5, tol=2e-3)


@pytest.mark.parametrize("L,S", [(3, 0), (0, 4)])
def test_attention_kernels_empty(L, S):
    rng = np.random.default_rng(4)
    q, k, v = _t(rng, (2, L, 4)), _t(rng, (2, S, 4)), _t(rng, (2, S, 3))
    o, lse = A.fused_attention(q, k, v, None, False, 0.5)
    assert tuple(o.shape) == (2, L, 3) and not o.numpy().any() and np.isneginf(lse.numpy()).all()
    dq, dk, dv = A.fused_attention_backward(_t(rng, (2, L, 3)), q, k, v, None, o, lse, False, 0.5, True, True, True)
    assert tuple(dq.shape) == (2, L, 4) and tuple(dk.shape) == (2, S, 4) and tuple(dv.shape) == (2, S, 3)
    assert not (dq.numpy().any() or dk.numpy().any() or dv.numpy().any())


def test_attention_kernel_refuses_what_it_cannot_do():
    x = ember.zeros(2, 3, 4, dtype=ember.float64)
    with pytest.raises(NotImplementedError, match="float16/bfloat16/float32 inputs with head dims of at most 128"):
        A.fused_attention(x, x, x, None, False, 0.5)
    y = ember.zeros(2, 3, 130)
    with pytest.raises(NotImplementedError, match="head dims of at most 128"):
        A.fused_attention(y, y, y, None, False, 0.5)


CPU_PFWD = OPS["_packed_self_attention"].kernels["cpu"]
CPU_PBWD = OPS["_packed_self_attention_backward"].kernels["cpu"]


@pytest.mark.parametrize("B,L,H,hd,mask,layout,dt", [
    (2, 7, 3, 4, "causal", "batch_first", ember.float32),
    (3, 5, 2, 8, "bool", "seq_first", ember.float32),       # qkv a (L, B, 3E) projection seen as (B, L, 3E)
    (2, 6, 2, 4, "float", "batch_first", ember.float32),    # a per-head float mask (B, H, L, L)
    (1, 20, 2, 16, None, "batch_first", ember.float16),
])
def test_packed_self_attention_kernels_match_cpu(B, L, H, hd, mask, layout, dt):
    """The heads are read from and written to the packed layouts in place (no copies), and match the
    CPU op, forward and backward."""
    rng = np.random.default_rng(8)
    E = H * hd
    qkv = _t(rng, (B, L, 3 * E), dt) if layout == "batch_first" else _t(rng, (L, B, 3 * E), dt).transpose(0, 1)
    causal = mask == "causal"
    m = None
    if mask == "bool":
        m = ember.tensor(rng.random((L, L)) > 0.3)
    elif mask == "float":
        m = _t(rng, (B, H, L, L), dt)
    for view in A.packed_views(qkv, H):       # what the kernels take without copying
        assert A._strides2(view, 2) is not None
    out, lse = A.packed_self_attention(qkv, H, m, causal, hd ** -0.5)
    m32 = m.float() if m is not None and m.dtype is not ember.bool else m
    want, want_lse = CPU_PFWD(qkv.float(), H, m32, causal, hd ** -0.5)
    tol = 2e-3 if dt is ember.float16 else 1e-5
    assert tuple(out.shape) == (B, L, E) and out.is_contiguous() and tuple(lse.shape) == (B, H, L)
    np.testing.assert_allclose(out.float().numpy(), want.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(lse.numpy(), want_lse.numpy(), rtol=1e-5, atol=1e-5)
    g = _t(rng, (B, L, E), dt)
    d = A.packed_self_attention_backward(g, qkv, H, m, out, lse, causal, hd ** -0.5)
    dw = CPU_PBWD(g.float(), qkv.float(), H, m32, want, want_lse, causal, hd ** -0.5)
    assert tuple(d.shape) == (B, L, 3 * E) and d.dtype is dt
    np.testing.assert_allclose(d.float().numpy(), dw.numpy(), rtol=tol * 4, atol=tol * 4)


def test_grads_of_a_permuted_fused_qkv_come_back_without_a_copy():
    """q, k, v = qkv.view(B, T, 3, H, D).permute(2, 0, 3, 1, 4), as users write it: the backward writes dq, dk and
    dv into one buffer in qkv's layout, unbind's backward sees them stacked (no stack kernel), and the projection's
    grad is a view of that buffer (no copy). The grad equals torch's (float32, causal)."""
    import torch
    from helpers import cuda_host_code_on_cpu
    B, T, H, Dh = 2, 5, 2, 8
    a = np.random.default_rng(3).standard_normal((B, T, 3 * H * Dh)).astype(np.float32)
    g = np.random.default_rng(4).standard_normal((B, H, T, Dh)).astype(np.float32)
    calls = []
    stack = OPS["stack"].kernels["cpu"]
    OPS["stack"].register("cpu")(lambda *args, **kw: (calls.append(1), stack(*args, **kw))[1])
    try:
        with cuda_host_code_on_cpu("_fused_attention", "_fused_attention_backward"):
            x = ember.tensor(a).requires_grad_()
            q, k, v = x.view(B, T, 3, H, Dh).permute(2, 0, 3, 1, 4)
            o = ember.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            o.backward(ember.tensor(g))
    finally:
        OPS["stack"].register("cpu")(stack)
    assert not calls
    tx = torch.tensor(a, requires_grad=True)
    tq, tk, tv = tx.view(B, T, 3, H, Dh).permute(2, 0, 3, 1, 4)
    torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True).backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    # the same views of a CPU-kernel backward (separate dq, dk, dv) are stacked as before
    x2 = ember.tensor(a).requires_grad_()
    q, k, v = x2.view(B, T, 3, H, Dh).permute(2, 0, 3, 1, 4)
    ember.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).backward(ember.tensor(g))
    np.testing.assert_allclose(x2.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
