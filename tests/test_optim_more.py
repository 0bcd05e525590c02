"""ember.optim's RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam, ASGD, Rprop and LBFGS against torch.optim:
the same small model (Linear(4,3) -> tanh -> Linear(3,2), MSE on a fixed batch) from identical weights,
parameters compared after every step; state_dict layout and loading torch's state; argument checks."""
import numpy as np
import pytest
import torch

import ember
from ember import optim

SHAPES = [(3, 4), (3,), (2, 3), (2,)]


def make_model(dtype, seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.uniform(-1.0, 1.0, size=s).astype(dtype) for s in SHAPES]
    x = rng.standard_normal((8, 4)).astype(dtype)
    y = rng.standard_normal((8, 2)).astype(dtype)
    ep = [ember.tensor(a.copy(), requires_grad=True) for a in init]
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    return (ep, ember.tensor(x), ember.tensor(y)), (tp, torch.tensor(x), torch.tensor(y))


def loss_fn(params, x, y):
    w1, b1, w2, b2 = params
    out = (x @ w1.T + b1).tanh() @ w2.T + b2
    return ((out - y) ** 2).mean()


def closure_for(opt, model):
    params, x, y = model

    def closure():
        opt.zero_grad()
        loss = loss_fn(params, x, y)
        loss.backward()
        return loss
    return closure


def assert_close(ep, tp, tol):
    for e, t in zip(ep, tp):
        np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)


def run_steps(eo, to, em, tm, steps, tol, share_grads=None):
    """`steps` steps of both; the parameters compared after each. With `share_grads` (default: for float32)
    ember's params get torch's grads (after checking that ember's own agree), so that the comparison sees the
    optimizer's arithmetic and not the ulp differences of the two float32 forward/backward passes, which
    normalizing optimizers (RMSprop, Rprop, ...) amplify."""
    ec, tc = closure_for(eo, em), closure_for(to, tm)
    if share_grads is None:
        share_grads = em[0][0].dtype == ember.float32
    for _ in range(steps):
        if isinstance(to, torch.optim.LBFGS):
            el, tl = eo.step(ec), to.step(tc)
        else:
            el, tl = ec(), tc()
            if share_grads:
                for e, t in zip(em[0], tm[0]):
                    tg = t.grad.numpy()
                    np.testing.assert_allclose(e.grad.numpy(), tg, rtol=1e-4, atol=1e-5 * max(1.0, abs(tl.item())))
                    e.grad = ember.tensor(t.grad.numpy().copy())
            eo.step()
            to.step()
        assert abs(el.item() - tl.item()) <= max(tol * 10, 1e-5 * share_grads) * max(1.0, abs(tl.item()))
        assert_close(em[0], tm[0], tol)


CASES = [
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.005, centered=True, alpha=0.9)),
    ("RMSprop", dict(lr=0.005, centered=True, momentum=0.5, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.05, maximize=True, eps=1e-6)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.05, maximize=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, weight_decay=0.05, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01, weight_decay=0.05, betas=(0.9, 0.9))),
    ("RAdam", dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.01, maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-4, 0.2), maximize=True)),
    ("ASGD", dict(lr=0.05)),
    ("ASGD", dict(lr=0.05, t0=10, lambd=1e-3, alpha=0.6, weight_decay=0.01)),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trajectory_float32(name, kwargs):
    em, tm = make_model("float32")
    eo = getattr(optim, name)(em[0], **kwargs)
    to = getattr(torch.optim, name)(tm[0], foreach=False, **kwargs)
    run_steps(eo, to, em, tm, 50, 1e-6)


F64_CASES = [("RMSprop", dict(centered=True, momentum=0.9)), ("Adagrad", dict(lr_decay=0.01)), ("Adamax", dict()),
             ("NAdam", dict(weight_decay=0.01)), ("RAdam", dict(lr=0.01)), ("Adadelta", dict(weight_decay=0.01)),
             ("Rprop", dict()), ("ASGD", dict(t0=5))]


@pytest.mark.parametrize("name,kwargs", F64_CASES, ids=[n for n, _ in F64_CASES])
def test_trajectory_float64(name, kwargs):
    em, tm = make_model("float64", seed=1)
    eo = getattr(optim, name)(em[0], **kwargs)
    to = getattr(torch.optim, name)(tm[0], foreach=False, **kwargs)
    run_steps(eo, to, em, tm, 50, 1e-12)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_trajectory(line_search_fn, dtype="float64", tol=1e-10):
    em, tm = make_model(dtype, seed=2)
    kw = dict(lr=0.5 if line_search_fn is None else 1, max_iter=5, history_size=4, line_search_fn=line_search_fn)
    eo, to = optim.LBFGS(em[0], **kw), torch.optim.LBFGS(tm[0], **kw)
    run_steps(eo, to, em, tm, 10, tol)
    es, ts = eo.state_dict()["state"][0], to.state_dict()["state"][0]
    assert set(es) == set(ts)
    assert es["func_evals"] == ts["func_evals"] and es["n_iter"] == ts["n_iter"]


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_float32(line_search_fn):
    """float32 (each framework its own closure's grads, whose ulp differences L-BFGS amplifies): the same descent."""
    em, tm = make_model("float32", seed=2)
    kw = dict(max_iter=5, history_size=4, line_search_fn=line_search_fn)
    eo, to = optim.LBFGS(em[0], **kw), torch.optim.LBFGS(tm[0], **kw)
    ec, tc = closure_for(eo, em), closure_for(to, tm)
    for _ in range(4):
        el, tl = eo.step(ec), to.step(tc)
        assert abs(el.item() - tl.item()) <= 1e-3 * max(1.0, abs(tl.item()))
    assert_close(em[0], tm[0], 1e-2)
    assert str(eo.state[em[0][0]]["d"].dtype) == "ember.float32"


def test_lbfgs_options():
    em, tm = make_model("float64", seed=3)
    kw = dict(max_iter=7, max_eval=9, tolerance_grad=1e-3, tolerance_change=1e-4, history_size=2,
              line_search_fn="strong_wolfe")
    eo, to = optim.LBFGS(em[0], **kw), torch.optim.LBFGS(tm[0], **kw)
    run_steps(eo, to, em, tm, 6, 1e-10)
    assert eo.param_groups[0]["max_eval"] == 9
    assert optim.LBFGS(em[0]).param_groups[0]["max_eval"] == 25
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        optim.LBFGS([{"params": em[0][:2]}, {"params": em[0][2:]}])
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        optim.LBFGS(em[0], line_search_fn="armijo").step(closure_for(eo, em))


def to_ember(obj):
    if isinstance(obj, torch.Tensor):
        return ember.tensor(obj.detach().numpy().copy())
    if isinstance(obj, dict):
        return {k: to_ember(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_ember(v) for v in obj]
    return obj


SD_CASES = [("RMSprop", dict(momentum=0.9, centered=True)), ("Adagrad", dict(initial_accumulator_value=0.2)),
            ("Adamax", dict()), ("NAdam", dict(decoupled_weight_decay=True, weight_decay=0.1)), ("RAdam", dict()),
            ("Adadelta", dict()), ("Rprop", dict()), ("ASGD", dict(t0=3))]


@pytest.mark.parametrize("name,kwargs", SD_CASES, ids=[n for n, _ in SD_CASES])
def test_state_dict_layout_and_load(name, kwargs):
    em, tm = make_model("float32", seed=4)
    eo = getattr(optim, name)(em[0], **kwargs)
    to = getattr(torch.optim, name)(tm[0], foreach=False, **kwargs)
    run_steps(eo, to, em, tm, 5, 1e-6)
    es, ts = eo.state_dict(), to.state_dict()
    assert set(es["state"]) == set(ts["state"])
    for k, tst in ts["state"].items():
        est = es["state"][k]
        assert set(est) == set(tst)
        for key, tv in tst.items():
            ev = est[key]
            assert tuple(ev.shape) == tuple(tv.shape), key
            assert str(ev.dtype).split(".")[-1] == str(tv.dtype).split(".")[-1], key
            np.testing.assert_allclose(ev.numpy(), tv.numpy(), rtol=1e-6, atol=1e-6)
    assert len(es["param_groups"]) == len(ts["param_groups"])
    for eg, tg in zip(es["param_groups"], ts["param_groups"]):
        assert set(eg) == set(tg)
        for key in tg:
            if key != "foreach":
                assert eg[key] == tg[key], key
    # a fresh ember optimizer over torch's current weights, loaded with torch's state, continues as torch
    em2 = ([ember.tensor(t.detach().numpy().copy(), requires_grad=True) for t in tm[0]], em[1], em[2])
    eo2 = getattr(optim, name)(em2[0], **kwargs)
    eo2.load_state_dict(to_ember(to.state_dict()))
    run_steps(eo2, to, em2, tm, 10, 1e-6)


def test_lbfgs_load_torch_state():
    em, tm = make_model("float64", seed=5)
    kw = dict(max_iter=4, history_size=3, line_search_fn="strong_wolfe")
    to = torch.optim.LBFGS(tm[0], **kw)
    tc = closure_for(to, tm)
    for _ in range(3):
        to.step(tc)
    em2 = ([ember.tensor(t.detach().numpy().copy(), requires_grad=True) for t in tm[0]], em[1], em[2])
    eo = optim.LBFGS(em2[0], **kw)
    eo.load_state_dict(to_ember(to.state_dict()))
    run_steps(eo, to, em2, tm, 4, 1e-10)


BAD = [
    ("RMSprop", dict(lr=-1), "Invalid learning rate: -1"),
    ("RMSprop", dict(eps=-1e-3), "Invalid epsilon value: -0.001"),
    ("RMSprop", dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    ("RMSprop", dict(weight_decay=-1), "Invalid weight_decay value: -1"),
    ("RMSprop", dict(alpha=-0.1), "Invalid alpha value: -0.1"),
    ("Adagrad", dict(lr=-0.5), "Invalid learning rate: -0.5"),
    ("Adagrad", dict(lr_decay=-1), "Invalid lr_decay value: -1"),
    ("Adagrad", dict(initial_accumulator_value=-1), "Invalid initial_accumulator_value value: -1"),
    ("Adagrad", dict(eps=-1), "Invalid epsilon value: -1"),
    ("Adamax", dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    ("Adamax", dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    ("NAdam", dict(momentum_decay=-1), "Invalid momentum_decay value: -1"),
    ("NAdam", dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    ("RAdam", dict(eps=-1), "Invalid epsilon value: -1"),
    ("RAdam", dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    ("Adadelta", dict(rho=1.5), "Invalid rho value: 1.5"),
    ("Adadelta", dict(lr=-1), "Invalid learning rate: -1"),
    ("Rprop", dict(etas=(1.5, 2.0)), "Invalid eta values: 1.5, 2.0"),
    ("Rprop", dict(etas=(0.5, 0.9)), "Invalid eta values: 0.5, 0.9"),
    ("ASGD", dict(weight_decay=-1), "Invalid weight_decay value: -1"),
    ("ASGD", dict(lr=-2), "Invalid learning rate: -2"),
    ("LBFGS", dict(lr=-1), "Invalid learning rate: -1"),
]


@pytest.mark.parametrize("name,kwargs,msg", BAD, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BAD)])
def test_invalid_arguments(name, kwargs, msg):
    tp = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError) as tinfo:
        getattr(torch.optim, name)(tp, **kwargs)
    assert str(tinfo.value) == msg     # the message is torch's
    with pytest.raises(ValueError) as einfo:
        getattr(optim, name)([ember.zeros(2, requires_grad=True)], **kwargs)
    assert str(einfo.value) == msg


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop",
                                  "LBFGS"])
def test_defaults_match_torch(name):
    ep, tp = [ember.zeros(2, requires_grad=True)], [torch.zeros(2, requires_grad=True)]
    ed, td = getattr(optim, name)(ep).defaults, getattr(torch.optim, name)(tp).defaults
    assert set(ed) == set(td)
    for k in td:
        if k not in ("foreach", "fused"):
            assert ed[k] == td[k], k


def test_adagrad_state_created_eagerly():
    ep = [ember.zeros(3, requires_grad=True)]
    eo = optim.Adagrad(ep, initial_accumulator_value=0.5)
    st = eo.state_dict()["state"][0]
    assert st["step"].item() == 0 and str(st["step"].dtype) == "ember.float32"
    np.testing.assert_array_equal(st["sum"].numpy(), np.full(3, 0.5, np.float32))


def test_unsupported_flags_raise():
    p = [ember.zeros(2, requires_grad=True)]
    with pytest.raises(RuntimeError, match="capturable"):
        optim.RMSprop(p, capturable=True)
    with pytest.raises(RuntimeError, match="differentiable"):
        optim.NAdam(p, differentiable=True)
    optim.RAdam(p, foreach=True)    # accepted: ember runs the single-tensor loop
