"""ember.optim on bfloat16 and float16 parameters against torch.optim (CPU), from the same initial values
with the same 16-bit gradients for 20 steps, the parameters compared after every step.

What torch 2.13 computes there (CPU; measured, see tests/test_lowp_scalars.py): its for-loop (the CPU default)
and foreach steps run one op at a time, each op in float32 from the 16-bit values and rounded to the
parameter's dtype (so the moments and momentum buffers live and round in 16 bits); how an op takes a Python
scalar differs (add's alpha rounded to the dtype, mul_/div_/lerp_'s kept in float32, `_foreach_mul_`'s
rounded), and the vectorised float32 code fuses multiply-adds. `fused=True` (Adam/AdamW) computes the
whole step in float32 and rounds each state and the parameter once.
ember's CPU ops compute as torch's (and its foreach step rounds `_foreach_mul_`'s scalar as torch's): the
comparisons are bit for bit (every element, every step). Not reproducible: torch's
scalar loop over a tensor's last numel % 64 elements (AVX-512; % 32 on AVX2) rounds alpha * other to the
dtype before `add` adds it, so there ember is held to 1 ulp a step, from identical states.

The CUDA multi-tensor Adam kernel (through Triton's interpreter) computes in float32 and rounds at the
stores, as torch's CUDA fused Adam does: compared bit for bit with a float32 reference in the kernel's
order, and within 1 ulp a step of torch's fused CPU Adam (the same float32 math in another order)."""
import os

import numpy as np
import pytest
import torch

import ember
from helpers import from_torch, to_torch
from test_optim import SGD_CASES  # noqa: E402  (the same cases, in 16 bits)

LOW = ["bfloat16", "float16"]
SHAPES = [(64,), (8, 16), (3, 64)]          # numel multiples of 64: torch's vectorised loops only
TAILS = [(5,), (3, 7), (100,)]              # ... and tails torch's scalar loop computes
STEPS = 20


def _bits(x) -> np.ndarray:
    """A 16-bit float tensor (ember or torch) as int32s in the order of their values (one apart: one ulp)."""
    if isinstance(x, torch.Tensor):
        b = x.detach().contiguous().view(torch.int16).numpy().astype(np.int32)
        nan = x.detach().isnan().numpy()
    else:
        a = np.asarray(x.detach().numpy())
        b, nan = a.view(np.int16).astype(np.int32), np.isnan(a.astype(np.float32))
    return np.where(nan, 1 << 20, np.where(b < 0, -(b & 0x7FFF), b))     # every NaN the same


def ulps(e, t) -> int:
    return int(np.abs(_bits(e) - _bits(t)).max()) if t.numel() else 0


def make(dtype, shapes=SHAPES, seed=0):
    rng = np.random.default_rng(seed)
    tdt = getattr(torch, dtype)
    tp = [torch.nn.Parameter(torch.from_numpy(rng.uniform(-1.5, 1.5, s).astype(np.float32)).to(tdt)) for s in shapes]
    ep = [ember.nn.Parameter(from_torch(t.detach())) for t in tp]
    assert all(e.dtype is getattr(ember, dtype) for e in ep)
    return ep, tp


def feed(ep, tp, rng):
    """The same 16-bit gradients to both: parameter-dependent (as from a loss) plus noise."""
    for e, t in zip(ep, tp):
        p = t.detach().float().numpy()
        g = torch.from_numpy((np.cos(3 * p) + 0.5 * rng.standard_normal(p.shape)).astype(np.float32)).to(t.dtype)
        t.grad = g.clone()
        e.grad = from_torch(g)


def run(name, kw, mode, dtype, shapes=SHAPES, steps=STEPS, seed=0):
    """Both optimizers over `steps` steps; the parameters must agree bit for bit after each."""
    ep, tp = make(dtype, shapes, seed)
    if dtype == "float16" and name != "SGD":
        kw = dict(dict(eps=1e-6), **kw)         # Adam's default 1e-8 is 0 in float16: steps of m / 0
    eo = getattr(ember.optim, name)(ep, **kw, **mode)
    to = getattr(torch.optim, name)(tp, **kw, **mode)
    rng = np.random.default_rng(seed + 1)
    for step in range(steps):
        feed(ep, tp, rng)
        eo.step()
        to.step()
        for i, (e, t) in enumerate(zip(ep, tp)):
            assert e.dtype is getattr(ember, dtype)
            assert ulps(e, t) == 0, (step, i, ulps(e, t))
    return ep, tp, eo, to


def assert_states_equal(eo, to):
    es, ts = eo.state_dict()["state"], to.state_dict()["state"]
    assert sorted(es) == sorted(ts)
    for k, tst in ts.items():
        for key, tv in tst.items():
            ev = es[k][key]
            if key == "step":
                assert float(ev.item()) == float(tv.item())
                continue
            assert ev.dtype is ember.__dict__[str(tv.dtype).split(".")[-1]], key   # states keep the param dtype
            assert ulps(ev, tv) == 0, key


# ---- SGD -------------------------------------------------------------------------------------------



@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("mode", [{}, dict(foreach=False), dict(foreach=True)], ids=["default", "loop", "foreach"])
@pytest.mark.parametrize("kw", SGD_CASES, ids=[str(i) for i in range(len(SGD_CASES))])
def test_sgd_matches_torch_bit_for_bit(kw, mode, dtype):
    _, _, eo, to = run("SGD", kw, mode, dtype)
    assert_states_equal(eo, to)


def test_sgd_momentum_in_float32_as_torch_not_in_16_bits():
    """The 'SGD momentum differs a few ulps' cause: torch's `buf.mul_(momentum)` keeps momentum in float32
    and `add_(g, alpha=-lr)` rounds alpha to bfloat16, where ember's CPU ops once did the reverse (mul_
    rounded its scalar, add_ kept alpha in float32); they now take each as torch does."""
    x, y = torch.linspace(-3, 3, 64).bfloat16(), torch.linspace(2, -1, 64).bfloat16()
    assert torch.equal(x.mul(0.9), (x.float() * 0.9).bfloat16())                           # float32 momentum
    assert not torch.equal(x.mul(0.9), x.mul(torch.tensor(0.9).bfloat16().item()))
    lr = 0.1
    assert torch.equal(x.add(y, alpha=-lr), (x.float() + torch.tensor(-lr).bfloat16().float() * y.float()).bfloat16())
    ex, ey = from_torch(x), from_torch(y)
    assert ulps(ex.mul(0.9), x.mul(0.9)) == 0 and ulps(ex.add(ey, alpha=-lr), x.add(y, alpha=-lr)) == 0
    run("SGD", dict(lr=lr, momentum=0.9), {}, "bfloat16", steps=5)


# ---- Adam, AdamW -----------------------------------------------------------------------------------

ADAM_CASES = [
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1)),
    ("Adam", dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, amsgrad=True, maximize=True)),   # 1e-8 is 0 in float16
    ("AdamW", dict(lr=1e-2, weight_decay=0.1)),
    ("AdamW", dict(lr=1e-2, betas=(0.5, 0.9), weight_decay=0.3, maximize=True)),     # lerp weight >= 0.5
    ("AdamW", dict(lr=1e-1, betas=(0.9, 0.95), weight_decay=0.05, amsgrad=True)),
]
MODES = [{}, dict(foreach=False), dict(foreach=True), dict(fused=True)]


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("mode", MODES, ids=["default", "loop", "foreach", "fused"])
@pytest.mark.parametrize("name,kw", ADAM_CASES, ids=[str(i) for i in range(len(ADAM_CASES))])
def test_adam_matches_torch_bit_for_bit(name, kw, mode, dtype):
    _, _, eo, to = run(name, kw, mode, dtype)
    assert_states_equal(eo, to)


@pytest.mark.parametrize("mode", [dict(foreach=False), dict(fused=True)], ids=["loop", "fused"])
def test_adam_bit_for_bit_on_larger_tensors(mode):
    """4096-element tensors: where torch fuses a multiply-add, one rounding instead of two shows."""
    run("AdamW", dict(lr=1e-1, betas=(0.9, 0.95), weight_decay=0.05, amsgrad=True), mode, "bfloat16",
        shapes=[(64, 64), (4096,)], steps=8)


@pytest.mark.parametrize("name,kw,mode", [("SGD", dict(lr=0.1, momentum=0.9), {}),
                                          ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
                                           dict(foreach=True)),
                                          ("Adam", dict(lr=1e-2, weight_decay=0.1), {}),
                                          ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True), dict(fused=True))])
def test_tails_within_one_ulp_a_step(name, kw, mode):
    """Tensors whose last elements torch computes in its scalar loop (which rounds lr * update to bfloat16
    before adding it): from torch's parameters and states copied into ember before each step, ember's
    parameters are within 1 ulp of the step's operands (the parameter before and after, the update)."""
    ep, tp = make("bfloat16", TAILS)
    eo = getattr(ember.optim, name)(ep, **kw, **mode)
    to = getattr(torch.optim, name)(tp, **kw, **mode)
    rng = np.random.default_rng(1)
    for step in range(STEPS):
        feed(ep, tp, rng)
        before = [t.detach().float().numpy().copy() for t in tp]
        eo.step()
        to.step()
        for e, t, b in zip(ep, tp, before):
            got, want = e.detach().float().numpy(), t.detach().float().numpy()
            scale = np.maximum(np.maximum(np.abs(b), np.abs(want)), np.abs(want - b))
            assert (np.abs(got - want) <= 2.0 ** -7 * scale).all(), step     # a bfloat16 ulp is <= 2^-7 |x|
            e.detach().copy_(from_torch(t.detach()))
            for key, tv in to.state[t].items():
                if key != "step":
                    eo.state[e][key].copy_(from_torch(tv))


def test_a_small_bfloat16_model_with_adamw():
    """A bfloat16 model's parameters (as `model.to(bfloat16)` leaves them), torch's grads of a loss
    copied in: the same parameters after every step."""
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.GELU(), torch.nn.Linear(32, 64)).to(torch.bfloat16)
    em = ember.nn.Sequential(ember.nn.Linear(64, 32), ember.nn.GELU(), ember.nn.Linear(32, 64)).to(ember.bfloat16)
    for e, t in zip(em.parameters(), tm.parameters()):
        e.detach().copy_(from_torch(t.detach()))
    eo = ember.optim.AdamW(em.parameters(), lr=1e-2, weight_decay=0.1)
    to = torch.optim.AdamW(tm.parameters(), lr=1e-2, weight_decay=0.1)
    x = torch.randn(16, 64).bfloat16()
    for step in range(STEPS):
        to.zero_grad()
        tm(x).float().square().mean().backward()
        for e, t in zip(em.parameters(), tm.parameters()):
            e.grad = from_torch(t.grad)
        eo.step()
        to.step()
        for e, t in zip(em.parameters(), tm.parameters()):
            assert e.dtype is ember.bfloat16 and ulps(e, t) == 0, step


def test_float32_master_copy_is_the_users_choice():
    """bfloat16 model, float32 master parameters in the optimizer (the user's mixed-precision recipe):
    the masters follow torch's float32 Adam, the model gets them rounded."""
    ep, tp = make("bfloat16")
    em = [ember.nn.Parameter(p.detach().float()) for p in ep]
    tm = [torch.nn.Parameter(p.detach().float()) for p in tp]
    eo, to = ember.optim.Adam(em, lr=1e-2), torch.optim.Adam(tm, lr=1e-2, foreach=False)
    rng = np.random.default_rng(1)
    for _ in range(STEPS):
        feed(ep, tp, rng)
        for m, p in zip(em, ep):
            m.grad = p.grad.float()
        for m, p in zip(tm, tp):
            m.grad = p.grad.float()
        eo.step()
        to.step()
        for e, t, m, n in zip(ep, tp, em, tm):
            assert eo.state[m]["exp_avg"].dtype is ember.float32
            np.testing.assert_allclose(m.detach().numpy(), n.detach().numpy(), rtol=1e-6, atol=1e-7)
            e.detach().copy_(m.detach())
            t.detach().copy_(n.detach())
            assert ulps(e, t) <= 1


# ---- the CUDA multi-tensor Adam kernel, through Triton's interpreter ----------------------------------

_INTERP = not ember.cuda.is_available()
if _INTERP:
    os.environ["TRITON_INTERPRET"] = "1"        # as the other *_interp tests: CPU tensors run the CUDA kernels
needs_interp = pytest.mark.skipif(not _INTERP, reason="a GPU is present: tests/test_cuda_optim.py runs the kernel")


@pytest.fixture
def rtne_stores(monkeypatch):
    """The interpreter casts float32 to bfloat16 by truncation; the GPU (cvt.rn) rounds to nearest even."""
    tl = pytest.importorskip("triton.language")
    from triton.runtime import interpreter as I
    cast = I.InterpreterBuilder.cast_impl

    def cast_impl(self, src, dst_type):
        if src.dtype.scalar == tl.float32 and dst_type.scalar == tl.bfloat16:
            x = src.data.astype(np.float32).view(np.uint32)
            r = ((x + 0x7FFF + ((x >> 16) & 1)) >> 16).astype(np.uint16)
            return I.TensorHandle(np.where(np.isnan(src.data), np.uint16(0x7FC0), r), tl.bfloat16)
        return cast(self, src, dst_type)
    monkeypatch.setattr(I.InterpreterBuilder, "cast_impl", cast_impl)


def _kernel_reference(p, g, m, v, vmax, step, lr, b1, b2, eps, wd, decoupled, maximize, dt):
    """The kernel's float32 arithmetic (kernels/optim.py `_adam_tile`) in its order, rounded to dt at the stores
    (the arrays updated in place). Its scalar coefficients (1 - beta1, 1 - lr * weight_decay, ...) are what
    Triton's interpreter makes of them: computed from the float64 arguments, then float32; on the GPU they
    are computed in float32 (an ulp of float32 apart at most)."""
    f = np.float32
    ss, bc2 = f(lr / (1 - b1 ** step)), f((1 - b2 ** step) ** 0.5)
    P, G, M, V = (a.astype(f) for a in (p, g, m, v))
    if maximize:
        G = -G
    if wd:
        if decoupled:
            P = P * f(1.0 - lr * wd)
        else:
            G = G + f(wd) * P
    M = M + f(1.0 - b1) * (G - M)
    V = V * f(b2) + f(1.0 - b2) * G * G
    if vmax is not None:
        V2 = np.maximum(vmax.astype(f), V)
        vmax[...] = V2.astype(dt)
    else:
        V2 = V
    denom = np.sqrt(V2) / bc2 + f(eps)
    P = P + (-ss) * (M / denom)
    p[...], m[...], v[...] = P.astype(dt), M.astype(dt), V.astype(dt)


@needs_interp
@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("kw", [dict(weight_decay=0.1, decoupled=True), dict(weight_decay=0.1, amsgrad=True),
                                dict(maximize=True, betas=(0.8, 0.99))])
def test_cuda_adam_kernel_computes_in_float32(rtne_stores, dtype, kw):
    """adam_multi_step_ (the CUDA path of Adam/AdamW) on 16-bit parameters for 20 steps: bit for bit the
    float32 reference in the kernel's order, and each step within 1 ulp of torch's fused CPU Adam (float32
    math, in another order: fused multiply-adds, float32 coefficients) taken from the same states."""
    from ember.backends.cuda.optim import adam_multi_step_
    tdt, npdt = getattr(torch, dtype), getattr(ember, dtype).np
    lr, (b1, b2), eps = 1e-2, kw.get("betas", (0.9, 0.999)), 1e-8
    wd, decoupled, amsgrad, maximize = (kw.get(k, d) for k, d in (("weight_decay", 0.0), ("decoupled", False),
                                                                  ("amsgrad", False), ("maximize", False)))
    fused = torch._fused_adamw_ if decoupled else torch._fused_adam_
    ps = [e.detach() for e in make(dtype, [(64,), (8, 130), ()])[0]]       # 1040 elements: two programs
    ms, vs = [ember.zeros_like(p) for p in ps], [ember.zeros_like(p) for p in ps]
    xs = [ember.zeros_like(p) for p in ps] if amsgrad else None
    lists = (ps, ms, vs) + ((xs,) if amsgrad else ())
    ref = [[np.array(a.numpy()) for a in lst] for lst in lists]
    rng = np.random.default_rng(1)
    exact = total = 0
    for step in range(1, STEPS + 1):
        gs = [torch.from_numpy(np.asarray(np.cos(3 * p.float().numpy()) + 0.5 * rng.standard_normal(p.shape),
                                          np.float32)).to(tdt) for p in ps]
        tps, tms, tvs, txs = ([to_torch(t) for t in lst] for lst in (ps, ms, vs, xs or ps))
        prev = [[t.float().abs() for t in lst] for lst in (tps, tms, tvs)]
        fused(tps, [g.clone() for g in gs], tms, tvs, txs if amsgrad else [], [torch.tensor(float(step))] * len(ps),
              lr=lr, beta1=b1, beta2=b2, weight_decay=wd, eps=eps, amsgrad=amsgrad, maximize=maximize)
        adam_multi_step_(ps, [from_torch(g) for g in gs], ms, vs, xs, [step] * len(ps), lr, b1, b2, eps, wd,
                         decoupled, maximize)
        for i, g in enumerate(gs):
            _kernel_reference(ref[0][i], np.array(from_torch(g).numpy()), ref[1][i], ref[2][i],
                              ref[3][i] if amsgrad else None, step, lr, b1, b2, eps, wd, decoupled, maximize, npdt)
        for got, want in zip(lists, ref):
            for a, b in zip(got, want):
                assert a.dtype.np == npdt and a.numpy().tobytes() == b.tobytes(), step      # bit for bit
        for k, (got, want, before) in enumerate(zip((ps, ms, vs), (tps, tms, tvs), prev)):
            for a, b, b0, g in zip(got, want, before, gs):
                # 1 ulp of the step's operands (the state before, the result, and g for exp_avg, g^2 for
                # exp_avg_sq): a moment that cancels to near 0 keeps its operands' roundings, many of its ulps
                g = (0, g.float().abs(), g.float().square())[k]
                scale = torch.maximum(torch.maximum(b0, b.float().abs()), torch.as_tensor(g))
                diff = (to_torch(a).float() - b.float()).abs()
                assert (diff <= 2.0 ** (-7 if dtype == "bfloat16" else -10) * scale).all(), step
                exact += int((_bits(a) == _bits(b)).sum())
                total += b.numel()
    assert exact >= 0.99 * total, (exact, total)
