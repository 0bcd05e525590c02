"""Fused multi-tensor Adam/AdamW and clip_grad_norm_ on CUDA against torch on CUDA, their launch
counts (one per 8 tensors), and a captured, replayed optimizer step with clipping."""
import numpy as np
import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]
torch = pytest.importorskip("torch")

# 11 parameters of mixed sizes (two launches per step; the empty one takes no slot)
SHAPES = [(33, 17), (17,), (1,), (3000,), (), (0, 3), (64, 65), (5, 5, 5), (1,), (1025,), (7, 3)]


def _pair(shape, seed, dtype="float32"):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return (ember.nn.Parameter(ember.tensor(a).to(getattr(ember, dtype)).cuda()),
            torch.nn.Parameter(torch.tensor(a).to(getattr(torch, dtype)).cuda()))


def _set_grads(ps, rng):
    for e, t in ps:
        g = rng.standard_normal(tuple(e.shape)).astype(np.float32)
        e.grad, t.grad = ember.tensor(g).to(e.dtype).cuda(), torch.tensor(g).to(t.dtype).cuda()


@pytest.fixture
def launches(monkeypatch):
    """The names of the kernels launched by ember.backends.cuda.optim, in order."""
    from ember.backends.cuda import optim
    names = []
    real_run = optim.run

    def counting_run(fn, *args, **kw):
        names.append(fn.__name__)
        return real_run(fn, *args, **kw)

    monkeypatch.setattr(optim, "run", counting_run)
    return names


@pytest.mark.parametrize("name,kw", [("AdamW", dict(lr=1e-2, weight_decay=0.1)),
                                     ("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
                                     ("Adam", dict(lr=1e-3, maximize=True))])
@pytest.mark.parametrize("capturable", [False, True])
def test_fused_adam_matches_torch(name, kw, capturable, launches):
    ps = [_pair(s, i) for i, s in enumerate(SHAPES)]
    eo = getattr(ember.optim, name)([e for e, _ in ps], capturable=capturable, **kw)
    to = getattr(torch.optim, name)([t for _, t in ps], capturable=capturable, **kw)
    rng = np.random.default_rng(2)
    for _ in range(4):
        _set_grads(ps, rng)
        eo.step()
        to.step()
    for e, t in ps:
        np.testing.assert_allclose(e.detach().cpu().numpy(), t.detach().cpu().numpy(), rtol=3e-5, atol=3e-6)
    for e, _ in ps:
        st = eo.state[e]
        assert st["step"].device.type == ("cuda" if capturable else "cpu") and st["step"].item() == 4
    # per step: 2 Adam launches for the 10 non-empty parameters (+ 2 for the 11 device step counts)
    per_step = (["add_one_kernel"] * 2 if capturable else []) + ["adam_kernel"] * 2
    assert launches == per_step * 4


def test_fused_adam_batches_float32_and_bfloat16_params_apart(launches):
    # a launch per dtype signature: 9 float32 parameters (2 launches) and 3 bfloat16 ones (1)
    ps = [_pair(s, i, "bfloat16" if i % 4 == 1 else "float32")
          for i, s in enumerate([(40, 9), (300,), (1,), (8, 8)] * 3)]
    eo = ember.optim.AdamW([e for e, _ in ps], lr=1e-2, weight_decay=0.1)
    to = torch.optim.AdamW([t for _, t in ps], lr=1e-2, weight_decay=0.1, fused=True)  # fp32 math, as ember
    rng = np.random.default_rng(3)
    for _ in range(3):
        _set_grads(ps, rng)
        eo.step()
        to.step()
    for e, t in ps:
        assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        tol = 3e-5 if e.dtype == ember.float32 else 1e-2
        np.testing.assert_allclose(e.detach().float().cpu().numpy(), t.detach().float().cpu().numpy(), rtol=tol,
                                   atol=tol)
        assert str(eo.state[e]["exp_avg"].dtype) == str(e.dtype)
    assert launches == ["adam_kernel"] * 3 * 3


@pytest.mark.parametrize("capturable", [False, True])
def test_launches_of_a_30_parameter_step(capturable, launches):
    # the reversal Transformer's 30 parameters: 4 Adam launches (+ 4 step increments when capturable)
    # and 4 + 1 + 4 for clip_grad_norm_, instead of 30 (+ 30) and 30 + 1 + 30
    ps = [ember.nn.Parameter(ember.randn(*s, device="cuda")) for s in [(64, 64), (64,)] * 15]
    opt = ember.optim.AdamW(ps, lr=1e-3, capturable=capturable)
    for p in ps:
        p.grad = ember.randn(*p.shape, device="cuda")
    ember.nn.utils.clip_grad_norm_(ps, 1.0)
    opt.step()
    assert launches == (["sumsq_partial_kernel"] * 4 + ["sqrt_sum_kernel"] + ["clip_scale_kernel"] * 4
                        + ["add_one_kernel"] * (4 if capturable else 0) + ["adam_kernel"] * 4)


def test_capturable_adamw_step_with_clipping_replays_in_a_cuda_graph():
    ps = [_pair(s, 10 + i) for i, s in enumerate(SHAPES)]
    rng = np.random.default_rng(4)
    for e, t in ps:     # a total norm well above max_norm: the first clip scales down, later ones ~not
        g = 10 * rng.standard_normal(tuple(e.shape)).astype(np.float32)
        e.grad, t.grad = ember.tensor(g).cuda(), torch.tensor(g).cuda()
    eo = ember.optim.AdamW([e for e, _ in ps], lr=1e-2, capturable=True)
    to = torch.optim.AdamW([t for _, t in ps], lr=1e-2, capturable=True)

    def ember_step():
        ember.nn.utils.clip_grad_norm_([e for e, _ in ps], 1.0)
        eo.step()

    def torch_step():
        torch.nn.utils.clip_grad_norm_([t for _, t in ps], 1.0)
        to.step()

    ember_step()    # warm-up (state creation, kernel compile) outside the capture
    torch_step()
    graph = ember.cuda.CUDAGraph()
    s = ember.cuda.Stream()
    s.wait_stream(ember.cuda.current_stream())
    with ember.cuda.graph(graph, stream=s):
        ember_step()
    for _ in range(5):
        graph.replay()
    for _ in range(5):  # capturing ran nothing: the warm-up step + 5 replays = 6 steps
        torch_step()
    ember.cuda.synchronize()
    for e, t in ps:
        np.testing.assert_allclose(e.detach().cpu().numpy(), t.detach().cpu().numpy(), rtol=3e-5, atol=3e-6)
        np.testing.assert_allclose(e.grad.cpu().numpy(), t.grad.cpu().numpy(), rtol=1e-5, atol=1e-6)
        assert eo.state[e]["step"].item() == 6


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_on_cuda_matches_torch(dtype, max_norm):
    # 11 gradients: the float32 ones take 2 partial-sum launches, 1 final and 2 scaling launches
    rng = np.random.default_rng(7)
    shapes = [(300, 70), (70,), (1,), (5, 5, 5), (0,), (), (2000,), (9, 9), (1,), (31,), (4, 1025)]
    es, ts = [], []
    for s in shapes:
        g = rng.standard_normal(s).astype(np.float32)
        e = ember.nn.Parameter(ember.zeros(*s, dtype=getattr(ember, dtype), device="cuda"))
        t = torch.nn.Parameter(torch.zeros(s, dtype=getattr(torch, dtype), device="cuda"))
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
