"""Fused Adam/AdamW on CUDA against torch.optim on CUDA, and a captured, replayed optimizer step."""
import numpy as np
import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]
torch = pytest.importorskip("torch")


def _pair(shape, seed):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return ember.nn.Parameter(ember.tensor(a).cuda()), torch.nn.Parameter(torch.tensor(a).cuda())


@pytest.mark.parametrize("name,kw", [("AdamW", dict(lr=1e-2, weight_decay=0.1)),
                                     ("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
                                     ("Adam", dict(lr=1e-3, maximize=True))])
@pytest.mark.parametrize("capturable", [False, True])
def test_fused_adam_matches_torch(name, kw, capturable):
    ps = [_pair((33, 17), 0), _pair((17,), 1)]
    eo = getattr(ember.optim, name)([e for e, _ in ps], capturable=capturable, **kw)
    to = getattr(torch.optim, name)([t for _, t in ps], capturable=capturable, **kw)
    rng = np.random.default_rng(2)
    for _ in range(4):
        for e, t in ps:
            g = rng.standard_normal(tuple(e.shape)).astype(np.float32)
            e.grad, t.grad = ember.tensor(g).cuda(), torch.tensor(g).cuda()
        eo.step()
        to.step()
    for e, t in ps:
        np.testing.assert_allclose(e.detach().cpu().numpy(), t.detach().cpu().numpy(), rtol=3e-5, atol=3e-6)
    st = eo.state[ps[0][0]]
    assert st["step"].device.type == ("cuda" if capturable else "cpu") and st["step"].item() == 4


def test_capturable_adamw_step_replays_in_a_cuda_graph():
    (e, t), = [_pair((64, 32), 3)]
    g = np.random.default_rng(4).standard_normal((64, 32)).astype(np.float32)
    e.grad, t.grad = ember.tensor(g).cuda(), torch.tensor(g).cuda()
    eo = ember.optim.AdamW([e], lr=1e-2, capturable=True)
    to = torch.optim.AdamW([t], lr=1e-2, capturable=True)
    eo.step()       # warm-up (state creation, kernel compile) outside the capture
    to.step()
    graph = ember.cuda.CUDAGraph()
    s = ember.cuda.Stream()
    s.wait_stream(ember.cuda.current_stream())
    with ember.cuda.graph(graph, stream=s):
        eo.step()
    for _ in range(5):
        graph.replay()
    for _ in range(5):  # capturing ran nothing: the warm-up step + 5 replays = 6 steps
        to.step()
    ember.cuda.synchronize()
    np.testing.assert_allclose(e.detach().cpu().numpy(), t.detach().cpu().numpy(), rtol=3e-5, atol=3e-6)
    assert eo.state[e]["step"].item() == 6


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_on_cuda_matches_torch(dtype, max_norm):
    rng = np.random.default_rng(7)
    shapes = [(300, 70), (70,), (1,), (5, 5, 5)]
    es, ts = [], []
    for s in shapes:
        g = rng.standard_normal(s).astype(np.float32)
        e = ember.nn.Parameter(ember.zeros(*s, dtype=getattr(ember, dtype), device="cuda"))
        t = torch.nn.Parameter(torch.zeros(*s, dtype=getattr(torch, dtype), device="cuda"))
        e.grad, t.grad = ember.tensor(g).to(e.dtype).cuda(), torch.tensor(g).to(t.dtype).cuda()
        es.append(e)
        ts.append(t)
    en = ember.nn.utils.clip_grad_norm_(es, max_norm)
    tn = torch.nn.utils.clip_grad_norm_(ts, max_norm)
    assert str(en.dtype).split(".")[-1] == str(tn.dtype).split(".")[-1]
    tol = 1e-5 if dtype == "float32" else 2e-2
    np.testing.assert_allclose(en.float().item(), tn.float().item(), rtol=tol)
    for e, t in zip(es, ts):
        np.testing.assert_allclose(e.grad.float().cpu().numpy(), t.grad.float().cpu().numpy(), rtol=tol, atol=tol)
