"""ember.optim.lr_scheduler against torch.optim.lr_scheduler: learning-rate (and momentum) sequences."""
import math
import warnings

import numpy as np
import pytest
import torch

import ember
from ember import optim
from ember.optim import lr_scheduler as els
from ember.serialization import load as ember_load, save as ember_save

tls = torch.optim.lr_scheduler


def make_opts(kind="sgd", lrs=(0.1, 0.02), **kw):
    """The same optimizer (two param groups with different lrs) in ember and torch."""
    ep = [ember.zeros(2, requires_grad=True), ember.zeros(3, requires_grad=True)]
    tp = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
    eg = [{"params": [p], "lr": lr} for p, lr in zip(ep, lrs)]
    tg = [{"params": [p], "lr": lr} for p, lr in zip(tp, lrs)]
    if kind == "sgd":
        kw.setdefault("momentum", 0.9)
        return optim.SGD(eg, **kw), torch.optim.SGD(tg, **kw)
    if kind == "adam":
        return optim.Adam(eg, **kw), torch.optim.Adam(tg, **kw)
    return optim.AdamW(eg, **kw), torch.optim.AdamW(tg, **kw)


def step_opts(eo, to):
    """optimizer.step() before scheduler.step() (as PyTorch requires), with zero gradients."""
    for o in (eo, to):
        for g in o.param_groups:
            for p in g["params"]:
                p.grad = ember.zeros_like(p) if isinstance(p, ember.Tensor) else torch.zeros_like(p)
        o.step()


def group_values(opt, key):
    return [g[key] for g in opt.param_groups]


def run_both(es, ts, eo, to, steps, extra=("lr",)):
    """Steps both schedulers; checks every lr (and other group keys) exactly after each step."""
    seq = []
    assert es.get_last_lr() == ts.get_last_lr()
    for _ in range(steps):
        step_opts(eo, to)
        es.step()
        ts.step()
        assert es.get_last_lr() == ts.get_last_lr(), (es.last_epoch, es.get_last_lr(), ts.get_last_lr())
        for key in extra:
            assert group_values(eo, key) == group_values(to, key), key
        seq.append(es.get_last_lr()[0])
    assert getattr(es, "last_epoch", None) == getattr(ts, "last_epoch", None)
    return seq


CASES = {
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 0.95 ** e + 0.01 * (e % 3)),
    "LambdaLR-per-group": lambda m, o: m.LambdaLR(o, [lambda e: 1 / (1 + e), lambda e: 0.9 ** e]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.97),
    "MultiplicativeLR-per-group": lambda m, o: m.MultiplicativeLR(o, (lambda e: 0.97, lambda e: 0.9 + 0.01 * (e % 2))),
    "StepLR": lambda m, o: m.StepLR(o, step_size=4, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[3, 7, 7, 20], gamma=0.3),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=6),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=12),
    "LinearLR-decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=30),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=15, power=2.0),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10),
    "CosineAnnealingLR-eta_min": lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
}


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_torch(name):
    eo, to = make_opts()
    es, ts = CASES[name](els, eo), CASES[name](tls, to)
    assert group_values(eo, "initial_lr") == group_values(to, "initial_lr") == [0.1, 0.02]
    seq = run_both(es, ts, eo, to, 40)
    assert len(set(seq)) > 1  # the schedule really moves


def test_cosine_annealing_shape():
    eo, to = make_opts(lrs=(1.0, 1.0))
    es = els.CosineAnnealingLR(eo, T_max=10, eta_min=0.0)
    ts = tls.CosineAnnealingLR(to, T_max=10, eta_min=0.0)
    seq = run_both(es, ts, eo, to, 20)
    # the recursive form follows the closed form closely (and exactly matches torch above)
    for epoch, lr in enumerate(seq, start=1):
        assert abs(lr - 0.5 * (1 + math.cos(math.pi * epoch / 10))) < 1e-12
    assert abs(seq[9]) < 1e-12 and abs(seq[19] - 1.0) < 1e-12  # back up after T_max (period 2*T_max)


def test_sequential_lr_warmup_then_cosine():
    eo, to = make_opts(kind="adamw")
    es = els.SequentialLR(eo, [els.LinearLR(eo, start_factor=0.01, total_iters=5),
                               els.CosineAnnealingLR(eo, T_max=20, eta_min=1e-4)], milestones=[5])
    ts = tls.SequentialLR(to, [tls.LinearLR(to, start_factor=0.01, total_iters=5),
                               tls.CosineAnnealingLR(to, T_max=20, eta_min=1e-4)], milestones=[5])
    seq = run_both(es, ts, eo, to, 30)
    assert seq[3] > seq[0] and seq[4] == pytest.approx(0.1)


def test_sequential_lr_three_schedulers():
    eo, to = make_opts()
    es = els.SequentialLR(eo, [els.ConstantLR(eo, factor=0.5, total_iters=3), els.ExponentialLR(eo, gamma=0.9),
                               els.StepLR(eo, step_size=3, gamma=0.5)], milestones=[4, 10])
    ts = tls.SequentialLR(to, [tls.ConstantLR(to, factor=0.5, total_iters=3), tls.ExponentialLR(to, gamma=0.9),
                               tls.StepLR(to, step_size=3, gamma=0.5)], milestones=[4, 10])
    run_both(es, ts, eo, to, 25)


def test_chained_scheduler():
    eo, to = make_opts()
    es = els.ChainedScheduler([els.ConstantLR(eo, factor=0.1, total_iters=2), els.ExponentialLR(eo, gamma=0.9)])
    ts = tls.ChainedScheduler([tls.ConstantLR(to, factor=0.1, total_iters=2), tls.ExponentialLR(to, gamma=0.9)])
    run_both(es, ts, eo, to, 10)


ONE_CYCLE = [
    ("sgd", dict(max_lr=1.0, total_steps=40)),
    ("sgd", dict(max_lr=[0.5, 0.05], total_steps=40, anneal_strategy="linear", pct_start=0.25)),
    ("sgd", dict(max_lr=0.3, epochs=4, steps_per_epoch=10, three_phase=True)),
    ("adam", dict(max_lr=0.01, total_steps=40)),
    ("adam", dict(max_lr=0.02, total_steps=40, three_phase=True, anneal_strategy="linear", base_momentum=0.8,
                  max_momentum=0.92, div_factor=10.0, final_div_factor=100.0)),
    ("adamw", dict(max_lr=0.01, total_steps=40, cycle_momentum=False)),
]


@pytest.mark.parametrize("kind,kw", ONE_CYCLE, ids=[f"{k}-{i}" for i, (k, _) in enumerate(ONE_CYCLE)])
def test_one_cycle_matches_torch(kind, kw):
    eo, to = make_opts(kind)
    es, ts = els.OneCycleLR(eo, **kw), tls.OneCycleLR(to, **kw)
    extra = ["lr", "initial_lr", "max_lr", "min_lr"]
    if kw.get("cycle_momentum", True):
        extra += ["betas", "max_momentum", "base_momentum"] if kind != "sgd" else \
            ["momentum", "max_momentum", "base_momentum"]
    for key in extra:
        assert group_values(eo, key) == group_values(to, key), key
    seq = run_both(es, ts, eo, to, 39, extra=extra)
    assert max(seq) == pytest.approx(max(kw["max_lr"]) if isinstance(kw["max_lr"], list) else kw["max_lr"],
                                     rel=0.05)
    if kind != "sgd" and kw.get("cycle_momentum", True):
        assert len({g["betas"][0] for g in eo.param_groups}) >= 1
        assert isinstance(eo.param_groups[0]["betas"], tuple) and eo.param_groups[0]["betas"][1] == 0.999
    with pytest.raises(ValueError, match="Tried to step 41 times"):
        step_opts(eo, to)
        es.step()
        es.step()


def test_one_cycle_momentum_drives_adam_updates():
    """With cycle_momentum, the betas set by the scheduler are the ones Adam uses (params match torch)."""
    ep = ember.tensor(np.linspace(-1, 1, 6), requires_grad=True)
    tp = torch.tensor(np.linspace(-1, 1, 6), requires_grad=True)
    eo, to = optim.Adam([ep]), torch.optim.Adam([tp], foreach=False)
    es = els.OneCycleLR(eo, max_lr=0.05, total_steps=20, three_phase=True)
    ts = tls.OneCycleLR(to, max_lr=0.05, total_steps=20, three_phase=True)
    for i in range(19):
        g = np.sin(ep.detach().numpy() * (i + 1))
        ep.grad, tp.grad = ember.tensor(g), torch.tensor(g)
        eo.step()
        to.step()
        es.step()
        ts.step()
        assert eo.param_groups[0]["betas"] == to.param_groups[0]["betas"]
    np.testing.assert_allclose(ep.detach().numpy(), tp.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_reduce_lr_on_plateau():
    eo, to = make_opts()
    kw = dict(mode="min", factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=[0.01, 0.001])
    es, ts = els.ReduceLROnPlateau(eo, **kw), tls.ReduceLROnPlateau(to, **kw)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85]
    for m in metrics:
        step_opts(eo, to)
        es.step(m)
        ts.step(m)
        assert es.get_last_lr() == ts.get_last_lr()
        assert es.num_bad_epochs == ts.num_bad_epochs and es.best == ts.best
    assert es.get_last_lr()[0] < 0.1
    es2 = els.ReduceLROnPlateau(make_opts()[0], mode="max", threshold_mode="abs")
    assert es2.mode_worse == -math.inf
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        els.ReduceLROnPlateau(eo, factor=1.0)


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR",
                                  "SequentialLR"])
def test_state_dict_resume_through_checkpoint(name, tmp_path):
    def build(m, o):
        if name == "OneCycleLR":
            return m.OneCycleLR(o, max_lr=0.5, total_steps=30)
        if name == "SequentialLR":
            return m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, total_iters=4),
                                      m.CosineAnnealingLR(o, T_max=12)], milestones=[4])
        return CASES[name](m, o)

    eo, to = make_opts("adam")
    es, ts = build(els, eo), build(tls, to)
    run_both(es, ts, eo, to, 7, extra=("lr", "betas"))
    path = tmp_path / "ck.safetensors"
    ember_save({"optimizer": eo.state_dict(), "scheduler": es.state_dict()}, path)
    ck = ember_load(path)
    # torch's order: build the new scheduler, then load the optimizer's and the scheduler's states
    eo2, _ = make_opts("adam")
    es2 = build(els, eo2)
    eo2.load_state_dict(ck["optimizer"])
    es2.load_state_dict(ck["scheduler"])
    assert es2.last_epoch == ts.last_epoch and es2.get_last_lr() == ts.get_last_lr()
    run_both(es2, ts, eo2, to, 15, extra=("lr", "betas"))


def test_state_dict_contents_match_torch():
    eo, to = make_opts()
    es, ts = els.MultiStepLR(eo, milestones=[2, 5]), tls.MultiStepLR(to, milestones=[2, 5])
    esd, tsd = es.state_dict(), ts.state_dict()
    assert set(esd) <= set(tsd) and {"base_lrs", "last_epoch", "_step_count", "_last_lr", "milestones",
                                     "gamma"} <= set(esd)
    for k in esd:
        assert esd[k] == tsd[k], k
    lam = els.LambdaLR(make_opts()[0], lambda e: 1.0).state_dict()
    assert lam["lr_lambdas"] == [None, None]


def test_closed_form_epoch_argument_warns():
    eo, to = make_opts()
    es, ts = els.StepLR(eo, step_size=3, gamma=0.5), tls.StepLR(to, step_size=3, gamma=0.5)
    step_opts(eo, to)
    with pytest.warns(UserWarning, match="epoch parameter"):
        es.step(7)
    with pytest.warns(UserWarning):
        ts.step(7)
    assert es.get_last_lr() == ts.get_last_lr()


def test_warnings_and_errors():
    eo, _ = make_opts()
    es = els.StepLR(eo, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        es.step()
    with pytest.warns(UserWarning, match="get_last_lr"):
        es.get_lr()
    eo2, _ = make_opts()
    with pytest.raises(KeyError, match="initial_lr"):
        els.StepLR(eo2, step_size=2, last_epoch=3)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        els.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        els.LinearLR(eo2, start_factor=0)
    for cls in (els.LambdaLR, els.MultiplicativeLR):
        with pytest.raises(ValueError, match="^Expected 2 lr_lambdas, but got 1$"):
            cls(eo2, [lambda e: 1.0])
    with pytest.raises(ValueError, match="one more than the number of milestone"):
        els.SequentialLR(eo2, [els.ExponentialLR(eo2, 0.9)], milestones=[3])
    other, _ = make_opts()
    with pytest.raises(ValueError, match="same optimizer"):
        els.SequentialLR(eo2, [els.ExponentialLR(eo2, 0.9), els.ExponentialLR(other, 0.9)], milestones=[3])
    with pytest.raises(ValueError, match="total_steps OR"):
        els.OneCycleLR(eo2, max_lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy"):
        els.OneCycleLR(eo2, max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        els.OneCycleLR(eo2, max_lr=[0.1], total_steps=10)


def test_no_call_order_warning_when_optimizer_steps_first():
    eo, to = make_opts()
    es = els.ExponentialLR(eo, gamma=0.5)
    step_opts(eo, to)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        es.step()
    assert es.get_last_lr() == [0.05, 0.01]
