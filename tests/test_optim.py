"""ember.optim (SGD, Adam, AdamW and the Optimizer base) against torch.optim on identical params and grads."""
import math
import warnings

import numpy as np
import pytest
import torch

import ember
from ember import optim
from ember.serialization import load as ember_load, save as ember_save

SHAPES = [(3, 4), (5,), (2, 1, 3)]


def make_params(dtype="float64", seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    init = [rng.uniform(-1.5, 1.5, size=s).astype(dtype) for s in shapes]
    ep = [ember.tensor(a.copy(), requires_grad=True) for a in init]
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    return ep, tp


def set_grads(ep, tp, rng, skip=()):
    """Parameter-dependent gradients (as from a loss), the same in both frameworks; `skip` gets no grad."""
    for i, (e, t) in enumerate(zip(ep, tp)):
        if i in skip:
            e.grad = None
            t.grad = None
            continue
        p = e.detach().numpy()
        g = (np.cos(3 * p) + 0.5 * rng.standard_normal(p.shape)).astype(p.dtype)
        e.grad = ember.tensor(g.copy())
        t.grad = torch.tensor(g.copy())


def assert_params(ep, tp, rtol=1e-10, atol=1e-12):
    for e, t in zip(ep, tp):
        np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


def assert_state(eo, to, rtol=1e-10, atol=1e-12):
    es, ts = eo.state_dict(), to.state_dict()
    assert sorted(es["state"]) == sorted(ts["state"])
    for k in ts["state"]:
        assert list(es["state"][k]) == list(ts["state"][k])
        for name, tv in ts["state"][k].items():
            ev = es["state"][k][name]
            np.testing.assert_allclose(np.asarray(ev.numpy(), np.float64), tv.double().numpy(), rtol=rtol, atol=atol)
            assert str(ev.dtype).split(".")[-1] == str(tv.dtype).split(".")[-1], name
    assert len(es["param_groups"]) == len(ts["param_groups"])
    for eg, tg in zip(es["param_groups"], ts["param_groups"]):
        assert set(eg) == set(tg)
        for key in tg:
            if key not in ("foreach", "fused"):  # torch fills these in lazily
                assert eg[key] == tg[key], key


def run_pair(ecls, tcls, kwargs, steps=6, dtype="float64", seed=0, skip_at=None):
    ep, tp = make_params(dtype, seed)
    eo = ecls(ep, **kwargs)
    to = tcls(tp, foreach=False, **kwargs)
    rng = np.random.default_rng(seed + 1)
    ids = [id(p) for p in ep]
    for step in range(steps):
        skip = (1,) if skip_at is not None and step in skip_at else ()
        set_grads(ep, tp, rng, skip)
        eo.step()
        to.step()
    assert [id(p) for p in eo.param_groups[0]["params"]] == ids  # parameters keep their identity
    return ep, tp, eo, to


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
    dict(lr=0.1, momentum=0.5, maximize=True),
    dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.05, maximize=True),
]
ADAM_CASES = [
    dict(),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    dict(lr=0.02, amsgrad=True),
    dict(lr=0.01, maximize=True, weight_decay=0.05),
    dict(lr=0.03, betas=(0.5, 0.9), amsgrad=True, maximize=True, weight_decay=0.2),
    dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
]
ADAMW_CASES = [
    dict(),
    dict(lr=0.01, weight_decay=0.5, amsgrad=True),
    dict(lr=0.02, betas=(0.7, 0.95), weight_decay=0.1, maximize=True),
    dict(lr=0.01, weight_decay=0.0),
]
ALL = ([(optim.SGD, torch.optim.SGD, c) for c in SGD_CASES]
       + [(optim.Adam, torch.optim.Adam, c) for c in ADAM_CASES]
       + [(optim.AdamW, torch.optim.AdamW, c) for c in ADAMW_CASES])
IDS = [f"{e.__name__}-{i}" for i, (e, _, _) in enumerate(ALL)]


@pytest.mark.parametrize("ecls,tcls,kwargs", ALL, ids=IDS)
def test_matches_torch_float64(ecls, tcls, kwargs):
    ep, tp, eo, to = run_pair(ecls, tcls, kwargs, steps=8, skip_at={2, 3})
    assert_params(ep, tp)
    assert_state(eo, to)


@pytest.mark.parametrize("ecls,tcls,kwargs", [ALL[3], ALL[len(SGD_CASES) + 4], ALL[-3]],
                         ids=["SGD", "Adam", "AdamW"])
def test_matches_torch_float32(ecls, tcls, kwargs):
    ep, tp, eo, to = run_pair(ecls, tcls, kwargs, steps=5, dtype="float32")
    assert_params(ep, tp, rtol=2e-6, atol=1e-6)
    for e in ep:
        assert e.dtype is ember.float32
    assert_state(eo, to, rtol=1e-5, atol=1e-6)


def copy_grads(src, *targets):
    for i, p in enumerate(src):
        for tgt in targets:
            g = p.grad.detach().numpy().copy()
            tgt[i].grad = ember.tensor(g) if isinstance(tgt[i], ember.Tensor) else torch.tensor(g)


@pytest.mark.parametrize("ecls,tcls,kwargs", [ALL[2], ALL[4], ALL[len(SGD_CASES) + 1],
                                              ALL[len(SGD_CASES) + 4], ALL[-3]],
                         ids=["SGD-dampening", "SGD-maximize", "Adam-wd", "Adam-amsgrad", "AdamW-amsgrad"])
def test_state_dict_save_load_mid_run(ecls, tcls, kwargs, tmp_path):
    ep, tp, eo, to = run_pair(ecls, tcls, kwargs, steps=3)
    path = tmp_path / "opt.safetensors"
    ember_save({"optim": eo.state_dict(), "params": [p.detach() for p in ep]}, path)
    ck = ember_load(path)
    # a fresh optimizer over fresh parameters, restored from the checkpoint
    ep2 = [p.clone().requires_grad_() for p in ck["params"]]
    eo2 = ecls(ep2, **kwargs)
    eo2.load_state_dict(ck["optim"])
    assert_state(eo2, to)
    assert_state(eo2, eo, rtol=0, atol=0)
    rng = np.random.default_rng(42)
    for _ in range(4):
        set_grads(ep2, tp, rng)
        copy_grads(ep2, ep)  # the original optimizer keeps running too
        eo2.step()
        eo.step()
        to.step()
    assert_params(ep2, tp)
    for a, b in zip(ep2, ep):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())  # restored run is bit-identical
    assert_state(eo2, to)


def test_load_state_dict_from_state_dict_directly_and_param_dtype_cast():
    ep, tp, eo, to = run_pair(optim.Adam, torch.optim.Adam, dict(lr=0.01), steps=2)
    sd = eo.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1, 2]
    assert sd["state"][0]["exp_avg"] is eo.state[ep[0]]["exp_avg"]  # referenced, as in torch
    p32 = [p.detach().float().requires_grad_() for p in ep]
    eo32 = optim.Adam(p32, lr=0.01)
    eo32.load_state_dict(sd)
    st = eo32.state[p32[0]]
    assert st["exp_avg"].dtype is ember.float32  # state follows its parameter's dtype
    assert st["step"].dtype is ember.float32 and st["step"].item() == 2.0  # 'step' is left as it was


def test_param_groups_with_different_options():
    ep, tp = make_params()
    eo = optim.SGD([{"params": ep[:2]}, {"params": ep[2:], "lr": 0.3, "momentum": 0.5}], lr=0.1, momentum=0.9)
    to = torch.optim.SGD([{"params": tp[:2]}, {"params": tp[2:], "lr": 0.3, "momentum": 0.5}], lr=0.1,
                         momentum=0.9)
    assert eo.param_groups[0]["lr"] == 0.1 and eo.param_groups[1]["lr"] == 0.3
    assert eo.param_groups[1]["dampening"] == 0  # defaults filled in
    rng = np.random.default_rng(3)
    for _ in range(4):
        set_grads(ep, tp, rng)
        eo.step()
        to.step()
    assert_params(ep, tp)
    assert_state(eo, to)


def test_closure_with_backward_and_identity():
    ep, tp = make_params()
    target_e, target_t = ember.ones(5, dtype=ember.float64), torch.ones(5, dtype=torch.float64)
    eo = optim.Adam(ep, lr=0.05, amsgrad=True)
    to = torch.optim.Adam(tp, lr=0.05, amsgrad=True, foreach=False)
    ptr = ep[0].data_ptr()

    def closure_e():
        eo.zero_grad()
        loss = ((ep[1] - target_e) ** 2).sum() + (ep[0].sin() * ep[0]).sum() + ep[2].abs().sum()
        loss.backward()
        return loss

    def closure_t():
        to.zero_grad()
        loss = ((tp[1] - target_t) ** 2).sum() + (tp[0].sin() * tp[0]).sum() + tp[2].abs().sum()
        loss.backward()
        return loss

    for _ in range(5):
        le = eo.step(closure_e)
        lt = to.step(closure_t)
        assert abs(le.item() - lt.item()) <= 1e-10 * max(1.0, abs(lt.item()))
    assert_params(ep, tp)
    assert ep[0].data_ptr() == ptr and ep[0].is_leaf and ep[0].requires_grad


def test_step_does_not_record_autograd():
    ep, _ = make_params()
    eo = optim.SGD(ep, lr=0.1, momentum=0.9)
    for p in ep:
        p.grad = ember.ones_like(p)
    eo.step()
    assert all(p.grad_fn is None and p.is_leaf for p in ep)
    assert eo.state[ep[0]]["momentum_buffer"].requires_grad is False


def test_zero_grad():
    ep, _ = make_params()
    eo = optim.SGD(ep, lr=0.1)
    for p in ep:
        p.grad = ember.ones_like(p)
    g0 = ep[0].grad
    eo.zero_grad(set_to_none=False)
    assert ep[0].grad is g0 and float(g0.abs().sum()) == 0.0
    eo.zero_grad()
    assert all(p.grad is None for p in ep)


def test_sgd_without_momentum_keeps_no_state():
    ep, tp, eo, to = run_pair(optim.SGD, torch.optim.SGD, dict(lr=0.1), steps=2)
    assert len(eo.state) == len(to.state) == 0
    assert eo.state_dict()["state"] == {}


def test_defaults_and_repr():
    ep, _ = make_params()
    tp = [torch.zeros(1, requires_grad=True)]
    for ecls, tcls in ((optim.SGD, torch.optim.SGD), (optim.Adam, torch.optim.Adam),
                       (optim.AdamW, torch.optim.AdamW)):
        eo, to = ecls(ep), tcls(tp)
        assert set(eo.defaults) == set(to.defaults)
        for k, v in to.defaults.items():
            if k not in ("foreach", "fused"):
                assert eo.defaults[k] == v, (ecls.__name__, k)
    r = repr(optim.Adam(ep, lr=0.5))
    assert r.startswith("Adam (") and "Parameter Group 0" in r and "lr: 0.5" in r


@pytest.mark.parametrize("make,exc,match", [
    (lambda o, p: o.SGD(p, lr=-1), ValueError, "Invalid learning rate"),
    (lambda o, p: o.SGD(p, momentum=-0.1), ValueError, "Invalid momentum"),
    (lambda o, p: o.SGD(p, weight_decay=-1), ValueError, "Invalid weight_decay"),
    (lambda o, p: o.SGD(p, lr=0.1, nesterov=True), ValueError, "Nesterov"),
    (lambda o, p: o.Adam(p, betas=(1.0, 0.9)), ValueError, "beta parameter at index 0"),
    (lambda o, p: o.Adam(p, betas=(0.9, -0.1)), ValueError, "beta parameter at index 1"),
    (lambda o, p: o.Adam(p, eps=-1.0), ValueError, "epsilon"),
    (lambda o, p: o.AdamW(p, weight_decay=-1.0), ValueError, "weight_decay"),
    (lambda o, p: o.SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda o, p: o.SGD(p[0], lr=0.1), TypeError, "iterable of Tensors"),
    (lambda o, p: o.SGD([{"params": set(p)}], lr=0.1), TypeError, "ordered collections"),
    (lambda o, p: o.SGD([p[0], 3.0], lr=0.1), TypeError, "can only optimize Tensors"),
    (lambda o, p: o.SGD([p[0] * 2], lr=0.1), ValueError, "non-leaf"),
    (lambda o, p: o.SGD([{"params": p[:2]}, {"params": p[1:]}], lr=0.1), ValueError,
     "more than one parameter group"),
])
def test_errors_match_torch(make, exc, match):
    ep, tp = make_params()
    with pytest.raises(exc, match=match):
        make(optim, ep)
    with pytest.raises(exc):  # torch raises the same error type for the same input
        make(torch.optim, tp)


def test_implementation_flags():
    ep, tp = make_params()
    with pytest.raises(RuntimeError, match="differentiable"):
        optim.SGD(ep, differentiable=True)
    for o, p in ((optim, ep), (torch.optim, tp)):
        for cls in (o.Adam, o.SGD):
            with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
                cls(p, lr=0.1, fused=True, foreach=True)
    with pytest.raises(RuntimeError, match="SGD: fused=True requires all the params to be floating point"):
        optim.SGD([ember.zeros(3, dtype=ember.int64)], lr=0.1, fused=True)
    with pytest.raises(RuntimeError, match="fused=True requires all the params to be floating point"):
        optim.AdamW([ember.zeros(3, dtype=ember.int64)], fused=True)
    tint = torch.zeros(3, dtype=torch.int64)
    to = torch.optim.AdamW([tint], fused=True)
    tint.grad = torch.ones(3, dtype=torch.int64)
    with pytest.raises(RuntimeError, match="requires all the params to be floating point"):
        to.step()   # torch checks at the first step
    eo = optim.Adam(ep, capturable=True, fused=False)
    for p in ep:
        p.grad = ember.ones_like(p)
    with pytest.raises(RuntimeError, match="capturable=True needs the multi-tensor step"):
        eo.step()


def test_duplicate_param_in_group_warns():
    ep, _ = make_params()
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([ep[0], ep[0]], lr=0.1)


def test_add_param_group():
    ep, _ = make_params()
    eo = optim.Adam(ep[:2], lr=0.01)
    eo.add_param_group({"params": ep[2], "lr": 0.5})
    assert len(eo.param_groups) == 2 and eo.param_groups[1]["params"] == [ep[2]]
    assert eo.param_groups[1]["betas"] == (0.9, 0.999) and eo.param_groups[1]["lr"] == 0.5
    with pytest.raises(ValueError, match="more than one parameter group"):
        eo.add_param_group({"params": [ep[0]]})
    with pytest.raises(TypeError, match="must be a dict"):
        eo.add_param_group([ep[0]])


def test_named_params():
    ep, tp = make_params()
    eo = optim.SGD([("a", ep[0]), ("b", ep[1])], lr=0.1)
    to = torch.optim.SGD([("a", tp[0]), ("b", tp[1])], lr=0.1)
    assert eo.param_groups[0]["param_names"] == ["a", "b"]
    assert eo.state_dict()["param_groups"][0]["param_names"] == to.state_dict()["param_groups"][0]["param_names"]


def test_load_state_dict_mismatch_errors():
    ep, _ = make_params()
    eo = optim.SGD(ep, lr=0.1, momentum=0.9)
    other = optim.SGD([{"params": ep[:1]}, {"params": ep[1:]}], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        eo.load_state_dict(other.state_dict())
    smaller = optim.SGD(ep[:2], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        eo.load_state_dict(smaller.state_dict())
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        eo.load_state_dict({"foo": 1})


def test_step_hooks():
    ep, _ = make_params()
    eo = optim.SGD(ep, lr=0.1)
    for p in ep:
        p.grad = ember.ones_like(p)
    calls = []
    h1 = eo.register_step_pre_hook(lambda opt, args, kwargs: calls.append(("pre", opt is eo, args, kwargs)))
    h2 = eo.register_step_post_hook(lambda opt, args, kwargs: calls.append(("post", opt is eo)))
    g = optim.register_optimizer_step_post_hook(lambda opt, args, kwargs: calls.append(("global_post",)))
    try:
        eo.step()
    finally:
        g.remove()
    assert calls == [("pre", True, (), {}), ("post", True), ("global_post",)]
    h1.remove()
    h2.remove()
    calls.clear()
    eo.step()
    assert calls == []

    # a pre-hook may replace the arguments
    seen = []
    eo.register_step_pre_hook(lambda opt, args, kwargs: ((), {"closure": lambda: seen.append(1) or 7.0}))
    assert eo.step() == 7.0 and seen == [1]


def test_scheduler_sets_lr_used_by_step():
    ep, tp = make_params()
    eo = optim.SGD(ep, lr=1.0, momentum=0.9)
    to = torch.optim.SGD(tp, lr=1.0, momentum=0.9, foreach=False)
    es = optim.lr_scheduler.StepLR(eo, step_size=2, gamma=0.5)
    ts = torch.optim.lr_scheduler.StepLR(to, step_size=2, gamma=0.5)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no call-order warning: optimizer.step() comes first
        for _ in range(5):
            set_grads(ep, tp, rng)
            eo.step()
            to.step()
            es.step()
            ts.step()
    assert_params(ep, tp)
    assert es.get_last_lr() == ts.get_last_lr()


def test_tensor_lr():
    ep, tp = make_params()
    eo = optim.SGD(ep, lr=ember.tensor(0.1, dtype=ember.float64), momentum=0.9)
    to = torch.optim.SGD(tp, lr=torch.tensor(0.1, dtype=torch.float64), momentum=0.9, foreach=False)
    rng = np.random.default_rng(0)
    for _ in range(3):
        set_grads(ep, tp, rng)
        eo.step()
        to.step()
    assert_params(ep, tp)


def test_adam_step_count_and_bias_correction_by_hand():
    p = ember.tensor([1.0, -2.0], dtype=ember.float64, requires_grad=True)
    o = optim.Adam([p], lr=0.1, betas=(0.9, 0.99), eps=1e-8)
    p.grad = ember.tensor([0.5, -1.0], dtype=ember.float64)
    o.step()
    # first step: m_hat = g, v_hat = g*g -> update = lr * g / (|g| + eps)
    expected = np.array([1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -2.0 + 0.1 * 1.0 / (1.0 + 1e-8)])
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-7)
    assert o.state[p]["step"].item() == 1.0


# ---- gradient clipping (ember.nn.utils) ----------------------------------------------------------

def grads_pair(dtype="float64", seed=0, scale=1.0, none_at=()):
    ep, tp = make_params(dtype, seed)
    rng = np.random.default_rng(seed + 10)
    for i, (e, t) in enumerate(zip(ep, tp)):
        if i in none_at:
            continue
        g = (scale * rng.standard_normal(tuple(e.shape))).astype(dtype)
        e.grad, t.grad = ember.tensor(g.copy()), torch.tensor(g.copy())
    return ep, tp


@pytest.mark.parametrize("norm_type", [2.0, 1, float("inf"), 0.5, 3.0])
@pytest.mark.parametrize("max_norm", [0.3, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    from ember.nn.utils import clip_grad_norm_
    ep, tp = grads_pair(none_at=(1,))
    en = clip_grad_norm_(ep, max_norm, norm_type=norm_type)
    tn = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type=norm_type, foreach=False)
    assert isinstance(en, ember.Tensor) and en.shape == () and en.dtype is ember.float64
    np.testing.assert_allclose(en.item(), tn.item(), rtol=1e-12)
    for e, t in zip(ep, tp):
        if t.grad is None:
            assert e.grad is None
        else:
            np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-15)
    if max_norm > 100:  # the coefficient is clamped to 1: gradients are never scaled up
        _, tp0 = grads_pair(none_at=(1,))
        np.testing.assert_array_equal(ep[0].grad.numpy(), tp0[0].grad.numpy())


def test_clip_grad_norm_float32_single_tensor_and_empty():
    from ember.nn.utils import clip_grad_norm_
    ep, tp = grads_pair("float32", scale=5.0)
    en = clip_grad_norm_(ep[0], 1.0)
    tn = torch.nn.utils.clip_grad_norm_(tp[0], 1.0)
    assert en.dtype is ember.float32
    np.testing.assert_allclose(en.item(), tn.item(), rtol=1e-6)
    np.testing.assert_allclose(ep[0].grad.numpy(), tp[0].grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(float(ember.norm(ep[0].grad, 2.0)), 1.0, rtol=1e-5)
    assert clip_grad_norm_([], 1.0).item() == torch.nn.utils.clip_grad_norm_([], 1.0).item() == 0.0
    with pytest.warns(UserWarning, match="empty generator"):
        clip_grad_norm_((p for p in []), 1.0)


def test_clip_grad_norm_nonfinite():
    from ember.nn.utils import clip_grad_norm_
    ep, tp = grads_pair()
    ep[0].grad[0, 0] = float("inf")
    tp[0].grad[0, 0] = float("inf")
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ep, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(tp, 1.0, error_if_nonfinite=True)
    en = clip_grad_norm_(ep, 1.0)
    tn = torch.nn.utils.clip_grad_norm_(tp, 1.0, foreach=False)
    assert math.isinf(en.item()) and math.isinf(tn.item())
    for e, t in zip(ep, tp):
        np.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())  # NaN/0 pattern included


def test_clip_grad_value_matches_torch():
    from ember.nn.utils import clip_grad_value_
    ep, tp = grads_pair(scale=2.0, none_at=(2,))
    g_ids = [id(p.grad) for p in ep[:2]]
    clip_grad_value_(ep, 0.7)
    torch.nn.utils.clip_grad_value_(tp, 0.7, foreach=False)
    assert [id(p.grad) for p in ep[:2]] == g_ids  # in place
    for e, t in zip(ep[:2], tp[:2]):
        np.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())
    assert ep[2].grad is None


def test_get_total_norm_and_clip_grads_with_norm():
    from ember.nn.utils import clip_grads_with_norm_, get_total_norm
    ep, tp = grads_pair()
    en = get_total_norm([p.grad for p in ep], 2.0)
    tn = torch.nn.utils.get_total_norm([p.grad for p in tp], 2.0)
    np.testing.assert_allclose(en.item(), tn.item(), rtol=1e-12)
    clip_grads_with_norm_(ep, 0.5, en)
    torch.nn.utils.clip_grads_with_norm_(tp, 0.5, tn, foreach=False)
    for e, t in zip(ep, tp):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_training_loop_with_module_clipping_and_scheduler():
    """nn.Linear + AdamW + clip_grad_norm_ + OneCycleLR: the whole loop tracks torch's."""
    import ember.nn as enn
    from ember.nn.utils import clip_grad_norm_
    torch.manual_seed(0)
    tm = torch.nn.Linear(4, 3).double()
    em = enn.Linear(4, 3).to(ember.float64)
    em.load_state_dict({k: ember.tensor(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    eo = optim.AdamW(em.parameters(), lr=0.05, weight_decay=0.1)
    to = torch.optim.AdamW(tm.parameters(), lr=0.05, weight_decay=0.1, foreach=False)
    es = optim.lr_scheduler.OneCycleLR(eo, max_lr=0.1, total_steps=12)
    ts = torch.optim.lr_scheduler.OneCycleLR(to, max_lr=0.1, total_steps=12)
    rng = np.random.default_rng(0)
    for _ in range(10):
        x = rng.standard_normal((8, 4))
        y = rng.standard_normal((8, 3))
        el = ((em(ember.tensor(x)) - ember.tensor(y)) ** 2).mean()
        tl = ((tm(torch.tensor(x)) - torch.tensor(y)) ** 2).mean()
        eo.zero_grad()
        to.zero_grad()
        el.backward()
        tl.backward()
        en = clip_grad_norm_(em.parameters(), 0.5)
        tn = torch.nn.utils.clip_grad_norm_(tm.parameters(), 0.5, foreach=False)
        np.testing.assert_allclose(en.item(), tn.item(), rtol=1e-10)
        eo.step()
        to.step()
        es.step()
        ts.step()
    for (name, ep), tp in zip(em.named_parameters(), tm.parameters()):
        np.testing.assert_allclose(ep.detach().numpy(), tp.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    assert type(em.weight).__name__ == "Parameter"  # still the module's Parameter object


# ---- the multi-tensor ops behind Adam and clip_grad_norm_ (ember.ops.optim) -----------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ecls,kwargs", [(optim.Adam, c) for c in ADAM_CASES] + [(optim.AdamW, c) for c in ADAMW_CASES])
def test_multi_tensor_step_is_the_single_tensor_loop_bit_for_bit(ecls, kwargs, dtype):
    # the default step (one _fused_adam(w)_ op) against fused=False (the loop of ops), with an empty,
    # a 0-d and a transposed parameter, and a parameter without a gradient at one step
    shapes = SHAPES + [(0, 2), (), (4, 3)]
    rng = np.random.default_rng(3)
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    runs = []
    for flags in (dict(), dict(fused=False), dict(foreach=True), dict(foreach=False)):
        ps = [ember.tensor(a.copy(), requires_grad=True) for a in init]
        ps[-1] = ember.tensor(init[-1].T.copy()).t().detach().requires_grad_()
        eo = ecls(ps, **kwargs, **flags)
        grng = np.random.default_rng(4)
        for step in range(4):
            for i, p in enumerate(ps):
                p.grad = None if (step == 1 and i == 1) else ember.tensor(grng.standard_normal(p.shape).astype(dtype))
            eo.step()
        runs.append([p.detach().numpy().tobytes() for p in ps] +
                    [v.numpy().tobytes() for p in ps for v in eo.state[p].values()])
    assert runs[0] == runs[1] == runs[2] == runs[3]


def test_fused_adamw_on_the_cpu_matches_torch_fused():
    ep, tp = make_params("float32")
    kw = dict(lr=0.02, weight_decay=0.1, amsgrad=True)
    eo, to = optim.AdamW(ep, fused=True, **kw), torch.optim.AdamW(tp, fused=True, **kw)
    rng = np.random.default_rng(0)
    for _ in range(5):
        set_grads(ep, tp, rng)
        eo.step()
        to.step()
    assert_params(ep, tp, rtol=1e-5, atol=1e-6)
    assert_state(eo, to, rtol=1e-5, atol=1e-6)   # 'step': a float32 tensor, as torch's fused


def test_capturable_adam_on_the_cpu_reads_tensor_lr_and_steps():
    # capturable keeps the step count (and a tensor lr) as tensors the kernel reads; ember allows it on
    # every device (torch only on accelerators), and the result is the plain step's
    ep, tp = make_params()
    ep2 = [p.detach().clone().requires_grad_() for p in ep]
    lr = ember.tensor(0.05, dtype=ember.float64)
    eo = optim.Adam(ep, lr=lr, capturable=True, weight_decay=0.1)
    eo2 = optim.Adam(ep2, lr=0.05, weight_decay=0.1)
    to = torch.optim.Adam(tp, lr=0.05, weight_decay=0.1, foreach=False)
    rng = np.random.default_rng(1)
    for k in range(4):
        set_grads(ep, tp, rng)
        copy_grads(ep, ep2)
        if k == 2:
            lr.fill_(0.01)      # a scheduler's in-place update
            eo2.param_groups[0]["lr"] = to.param_groups[0]["lr"] = 0.01
        eo.step()
        eo2.step()
        to.step()
    assert_params(ep, tp)
    for a, b in zip(ep, ep2):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert all(eo.state[p]["step"].item() == 4.0 for p in ep)


def _adam_lists(seed, dtype="float32", shapes=((3, 4), (5,), ()), amsgrad=False):
    rng = np.random.default_rng(seed)
    arrays = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(5)]
    arrays[3] = [np.abs(a) for a in arrays[3]]          # exp_avg_sq >= 0
    arrays[4] = [a + 0.5 for a in arrays[3]]            # max_exp_avg_sq >= exp_avg_sq
    e = [[ember.tensor(a.copy()) for a in arrays[k]] for k in range(5)]
    t = [[torch.tensor(a.copy()) for a in arrays[k]] for k in range(5)]
    steps = [float(k + 1) for k in range(len(shapes))]
    e.append([ember.tensor(s) for s in steps])
    t.append([torch.tensor(s) for s in steps])
    if not amsgrad:
        e[4] = t[4] = []
    return e, t


@pytest.mark.parametrize("name", ["_fused_adam_", "_fused_adamw_"])
@pytest.mark.parametrize("amsgrad,maximize,lr_tensor", [(False, False, False), (True, True, True)])
@pytest.mark.parametrize("found", [None, 0.0, 1.0])
def test_fused_adam_ops_match_torch(name, amsgrad, maximize, lr_tensor, found):
    e, t = _adam_lists(0, amsgrad=amsgrad)
    kw = dict(beta1=0.9, beta2=0.99, weight_decay=0.1, eps=1e-8, amsgrad=amsgrad, maximize=maximize)
    scale = 4.0 if found is not None else None
    e_extra = {} if scale is None else dict(grad_scale=ember.tensor(scale), found_inf=ember.tensor(found))
    t_extra = {} if scale is None else dict(grad_scale=torch.tensor(scale), found_inf=torch.tensor(found))
    before = [[x.numpy().copy() for x in lst] for lst in e]
    assert getattr(ember.ops, name)(*e, lr=ember.tensor(0.01) if lr_tensor else 0.01, **kw, **e_extra) is None
    getattr(torch, name)(*t, lr=torch.tensor(0.01) if lr_tensor else 0.01, **kw, **t_extra)
    for k, (el, tl) in enumerate(zip(e, t)):
        for x, y, b in zip(el, tl, before[k]):
            np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-6)
            if found == 1.0:    # an inf/nan was found: the step is skipped, nothing written
                np.testing.assert_array_equal(x.numpy(), b)
            written = k in (0, 2, 3, 4) or (k == 1 and scale is not None)
            assert x._version == (1 if written and found != 1.0 else 0)


def test_fused_adam_float16_and_bfloat16_compute_in_float32():
    for dtype, tdt in ((ember.float16, torch.float16), (ember.bfloat16, torch.bfloat16)):
        e, t = _adam_lists(1)
        e = [[x.to(dtype) for x in lst] if k < 5 else lst for k, lst in enumerate(e)]
        t = [[x.to(tdt) for x in lst] if k < 5 else lst for k, lst in enumerate(t)]
        kw = dict(lr=0.01, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
        ember.ops._fused_adamw_(*e, **kw)
        torch._fused_adamw_(*t, **kw)
        for x, y in zip(e[0], t[0]):
            np.testing.assert_array_equal(x.float().numpy(), y.float().numpy())


def test_fused_adam_meta_errors():
    meta = ember.dispatch.OPS["_fused_adam_"].meta
    kw = dict(lr=0.01, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)

    def call(e, **over):
        k = {**kw, **over}
        return meta(*e, k["lr"], k["beta1"], k["beta2"], k["weight_decay"], k["eps"], k["amsgrad"], k["maximize"],
                    k.get("grad_scale"), k.get("found_inf"))

    e, _ = _adam_lists(2)
    assert call(e) is None
    cases = [
        (lambda e: e[1].pop(), RuntimeError, "expected grads to hold one tensor per parameter"),
        (lambda e: e[5].pop(), RuntimeError, "expected state_steps to hold one tensor per parameter"),
        (lambda e: e[4].append(ember.zeros(3)), RuntimeError, "expected max_exp_avg_sqs to be empty"),
        (lambda e: e[2].__setitem__(0, ember.zeros(3, 4, dtype=ember.float64)), RuntimeError,
         r"expected scalar type ember.float32 but found ember.float64 \(exp_avgs\[0\]\)"),
        (lambda e: e[3].__setitem__(1, ember.zeros(6)), RuntimeError, r"exp_avg_sqs\[1\] of the parameter's shape"),
        (lambda e: e[5].__setitem__(2, ember.zeros(2)), RuntimeError, "a Tensor with 2 elements"),
        (lambda e: e[5].__setitem__(2, 3.0), TypeError, r"state_steps\[2\] to be a Tensor"),
        (lambda e: [lst.__setitem__(0, ember.zeros(3, 4, dtype=ember.int64)) for lst in e[:4]], NotImplementedError,
         "not implemented for ember.int64"),
    ]
    for edit, exc, match in cases:
        e, _ = _adam_lists(2)
        edit(e)
        with pytest.raises(exc, match=match):
            call(e)
    e, _ = _adam_lists(2)
    with pytest.raises(RuntimeError, match="expected max_exp_avg_sqs to hold one tensor per parameter"):
        call(e, amsgrad=True)
    with pytest.raises(RuntimeError, match="lr: a Tensor with 2 elements"):
        call(e, lr=ember.zeros(2))
    with pytest.raises(RuntimeError, match="expected grad_scale of dtype float32"):
        call(e, grad_scale=ember.tensor(1.0, dtype=ember.float64))
    # torch refuses the same inputs (a shape mismatch it does not check)
    _, t = _adam_lists(2)
    t[1].pop()
    with pytest.raises(RuntimeError):
        torch._fused_adam_(*t, **kw)


def test_foreach_add_():
    ts = [ember.tensor(1.5), ember.zeros(2, 3), ember.tensor([1, 2], dtype=ember.int32), ember.tensor(2.0).to(ember.float16)]
    ref = [torch.tensor(1.5), torch.zeros(2, 3), torch.tensor([1, 2], dtype=torch.int32), torch.tensor(2.0).half()]
    assert ember.ops._foreach_add_(ts, 3) is None
    torch._foreach_add_(ref, 3)
    for e, t in zip(ts, ref):
        assert e.tolist() == t.tolist() and e._version == 1
    meta = ember.dispatch.OPS["_foreach_add_"].meta
    with pytest.raises(RuntimeError, match="result type ember.float32 can't be cast to the desired output type"):
        meta([ember.zeros(2), ember.zeros(2, dtype=ember.int64)], 1.5)
    with pytest.raises(RuntimeError, match="can't be cast"):
        torch._foreach_add_([torch.zeros(2, dtype=torch.int64)], 1.5)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 0.0, 3.0, -1.0])
def test_total_norm_op_matches_torch_and_the_composite(norm_type):
    from ember.ops.optim import total_norm_composite
    rng = np.random.default_rng(5)
    # (a 0-d tensor would do, but for p = 3 or -1 ember.norm of a 0-d tensor raises TypeError in NumPy)
    arrays = [rng.standard_normal(s) for s in [(3, 4), (5,), (1,), (2, 1, 3)]]
    for dtypes in (["float32"] * 4, ["float64", "float32", "float32", "float64"], ["float16", "bfloat16", "float32",
                                                                                 "float16"]):
        e = [ember.tensor(a).to(getattr(ember, d)) for a, d in zip(arrays, dtypes)]
        t = [torch.tensor(a).to(getattr(torch, d)) for a, d in zip(arrays, dtypes)]
        got = ember.ops._total_norm(e, norm_type)
        want = torch.nn.utils.get_total_norm(t, norm_type)
        shape, dtype = ember.dispatch.OPS["_total_norm"].meta(e, norm_type)
        assert got.shape == shape == () and got.dtype is dtype and str(want.dtype).endswith(dtype.name)
        np.testing.assert_allclose(got.float().item(), want.float().item(), rtol=1e-2 if "float16" in dtypes else 1e-6)
        assert got.numpy().tobytes() == total_norm_composite(e, norm_type).numpy().tobytes()
    meta = ember.dispatch.OPS["_total_norm"].meta
    with pytest.raises(RuntimeError, match="Expected a floating point or complex tensor as input. Got ember.int64"):
        meta([ember.zeros(2), ember.zeros(2, dtype=ember.int64)], 2.0)
    with pytest.raises(RuntimeError, match="cannot compute the inf norm on an empty tensor"):
        meta([ember.zeros(2), ember.zeros(0)], float("inf"))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_clip_grads_with_norm_op_matches_torch_and_the_composite(dtype):
    from ember.ops.optim import clip_grads_composite_
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(3, 4), (5,), (), (0,)]]
    for total in (0.5, 3.0, 1e3):
        e = [ember.tensor(a.copy()) for a in arrays]
        e2 = [ember.tensor(a.copy()) for a in arrays]
        t = [torch.tensor(a.copy()) for a in arrays]
        te = ember.tensor(total).to(getattr(ember, dtype))
        tt = torch.tensor(total).to(getattr(torch, dtype))
        assert ember.ops._clip_grads_with_norm_(e, 2.0, te) is None
        clip_grads_composite_(e2, 2.0, te)
        torch._foreach_mul_(t, torch.clamp(2.0 / (tt + 1e-6), max=1.0))
        for x, x2, y in zip(e, e2, t):
            assert x.numpy().tobytes() == x2.numpy().tobytes()
            np.testing.assert_array_equal(x.numpy(), y.numpy())
            assert x._version == 1
    meta = ember.dispatch.OPS["_clip_grads_with_norm_"].meta
    with pytest.raises(RuntimeError, match="expected total_norm to be a 0-dim tensor"):
        meta([ember.zeros(2)], 1.0, ember.ones(1))
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type ember.int64"):
        meta([ember.zeros(2, dtype=ember.int64)], 1.0, ember.tensor(2.0))


@pytest.mark.parametrize("foreach", [None, True, False])
def test_clip_grad_norm_foreach_flags_agree(foreach):
    from ember.nn.utils import clip_grad_norm_
    ep, tp = grads_pair("float32", scale=3.0)
    en = clip_grad_norm_(ep, 1.0, foreach=foreach)
    tn = torch.nn.utils.clip_grad_norm_(tp, 1.0, foreach=False)
    np.testing.assert_allclose(en.item(), tn.item(), rtol=1e-6)
    for e, t in zip(ep, tp):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-6)


# ---- the multi-tensor SGD op behind SGD on CUDA and fused=True (ember.ops._fused_sgd_) --------------

SGD_OP_CASES = [dict(momentum=0.0, weight_decay=0.0, dampening=0.0, nesterov=False, maximize=False),
                dict(momentum=0.9, weight_decay=0.0, dampening=0.0, nesterov=False, maximize=False),
                dict(momentum=0.9, weight_decay=0.1, dampening=0.0, nesterov=True, maximize=False),
                dict(momentum=0.8, weight_decay=0.05, dampening=0.3, nesterov=False, maximize=True),
                dict(momentum=0.0, weight_decay=0.1, dampening=0.0, nesterov=False, maximize=True)]


def _sgd_lists(seed, dtype="float32", shapes=((37, 29), (5,), (), (1030,)), momentum=True):
    """[params, grads, momentum buffers] as ember and torch lists (no buffers without momentum)."""
    rng = np.random.default_rng(seed)
    arrays = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(3)]
    e = [[ember.tensor(a.copy()) for a in arrays[k]] for k in range(3)]
    t = [[torch.tensor(a.copy()) for a in arrays[k]] for k in range(3)]
    if not momentum:
        e[2] = t[2] = []
    return e, t


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(SGD_OP_CASES)))
@pytest.mark.parametrize("first,lr_tensor,found", [(False, False, None), (True, True, None), (False, True, 0.0),
                                                   (True, False, 1.0)])
def test_fused_sgd_op_matches_torch(dtype, case, first, lr_tensor, found):
    kw = dict(SGD_OP_CASES[case], is_first_step=first)
    e, t = _sgd_lists(case, dtype, momentum=kw["momentum"] != 0)
    scale = 4.0 if found is not None else None
    e_extra = {} if scale is None else dict(grad_scale=ember.tensor(scale), found_inf=ember.tensor(found))
    t_extra = {} if scale is None else dict(grad_scale=torch.tensor(scale), found_inf=torch.tensor(found))
    before = [[x.numpy().copy() for x in lst] for lst in e]
    assert ember.ops._fused_sgd_(*e, lr=ember.tensor(0.05) if lr_tensor else 0.05, **kw, **e_extra) is None
    torch._fused_sgd_(*t, lr=torch.tensor(0.05) if lr_tensor else 0.05, **kw, **t_extra)
    # torch's vectorised CPU loop fuses multiply-adds where ember (as its single-tensor SGD) rounds twice
    tol = 2e-6 if dtype == "float32" else 1e-14
    for k, (el, tl) in enumerate(zip(e, t)):
        for x, y, b in zip(el, tl, before[k]):
            np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=tol, atol=tol)
            if found == 1.0:    # an inf/nan was found: the step is skipped, nothing written
                np.testing.assert_array_equal(x.numpy(), b)
            else:
                assert not np.array_equal(x.numpy(), b) or k == 1 and scale is None or x.numel() == 0
            written = k in (0, 2) or (k == 1 and scale is not None)
            assert x._version == (1 if written and found != 1.0 else 0)


def _sgd_reference(p, g, buf, lr, weight_decay, momentum, dampening, nesterov, maximize, is_first_step):
    """The step in float32 from the (16-bit) values, each result rounded once to p's dtype: torch's fused SGD
    with its CPU bug fixed (pytorch#191763: torch 2.13 leaves the vectorised blocks of float16/bfloat16
    parameters unwritten) and its CUDA kernel."""
    f = np.float32
    P, G = p.float().numpy(), g.float().numpy()
    G = -G if maximize else G
    if weight_decay:
        G = G + P * f(weight_decay)
    B = None
    if momentum:
        B = G if is_first_step else buf.float().numpy() * f(momentum) + G * f(1 - dampening)
        G = G + B * f(momentum) if nesterov else B
    return P - G * f(lr), B


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("case", [1, 2, 3])
@pytest.mark.parametrize("first", [False, True])
def test_fused_sgd_op_float16_and_bfloat16_compute_in_float32(dtype, case, first):
    kw = dict(SGD_OP_CASES[case], is_first_step=first)
    e, _ = _sgd_lists(10 + case)
    e = [[x.to(getattr(ember, dtype)) for x in lst] for lst in e]
    want = [_sgd_reference(p, g, b, 0.05, **kw) for p, g, b in zip(*e)]
    ember.ops._fused_sgd_(*e, lr=0.05, **kw)
    for p, b, (wp, wb) in zip(e[0], e[2], want):
        np.testing.assert_array_equal(p.float().numpy(), ember.tensor(wp).to(p.dtype).float().numpy())
        np.testing.assert_array_equal(b.float().numpy(), ember.tensor(wb).to(p.dtype).float().numpy())


def test_fused_sgd_meta_errors():
    meta = ember.dispatch.OPS["_fused_sgd_"].meta
    kw = dict(weight_decay=0.0, momentum=0.9, lr=0.01, dampening=0.0, nesterov=False, maximize=False,
              is_first_step=False)

    def call(e, **over):
        k = {**kw, **over}
        return meta(*e, k["weight_decay"], k["momentum"], k["lr"], k["dampening"], k["nesterov"], k["maximize"],
                    k["is_first_step"], k.get("grad_scale"), k.get("found_inf"))

    def lists():
        return _sgd_lists(2, shapes=((3, 4), (5,), ()))

    assert call(lists()[0]) is None
    assert call(lists()[0][:2] + [[]], momentum=0.0) is None
    cases = [
        (lambda e: e[1].pop(), {}, RuntimeError, r"expected grads to hold one tensor per parameter \(3\), got 2"),
        (lambda e: e[2].clear(), {}, RuntimeError,
         r"expected momentum_buffer_list to hold one tensor per parameter \(3\), got 0"),
        (lambda e: None, dict(momentum=0.0), RuntimeError,
         "expected momentum_buffer_list to be empty with momentum=0, got 3 tensors"),
        (lambda e: e[2].__setitem__(0, ember.zeros(3, 4, dtype=ember.float64)), {}, RuntimeError,
         r"expected scalar type ember.float32 but found ember.float64 \(momentum_buffer_list\[0\]\)"),
        (lambda e: e[1].__setitem__(1, ember.zeros(6)), {}, RuntimeError,
         r"expected grads\[1\] of the parameter's shape \[5\], got \[6\]"),
        (lambda e: [lst.__setitem__(0, ember.zeros(3, 4, dtype=ember.int64)) for lst in e], {}, NotImplementedError,
         '"_fused_sgd_" not implemented for ember.int64'),
        (lambda e: None, dict(lr=ember.zeros(2)), RuntimeError, "_fused_sgd_: lr: a Tensor with 2 elements"),
        (lambda e: None, dict(grad_scale=ember.tensor(1.0, dtype=ember.float64)), RuntimeError,
         "expected grad_scale of dtype float32, got ember.float64"),
        (lambda e: None, dict(found_inf=ember.zeros(3)), RuntimeError, "found_inf: a Tensor with 3 elements"),
    ]
    for edit, over, exc, match in cases:
        e, _ = lists()
        edit(e)
        with pytest.raises(exc, match=match):
            call(e, **over)
    # torch refuses the same inputs (a shape mismatch it does not check)
    for edit, over in ((lambda t: t[1].pop(), {}), (lambda t: t[2].clear(), {}), (lambda t: None, dict(momentum=0.0)),
                       (lambda t: t[2].__setitem__(0, torch.zeros(3, 4, dtype=torch.float64)), {})):
        _, t = lists()
        edit(t)
        with pytest.raises(RuntimeError):
            torch._fused_sgd_(*t, **{**kw, **over})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kwargs", SGD_CASES)
def test_fused_sgd_is_the_loop_bit_for_bit(kwargs, dtype):
    # SGD(fused=True) (the op, on the CPU) against the loop of ops, with an empty, a 0-d and a transposed
    # parameter, and parameters without a gradient at some steps: their buffers start later than the
    # others', so a step mixes first steps and later ones (two op calls)
    shapes = SHAPES + [(0, 2), (), (4, 3)]
    rng = np.random.default_rng(3)
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    runs, calls = [], []
    real = optim.sgd._fused_sgd_

    def counting(*args, **kw):
        calls.append((len(args[0]), kw["is_first_step"]))
        return real(*args, **kw)

    for flags in (dict(fused=True), dict(fused=False), dict(foreach=True), dict()):
        ps = [ember.tensor(a.copy(), requires_grad=True) for a in init]
        ps[-1] = ember.tensor(init[-1].T.copy()).t().detach().requires_grad_()
        eo = optim.SGD(ps, **kwargs, **flags)
        grng = np.random.default_rng(4)
        calls.clear()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(optim.sgd, "_fused_sgd_", counting)
            for step in range(4):
                for i, p in enumerate(ps):
                    no_grad = (step == 0 and i in (1, 4)) or (step == 2 and i == 0)
                    p.grad = None if no_grad else ember.tensor(grng.standard_normal(p.shape).astype(dtype))
                eo.step()
        if flags.get("fused"):
            if kwargs.get("momentum"):   # step 0: 4 first steps; 1: 2 first, 4 not; 2: 5 not; 3: 6 not
                assert calls == [(4, True), (4, False), (2, True), (5, False), (6, False)]
            else:
                assert calls == [(4, False), (6, False), (5, False), (6, False)]
        else:
            assert calls == []      # the loop of ops on the CPU (foreach: torch's foreach step)
        runs.append([p.detach().numpy().tobytes() for p in ps] +
                    [v.numpy().tobytes() for p in ps for v in eo.state[p].values()])
        assert all(("momentum_buffer" in eo.state[p]) == bool(kwargs.get("momentum")) for p in ps)
    assert runs[0] == runs[1] == runs[2] == runs[3]


def test_fused_sgd_on_the_cpu_matches_torch_fused_and_checkpoints():
    ep, tp = make_params("float32")
    kw = dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
    eo, to = optim.SGD(ep, fused=True, **kw), torch.optim.SGD(tp, fused=True, **kw)
    rng = np.random.default_rng(0)
    for _ in range(5):
        set_grads(ep, tp, rng)
        eo.step()
        to.step()
    assert_params(ep, tp, rtol=1e-5, atol=1e-6)
    assert_state(eo, to, rtol=1e-5, atol=1e-6)
    # the momentum buffers go through a state dict into a fused optimizer and the loop alike
    ep2 = [p.detach().clone().requires_grad_() for p in ep]
    ep3 = [p.detach().clone().requires_grad_() for p in ep]
    eo2, eo3 = optim.SGD(ep2, fused=True, **kw), optim.SGD(ep3, **kw)
    for o in (eo2, eo3):    # (a state dict references the buffers, as torch's: copies, so that each runs apart)
        sd = eo.state_dict()
        o.load_state_dict(dict(sd, state={k: {n: v.clone() for n, v in st.items()} for k, st in sd["state"].items()}))
    for _ in range(2):
        set_grads(ep, tp, rng)
        copy_grads(ep, ep2, ep3)
        for o in (eo, eo2, eo3, to):
            o.step()
    for a, b, c in zip(ep, ep2, ep3):
        assert a.detach().numpy().tobytes() == b.detach().numpy().tobytes() == c.detach().numpy().tobytes()
    assert_params(ep, tp, rtol=1e-5, atol=1e-6)
