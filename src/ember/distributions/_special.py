"""Special functions and small linear algebra that the distributions need and ember's op table lacks, composed
from ember ops (so that autograd differentiates them through the ops' own derivatives) or, where a derivative has
a closed form, an autograd Function whose backward is itself written in ember ops.

- `lgamma`, `digamma`: a shift by 8 (recurrence) then the Stirling / asymptotic series (Bernoulli terms to B16),
  reflection for negative arguments; about 1e-15 relative in float64 for x > 0. Their autograd derivatives are the
  derivatives of those series (digamma, trigamma), as accurate.
- `erfinv`: Giles' approximation refined by two Halley steps; its derivative is the exact one at the result.
- `gammainc` (P(a, x), torch.special.gammainc): series / continued fraction, with derivatives in x and in a.
- `xlogy`, `cholesky`, `solve_tril` (a lower-triangular solve), `cholesky_inverse`.
"""
from __future__ import annotations

import math

from . import _api as E

__all__ = ["lgamma", "digamma", "erfinv", "gammainc", "xlogy", "cholesky", "solve_tril", "cholesky_inverse",
           "gamma_dlogx_dalpha"]

_SHIFT = 8            # recurrence steps before the asymptotic series (the series runs at z >= 8)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
# Stirling: lgamma(z) = (z - 1/2) log z - z + log(2 pi)/2 + sum B_2k / (2k (2k - 1) z^(2k - 1))
_LGAMMA_C = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156, -3617 / 122400)
# digamma(z) = log z - 1/(2z) - sum B_2k / (2k z^2k)
_DIGAMMA_C = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12, -3617 / 8160)


def _poly(w, coefs):
    """coefs[0] + w * (coefs[1] + w * (...)) (Horner)."""
    acc = coefs[-1]
    for c in reversed(coefs[:-1]):
        acc = w * acc + c
    return acc


def _as_float(x):
    if not isinstance(x, E.Tensor):
        return E.tensor(float(x), dtype=E.get_default_dtype())
    return x if x.dtype.is_floating_point else x.to(E.get_default_dtype())


def _nonpositive_integer(x):
    return (x <= 0) & (x == E.floor(x))


def _lgamma_positive(x):
    """lgamma for x >= 0 (inf at 0): below 8, shifted up by the recurrence lgamma(x) = lgamma(x + 8) -
    log(x (x + 1) ... (x + 7)) (the product stays below 16^8, so float32 holds it too)."""
    small = x < _SHIFT
    xs = E.where(small, x, 1.0)
    prod = xs
    for k in range(1, _SHIFT):
        prod = prod * (xs + k)
    z = E.where(small, x + _SHIFT, x)
    w = 1.0 / z
    series = (z - 0.5) * E.log(z) - z + _HALF_LOG_2PI + w * _poly(w * w, _LGAMMA_C)
    return series - E.where(small, E.log(prod), 0.0)


def _reflected(x, positive, reflection):
    """(out, neg): out is positive(x) where x >= 0 and reflection(x) where x < 0 (each fed a harmless stand-in
    elsewhere); neg is the mask x < 0, None when no element is negative (out is then positive(x) alone)."""
    neg = x < 0
    pos = positive(E.where(neg, 1.0, x))
    if not bool(neg.any()):
        return pos, None
    xn = E.where(neg, x, -0.5)
    return E.where(neg, reflection(xn), pos), neg


def lgamma(x):
    """log|Gamma(x)| (torch.lgamma), differentiable (its derivative is digamma's series)."""
    x = _as_float(x)
    out, neg = _reflected(x, _lgamma_positive,
                          lambda xn: math.log(math.pi) - E.log(E.abs(E.sin(math.pi * xn))) - _lgamma_positive(1.0 - xn))
    if neg is None:
        return out
    return E.where(_nonpositive_integer(x), math.inf, out)


def _digamma_positive(x):
    z = x + _SHIFT
    w = 1.0 / z
    w2 = w * w
    out = E.log(z) - 0.5 * w - w2 * _poly(w2, _DIGAMMA_C)
    for k in range(_SHIFT):
        out = out - 1.0 / (x + k)
    return out


def digamma(x):
    """psi(x) = d/dx lgamma(x) (torch.digamma): -inf at 0, nan at the negative integers."""
    x = _as_float(x)
    out, neg = _reflected(x, _digamma_positive, lambda xn: _digamma_positive(1.0 - xn) - math.pi / E.tan(math.pi * xn))
    if neg is None:
        return out
    return E.where(neg & (x == E.floor(x)), math.nan, out)


def xlogy(x, y):
    """x * log(y), 0 where x == 0 (unless y is nan), as torch.xlogy; its derivative in x is log(y) (0 where
    x == y == 0), in y x / y."""
    if not isinstance(x, E.Tensor) and not isinstance(y, E.Tensor):
        return 0.0 if x == 0 and y == y else x * math.log(y)
    if not isinstance(y, E.Tensor):
        y = E.full_like(x, float(y))
    if not isinstance(x, E.Tensor):
        if x == 0:
            return E.where(E.isnan(y), math.nan, E.zeros_like(y))
        return x * E.log(y)
    # x == 0 with y <= 0 reads log(1): value 0, no gradient
    ys = E.where((x == 0) & (y <= 0), 1.0, y)
    return x * E.log(ys)


# ---- erfinv -----------------------------------------------------------------------------------------

_GILES_CENTRAL = (1.50140941, 0.246640727, -0.00417768164, -0.00125372503, 0.00021858087, -4.39150654e-06,
                  -3.5233877e-06, 3.43273939e-07, 2.81022636e-08)
_GILES_TAIL = (2.83297682, 1.00167406, 0.00943887047, -0.0076224613, 0.00573950773, -0.00367342844,
               0.00134934322, 0.000100950558, -0.000200214257)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def erfinv(y):
    """The inverse of erf on (-1, 1) (torch.erfinv): +-inf at +-1, nan outside."""
    y = _as_float(y)
    with E.no_grad():
        yd = y.detach()
        inside = E.abs(yd) < 1
        ys = E.where(inside, yd, 0.0)
        w = -E.log((1.0 - ys) * (1.0 + ys))
        central = _poly(w - 2.5, _GILES_CENTRAL)
        tail = _poly(E.sqrt(w.clamp(min=5.0)) - 3.0, _GILES_TAIL)
        x = E.where(w < 5.0, central, tail) * ys
        for _ in range(2):                      # Halley: f = erf(x) - y, f'' = -2x f'
            f = E.erf(x) - ys
            fp = _TWO_OVER_SQRT_PI * E.exp(-x * x)
            x = x - f / (fp + x * f)
        slope = 1.0 / (_TWO_OVER_SQRT_PI * E.exp(-x * x))
        x = E.where(inside, x, E.where(E.abs(yd) == 1, yd * math.inf, math.nan))
    if y.requires_grad and E.is_grad_enabled():
        x = x + (y - yd) * slope                 # d erfinv(y)/dy = 1 / erf'(erfinv(y))
    return x


# ---- the regularised incomplete gamma function -------------------------------------------------------

_MAX_ITER = 20000


def _gammainc_value(a, x):
    """P(a, x) for a > 0, x >= 0 (no grad): the series where x < a + 1, else 1 - the continued fraction."""
    fi = E.finfo(x.dtype)
    tiny, eps = fi.tiny * 1e8, fi.eps * 0.1
    use_series = x < a + 1
    # series: P = exp(a log x - x - lgamma(a + 1)) * sum_n x^n / ((a + 1) ... (a + n))
    xs = E.where(use_series, x, 0.0)
    term = E.ones_like(xs)
    total = E.ones_like(xs)
    ap = a.clone()
    n = 0
    while True:
        n += 1
        ap = ap + 1
        term = term * xs / ap
        total = total + term
        if n % 16 == 0 and not bool(((term > total * eps) & use_series).any()) or n > _MAX_ITER:
            break
    lx = E.log(E.where(xs > 0, xs, 1.0))
    series = E.where(xs > 0, E.exp(a * lx - xs - lgamma(a + 1)) * total, 0.0)
    # continued fraction for Q (modified Lentz, Numerical Recipes' gcf)
    xc = E.where(use_series, a + 2.0, x)
    b = xc + 1 - a
    c = E.full_like(xc, 1 / tiny)
    d = 1.0 / b
    h = d
    i = 0
    while True:
        i += 1
        an = -i * (i - a)
        b = b + 2
        d = an * d + b
        d = E.where(E.abs(d) < tiny, tiny, d)
        c = b + an / c
        c = E.where(E.abs(c) < tiny, tiny, c)
        d = 1.0 / d
        delta = d * c
        h = h * delta
        if i % 16 == 0 and not bool(((E.abs(delta - 1) > 2 * eps) & ~use_series).any()) or i > _MAX_ITER:
            break
    q = E.exp(a * E.log(xc) - xc - lgamma(a)) * h
    out = E.where(use_series, series, 1.0 - q)
    out = E.where(E.isnan(a) | E.isnan(x) | (a <= 0) | (x < 0), math.nan, out)
    return E.where(x == math.inf, 1.0, out)


def gamma_dlogx_dalpha(alpha, logx):
    """d log(x) / d alpha along the curve P(alpha, x) = const (the implicit reparameterisation gradient of a
    standard Gamma sample x = exp(logx)): -(1/alpha) * sum_n r_n (log x - digamma(alpha + n + 1)), with r_0 = 1,
    r_n = r_(n-1) x / (alpha + n) (the derivative in alpha of P's series, over the density). No grad."""
    with E.no_grad():
        eps = E.finfo(logx.dtype).eps * 0.1
        x = E.exp(logx)
        psi = digamma(alpha + 1)
        r = E.ones_like(x)
        rsum = r.clone()
        acc = logx - psi
        ap = alpha.clone()
        n = 0
        while True:
            n += 1
            ap = ap + 1
            psi = psi + 1.0 / ap
            r = r * x / ap
            rsum = rsum + r
            acc = acc + r * (logx - psi)
            if n % 16 == 0 and not bool(((r > rsum * eps) | (ap < x)).any()) or n > _MAX_ITER:
                break
        return -acc / alpha


class _GammaInc(E.Function):
    @staticmethod
    def forward(ctx, a, x):
        with E.no_grad():
            out = _gammainc_value(a, x)
        ctx.save_for_backward(a, x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, x, out = ctx.saved_tensors
        ga = gx = None
        with E.no_grad():
            xs = E.where(x > 0, x, 1.0)
            log_t0 = a * E.log(xs) - xs - lgamma(a + 1)     # log of x^a e^-x / Gamma(a + 1)
            if ctx.needs_input_grad[1]:
                pdf = E.exp(log_t0 + E.log(a) - E.log(xs))
                gx = grad * E.where(x > 0, pdf, 0.0)
            if ctx.needs_input_grad[0]:
                dp_da = -gamma_dlogx_dalpha(a, E.log(xs)) * a * E.exp(log_t0)
                ga = grad * E.where(x > 0, dp_da, 0.0)
        return ga, gx


def gammainc(a, x):
    """The regularised lower incomplete gamma function P(a, x) (torch.special.gammainc), differentiable in x
    (and in a, which torch does not offer)."""
    a, x = E.broadcast_tensors(_as_float(a), _as_float(x))
    return _GammaInc.apply(a, x)


# ---- small linear algebra ---------------------------------------------------------------------------

def cholesky(A, check=True):
    """The lower Cholesky factor of the symmetric positive-definite matrices A (..., n, n) (torch.linalg.cholesky),
    column by column with ember ops. Returns (L, ok) with `ok` a bool tensor (...) that every pivot was positive;
    with `check`, a matrix that is not positive-definite raises as torch does."""
    n = A.shape[-1]
    if A.requires_grad and E.is_grad_enabled():
        # torch reads the lower triangle and gives the symmetric gradient (A is taken to be symmetric):
        # the values of tril(A) + tril(A, -1)^T, the gradient of (A + A^T) / 2
        sym = 0.5 * (A + A.mT)
        A = sym + (A.tril() + A.tril(-1).mT - sym).detach()
    rows = E.arange(n, device=A.device)
    cols = []
    ok = None
    for j in range(n):
        v = A[..., :, j]
        if j:
            prev = E.stack(cols, -1)                                  # (..., n, j)
            v = v - E.matmul(prev, prev[..., j, :].unsqueeze(-1)).squeeze(-1)
        d = v[..., j]
        good = d > 0
        ok = good if ok is None else ok & good
        if check and not bool(good.all()):
            raise RuntimeError(f"linalg.cholesky: The factorization could not be completed because the input is "
                               f"not positive-definite (the leading minor of order {j + 1} is not "
                               f"positive-definite).")
        sd = E.sqrt(E.where(good, d, 1.0)).unsqueeze(-1)
        cols.append(E.where(rows >= j, v / sd, 0.0))
    return E.stack(cols, -1), ok


def solve_tril(L, B):
    """X with L X = B for lower-triangular L (..., n, n) and B (..., n, k), batch dims broadcast
    (torch.linalg.solve_triangular(L, B, upper=False)), by forward substitution."""
    n = L.shape[-1]
    out = []
    for i in range(n):
        r = B[..., i, :]
        if i:
            prev = E.stack(out, -2)                                   # (..., i, k)
            r = r - E.matmul(L[..., i:i + 1, :i], prev).squeeze(-2)
        out.append(r / L[..., i, i].unsqueeze(-1))
    return E.stack(out, -2)


def cholesky_inverse(L):
    """(L L^T)^-1 from the lower Cholesky factor L (torch.cholesky_inverse)."""
    n = L.shape[-1]
    linv = solve_tril(L, E.eye(n, dtype=L.dtype, device=L.device).expand(L.shape))
    return E.matmul(linv.mT, linv)
