"""ember.distributions against torch.distributions (issue 19): log_prob, entropy, moments, cdf / icdf and their
gradients in float64, kl_divergence, sample shapes / dtypes, sampling moments (seeded, within 5 standard errors),
reparameterised gradients, transforms and argument validation."""
import math

import numpy as np
import pytest
import torch
import torch.distributions as TD

import ember
import ember.distributions as D
from ember.distributions import _samplers, _special

F64 = ember.float64
RTOL = 1e-10
RTOL_SPECIAL = 1e-8      # results through lgamma / digamma / erfinv / the incomplete gamma function


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    if isinstance(x, ember.Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def close(a, b, rtol=RTOL, atol=1e-12):
    a, b = _np(a), _np(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def et(a, grad=False):
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return ember.tensor(a.tolist(), dtype=ember.int64)
    return ember.tensor(a, dtype=F64, requires_grad=grad)


def tt(a, grad=False):
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return torch.tensor(a, dtype=torch.int64)
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


RS = np.random.RandomState(1234)


def _pos(*shape, lo=0.3, hi=3.0):
    return RS.uniform(lo, hi, size=shape)


def _spd(n, batch=()):
    a = RS.normal(size=batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def _tril(n, batch=()):
    a = np.tril(RS.normal(size=batch + (n, n)), -1)
    return a + np.eye(n) * RS.uniform(0.5, 2.0, size=batch + (n,))[..., None, :]


def _simplex(*shape):
    a = RS.uniform(0.1, 1.0, size=shape)
    return a / a.sum(-1, keepdims=True)


class Case:
    """A distribution built the same way from ember.distributions and torch.distributions.

    build(m, p): m is the distributions module, p a dict of the parameter tensors; values: points to score."""

    def __init__(self, name, build, params, values, nograd=(), rtol=RTOL, cdf=False):
        self.name, self.build, self.params, self.values = name, build, params, values
        self.nograd, self.rtol, self.cdf = set(nograd), rtol, cdf

    def make(self, lib, grad=True):
        conv = et if lib == "ember" else tt
        p = {k: conv(v, grad=grad and k not in self.nograd) for k, v in self.params.items()}
        return self.build(D if lib == "ember" else TD, p), p

    def __repr__(self):
        return self.name


CASES = [
    Case("normal", lambda m, p: m.Normal(p["loc"], p["scale"]),
         dict(loc=RS.normal(size=3), scale=_pos(3)), RS.normal(size=(4, 3)), cdf=True),
    Case("normal_broadcast", lambda m, p: m.Normal(p["loc"], p["scale"]),
         dict(loc=RS.normal(size=(2, 1)), scale=_pos(3)), RS.normal(size=(5, 2, 3)), cdf=True),
    Case("bernoulli_probs", lambda m, p: m.Bernoulli(probs=p["probs"]),
         dict(probs=RS.uniform(0.05, 0.95, size=(2, 3))), RS.randint(0, 2, size=(4, 2, 3)).astype(float)),
    Case("bernoulli_logits", lambda m, p: m.Bernoulli(logits=p["logits"]),
         dict(logits=RS.normal(size=3) * 2), RS.randint(0, 2, size=(4, 3)).astype(float)),
    Case("categorical_probs", lambda m, p: m.Categorical(probs=p["probs"]),
         dict(probs=RS.uniform(0.1, 2.0, size=(2, 4))), RS.randint(0, 4, size=(3, 2))),
    Case("categorical_logits", lambda m, p: m.Categorical(logits=p["logits"]),
         dict(logits=RS.normal(size=(3, 5))), RS.randint(0, 5, size=(2, 3))),
    Case("onehot", lambda m, p: m.OneHotCategorical(probs=p["probs"]),
         dict(probs=_simplex(2, 4)), np.eye(4)[RS.randint(0, 4, size=(3, 2))]),
    Case("mvn_cov", lambda m, p: m.MultivariateNormal(p["loc"], covariance_matrix=p["cov"]),
         dict(loc=RS.normal(size=(2, 3)), cov=_spd(3)), RS.normal(size=(4, 2, 3))),
    Case("mvn_tril", lambda m, p: m.MultivariateNormal(p["loc"], scale_tril=p["tril"]),
         dict(loc=RS.normal(size=3), tril=_tril(3, (2,))), RS.normal(size=(4, 1, 3))),
    Case("mvn_precision", lambda m, p: m.MultivariateNormal(p["loc"], precision_matrix=p["prec"]),
         dict(loc=RS.normal(size=(2, 3)), prec=_spd(3, (2,))), RS.normal(size=(4, 2, 3))),
    Case("uniform", lambda m, p: m.Uniform(p["low"], p["high"]),
         dict(low=np.array([-1.0, 0.0, 2.0]), high=np.array([1.0, 0.5, 5.0])),
         np.array([[-0.5, 0.1, 2.5], [0.9, 0.4, 4.9]]), cdf=True),
    Case("beta", lambda m, p: m.Beta(p["c1"], p["c0"]),
         dict(c1=_pos(3, lo=0.3, hi=4), c0=_pos(2, 1, lo=0.3, hi=4)), RS.uniform(0.01, 0.99, size=(4, 2, 3)),
         rtol=RTOL_SPECIAL),
    Case("gamma", lambda m, p: m.Gamma(p["conc"], p["rate"]),
         dict(conc=np.array([0.3, 1.0, 2.5, 9.0]), rate=_pos(2, 1)), _pos(3, 2, 4, lo=0.05, hi=8),
         rtol=RTOL_SPECIAL, cdf=True),
    Case("dirichlet", lambda m, p: m.Dirichlet(p["conc"]),
         dict(conc=_pos(2, 4, lo=0.3, hi=5)), _simplex(3, 2, 4), rtol=RTOL_SPECIAL),
    Case("exponential", lambda m, p: m.Exponential(p["rate"]),
         dict(rate=_pos(2, 3)), _pos(4, 2, 3, lo=0.0, hi=4), cdf=True),
    Case("poisson", lambda m, p: m.Poisson(p["rate"]),
         dict(rate=np.array([0.5, 3.0, 25.0])), RS.randint(0, 30, size=(4, 3)).astype(float), rtol=RTOL_SPECIAL),
    Case("binomial_probs", lambda m, p: m.Binomial(p["n"], probs=p["probs"]),
         dict(n=np.array([5.0, 10.0, 40.0]), probs=RS.uniform(0.1, 0.9, size=(2, 3))),
         np.array([[0.0, 3.0, 17.0], [5.0, 10.0, 40.0]]), nograd={"n"}, rtol=RTOL_SPECIAL),
    Case("binomial_logits", lambda m, p: m.Binomial(p["n"], logits=p["logits"]),
         dict(n=np.full(3, 12.0), logits=RS.normal(size=3)), np.array([[0.0, 6.0, 12.0]]), nograd={"n"},
         rtol=RTOL_SPECIAL),
    Case("independent", lambda m, p: m.Independent(m.Normal(p["loc"], p["scale"]), 1),
         dict(loc=RS.normal(size=(2, 3)), scale=_pos(2, 3)), RS.normal(size=(4, 2, 3))),
    Case("lognormal", lambda m, p: m.LogNormal(p["loc"], p["scale"]),
         dict(loc=RS.normal(size=3) * 0.5, scale=_pos(3, lo=0.2, hi=1.0)), _pos(2, 3, lo=0.1, hi=5), cdf=True),
    Case("transformed_affine_exp",
         lambda m, p: m.TransformedDistribution(m.Normal(p["loc"], p["scale"]),
                                                [m.transforms.AffineTransform(p["a"], p["b"]),
                                                 m.transforms.ExpTransform()]),
         dict(loc=RS.normal(size=3), scale=_pos(3), a=np.array(0.5), b=np.array(-1.5)),
         _pos(2, 3, lo=0.1, hi=5), cdf=True),
    Case("transformed_sigmoid",
         lambda m, p: m.TransformedDistribution(m.Normal(p["loc"], p["scale"]), m.transforms.SigmoidTransform()),
         dict(loc=RS.normal(size=3), scale=_pos(3)), RS.uniform(0.05, 0.95, size=(2, 3)), cdf=True),
    Case("transformed_independent_affine",
         lambda m, p: m.TransformedDistribution(m.Normal(p["loc"], p["scale"]),
                                                m.transforms.AffineTransform(p["a"], p["b"], event_dim=1)),
         dict(loc=RS.normal(size=(2, 3)), scale=_pos(2, 3), a=RS.normal(size=3), b=_pos(3)),
         RS.normal(size=(4, 2, 3))),
]


def _grads(params):
    return {k: v.grad for k, v in params.items() if v.grad is not None}


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_log_prob_and_its_gradients(case):
    ed, ep = case.make("ember")
    td, tp = case.make("torch")
    assert tuple(ed.batch_shape) == tuple(td.batch_shape) and tuple(ed.event_shape) == tuple(td.event_shape)
    el, tl = ed.log_prob(et(case.values)), td.log_prob(tt(case.values))
    close(el, tl, case.rtol)
    el.sum().backward()
    tl.sum().backward()
    eg, tg = _grads(ep), _grads(tp)
    assert set(eg) == set(tg) and eg
    for k in tg:
        close(eg[k], tg[k], case.rtol, atol=1e-10)


def _stat(d, name):
    try:
        v = getattr(d, name)
        return v() if name == "entropy" else v
    except NotImplementedError:
        return None


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_moments_and_entropy(case):
    ed, ep = case.make("ember")
    td, tp = case.make("torch")
    for name in ("mean", "mode", "variance", "stddev", "entropy"):
        t = _stat(td, name)
        if t is None:
            continue
        e = _stat(ed, name)
        close(e, t, case.rtol)
    te = _stat(td, "entropy")
    if te is not None and te.requires_grad:
        _stat(ed, "entropy").sum().backward()
        te.sum().backward()
        for k, g in _grads(tp).items():
            close(ep[k].grad, g, RTOL_SPECIAL, atol=1e-10)


@pytest.mark.parametrize("case", [c for c in CASES if c.cdf], ids=repr)
def test_cdf_and_icdf(case):
    ed, ep = case.make("ember")
    td, tp = case.make("torch")
    if case.name == "gamma":                             # torch's igamma has no derivative in concentration
        case = Case(case.name, case.build, case.params, case.values, {"conc"}, case.rtol)
        ed, ep = case.make("ember")
        td, tp = case.make("torch")
    ve, vt = et(case.values, grad=True), tt(case.values, grad=True)
    ec, tc = ed.cdf(ve), td.cdf(vt)
    close(ec, tc, case.rtol)
    ec.sum().backward()
    tc.sum().backward()
    close(ve.grad, vt.grad, case.rtol, atol=1e-10)
    for k, g in _grads(tp).items():
        close(ep[k].grad, g, case.rtol, atol=1e-10)
    if case.name == "gamma":
        return                                            # torch's Gamma has no icdf
    q = RS.uniform(0.02, 0.98, size=case.values.shape)
    close(ed.icdf(et(q)), td.icdf(tt(q)), RTOL_SPECIAL)
    ed, ep = case.make("ember")
    td, tp = case.make("torch")
    qe, qt = et(q, grad=True), tt(q, grad=True)
    ed.icdf(qe).sum().backward()
    td.icdf(qt).sum().backward()
    close(qe.grad, qt.grad, RTOL_SPECIAL)
    for k, g in _grads(tp).items():
        close(ep[k].grad, g, RTOL_SPECIAL, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_sample_shapes_dtypes_and_expand(case):
    ed, _ = case.make("ember", grad=False)
    td, _ = case.make("torch", grad=False)
    for shape in ((), (2, 3)):
        es, ts = ed.sample(shape), td.sample(shape)
        assert tuple(es.shape) == tuple(ts.shape) == tuple(shape) + tuple(td.batch_shape) + tuple(td.event_shape)
        assert str(es.dtype).split(".")[-1] == str(ts.dtype).split(".")[-1]
        assert not es.requires_grad
    assert ed.has_rsample == td.has_rsample
    if td.has_rsample:
        ed, ep = case.make("ember")
        r = ed.rsample((5,))
        assert tuple(r.shape) == (5,) + tuple(td.batch_shape) + tuple(td.event_shape) and r.requires_grad
    big = (4,) + tuple(td.batch_shape)
    ex, tx = ed.expand(big), td.expand(big)
    assert tuple(ex.batch_shape) == tuple(tx.batch_shape) and tuple(ex.event_shape) == tuple(tx.event_shape)
    close(ex.log_prob(et(case.values[:1])), tx.log_prob(tt(case.values[:1])), case.rtol)
    assert tuple(ex.sample((2,)).shape) == tuple(tx.sample((2,)).shape)


@pytest.mark.parametrize("case", [c for c in CASES if c.name in (
    "bernoulli_probs", "categorical_probs", "onehot", "binomial_logits", "independent")], ids=repr)
def test_enumerate_support(case):
    ed, _ = case.make("ember", grad=False)
    td, _ = case.make("torch", grad=False)
    assert ed.has_enumerate_support == td.has_enumerate_support
    if not td.has_enumerate_support:
        return
    for expand in (True, False):
        e, t = ed.enumerate_support(expand), td.enumerate_support(expand)
        close(e, t)
        assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    close(ed.log_prob(ed.enumerate_support()), td.log_prob(td.enumerate_support()), case.rtol)


def test_binomial_entropy_and_scalar_params():
    e, t = D.Binomial(7, probs=et([0.2, 0.5, 0.9])), TD.Binomial(7, probs=tt([0.2, 0.5, 0.9]))
    close(e.entropy(), t.entropy(), RTOL_SPECIAL)
    close(e.mode, t.mode)
    for cls, args in (("Normal", (0.5, 2.0)), ("Exponential", (1.5,)), ("Gamma", (2.0, 3.0)), ("Beta", (2.0, 3.0)),
                      ("Uniform", (-1.0, 2.0)), ("Poisson", (4.0,)), ("Bernoulli", (0.3,))):
        e, t = getattr(D, cls)(*args), getattr(TD, cls)(*args)
        assert tuple(e.batch_shape) == tuple(t.batch_shape) and e.mean.dtype is ember.float32
        close(e.mean, t.mean, 1e-6)
        assert repr(e) == repr(t)


# ---- KL ----------------------------------------------------------------------------------------------

def _pair(build, p, q, rtol=RTOL, nograd=()):
    return build, p, q, rtol, set(nograd)


KL_PAIRS = {
    "normal": _pair(lambda m, p: m.Normal(p["a"], p["b"]),
                    dict(a=RS.normal(size=3), b=_pos(3)), dict(a=RS.normal(size=(2, 1)), b=_pos(2, 3))),
    "categorical": _pair(lambda m, p: m.Categorical(probs=p["a"]),
                         dict(a=np.array([[0.2, 0.3, 0.5], [0.0, 0.5, 0.5]])),
                         dict(a=np.array([[0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]))),
    "onehot": _pair(lambda m, p: m.OneHotCategorical(logits=p["a"]),
                    dict(a=RS.normal(size=(2, 4))), dict(a=RS.normal(size=(2, 4)))),
    "bernoulli": _pair(lambda m, p: m.Bernoulli(probs=p["a"]),
                       dict(a=np.array([0.2, 0.7, 0.5])), dict(a=np.array([0.4, 0.1, 0.5]))),
    "uniform": _pair(lambda m, p: m.Uniform(p["a"], p["b"]),
                     dict(a=np.array([0.0, -1.0, 0.5]), b=np.array([1.0, 1.0, 2.0])),
                     dict(a=np.array([-1.0, -2.0, 1.0]), b=np.array([2.0, 1.5, 3.0]))),
    "exponential": _pair(lambda m, p: m.Exponential(p["a"]), dict(a=_pos(3)), dict(a=_pos(2, 3))),
    "gamma": _pair(lambda m, p: m.Gamma(p["a"], p["b"]), dict(a=_pos(3), b=_pos(3)), dict(a=_pos(3), b=_pos(3)),
                   RTOL_SPECIAL),
    "beta": _pair(lambda m, p: m.Beta(p["a"], p["b"]), dict(a=_pos(3), b=_pos(3)), dict(a=_pos(3), b=_pos(3)),
                  RTOL_SPECIAL),
    "dirichlet": _pair(lambda m, p: m.Dirichlet(p["a"]), dict(a=_pos(2, 4)), dict(a=_pos(2, 4)), RTOL_SPECIAL),
    "mvn": _pair(lambda m, p: m.MultivariateNormal(p["a"], scale_tril=p["b"]),
                 dict(a=RS.normal(size=(2, 3)), b=_tril(3)), dict(a=RS.normal(size=3), b=_tril(3, (2,)))),
    "mvn_cov": _pair(lambda m, p: m.MultivariateNormal(p["a"], covariance_matrix=p["b"]),
                     dict(a=RS.normal(size=3), b=_spd(3)), dict(a=RS.normal(size=3), b=_spd(3))),
    "independent": _pair(lambda m, p: m.Independent(m.Normal(p["a"], p["b"]), 1),
                         dict(a=RS.normal(size=(2, 3)), b=_pos(2, 3)), dict(a=RS.normal(size=(2, 3)), b=_pos(2, 3))),
    "poisson": _pair(lambda m, p: m.Poisson(p["a"]), dict(a=_pos(3)), dict(a=_pos(3))),
    "binomial": _pair(lambda m, p: m.Binomial(p["n"], p["a"]), dict(n=np.array([5.0, 6.0]), a=np.array([.2, .6])),
                      dict(n=np.array([5.0, 5.0]), a=np.array([.5, .3])), nograd=("n",)),
    "lognormal": _pair(lambda m, p: m.LogNormal(p["a"], p["b"]), dict(a=RS.normal(size=3), b=_pos(3)),
                       dict(a=RS.normal(size=3), b=_pos(3))),
}


@pytest.mark.parametrize("name", list(KL_PAIRS))
def test_kl_divergence(name):
    build, p, q, rtol, nograd = KL_PAIRS[name]
    res = {}
    for lib, conv, mod in (("ember", et, D), ("torch", tt, TD)):
        pp = {k: conv(v, grad=k not in nograd) for k, v in p.items()}
        qq = {k: conv(v, grad=k not in nograd) for k, v in q.items()}
        kl = (D.kl_divergence if lib == "ember" else TD.kl_divergence)(build(mod, pp), build(mod, qq))
        finite = np.isfinite(_np(kl))
        kl_f = kl[ember.tensor(finite.tolist())] if lib == "ember" else kl[torch.tensor(finite)]
        kl_f.sum().backward()
        res[lib] = kl, _grads(pp), _grads(qq)
    close(res["ember"][0], res["torch"][0], rtol)
    for i in (1, 2):
        assert set(res["ember"][i]) == set(res["torch"][i])
        for k in res["torch"][i]:
            close(res["ember"][i][k], res["torch"][i][k], rtol, atol=1e-10)


def test_kl_cross_family_registry_and_errors():
    n, g = D.Normal(0.0, 1.0), D.Gamma(2.0, 1.0)
    assert math.isinf(D.kl_divergence(n, g).item())
    close(D.kl_divergence(D.Exponential(et(1.5)), D.Gamma(et(2.0), et(0.5))),
          TD.kl_divergence(TD.Exponential(tt(1.5)), TD.Gamma(tt(2.0), tt(0.5))), RTOL_SPECIAL)
    close(D.kl_divergence(D.Uniform(et(0.0), et(2.0)), D.Normal(et(0.5), et(1.5))),
          TD.kl_divergence(TD.Uniform(tt(0.0), tt(2.0)), TD.Normal(tt(0.5), tt(1.5))))
    with pytest.raises(NotImplementedError, match="No KL"):
        D.kl_divergence(D.Categorical(probs=et([0.5, 0.5])), D.Normal(0.0, 1.0))

    class MyNormal(D.Normal):
        pass

    @D.register_kl(MyNormal, MyNormal)
    def _kl(p, q):
        return p.loc * 0 + 42.0

    assert D.kl_divergence(MyNormal(0.0, 1.0), MyNormal(1.0, 1.0)).item() == 42.0
    close(D.kl_divergence(MyNormal(et(0.0), et(1.0)), D.Normal(et(1.0), et(2.0))),
          TD.kl_divergence(TD.Normal(tt(0.0), tt(1.0)), TD.Normal(tt(1.0), tt(2.0))))


def test_exponential_family_bregman_entropy_and_kl():
    """The generic ExponentialFamily entropy and KL (autograd.grad with create_graph) agree with the closed forms."""
    for d, q in ((D.Normal(et([0.3, -1.0]), et([0.5, 2.0])), D.Normal(et([0.0, 1.0]), et([1.0, 1.5]))),
                 (D.Gamma(et([0.5, 3.0]), et([2.0, 0.7])), D.Gamma(et([1.5, 2.0]), et([1.0, 1.0]))),
                 (D.Exponential(et([0.5, 3.0])), D.Exponential(et([1.0, 2.0])))):
        close(D.ExponentialFamily.entropy(d), d.entropy(), RTOL_SPECIAL)
        close(D.kl._kl_expfamily_expfamily(d, q), D.kl_divergence(d, q), RTOL_SPECIAL)


# ---- sampling: moments and frequencies ------------------------------------------------------------------

N = 20000


def _check_moments(samples, mean, var, k=5.0):
    x = _np(samples).reshape(samples.shape[0], -1)
    mean, var = np.broadcast_to(_np(mean), samples.shape[1:]).reshape(-1), \
        np.broadcast_to(_np(var), samples.shape[1:]).reshape(-1)
    m = x.mean(0)
    assert np.all(np.abs(m - mean) <= k * np.sqrt(var / len(x))), (m, mean)
    c = x - m
    s2 = (c ** 2).mean(0)
    m4 = (c ** 4).mean(0)
    se = np.sqrt(np.maximum(m4 - s2 ** 2, 1e-300) / len(x))
    assert np.all(np.abs(s2 - var) < k * se + 1e-12), (s2, var)


SAMPLED = [
    ("normal", lambda: D.Normal(et([0.0, 2.0]), et([1.0, 0.5]))),
    ("bernoulli", lambda: D.Bernoulli(et([0.1, 0.5, 0.8]))),
    ("uniform", lambda: D.Uniform(et([-1.0, 2.0]), et([1.0, 5.0]))),
    ("exponential", lambda: D.Exponential(et([0.5, 3.0]))),
    ("gamma", lambda: D.Gamma(et([0.05, 0.4, 1.0, 3.5, 150.0]), et([1.0, 2.0, 1.0, 0.5, 3.0]))),
    ("beta", lambda: D.Beta(et([0.3, 2.0, 5.0]), et([0.6, 2.0, 1.5]))),
    ("dirichlet", lambda: D.Dirichlet(et([[0.3, 1.0, 4.0], [2.0, 2.0, 2.0]]))),
    ("poisson", lambda: D.Poisson(et([0.0, 0.3, 4.5, 9.9, 10.0, 60.0, 1500.0]))),
    ("binomial", lambda: D.Binomial(et([0.0, 10.0, 20.0, 100.0, 1000.0, 50.0, 7.0]),
                                    et([0.3, 0.05, 0.97, 0.35, 0.6, 0.0, 1.0]))),
    ("mvn", lambda: D.MultivariateNormal(et([1.0, -1.0, 0.0]), covariance_matrix=et(_spd(3)))),
    ("lognormal", lambda: D.LogNormal(et([0.0, 0.5]), et([0.3, 0.2]))),
    ("onehot", lambda: D.OneHotCategorical(et([0.2, 0.3, 0.5]))),
]


@pytest.mark.parametrize("name,make", SAMPLED, ids=[s[0] for s in SAMPLED])
def test_sample_moments(name, make):
    ember.manual_seed(7)
    d = make()
    s = d.sample((N,))
    assert tuple(s.shape) == (N,) + tuple(d.batch_shape) + tuple(d.event_shape)
    assert bool(d.support.check(s).all())
    _check_moments(s, d.mean, d.variance)


def test_categorical_sample_frequencies():
    ember.manual_seed(3)
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])
    s = _np(D.Categorical(probs=et(probs * 3)).sample((N,)))
    for b in range(2):
        freq = np.bincount(s[:, b], minlength=3) / N
        assert np.all(np.abs(freq - probs[b]) < 5 * np.sqrt(probs[b] * (1 - probs[b]) / N))


@pytest.mark.parametrize("make_e,make_t", [
    (lambda: D.Poisson(et([2.5, 30.0])), lambda: TD.Poisson(tt([2.5, 30.0]), validate_args=False)),
    (lambda: D.Binomial(et([20.0, 200.0, 60.0]), et([0.3, 0.4, 0.85])),
     lambda: TD.Binomial(tt([20.0, 200.0, 60.0]), tt([0.3, 0.4, 0.85]), validate_args=False)),
], ids=["poisson", "binomial"])
def test_discrete_sample_frequencies_match_the_pmf(make_e, make_t):
    """Both regimes of each sampler (inversion and transformed rejection) against torch's pmf."""
    ember.manual_seed(11)
    s = _np(make_e().sample((N,)))
    td = make_t()
    for b in range(s.shape[1]):
        ks = np.arange(int(s[:, b].max()) + 1)
        pmf = td.log_prob(torch.tensor(ks, dtype=torch.float64).unsqueeze(-1).expand(-1, s.shape[1])).exp()
        pmf = pmf[:, b].numpy()
        freq = np.bincount(s[:, b].astype(int), minlength=len(ks)) / N
        assert np.all(np.abs(freq - pmf) < 5 * np.sqrt(pmf * (1 - pmf) / N) + 2 / N), b


def test_gamma_sample_cdf_matches():
    """Gamma samples on both sides of the a < 1 boost: empirical CDF at a few points vs torch's gammainc."""
    ember.manual_seed(5)
    conc = np.array([0.2, 0.9, 4.0])
    s = _np(D.Gamma(et(conc), et(1.0)).sample((N,)))
    for b, a in enumerate(conc):
        pts = np.quantile(s[:, b], [0.05, 0.25, 0.5, 0.75, 0.95])
        cdf = torch.special.gammainc(torch.tensor(a), torch.tensor(pts)).numpy()
        emp = (s[:, b][:, None] <= pts).mean(0)
        assert np.all(np.abs(emp - cdf) < 5 * np.sqrt(cdf * (1 - cdf) / N)), (a, emp, cdf)


# ---- reparameterised gradients -----------------------------------------------------------------------

def test_normal_rsample_gradient():
    loc, scale = et(0.5, grad=True), et(2.0, grad=True)
    ember.manual_seed(0)
    x = D.Normal(loc, scale).rsample((1000,))
    x.mean().backward()
    assert loc.grad.item() == pytest.approx(1.0, abs=1e-12)
    eps = (x.detach() - 0.5) / 2.0
    assert scale.grad.item() == pytest.approx(eps.mean().item(), abs=1e-12)


def test_uniform_exponential_mvn_lognormal_rsample_gradients():
    ember.manual_seed(1)
    low, high = et(1.0, grad=True), et(3.0, grad=True)
    D.Uniform(low, high).rsample((N,)).mean().backward()
    assert abs(low.grad.item() - 0.5) < 0.02 and abs(high.grad.item() - 0.5) < 0.02
    rate = et(2.0, grad=True)
    x = D.Exponential(rate).rsample((N,))
    x.mean().backward()
    close(rate.grad, -x.detach().mean() / 2.0)                      # x = e / rate
    loc, tril = et([0.0, 1.0, 2.0], grad=True), et(_tril(3), grad=True)
    y = D.MultivariateNormal(loc, scale_tril=tril).rsample((100,))
    y.sum().backward()
    close(loc.grad, np.full(3, 100.0))
    assert tril.grad is not None and float(tril.grad.abs().sum()) > 0
    mu = et(0.3, grad=True)
    D.LogNormal(mu, et(0.1)).rsample((N,)).mean().backward()       # d E[exp(mu + s z)] / d mu = E[x]
    assert abs(mu.grad.item() - math.exp(0.3 + 0.005)) < 0.01


def test_gamma_implicit_gradient_matches_torch():
    """The reparameterised gradient d x / d alpha of a standard Gamma sample, at torch's samples, against
    torch._standard_gamma_grad (an approximation good to ~1e-3) and a finite difference of the exact CDF."""
    torch.manual_seed(0)
    for alpha in (0.05, 0.7, 1.0, 3.0, 25.0, 400.0):
        a = torch.full((300,), alpha, dtype=torch.float64)
        x = torch._standard_gamma(a)
        ref = torch._standard_gamma_grad(a, x).numpy()
        mine = _np(_special.gamma_dlogx_dalpha(et(a.numpy()), et(np.log(x.numpy())))) * x.numpy()
        np.testing.assert_allclose(mine, ref, rtol=2e-3, atol=1e-12)
        h = 1e-6 * alpha
        xe = et(x.numpy()[:20])
        dp = (_np(_special.gammainc(et(np.full(20, alpha + h)), xe))
              - _np(_special.gammainc(et(np.full(20, alpha - h)), xe))) / (2 * h)
        logpdf = (alpha - 1) * np.log(x.numpy()[:20]) - x.numpy()[:20] - math.lgamma(alpha)
        np.testing.assert_allclose(mine[:20], -dp / np.exp(logpdf), rtol=2e-4)


def test_gamma_beta_dirichlet_rsample_gradients_are_unbiased():
    """E[d x / d param] equals d E[x] / d param (per-sample pathwise gradients, within 5 standard errors)."""
    ember.manual_seed(2)
    for alpha, rate in ((0.3, 1.0), (2.5, 2.0), (40.0, 0.5)):
        conc, r = et(np.full(N, alpha), grad=True), et(np.full(N, rate), grad=True)
        x = D.Gamma(conc, r).rsample()
        x.sum().backward()
        g = _np(conc.grad)
        assert abs(g.mean() - 1 / rate) < 5 * g.std() / math.sqrt(N) + 1e-9
        close(r.grad, -x.detach() / rate)
    a, b = et(np.full(N, 2.0), grad=True), et(np.full(N, 3.0), grad=True)
    D.Beta(a, b).rsample().sum().backward()
    for g, want in ((_np(a.grad), 3.0 / 25.0), (_np(b.grad), -2.0 / 25.0)):     # d (a / (a + b))
        assert abs(g.mean() - want) < 5 * g.std() / math.sqrt(N)
    c = et(np.tile([1.0, 2.0, 0.5], (N, 1)), grad=True)
    D.Dirichlet(c).rsample()[:, 0].sum().backward()
    g = _np(c.grad)
    want = np.array([2.5 / 3.5 ** 2, -1.0 / 3.5 ** 2, -1.0 / 3.5 ** 2])      # d (c0 / sum) / d c
    assert np.all(np.abs(g.mean(0) - want) < 5 * g.std(0) / math.sqrt(N))


def test_tiny_concentrations_sample_without_underflow_to_nan():
    ember.manual_seed(4)
    x = D.Dirichlet(et([[0.005, 0.01, 0.02]])).sample((100,))
    assert bool(D.constraints.simplex.check(x).all()) and not bool(x.isnan().any())
    g = D.Gamma(et(0.001), et(1.0)).sample((1000,))
    assert bool((g > 0).all())


# ---- transforms ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,args,x", [
    ("ExpTransform", (), RS.normal(size=(2, 3))),
    ("SigmoidTransform", (), RS.normal(size=(2, 3)) * 3),
    ("TanhTransform", (), RS.normal(size=(2, 3))),
    ("SoftplusTransform", (), RS.normal(size=(2, 3))),
    ("AffineTransform", (0.5, -2.0), RS.normal(size=(2, 3))),
    ("PowerTransform", (2.5,), _pos(2, 3)),
    ("StickBreakingTransform", (), RS.normal(size=(2, 3))),
])
def test_transforms(name, args, x):
    e = getattr(D.transforms, name)(*args)
    t = getattr(TD.transforms, name)(*args)
    xe, xt = et(x, grad=True), tt(x, grad=True)
    ye, yt = e(xe), t(xt)
    close(ye, yt)
    close(e.inv(ye), t.inv(yt), 1e-9)
    le, lt = e.log_abs_det_jacobian(xe, ye), t.log_abs_det_jacobian(xt, yt)
    close(le, lt, 1e-9)
    (ye.sum() + le.sum()).backward()
    (yt.sum() + lt.sum()).backward()
    close(xe.grad, xt.grad, 1e-9)
    assert e.bijective == t.bijective and repr(e.inv).startswith("_InverseTransform(")
    assert tuple(e.forward_shape((4, 3))) == tuple(t.forward_shape((4, 3)))
    assert e.domain.event_dim == t.domain.event_dim and e.codomain.event_dim == t.codomain.event_dim


def test_compose_and_cache():
    c = D.transforms.ComposeTransform([D.transforms.AffineTransform(1.0, 2.0), D.transforms.ExpTransform()])
    x = et([0.1, -0.2])
    close(c.inv(c(x)), x)
    close(c.log_abs_det_jacobian(x, c(x)), math.log(2.0) + 1.0 + 2.0 * _np(x))
    cached = D.transforms.ExpTransform().with_cache(1)
    y = cached(x)
    assert cached.inv(y) is x
    assert D.transforms.identity_transform(x) is x


# ---- validation ----------------------------------------------------------------------------------------

def _message_head(exc):
    return str(exc).split(" of distribution ")[0]


def test_invalid_parameters_raise_value_error_like_torch():
    cases = [
        (lambda m, c: m.Normal(c([0.0, 1.0]), c([1.0, -1.0])), "scale"),
        (lambda m, c: m.Exponential(c([0.0])), "rate"),
        (lambda m, c: m.Bernoulli(probs=c([1.5])), "probs"),
        (lambda m, c: m.Categorical(probs=c([0.5, -0.1, 0.6])), "probs"),
        (lambda m, c: m.Dirichlet(c([1.0, -2.0])), "concentration"),
        (lambda m, c: m.Uniform(c([2.0]), c([1.0])), "low"),
        (lambda m, c: m.Gamma(c([1.0]), c([-1.0])), "rate"),
        (lambda m, c: m.Beta(c([0.0]), c([1.0])), "concentration"),            # checked by its Dirichlet
        (lambda m, c: m.Poisson(c([-0.5])), "rate"),
        (lambda m, c: m.Binomial(c([2.5]), c([0.5])), "total_count"),
        (lambda m, c: m.MultivariateNormal(c([0.0, 0.0]), covariance_matrix=c([[1.0, 2.0], [2.0, 1.0]])),
         "covariance_matrix"),
        (lambda m, c: m.MultivariateNormal(c([0.0, 0.0]), scale_tril=c([[1.0, 0.0], [2.0, -1.0]])), "scale_tril"),
    ]
    for build, param in cases:
        with pytest.raises(ValueError) as te:
            build(TD, tt)
        with pytest.raises(ValueError, match=f"Expected parameter {param} ") as ee:
            build(D, et)
        assert _message_head(ee.value) == _message_head(te.value)
        assert "to satisfy the constraint" in str(ee.value) and "but found invalid values" in str(ee.value)
    D.Normal(et([0.0]), et([-1.0]), validate_args=False)                       # no check


def test_out_of_support_values_and_shapes_raise():
    cases = [
        (lambda m, c: m.Bernoulli(c([0.3, 0.6])), [0.0, 0.5]),
        (lambda m, c: m.Poisson(c([1.0])), [-1.0]),
        (lambda m, c: m.Poisson(c([1.0])), [1.5]),
        (lambda m, c: m.Uniform(c([0.0]), c([1.0])), [1.5]),
        (lambda m, c: m.Gamma(c([1.0]), c([1.0])), [-0.1]),
        (lambda m, c: m.Beta(c([1.0]), c([1.0])), [1.5]),
        (lambda m, c: m.Dirichlet(c([1.0, 1.0, 1.0])), [0.2, 0.2, 0.2]),       # does not sum to one
        (lambda m, c: m.Binomial(c([3.0]), c([0.5])), [4.0]),
        (lambda m, c: m.OneHotCategorical(c([0.5, 0.5])), [1.0, 1.0]),
    ]
    for build, value in cases:
        with pytest.raises(ValueError) as te:
            build(TD, tt).log_prob(tt(value))
        with pytest.raises(ValueError, match="Expected value argument") as ee:
            build(D, et).log_prob(et(value))
        e_msg, t_msg = str(ee.value), str(te.value)
        assert e_msg.split(" to be within")[0] == t_msg.split(" to be within")[0]
        assert e_msg.split("support (")[1].split("(")[0] == t_msg.split("support (")[1].split("(")[0]
    with pytest.raises(ValueError, match="Expected value argument"):
        D.Categorical(probs=et([0.5, 0.5])).log_prob(ember.tensor([2]))
    with pytest.raises(ValueError, match="The right-most size of value must match event_shape"):
        D.Dirichlet(et([1.0, 1.0])).log_prob(et([0.5, 0.25, 0.25]))
    with pytest.raises(ValueError, match="Value is not broadcastable"):
        D.Normal(et([0.0, 1.0]), et(1.0)).log_prob(et([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="The value argument to log_prob must be a Tensor"):
        D.Normal(0.0, 1.0).log_prob(0.5)
    with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified, but not both."):
        D.Bernoulli()


def test_set_default_validate_args():
    assert D.Distribution._validate_args is True
    try:
        D.Distribution.set_default_validate_args(False)
        d = D.Normal(et([0.0]), et([-1.0]))                                    # accepted
        assert np.isnan(_np(d.log_prob(et([0.0])))).all()                      # log of a negative scale
        assert math.isinf(D.Uniform(et(0.0), et(1.0)).log_prob(et(2.0)).item())
    finally:
        D.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        D.Normal(et([0.0]), et([-1.0]))
    with pytest.raises(ValueError):
        D.Distribution.set_default_validate_args(2)


# ---- the special functions on their own ------------------------------------------------------------------

def test_special_functions_against_torch():
    x = np.concatenate([np.logspace(-6, 3, 200), np.linspace(0.5, 20, 100), [1.0, 2.0, 1e6], -RS.uniform(0, 5, 20)])
    close(_special.lgamma(et(x)), torch.lgamma(tt(x)), 1e-12, atol=1e-13)
    close(_special.digamma(et(x)), torch.digamma(tt(x)), 1e-11, atol=1e-12)
    xe, xt = et(x[:300], grad=True), tt(x[:300], grad=True)
    _special.lgamma(xe).sum().backward()
    torch.lgamma(xt).sum().backward()
    close(xe.grad, xt.grad, 1e-11, atol=1e-12)
    y = np.linspace(-0.999, 0.999, 301)
    close(_special.erfinv(et(y)), torch.erfinv(tt(y)), 1e-12, atol=1e-14)
    a, v = _pos(200, lo=0.05, hi=20), _pos(200, lo=0.01, hi=30)
    close(_special.gammainc(et(a), et(v)), torch.special.gammainc(tt(a), tt(v)), 1e-9, atol=1e-13)
    close(_special.xlogy(et([0.0, 0.0, 2.0]), et([0.0, 3.0, 3.0])), torch.xlogy(tt([0.0, 0.0, 2.0]), tt([0, 3, 3.0])))
    m = _spd(4, (2,))
    L, ok = _special.cholesky(et(m))
    close(L, torch.linalg.cholesky(tt(m)))
    assert bool(ok.all())
    b = RS.normal(size=(2, 4, 3))
    close(_special.solve_tril(L, et(b)), torch.linalg.solve_triangular(torch.linalg.cholesky(tt(m)), tt(b),
                                                                       upper=False))


def test_gammainc_gradient_in_the_shape_parameter():
    """ember's P(a, x) is differentiable in a too (torch's is not): against a central difference."""
    a, x = np.array([0.3, 1.0, 4.0, 30.0]), np.array([0.2, 2.5, 3.0, 33.0])
    ae = et(a, grad=True)
    _special.gammainc(ae, et(x)).sum().backward()
    h = 1e-6 * a
    fd = (_np(_special.gammainc(et(a + h), et(x))) - _np(_special.gammainc(et(a - h), et(x)))) / (2 * h)
    np.testing.assert_allclose(_np(ae.grad), fd, rtol=1e-6)


def test_distribution_base_behaviour():
    d = D.Normal(et([0.0, 1.0]), et([1.0, 2.0]))
    close(d.perplexity(), np.exp(_np(d.entropy())))
    with pytest.warns(FutureWarning):
        assert tuple(d.sample_n(3).shape) == (3, 2)
    close(D.Gamma(et([2.0]), et([4.0])).stddev, np.sqrt([2.0 / 16.0]))
    assert isinstance(d.batch_shape, ember.Size) and tuple(d._extended_shape((4,))) == (4, 2)
    assert D.Normal.arg_constraints["scale"] is D.constraints.positive
    assert D.constraints.is_dependent(D.Uniform.support) and not D.constraints.is_dependent(D.constraints.real)

    class Shifted(D.Normal):
        def __init__(self, loc):
            super().__init__(loc, 1.0)

    with pytest.raises(NotImplementedError, match="must also define a custom .expand"):
        Shifted(et([0.0])).expand((3, 1))
    with pytest.raises(NotImplementedError):
        D.Poisson(et(1.0)).rsample()
    assert repr(D.Independent(D.Normal(0.0, 1.0).expand((2,)), 1)).startswith("Independent(Normal(")


def test_samplers_handle_edge_parameters():
    ember.manual_seed(9)
    p = _np(_samplers.sample_poisson(et([0.0, 0.0])))
    assert (p == 0).all()
    b = _np(_samplers.sample_binomial(et([0.0, 5.0, 5.0]), et([0.5, 0.0, 1.0])))
    assert (b == np.array([0.0, 0.0, 5.0])).all()
    assert np.isnan(_np(_samplers.sample_poisson(et([-1.0])))).all()
