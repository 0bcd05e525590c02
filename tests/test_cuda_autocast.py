"""ember.autocast on CUDA against torch CUDA autocast (`pytest -m cuda`): the dtypes of each policy list, a
Transformer block's forward and backward in bf16 and fp16, and GradScaler with overflows."""
import numpy as np
import pytest

import ember

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings"),
              pytest.mark.skipif(not torch.cuda.is_available(), reason="torch has no CUDA here")]

X = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)

CASES = [
    ("mm", lambda m, F, x: m.mm(x, x.t())),
    ("linear", lambda m, F, x: F.linear(x, x)),
    ("exp", lambda m, F, x: m.exp(x.half())),
    ("softmax", lambda m, F, x: m.softmax(x.half(), -1)),
    ("sum", lambda m, F, x: m.sum(x.half())),
    ("layer_norm", lambda m, F, x: F.layer_norm(x.half(), (16,))),
    ("rms_norm", lambda m, F, x: F.rms_norm(x.half(), (16,))),
    ("cat", lambda m, F, x: m.cat([x, x.half()])),
    ("cross_entropy", lambda m, F, x: F.cross_entropy(x.half(), m.zeros(8, dtype=m.int64, device="cuda"))),
]


@pytest.mark.parametrize("case,fn", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_dtypes_match_torch_cuda(case, fn, dt):
    ex, tx = ember.tensor(X, device="cuda"), torch.tensor(X, device="cuda")
    with ember.autocast("cuda", dtype=getattr(ember, dt)):
        got = fn(ember, ember.nn.functional, ex)
    with torch.autocast("cuda", dtype=getattr(torch, dt)):
        want = fn(torch, torch.nn.functional, tx)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1], (case, got.dtype, want.dtype)


@pytest.mark.parametrize("dt,tol", [("bfloat16", 3e-2), ("float16", 5e-3)])
def test_transformer_block_forward_backward_close_to_torch(dt, tol):
    def block(m):
        m.manual_seed(0)
        layer = m.nn.TransformerEncoderLayer(64, 4, 128, 0.0, batch_first=True, norm_first=True)
        return layer
    e_layer, t_layer = block(ember).cuda(), block(torch).cuda()
    e_layer.load_state_dict({k: ember.tensor(v.detach().cpu().numpy()) for k, v in t_layer.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((4, 16, 64)).astype(np.float32)
    ex = ember.tensor(x, device="cuda", requires_grad=True)
    tx = torch.tensor(x, device="cuda", requires_grad=True)
    with ember.autocast("cuda", dtype=getattr(ember, dt)):
        ey = e_layer(ex)
    with torch.autocast("cuda", dtype=getattr(torch, dt)):
        ty = t_layer(tx)
    assert str(ey.dtype).split(".")[-1] == str(ty.dtype).split(".")[-1]
    ey.float().square().mean().backward()
    ty.float().square().mean().backward()
    np.testing.assert_allclose(ey.float().cpu().detach().numpy(), ty.float().cpu().detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(ex.grad.cpu().numpy(), tx.grad.cpu().numpy(), rtol=10 * tol, atol=tol)


def test_grad_scaler_schedule_matches_torch_cuda():
    def run(m):
        p = m.nn.Parameter(m.ones(3, device="cuda"))
        opt = m.optim.SGD([p], lr=0.1)
        sc = m.amp.GradScaler("cuda", init_scale=2.0 ** 10, growth_interval=3)
        scales = []
        for k in range(20):
            opt.zero_grad()
            sc.scale((p * p).sum()).backward()
            if k in (3, 4, 11):
                with m.no_grad():
                    p.grad[0] = float("inf")
            sc.step(opt)
            sc.update()
            scales.append(sc.get_scale())
        return scales, p.detach().cpu().tolist()
    es, ep = run(ember)
    ts, tp = run(torch)
    assert es == ts
    np.testing.assert_allclose(ep, tp, rtol=1e-6)


def test_binary_cross_entropy_is_refused_under_cuda_autocast_as_torch():
    x = ember.rand(4, 3, device="cuda")
    with ember.autocast("cuda", dtype=ember.bfloat16):
        with pytest.raises(RuntimeError, match="binary_cross_entropy is unsafe to autocast on cuda.*with_logits"):
            ember.nn.functional.binary_cross_entropy(x, x)
        out = ember.nn.functional.binary_cross_entropy_with_logits(x.to(ember.bfloat16), x)
    assert out.dtype == ember.float32
    assert ember.nn.functional.binary_cross_entropy(x, x).dtype == ember.float32    # outside the region: allowed
