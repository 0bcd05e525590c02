"""Fused rotary embedding on CUDA against a reference of torch CUDA ops: outputs and gradients of q and k
viewed from a fused qkv projection, and nn.RotaryEmbedding on the GPU (GPU machine)."""
import numpy as np
import pytest
from samples.rotary import rotary_reference

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]
torch = pytest.importorskip("torch")

TOL = {"float32": 2e-5, "float16": 4e-3, "bfloat16": 3e-2, "float64": 1e-10}


def _tables(T, dim, dtype):
    angles = torch.arange(T, dtype=torch.float64)[:, None] * 10000.0 ** (-torch.arange(0, dim, 2).double() / dim)
    return angles.cos().to(dtype), angles.sin().to(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("B,T,H,E", [(2, 17, 4, 64), (1, 300, 2, 128), (3, 5, 1, 6)])
def test_rotary_forward_backward_of_a_qkv_view_vs_torch(dtype, interleaved, B, T, H, E):
    rng = np.random.default_rng(0)
    x, gy = rng.standard_normal((B, T, 3 * H * E)), rng.standard_normal((2, B, H, T, E))
    tdt, edt = getattr(torch, dtype), getattr(ember, dtype)
    tab = torch.float64 if dtype == "float64" else torch.float32      # float32 tables for 16-bit inputs
    tc, ts = (t.cuda().requires_grad_() for t in _tables(T, E, tab))
    ec, es = (ember.tensor(t.detach().cpu().numpy(), device="cuda", requires_grad=True) for t in (tc, ts))
    tx = torch.tensor(x, dtype=tdt, device="cuda", requires_grad=True)
    ex = ember.tensor(x, dtype=edt, device="cuda", requires_grad=True)
    tq = tx.view(B, T, 3, H, E).permute(2, 0, 3, 1, 4)[:2]
    eq = ex.view(B, T, 3, H, E).permute(2, 0, 3, 1, 4)[:2]
    ty = rotary_reference(tq, tc, ts, interleaved)
    ey = ember.nn.functional.rotary_embedding(eq, ec, es, interleaved)
    tol = TOL[dtype]
    np.testing.assert_allclose(ey.detach().float().cpu().numpy(), ty.detach().float().cpu().numpy(), rtol=tol,
                               atol=tol)
    tg = torch.autograd.grad(ty, (tx, tc, ts), torch.tensor(gy, dtype=tdt, device="cuda"))
    eg = ember.autograd.grad(ey, (ex, ec, es), ember.tensor(gy, dtype=edt, device="cuda"))
    for e, t in zip(eg, tg):
        scale = max(1.0, float(t.float().abs().max()))
        np.testing.assert_allclose(e.float().cpu().numpy(), t.float().cpu().numpy(), rtol=tol * 4,
                                   atol=tol * 4 * scale)


def test_rotary_module_on_the_gpu_matches_the_cpu():
    rope = ember.nn.RotaryEmbedding(32, max_seq_len=16)
    q, k = ember.randn(2, 4, 10, 32), ember.randn(2, 4, 10, 32)
    want = rope(q, k, offset=12)                         # grows the tables past 16 positions on the CPU
    rope_cuda = ember.nn.RotaryEmbedding(32, max_seq_len=16).cuda()
    got = rope_cuda(q.cuda().bfloat16(), k.cuda().bfloat16(), offset=12)
    assert rope_cuda.cos.device.type == "cuda" and got[0].dtype is ember.bfloat16
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.float().cpu().numpy(), w.numpy(), rtol=3e-2, atol=3e-2)
