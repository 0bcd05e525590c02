"""Samplers ember's op table does not have (torch's _standard_gamma, _sample_dirichlet, poisson, binomial), built
from ember's uniform and normal draws with ember ops, vectorised, each rejection loop running over the elements
still undecided.

- Gamma: Marsaglia and Tsang (2000), with the boost Gamma(a) = Gamma(a + 1) * U^(1/a) for a < 1, computed in log
  space (so that tiny concentrations underflow neither the sample's log nor a Dirichlet normalised from it). Its
  reparameterised gradient is implicit: d log x / d a = -(dP(a, x)/da) / (x p(x)) (see
  `_special.gamma_dlogx_dalpha`), exact to rounding (torch uses an approximation good to about 1e-3).
- Poisson: multiplication of uniforms (Knuth) for rates below 10, Hoermann's PTRS transformed rejection above.
- Binomial: torch's split: inversion by sums of geometric variables when n min(p, 1-p) < 10, Hoermann's BTRS
  above (acceptance by the exact log pmf ratio through lgamma), with p > 1/2 mirrored.
"""
from __future__ import annotations

import math

from . import _api as E
from ._special import gamma_dlogx_dalpha, lgamma

__all__ = ["log_standard_gamma", "standard_gamma", "sample_poisson", "sample_binomial"]

_MAX_ROUNDS = 10000


def _too_many():
    raise RuntimeError("distributions: a rejection sampler did not finish in 10000 rounds (non-finite parameters?)")


def _next_round(rounds):
    """rounds + 1, the count of a rejection loop's rounds; raises past _MAX_ROUNDS."""
    rounds += 1
    if rounds > _MAX_ROUNDS:
        _too_many()
    return rounds


def _uniform(n, like):
    return E.rand((n,), dtype=like.dtype, device=like.device)


def _sample_log_gamma(alpha):
    """log of Gamma(alpha, 1) samples (no grad), alpha > 0 elementwise; nan for invalid alpha."""
    with E.no_grad():
        return _log_gamma_draw(alpha)


def _log_gamma_draw(alpha):
    flat = alpha.detach().reshape(-1)
    n = flat.numel()
    valid = (flat > 0) & (flat < math.inf)
    boost = flat < 1
    a = E.where(valid, E.where(boost, flat + 1, flat), 2.0)
    d = a - 1.0 / 3.0
    c = 1.0 / E.sqrt(9.0 * d)
    out = E.full((n,), math.nan, dtype=flat.dtype, device=flat.device)
    idx = E.arange(n, device=flat.device)[valid]
    rounds = 0
    while idx.numel():
        rounds = _next_round(rounds)
        dd, cc = d[idx], c[idx]
        m = idx.numel()
        z = E.randn((m,), dtype=flat.dtype, device=flat.device)
        u = _uniform(m, flat)
        v = 1.0 + cc * z
        positive = v > 0
        v = v * v * v
        logv = E.log(E.where(positive, v, 1.0))
        accept = positive & (E.log(u) < 0.5 * z * z + dd - dd * v + dd * logv)
        out[idx[accept]] = (E.log(dd) + logv)[accept]
        idx = idx[~accept]
    if bool(boost.any()):
        u = _uniform(n, flat)
        out = E.where(boost & valid, out + E.log(u) / flat, out)
    return out.reshape(alpha.shape)


class _LogStandardGamma(E.Function):
    @staticmethod
    def forward(ctx, alpha):
        logx = _sample_log_gamma(alpha)
        ctx.save_for_backward(alpha, logx)
        return logx

    @staticmethod
    def backward(ctx, grad):
        alpha, logx = ctx.saved_tensors
        return grad * gamma_dlogx_dalpha(alpha, logx)


def log_standard_gamma(alpha):
    """log of a Gamma(alpha, 1) sample per element of alpha, reparameterised (implicit gradient in alpha)."""
    if alpha.requires_grad and E.is_grad_enabled():
        return _LogStandardGamma.apply(alpha)
    return _sample_log_gamma(alpha)


def standard_gamma(alpha):
    """A Gamma(alpha, 1) sample per element of alpha (torch._standard_gamma), clamped at the dtype's tiny,
    reparameterised."""
    x = E.exp(log_standard_gamma(alpha))
    tiny = E.finfo(x.dtype).tiny
    return x + (x.detach().clamp(min=tiny) - x.detach())


# ---- Poisson ------------------------------------------------------------------------------------------

def _poisson_knuth(lam, out, idx):
    """Rates below 10: count uniforms multiplied until the product falls below exp(-rate)."""
    limit = E.exp(-lam[idx])
    k = E.zeros_like(limit)
    prod = _uniform(idx.numel(), lam)
    rounds = 0
    while idx.numel():
        rounds = _next_round(rounds)
        done = prod <= limit
        out[idx[done]] = k[done]
        keep = ~done
        idx, limit, k, prod = idx[keep], limit[keep], k[keep] + 1, prod[keep]
        prod = prod * _uniform(idx.numel(), lam)


def _poisson_ptrs(lam, out, idx):
    """Rates of 10 and more: Hoermann's transformed rejection with squeeze (PTRS)."""
    rounds = 0
    while idx.numel():
        rounds = _next_round(rounds)
        r = lam[idx]
        m = idx.numel()
        slam = E.sqrt(r)
        loglam = E.log(r)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2)
        u = _uniform(m, lam) - 0.5
        v = _uniform(m, lam)
        us = 0.5 - E.abs(u)
        k = E.floor((2 * a / us + b) * u + r + 0.43)
        fast = (us >= 0.07) & (v <= vr)
        bad = (k < 0) | ((us < 0.013) & (v > us))
        ks = E.where(k < 0, 0.0, k)
        lhs = E.log(v) + E.log(invalpha) - E.log(a / (us * us) + b)
        rhs = -r + ks * loglam - lgamma(ks + 1)
        accept = fast | (~bad & (lhs <= rhs))
        out[idx[accept]] = k[accept]
        idx = idx[~accept]


def sample_poisson(rate):
    """A Poisson(rate) sample per element (torch.poisson), as floats of rate's dtype; nan for invalid rates."""
    with E.no_grad():
        lam = rate.detach().reshape(-1)
        n = lam.numel()
        out = E.full((n,), math.nan, dtype=lam.dtype, device=lam.device)
        every = E.arange(n, device=lam.device)
        valid = (lam >= 0) & (lam < math.inf)
        small = valid & (lam < 10)
        _poisson_knuth(lam, out, every[small])
        _poisson_ptrs(lam, out, every[valid & ~small])
        return out.reshape(rate.shape)


# ---- Binomial -----------------------------------------------------------------------------------------

def _binomial_inversion(count, prob, out, idx):
    """n p < 10: the number of geometric(p) waiting times that fit in n trials."""
    logq = E.log1p(-prob[idx])
    cnt = count[idx]
    geom_sum = E.zeros_like(logq)
    num = E.zeros_like(logq)
    rounds = 0
    while idx.numel():
        rounds = _next_round(rounds)
        u = _uniform(idx.numel(), prob)
        geom_sum = geom_sum + E.ceil(E.log(u) / logq)
        done = geom_sum > cnt
        out[idx[done]] = num[done]
        keep = ~done
        idx, logq, cnt, geom_sum, num = idx[keep], logq[keep], cnt[keep], geom_sum[keep], num[keep] + 1


def _binomial_btrs(count, prob, out, idx):
    """n p >= 10 (p <= 1/2): Hoermann's BTRS transformed rejection."""
    rounds = 0
    while idx.numel():
        rounds = _next_round(rounds)
        n, p = count[idx], prob[idx]
        m_ = idx.numel()
        q = 1 - p
        spq = E.sqrt(n * p * q)
        b = 1.15 + 2.53 * spq
        a = -0.0873 + 0.0248 * b + 0.01 * p
        c = n * p + 0.5
        alpha = (2.83 + 5.1 / b) * spq
        vr = 0.92 - 4.2 / b
        m = E.floor((n + 1) * p)
        u = _uniform(m_, prob) - 0.5
        v = _uniform(m_, prob)
        us = 0.5 - E.abs(u)
        k = E.floor((2 * a / us + b) * u + c)
        inside = (k >= 0) & (k <= n)
        fast = inside & (us >= 0.07) & (v <= vr)
        ks = E.where(inside, k, 0.0)
        lhs = E.log(v * alpha / (a / (us * us) + b))
        # log(f(k) / f(m)) for the binomial pmf f
        rhs = (lgamma(m + 1) + lgamma(n - m + 1) - lgamma(ks + 1) - lgamma(n - ks + 1)
               + (ks - m) * (E.log(p) - E.log(q)))
        accept = fast | (inside & (lhs <= rhs))
        out[idx[accept]] = k[accept]
        idx = idx[~accept]


def sample_binomial(count, prob):
    """A Binomial(count, prob) sample per element (torch.binomial), as floats; count and prob share a shape."""
    with E.no_grad():
        n = count.detach().reshape(-1).to(prob.dtype)
        p = prob.detach().reshape(-1)
        size = n.numel()
        flip = p > 0.5
        ps = E.where(flip, 1 - p, p)
        res = E.zeros((size,), dtype=p.dtype, device=p.device)
        every = E.arange(size, device=p.device)
        valid = (n >= 0) & (n < math.inf) & (p >= 0) & (p <= 1)
        live = valid & (n > 0) & (ps > 0)
        big = live & (n * ps >= 10)
        _binomial_inversion(n, ps, res, every[live & ~big])
        _binomial_btrs(n, ps, res, every[big])
        res = E.where(flip, n - res, res)
        res = E.where(valid, res, math.nan)
        return res.reshape(prob.shape)
