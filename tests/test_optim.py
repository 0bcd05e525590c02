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


def test_unsupported_implementation_flags():
    ep, _ = make_params()
    with pytest.raises(RuntimeError, match="fused"):
        optim.Adam(ep, fused=True)
    with pytest.raises(RuntimeError, match="differentiable"):
        optim.SGD(ep, differentiable=True)
    optim.Adam(ep, foreach=True)  # accepted: ember's loop is used either way


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
