"""Fused multi-tensor Adam/AdamW, SGD and clip_grad_norm_ on CUDA (the CUDA kernels of ember.ops.optim)
against torch on CUDA, their launch counts (one per 8 tensors), and captured, replayed optimizer steps
(AdamW with clipping, SGD)."""
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


def _steps_match(eo, to, ps, steps, seed):
    """`steps` steps of ember's optimizer `eo` and torch's `to` on the same random grads: equal parameters."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        _set_grads(ps, rng)
        eo.step()
        to.step()
    for e, t in ps:
        np.testing.assert_allclose(e.detach().cpu().numpy(), t.detach().cpu().numpy(), rtol=3e-5, atol=3e-6)


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
    _steps_match(eo, to, ps, 4, seed=2)
    for e, _ in ps:
        st = eo.state[e]
        assert st["step"].device.type == ("cuda" if capturable else "cpu") and st["step"].item() == 4
    # per step: 2 Adam launches for the 10 non-empty parameters (+ 2 for the 11 device step counts)
    per_step = (["add_scalar_kernel"] * 2 if capturable else []) + ["adam_kernel"] * 2
    assert launches == per_step * 4


def test_adamw_steps_a_transposed_parameter_fused_and_matches_torch(launches):
    """A parameter made by an op on a transposed tensor (`Parameter(w.t() * 2)`) keeps the transposed layout, as
    in torch; its grad and moments take that layout, so it steps in the one fused launch with the others."""
    ps = [_pair((5, 7), 0), _pair((9,), 1)]
    a = np.random.default_rng(3).standard_normal((7, 5)).astype(np.float32)
    strided = (ember.nn.Parameter(ember.tensor(a).cuda().t() * 2), torch.nn.Parameter(torch.tensor(a).cuda().t() * 2))
    assert strided[0].stride() == strided[1].stride() == (1, 5)
    ps.append(strided)
    eo = ember.optim.AdamW([e for e, _ in ps], lr=1e-2, weight_decay=0.1)
    to = torch.optim.AdamW([t for _, t in ps], lr=1e-2, weight_decay=0.1, foreach=True)
    _steps_match(eo, to, ps, 3, seed=4)
    assert strided[0].stride() == (1, 5)
    assert launches == ["adam_kernel"] * 3       # one fused launch a step, for the three parameters


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
                        + ["add_scalar_kernel"] * (4 if capturable else 0) + ["adam_kernel"] * 4)


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


@pytest.mark.parametrize("found", [0.0, 1.0])
def test_fused_adamw_op_with_grad_scale_and_found_inf_matches_torch(found):
    # the op itself, with a tensor lr and device step counts (read in the kernel), grads unscaled in place
    rng = np.random.default_rng(9)
    shapes = [(33, 17), (), (0, 3), (1025,)]
    arrays = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(4)]
    arrays[3] = [np.abs(a) for a in arrays[3]]
    e = [[ember.tensor(a).cuda() for a in arrays[k]] for k in range(4)]
    t = [[torch.tensor(a).cuda() for a in arrays[k]] for k in range(4)]
    e_steps = [ember.tensor(3.0).cuda() for _ in shapes]
    t_steps = [torch.tensor(3.0).cuda() for _ in shapes]
    kw = dict(beta1=0.9, beta2=0.99, weight_decay=0.1, eps=1e-8, amsgrad=False, maximize=True)
    ember.ops._fused_adamw_(*e, [], e_steps, lr=ember.tensor(1e-2).cuda(), grad_scale=ember.tensor(4.0).cuda(),
                            found_inf=ember.tensor(found).cuda(), **kw)
    torch._fused_adamw_(*t, [], t_steps, lr=torch.tensor(1e-2).cuda(), grad_scale=torch.tensor(4.0).cuda(),
                        found_inf=torch.tensor(found).cuda(), **kw)
    for el, tl in zip(e, t):
        for x, y in zip(el, tl):
            np.testing.assert_allclose(x.cpu().numpy(), y.cpu().numpy(), rtol=3e-5, atol=3e-6)
    if found == 1.0:
        for x, a in zip(e[0], arrays[0]):
            np.testing.assert_array_equal(x.cpu().numpy(), a)


def test_capturable_adam_with_a_cpu_lr_tensor_and_host_steps_op():
    # a CPU lr tensor (read by the host) and CPU step counts (bias corrections on the host) with CUDA params
    ps = [_pair(s, 20 + i) for i, s in enumerate([(40, 3), (7,)])]
    eo = ember.optim.Adam([e for e, _ in ps], lr=ember.tensor(5e-3), capturable=True, amsgrad=True)
    to = torch.optim.Adam([t for _, t in ps], lr=5e-3, capturable=True, amsgrad=True)
    rng = np.random.default_rng(5)
    for _ in range(3):
        _set_grads(ps, rng)
        eo.step()
        to.step()
    for e, t in ps:
        np.testing.assert_allclose(e.detach().cpu().numpy(), t.detach().cpu().numpy(), rtol=3e-5, atol=3e-6)
    e = [ember.zeros(3, device="cuda")]
    steps = [ember.tensor(2.0)]       # on the CPU: the bias corrections are computed on the host
    ember.ops._fused_adam_(e, [ember.ones(3, device="cuda")], [ember.zeros(3, device="cuda")],
                           [ember.zeros(3, device="cuda")], [], steps, lr=ember.tensor(0.1, device="cuda"),
                           beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
    m, v = 0.1, 0.001
    want = -0.1 / (1 - 0.9 ** 2) * m / (np.sqrt(v) / np.sqrt(1 - 0.999 ** 2) + 1e-8)
    np.testing.assert_allclose(e[0].cpu().numpy(), [want] * 3, rtol=1e-5)


def test_foreach_add_op_on_cuda_and_cpu_scalars(launches):
    ts = [ember.tensor(1.0).cuda() for _ in range(9)] + [ember.tensor(5.0), ember.zeros(2, 2, device="cuda"),
                                                          ember.tensor(3, dtype=ember.int64).cuda()]
    ember.ops._foreach_add_(ts, 2)
    assert [t.item() for t in ts[:10]] == [3.0] * 9 + [7.0]
    assert ts[10].cpu().tolist() == [[2.0, 2.0]] * 2 and ts[11].item() == 5
    assert launches == ["add_scalar_kernel"] * 3        # float32: 2, int64: 1 (the rest through add_)


@pytest.mark.parametrize("foreach", [False, True])
def test_clip_grad_norm_foreach_flag_on_cuda(foreach, launches):
    rng = np.random.default_rng(11)
    es, ts = [], []
    for s in [(30, 7), (7,), ()]:
        g = rng.standard_normal(s).astype(np.float32)
        e, t = ember.nn.Parameter(ember.zeros(*s, device="cuda")), torch.nn.Parameter(torch.zeros(s, device="cuda"))
        e.grad, t.grad = ember.tensor(g).cuda(), torch.tensor(g).cuda()
        es.append(e)
        ts.append(t)
    en = ember.nn.utils.clip_grad_norm_(es, 0.5, foreach=foreach)
    tn = torch.nn.utils.clip_grad_norm_(ts, 0.5, foreach=foreach)
    np.testing.assert_allclose(en.item(), tn.item(), rtol=1e-5)
    for e, t in zip(es, ts):
        np.testing.assert_allclose(e.grad.cpu().numpy(), t.grad.cpu().numpy(), rtol=1e-5, atol=1e-6)
    assert launches == ([] if not foreach else ["sumsq_partial_kernel", "sqrt_sum_kernel", "clip_scale_kernel"])


SGD_KW = [dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
          dict(lr=0.02, momentum=0.8, dampening=0.3, maximize=True), dict(lr=0.1, weight_decay=0.01)]


@pytest.mark.parametrize("kw", SGD_KW)
@pytest.mark.parametrize("dtype,skip", [("float32", False), ("float32", True), ("bfloat16", False)])
def test_sgd_on_cuda_matches_torch(kw, dtype, skip, launches):
    # 11 parameters (10 non-empty: 2 launches a step), the default (foreach unset) and foreach=True; with
    # `skip`, one parameter has no grad at the first step, so its buffer starts a step later, in a launch
    # of its own. bfloat16 against torch's fused SGD, which computes in float32 and rounds once as ember
    # (its foreach step rounds after every op)
    ps = [_pair(s, 30 + i, dtype) for i, s in enumerate(SHAPES)]
    eo = ember.optim.SGD([e for e, _ in ps], **kw, **({"foreach": True} if skip else {}))
    to = torch.optim.SGD([t for _, t in ps], **kw, **({"fused": True} if dtype == "bfloat16" else {}))
    rng = np.random.default_rng(6)
    for k in range(4):
        _set_grads(ps, rng)
        if skip and k == 0:
            ps[3][0].grad = ps[3][1].grad = None
        eo.step()
        to.step()
    tol = 2e-5 if dtype == "float32" else 1e-2
    for e, t in ps:
        assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        np.testing.assert_allclose(e.detach().float().cpu().numpy(), t.detach().float().cpu().numpy(), rtol=tol,
                                   atol=tol)
        if kw.get("momentum"):
            eb, tb = eo.state[e]["momentum_buffer"], to.state[t]["momentum_buffer"]
            assert str(eb.dtype) == str(e.dtype)
            np.testing.assert_allclose(eb.float().cpu().numpy(), tb.float().cpu().numpy(), rtol=tol, atol=tol)
        else:
            assert not eo.state[e]
    per_step = [2, 3, 2, 2] if skip and kw.get("momentum") else [2] * 4
    assert launches == ["sgd_kernel"] * sum(per_step)


def test_sgd_loop_on_cuda_with_foreach_false(launches):
    # foreach=False keeps the single-tensor loop of ops (no multi-tensor launch), with torch's results
    ps = [_pair(s, 50 + i) for i, s in enumerate(SHAPES[:4])]
    kw = dict(lr=0.05, momentum=0.9, weight_decay=0.01)
    eo = ember.optim.SGD([e for e, _ in ps], foreach=False, **kw)
    to = torch.optim.SGD([t for _, t in ps], foreach=False, **kw)
    rng = np.random.default_rng(7)
    for _ in range(3):
        _set_grads(ps, rng)
        eo.step()
        to.step()
    for e, t in ps:
        np.testing.assert_allclose(e.detach().cpu().numpy(), t.detach().cpu().numpy(), rtol=2e-5, atol=2e-6)
    assert launches == []


def test_sgd_step_with_a_device_lr_replays_in_a_cuda_graph():
    # one warm-up step (it creates the buffers: a first step), then a captured step replayed 5 times; lr is
    # a tensor on the device the kernel reads, changed in place between replays as a scheduler would
    ps = [_pair(s, 40 + i) for i, s in enumerate(SHAPES)]
    rng = np.random.default_rng(8)
    for e, t in ps:
        g = rng.standard_normal(tuple(e.shape)).astype(np.float32)
        e.grad, t.grad = ember.tensor(g).cuda(), torch.tensor(g).cuda()
    kw = dict(momentum=0.9, nesterov=True, weight_decay=0.01)
    lr = ember.tensor(0.05, device="cuda")
    eo = ember.optim.SGD([e for e, _ in ps], lr=lr, **kw)
    to = torch.optim.SGD([t for _, t in ps], lr=0.05, **kw)
    eo.step()
    to.step()
    graph = ember.cuda.CUDAGraph()
    s = ember.cuda.Stream()
    s.wait_stream(ember.cuda.current_stream())
    with ember.cuda.graph(graph, stream=s):
        eo.step()
    for k in range(5):  # capturing ran nothing: the warm-up step + 5 replays = 6 steps
        if k == 3:
            lr.fill_(0.01)
            to.param_groups[0]["lr"] = 0.01
        graph.replay()
        to.step()
    ember.cuda.synchronize()
    for e, t in ps:
        np.testing.assert_allclose(e.detach().cpu().numpy(), t.detach().cpu().numpy(), rtol=3e-5, atol=3e-6)
        np.testing.assert_allclose(eo.state[e]["momentum_buffer"].cpu().numpy(),
                                   to.state[t]["momentum_buffer"].cpu().numpy(), rtol=3e-5, atol=3e-6)


@pytest.mark.parametrize("found", [0.0, 1.0])
def test_fused_sgd_op_with_grad_scale_and_found_inf_matches_torch(found):
    # the op itself with a device lr read in the kernel, grads unscaled in place, float32 and float64
    rng = np.random.default_rng(10)
    shapes = [(33, 17), (), (0, 3), (1025,)]
    for dtype in ("float32", "float64"):
        arrays = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(3)]
        e = [[ember.tensor(a).cuda() for a in arrays[k]] for k in range(3)]
        t = [[torch.tensor(a).cuda() for a in arrays[k]] for k in range(3)]
        kw = dict(weight_decay=0.1, momentum=0.9, dampening=0.2, nesterov=False, maximize=True, is_first_step=False)
        ember.ops._fused_sgd_(*e, lr=ember.tensor(1e-2).cuda(), grad_scale=ember.tensor(4.0).cuda(),
                              found_inf=ember.tensor(found).cuda(), **kw)
        torch._fused_sgd_(*t, lr=torch.tensor(1e-2).cuda(), grad_scale=torch.tensor(4.0).cuda(),
                          found_inf=torch.tensor(found).cuda(), **kw)
        tol = 3e-6 if dtype == "float32" else 1e-12
        for el, tl in zip(e, t):
            for x, y in zip(el, tl):
                np.testing.assert_allclose(x.cpu().numpy(), y.cpu().numpy(), rtol=tol, atol=tol)
        if found == 1.0:
            for x, a in zip(e[0], arrays[0]):
                np.testing.assert_array_equal(x.cpu().numpy(), a)
