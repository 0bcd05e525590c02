"""ember.nn.init: distributions, gains, fans, generators, no_grad, errors (compared with torch.nn.init)."""
import math

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
from ember.nn import init

N = 40000  # samples per statistics check (the checks allow ~5 standard errors)


def _stats(t):
    a = t.detach().numpy().astype(np.float64).reshape(-1)
    return a, a.mean(), a.std()


@pytest.mark.parametrize("nonlinearity,param", [("linear", None), ("conv2d", None), ("sigmoid", None),
                                                ("tanh", None), ("relu", None), ("leaky_relu", None),
                                                ("leaky_relu", 0.2), ("leaky_relu", 3), ("selu", None),
                                                ("conv_transpose1d", None)])
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param))


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity swish"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", True)


@pytest.mark.parametrize("shape", [(5, 3), (4, 6, 3), (8, 2, 3, 5), (2, 3, 1, 1, 4)])
def test_fan_in_fan_out_matches_torch(shape):
    assert init._calculate_fan_in_and_fan_out(ember.empty(*shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_fan_needs_two_dims():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(ember.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(ember.empty(3, 3), mode="fan_avg")


def test_uniform_and_normal():
    t = init.uniform_(ember.empty(N), -2.0, 3.0)
    a, m, s = _stats(t)
    assert a.min() >= -2.0 and a.max() < 3.0
    assert abs(m - 0.5) < 5 * 5 / math.sqrt(12 * N) and abs(s - 5 / math.sqrt(12)) < 0.02
    t = init.normal_(ember.empty(200, 200), 1.5, 0.5)
    a, m, s = _stats(t)
    assert abs(m - 1.5) < 5 * 0.5 / math.sqrt(N) and abs(s - 0.5) < 0.01
    assert t.shape == (200, 200)


def test_constant_ones_zeros_eye_dirac():
    assert init.constant_(ember.empty(2, 3), 0.25).tolist() == [[0.25] * 3] * 2
    assert init.ones_(ember.empty(3)).tolist() == [1.0] * 3
    assert init.zeros_(ember.randn(3)).tolist() == [0.0] * 3
    assert init.eye_(ember.empty(2, 3)).tolist() == torch.nn.init.eye_(torch.empty(2, 3)).tolist()
    d_e = init.dirac_(ember.empty(4, 2, 3, 3), groups=2)
    d_t = torch.nn.init.dirac_(torch.empty(4, 2, 3, 3), groups=2)
    assert d_e.tolist() == d_t.tolist()
    with pytest.raises(ValueError, match="2 dimensions"):
        init.eye_(ember.empty(2, 2, 2))


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier(gain):
    fan_in, fan_out = 300, 200
    t = init.xavier_uniform_(ember.empty(fan_out, fan_in), gain=gain)
    a, m, s = _stats(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    assert abs(s - bound / math.sqrt(3)) < 0.02 * bound
    t = init.xavier_normal_(ember.empty(fan_out, fan_in), gain=gain)
    a, m, s = _stats(t)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    assert abs(s - std) < 0.02 * std and abs(m) < 5 * std / math.sqrt(a.size)


@pytest.mark.parametrize("a,mode,nonlinearity", [(0, "fan_in", "leaky_relu"), (math.sqrt(5), "fan_in", "leaky_relu"),
                                                 (0, "fan_out", "relu"), (0.1, "fan_in", "leaky_relu"),
                                                 (0, "FAN_IN", "tanh")])
def test_kaiming(a, mode, nonlinearity):
    shape = (250, 40, 2, 2)  # fan_in 160, fan_out 1000
    fan = 160 if mode.lower() == "fan_in" else 1000
    gain = torch.nn.init.calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    t = init.kaiming_uniform_(ember.empty(*shape), a=a, mode=mode, nonlinearity=nonlinearity)
    x, m, s = _stats(t)
    bound = math.sqrt(3.0) * std
    assert np.abs(x).max() <= bound and np.abs(x).max() > 0.99 * bound
    assert abs(s - std) < 0.02 * std
    t = init.kaiming_normal_(ember.empty(*shape), a=a, mode=mode, nonlinearity=nonlinearity)
    x, m, s = _stats(t)
    assert abs(s - std) < 0.02 * std and abs(m) < 5 * std / math.sqrt(x.size)


@pytest.mark.parametrize("fn", [init.kaiming_uniform_, init.kaiming_normal_])
def test_kaiming_zero_element_warns(fn):
    with pytest.warns(UserWarning, match="zero-element") as rec:
        t = fn(ember.empty(0, 3))
    assert t.shape == (0, 3)
    assert rec[0].filename == __file__      # attributed to the caller, as torch's warning is


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04), (1.0, 2.0, 0.0, 5.0),
                                          (0.0, 1.0, -0.5, 3.0)])
def test_trunc_normal_matches_truncated_distribution(mean, std, a, b):
    t = init.trunc_normal_(ember.empty(N, dtype=ember.float64), mean, std, a, b)
    x, m, s = _stats(t)
    assert x.min() >= a and x.max() <= b
    # moments of the truncated normal
    alpha, beta = (a - mean) / std, (b - mean) / std
    phi = lambda v: math.exp(-v * v / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    Phi = lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2)))  # noqa: E731
    Z = Phi(beta) - Phi(alpha)
    tmean = mean + std * (phi(alpha) - phi(beta)) / Z
    tvar = std ** 2 * (1 + (alpha * phi(alpha) - beta * phi(beta)) / Z - ((phi(alpha) - phi(beta)) / Z) ** 2)
    assert abs(m - tmean) < 5 * math.sqrt(tvar / N)
    assert abs(s - math.sqrt(tvar)) < 0.02 * math.sqrt(tvar)
    # the histogram matches torch's sampler's
    ref = torch.nn.init.trunc_normal_(torch.empty(N, dtype=torch.float64), mean, std, a, b).numpy()
    h1, edges = np.histogram(x, bins=10, range=(a, b))
    h2, _ = np.histogram(ref, bins=edges)
    assert np.abs(h1 - h2).max() < 6 * math.sqrt(N / 10) + 50


def test_erfinv_matches_torch():
    x = np.linspace(-0.999999, 0.999999, 2001)
    e = init._erfinv(ember.tensor(x)).numpy()
    t = torch.erfinv(torch.tensor(x)).numpy()
    np.testing.assert_allclose(e, t, rtol=1e-12, atol=1e-12)


def test_trunc_normal_float32_and_bf16_tensors():
    t = init.trunc_normal_(ember.empty(1000), std=0.02)
    assert t.dtype is ember.float32 and float(t.abs().max()) <= 2.0
    t = init.trunc_normal_(ember.empty(100, dtype=ember.bfloat16), std=1.0, a=-1.0, b=1.0)
    assert t.dtype is ember.bfloat16 and float(t.float().abs().max()) <= 1.0


@pytest.mark.parametrize("fn,args", [(init.uniform_, (-1.0, 1.0)), (init.normal_, (0.0, 1.0)),
                                     (init.trunc_normal_, (0.0, 1.0, -2.0, 2.0)), (init.xavier_uniform_, ()),
                                     (init.xavier_normal_, ()), (init.kaiming_uniform_, ()),
                                     (init.kaiming_normal_, ())])
def test_generator_reproducible_and_independent_of_global_seed(fn, args):
    g1 = ember.Generator().manual_seed(42)
    g2 = ember.Generator().manual_seed(42)
    ember.manual_seed(0)
    a = fn(ember.empty(6, 5), *args, generator=g1)
    ember.manual_seed(1)
    b = fn(ember.empty(6, 5), *args, generator=g2)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    c = fn(ember.empty(6, 5), *args, generator=g2)
    assert not np.array_equal(b.numpy(), c.numpy())
    # default generator: follows manual_seed
    ember.manual_seed(5)
    d = fn(ember.empty(6, 5), *args)
    ember.manual_seed(5)
    e = fn(ember.empty(6, 5), *args)
    np.testing.assert_array_equal(d.numpy(), e.numpy())


@pytest.mark.parametrize("fn,args", [(init.uniform_, ()), (init.normal_, ()), (init.trunc_normal_, ()),
                                     (init.constant_, (0.3,)), (init.ones_, ()), (init.zeros_, ()),
                                     (init.xavier_uniform_, ()), (init.kaiming_normal_, ()), (init.eye_, ())])
def test_init_runs_under_no_grad_on_parameters(fn, args):
    p = nn.Parameter(ember.empty(4, 4))
    r = fn(p, *args)
    assert r is p
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    (p * 2).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), np.full((4, 4), 2.0, np.float32))


def test_init_keeps_dtype_and_returns_input():
    t = ember.empty(3, 3, dtype=ember.float64)
    assert init.kaiming_uniform_(t) is t and t.dtype is ember.float64
    assert init.normal_(t) is t


def test_init_rejects_non_tensors():
    with pytest.raises(TypeError, match="ember.Tensor"):
        init.uniform_(np.zeros(3))


def test_deprecated_aliases_warn():
    with pytest.warns(FutureWarning, match="deprecated"):
        init.xavier_uniform(ember.empty(3, 3))
