"""The CUDA kernels of the multi-tensor optimizer ops (ember.ops.optim: fused Adam/AdamW, fused SGD, step
counts, total norm, clipping) through Triton's interpreter on CPU tensors: against ember's single-tensor
Adam and SGD loops on the CPU (which match torch.optim's; see test_optim.py), the CPU kernels and numpy,
bitwise against one parameter per launch, and the number of launches."""
import math
import os

import numpy as np
import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernel is tested by tests/test_cuda_optim.py", allow_module_level=True)
pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from ember.backends.cuda import optim  # noqa: E402
from ember.backends.cuda.optim import (adam_multi_step_, clip_scale_, foreach_add_, sgd_multi_step_,  # noqa: E402
                                       total_norm2)
from ember.dispatch import OPS  # noqa: E402

OPTIM_OPS = ("_fused_adam_", "_fused_adamw_", "_foreach_add_", "_total_norm", "_clip_grads_with_norm_")

# 11 parameters: two launches, the second with 2 of its 8 slots used (the empty one takes no slot)
SHAPES = [(37, 29), (0,), (1,), (5,), (1030,), (3, 4), (), (7, 7), (1,), (64,), (2, 3, 4)]
CONFIGS = [dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True),
           dict(lr=1e-2, weight_decay=0.1),
           dict(lr=3e-3, betas=(0.8, 0.99), amsgrad=True, maximize=True),
           dict(lr=1e-3)]


@pytest.fixture
def launches(monkeypatch):
    """The names of the kernels launched through the backend's `run`, in order."""
    names = []
    real_run = optim.run

    def counting_run(fn, *args, **kw):
        names.append(fn.__name__)
        return real_run(fn, *args, **kw)

    monkeypatch.setattr(optim, "run", counting_run)
    return names


def _arrays(seed, shapes=SHAPES, steps=3, dtype=np.float32):
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]
    return p0, grads


@pytest.fixture
def cuda_kernels(monkeypatch):
    """ops(*names): CPU tensors reach the CUDA kernels of these ops (as the dispatcher sends CUDA ones)."""
    def use(*names):
        for name in names:
            monkeypatch.setitem(OPS[name].kernels, "cpu", OPS[name].kernels["cuda"])
    return use


def _run_loop(p0, grads, **kw):
    """ember.optim.Adam's single-tensor loop on the CPU: the parameters and their states."""
    ps = [ember.nn.Parameter(ember.tensor(a.copy())) for a in p0]
    opt = ember.optim.Adam(ps, fused=False, **kw)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = ember.tensor(g)
        opt.step()
    return ps, [opt.state[p] for p in ps]


def _run_multi(p0, grads, kw, device_step, lr_tensor=False, one_per_launch=False):
    """adam_multi_step_ from fresh state, Adam's keyword arguments `kw`: (params, exp_avgs, exp_avg_sqs,
    max_exp_avg_sqs) after len(grads) steps, with all parameters in one call or one call each."""
    ps = [ember.tensor(a.copy()) for a in p0]
    ms, vs = [ember.zeros_like(p) for p in ps], [ember.zeros_like(p) for p in ps]
    amsgrad = kw.get("amsgrad", False)
    vmaxs = [ember.zeros_like(p) for p in ps] if amsgrad else None
    b1, b2 = kw.get("betas", (0.9, 0.999))
    lr = ember.tensor(kw["lr"]) if lr_tensor else kw["lr"]
    calls = [[i] for i in range(len(ps))] if one_per_launch else [list(range(len(ps)))]
    for k, gs in enumerate(grads, 1):
        steps = [ember.tensor(float(k)) for _ in ps] if device_step else [k] * len(ps)
        gs = [ember.tensor(g) for g in gs]
        for idx in calls:
            adam_multi_step_([ps[i] for i in idx], [gs[i] for i in idx], [ms[i] for i in idx], [vs[i] for i in idx],
                             [vmaxs[i] for i in idx] if amsgrad else None, [steps[i] for i in idx], lr, b1, b2,
                             1e-8, kw.get("weight_decay", 0.0), kw.get("decoupled_weight_decay", False),
                             kw.get("maximize", False))
    return ps, ms, vs, vmaxs


@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("device_step", [False, True])
def test_multi_adam_matches_the_loop(kw, device_step, launches):
    p0, grads = _arrays(0)
    want, st_want = _run_loop(p0, grads, **kw)
    ps, ms, vs, vmaxs = _run_multi(p0, grads, kw, device_step)
    assert launches == ["adam_kernel"] * 6          # 10 non-empty parameters: 2 launches per step
    # in-kernel (device-step) bias corrections are float32, as PyTorch's capturable Adam
    tol = 2e-5 if device_step else 2e-6
    for i, (p, w, st) in enumerate(zip(ps, want, st_want)):
        np.testing.assert_allclose(p.numpy(), w.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(ms[i].numpy(), st["exp_avg"].numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(vs[i].numpy(), st["exp_avg_sq"].numpy(), rtol=1e-6, atol=1e-9)
        if vmaxs is not None:
            np.testing.assert_allclose(vmaxs[i].numpy(), st["max_exp_avg_sq"].numpy(), rtol=1e-6, atol=1e-9)
        assert p._version == 3 == ms[i]._version == vs[i]._version     # every tensor of the lists, as torch


@pytest.mark.parametrize("kw,device_step,lr_tensor",
                         [(dict(lr=3e-3, weight_decay=0.1, amsgrad=True, maximize=True), False, False),
                          (dict(lr=5e-3, weight_decay=0.1, decoupled_weight_decay=True), True, True)])
def test_multi_adam_is_bitwise_one_parameter_per_launch(kw, device_step, lr_tensor):
    p0, grads = _arrays(1, steps=2)
    multi = _run_multi(p0, grads, kw, device_step, lr_tensor)
    single = _run_multi(p0, grads, kw, device_step, lr_tensor, one_per_launch=True)
    for a, b in zip(multi, single):
        for x, y in zip(a or [], b or []):
            assert x.numpy().tobytes() == y.numpy().tobytes()


def test_multi_adam_reads_a_tensor_lr():
    p0, grads = _arrays(2, steps=2)
    kw = dict(lr=5e-3, weight_decay=0.1, decoupled_weight_decay=True)
    want, _ = _run_loop(p0, grads, **kw)
    ps = _run_multi(p0, grads, kw, device_step=True, lr_tensor=True)[0]
    for p, w in zip(ps, want):
        np.testing.assert_allclose(p.numpy(), w.detach().numpy(), rtol=2e-5, atol=2e-5)


def test_multi_adam_batches_per_dtype_signature(launches):
    # float64 and float32 parameters interleaved: a launch per dtype (3 float64, 9 float32: 1 + 2)
    shapes = [(4,), (3, 2), (1,)] * 4
    p0, grads = _arrays(3, shapes=shapes, steps=1)
    p0 = [a.astype(np.float64) if i % 4 == 0 else a for i, a in enumerate(p0)]
    grads = [[g.astype(a.dtype) for g, a in zip(gs, p0)] for gs in grads]
    kw = dict(lr=1e-2, weight_decay=0.1)
    ps = _run_multi(p0, grads, kw, device_step=False)[0]
    assert launches == ["adam_kernel"] * 3
    single = _run_multi(p0, grads, kw, device_step=False, one_per_launch=True)[0]
    want, _ = _run_loop(p0, grads, **kw)
    for p, s, w in zip(ps, single, want):
        assert p.dtype == s.dtype == w.dtype and p.numpy().tobytes() == s.numpy().tobytes()
        np.testing.assert_allclose(p.numpy(), w.detach().numpy(), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("capturable", [False, True])
def test_adam_step_through_the_cuda_kernels(capturable, launches, cuda_kernels):
    # Adam.step with the CUDA kernels (as on CUDA parameters): state creation, the step counts (on the
    # parameters' device when capturable, else on the CPU, incremented there) and the launches per step
    cuda_kernels("_fused_adam_", "_fused_adamw_", *(("_foreach_add_",) if capturable else ()))
    p0, grads = _arrays(4, steps=2)
    kw = dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True, amsgrad=True)
    want, st_want = _run_loop(p0, grads, **kw)
    ps = [ember.nn.Parameter(ember.tensor(a.copy())) for a in p0]
    opt = ember.optim.Adam(ps, capturable=capturable, **kw)
    for gs in grads:
        for p, g in zip(ps, gs):     # the 2-d gradients non-contiguous (transposed copies)
            p.grad = ember.tensor(np.ascontiguousarray(g.T)).t() if g.ndim == 2 else ember.tensor(g)
            assert p.grad.is_contiguous() == (g.ndim != 2)
        opt.step()
    per_step = (["add_scalar_kernel"] * 2 if capturable else []) + ["adam_kernel"] * 2
    assert launches == per_step * 2
    for p, w, st_w in zip(ps, want, st_want):
        st = opt.state[p]
        assert st["step"].item() == 2.0 and st["step"].dtype is ember.float32
        np.testing.assert_allclose(p.detach().numpy(), w.detach().numpy(), rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(st["max_exp_avg_sq"].numpy(), st_w["max_exp_avg_sq"].numpy(), rtol=1e-6,
                                   atol=1e-9)


@pytest.mark.parametrize("name", ["_fused_adam_", "_fused_adamw_"])
@pytest.mark.parametrize("found", [None, 0.0, 1.0])
def test_fused_adam_kernel_against_the_cpu_kernel(name, found):
    # tensor lr and steps read in the kernel, grad_scale (grads written back unscaled), found_inf
    # (1.0: nothing written), amsgrad and maximize; the CPU kernel computes the same in float64 corrections
    p0, grads = _arrays(6, shapes=[(37, 5), (3,), (), (0,), (9,)], steps=1)
    runs = []
    for backend in ("cpu", "cuda"):
        ps = [ember.tensor(a.copy()) for a in p0]
        gs = [ember.tensor(g * 8) for g in grads[0]]
        ms, vs, vmaxs = ([ember.full(p.shape, 0.1) for p in ps] for _ in range(3))
        steps = [ember.tensor(3.0) for _ in ps]
        extra = {} if found is None else dict(grad_scale=ember.tensor(8.0), found_inf=ember.tensor(found))
        OPS[name].kernels[backend](ps, gs, ms, vs, vmaxs, steps, ember.tensor(5e-3), 0.9, 0.99, 0.1, 1e-8, True, True,
                                   **extra)
        runs.append((ps, gs, ms, vs, vmaxs))
    for got, want in zip(*[[t for lst in r for t in lst] for r in runs]):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-5, atol=2e-6)
    if found == 1.0:
        for p, a in zip(runs[1][0], p0):
            np.testing.assert_array_equal(p.numpy(), a)
    elif found == 0.0:
        for g, a in zip(runs[1][1], grads[0]):
            np.testing.assert_allclose(g.numpy(), a, rtol=1e-6)     # unscaled


def test_foreach_add_kernel(launches):
    # 0-d tensors on the device: a launch per 8 of one dtype; others through the add_ op
    ts = [ember.tensor(float(i)) for i in range(9)] + [ember.tensor(2.0, dtype=ember.float64),
                                                       ember.tensor(3, dtype=ember.int32), ember.zeros(2)]
    foreach_add_(ts, 2)
    assert [t.item() for t in ts[:9]] == [i + 2.0 for i in range(9)]
    assert ts[9].item() == 4.0 and ts[10].item() == 5 and ts[10].dtype is ember.int32 and ts[11].tolist() == [2, 2]
    assert launches == ["add_scalar_kernel"] * 4      # float32: 2, float64: 1, int32: 1
    assert all(t._version == 1 for t in ts)


@pytest.mark.parametrize("n", [1, 8, 9, 30])
def test_one_launch_per_8_tensors(n, launches, monkeypatch):
    monkeypatch.setattr(optim, "SUMSQ_PROGRAMS", 2)   # the interpreter runs programs one by one,
    monkeypatch.setattr(optim, "BLOCK", 32)           # and its tl.reduce calls _add per element
    per = math.ceil(n / 8)
    ps = [ember.full((2,), float(i)) for i in range(n)]
    gs = [ember.full((2,), 1.0) for _ in range(n)]
    adam_multi_step_(ps, gs, [ember.zeros(2) for _ in ps], [ember.zeros(2) for _ in ps], None, [1] * n, 0.1,
                     0.9, 0.999, 1e-8, 0.0, False, False)
    np.testing.assert_allclose([p.numpy() for p in ps], [[i - 0.1, i - 0.1] for i in range(n)], rtol=1e-6)
    steps = [ember.tensor(float(i)) for i in range(n)]
    foreach_add_(steps, 1)
    assert [s.item() for s in steps] == [i + 1.0 for i in range(n)]
    total = total_norm2(gs)
    np.testing.assert_allclose(total.item(), math.sqrt(2 * n), rtol=1e-6)
    clip_scale_(gs, total, 1.0)
    np.testing.assert_allclose([g.numpy() for g in gs], np.full((n, 2), 1 / (math.sqrt(2 * n) + 1e-6)), rtol=1e-6)
    assert launches == (["adam_kernel"] * per + ["add_scalar_kernel"] * per + ["sumsq_partial_kernel"] * per
                        + ["sqrt_sum_kernel"] + ["clip_scale_kernel"] * per)


def test_fused_adam_kernel_refuses_state_laid_out_otherwise_than_its_parameter():
    # the kernel updates each parameter and its moments in place as one dense block: a parameter with gaps, or a
    # moment laid out otherwise than its parameter, is refused (grads are copied into their parameter's layout)
    p, g, z = ember.zeros(4, 3), ember.zeros(4, 3), ember.zeros(4, 3)
    kernel = OPS["_fused_adam_"].kernels["cuda"]
    for k in (0, 2):
        args = [[p], [g], [z], [ember.zeros(4, 3)], [], [ember.tensor(1.0)]]
        args[k] = [ember.zeros(3, 4).t()]
        with pytest.raises(RuntimeError, match="fused Adam on CUDA: the exp_avg(_sq)? must be laid out as its "
                                               "parameter"):
            kernel(*args, 1e-3, 0.9, 0.999, 0.0, 1e-8, False, False)
    with pytest.raises(RuntimeError, match="fused Adam on CUDA: the parameter must be dense"):
        kernel([ember.zeros(4, 6)[:, ::2]], [g], [z], [z.clone()], [], [ember.tensor(1.0)], 1e-3, 0.9, 0.999, 0.0,
               1e-8, False, False)
    with pytest.raises(ValueError, match="a tensor lr needs the step count as a tensor"):
        adam_multi_step_([p], [g], [z], [z], None, [3], ember.tensor(1e-3), 0.9, 0.999, 1e-8, 0.1, True, False)


def test_fused_adam_steps_a_transposed_parameter_as_one_block():
    """A transposed parameter with moments in its layout (zeros_like keeps it) steps fused; a row-major grad is
    copied into the parameter's layout. The result equals the same step on row-major copies."""
    rng = np.random.default_rng(5)
    a, ga = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    kernel = OPS["_fused_adam_"].kernels["cuda"]
    p = ember.tensor(a).t().clone()                     # (4, 3), strides (1, 4)
    assert p.stride() == (1, 4)
    m, v = ember.zeros_like(p), ember.zeros_like(p)
    kernel([p], [ember.tensor(ga)], [m], [v], [], [ember.tensor(1.0)], 1e-2, 0.9, 0.999, 0.1, 1e-8, False, False)
    q = ember.tensor(np.ascontiguousarray(a.T))
    kernel([q], [ember.tensor(ga)], [ember.zeros_like(q)], [ember.zeros_like(q)], [], [ember.tensor(1.0)], 1e-2, 0.9,
           0.999, 0.1, 1e-8, False, False)
    assert p.stride() == m.stride() == (1, 4)
    np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-6)


def test_multi_total_norm_and_clip_match_numpy(monkeypatch, launches):
    monkeypatch.setattr(optim, "SUMSQ_PROGRAMS", 4)   # the interpreter runs programs one by one,
    monkeypatch.setattr(optim, "BLOCK", 128)          # and its tl.reduce calls _add per element
    parts = []
    real_new = optim.new_tensor
    monkeypatch.setattr(optim, "new_tensor", lambda *a: parts.append(real_new(*a)) or parts[-1])
    rng = np.random.default_rng(5)
    ts = [ember.tensor((rng.standard_normal(s) * (i + 1)).astype(np.float32)) for i, s in enumerate(SHAPES)]
    sq = [float((t.numpy().astype(np.float64) ** 2).sum()) for t in ts]
    total = total_norm2(ts)
    assert total.shape == () and total.dtype is ember.float32
    np.testing.assert_allclose(total.item(), math.sqrt(sum(sq)), rtol=1e-6)
    # the partial sums' layout: tensor i's 4 partials at [4 i, 4 i + 4), an empty tensor's all 0
    part = parts[0].numpy().reshape(len(ts), 4)
    np.testing.assert_allclose(part.sum(1), sq, rtol=1e-6)
    assert (part[1] == 0).all()
    assert launches == ["sumsq_partial_kernel"] * 2 + ["sqrt_sum_kernel"]
    for max_norm in (math.sqrt(sum(sq)) / 2, math.sqrt(sum(sq)) * 2):
        gs = [ember.tensor(t.numpy().copy()) for t in ts]
        clip_scale_(gs, total, max_norm)
        coef = min(max_norm / (total.item() + 1e-6), 1.0)
        for g, t in zip(gs, ts):
            np.testing.assert_allclose(g.numpy(), t.numpy() * coef, rtol=1e-6)
            assert g._version == (0 if g.numel() == 0 else 1)
    assert launches[3:] == ["clip_scale_kernel"] * 4    # 10 non-empty gradients: 2 launches per call


def test_norm_and_clip_kernels_choose_the_fused_launches(monkeypatch, launches, cuda_kernels):
    # clip_grad_norm_ through the ops' CUDA kernels: dense float32 gradients (a transposed one too) take the fused
    # launches, anything else (float64, a gradient with gaps, another norm) the single-tensor ops, same result
    monkeypatch.setattr(optim, "SUMSQ_PROGRAMS", 2)
    monkeypatch.setattr(optim, "BLOCK", 32)
    cuda_kernels("_total_norm", "_clip_grads_with_norm_")
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(6, 5), (7,), (), (9,)]]

    def clip(dtype=ember.float32, layout=None, norm_type=2.0):
        ps = [ember.nn.Parameter(ember.zeros(a.shape)) for a in arrays]
        for p, a in zip(ps, arrays):
            p.grad = ember.tensor(a).to(dtype)
        if layout == "transposed":      # dense: walked flat
            ps[0].grad = ember.tensor(np.ascontiguousarray(arrays[0].T)).t()
        elif layout == "sliced":        # every other column of a wider buffer: gaps
            wide = np.zeros((6, 10), np.float32)
            wide[:, ::2] = arrays[0]
            ps[0].grad = ember.tensor(wide)[:, ::2]
        total = ember.nn.utils.clip_grad_norm_(ps, 1.0, norm_type=norm_type)
        return total, [p.grad for p in ps]

    total, gs = clip()
    assert launches == ["sumsq_partial_kernel", "sqrt_sum_kernel", "clip_scale_kernel"]
    want = math.sqrt(sum(float((a.astype(np.float64) ** 2).sum()) for a in arrays))
    np.testing.assert_allclose(total.item(), want, rtol=1e-6)
    for g, a in zip(gs, arrays):
        np.testing.assert_allclose(g.numpy(), a / (want + 1e-6), rtol=1e-6)
    l1 = float(sum(np.abs(a.astype(np.float64)).sum() for a in arrays))
    for kw, fused, norm in ((dict(dtype=ember.float64), [], want), (dict(layout="sliced"), [], want),
                            (dict(layout="transposed"), ["sumsq_partial_kernel", "sqrt_sum_kernel",
                                                         "clip_scale_kernel"], want),
                            (dict(norm_type=1.0), ["clip_scale_kernel"], l1)):   # the L1 norm: fused scaling
        launches.clear()
        total, gs = clip(**kw)
        assert launches == fused, kw
        np.testing.assert_allclose(total.item(), norm, rtol=1e-6)
        for g, a in zip(gs, arrays):
            np.testing.assert_allclose(g.double().numpy(), a / (norm + 1e-6), rtol=1e-6)


SGD_KW = [dict(weight_decay=0.0, momentum=0.0, dampening=0.0, nesterov=False, maximize=False),
          dict(weight_decay=0.1, momentum=0.9, dampening=0.0, nesterov=True, maximize=True),
          dict(weight_decay=0.05, momentum=0.8, dampening=0.3, nesterov=False, maximize=False)]


def _bf16_ulps(got, want):
    """|got - want| in bfloat16 ulps of want (the interpreter's float32 -> bfloat16 cast truncates, where
    ember's CPU kernels round to nearest: they differ by at most 1)."""
    w = want.float().numpy()
    ulp = np.exp2(np.floor(np.log2(np.maximum(np.abs(w), 2.0 ** -126))) - 7)
    return np.abs(got.float().numpy() - w) / ulp


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("kw", SGD_KW)
@pytest.mark.parametrize("first,lr_tensor,found", [(False, False, None), (True, True, 0.0), (False, True, 1.0)])
def test_sgd_kernel_against_the_cpu_kernel(dtype, kw, first, lr_tensor, found, launches):
    # 11 parameters (an empty one): two launches, grads unscaled and written back with grad_scale, nothing
    # written with found_inf 1; float32 and float64 equal the CPU kernel (the loop of ops) bit for bit
    p0, grads = _arrays(7, steps=2)
    runs = []
    for backend in ("cpu", "cuda"):
        lists = [[ember.tensor(a.copy()).to(getattr(ember, dtype)) for a in arrays] for arrays in (p0, *grads)]
        if kw["momentum"] == 0:
            lists[2] = []
        extra = {} if found is None else dict(grad_scale=ember.tensor(4.0), found_inf=ember.tensor(found))
        lr = ember.tensor(0.05) if lr_tensor else 0.05
        OPS["_fused_sgd_"].kernels[backend](*lists, kw["weight_decay"], kw["momentum"], lr, kw["dampening"],
                                            kw["nesterov"], kw["maximize"], first, **extra)
        runs.append(lists)
    assert launches == ["sgd_kernel"] * 2
    for got_list, want_list, before in zip(runs[1], runs[0], (p0, *grads)):
        for got, want, b in zip(got_list, want_list, before):
            assert got.dtype is want.dtype
            if dtype == "bfloat16":
                assert _bf16_ulps(got, want).max(initial=0) <= 1
            else:
                assert got.numpy().tobytes() == want.numpy().tobytes()
            if found == 1.0:    # nothing written (the CUDA kernel bumps the versions all the same: no host sync)
                np.testing.assert_array_equal(got.double().numpy(), ember.tensor(b).to(got.dtype).double().numpy())
            else:
                assert got._version == want._version


def test_sgd_kernel_is_bitwise_one_parameter_per_launch_and_batches_per_dtype(launches):
    # float64 and float32 parameters interleaved: a launch per dtype (3 float64, 9 float32: 1 + 2)
    shapes = [(4,), (3, 2), (1,)] * 4
    p0, grads = _arrays(8, shapes=shapes, steps=2)
    p0 = [a.astype(np.float64) if i % 4 == 0 else a for i, a in enumerate(p0)]
    grads = [[g.astype(a.dtype) for g, a in zip(gs, p0)] for gs in grads]
    runs = []
    for calls in ([list(range(12))], [[i] for i in range(12)]):
        ps, gs, bufs = ([ember.tensor(a.copy()) for a in arrays] for arrays in (p0, *grads))
        for idx in calls:
            sgd_multi_step_([ps[i] for i in idx], [gs[i] for i in idx], [bufs[i] for i in idx], 0.05, 0.1, 0.9, 0.2,
                            False, False, False)
        runs.append(ps + bufs)
    assert launches == ["sgd_kernel"] * 3 + ["sgd_kernel"] * 12
    for a, b in zip(*runs):
        assert a.dtype == b.dtype and a.numpy().tobytes() == b.numpy().tobytes()


@pytest.mark.parametrize("kwargs", [dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
                                    dict(lr=0.05, momentum=0.8, dampening=0.3, maximize=True), dict(lr=0.1)])
def test_sgd_step_through_the_cuda_kernel(kwargs, launches, cuda_kernels):
    # SGD.step with the CUDA kernel (fused=True: CPU parameters take the op too), against the loop of ops
    # bit for bit: buffers created at the first step, a parameter without a grad at step 0 (its buffer
    # starts at step 1, in a launch of its own), non-contiguous grads (copied), the launches per step
    cuda_kernels("_fused_sgd_")
    p0, grads = _arrays(9, steps=3)
    runs = []
    for fused in (False, True):
        ps = [ember.nn.Parameter(ember.tensor(a.copy())) for a in p0]
        opt = ember.optim.SGD(ps, fused=fused, **kwargs)
        for k, gs in enumerate(grads):
            for i, (p, g) in enumerate(zip(ps, gs)):
                p.grad = None if (k == 0 and i == 3) else (
                    ember.tensor(np.ascontiguousarray(g.T)).t() if g.ndim == 2 else ember.tensor(g))
            opt.step()
        runs.append([p.detach().numpy().tobytes() for p in ps] +
                     [st["momentum_buffer"].numpy().tobytes() for st in opt.state.values()])
        assert len(opt.state) == (len(ps) if kwargs.get("momentum") else 0)
    assert runs[0] == runs[1]
    # 10 non-empty parameters: step 0 has 9 with grads (2 launches); with momentum, step 1 runs the one
    # without a buffer apart (1 + 2 launches)
    per_step = [2, 3, 2] if kwargs.get("momentum") else [2, 2, 2]
    assert launches == ["sgd_kernel"] * sum(per_step)


def test_fused_sgd_kernel_refuses_strided_state_and_reads_a_device_lr(launches):
    p, g, buf = ember.zeros(4, 3), ember.ones(4, 3), ember.zeros(4, 3)
    kernel = OPS["_fused_sgd_"].kernels["cuda"]
    for k in (0, 2):
        args = [[p], [g], [buf]]
        args[k] = [ember.zeros(3, 4).t()]
        with pytest.raises(RuntimeError, match="fused SGD on CUDA: the momentum buffer must be laid out as its "
                                               "parameter"):
            kernel(*args, 0.0, 0.9, 0.1, 0.0, False, False, True)
    # a strided grad is copied, and with grad_scale the unscaled values go back into it
    gt = ember.full((3, 4), 8.0).t()
    kernel([p], [gt], [buf], 0.0, 0.9, ember.tensor(0.5), 0.0, False, False, True, grad_scale=ember.tensor(4.0),
           found_inf=ember.tensor(0.0))
    assert gt.tolist() == [[2.0] * 3] * 4 and buf.tolist() == [[2.0] * 3] * 4 and p.tolist() == [[-1.0] * 3] * 4
    assert launches == ["sgd_kernel"]


def test_sgd_first_and_later_steps_share_one_compiled_kernel(monkeypatch, cuda_kernels):
    # the first step (buffers set to the grads) and the later ones launch one compiled variant (compiler.run's
    # key: the constexprs, the argument types and which integer arguments are multiples of 16), so that a
    # step captured in a CUDA graph after one warm-up step loads no kernel during the capture
    seen = []
    real_run = optim.run

    def recording_run(fn, grid, args, constexprs, *rest):
        div16 = tuple(name for name, v, ty in args if ty[0] in "iu" and not v & 15)
        seen.append((fn.__name__, tuple(constexprs.items()), tuple(ty for _, _, ty in args), div16))
        return real_run(fn, grid, args, constexprs, *rest)

    monkeypatch.setattr(optim, "run", recording_run)
    cuda_kernels("_fused_sgd_")
    ps = [ember.nn.Parameter(ember.zeros(3)) for _ in range(2)]
    opt = ember.optim.SGD(ps, lr=ember.tensor(0.1), momentum=0.9, fused=True)
    for _ in range(2):
        for p in ps:
            p.grad = ember.ones(3)
        opt.step()
    assert len(seen) == 2 and seen[0] == seen[1]
    np.testing.assert_allclose([p.tolist() for p in ps], [[-0.1 - 0.19] * 3] * 2, rtol=1e-6)
