"""ember.autocast and GradScaler on the CPU, against torch 2.13's CPU autocast and GradScaler("cpu")."""
import numpy as np
import pytest
import torch

import ember
from ember.dispatch import OPS, PROFILER
from ember.profiler import ProfilerActivity, profile

F32 = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)


def _pair(dtype="float32", shape=(4, 4)):
    a = np.ascontiguousarray(F32[: shape[0], : shape[1]] if len(shape) == 2 else F32.reshape(-1)[: shape[0]])
    return ember.tensor(a).to(getattr(ember, dtype)), torch.tensor(a).to(getattr(torch, dtype))


def _name(dt):
    return str(dt).split(".")[-1]


# (case, fn(m, F, x, y, i)) with x, y float32 [4, 4] or mixed, i int64 targets; `m` is ember or torch, `F` its
# nn.functional
CASES = [
    ("matmul", lambda m, F, x, y, i: m.matmul(x, y)),
    ("@", lambda m, F, x, y, i: x @ y),
    ("mm", lambda m, F, x, y, i: m.mm(x, y)),
    ("bmm", lambda m, F, x, y, i: m.bmm(x.unsqueeze(0), y.unsqueeze(0))),
    ("linear", lambda m, F, x, y, i: F.linear(x, y, y[0])),
    ("addmm", lambda m, F, x, y, i: m.addmm(x, x, y)),
    ("baddbmm", lambda m, F, x, y, i: m.baddbmm(x.unsqueeze(0), x.unsqueeze(0), y.unsqueeze(0))),
    ("addbmm", lambda m, F, x, y, i: m.addbmm(x, x.unsqueeze(0), y.unsqueeze(0))),
    ("sdpa", lambda m, F, x, y, i: F.scaled_dot_product_attention(x[None, None], y[None, None], y[None, None])),
    ("prod", lambda m, F, x, y, i: m.prod(x)),
    ("nll_loss", lambda m, F, x, y, i: F.nll_loss(x, i)),
    ("cross_entropy", lambda m, F, x, y, i: F.cross_entropy(x, i)),
    ("cat mixed", lambda m, F, x, y, i: m.cat([x, y.to(m.bfloat16)])),
    ("stack mixed", lambda m, F, x, y, i: m.stack([x.to(m.bfloat16), y])),
    ("addcmul mixed", lambda m, F, x, y, i: m.addcmul(x, x.to(m.bfloat16), y)),
    ("addcdiv mixed", lambda m, F, x, y, i: m.addcdiv(x.to(m.bfloat16), x, y.abs() + 1)),
    ("atan2 mixed", lambda m, F, x, y, i: m.atan2(x.to(m.bfloat16), y)),
    ("exp", lambda m, F, x, y, i: m.exp(x)),
    ("exp of bf16", lambda m, F, x, y, i: m.exp(x.to(m.bfloat16))),
    ("softmax of bf16", lambda m, F, x, y, i: m.softmax(x.to(m.bfloat16), -1)),
    ("sum of bf16", lambda m, F, x, y, i: m.sum(x.to(m.bfloat16))),
    ("layer_norm of bf16", lambda m, F, x, y, i: F.layer_norm(x.to(m.bfloat16), (4,))),
    ("rms_norm of bf16", lambda m, F, x, y, i: F.rms_norm(x.to(m.bfloat16), (4,))),
    ("rms_norm", lambda m, F, x, y, i: F.rms_norm(x, (4,), y[0])),
    ("add mixed", lambda m, F, x, y, i: x.to(m.bfloat16) + y),
    ("where mixed", lambda m, F, x, y, i: m.where(x > 0, x.to(m.bfloat16), y)),
    ("relu", lambda m, F, x, y, i: F.relu(x)),
    ("matmul float64", lambda m, F, x, y, i: m.matmul(x.double(), y.double())),
    ("mm of bf16 and float32", lambda m, F, x, y, i: m.mm(x.to(m.bfloat16), y)),
]


@pytest.mark.parametrize("case,fn", CASES, ids=[c[0] for c in CASES])
def test_output_dtype_matches_torch_cpu_autocast(case, fn):
    ex, tx = _pair()
    ey, ty = _pair()
    ei, ti = ember.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3])
    with ember.autocast("cpu"):
        got = fn(ember, ember.nn.functional, ex, ey, ei)
    with torch.autocast("cpu"):
        want = fn(torch, torch.nn.functional, tx, ty, ti)
    assert _name(got.dtype) == _name(want.dtype), f"{case}: ember {got.dtype}, torch {want.dtype}"
    tol = 2e-2 if want.dtype == torch.bfloat16 else 1e-4
    np.testing.assert_allclose(got.float().detach().numpy(), want.float().detach().numpy(), rtol=tol, atol=tol)


def test_float16_on_the_cpu_and_the_defaults():
    ex, tx = _pair()
    with ember.autocast("cpu", dtype=ember.float16):
        assert (ex @ ex).dtype is ember.float16
    with torch.autocast("cpu", dtype=torch.float16):
        assert (tx @ tx).dtype == torch.float16
    assert ember.autocast("cpu").fast_dtype is ember.bfloat16 and ember.autocast("cuda").fast_dtype is ember.float16
    with pytest.raises(ValueError, match="must be ember.float16 or ember.bfloat16"):
        ember.autocast("cpu", dtype=ember.float32)
    with pytest.raises(ValueError, match="device_type must be 'cpu' or 'cuda'"):
        ember.autocast("tpu")


def test_nested_regions_enabled_false_and_the_decorator():
    x, _ = _pair()
    assert not ember.is_autocast_enabled("cpu")
    with ember.autocast("cpu"):
        assert ember.is_autocast_enabled("cpu") and (x @ x).dtype is ember.bfloat16
        with ember.autocast("cpu", enabled=False):
            assert not ember.is_autocast_enabled("cpu") and (x @ x).dtype is ember.float32
            with ember.autocast("cpu", dtype=ember.float16):
                assert (x @ x).dtype is ember.float16
            assert (x @ x).dtype is ember.float32
        assert (x @ x).dtype is ember.bfloat16 and ember.get_autocast_dtype("cpu") is ember.bfloat16
    assert (x @ x).dtype is ember.float32 and not ember.is_autocast_enabled("cpu")

    @ember.autocast("cpu")
    def f(t):
        return t @ t
    assert f(x).dtype is ember.bfloat16 and (x @ x).dtype is ember.float32
    with ember.amp.autocast("cpu"):
        assert (x @ x).dtype is ember.bfloat16


def test_cuda_autocast_does_not_touch_cpu_ops():
    x, _ = _pair()
    with ember.autocast("cuda"):
        assert (x @ x).dtype is ember.float32            # CPU tensors: the CUDA region does not apply
    with ember.cuda.amp.autocast():
        assert ember.is_autocast_enabled() and ember.get_autocast_dtype("cuda") is ember.float16


def test_the_cast_cache_casts_each_parameter_once_per_region():
    w = ember.nn.Parameter(ember.randn(4, 4))
    x = ember.randn(2, 4)

    def casts(fn):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        return sum(1 for e in prof.events() if e.name == "to_dtype")
    with ember.autocast("cpu"):
        n = casts(lambda: [ember.nn.functional.linear(x, w) for _ in range(3)])
    assert n == 1 + 3          # the weight once, the (non-leaf-parameter) input at each call
    with ember.autocast("cpu"):
        ember.nn.functional.linear(x, w)
    with ember.autocast("cpu", cache_enabled=False):
        assert casts(lambda: [ember.nn.functional.linear(x, w) for _ in range(3)]) == 6
    with ember.autocast("cpu"):                      # a weight changed in place is cast again
        def step():
            ember.nn.functional.linear(x, w)
            with ember.no_grad():
                w.add_(1.0)
            ember.nn.functional.linear(x, w)
        assert casts(step) == 4


def test_autocast_inside_no_grad():
    w = ember.nn.Parameter(ember.randn(4, 4))
    tw = torch.nn.Parameter(torch.tensor(w.detach().numpy()))
    with ember.no_grad(), ember.autocast("cpu"):
        y = w @ w
    with torch.no_grad(), torch.autocast("cpu"):
        ty = tw @ tw
    assert y.dtype is ember.bfloat16 and ty.dtype == torch.bfloat16
    assert not y.requires_grad and not ty.requires_grad


def test_gradients_come_back_in_each_leafs_dtype():
    w32 = ember.nn.Parameter(ember.tensor(F32))
    wb = ember.nn.Parameter(ember.tensor(F32).bfloat16())
    t32 = torch.nn.Parameter(torch.tensor(F32))
    tb = torch.nn.Parameter(torch.tensor(F32).bfloat16())
    with ember.autocast("cpu"):
        loss = ember.nn.functional.linear(w32, wb).float().sum()
    loss.backward()
    with torch.autocast("cpu"):
        tloss = torch.nn.functional.linear(t32, tb).float().sum()
    tloss.backward()
    assert w32.grad.dtype is ember.float32 and wb.grad.dtype is ember.bfloat16
    assert t32.grad.dtype == torch.float32 and tb.grad.dtype == torch.bfloat16
    np.testing.assert_allclose(w32.grad.numpy(), t32.grad.numpy(), rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(wb.grad.float().numpy(), tb.grad.float().numpy(), rtol=2e-2, atol=2e-2)


def test_off_costs_nothing():
    """Outside autocast an entry point runs its plain body. Leaving a region leaves the hand-over code in
    place (no swap of every op's code, twice per region); the op's first call puts its plain code back, and
    the next region swaps only the ops called since."""
    add, neg = OPS["add"], OPS["neg"]
    a = ember.ones(2)
    a + a
    assert add.entry.__code__ is add.entry_codes[0] and not PROFILER.on
    with ember.autocast("cpu"):
        assert add.entry.__code__ is add.entry_codes[1]
        assert all(op.entry.__code__ is op.entry_codes[1] for op in OPS.values())
    assert not PROFILER.on and add.entry.__code__ is add.entry_codes[1]
    assert (a + a).tolist() == [2.0, 2.0]
    assert add.entry.__code__ is add.entry_codes[0] and neg.entry.__code__ is neg.entry_codes[1]
    with ember.autocast("cpu"):
        assert all(op.entry.__code__ is op.entry_codes[1] for op in OPS.values())
        assert (a @ a.reshape(2, 1)).dtype == ember.bfloat16
    assert (a @ a.reshape(2, 1)).dtype == ember.float32 and (-a).tolist() == [-1.0, -1.0]
    assert neg.entry.__code__ is neg.entry_codes[0]


def test_custom_fwd_and_bwd():
    seen = {}

    class Mul(ember.autograd.Function):
        @staticmethod
        @ember.amp.custom_fwd(device_type="cpu", cast_inputs=ember.float32)
        def forward(ctx, a, b):
            seen["fwd"] = (a.dtype, ember.is_autocast_enabled("cpu"))
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        @ember.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            seen["bwd"] = ember.is_autocast_enabled("cpu")
            a, b = ctx.saved_tensors
            return g * b, g * a
    a = ember.ones(2, dtype=ember.bfloat16, requires_grad=True)
    b = ember.ones(2, requires_grad=True)
    with ember.autocast("cpu"):
        out = Mul.apply(a, b)
    out.sum().backward()
    assert seen["fwd"] == (ember.float32, False) and seen["bwd"] is False
    assert out.dtype is ember.float32 and a.grad.dtype is ember.bfloat16


# ---- GradScaler ------------------------------------------------------------------------------------

def _scaler_run(m, steps=20, overflow_at=(3, 4, 11)):
    p = m.nn.Parameter(m.ones(3))
    opt = m.optim.SGD([p], lr=0.1)
    sc = m.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=3)
    scales, skipped = [], []
    for k in range(steps):
        opt.zero_grad()
        loss = (p * p).sum()
        sc.scale(loss).backward()
        if k in overflow_at:
            with m.no_grad():
                p.grad[0] = float("inf") if k != 11 else float("nan")
        before = p.detach().clone()
        sc.step(opt)
        sc.update()
        skipped.append(bool((p.detach() == before).all()))
        scales.append(sc.get_scale())
    return scales, skipped, p.detach().tolist(), sc.state_dict()


def test_grad_scaler_matches_torch_over_20_steps_with_overflows():
    es, eskip, ep, esd = _scaler_run(ember)
    ts, tskip, tp, tsd = _scaler_run(torch)
    assert es == ts
    assert eskip == tskip and eskip[3] and eskip[4] and eskip[11] and not eskip[0]
    np.testing.assert_allclose(ep, tp, rtol=1e-6)
    assert esd == tsd


def test_grad_scaler_unscale_and_errors():
    p = ember.nn.Parameter(ember.ones(2))
    opt = ember.optim.SGD([p], lr=1.0)
    sc = ember.amp.GradScaler("cpu", init_scale=4.0)
    sc.scale((p * 3).sum()).backward()
    assert p.grad.tolist() == [12.0, 12.0]
    sc.unscale_(opt)
    assert p.grad.tolist() == [3.0, 3.0]
    with pytest.raises(RuntimeError, match="already been called"):
        sc.unscale_(opt)
    sc.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        sc.step(opt)
    sc.update()
    assert p.tolist() == [-2.0, -2.0]
    sd = sc.state_dict()
    sc2 = ember.amp.GradScaler("cpu")
    sc2.load_state_dict(sd)
    assert sc2.get_scale() == sd["scale"] and sc2.state_dict() == sd
    with pytest.raises(ValueError, match="growth_factor must be > 1"):
        ember.amp.GradScaler("cpu", growth_factor=1.0)
    off = ember.amp.GradScaler("cpu", enabled=False)
    assert off.scale(p.sum()) is not None and off.get_scale() == 1.0 and off.state_dict() == {}


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
                                  "binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_losses_run_in_float32_under_cpu_autocast_as_torch(loss):
    """torch lists these losses as fp32 on the CPU: bf16 inputs are cast up and the loss is computed in float32
    (ember's are composites of ops, so without the rule the log-softmax would run in bf16)."""
    g = np.random.default_rng(0)
    x = (g.standard_normal((16, 8)) * 3).astype(np.float32)
    cls = g.integers(0, 8, 16)
    prob = (g.random((16, 8)) > 0.5).astype(np.float32)
    res = {}
    for lib in (torch, ember):
        xb = lib.from_numpy(x).to(lib.bfloat16)
        args = {"cross_entropy": (xb, lib.from_numpy(cls)),
                "nll_loss": (xb.log_softmax(1), lib.from_numpy(cls)),
                "binary_cross_entropy": (xb.sigmoid(), lib.from_numpy(prob).to(lib.bfloat16))}.get(
                    loss, (xb, lib.from_numpy(prob).to(lib.bfloat16)))
        with lib.autocast("cpu", dtype=lib.bfloat16):
            out = getattr(lib.nn.functional, loss)(*args)
        res[lib.__name__] = (str(out.dtype).split(".")[-1], float(out))
    assert res["ember"][0] == res["torch"][0] == "float32"
    np.testing.assert_allclose(res["ember"][1], res["torch"][1], rtol=1e-6)


def test_regions_in_one_thread_while_another_calls_ops():
    """Another thread's first call after a region (which puts its op's plain code back) never leaves an op
    without the hand-over code while a region is open."""
    import threading
    stop = threading.Event()
    a = ember.ones(4)

    def caller():
        while not stop.is_set():
            (a + a).neg().exp()

    t = threading.Thread(target=caller)
    t.start()
    try:
        for _ in range(200):
            with ember.autocast("cpu"):
                assert all(op.entry.__code__ is op.entry_codes[1] for op in (OPS["add"], OPS["neg"], OPS["exp"]))
                assert (a @ a.reshape(4, 1)).dtype == ember.bfloat16
    finally:
        stop.set()
        t.join()
    assert (a @ a.reshape(4, 1)).dtype == ember.float32
